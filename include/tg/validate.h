/*
 * Validation of the desired state: what makes a parsed document a usable
 * object, and the checks across the objects loaded.
 *
 * A document's problems are reported at the field they concern, looked up
 * in the document's positions (posmap.h); fields are dotted paths relative
 * to where the object sits in its document (tg_doc_at.base), as the user
 * reads them in the object.  Pure: nothing here reads files.
 */
#ifndef TG_VALIDATE_H
#define TG_VALIDATE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/desired.h"
#include "tg/posmap.h"
#include "tg/problems.h"

/* One document being read: where its problems go and how they are placed. */
struct tg_doc_at {
	struct tg_problems *problems;
	const char *file;         /* as shown in problems */
	const struct tg_doc *doc; /* its positions; the document's start for the rest */
	const char *base;         /* where the object sits in the document: "", "oas"... */
};

/* A problem at field (below at->base; "" for the object itself), or at its
 * nearest ancestor that has a position. */
void tg_validate_problem(const struct tg_doc_at *at, enum tg_severity sev, const char *field,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* A user's value fit for a one-line message: control characters as '?',
 * cut at 80 bytes with "...".  Returns a new string, owned by the caller. */
char *tg_validate_printable(const char *s);

/*
 * Why id cannot name an object (an API's when is_api), or NULL when it can:
 * ids become file names and URL path segments on the gateway, so only
 * letters, digits, '.', '_', '~' and '-' are accepted, "." and ".." never,
 * at most TG_DESIRED_MAX_ID_LEN bytes, and an API's id never ends in "-oas"
 * (a file-based gateway skips those files).  Returns a static string.
 */
const char *tg_validate_id(const char *id, int is_api);

/*
 * Reads body, an API (a Tyk OAS API when it has openapi or
 * x-tyk-api-gateway, else a classic definition) or a policy, checks the
 * fields its kind needs and appends it to d's objects, with the positions of
 * its id, listen path and policy references.  Takes body: an object with a
 * problem that makes it unusable is reported and freed instead.  An API that
 * needs something from the gateway's environment (tykobj.h) gets a warning.
 */
void tg_validate_add_api(struct tg_desired *d, const struct tg_doc_at *at, cJSON *body);
void tg_validate_add_policy(struct tg_desired *d, const struct tg_doc_at *at, cJSON *body);

/*
 * Reports every object whose id an earlier object of its family (APIs,
 * policies) has, at its id, and sets dead[i] for each such d->objects[i]
 * (dead holds d->len bytes): the caller drops them, so that lookups find
 * the first.
 */
void tg_validate_duplicate_ids(const struct tg_desired *d, struct tg_problems *problems,
			       char *dead);

/* Reports every API whose listen path an earlier API uses on the same
 * domain (or without one), at its listen path. */
void tg_validate_listen_paths(const struct tg_desired *d, struct tg_problems *problems);

/* Reports every policy reference to an API neither in d nor in
 * known_api_ids (may be NULL: offline), at the reference. */
void tg_validate_refs(const struct tg_desired *d, const char *const *known_api_ids, size_t n_known,
		      struct tg_problems *problems);

#endif
