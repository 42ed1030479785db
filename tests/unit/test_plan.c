/* Planner: ownership, conflicts, prune, drift and apply order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/common.h"
#include "tg/diff.h"
#include "tg/marker.h"
#include "tg/plan.h"

static void add_desired(struct tg_desired *d, enum tg_kind kind, const char *id, const char *json)
{
	struct tg_object *o;

	d->objects = tg_xreallocarray(d->objects, d->len + 1, sizeof(*d->objects));
	o = &d->objects[d->len++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->id = tg_xstrdup(id);
	o->file = tg_xasprintf("%s.json", id);
	o->body = cJSON_Parse(json);
	assert_non_null(o->body);
}

/* A gateway copy of a desired object, stamped as if sync `owner` wrote it. */
static cJSON *gateway_copy(enum tg_kind kind, const char *json, const char *owner,
			   const char *hash_of)
{
	cJSON *obj = cJSON_Parse(json);
	struct tg_marker m = { 0 };
	char hash[65];

	if (owner) {
		cJSON *h = cJSON_Parse(hash_of ? hash_of : json);

		tg_diff_hash(hash, kind, h);
		cJSON_Delete(h);
		m.sync = (char *)owner;
		m.commit = (char *)"c0ffee";
		m.hash = hash;
		tg_marker_stamp(obj, kind, &m);
	}
	return obj;
}

struct fixture {
	struct tg_desired *d;
	cJSON *actual[TG_KIND_COUNT];
	struct tg_plan plan;
	struct tg_plan_opts opts;
};

static int setup(void **state)
{
	struct fixture *f = tg_xcalloc(1, sizeof(*f));

	f->d = tg_xcalloc(1, sizeof(*f->d));
	for (int k = 0; k < TG_KIND_COUNT; k++)
		f->actual[k] = cJSON_CreateArray();
	f->opts.sync_name = "prod";
	f->opts.prune = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tg_plan_release(&f->plan);
	tg_desired_free(f->d);
	for (int k = 0; k < TG_KIND_COUNT; k++)
		cJSON_Delete(f->actual[k]);
	free(f);
	return 0;
}

static const struct tg_plan_item *find(const struct tg_plan *p, const char *id)
{
	for (size_t i = 0; i < p->len; i++)
		if (!strcmp(p->items[i].id, id))
			return &p->items[i];
	fail_msg("no plan item '%s'", id);
	return NULL;
}

static void test_plan__creates_missing_and_keeps_unchanged(void **state)
{
	struct fixture *f = *state;
	const char *a = "{\"api_id\":\"a\",\"name\":\"A\"}";

	add_desired(f->d, TG_KIND_API, "a", a);
	add_desired(f->d, TG_KIND_API, "b", "{\"api_id\":\"b\"}");
	cJSON_AddItemToArray(f->actual[TG_KIND_API], gateway_copy(TG_KIND_API, a, "prod", NULL));
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(find(&f->plan, "a")->action, TG_ACTION_NONE);
	assert_int_equal(find(&f->plan, "b")->action, TG_ACTION_CREATE);
	assert_int_equal(f->plan.owned, 1);
}

static void test_plan__git_change_is_an_update_not_drift(void **state)
{
	struct fixture *f = *state;

	add_desired(f->d, TG_KIND_API, "a", "{\"api_id\":\"a\",\"name\":\"new\"}");
	cJSON_AddItemToArray(
		f->actual[TG_KIND_API],
		gateway_copy(TG_KIND_API, "{\"api_id\":\"a\",\"name\":\"old\"}", "prod", NULL));
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(find(&f->plan, "a")->action, TG_ACTION_UPDATE);
	assert_false(find(&f->plan, "a")->drifted);
	assert_string_equal(find(&f->plan, "a")->changes.items[0].path, "name");
}

static void test_plan__hand_edit_is_drift_and_warn_policy_holds_it(void **state)
{
	struct fixture *f = *state;
	const char *want = "{\"api_id\":\"a\",\"name\":\"A\"}";

	add_desired(f->d, TG_KIND_API, "a", want);
	cJSON_AddItemToArray(
		f->actual[TG_KIND_API],
		gateway_copy(TG_KIND_API, "{\"api_id\":\"a\",\"name\":\"edited\"}", "prod", want));
	f->opts.drift = TG_DRIFT_WARN;
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(find(&f->plan, "a")->action, TG_ACTION_UPDATE);
	assert_true(find(&f->plan, "a")->drifted);
	assert_true(find(&f->plan, "a")->warn_only);
}

