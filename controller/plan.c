/* Planning creates, updates, deletes and conflicts (see include/tg/plan.h). */
#include "tg/plan.h"

#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/marker.h"
#include "tg/tykobj.h"
#include "tg/banned.h"

const char *tg_action_name(enum tg_action a)
{
	static const char *const names[] = { "unchanged", "create", "update", "delete",
					     "conflict" };

	return names[a];
}

static struct tg_plan_item *add_item(struct tg_plan *plan, enum tg_kind kind, const char *id)
{
	struct tg_plan_item *it;

	if (plan->len == plan->alloc) {
		plan->alloc = plan->alloc ? plan->alloc * 2 : 16;
		plan->items = tg_xreallocarray(plan->items, plan->alloc, sizeof(*plan->items));
	}
	it = &plan->items[plan->len++];
	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->id = tg_xstrdup(id);
	return it;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const struct tg_index_entry *)a)->id,
		      ((const struct tg_index_entry *)b)->id);
}

void tg_index_build(struct tg_index *ix, enum tg_kind kind, const cJSON *list)
{
	size_t n = (size_t)cJSON_GetArraySize(list);
	const cJSON *c;

	ix->items = tg_xcalloc(n ? n : 1, sizeof(*ix->items));
	ix->len = 0;
	cJSON_ArrayForEach(c, list)
	{
		const char *id = tg_tyk_id(kind, c);

		if (!id)
			continue;
		ix->items[ix->len].id = id;
		ix->items[ix->len].obj = c;
		ix->len++;
	}
	qsort(ix->items, ix->len, sizeof(*ix->items), cmp_entry);
}

long tg_index_find(const struct tg_index *ix, const char *id)
{
	size_t lo = 0, hi = ix->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->items[mid].id, id);

		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

void tg_index_release(struct tg_index *ix)
{
	free(ix->items);
	ix->items = NULL;
	ix->len = 0;
}

/* The gateway's objects of one kind, and which a desired object matched. */
struct actual_index {
	struct tg_index ix;
	char *seen;
};

static int owned_by(const cJSON *obj, enum tg_kind kind, const char *sync)
{
	const char *owner = tg_marker_get(kind, obj, "sync");

	return owner && !strcmp(owner, sync);
}

static void plan_desired(struct tg_plan *plan, const struct tg_desired *d, size_t i,
			 struct actual_index *ix, const struct tg_plan_opts *opts)
{
	const struct tg_object *o = &d->objects[i];
	struct tg_plan_item *it = add_item(plan, o->kind, o->id);
	const char *marker_hash, *marker_drift;
	long at = tg_index_find(&ix->ix, o->id);
	int owned;

	it->name = o->name ? tg_xstrdup(o->name) : NULL;
	it->desired = o;
	if (opts->desired_hashes)
		memcpy(it->desired_hash, opts->desired_hashes[i], sizeof(it->desired_hash));
	else
		tg_diff_hash(it->desired_hash, o->kind, tg_object_body(o));
	if (at < 0) {
		it->action = TG_ACTION_CREATE;
		return;
	}
	ix->seen[at] = 1;
	it->actual = ix->ix.items[at].obj;
	if (opts->in_sync && opts->in_sync(opts->in_sync_ctx, o->kind, it->actual))
		return; /* TG_ACTION_NONE: owned, same hash, no changes */
	owned = owned_by(it->actual, o->kind, opts->sync_name);
	if (!owned && !opts->adopt) {
		it->action = TG_ACTION_CONFLICT;
		return;
	}
	marker_hash = tg_marker_get(o->kind, it->actual, "hash");
	marker_drift = tg_marker_get(o->kind, it->actual, "drift");
	tg_diff_objects(&it->changes, o->kind, tg_object_body(o), it->actual, &opts->secrets);
	if (!owned || it->changes.len > 0 || !marker_hash ||
	    strcmp(marker_hash, it->desired_hash)) {
		it->action = TG_ACTION_UPDATE;
		/* Same desired hash but different content: someone changed the
		 * gateway's copy by hand. */
		it->drifted = owned && marker_hash && !strcmp(marker_hash, it->desired_hash) &&
			      it->changes.len > 0;
		if (it->drifted) {
			enum tg_drift_policy p = opts->drift;

			if (marker_drift)
				p = !strcmp(marker_drift, "warn") ? TG_DRIFT_WARN
								  : TG_DRIFT_CORRECT;
			it->warn_only = p == TG_DRIFT_WARN;
		}
	}
}

static void plan_deletes(struct tg_plan *plan, enum tg_kind kind, struct actual_index *ix,
			 const struct tg_plan_opts *opts)
{
	for (size_t i = 0; i < ix->ix.len; i++) {
		const struct tg_index_entry *e = &ix->ix.items[i];
		struct tg_plan_item *it;

		if (!owned_by(e->obj, kind, opts->sync_name))
			continue;
		plan->owned++;
		if (ix->seen[i] || !opts->prune ||
		    (kind == TG_KIND_POLICY && !strcmp(e->id, TG_TOMBSTONE_POLICY_ID)))
			continue;
		it = add_item(plan, kind, e->id);
		it->action = TG_ACTION_DELETE;
		it->actual = e->obj;
	}
}

void tg_plan_build(struct tg_plan *out, const struct tg_desired *d,
		   cJSON *const actual[TG_KIND_COUNT], const struct tg_plan_opts *opts)
{
	struct actual_index ix[TG_KIND_COUNT];
	static const enum tg_kind write_order[] = { TG_KIND_API, TG_KIND_OAS_API, TG_KIND_POLICY };
	static const enum tg_kind delete_order[] = { TG_KIND_POLICY, TG_KIND_OAS_API, TG_KIND_API };

	memset(out, 0, sizeof(*out));
	for (int k = 0; k < TG_KIND_COUNT; k++) {
		tg_index_build(&ix[k].ix, (enum tg_kind)k, actual[k]);
		ix[k].seen = tg_xcalloc(ix[k].ix.len ? ix[k].ix.len : 1, 1);
	}
	for (size_t w = 0; w < TG_ARRAY_SIZE(write_order); w++)
		for (size_t i = 0; i < d->len; i++)
			if (d->objects[i].kind == write_order[w])
				plan_desired(out, d, i, &ix[write_order[w]], opts);
	for (size_t w = 0; w < TG_ARRAY_SIZE(delete_order); w++)
		plan_deletes(out, delete_order[w], &ix[delete_order[w]], opts);
	for (size_t i = 0; i < out->len; i++)
		out->counts[out->items[i].action]++;
	for (int k = 0; k < TG_KIND_COUNT; k++) {
		tg_index_release(&ix[k].ix);
		free(ix[k].seen);
	}
}

void tg_plan_release(struct tg_plan *plan)
{
	for (size_t i = 0; i < plan->len; i++) {
		struct tg_plan_item *it = &plan->items[i];

		free(it->id);
		free(it->name);
		tg_changes_release(&it->changes);
	}
	free(plan->items);
	memset(plan, 0, sizeof(*plan));
}
