/* Write-ahead audit trail: records, replay of open operations, settling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "tg/audit.h"
#include "tg/buf.h"
#include "tg/marker.h"

static char *temp_path(void)
{
	char tmpl[] = "/tmp/tg-audit-XXXXXX";
	int fd = mkstemp(tmpl);

	assert_true(fd >= 0);
	close(fd);
	unlink(tmpl);
	return strdup(tmpl);
}

static struct tg_audit_record rec(enum tg_audit_phase phase, enum tg_audit_result result,
				  const char *op, const char *sync, const char *id)
{
	struct tg_audit_record r;

	memset(&r, 0, sizeof(r));
	r.phase = phase;
	r.result = result;
	snprintf(r.op, sizeof(r.op), "%s", op);
	r.sync = sync;
	r.commit = "c0ffee";
	r.author = "Ada <ada@example.com>";
	r.trigger = "poll";
	r.kind = TG_KIND_API;
	r.id = id;
	r.action = TG_ACTION_CREATE;
	r.before_hash = "";
	r.after_hash = "h1";
	return r;
}

static size_t open_count(struct tg_audit *a, const char *sync)
{
	size_t n;
	const struct tg_audit_op **ops = tg_audit_open_ops(a, sync, &n);

	free(ops);
	return n;
}

static void append_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "a");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_audit__intent_stays_open_until_its_outcome(void **state)
{
	char *path = temp_path();
	struct tg_audit *a = NULL;
	struct tg_audit_record r[2];
	struct tg_err err;

	(void)state;
	assert_int_equal(tg_audit_open(&a, path, &err), 0);
	r[0] = rec(TG_AUDIT_INTENT, TG_AUDIT_PENDING, "op-1", "prod", "a");
	r[1] = rec(TG_AUDIT_INTENT, TG_AUDIT_PENDING, "op-2", "prod", "b");
	assert_int_equal(tg_audit_append(a, r, 2, &err), 0);
	assert_int_equal(open_count(a, "prod"), 2);
	assert_int_equal(open_count(a, "other"), 0);
	r[0] = rec(TG_AUDIT_OUTCOME, TG_AUDIT_APPLIED, "op-1", "prod", "a");
	assert_int_equal(tg_audit_append(a, r, 1, &err), 0);
	assert_int_equal(open_count(a, "prod"), 1);
	tg_audit_free(a);

	/* A new process finds the same open operation in the file. */
	assert_int_equal(tg_audit_open(&a, path, &err), 0);
	{
		size_t n;
		const struct tg_audit_op **ops = tg_audit_open_ops(a, "prod", &n);

		assert_int_equal(n, 1);
		assert_string_equal(ops[0]->op, "op-2");
		assert_string_equal(ops[0]->id, "b");
		assert_string_equal(ops[0]->commit, "c0ffee");
		assert_string_equal(ops[0]->trigger, "poll");
		assert_int_equal(ops[0]->action, TG_ACTION_CREATE);
		free(ops);
	}
	tg_audit_free(a);
	unlink(path);
	free(path);
}

static void test_audit__failed_after_write_stays_open(void **state)
{
	char *path = temp_path();
	struct tg_audit *a = NULL;
	struct tg_audit_record r[3];
	struct tg_err err;

	(void)state;
	assert_int_equal(tg_audit_open(&a, path, &err), 0);
	r[0] = rec(TG_AUDIT_INTENT, TG_AUDIT_PENDING, "op-1", "prod", "a");
	r[1] = rec(TG_AUDIT_OUTCOME, TG_AUDIT_FAILED, "op-1", "prod", "a");
	r[1].written = 1; /* the gateway has it: it may still go live */
	r[2] = rec(TG_AUDIT_INTENT, TG_AUDIT_PENDING, "op-2", "prod", "b");
	assert_int_equal(tg_audit_append(a, r, 3, &err), 0);
	r[0] = rec(TG_AUDIT_OUTCOME, TG_AUDIT_FAILED, "op-2", "prod", "b");
	assert_int_equal(tg_audit_append(a, r, 1, &err), 0); /* rejected: closed */
	assert_int_equal(open_count(a, "prod"), 1);
	tg_audit_free(a);
	assert_int_equal(tg_audit_open(&a, path, &err), 0);
	assert_int_equal(open_count(a, "prod"), 1);
	tg_audit_free(a);
	unlink(path);
	free(path);
}

static void test_audit__replay_skips_torn_and_old_lines(void **state)
{
	char *path = temp_path();
	struct tg_audit *a = NULL;
	struct tg_err err;

	(void)state;
	append_file(
		path,
		"{\"time\":\"t\",\"sync\":\"prod\",\"result\":\"applied\"}\n"
		"not json at all\n"
		"{\"time\":\"t\",\"sync\":\"prod\",\"commit\":\"c\",\"kind\":\"policy\",\"id\":\"p\","
		"\"action\":\"delete\",\"result\":\"pending\",\"op\":\"o1\",\"phase\":\"intent\"}\n"
		"{\"time\":\"t\",\"sync\":\"prod\",\"kind\":\"api\",\"id\":\"x\",\"action\":\"cre");
	assert_int_equal(tg_audit_open(&a, path, &err), 0);
	assert_int_equal(open_count(a, "prod"), 1);
	tg_audit_free(a);
	unlink(path);
	free(path);
}