static void test_plan__unowned_same_id_is_conflict_unless_adopted(void **state)
{
	struct fixture *f = *state;

	add_desired(f->d, TG_KIND_POLICY, "p", "{\"id\":\"p\",\"rate\":1}");
	cJSON_AddItemToArray(f->actual[TG_KIND_POLICY],
			     gateway_copy(TG_KIND_POLICY, "{\"id\":\"p\",\"rate\":2}", NULL, NULL));
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(find(&f->plan, "p")->action, TG_ACTION_CONFLICT);
	tg_plan_release(&f->plan);
	f->opts.adopt = 1;
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(find(&f->plan, "p")->action, TG_ACTION_UPDATE);
}

static void test_plan__object_of_another_sync_is_a_conflict(void **state)
{
	struct fixture *f = *state;
	const char *a = "{\"api_id\":\"a\"}";

	add_desired(f->d, TG_KIND_API, "a", a);
	cJSON_AddItemToArray(f->actual[TG_KIND_API], gateway_copy(TG_KIND_API, a, "staging", NULL));
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(find(&f->plan, "a")->action, TG_ACTION_CONFLICT);
}

static void test_plan__prunes_only_owned_objects(void **state)
{
	struct fixture *f = *state;

	cJSON_AddItemToArray(f->actual[TG_KIND_API],
			     gateway_copy(TG_KIND_API, "{\"api_id\":\"mine\"}", "prod", NULL));
	cJSON_AddItemToArray(f->actual[TG_KIND_API],
			     gateway_copy(TG_KIND_API, "{\"api_id\":\"theirs\"}", NULL, NULL));
	cJSON_AddItemToArray(f->actual[TG_KIND_API],
			     gateway_copy(TG_KIND_API, "{\"api_id\":\"other\"}", "staging", NULL));
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(f->plan.len, 1);
	assert_int_equal(find(&f->plan, "mine")->action, TG_ACTION_DELETE);
	tg_plan_release(&f->plan);
	f->opts.prune = 0;
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(f->plan.len, 0);
}

static void test_plan__never_prunes_the_tombstone_policy(void **state)
{
	struct fixture *f = *state;

	cJSON_AddItemToArray(f->actual[TG_KIND_POLICY],
			     gateway_copy(TG_KIND_POLICY, "{\"id\":\"" TG_TOMBSTONE_POLICY_ID "\"}",
					  "prod", NULL));
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(f->plan.len, 0);
}

static void test_plan__orders_api_writes_policy_writes_policy_deletes_api_deletes(void **state)
{
	struct fixture *f = *state;

	add_desired(f->d, TG_KIND_POLICY, "p-new", "{\"id\":\"p-new\"}");
	add_desired(f->d, TG_KIND_API, "a-new", "{\"api_id\":\"a-new\"}");
	add_desired(f->d, TG_KIND_OAS_API, "o-new", "{\"openapi\":\"3.0.3\"}");
	cJSON_AddItemToArray(f->actual[TG_KIND_API],
			     gateway_copy(TG_KIND_API, "{\"api_id\":\"a-old\"}", "prod", NULL));
	cJSON_AddItemToArray(f->actual[TG_KIND_POLICY],
			     gateway_copy(TG_KIND_POLICY, "{\"id\":\"p-old\"}", "prod", NULL));
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_int_equal(f->plan.len, 5);
	assert_string_equal(f->plan.items[0].id, "a-new");
	assert_string_equal(f->plan.items[1].id, "o-new");
	assert_string_equal(f->plan.items[2].id, "p-new");
	assert_string_equal(f->plan.items[3].id, "p-old");
	assert_string_equal(f->plan.items[4].id, "a-old");
	assert_int_equal(f->plan.counts[TG_ACTION_CREATE], 3);
	assert_int_equal(f->plan.counts[TG_ACTION_DELETE], 2);
}

static void test_plan__does_not_depend_on_gateway_list_order(void **state)
{
	struct fixture *f = *state;
	const char *ids[] = { "c", "a", "b" };

	for (size_t i = 0; i < 3; i++) {
		char *json = tg_xasprintf("{\"api_id\":\"%s\"}", ids[i]);

		cJSON_AddItemToArray(f->actual[TG_KIND_API],
				     gateway_copy(TG_KIND_API, json, "prod", NULL));
		free(json);
	}
	tg_plan_build(&f->plan, f->d, f->actual, &f->opts);
	assert_string_equal(f->plan.items[0].id, "a");
	assert_string_equal(f->plan.items[1].id, "b");
	assert_string_equal(f->plan.items[2].id, "c");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_plan__creates_missing_and_keeps_unchanged,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan__git_change_is_an_update_not_drift, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_plan__hand_edit_is_drift_and_warn_policy_holds_it, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_plan__unowned_same_id_is_conflict_unless_adopted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan__object_of_another_sync_is_a_conflict,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan__prunes_only_owned_objects, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_plan__never_prunes_the_tombstone_policy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_plan__orders_api_writes_policy_writes_policy_deletes_api_deletes,
			setup, teardown),
		cmocka_unit_test_setup_teardown(test_plan__does_not_depend_on_gateway_list_order,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
