/*
 * Ownership and provenance marker stored on each object the controller
 * writes, in a slot that survives the gateway's round trip:
 *   classic API  config_data.tyk_gitops  (free-form map the gateway keeps;
 *                                         also visible to plugins)
 *   Tyk OAS API  x-tyk-gitops            (top-level OpenAPI extension)
 *   policy       meta_data.tyk_gitops    (free-form map the gateway keeps;
 *                                         merged into keys' meta data)
 * Pure: no I/O.
 */
#ifndef TG_MARKER_H
#define TG_MARKER_H

#include <cjson/cJSON.h>

#include "tg/desired.h"

#define TG_MARKER_KEY "tyk_gitops"
#define TG_MARKER_OAS_KEY "x-tyk-gitops"

struct tg_marker {
	char *sync;       /* owning sync's name */
	char *commit;     /* commit that last changed the object */
	char *file;       /* source file in the repository */
	char *hash;       /* sha256 of the desired object without marker */
	char *applied_at; /* RFC 3339 */
	char *drift;      /* per-object drift policy: "correct", "warn" or NULL */
};

/* A string field of obj's marker ("sync", "hash", "drift"...), pointing into
 * obj, or NULL.  Allocates nothing: for the planner's per-object loop. */
const char *tg_marker_get(enum tg_kind kind, const cJSON *obj, const char *field);

/* Reads the marker of obj. TG_ENOTFOUND when there is none. Release with
 * tg_marker_release. */
int tg_marker_read(struct tg_marker *out, enum tg_kind kind, const cJSON *obj);
/* Writes m into obj's slot, creating the container when needed. */
void tg_marker_stamp(cJSON *obj, enum tg_kind kind, const struct tg_marker *m);
/* Removes the marker (and a container left empty by it). */
void tg_marker_strip(cJSON *obj, enum tg_kind kind);
void tg_marker_release(struct tg_marker *m);

#endif
