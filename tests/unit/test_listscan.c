/* List reply scanner: element ranges, and everything it must refuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "tg/common.h"
#include "tg/listscan.h"

static int split(struct tg_listscan *ls, const char *s)
{
	return tg_listscan_split(ls, s, strlen(s));
}

static void assert_range(const char *s, const struct tg_listscan *ls, size_t i, const char *want)
{
	assert_true(i < ls->len);
	assert_int_equal(ls->items[i].len, strlen(want));
	assert_memory_equal(s + ls->items[i].off, want, strlen(want));
}

static void test_listscan__splits_objects_with_whitespace_and_commas(void **state)
{
	struct tg_listscan ls = { NULL, 0, 0 };
	const char *s = " \n[ {\"a\":1} ,\r\n\t{\"b\":[{},[]]},{}\n]\n";

	(void)state;
	assert_int_equal(split(&ls, s), 0);
	assert_int_equal(ls.len, 3);
	assert_range(s, &ls, 0, "{\"a\":1}");
	assert_range(s, &ls, 1, "{\"b\":[{},[]]}");
	assert_range(s, &ls, 2, "{}");
	tg_listscan_release(&ls);
}

static void test_listscan__null_and_empty_are_empty_lists(void **state)
{
	struct tg_listscan ls = { NULL, 0, 0 };

	(void)state;
	assert_int_equal(split(&ls, "null"), 0);
	assert_int_equal(ls.len, 0);
	assert_int_equal(split(&ls, " [ ] "), 0);
	assert_int_equal(ls.len, 0);
	tg_listscan_release(&ls);
}

static void test_listscan__brackets_and_quotes_inside_strings_do_not_count(void **state)
{
	struct tg_listscan ls = { NULL, 0, 0 };
	const char *s = "[{\"k}\":\"]}{\\\"[\"},{\"p\":\"\\\\\"},{\"q\":\"\\\\\\\"}\"}]";

	(void)state;
	assert_int_equal(split(&ls, s), 0);
	assert_int_equal(ls.len, 3);
	assert_range(s, &ls, 0, "{\"k}\":\"]}{\\\"[\"}");
	assert_range(s, &ls, 1, "{\"p\":\"\\\\\"}");
	assert_range(s, &ls, 2, "{\"q\":\"\\\\\\\"}\"}");
	tg_listscan_release(&ls);
}

static void test_listscan__refuses_what_is_not_a_list_of_objects(void **state)
{
	static const char *const bad[] = {
		"",
		"nul",
		"nullx",
		"{}",
		"[1]",
		"[{},1]",
		"[{},]",
		"[,{}]",
		"[{}",
		"[{}] x",
		"[{\"a\":[}]",
		"[{\"a\":1]]",
		"[{\"a\":\"x}]",
		"[{\"a\":1}}]",
		"[{}{}]",
		"[\"{}\"]",
		"[[{}]]",
		"[{\"a\":1}",
		"[{\"a\":\"\\\"}]",
	};
	struct tg_listscan ls = { NULL, 0, 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (split(&ls, bad[i]) != TG_EINVALID)
			fail_msg("accepted '%s'", bad[i]);
	tg_listscan_release(&ls);
}

static void test_listscan__refuses_nesting_past_the_limit(void **state)
{
	struct tg_listscan ls = { NULL, 0, 0 };
	size_t n = 0, arrays = TG_LISTSCAN_MAX_DEPTH; /* with the object: one too deep */
	char *s = tg_xmalloc(2 * arrays + 16);

	(void)state;
	s[n++] = '[';
	s[n++] = '{';
	for (size_t i = 0; i < arrays; i++)
		s[n++] = '[';
	for (size_t i = 0; i < arrays; i++)
		s[n++] = ']';
	s[n++] = '}';
	s[n++] = ']';
	assert_int_equal(tg_listscan_split(&ls, s, n), TG_EINVALID);
	/* One level less is accepted. */
	memmove(s + 2, s + 3, n - 3);
	memmove(s + 2 + arrays - 1, s + 3 + arrays - 1, n - 4 - arrays + 1);
	assert_int_equal(tg_listscan_split(&ls, s, n - 2), 0);
	assert_int_equal(ls.len, 1);
	free(s);
	tg_listscan_release(&ls);
}

/* Fed in steps of step bytes (the last call final), letting go of what is
 * done after each step when let_go is set: the ranges and the verdict of
 * one whole split. */
