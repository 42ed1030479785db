/* Shared helpers: capped buffers, number and duration parsing, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/buf.h"
#include "tg/common.h"

static void test_buf__refuses_to_grow_past_its_cap(void **state)
{
	struct tg_buf b;

	(void)state;
	tg_buf_init(&b, 8);
	assert_int_equal(tg_buf_puts(&b, "12345678"), 0);
	assert_int_equal(tg_buf_puts(&b, "9"), TG_EINVALID);
	assert_string_equal(tg_buf_cstr(&b), "12345678");
	tg_buf_release(&b);
}

static void test_buf__escapes_json(void **state)
{
	struct tg_buf b = TG_BUF_INIT;

	(void)state;
	tg_buf_put_json_escaped(&b, "a\"b\\c\nd\x01");
	assert_string_equal(tg_buf_cstr(&b), "a\\\"b\\\\c\\nd\\u0001");
	tg_buf_release(&b);
}

static void test_parse_ll__rejects_garbage_and_range(void **state)
{
	long long v = 0;

	(void)state;
	assert_int_equal(tg_parse_ll(&v, "42", 0, 100), 0);
	assert_int_equal(v, 42);
	assert_int_equal(tg_parse_ll(&v, "42x", 0, 100), TG_EINVALID);
	assert_int_equal(tg_parse_ll(&v, "", 0, 100), TG_EINVALID);
	assert_int_equal(tg_parse_ll(&v, "101", 0, 100), TG_EINVALID);
	assert_int_equal(tg_parse_ll(&v, "99999999999999999999", 0, 100), TG_EINVALID);
}

static void test_parse_duration__units(void **state)
{
	long long ms = 0;

	(void)state;
	assert_int_equal(tg_parse_duration_ms(&ms, "250ms"), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(tg_parse_duration_ms(&ms, "60s"), 0);
	assert_int_equal(ms, 60000);
	assert_int_equal(tg_parse_duration_ms(&ms, "5m"), 0);
	assert_int_equal(ms, 300000);
	assert_int_equal(tg_parse_duration_ms(&ms, "1h"), 0);
	assert_int_equal(ms, 3600000);
	assert_int_equal(tg_parse_duration_ms(&ms, "7"), 0);
	assert_int_equal(ms, 7000);
	assert_int_equal(tg_parse_duration_ms(&ms, "5 m"), TG_EINVALID);
	assert_int_equal(tg_parse_duration_ms(&ms, "m"), TG_EINVALID);
}

static void test_err__prefix_keeps_message(void **state)
{
	struct tg_err err;

	(void)state;
	tg_err_set(&err, TG_ENOTFOUND, "missing '%s'", "x");
	tg_err_prefix(&err, "cannot load");
	assert_string_equal(err.msg, "cannot load: missing 'x'");
	assert_int_equal(err.code, TG_ENOTFOUND);
}

/* Found by fuzzing the history file: a time past year 9999 left the
 * seconds unformatted and the rest was read from beyond the buffer. */
static void test_rfc3339__clamps_times_it_cannot_write(void **state)
{
	char out[TG_TIME_MAX];

	(void)state;
	tg_rfc3339(out, 1700000000123LL, 1);
	assert_string_equal(out, "2023-11-14T22:13:20.123Z");
	tg_rfc3339(out, 88888888888888888LL, 1);
	assert_string_equal(out, "9999-12-31T23:59:59.999Z");
	tg_rfc3339(out, -5, 0);
	assert_string_equal(out, "1970-01-01T00:00:00Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buf__refuses_to_grow_past_its_cap),
		cmocka_unit_test(test_buf__escapes_json),
		cmocka_unit_test(test_parse_ll__rejects_garbage_and_range),
		cmocka_unit_test(test_parse_duration__units),
		cmocka_unit_test(test_err__prefix_keeps_message),
		cmocka_unit_test(test_rfc3339__clamps_times_it_cannot_write),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
