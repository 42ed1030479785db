/* Semantic diff: what counts as drift and what does not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/diff.h"

static size_t diff_count(const char *desired, const char *actual, enum tg_kind kind,
			 struct tg_changes *out, const struct tg_secrets *secrets)
{
	cJSON *d = cJSON_Parse(desired), *a = cJSON_Parse(actual);

	assert_non_null(d);
	assert_non_null(a);
	tg_diff_objects(out, kind, d, a, secrets);
	cJSON_Delete(d);
	cJSON_Delete(a);
	return out->len;
}

static void test_diff__finds_the_one_change_in_wide_objects(void **state)
{
	cJSON *d = cJSON_CreateObject(), *a = cJSON_CreateObject();
	struct tg_changes c = { 0 };
	char key[32];

	(void)state;
	/* Insertion orders differ, so neither side's walk lines up with the other's. */
	for (int i = 0; i < 2000; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cJSON_AddNumberToObject(d, key, i);
		snprintf(key, sizeof(key), "k%d", 1999 - i);
		cJSON_AddNumberToObject(a, key, 1999 - i == 1234 ? -1 : 1999 - i);
	}
	cJSON_AddStringToObject(a, "only_on_gateway", "x");
	tg_diff_objects(&c, TG_KIND_API, d, a, NULL);
	assert_int_equal(c.len, 2);
	assert_string_equal(c.items[0].path, "k1234");
	assert_string_equal(c.items[0].before, "-1");
	assert_string_equal(c.items[0].after, "1234");
	assert_string_equal(c.items[1].path, "only_on_gateway");
	assert_null(c.items[1].after);
	tg_changes_release(&c);
	cJSON_Delete(d);
	cJSON_Delete(a);
}

static void test_diff__ignores_key_order_and_number_format(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"a\":1,\"b\":{\"x\":\"y\",\"n\":2.0}}",
				    "{\"b\":{\"n\":2,\"x\":\"y\"},\"a\":1.0}", TG_KIND_API, &c,
				    NULL),
			 0);
	tg_changes_release(&c);
}

static void test_diff__ignores_gateway_defaults(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(
		diff_count("{\"api_id\":\"a\"}",
			   "{\"api_id\":\"a\",\"use_oauth2\":false,\"slug\":\"\",\"tags\":null,"
			   "\"auth\":{\"name\":\"\",\"use_param\":false},\"list\":[],\"n\":0}",
			   TG_KIND_API, &c, NULL),
		0);
	tg_changes_release(&c);
}

static void test_diff__ignores_fields_the_gateway_dropped(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"api_id\":\"a\",\"future_field\":{\"x\":1}}",
				    "{\"api_id\":\"a\"}", TG_KIND_API, &c, NULL),
			 0);
	tg_changes_release(&c);
}

static void test_diff__ignores_oas_servers_the_gateway_adds(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(
		diff_count("{\"openapi\":\"3.0.3\"}",
			   "{\"openapi\":\"3.0.3\",\"servers\":[{\"url\":\"http://gw/x/\"}]}",
			   TG_KIND_OAS_API, &c, NULL),
		0);
	tg_changes_release(&c);
}

static void test_diff__ignores_marker(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(
		diff_count(
			"{\"id\":\"p\"}",
			"{\"id\":\"p\",\"meta_data\":{\"tyk_gitops\":{\"sync\":\"s\",\"commit\":\"abc\"}}}",
			TG_KIND_POLICY, &c, NULL),
		0);
	tg_changes_release(&c);
}

static void test_diff__reports_changed_value_with_path(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"proxy\":{\"target_url\":\"http://new\"}}",
				    "{\"proxy\":{\"target_url\":\"http://old\",\"x\":false}}",
				    TG_KIND_API, &c, NULL),
			 1);
	assert_string_equal(c.items[0].path, "proxy.target_url");
	assert_string_equal(c.items[0].before, "\"http://old\"");
	assert_string_equal(c.items[0].after, "\"http://new\"");
	tg_changes_release(&c);
}

static void test_diff__reports_non_default_field_added_by_hand(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"a\":1}", "{\"a\":1,\"extra\":\"set by hand\"}", TG_KIND_API,
				    &c, NULL),
			 1);
	assert_string_equal(c.items[0].path, "extra");
	assert_null(c.items[0].after);
	tg_changes_release(&c);
}

static void test_diff__reports_array_element_change(void **state)
{
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(
		diff_count("{\"v\":[\"a\",\"b\"]}", "{\"v\":[\"a\",\"c\"]}", TG_KIND_API, &c, NULL),
		1);
	assert_string_equal(c.items[0].path, "v[1]");
	tg_changes_release(&c);
}

static void test_diff__redacts_secrets_in_both_values(void **state)
{
	const char *const values[] = { "hunter2" };
	struct tg_secrets secrets = { values, 1 };
	struct tg_changes c = { 0 };

	(void)state;
	assert_int_equal(diff_count("{\"u\":\"http://x/hunter2\"}",
				    "{\"u\":\"http://x/old-hunter2-z\"}", TG_KIND_API, &c,
				    &secrets),
			 1);
	assert_string_equal(c.items[0].before, "\"***\"");
	assert_string_equal(c.items[0].after, "\"***\"");
	tg_changes_release(&c);
}

static void test_diff__hash_ignores_key_order_and_marker(void **state)
{
	cJSON *a = cJSON_Parse("{\"a\":1,\"b\":{\"c\":2,\"d\":3}}");
	cJSON *b = cJSON_Parse(
		"{\"b\":{\"d\":3,\"c\":2},\"a\":1,\"config_data\":{\"tyk_gitops\":{\"x\":1}}}");
	cJSON *c = cJSON_Parse("{\"b\":{\"d\":4,\"c\":2},\"a\":1}");
	char ha[65], hb[65], hc[65];

	(void)state;
	tg_diff_hash(ha, TG_KIND_API, a);
	tg_diff_hash(hb, TG_KIND_API, b);
	tg_diff_hash(hc, TG_KIND_API, c);
	assert_string_equal(ha, hb);
	assert_string_not_equal(ha, hc);
	assert_int_equal(strlen(ha), 64);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diff__ignores_key_order_and_number_format),
		cmocka_unit_test(test_diff__finds_the_one_change_in_wide_objects),
		cmocka_unit_test(test_diff__ignores_gateway_defaults),
		cmocka_unit_test(test_diff__ignores_fields_the_gateway_dropped),
		cmocka_unit_test(test_diff__ignores_oas_servers_the_gateway_adds),
		cmocka_unit_test(test_diff__ignores_marker),
		cmocka_unit_test(test_diff__reports_changed_value_with_path),
		cmocka_unit_test(test_diff__reports_non_default_field_added_by_hand),
		cmocka_unit_test(test_diff__reports_array_element_change),
		cmocka_unit_test(test_diff__redacts_secrets_in_both_values),
		cmocka_unit_test(test_diff__hash_ignores_key_order_and_marker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