static void assert_fed_like_whole(const char *s, size_t step, int let_go)
{
	struct tg_listscan whole = { NULL, 0, 0 };
	struct tg_listscan_feed f;
	struct tg_listscan_range r;
	size_t len = strlen(s), avail = 0, got = 0, base = 0;
	int want = tg_listscan_split(&whole, s, len), rc = 0;

	tg_listscan_feed_init(&f);
	for (;;) {
		int final = avail == len;

		while ((rc = tg_listscan_next(&f, s + base, avail - base, final, &r)) == 1) {
			if (got >= whole.len || base + r.off != whole.items[got].off ||
			    r.len != whole.items[got].len)
				fail_msg("'%s' in steps of %zu: range %zu differs", s, step, got);
			got++;
		}
		if (final || rc)
			break;
		if (let_go) {
			size_t done = tg_listscan_feed_done(&f);

			tg_listscan_feed_shift(&f, done);
			base += done;
		}
		avail = avail + step < len ? avail + step : len;
	}
	if (rc != want || (want == 0 && got != whole.len))
		fail_msg("'%s' in steps of %zu: %d (%zu ranges), whole: %d (%zu ranges)", s, step,
			 rc, got, want, whole.len);
	tg_listscan_release(&whole);
}

static void test_listscan__fed_in_pieces_splits_as_whole(void **state)
{
	static const char *const inputs[] = {
		"[{\"a\":1}, {\"b\":[{\"c\":\"}]\\\"\"}]} ,{}]",
		" null ",
		"nul",
		"nullx",
		"[]",
		" [ ] x",
		"",
		"[",
		"[{},]",
		"[{}{}]",
		"[{\"a\":[}]",
		"[{\"a\":\"x}]",
		"[{\"k}\":\"]}{\\\"[\"},{\"p\":\"\\\\\"}]",
		"[{}] ",
		"[{}",
		"[[{}]]",
		"{}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		for (size_t step = 1; step <= 7; step++) {
			assert_fed_like_whole(inputs[i], step, 0);
			assert_fed_like_whole(inputs[i], step, 1);
		}
}

/* A long element arriving in small steps is not scanned again from its
 * start at every step: the feed keeps up in linear time. */
static void test_listscan__a_long_element_fed_in_small_steps_is_scanned_few_times(void **state)
{
	size_t n = 1 << 20, tries = 0;
	char *s = tg_xmalloc(n + 16);
	struct tg_listscan_feed f;
	struct tg_listscan_range r;
	int rc;

	(void)state;
	memcpy(s, "[{\"x\":\"", 7);
	memset(s + 7, 'a', n);
	memcpy(s + 7 + n, "\"}]", 4);
	tg_listscan_feed_init(&f);
	for (size_t avail = 64; avail < n + 10; avail += 64) {
		size_t before = f.retry_at;

		assert_int_equal(tg_listscan_next(&f, s, avail, 0, &r), 0);
		tries += f.retry_at != before;
	}
	assert_true(tries < 40);
	assert_int_equal(tg_listscan_next(&f, s, n + 10, 1, &r), 1);
	assert_int_equal(r.len, n + 8);
	rc = tg_listscan_next(&f, s, n + 10, 1, &r);
	assert_int_equal(rc, 0);
	free(s);
}

/* Every range of a real list parses to the element a whole parse gives. */
static void test_listscan__ranges_parse_to_the_elements(void **state)
{
	struct tg_listscan ls = { NULL, 0, 0 };
	cJSON *list = cJSON_CreateArray(), *el;
	char *text;
	size_t i = 0;

	(void)state;
	for (int k = 0; k < 50; k++) {
		char buf[256];

		snprintf(buf, sizeof(buf),
			 "{\"api_id\":\"a%d\",\"s\":\"x\\\\\\\"%d}]\",\"n\":[%d,{\"m\":[]}]}", k, k,
			 k);
		cJSON_AddItemToArray(list, cJSON_Parse(buf));
	}
	text = cJSON_Print(list); /* formatted: newlines and tabs between */
	assert_int_equal(split(&ls, text), 0);
	assert_int_equal(ls.len, 50);
	cJSON_ArrayForEach(el, list)
	{
		cJSON *got = cJSON_ParseWithLength(text + ls.items[i].off, ls.items[i].len);

		assert_non_null(got);
		assert_true(cJSON_Compare(got, el, 1));
		cJSON_Delete(got);
		i++;
	}
	free(text);
	cJSON_Delete(list);
	tg_listscan_release(&ls);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_listscan__splits_objects_with_whitespace_and_commas),
		cmocka_unit_test(test_listscan__null_and_empty_are_empty_lists),
		cmocka_unit_test(test_listscan__brackets_and_quotes_inside_strings_do_not_count),
		cmocka_unit_test(test_listscan__refuses_what_is_not_a_list_of_objects),
		cmocka_unit_test(test_listscan__refuses_nesting_past_the_limit),
		cmocka_unit_test(test_listscan__ranges_parse_to_the_elements),
		cmocka_unit_test(test_listscan__fed_in_pieces_splits_as_whole),
		cmocka_unit_test(
			test_listscan__a_long_element_fed_in_small_steps_is_scanned_few_times),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
