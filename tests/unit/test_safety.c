/* Pass-safety rules and Tyk object ids/references, without a gateway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/safety.h"
#include "tg/tykobj.h"

/* A plan item over a desired body (or a delete when body is NULL). */
struct fixture {
	struct tg_plan plan;
	struct tg_object objs[8];
	int written[8];
};

static void item(struct fixture *f, enum tg_kind kind, const char *id, enum tg_action action,
		 const char *body, int written)
{
	struct tg_plan_item *it = &f->plan.items[f->plan.len];
	struct tg_object *o = &f->objs[f->plan.len];

	memset(it, 0, sizeof(*it));
	it->kind = kind;
	it->id = (char *)id;
	it->action = action;
	if (body) {
		memset(o, 0, sizeof(*o));
		o->kind = kind;
		o->body = cJSON_Parse(body);
		assert_non_null(o->body);
		it->desired = o;
	}
	f->written[f->plan.len++] = written;
}

static void fixture_init(struct fixture *f)
{
	memset(f, 0, sizeof(*f));
	f->plan.items = calloc(8, sizeof(*f->plan.items));
	f->plan.alloc = 8;
}

static void fixture_release(struct fixture *f)
{
	for (size_t i = 0; i < f->plan.len; i++)
		if (f->plan.items[i].desired)
			cJSON_Delete(f->objs[i].body);
	free(f->plan.items);
}

static void lists(cJSON *actual[TG_KIND_COUNT], const char *apis, const char *oas,
		  const char *policies)
{
	actual[TG_KIND_API] = cJSON_Parse(apis);
	actual[TG_KIND_OAS_API] = cJSON_Parse(oas);
	actual[TG_KIND_POLICY] = cJSON_Parse(policies);
}

static void lists_free(cJSON *actual[TG_KIND_COUNT])
{
	for (int k = 0; k < TG_KIND_COUNT; k++)
		cJSON_Delete(actual[k]);
}

static void test_tykobj__policy_id_falls_back_to_dashboard_id(void **state)
{
	cJSON *a = cJSON_Parse("{\"id\":\"\",\"_id\":\"5e1\"}");
	cJSON *b = cJSON_Parse("{\"id\":\"p\",\"_id\":\"5e1\"}");
	cJSON *c = cJSON_Parse("{\"x-tyk-api-gateway\":{\"info\":{\"id\":\"pets\"}}}");

	(void)state;
	assert_string_equal(tg_tyk_policy_id_field(a), "_id");
	assert_string_equal(tg_tyk_id(TG_KIND_POLICY, a), "5e1");
	assert_string_equal(tg_tyk_id(TG_KIND_POLICY, b), "p");
	assert_string_equal(tg_tyk_id(TG_KIND_OAS_API, c), "pets");
	assert_null(tg_tyk_id(TG_KIND_API, c));
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(c);
}

static int collect(void *ctx, const char *api_id, const cJSON *entry, int is_key)
{
	struct tg_idset *s = ctx;

	(void)entry;
	(void)is_key;
	tg_idset_add(s, api_id);
	return 0;
}

static void test_tykobj__policy_references_keys_and_api_ids(void **state)
{
	cJSON *p =
		cJSON_Parse("{\"access_rights\":{\"a\":{\"api_id\":\"a\"},\"b\":{\"api_id\":\"c\"},"
			    "\"d\":{},\"\":{\"api_id\":\"e\"}}}");
	struct tg_idset s = { 0 };

	(void)state;
	tg_tyk_policy_refs(p, collect, &s);
	assert_int_equal(s.len, 5); /* a, b, c, d, e: a counted once */
	tg_idset_seal(&s);
	assert_true(tg_idset_has(&s, "c") && tg_idset_has(&s, "e") && !tg_idset_has(&s, ""));
	tg_idset_release(&s);
	cJSON_Delete(p);
}

static void test_safety__policy_waits_for_an_api_whose_create_failed(void **state)
{
	struct fixture f;
	cJSON *actual[TG_KIND_COUNT];
	struct tg_idset apis = { 0 };
	const char *missing = NULL;
	cJSON *pol = cJSON_Parse("{\"access_rights\":{\"old\":{},\"new\":{},\"broken\":{}}}");

	(void)state;
	fixture_init(&f);
	lists(actual, "[{\"api_id\":\"old\"}]", "[]", "[]");
	item(&f, TG_KIND_API, "new", TG_ACTION_CREATE, "{\"api_id\":\"new\"}", 1);
	item(&f, TG_KIND_API, "broken", TG_ACTION_CREATE, "{\"api_id\":\"broken\"}", 0);
	tg_safety_available_apis(&apis, &f.plan, f.written, actual);
	assert_false(tg_safety_policy_refs_ok(pol, &apis, &missing));
	assert_string_equal(missing, "broken");
	f.written[1] = 1;
	tg_idset_release(&apis);
	tg_safety_available_apis(&apis, &f.plan, f.written, actual);
	assert_true(tg_safety_policy_refs_ok(pol, &apis, &missing));
	tg_idset_release(&apis);
	cJSON_Delete(pol);
	lists_free(actual);
	fixture_release(&f);
}

