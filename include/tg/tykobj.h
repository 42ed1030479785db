/*
 * What tyk-gitops knows of Tyk's objects, in one place: where each kind
 * keeps its id (Dashboard exports put a policy's id in "_id"), and which
 * APIs a policy references.  Everything else in an object passes through
 * untouched.  Pure.
 */
#ifndef TG_TYKOBJ_H
#define TG_TYKOBJ_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/desired.h"

/* Id of an object (api_id, x-tyk-api-gateway.info.id, or a policy's id,
 * else its _id), or NULL when missing or empty.  Points into obj. */
const char *tg_tyk_id(enum tg_kind kind, const cJSON *obj);

/* The field that holds a policy's id: "id", or "_id" for a Dashboard
 * export whose "id" is missing, null or empty. */
const char *tg_tyk_policy_id_field(const cJSON *policy);

/*
 * Calls fn for every API a policy references: each non-empty key of
 * access_rights (is_key = 1) and each non-empty api_id inside an entry
 * (is_key = 0); a Dashboard export may have the two differ, and the
 * gateway must know both.  Stops at the first non-zero return of fn and
 * returns it; 0 otherwise.
 */
typedef int (*tg_tyk_ref_fn)(void *ctx, const char *api_id, const cJSON *entry, int is_key);
int tg_tyk_policy_refs(const cJSON *policy, tg_tyk_ref_fn fn, void *ctx);

/*
 * Something an API needs from the gateway's own environment, which a
 * gateway without it answers by skipping the definition at reload: a
 * plugin bundle, a middleware file, a certificate by id.  Writes a short
 * description of the first one into out and returns 1; 0 when none.
 */
int tg_tyk_external_dependency(char *out, size_t size, enum tg_kind kind, const cJSON *body);

#endif
