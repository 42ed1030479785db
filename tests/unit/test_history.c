/* Unit tests for controller/history.c: entries, the cap, the pin, the
 * healthy commit to roll back to, and the file's round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg/common.h"
#include "tg/history.h"

static void sha(char out[41], int n)
{
	snprintf(out, 41, "%040x", n);
}

static void add(struct tg_history *h, int n, const char *kind, const char *health, int rolled_back)
{
	struct tg_history_entry e;

	memset(&e, 0, sizeof(e));
	sha(e.commit, n);
	snprintf(e.kind, sizeof(e.kind), "%s", kind);
	snprintf(e.outcome, sizeof(e.outcome), "success");
	snprintf(e.health, sizeof(e.health), "%s", health);
	e.rolled_back = rolled_back;
	e.wall_ms = 1000LL * n;
	e.author = (char *)"Ada <ada@example.com>";
	e.summary = (char *)"change";
	e.trigger = (char *)"poll";
	e.created = (size_t)n;
	tg_history_add(h, &e);
}

static void test_history__last_healthy_skips_failed_and_excepted(void **state)
{
	struct tg_history h;
	char c[41];

	(void)state;
	tg_history_init(&h);
	assert_null(tg_history_last_healthy(&h, NULL));
	add(&h, 1, "apply", "healthy", 0);
	add(&h, 2, "apply", "unchecked", 0);
	add(&h, 3, "apply", "unhealthy", 1);
	sha(c, 1);
	assert_string_equal(tg_history_last_healthy(&h, NULL)->commit, c);
	add(&h, 4, "apply", "healthy", 0);
	sha(c, 4);
	assert_string_equal(tg_history_last_healthy(&h, NULL)->commit, c);
	sha(c, 1);
	{
		char four[41];

		sha(four, 4);
		assert_string_equal(tg_history_last_healthy(&h, four)->commit, c);
	}
	sha(c, 3);
	assert_int_equal(tg_history_find(&h, c)->rolled_back, 1);
	sha(c, 99);
	assert_null(tg_history_find(&h, c));
	tg_history_release(&h);
}

static void test_history__keeps_the_newest_entries(void **state)
{
	struct tg_history h;
	char c[41];

	(void)state;
	tg_history_init(&h);
	for (int i = 1; i <= TG_HISTORY_MAX + 5; i++)
		add(&h, i, "apply", "healthy", 0);
	assert_int_equal(h.len, TG_HISTORY_MAX);
	sha(c, 6);
	assert_string_equal(h.items[0].commit, c);
	tg_history_release(&h);
}

static void test_history__file_round_trip_with_pin(void **state)
{
	struct tg_history h, back;
	struct tg_err err = { 0, "" };
	char path[] = "/tmp/tg-history-XXXXXX";
	int fd = mkstemp(path);
	cJSON *j;

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	tg_history_init(&h);
	tg_history_init(&back);
	add(&h, 1, "apply", "healthy", 0);
	add(&h, 2, "apply", "unhealthy", 1);
	add(&h, 1, "rollback", "healthy", 0);
	sha(h.items[2].from_commit, 2);
	sha(h.pin, 1);
	sha(h.pin_head, 2);
	assert_int_equal(tg_history_save(&h, path, &err), 0);
	assert_int_equal(tg_history_load(&back, path, &err), 0);
	assert_int_equal(back.len, 3);
	assert_string_equal(back.pin, h.pin);
	assert_string_equal(back.pin_head, h.pin_head);
	assert_string_equal(back.items[2].kind, "rollback");
	assert_string_equal(back.items[2].from_commit, h.items[2].from_commit);
	assert_int_equal(back.items[1].rolled_back, 1);
	assert_string_equal(back.items[0].author, "Ada <ada@example.com>");
	assert_null(back.items[0].actor);
	assert_int_equal(back.items[2].created, 1);
	assert_int_equal(back.items[1].wall_ms, 2000);
	/* Newest first in JSON, at most max. */
	j = tg_history_json(&back, 2);
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "entries")), 2);
	assert_string_equal(
		cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "entries"), 0),
				    "kind")
			->valuestring,
		"rollback");
	cJSON_Delete(j);
	unlink(path);
	/* Missing: empty.  Not a history: an error, and empty. */
	assert_int_equal(tg_history_load(&back, path, &err), 0);
	assert_int_equal(back.len, 0);
	assert_int_equal(tg_history_parse(&back, "[1]", 3), TG_EINVALID);
	{
		static const char junk[] = "{\"pin\":\"x\",\"entries\":[{\"commit\":\"abc\"},7]}";

		assert_int_equal(tg_history_parse(&back, junk, sizeof(junk) - 1), 0);
	}
	assert_int_equal(back.len, 0);
	assert_string_equal(back.pin, "");
	tg_history_release(&back);
	tg_history_release(&h);
}

/* A history file is read back from disk: times it cannot hold are 0. */
static void test_history__times_out_of_range_are_dropped(void **state)
{
	static const char *const times[] = { "1e300", "-1", "88888888888888888", "\"x\"" };
	struct tg_history h;

	(void)state;
	for (size_t i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		char text[256];

		snprintf(text, sizeof(text),
			 "{\"entries\":[{\"commit\":\"%s\",\"kind\":\"apply\","
			 "\"outcome\":\"success\",\"health\":\"healthy\",\"time_ms\":%s}]}",
			 "0123456789abcdef0123456789abcdef01234567", times[i]);
		tg_history_init(&h);
		assert_int_equal(tg_history_parse(&h, text, strlen(text)), 0);
		assert_int_equal(h.len, 1);
		assert_int_equal(h.items[0].wall_ms, 0);
		tg_history_release(&h);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_history__last_healthy_skips_failed_and_excepted),
		cmocka_unit_test(test_history__keeps_the_newest_entries),
		cmocka_unit_test(test_history__file_round_trip_with_pin),
		cmocka_unit_test(test_history__times_out_of_range_are_dropped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