static void test_safety__api_stays_while_a_remaining_policy_references_it(void **state)
{
	struct fixture f;
	cJSON *actual[TG_KIND_COUNT];
	struct tg_idset refs = { 0 };

	(void)state;
	fixture_init(&f);
	lists(actual, "[{\"api_id\":\"a\"},{\"api_id\":\"b\"},{\"api_id\":\"c\"}]", "[]",
	      "[{\"id\":\"keep\",\"access_rights\":{\"a\":{}}},"
	      "{\"id\":\"gone\",\"access_rights\":{\"b\":{}}},"
	      "{\"id\":\"failed\",\"access_rights\":{\"c\":{}}},"
	      "{\"id\":\"rewritten\",\"access_rights\":{\"c\":{}}}]");
	item(&f, TG_KIND_POLICY, "gone", TG_ACTION_DELETE, NULL, 1);
	item(&f, TG_KIND_POLICY, "failed", TG_ACTION_DELETE, NULL, 0);
	item(&f, TG_KIND_POLICY, "rewritten", TG_ACTION_UPDATE,
	     "{\"id\":\"rewritten\",\"access_rights\":{\"b\":{}}}", 1);
	tg_safety_referenced_apis(&refs, &f.plan, f.written, actual);
	/* a: by "keep"; c: by "failed", whose delete did not happen; b: by
	 * the new body of "rewritten", not by the deleted "gone". */
	assert_true(tg_idset_has(&refs, "a"));
	assert_true(tg_idset_has(&refs, "b"));
	assert_true(tg_idset_has(&refs, "c"));
	tg_idset_release(&refs);
	f.written[2] = 0; /* the rewrite failed: its old body still counts */
	f.written[1] = 1;
	tg_safety_referenced_apis(&refs, &f.plan, f.written, actual);
	assert_false(tg_idset_has(&refs, "b"));
	assert_true(tg_idset_has(&refs, "c"));
	tg_idset_release(&refs);
	lists_free(actual);
	fixture_release(&f);
}

static void test_safety__deleting_the_last_policy_leaves_none(void **state)
{
	struct fixture f;
	cJSON *actual[TG_KIND_COUNT];

	(void)state;
	fixture_init(&f);
	lists(actual, "[]", "[]", "[{\"id\":\"p\"},{\"id\":\"q\"}]");
	item(&f, TG_KIND_POLICY, "p", TG_ACTION_DELETE, NULL, 1);
	item(&f, TG_KIND_POLICY, "q", TG_ACTION_DELETE, NULL, 0);
	assert_int_equal(tg_safety_policies_left(&f.plan, f.written, actual), 1);
	f.written[1] = 1;
	assert_int_equal(tg_safety_policies_left(&f.plan, f.written, actual), 0);
	item(&f, TG_KIND_POLICY, "r", TG_ACTION_CREATE, "{\"id\":\"r\"}", 1);
	assert_int_equal(tg_safety_policies_left(&f.plan, f.written, actual), 1);
	lists_free(actual);
	fixture_release(&f);
}

static void test_safety__max_deletes_is_ten_or_a_quarter(void **state)
{
	(void)state;
	assert_int_equal(tg_safety_max_deletes(-1, 0), 10);
	assert_int_equal(tg_safety_max_deletes(-1, 40), 10);
	assert_int_equal(tg_safety_max_deletes(-1, 41), 11);
	assert_int_equal(tg_safety_max_deletes(-1, 1000), 250);
	assert_int_equal(tg_safety_max_deletes(0, 1000), 0);
	assert_int_equal(tg_safety_max_deletes(3, 1000), 3);
}

static void test_tykobj__names_what_an_api_needs_from_the_gateway(void **state)
{
	static const struct {
		enum tg_kind kind;
		const char *body, *expect;
	} cases[] = {
		{ TG_KIND_API, "{\"custom_middleware_bundle\":\"b.zip\"}",
		  "plugin bundle 'b.zip'" },
		{ TG_KIND_API,
		  "{\"custom_middleware\":{\"pre\":[{\"name\":\"x\",\"path\":\"m/x.js\"}]}}",
		  "middleware file 'm/x.js'" },
		{ TG_KIND_API, "{\"certificates\":[\"cert-1\"]}", "certificate 'cert-1' by id" },
		{ TG_KIND_OAS_API,
		  "{\"x-tyk-api-gateway\":{\"middleware\":{\"global\":{\"pluginConfig\":"
		  "{\"bundle\":{\"path\":\"o.zip\"}}}}}}",
		  "plugin bundle 'o.zip'" },
		{ TG_KIND_OAS_API,
		  "{\"x-tyk-api-gateway\":{\"server\":{\"clientCertificates\":{\"allowlist\":[\"c\"]}}}}",
		  "client certificates by id" },
		{ TG_KIND_API, "{\"custom_middleware_bundle\":\"\",\"certificates\":[]}", NULL },
	};
	char out[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *b = cJSON_Parse(cases[i].body);
		int found = tg_tyk_external_dependency(out, sizeof(out), cases[i].kind, b);

		assert_non_null(b);
		if (cases[i].expect) {
			assert_true(found);
			assert_non_null(strstr(out, cases[i].expect));
		} else {
			assert_false(found);
		}
		cJSON_Delete(b);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tykobj__policy_id_falls_back_to_dashboard_id),
		cmocka_unit_test(test_tykobj__policy_references_keys_and_api_ids),
		cmocka_unit_test(test_tykobj__names_what_an_api_needs_from_the_gateway),
		cmocka_unit_test(test_safety__policy_waits_for_an_api_whose_create_failed),
		cmocka_unit_test(test_safety__api_stays_while_a_remaining_policy_references_it),
		cmocka_unit_test(test_safety__deleting_the_last_policy_leaves_none),
		cmocka_unit_test(test_safety__max_deletes_is_ten_or_a_quarter),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
