/* Ownership marker slots per kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "tg/marker.h"

static void stamp_read_strip(enum tg_kind kind, const char *container)
{
	cJSON *obj = cJSON_Parse("{\"x\":1}");
	struct tg_marker m = { 0 }, got;

	m.sync = (char *)"prod";
	m.commit = (char *)"0123456789abcdef0123456789abcdef01234567";
	m.file = (char *)"apis/a.json";
	m.hash = (char *)"h";
	tg_marker_stamp(obj, kind, &m);
	if (container)
		assert_non_null(
			cJSON_GetObjectItem(cJSON_GetObjectItem(obj, container), "tyk_gitops"));
	else
		assert_non_null(cJSON_GetObjectItem(obj, "x-tyk-gitops"));
	assert_int_equal(tg_marker_read(&got, kind, obj), 0);
	assert_string_equal(got.sync, "prod");
	assert_string_equal(got.file, "apis/a.json");
	assert_null(got.drift);
	tg_marker_release(&got);
	tg_marker_strip(obj, kind);
	assert_int_equal(tg_marker_read(&got, kind, obj), TG_ENOTFOUND);
	tg_marker_release(&got);
	/* The container the marker created is removed with it. */
	assert_int_equal(cJSON_GetArraySize(obj), 1);
	cJSON_Delete(obj);
}

static void test_marker__classic_api_uses_config_data(void **state)
{
	(void)state;
	stamp_read_strip(TG_KIND_API, "config_data");
}

static void test_marker__policy_uses_meta_data(void **state)
{
	(void)state;
	stamp_read_strip(TG_KIND_POLICY, "meta_data");
}

static void test_marker__oas_uses_top_level_extension(void **state)
{
	(void)state;
	stamp_read_strip(TG_KIND_OAS_API, NULL);
}

static void test_marker__keeps_users_other_config_data(void **state)
{
	cJSON *obj = cJSON_Parse("{\"config_data\":{\"mine\":true}}");
	struct tg_marker m = { 0 };

	(void)state;
	m.sync = (char *)"s";
	tg_marker_stamp(obj, TG_KIND_API, &m);
	tg_marker_strip(obj, TG_KIND_API);
	assert_true(
		cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(obj, "config_data"), "mine")));
	cJSON_Delete(obj);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_marker__classic_api_uses_config_data),
		cmocka_unit_test(test_marker__policy_uses_meta_data),
		cmocka_unit_test(test_marker__oas_uses_top_level_extension),
		cmocka_unit_test(test_marker__keeps_users_other_config_data),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
