/* Unit tests for controller/problems.c: collecting, sorting and formatting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "tg/buf.h"
#include "tg/problems.h"

static void test_problems__add_counts_errors_not_warnings(void **state)
{
	struct tg_problems p;

	(void)state;
	tg_problems_init(&p);
	tg_problems_add(&p, TG_SEV_ERROR, "apis/a.json", 1, 2, "api_id", "missing %s", "api id");
	tg_problems_add(&p, TG_SEV_WARNING, "apis/x.txt", 0, 0, NULL, "ignoring file");
	assert_int_equal(p.len, 2);
	assert_int_equal(p.errors, 1);
	assert_string_equal(p.items[0].msg, "missing api id");
	assert_null(p.items[1].field);
	tg_problems_release(&p);
	tg_problems_release(&p); /* twice is harmless */
}

static void test_problems__sort_is_by_file_line_column_and_stable(void **state)
{
	struct tg_problems p;

	(void)state;
	tg_problems_init(&p);
	tg_problems_add(&p, TG_SEV_ERROR, "b.json", 1, 1, NULL, "b");
	tg_problems_add(&p, TG_SEV_ERROR, "a.json", 3, 1, NULL, "a3");
	tg_problems_add(&p, TG_SEV_ERROR, "a.json", 2, 9, NULL, "a2-first");
	tg_problems_add(&p, TG_SEV_ERROR, "a.json", 2, 9, NULL, "a2-second");
	tg_problems_add(&p, TG_SEV_ERROR, NULL, 0, 0, NULL, "global");
	tg_problems_add(&p, TG_SEV_ERROR, "a.json", 2, 1, NULL, "a2c1");
	tg_problems_sort(&p);
	assert_string_equal(p.items[0].msg, "global");
	assert_string_equal(p.items[1].msg, "a2c1");
	assert_string_equal(p.items[2].msg, "a2-first");
	assert_string_equal(p.items[3].msg, "a2-second");
	assert_string_equal(p.items[4].msg, "a3");
	assert_string_equal(p.items[5].msg, "b");
	tg_problems_release(&p);
}

static void test_problems__text_omits_unknown_parts(void **state)
{
	struct tg_problems p;
	struct tg_buf out = TG_BUF_INIT;

	(void)state;
	tg_problems_init(&p);
	tg_problems_add(&p, TG_SEV_ERROR, "apis/x.yaml", 12, 3, "info.id", "missing api id");
	tg_problems_add(&p, TG_SEV_WARNING, "apis/readme.md", 0, 0, NULL, "ignoring file");
	tg_problems_add(&p, TG_SEV_ERROR, "apis/y.yaml", 4, 0, NULL, "line only");
	tg_problems_add(&p, TG_SEV_ERROR, NULL, 0, 0, NULL, "no apis or policies found");
	tg_problems_format_text(&p, &out);
	assert_string_equal(tg_buf_cstr(&out), "apis/x.yaml:12:3: error: info.id: missing api id\n"
					       "apis/readme.md: warning: ignoring file\n"
					       "apis/y.yaml:4: error: line only\n"
					       "error: no apis or policies found\n");
	tg_buf_release(&out);
	tg_problems_release(&p);
}

static void test_problems__json_lists_every_problem(void **state)
{
	struct tg_problems p;
	struct tg_buf out = TG_BUF_INIT;

	(void)state;
	tg_problems_init(&p);
	tg_problems_add(&p, TG_SEV_ERROR, "apis/x.yaml", 12, 3, "info.id", "missing \"id\"");
	tg_problems_add(&p, TG_SEV_WARNING, NULL, 0, 0, NULL, "w");
	tg_problems_format_json(&p, &out);
	assert_string_equal(
		tg_buf_cstr(&out),
		"{\"valid\":false,\"errors\":1,\"warnings\":1,\"problems\":["
		"{\"severity\":\"error\",\"file\":\"apis/x.yaml\",\"line\":12,\"column\":3,"
		"\"field\":\"info.id\",\"message\":\"missing \\\"id\\\"\"},"
		"{\"severity\":\"warning\",\"file\":null,\"line\":0,\"column\":0,"
		"\"field\":null,\"message\":\"w\"}]}");
	tg_buf_release(&out);
	tg_problems_release(&p);
}

static void test_problems__json_for_no_problems_is_valid(void **state)
{
	struct tg_problems p;
	struct tg_buf out = TG_BUF_INIT;

	(void)state;
	tg_problems_init(&p);
	tg_problems_format_json(&p, &out);
	assert_string_equal(tg_buf_cstr(&out),
			    "{\"valid\":true,\"errors\":0,\"warnings\":0,\"problems\":[]}");
	tg_buf_release(&out);
	tg_problems_release(&p);
}

static void test_problems__many_problems_grow_the_list(void **state)
{
	struct tg_problems p;
	int i;

	(void)state;
	tg_problems_init(&p);
	for (i = 0; i < 1000; i++)
		tg_problems_add(&p, i % 2 ? TG_SEV_WARNING : TG_SEV_ERROR, "f", 1000 - i, 1, NULL,
				"%d", i);
	tg_problems_sort(&p);
	assert_int_equal(p.len, 1000);
	assert_int_equal(p.errors, 500);
	assert_string_equal(p.items[0].msg, "999");
	tg_problems_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_problems__add_counts_errors_not_warnings),
		cmocka_unit_test(test_problems__sort_is_by_file_line_column_and_stable),
		cmocka_unit_test(test_problems__text_omits_unknown_parts),
		cmocka_unit_test(test_problems__json_lists_every_problem),
		cmocka_unit_test(test_problems__json_for_no_problems_is_valid),
		cmocka_unit_test(test_problems__many_problems_grow_the_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
