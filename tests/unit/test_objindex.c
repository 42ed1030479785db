/* Member lookup for wide objects: the same answers as cJSON's own walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tg/objindex.h"

static cJSON *object_of(int n)
{
	cJSON *o = cJSON_CreateObject();
	char key[32];

	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		cJSON_AddNumberToObject(o, key, i);
	}
	return o;
}

static void expect_all(struct tg_objindex *ix, int n)
{
	char key[32];

	for (int i = 0; i < n; i++) {
		const cJSON *v;

		snprintf(key, sizeof(key), "k%d", i);
		v = tg_objindex_get(ix, key);
		assert_non_null(v);
		assert_int_equal(v->valueint, i);
	}
	assert_null(tg_objindex_get(ix, "absent"));
	assert_null(tg_objindex_get(ix, "K1")); /* case-sensitive */
}

static void test_objindex__finds_members_of_small_and_wide_objects(void **state)
{
	static const int sizes[] = { 0, 1, 16, 17, 1000 };

	(void)state;
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		cJSON *o = object_of(sizes[s]);
		struct tg_objindex ix;

		tg_objindex_init(&ix, o);
		expect_all(&ix, sizes[s]);
		tg_objindex_release(&ix);
		cJSON_Delete(o);
	}
}

static void test_objindex__follows_members_added_while_parsing(void **state)
{
	cJSON *o = cJSON_CreateObject();
	struct tg_objindex ix;
	char key[32];

	(void)state;
	tg_objindex_init(&ix, o);
	for (int i = 0; i < 5000; i++) {
		cJSON *v = cJSON_CreateNumber(i);

		snprintf(key, sizeof(key), "k%d", i);
		/* What the parsers do: look up (duplicate?), then add. */
		assert_null(tg_objindex_get(&ix, key));
		cJSON_AddItemToObject(o, key, v);
		tg_objindex_added(&ix, v);
		assert_ptr_equal(tg_objindex_get(&ix, key), v);
	}
	expect_all(&ix, 5000);
	tg_objindex_release(&ix);
	cJSON_Delete(o);
}

static void test_objindex__null_object_has_no_members(void **state)
{
	struct tg_objindex ix;

	(void)state;
	tg_objindex_init(&ix, NULL);
	assert_null(tg_objindex_get(&ix, "a"));
	tg_objindex_release(&ix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_objindex__finds_members_of_small_and_wide_objects),
		cmocka_unit_test(test_objindex__follows_members_added_while_parsing),
		cmocka_unit_test(test_objindex__null_object_has_no_members),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
