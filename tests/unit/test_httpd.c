/* HTTP server pieces that need no socket: listen addresses, loopback,
 * query values, unescaping and routing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/httpd.h"

static void test_httpd__listen_addresses_parse(void **state)
{
	char *host = NULL;
	unsigned port = 0;

	(void)state;
	assert_int_equal(tg_httpd_parse_listen("127.0.0.1:9180", &host, &port, NULL), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 9180);
	free(host);
	assert_int_equal(tg_httpd_parse_listen("[::1]:80", &host, &port, NULL), 0);
	assert_string_equal(host, "::1");
	free(host);
	assert_int_equal(tg_httpd_parse_listen(":9180", &host, &port, NULL), 0);
	assert_null(host);
	assert_int_not_equal(tg_httpd_parse_listen("::1:80", &host, &port, NULL), 0);
	assert_int_not_equal(tg_httpd_parse_listen("localhost", &host, &port, NULL), 0);
	assert_int_not_equal(tg_httpd_parse_listen("h:99999", &host, &port, NULL), 0);
	assert_int_not_equal(tg_httpd_parse_listen("", &host, &port, NULL), 0);
}

static void test_httpd__loopback_is_127_slash_8_and_ipv6_one(void **state)
{
	(void)state;
	assert_true(tg_httpd_host_is_loopback("127.0.0.1"));
	assert_true(tg_httpd_host_is_loopback("127.255.0.9"));
	assert_true(tg_httpd_host_is_loopback("::1"));
	assert_true(tg_httpd_host_is_loopback("::ffff:127.0.0.1"));
	assert_true(tg_httpd_host_is_loopback("localhost"));
	assert_false(tg_httpd_host_is_loopback("0.0.0.0"));
	assert_false(tg_httpd_host_is_loopback("10.0.0.1"));
	assert_false(tg_httpd_host_is_loopback("::"));
	assert_false(tg_httpd_host_is_loopback(NULL));
}

static void test_httpd__wait_parameters(void **state)
{
	(void)state;
	assert_int_equal(tg_httpd_wait_ms(NULL, NULL, 0), 0);
	assert_int_equal(tg_httpd_wait_ms("false", "10s", 0), 0);
	assert_int_equal(tg_httpd_wait_ms("true", NULL, 0), 60000);
	assert_int_equal(tg_httpd_wait_ms("true", "5s", 0), 5000);
	assert_int_equal(tg_httpd_wait_ms("", "2s", 0), 2000);
	assert_int_equal(tg_httpd_wait_ms("true", "1h", 0), 600000);
	assert_int_equal(tg_httpd_wait_ms("true", "1h", 30000), 30000);
	assert_int_equal(tg_httpd_wait_ms("yes", NULL, 0), -1);
	assert_int_equal(tg_httpd_wait_ms("true", "soon", 0), -1);
}

static void test_httpd__unescape_keeps_nul_escaped(void **state)
{
	char a[] = "/api/v1/syncs/pr%6fd", b[] = "/api/v1/syncs/prod%00x", c[] = "%zz%4";

	(void)state;
	assert_int_equal(tg_httpd_unescape(a), strlen("/api/v1/syncs/prod"));
	assert_string_equal(a, "/api/v1/syncs/prod");
	tg_httpd_unescape(b);
	assert_string_equal(b, "/api/v1/syncs/prod%00x");
	tg_httpd_unescape(c);
	assert_string_equal(c, "%zz%4");
}

static void test_httpd__routes(void **state)
{
	static const struct {
		const char *path;
		int found;
		enum tg_route_kind kind;
		int post;
		const char *name;
	} cases[] = {
		{ "/metrics", 1, TG_ROUTE_METRICS, 0, "" },
		{ "/healthz", 1, TG_ROUTE_HEALTHZ, 0, "" },
		{ "/readyz", 1, TG_ROUTE_READYZ, 0, "" },
		{ "/hooks/bitbucket", 1, TG_ROUTE_HOOK, 1, "" },
		{ "/api/v1/syncs", 1, TG_ROUTE_SYNCS, 0, "" },
		{ "/api/v1/syncs/", 1, TG_ROUTE_SYNCS, 0, "" },
		{ "/api/v1/syncs/prod", 1, TG_ROUTE_SYNC, 0, "prod" },
		{ "/api/v1/syncs/prod/reconcile", 1, TG_ROUTE_RECONCILE, 1, "prod" },
		{ "/api/v1/syncs/prod/suspend", 1, TG_ROUTE_SUSPEND, 1, "prod" },
		{ "/api/v1/syncs/prod/resume", 1, TG_ROUTE_RESUME, 1, "prod" },
		{ "/api/v1/syncs/prod/history", 1, TG_ROUTE_HISTORY, 0, "prod" },
		{ "/api/v1/syncs/prod/rollback", 1, TG_ROUTE_ROLLBACK, 1, "prod" },
		{ "/api/v1/syncs/prod/other", 0, TG_ROUTE_METRICS, 0, "" },
		{ "/api/v1/syncs/prod/reconcile/x", 0, TG_ROUTE_METRICS, 0, "" },
		{ "/api/v1/syncs//reconcile", 0, TG_ROUTE_METRICS, 0, "" },
		{ "/api/v1/syncsX", 0, TG_ROUTE_METRICS, 0, "" },
		{ "/metrics/", 0, TG_ROUTE_METRICS, 0, "" },
		{ "/", 0, TG_ROUTE_METRICS, 0, "" },
	};
	struct tg_route r;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = tg_httpd_route(&r, cases[i].path);

		if (!cases[i].found) {
			assert_int_equal(rc, TG_ENOTFOUND);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(r.kind, cases[i].kind);
		assert_int_equal(r.post, cases[i].post);
		assert_string_equal(r.name, cases[i].name);
	}
}

static void test_httpd__listener_roles_limit_what_is_served(void **state)
{
	(void)state;
	for (int k = TG_ROUTE_METRICS; k <= TG_ROUTE_RESUME; k++)
		assert_true(tg_httpd_role_serves(TG_HTTPD_MAIN, (enum tg_route_kind)k));
	assert_true(tg_httpd_role_serves(TG_HTTPD_PROBES, TG_ROUTE_HEALTHZ));
	assert_true(tg_httpd_role_serves(TG_HTTPD_PROBES, TG_ROUTE_METRICS));
	assert_false(tg_httpd_role_serves(TG_HTTPD_PROBES, TG_ROUTE_HOOK));
	assert_false(tg_httpd_role_serves(TG_HTTPD_PROBES, TG_ROUTE_RECONCILE));
	/* webhook_listen faces the internet: hooks and token-checked POSTs,
	 * nothing that lists syncs, commits or errors. */
	assert_true(tg_httpd_role_serves(TG_HTTPD_PUBLIC, TG_ROUTE_HOOK));
	assert_true(tg_httpd_role_serves(TG_HTTPD_PUBLIC, TG_ROUTE_RECONCILE));
	assert_true(tg_httpd_role_serves(TG_HTTPD_PUBLIC, TG_ROUTE_SUSPEND));
	assert_true(tg_httpd_role_serves(TG_HTTPD_PUBLIC, TG_ROUTE_RESUME));
	assert_true(tg_httpd_role_serves(TG_HTTPD_PUBLIC, TG_ROUTE_HEALTHZ));
	assert_false(tg_httpd_role_serves(TG_HTTPD_PUBLIC, TG_ROUTE_METRICS));
	assert_false(tg_httpd_role_serves(TG_HTTPD_PUBLIC, TG_ROUTE_SYNCS));
	assert_false(tg_httpd_role_serves(TG_HTTPD_PUBLIC, TG_ROUTE_SYNC));
	assert_false(tg_httpd_role_serves(TG_HTTPD_PUBLIC, TG_ROUTE_READYZ));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_httpd__listen_addresses_parse),
		cmocka_unit_test(test_httpd__loopback_is_127_slash_8_and_ipv6_one),
		cmocka_unit_test(test_httpd__wait_parameters),
		cmocka_unit_test(test_httpd__unescape_keeps_nul_escaped),
		cmocka_unit_test(test_httpd__routes),
		cmocka_unit_test(test_httpd__listener_roles_limit_what_is_served),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
