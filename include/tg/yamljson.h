/*
 * YAML (and JSON) documents to cJSON, faithfully: quoted scalars stay
 * strings, plain scalars that are YAML 1.1/1.2 core numbers, booleans or
 * null become JSON numbers, booleans and null; integers too big for a
 * double are kept exact (as raw cJSON numbers); anchors, aliases and merge
 * keys are resolved.  Each document remembers where its nodes came from so
 * that problems can name the line and column of a field.
 */
#ifndef TG_YAMLJSON_H
#define TG_YAMLJSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/problems.h"

struct tg_pos_map; /* JSON path -> line/column, opaque */

struct tg_doc {
	cJSON *json;              /* owned */
	int line, column;         /* start of the document */
	struct tg_pos_map *pos;   /* owned */
};

struct tg_docs {
	struct tg_doc *items;
	size_t len, alloc;
};

/*
 * Parses every document in data[0..len).  Parse errors are added to
 * problems with file:line:column (file is used only for messages) and the
 * function returns TG_EINVALID; documents parsed before the error are kept.
 */
int tg_yaml_parse(struct tg_docs *out, const char *data, size_t len, const char *file,
		  struct tg_problems *problems);

/*
 * Parses one JSON value in data[0..len) with the same output as
 * tg_yaml_parse (one document, positions of every member).  Stricter than
 * YAML on purpose: JSON files are checked as JSON (escapes such as \/ and
 * \u00e9, tabs, big integers kept exact, duplicate keys rejected).  Returns
 * 0 or TG_EINVALID with the problem appended.
 */
int tg_json_parse(struct tg_docs *out, const char *data, size_t len, const char *file,
		  struct tg_problems *problems);

/* Limits, so that hostile input cannot exhaust memory or the stack. */
#define TG_YAML_MAX_DEPTH 256                        /* nested mappings/sequences */
#define TG_YAML_MAX_EXPANSION ((size_t)64 * 1024 * 1024) /* bytes after aliases */

/* Looks up the position of a node by dotted path ("info.id",
 * "access_rights.abc.api_id").  Returns 0 and fills line/column, or
 * TG_ENOTFOUND. */
int tg_pos_lookup(const struct tg_pos_map *pos, const char *path, int *line, int *column);

void tg_docs_release(struct tg_docs *docs);

#endif