static void test_audit__lines_are_valid_utf8_json(void **state)
{
	char *path = temp_path(), *text = NULL;
	struct tg_audit *a = NULL;
	struct tg_audit_record r = rec(TG_AUDIT_INTENT, TG_AUDIT_PENDING, "op-1", "prod", "a");
	struct tg_err err;
	size_t len;
	cJSON *o;

	(void)state;
	r.author = "Bad \xff\xfe \"Name\"\n <x@example.com>";
	assert_int_equal(tg_audit_open(&a, path, &err), 0);
	assert_int_equal(tg_audit_append(a, &r, 1, &err), 0);
	tg_audit_free(a);
	assert_int_equal(tg_read_file(&text, &len, path, 1 << 20, &err), 0);
	for (size_t i = 0; i < len; i++)
		assert_true((unsigned char)text[i] != 0xff && (unsigned char)text[i] != 0xfe);
	o = cJSON_Parse(text);
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(o, "author")->valuestring,
			    "Bad \xef\xbf\xbd\xef\xbf\xbd \"Name\"\n <x@example.com>");
	assert_string_equal(cJSON_GetObjectItem(o, "phase")->valuestring, "intent");
	cJSON_Delete(o);
	free(text);
	unlink(path);
	free(path);
}

static void test_audit__refuses_a_fifo_or_device(void **state)
{
	struct tg_audit *a = NULL;
	struct tg_err err;

	(void)state;
	assert_int_equal(tg_audit_open(&a, "/dev/null", &err), TG_ERROR);
	assert_null(a);
	assert_non_null(strstr(err.msg, "not a regular file"));
}

static void test_audit__append_to_full_device_fails(void **state)
{
	struct tg_audit *a = NULL;
	struct tg_audit_record r = rec(TG_AUDIT_INTENT, TG_AUDIT_PENDING, "op-1", "prod", "a");
	struct tg_err err;

	(void)state;
	/* stdout redirected to /dev/full: the write must be reported. */
	fflush(stdout);
	{
		int saved = dup(1);
		FILE *full = fopen("/dev/full", "w");

		assert_non_null(full);
		dup2(fileno(full), 1);
		assert_int_equal(tg_audit_open(&a, "-", &err), 0);
		assert_int_equal(tg_audit_append(a, &r, 1, &err), TG_ERROR);
		assert_non_null(strstr(err.msg, "cannot write audit file"));
		assert_int_equal(open_count(a, "prod"), 0); /* not on disk: not open */
		tg_audit_free(a);
		dup2(saved, 1);
		close(saved);
		fclose(full);
	}
}

static cJSON *owned(const char *sync, const char *hash)
{
	cJSON *obj = cJSON_Parse("{\"api_id\":\"a\"}");
	struct tg_marker m = { 0 };

	m.sync = (char *)sync;
	m.hash = (char *)hash;
	tg_marker_stamp(obj, TG_KIND_API, &m);
	return obj;
}

static void test_audit__judge_settles_from_the_gateway(void **state)
{
	struct tg_audit_op op;
	cJSON *mine = owned("prod", "h1"), *older = owned("prod", "h0"),
	      *theirs = owned("dev", "h1");

	(void)state;
	memset(&op, 0, sizeof(op));
	op.sync = (char *)"prod";
	op.kind = TG_KIND_API;
	op.id = (char *)"a";
	op.after_hash = (char *)"h1";
	op.action = TG_ACTION_UPDATE;
	assert_int_equal(tg_audit_judge(&op, mine), TG_AUDIT_APPLIED);
	assert_int_equal(tg_audit_judge(&op, older), TG_AUDIT_NOT_APPLIED);
	assert_int_equal(tg_audit_judge(&op, theirs), TG_AUDIT_NOT_APPLIED);
	assert_int_equal(tg_audit_judge(&op, NULL), TG_AUDIT_NOT_APPLIED);
	op.action = TG_ACTION_DELETE;
	assert_int_equal(tg_audit_judge(&op, NULL), TG_AUDIT_APPLIED);
	assert_int_equal(tg_audit_judge(&op, mine), TG_AUDIT_NOT_APPLIED);
	cJSON_Delete(mine);
	cJSON_Delete(older);
	cJSON_Delete(theirs);
}

static void test_audit__utf8_sanitize_keeps_valid_text(void **state)
{
	char *s;

	(void)state;
	s = tg_utf8_sanitize("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	assert_string_equal(s, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
	free(s);
	/* Overlong, surrogate, truncated. */
	s = tg_utf8_sanitize("a\xc0\xafz\xed\xa0\x80y\xe2\x82");
	assert_string_equal(s, "a\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdy"
			       "\xef\xbf\xbd\xef\xbf\xbd");
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_audit__intent_stays_open_until_its_outcome),
		cmocka_unit_test(test_audit__failed_after_write_stays_open),
		cmocka_unit_test(test_audit__replay_skips_torn_and_old_lines),
		cmocka_unit_test(test_audit__lines_are_valid_utf8_json),
		cmocka_unit_test(test_audit__refuses_a_fifo_or_device),
		cmocka_unit_test(test_audit__append_to_full_device_fails),
		cmocka_unit_test(test_audit__judge_settles_from_the_gateway),
		cmocka_unit_test(test_audit__utf8_sanitize_keeps_valid_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
