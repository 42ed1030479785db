/* Unit tests for controller/json.c: the positioned JSON reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/json.h"

struct parsed {
	struct tg_docs docs;
	struct tg_problems problems;
	int rc;
};

static void parse_json(struct parsed *p, const char *text)
{
	memset(p, 0, sizeof(*p));
	tg_problems_init(&p->problems);
	p->rc = tg_json_parse(&p->docs, text, strlen(text), "x.json", &p->problems);
}

static void release(struct parsed *p)
{
	tg_docs_release(&p->docs);
	tg_problems_release(&p->problems);
}

/* The first document printed compactly; caller frees. */
static char *print0(struct parsed *p)
{
	assert_true(p->docs.len >= 1);
	return cJSON_PrintUnformatted(p->docs.items[0].json);
}

static void assert_json_json(const char *in, const char *json)
{
	struct parsed p;
	char *s;

	parse_json(&p, in);
	assert_int_equal(p.rc, 0);
	assert_int_equal(p.problems.len, 0);
	s = print0(&p);
	assert_string_equal(s, json);
	free(s);
	release(&p);
}

static void assert_json_error(const char *in, int line, int column, const char *msg)
{
	struct parsed p;

	parse_json(&p, in);
	assert_int_equal(p.rc, TG_EINVALID);
	assert_int_equal(p.docs.len, 0);
	assert_true(p.problems.len >= 1);
	assert_int_equal(p.problems.items[0].line, line);
	assert_int_equal(p.problems.items[0].column, column);
	assert_string_equal(p.problems.items[0].msg, msg);
	release(&p);
}

static void test_json__escapes_are_decoded(void **state)
{
	(void)state;
	assert_json_json(
		"{\"a\":\"http:\\/\\/x\\/y\",\"b\":\"caf\\u00e9\",\"c\":\"\\ud83d\\ude00\","
		"\"d\":\"tab\\there\"}",
		"{\"a\":\"http://x/y\",\"b\":\"caf\xc3\xa9\",\"c\":\"\xf0\x9f\x98\x80\","
		"\"d\":\"tab\\there\"}");
}

static void test_json__tabs_between_tokens_are_fine(void **state)
{
	(void)state;
	assert_json_json("{\n\t\"a\":\t1,\r\n\t\"b\" :[ true ,null ]\n}\n",
			 "{\"a\":1,\"b\":[true,null]}");
}

static void test_json__big_integers_are_not_rounded(void **state)
{
	(void)state;
	assert_json_json("{\"a\":12345678901234567890,\"b\":-0,\"c\":1.25e2,\"d\":1e999,"
			 "\"e\":0.12345678901234567,\"f\":1234567890123456}",
			 "{\"a\":12345678901234567890,\"b\":0,\"c\":125,\"d\":1e999,"
			 "\"e\":0.12345678901234567,\"f\":1234567890123456}");
}

static void test_json__positions_count_characters(void **state)
{
	struct parsed p;
	int line = 0, col = 0;

	(void)state;
	parse_json(&p, "{\"n\":\"\xc3\xa9\xc3\xa9\", \"id\": 1,\n  \"x\": {\"y\": [1, 2]}}");
	assert_int_equal(p.rc, 0);
	assert_int_equal(tg_pos_lookup(p.docs.items[0].pos, "id", &line, &col), 0);
	assert_int_equal(line, 1);
	assert_int_equal(col, 12);
	assert_int_equal(tg_pos_lookup(p.docs.items[0].pos, "x.y.1", &line, &col), 0);
	assert_int_equal(line, 2);
	assert_int_equal(col, 18);
	release(&p);
}

static void test_json__errors_have_positions(void **state)
{
	(void)state;
	assert_json_error("", 1, 1, "invalid json: unexpected end of input");
	assert_json_error("{\"a\": 1,\n \"b\": }", 2, 7, "invalid json: unexpected character '}'");
	assert_json_error("{\"a\": 1,}", 1, 9, "invalid json: expected a string key");
	assert_json_error("{\"a\": 01}", 1, 8, "invalid json: invalid number (leading zero)");
	assert_json_error("{\"a\": \"x\ty\"}", 1, 9,
			  "invalid json: unescaped control character in string");
	assert_json_error("{\"a\": \"\\ud800\"}", 1, 14,
			  "invalid json: unpaired surrogate in \\u escape");
	assert_json_error("{\"a\": \"\xff\"}", 1, 8, "invalid json: invalid utf-8 in string");
	assert_json_error("{\"a\": 1} x", 1, 10,
			  "invalid json: unexpected data after the json value");
	assert_json_error("{\"a\": \"\\u0000\"}", 1, 14,
			  "invalid json: \\u0000 in a string is not supported");
	assert_json_error("{\"a\": tru}", 1, 7, "invalid json: unexpected character 't'");
}

