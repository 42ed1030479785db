/* Pass-safety rules (see include/tg/safety.h). */
#include "tg/safety.h"

#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/tykobj.h"
#include "tg/banned.h"

void tg_idset_add(struct tg_idset *s, const char *id)
{
	if (s->len == s->alloc) {
		s->alloc = s->alloc ? s->alloc * 2 : 16;
		s->ids = tg_xreallocarray(s->ids, s->alloc, sizeof(*s->ids));
	}
	s->ids[s->len++] = id;
	s->sealed = 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void tg_idset_seal(struct tg_idset *s)
{
	if (s->len > 1)
		qsort(s->ids, s->len, sizeof(*s->ids), cmp_str);
	s->sealed = 1;
}

int tg_idset_has(const struct tg_idset *s, const char *id)
{
	return s->len && bsearch(&id, s->ids, s->len, sizeof(*s->ids), cmp_str) != NULL;
}

void tg_idset_release(struct tg_idset *s)
{
	free(s->ids);
	memset(s, 0, sizeof(*s));
}

void tg_safety_gateway_apis(struct tg_idset *out, cJSON *const actual[TG_KIND_COUNT])
{
	const cJSON *c;

	for (int k = TG_KIND_API; k <= TG_KIND_OAS_API; k++)
		cJSON_ArrayForEach(c, actual[k])
		{
			const char *id = tg_tyk_id((enum tg_kind)k, c);

			if (id)
				tg_idset_add(out, id);
		}
}

void tg_safety_available_apis(struct tg_idset *out, const struct tg_plan *plan, const int *written,
			      cJSON *const actual[TG_KIND_COUNT])
{
	tg_safety_gateway_apis(out, actual);
	for (size_t i = 0; i < plan->len; i++)
		if (plan->items[i].kind != TG_KIND_POLICY &&
		    plan->items[i].action == TG_ACTION_CREATE && written[i])
			tg_idset_add(out, plan->items[i].id);
	tg_idset_seal(out);
}

struct missing_ctx {
	const struct tg_idset *apis;
	const char *missing;
};

static int check_ref(void *ctx, const char *api_id, const cJSON *entry, int is_key)
{
	struct missing_ctx *m = ctx;

	(void)entry;
	(void)is_key;
	if (tg_idset_has(m->apis, api_id))
		return 0;
	m->missing = api_id;
	return 1;
}

int tg_safety_policy_refs_ok(const cJSON *policy, const struct tg_idset *apis, const char **missing)
{
	struct missing_ctx m = { apis, NULL };

	if (!tg_tyk_policy_refs(policy, check_ref, &m))
		return 1;
	*missing = m.missing;
	return 0;
}

static int add_ref(void *ctx, const char *api_id, const cJSON *entry, int is_key)
{
	(void)entry;
	(void)is_key;
	tg_idset_add(ctx, api_id);
	return 0;
}

static int is_policy_write(const struct tg_plan_item *it)
{
	return it->kind == TG_KIND_POLICY && it->desired &&
	       (it->action == TG_ACTION_CREATE || it->action == TG_ACTION_UPDATE) && !it->warn_only;
}

void tg_safety_referenced_apis(struct tg_idset *out, const struct tg_plan *plan, const int *written,
			       cJSON *const actual[TG_KIND_COUNT])
{
	struct tg_idset gone = { 0 };
	const cJSON *pol;

	for (size_t i = 0; i < plan->len; i++) {
		const struct tg_plan_item *it = &plan->items[i];

		if (it->kind != TG_KIND_POLICY || !written[i])
			continue;
		/* Deleted, or replaced by a body whose references count instead. */
		tg_idset_add(&gone, it->id);
		if (is_policy_write(it))
			tg_tyk_policy_refs(tg_object_body(it->desired), add_ref, out);
	}
	tg_idset_seal(&gone);
	cJSON_ArrayForEach(pol, actual[TG_KIND_POLICY])
	{
		const char *id = tg_tyk_id(TG_KIND_POLICY, pol);

		if (!id || !tg_idset_has(&gone, id))
			tg_tyk_policy_refs(pol, add_ref, out);
	}
	tg_idset_release(&gone);
	tg_idset_seal(out);
}

size_t tg_safety_policies_left(const struct tg_plan *plan, const int *written,
			       cJSON *const actual[TG_KIND_COUNT])
{
	size_t n = (size_t)cJSON_GetArraySize(actual[TG_KIND_POLICY]);

	for (size_t i = 0; i < plan->len; i++) {
		const struct tg_plan_item *it = &plan->items[i];

		if (it->kind != TG_KIND_POLICY || !written[i])
			continue;
		if (it->action == TG_ACTION_DELETE)
			n--;
		else if (it->action == TG_ACTION_CREATE)
			n++;
	}
	return n;
}

long long tg_safety_max_deletes(long long max_delete, size_t owned)
{
	long long quarter = (long long)(owned + 3) / 4;

	if (max_delete >= 0)
		return max_delete;
	return quarter > 10 ? quarter : 10;
}
