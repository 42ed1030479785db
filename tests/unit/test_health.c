/* Unit tests for controller/health.c: telling the gateway's own answers
 * from the upstream's, probe paths, and probing a local server. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "tg/common.h"
#include "tg/health.h"

static enum tg_health_verdict judge(long status, int tyk, int rate, const char *body)
{
	struct tg_health_answer a = { status, tyk, rate, body, body ? strlen(body) : 0 };

	return tg_health_judge(&a);
}

static void test_health__gateway_errors_are_unhealthy_upstream_answers_are_not(void **state)
{
	(void)state;
	/* What Tyk answers itself (seen on the real gateway). */
	assert_int_equal(judge(500, 1, 0,
			       "{\n    \"error\": \"There was a problem proxying the request\"\n}"),
			 TG_HEALTH_UPSTREAM);
	assert_int_equal(
		judge(504, 1, 0, "{\"error\": \"Upstream service reached hard timeout.\"}"),
		TG_HEALTH_UPSTREAM);
	assert_int_equal(judge(404, 1, 0, "{\"error\": \"not found\"}"), TG_HEALTH_NO_ROUTE);
	assert_int_equal(judge(404, 0, 0, "Not Found"), TG_HEALTH_NO_ROUTE);
	assert_int_equal(judge(404, 0, 0, "\nNot Found\r\n"), TG_HEALTH_NO_ROUTE);
	assert_int_equal(judge(401, 1, 0, "{\"error\": \"Authorization field missing\"}"),
			 TG_HEALTH_GUARDED);
	assert_int_equal(judge(429, 1, 1, "{}"), TG_HEALTH_GUARDED);
	assert_int_equal(judge(0, 0, 0, NULL), TG_HEALTH_NO_ANSWER);
	/* What came through the proxy: the upstream answered. */
	assert_int_equal(judge(200, 0, 1, "ok"), TG_HEALTH_UP);
	assert_int_equal(judge(503, 0, 1, "upstream says no"), TG_HEALTH_UP);
	assert_int_equal(
		judge(503, 0, 0, "{\"error\": \"There was a problem proxying the request\"}"),
		TG_HEALTH_UP);
	assert_int_equal(judge(404, 0, 1, "Not Found"), TG_HEALTH_UP);
	assert_int_equal(judge(404, 0, 0, "no such order"), TG_HEALTH_UP);
	assert_true(tg_health_ok(TG_HEALTH_UP) && tg_health_ok(TG_HEALTH_GUARDED) &&
		    tg_health_ok(TG_HEALTH_SKIPPED));
	assert_false(tg_health_ok(TG_HEALTH_NO_ROUTE) || tg_health_ok(TG_HEALTH_UPSTREAM) ||
		     tg_health_ok(TG_HEALTH_NO_ANSWER));
	assert_string_equal(tg_health_verdict_name(TG_HEALTH_UPSTREAM), "upstream_down");
}

static void test_health__paths_join_listen_path_and_health_path(void **state)
{
	static const char *const cases[][3] = {
		{ "/orders/", NULL, "/orders/" },
		{ "/orders/", "ping", "/orders/ping" },
		{ "/orders", "ping", "/orders/ping" },
		{ "orders", NULL, "/orders" },
		{ NULL, NULL, "/" },
		{ "", "health/live", "/health/live" },
	};

	(void)state;
	for (size_t i = 0; i < TG_ARRAY_SIZE(cases); i++) {
		char *p = tg_health_path(cases[i][0], cases[i][1]);

		assert_string_equal(p, cases[i][2]);
		free(p);
	}
}

static void test_health__nothing_listening_is_no_answer_and_bounds_hold(void **state)
{
	struct tg_health_opts o = { 0 };
	struct tg_health_target t[3] = { { "a", "/a/", NULL, 0, 0, 0 },
					 { "b", "/b/", "b.example.com", 0, 0, 0 },
					 { "c", "/c/", NULL, 0, 0, 0 } };
	struct tg_err err = { 0, "" };

	(void)state;
	/* Port 1 on loopback: refused at once. */
	o.base_url = "http://127.0.0.1:1";
	o.timeout_ms = 500;
	o.attempts = 2;
	o.interval_ms = 1;
	o.max_probes = 2;
	o.rate = 1000;
	assert_int_equal(tg_health_probe(&o, t, 3, &err), 2);
	assert_int_equal(t[0].verdict, TG_HEALTH_NO_ANSWER);
	assert_int_equal(t[0].tries, 2);
	assert_int_equal(t[1].verdict, TG_HEALTH_NO_ANSWER);
	assert_int_equal(t[2].verdict, TG_HEALTH_SKIPPED);
	assert_int_equal(t[2].tries, 0);
	assert_string_equal(err.msg, "");
	o.base_url = "ftp://127.0.0.1:1";
	assert_int_equal(tg_health_probe(&o, t, 3, &err), 3);
	assert_string_equal(err.msg, "health check needs an http(s) url for the data port");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(
			test_health__gateway_errors_are_unhealthy_upstream_answers_are_not),
		cmocka_unit_test(test_health__paths_join_listen_path_and_health_path),
		cmocka_unit_test(test_health__nothing_listening_is_no_answer_and_bounds_hold),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