static void test_json__duplicate_key_is_an_error(void **state)
{
	(void)state;
	assert_json_error("{\"a\": 1,\n \"a\": 2}", 2, 2, "duplicate key 'a'");
}

static void test_json__duplicate_key_in_a_wide_object_is_an_error(void **state)
{
	struct tg_buf text = TG_BUF_INIT;

	(void)state;
	/* Past the index's linear range: found through its hash table. */
	tg_buf_puts(&text, "{");
	for (int i = 0; i < 500; i++)
		tg_buf_printf(&text, "\"k%d\": %d,\n", i, i);
	tg_buf_puts(&text, "\"k7\": 0}");
	assert_json_error(tg_buf_cstr(&text), 501, 1, "duplicate key 'k7'");
	tg_buf_release(&text);
}

static void test_json__bom_is_skipped(void **state)
{
	(void)state;
	assert_json_json("\xEF\xBB\xBF{\"a\":1}", "{\"a\":1}");
}

static void test_json__deep_nesting_is_rejected(void **state)
{
	struct tg_buf b = TG_BUF_INIT;
	struct parsed p;
	int i;

	(void)state;
	for (i = 0; i < 10000; i++)
		tg_buf_puts(&b, "[");
	parse_json(&p, tg_buf_cstr(&b));
	assert_int_equal(p.rc, TG_EINVALID);
	assert_string_equal(p.problems.items[0].msg,
			    "invalid json: nesting deeper than 256 levels");
	release(&p);
	tg_buf_release(&b);
}

static void assert_number(const char *text, const char *printed)
{
	cJSON *n = tg_json_create_number(text, strlen(text));
	char *s;

	assert_non_null(n);
	s = cJSON_PrintUnformatted(n);
	assert_string_equal(s, printed);
	free(s);
	cJSON_Delete(n);
}

static void test_json__numbers_keep_every_digit_in_json_and_yaml_forms(void **state)
{
	(void)state;
	/* JSON's own forms. */
	assert_number("42", "42");
	assert_number("-0", "0");
	assert_number("1.25e2", "125");
	assert_number("1e999", "1e999");
	assert_number("12345678901234567890", "12345678901234567890");
	assert_number("-9007199254740993", "-9007199254740993");
	assert_number("0.12345678901234567", "0.12345678901234567");
	/* The YAML core schema's, which the YAML reader builds here too. */
	assert_number("+007", "7");
	assert_number("-000000000000000000012345678901234567890", "-12345678901234567890");
	assert_number(".5", "0.5");
	assert_number("1.", "1");
	/* Not finite and not JSON: the caller keeps the text as a string. */
	assert_null(tg_json_create_number("+1e999", 6));
	assert_null(tg_json_create_number(".1e999", 6));
}

static void test_json__checked_passes_a_node_through(void **state)
{
	cJSON *n = cJSON_CreateNull();

	(void)state;
	assert_ptr_equal(tg_json_checked(n), n);
	cJSON_Delete(n);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json__escapes_are_decoded),
		cmocka_unit_test(test_json__tabs_between_tokens_are_fine),
		cmocka_unit_test(test_json__big_integers_are_not_rounded),
		cmocka_unit_test(test_json__positions_count_characters),
		cmocka_unit_test(test_json__errors_have_positions),
		cmocka_unit_test(test_json__duplicate_key_is_an_error),
		cmocka_unit_test(test_json__duplicate_key_in_a_wide_object_is_an_error),
		cmocka_unit_test(test_json__bom_is_skipped),
		cmocka_unit_test(test_json__deep_nesting_is_rejected),
		cmocka_unit_test(test_json__numbers_keep_every_digit_in_json_and_yaml_forms),
		cmocka_unit_test(test_json__checked_passes_a_node_through),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
