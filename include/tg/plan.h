/*
 * Plan: what a sync must do to make the gateway match the desired state.
 * Pure: takes the desired objects and the gateway's lists, returns one item
 * per object with its action and, for updates, the semantic changes.
 * Only objects owned by the sync (marker.sync == sync name) are updated or
 * deleted; an unowned object with a desired id is a conflict unless the
 * sync adopts.
 */
#ifndef TG_PLAN_H
#define TG_PLAN_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/desired.h"
#include "tg/diff.h"
#include "tg/vocab.h"

/*
 * Tyk keeps its previous policies loaded when a reload finds no policy at
 * all, so deleting the last policy would never take effect.  The controller
 * then writes this inactive policy without access rights, owned by the
 * sync, and never prunes it.
 */
#define TG_TOMBSTONE_POLICY_ID "tyk-gitops-tombstone"

enum tg_action {
	TG_ACTION_NONE, /* in sync */
	TG_ACTION_CREATE,
	TG_ACTION_UPDATE,
	TG_ACTION_DELETE,
	TG_ACTION_CONFLICT /* same id, not ours, not adopted */
};
const char *tg_action_name(enum tg_action a);

struct tg_plan_item {
	enum tg_kind kind;
	char *id;
	char *name;
	enum tg_action action;
	const struct tg_object *desired; /* NULL for deletes */
	char desired_hash[65];           /* tg_diff_hash of desired, "" for deletes */
	const cJSON *actual;             /* the gateway's object (points into the lists
	                                    given to tg_plan_build), or NULL */
	struct tg_changes changes;       /* for updates */
	int drifted;                     /* update caused by a change on the gateway, not in git */
	int warn_only;                   /* drifted and the drift policy is "warn": not applied */
};

struct tg_plan {
	struct tg_plan_item *items;
	size_t len, alloc;
	size_t counts[5]; /* by enum tg_action */
	size_t owned;     /* objects on the gateway owned by this sync */
};

struct tg_plan_opts {
	const char *sync_name;
	int adopt;
	int prune;
	enum tg_drift_policy drift;
	struct tg_secrets secrets;
	/* Optional: tg_diff_hash of every desired object, by its index in
	 * d->objects (computed here when NULL). */
	const char (*desired_hashes)[65];
	/* Optional: 1 when the gateway's object is certified in sync with the
	 * desired object of its id as it is now (a tg_verified skeleton): planned
	 * unchanged without a diff. */
	int (*in_sync)(void *ctx, enum tg_kind kind, const cJSON *actual);
	void *in_sync_ctx;
};

/*
 * actual[kind] is the gateway's list for each kind (may be NULL when the
 * kind was not listed); it must outlive the plan, whose items point into it.  Items come out in apply order: API writes, then
 * policy writes, then policy deletes, then API deletes.
 */
void tg_plan_build(struct tg_plan *out, const struct tg_desired *d,
		   cJSON *const actual[TG_KIND_COUNT], const struct tg_plan_opts *opts);
void tg_plan_release(struct tg_plan *plan);

/* The gateway's objects of one kind sorted by id: O(log n) lookups, and an
 * order that does not depend on the gateway's unstable list order.  Entries
 * point into the list, which must outlive the index. */
struct tg_index_entry {
	const char *id;
	const cJSON *obj;
};
struct tg_index {
	struct tg_index_entry *items;
	size_t len;
};
void tg_index_build(struct tg_index *ix, enum tg_kind kind, const cJSON *list);
/* Position of id in ix->items, or -1. */
long tg_index_find(const struct tg_index *ix, const char *id);
void tg_index_release(struct tg_index *ix);

#endif
