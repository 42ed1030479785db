/*
 * The positioned JSON reader: one JSON value to cJSON, remembering the line
 * and column of every member (posmap.h), and the rule by which numeric
 * text becomes a cJSON number without losing digits, which the YAML reader
 * (yaml.h) shares.
 */
#ifndef TG_JSON_H
#define TG_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/posmap.h"
#include "tg/problems.h"

/* Nested objects and arrays, so that the stack stays bounded. */
#define TG_JSON_MAX_DEPTH 256

/*
 * Parses one JSON value in data[0..len) into one document of out, with the
 * position of every member.  Stricter than YAML on purpose: JSON files are
 * checked as JSON (escapes such as \/ and \u00e9, tabs, big integers kept
 * exact, duplicate keys, invalid UTF-8 and lone surrogates rejected); a
 * leading UTF-8 BOM is skipped.  file is used only for messages.  Returns 0,
 * or TG_EINVALID with the problem appended and nothing added to out.
 */
int tg_json_parse(struct tg_docs *out, const char *data, size_t len, const char *file,
		  struct tg_problems *problems);

/*
 * A cJSON number for numeric text s[0..len): JSON's grammar, or the YAML
 * core schema's decimal forms (a '+' sign, leading zeros, ".5", "1.").
 * Exact: a number a double would not print back digit for digit (more than
 * 15 significant digits, so every integer beyond 2^53; or not finite, like
 * 1e999) is kept as a raw cJSON number that prints verbatim.  Returns NULL
 * only when the text is not finite and not valid JSON either ("+1e999"),
 * for the caller to keep a string.  Aborts on out-of-memory.
 */
cJSON *tg_json_create_number(const char *s, size_t len);

/* node, or an abort with a log line when a cJSON allocation returned NULL
 * (cJSON allocates outside tg_xmalloc unless its hooks are set). */
cJSON *tg_json_checked(cJSON *node);

#endif
