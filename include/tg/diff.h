/*
 * Semantic comparison of a desired object with what the gateway returns.
 *
 * The gateway fills defaults, drops fields it does not know and reorders
 * keys, so a byte-wise comparison would always see drift.  Rules:
 *  - key order is ignored; numbers compare by value;
 *  - a desired field the gateway did not return is ignored (the gateway
 *    dropped it: it does not know it);
 *  - a field only the gateway has is ignored when it holds a zero value
 *    (false, 0, "", null, [] or {} all the way down) or is a known
 *    server-filled field (OAS "servers", policy "last_updated"...);
 *  - an OAS API's "servers" is ignored altogether: the gateway rewrites it;
 *  - null and a zero value are equal;
 *  - the ownership marker is ignored.
 * Differences are JSON paths with old and new values; string values that
 * contain a secret are shown as "***".  Pure: no I/O.
 */
#ifndef TG_DIFF_H
#define TG_DIFF_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/buf.h"
#include "tg/desired.h"

struct tg_change {
	char *path;   /* "proxy.target_url", "tags[1]" */
	char *before; /* JSON text of the gateway's value, NULL when absent */
	char *after;  /* JSON text of the desired value, NULL when absent */
};

struct tg_changes {
	struct tg_change *items;
	size_t len, alloc;
};

struct tg_secrets {
	const char *const *values;
	size_t len;
};

void tg_diff_objects(struct tg_changes *out, enum tg_kind kind, const cJSON *desired,
		     const cJSON *actual, const struct tg_secrets *secrets);
void tg_changes_release(struct tg_changes *c);

/* Hex SHA-256 of obj in canonical form (sorted keys, no marker). */
void tg_diff_hash(char out[65], enum tg_kind kind, const cJSON *obj);

/* Renders v as compact JSON with secret strings replaced by "***". Caller
 * frees. */
char *tg_diff_render(const cJSON *v, const struct tg_secrets *secrets);

#endif
