/* Planning creates, updates, deletes and conflicts (see include/tg/plan.h). */
#include "tg/plan.h"

#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/marker.h"
#include "tg/banned.h"

const char *tg_action_name(enum tg_action a)
{
	static const char *const names[] = { "unchanged", "create", "update", "delete", "conflict" };

	return names[a];
}

static const char *str_at(const cJSON *obj, const char *a, const char *b, const char *c)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, a);

	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	if (c)
		v = cJSON_GetObjectItemCaseSensitive(v, c);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

const char *tg_plan_object_id(enum tg_kind kind, const cJSON *obj)
{
	const char *id;

	switch (kind) {
	case TG_KIND_API:
		return str_at(obj, "api_id", NULL, NULL);
	case TG_KIND_OAS_API:
		return str_at(obj, "x-tyk-api-gateway", "info", "id");
	case TG_KIND_POLICY:
		id = str_at(obj, "id", NULL, NULL);
		return id ? id : str_at(obj, "_id", NULL, NULL);
	}
	return NULL;
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

/* Index of the gateway's objects by id, for one kind. */
struct actual_index {
	const cJSON **objs;
	const char **ids;
	char *seen; /* matched by a desired object */
	size_t len;
};

static int cmp_index(const void *a, const void *b, void *ctx)
{
	const struct actual_index *ix = ctx;

	return strcmp(ix->ids[*(const size_t *)a], ix->ids[*(const size_t *)b]);
}

static void index_build(struct actual_index *ix, enum tg_kind kind, const cJSON *list)
{
	const cJSON *c;
	size_t n = (size_t)cJSON_GetArraySize(list), i = 0;
	size_t *order;
	const cJSON **objs;
	const char **ids;

	ix->objs = tg_xcalloc(n, sizeof(*ix->objs));
	ix->ids = tg_xcalloc(n, sizeof(*ix->ids));
	ix->seen = tg_xcalloc(n, 1);
	cJSON_ArrayForEach(c, list) {
		const char *id = tg_plan_object_id(kind, c);

		if (!id)
			continue;
		ix->objs[i] = c;
		ix->ids[i] = id;
		i++;
	}
	ix->len = i;
	/* Sort so lookups are O(log n) and the plan order does not depend on
	 * the gateway's unstable list order. */
	order = tg_xcalloc(i ? i : 1, sizeof(*order));
	for (size_t k = 0; k < i; k++)
		order[k] = k;
	qsort_r(order, i, sizeof(*order), cmp_index, ix);
	objs = tg_xcalloc(i ? i : 1, sizeof(*objs));
	ids = tg_xcalloc(i ? i : 1, sizeof(*ids));
	for (size_t k = 0; k < i; k++) {
		objs[k] = ix->objs[order[k]];
		ids[k] = ix->ids[order[k]];
	}
	free(ix->objs);
	free(ix->ids);
	free(order);
	ix->objs = objs;
	ix->ids = ids;
}

static long index_find(const struct actual_index *ix, const char *id)
{
	size_t lo = 0, hi = ix->len;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->ids[mid], id);

		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static void index_release(struct actual_index *ix)
{
	free(ix->objs);
	free(ix->ids);
	free(ix->seen);
}

static int owned_by(const cJSON *obj, enum tg_kind kind, const char *sync, struct tg_marker *m)
{
	if (tg_marker_read(m, kind, obj))
		return 0;
	return m->sync && !strcmp(m->sync, sync);
}

static void plan_desired(struct tg_plan *plan, const struct tg_object *o, struct actual_index *ix,
			 const struct tg_plan_opts *opts)
{
	struct tg_plan_item *it = add_item(plan, o->kind, o->id);
	struct tg_marker m;
	char hash[65];
	long at = index_find(ix, o->id);
	int owned;

	it->name = o->name ? tg_xstrdup(o->name) : NULL;
	it->desired = o;
	if (at < 0) {
		it->action = TG_ACTION_CREATE;
		return;
	}
	ix->seen[at] = 1;
	it->actual = ix->objs[at];
	owned = owned_by(it->actual, o->kind, opts->sync_name, &m);
	it->owner_commit = m.commit ? tg_xstrdup(m.commit) : NULL;
	it->owner_file = m.file ? tg_xstrdup(m.file) : NULL;
	if (!owned && !opts->adopt) {
		it->action = TG_ACTION_CONFLICT;
		tg_marker_release(&m);
		return;
	}
	tg_diff_objects(&it->changes, o->kind, o->body, it->actual, &opts->secrets);
	tg_diff_hash(hash, o->kind, o->body);
	if (!owned || it->changes.len > 0 || !m.hash || strcmp(m.hash, hash)) {
		it->action = TG_ACTION_UPDATE;
		/* Same desired hash but different content: someone changed the
		 * gateway's copy by hand. */
		it->drifted = owned && m.hash && !strcmp(m.hash, hash) && it->changes.len > 0;
		if (it->drifted) {
			enum tg_drift_policy p = opts->drift;

			if (m.drift)
				p = !strcmp(m.drift, "warn") ? TG_DRIFT_WARN : TG_DRIFT_CORRECT;
			it->warn_only = p == TG_DRIFT_WARN;
		}
	}
	tg_marker_release(&m);
}

static void plan_deletes(struct tg_plan *plan, enum tg_kind kind, struct actual_index *ix,
			 const struct tg_plan_opts *opts)
{
	for (size_t i = 0; i < ix->len; i++) {
		struct tg_marker m;
		struct tg_plan_item *it;

		if (!owned_by(ix->objs[i], kind, opts->sync_name, &m)) {
			tg_marker_release(&m);
			continue;
		}
		plan->owned++;
		if (ix->seen[i] || !opts->prune ||
		    (kind == TG_KIND_POLICY && !strcmp(ix->ids[i], TG_TOMBSTONE_POLICY_ID))) {
			tg_marker_release(&m);
			continue;
		}
		it = add_item(plan, kind, ix->ids[i]);
		it->action = TG_ACTION_DELETE;
		it->actual = ix->objs[i];
		it->owner_commit = m.commit ? tg_xstrdup(m.commit) : NULL;
		it->owner_file = m.file ? tg_xstrdup(m.file) : NULL;
		tg_marker_release(&m);
	}
}

void tg_plan_build(struct tg_plan *out, const struct tg_desired *d,
		   cJSON *const actual[TG_KIND_COUNT], const struct tg_plan_opts *opts)
{
	struct actual_index ix[TG_KIND_COUNT];
	static const enum tg_kind write_order[] = { TG_KIND_API, TG_KIND_OAS_API, TG_KIND_POLICY };
	static const enum tg_kind delete_order[] = { TG_KIND_POLICY, TG_KIND_OAS_API, TG_KIND_API };

	memset(out, 0, sizeof(*out));
	for (int k = 0; k < TG_KIND_COUNT; k++)
		index_build(&ix[k], (enum tg_kind)k, actual[k]);
	for (size_t w = 0; w < TG_ARRAY_SIZE(write_order); w++)
		for (size_t i = 0; i < d->len; i++)
			if (d->objects[i].kind == write_order[w])
				plan_desired(out, &d->objects[i], &ix[write_order[w]], opts);
	for (size_t w = 0; w < TG_ARRAY_SIZE(delete_order); w++)
		plan_deletes(out, delete_order[w], &ix[delete_order[w]], opts);
	for (size_t i = 0; i < out->len; i++)
		out->counts[out->items[i].action]++;
	for (int k = 0; k < TG_KIND_COUNT; k++)
		index_release(&ix[k]);
}

void tg_plan_release(struct tg_plan *plan)
{
	for (size_t i = 0; i < plan->len; i++) {
		struct tg_plan_item *it = &plan->items[i];

		free(it->id);
		free(it->name);
		tg_changes_release(&it->changes);
		free(it->owner_commit);
		free(it->owner_file);
	}
	free(plan->items);
	memset(plan, 0, sizeof(*plan));
}
