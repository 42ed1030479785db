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

/* Looks up the position of a node by dotted path ("info.id",
 * "access_rights.abc.api_id").  Returns 0 and fills line/column, or
 * TG_ENOTFOUND. */
int tg_pos_lookup(const struct tg_pos_map *pos, const char *path, int *line, int *column);

void tg_docs_release(struct tg_docs *docs);

#endif
