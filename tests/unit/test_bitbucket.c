/* Bitbucket out, the pure parts: coordinates from every repo URL form,
 * build status requests as Atlassian documents them, status keys, field
 * limits, error replies, Retry-After; and Code Insights documents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/bitbucket.h"
#include "tg/insights.h"
#include "tg/marker.h"

static int resolve(struct tg_bb_target *t, const char *url, struct tg_sync_config *over)
{
	struct tg_sync_config c;
	struct tg_err err = { 0, "" };

	if (over)
		c = *over;
	else
		memset(&c, 0, sizeof(c));
	c.repo_url = (char *)url;
	return tg_bb_target_resolve(t, &c, &err);
}

static void expect_target(const char *url, enum tg_bb_api api, const char *base, const char *owner,
			  const char *slug)
{
	struct tg_bb_target t;

	assert_int_equal(resolve(&t, url, NULL), 0);
	assert_int_equal(t.api, api);
	assert_string_equal(t.base_url, base);
	assert_string_equal(t.owner, owner);
	assert_string_equal(t.slug, slug);
	assert_int_equal(t.timeout_ms, 10000);
	tg_bb_target_release(&t);
}

static void test_bitbucket__coordinates_from_every_cloud_url_form(void **state)
{
	(void)state;
	expect_target("https://bitbucket.org/acme/gateway-config.git", TG_BB_CLOUD,
		      "https://api.bitbucket.org", "acme", "gateway-config");
	expect_target("https://jdoe@bitbucket.org/acme/gateway-config", TG_BB_CLOUD,
		      "https://api.bitbucket.org", "acme", "gateway-config");
	expect_target("git@bitbucket.org:acme/gateway-config.git", TG_BB_CLOUD,
		      "https://api.bitbucket.org", "acme", "gateway-config");
	expect_target("ssh://git@BitBucket.org/acme/gateway-config.git/", TG_BB_CLOUD,
		      "https://api.bitbucket.org", "acme", "gateway-config");
}

static void test_bitbucket__coordinates_from_data_center_clone_urls(void **state)
{
	(void)state;
	expect_target("https://bitbucket.corp.example/scm/plat/gateway-config.git", TG_BB_DC,
		      "https://bitbucket.corp.example", "plat", "gateway-config");
	/* A context path and a port stay in the REST base. */
	expect_target("https://jdoe@git.example:8443/bitbucket/scm/PLAT/gw.git", TG_BB_DC,
		      "https://git.example:8443/bitbucket", "PLAT", "gw");
	/* ssh's port is git's, not the REST API's. */
	expect_target("ssh://git@bitbucket.corp.example:7999/plat/gateway-config.git", TG_BB_DC,
		      "https://bitbucket.corp.example", "plat", "gateway-config");
	expect_target("http://[::1]:7990/scm/P/r.git", TG_BB_DC, "http://[::1]:7990", "P", "r");
}

static void test_bitbucket__overrides_win_and_missing_coordinates_are_an_error(void **state)
{
	struct tg_sync_config o;
	struct tg_bb_target t;
	struct tg_err err = { 0, "" };

	(void)state;
	memset(&o, 0, sizeof(o));
	o.bb_url = (char *)"https://bb.example/ctx//";
	o.bb_project = (char *)"OPS";
	o.bb_repo_slug = (char *)"mirror";
	o.bb_token_file = (char *)"/run/token";
	o.bb_timeout_ms = 2500;
	assert_int_equal(resolve(&t, "file:///srv/git/gw.git", &o), 0);
	assert_int_equal(t.api, TG_BB_DC);
	assert_string_equal(t.base_url, "https://bb.example/ctx");
	assert_string_equal(t.owner, "OPS");
	assert_string_equal(t.slug, "mirror");
	assert_string_equal(t.token_file, "/run/token");
	assert_int_equal(t.timeout_ms, 2500);
	tg_bb_target_release(&t);

	memset(&o, 0, sizeof(o));
	o.bb_api = (char *)"cloud";
	o.bb_workspace = (char *)"acme";
	o.bb_repo_slug = (char *)"gw";
	assert_int_equal(resolve(&t, "/srv/git/gw.git", &o), 0);
	assert_string_equal(t.base_url, "https://api.bitbucket.org");
	tg_bb_target_release(&t);

	memset(&o, 0, sizeof(o));
	o.repo_url = (char *)"/srv/git/gw.git";
	assert_int_equal(tg_bb_target_resolve(&t, &o, &err), TG_EINVALID);
	assert_non_null(strstr(err.msg, "bitbucket.project and bitbucket.repo_slug"));
	assert_null(t.base_url);
}

static void test_bitbucket__status_requests_follow_the_documented_shapes(void **state)
{
	struct tg_bb_target t;
	struct tg_bb_status st = { "tyk-gitops-prod", "SUCCESSFUL", "tyk-gitops prod",
				   "http://127.0.0.1:9180/api/v1/syncs/prod",
				   "2 created, 1 updated, 0 deleted, 5 unchanged" };
	char *url, *body;

	(void)state;
	assert_int_equal(resolve(&t, "https://bitbucket.org/acme/gateway-config.git", NULL), 0);
	tg_bb_status_request(&url, &body, &t, "709d658dc5b6d6afcd46049c2f332ee3f515a67d", &st);
	/* developer.atlassian.com/cloud/bitbucket/rest/api-group-commit-statuses/ */
	assert_string_equal(url, "https://api.bitbucket.org/2.0/repositories/acme/gateway-config/"
				 "commit/709d658dc5b6d6afcd46049c2f332ee3f515a67d/statuses/build");
	assert_string_equal(
		body,
		"{\"key\":\"tyk-gitops-prod\",\"state\":\"SUCCESSFUL\",\"name\":\"tyk-gitops prod\","
		"\"url\":\"http://127.0.0.1:9180/api/v1/syncs/prod\",\"description\":\"2 created, 1 "
		"updated, 0 deleted, 5 unchanged\"}");
	free(url);
	free(body);
	tg_bb_target_release(&t);

	assert_int_equal(resolve(&t, "https://bb.corp/scm/PLAT/gw.git", NULL), 0);
	tg_bb_status_request(&url, &body, &t, "abc", &st);
	/* developer.atlassian.com/server/bitbucket/how-tos/updating-build-status-for-commits */
	assert_string_equal(
		url, "https://bb.corp/rest/api/latest/projects/PLAT/repos/gw/commits/abc/builds");
	free(url);
	free(body);
	tg_bb_target_release(&t);
}

static void test_bitbucket__fields_are_clipped_to_data_center_limits(void **state)
{
	struct tg_bb_target t;
	char desc[600], longurl[500];
	struct tg_bb_status st = { "k", "FAILED", "n", longurl, desc };
	char *url, *body, *c;
	cJSON *j;

	(void)state;
	/* 2-byte characters so a cut could land mid-sequence. */
	for (size_t i = 0; i + 2 < sizeof(desc); i += 2)
		memcpy(desc + i, "\xc3\xa9", 2);
	desc[sizeof(desc) - 2] = '\0';
	memset(longurl, 'a', sizeof(longurl) - 1);
	memcpy(longurl, "https://", 8);
	longurl[sizeof(longurl) - 1] = '\0';
	assert_int_equal(resolve(&t, "https://bb.corp/scm/P/r.git", NULL), 0);
	tg_bb_status_request(&url, &body, &t, "abc", &st);
	j = cJSON_Parse(body);
	assert_non_null(j);
	c = cJSON_GetObjectItem(j, "description")->valuestring;
	assert_true(strlen(c) <= TG_BB_FIELD_MAX);
	assert_string_equal(c + strlen(c) - 3, "\xe2\x80\xa6");
	assert_int_equal((strlen(c) - 3) % 2, 0); /* whole characters kept */
	/* A URL past 450 would point nowhere once cut: left out. */
	assert_null(cJSON_GetObjectItem(j, "url"));
	cJSON_Delete(j);
	free(url);
	free(body);
	tg_bb_target_release(&t);
	c = tg_bb_clip("short", 255);
	assert_string_equal(c, "short");
	free(c);
}

static void test_bitbucket__status_keys_are_stable_and_at_most_40(void **state)
{
	char a[TG_BB_KEY_MAX + 1], b[TG_BB_KEY_MAX + 1];

	(void)state;
	tg_bb_status_key(a, "prod");
	assert_string_equal(a, "tyk-gitops-prod");
	tg_bb_status_key(a, "a-very-long-sync-name-for-the-eu-west-production");
	tg_bb_status_key(b, "a-very-long-sync-name-for-the-eu-west-production-2");
	assert_int_equal(strlen(a), 40);
	assert_int_equal(strlen(b), 40);
	assert_string_not_equal(a, b);
	/* the name's first 20 bytes, then 8 hex digits of its hash */
	assert_memory_equal(a, "tyk-gitops-a-very-long-sync-nam-", 32);
	tg_bb_status_key(b, "a-very-long-sync-name-for-the-eu-west-production");
	assert_string_equal(a, b);
}

static void test_bitbucket__default_link_is_the_sync_page(void **state)
{
	char *u;

	(void)state;
	u = tg_bb_default_status_url("127.0.0.1:9180", "prod");
	assert_string_equal(u, "http://127.0.0.1:9180/api/v1/syncs/prod");
	free(u);
	u = tg_bb_default_status_url("0.0.0.0:9180", "eu west");
	assert_string_equal(u, "http://localhost:9180/api/v1/syncs/eu%20west");
	free(u);
	u = tg_bb_default_status_url(":9180", "p");
	assert_string_equal(u, "http://localhost:9180/api/v1/syncs/p");
	free(u);
}

static void test_bitbucket__error_replies_of_cloud_and_data_center(void **state)
{
	char m[64];
	/* Cloud's error object; Data Center's errors list. */
	static const char cloud[] =
		"{\"type\":\"error\",\"error\":{\"message\":\"Repository not found\"}}";
	static const char dc[] = "{\"errors\":[{\"context\":null,\"message\":\"Authentication "
				 "failed. Please check your credentials and try again.\","
				 "\"exceptionName\":\"com.atlassian.bitbucket.auth."
				 "IncorrectPasswordAuthenticationException\"}]}";

	(void)state;
	tg_bb_reply_error(m, sizeof(m), cloud, strlen(cloud));
	assert_string_equal(m, "Repository not found");
	tg_bb_reply_error(m, sizeof(m), dc, strlen(dc));
	assert_string_equal(m, "Authentication failed. Please check your credentials and try ag");
	tg_bb_reply_error(m, sizeof(m), "<html>502</html>", 16);
	assert_string_equal(m, "");
	tg_bb_reply_error(m, sizeof(m), "{\"error\":{\"message\":\"a\\u001b[31mb\"}}", 34);
	assert_null(strchr(m, '\x1b'));
}

static void test_bitbucket__retry_after_seconds_and_http_dates(void **state)
{
	/* 2026-01-01T00:00:00Z */
	long long now = 1767225600000LL;

	(void)state;
	assert_int_equal(tg_bb_retry_after_ms("1", 1, now, 60000), 1000);
	assert_int_equal(tg_bb_retry_after_ms("120", 3, now, 60000), 60000);
	assert_int_equal(tg_bb_retry_after_ms("Thu, 01 Jan 2026 00:00:30 GMT", 29, now, 60000),
			 30000);
	assert_int_equal(tg_bb_retry_after_ms("Wed, 31 Dec 2025 23:00:00 GMT", 29, now, 60000), 0);
	assert_int_equal(tg_bb_retry_after_ms("soon", 4, now, 60000), -1);
	assert_int_equal(tg_bb_retry_after_ms("-1", 2, now, 60000), -1);
	assert_int_equal(tg_bb_retry_after_ms("Thu, 01 Foo 2026 00:00:30 GMT", 29, now, 60000), -1);
	assert_int_equal(tg_bb_retry_after_ms("", 0, now, 60000), -1);
}

static void test_bitbucket__results_and_what_is_retried(void **state)
{
	(void)state;
	assert_string_equal(tg_bb_result_name(201, 0), "ok");
	assert_string_equal(tg_bb_result_name(204, 0), "ok");
	assert_string_equal(tg_bb_result_name(401, 0), "unauthorized");
	assert_string_equal(tg_bb_result_name(404, 0), "not_found");
	assert_string_equal(tg_bb_result_name(400, 0), "rejected");
	assert_string_equal(tg_bb_result_name(429, 0), "rate_limited");
	assert_string_equal(tg_bb_result_name(503, 0), "server_error");
	assert_string_equal(tg_bb_result_name(0, 1), "timeout");
	assert_string_equal(tg_bb_result_name(0, 0), "error");
	assert_true(tg_bb_retryable(429, 0) && tg_bb_retryable(500, 0) && tg_bb_retryable(0, 1) &&
		    tg_bb_retryable(0, 0));
	assert_false(tg_bb_retryable(401, 0) || tg_bb_retryable(404, 0) ||
		     tg_bb_retryable(400, 0) || tg_bb_retryable(201, 0));
}

/* --- Code Insights ----------------------------------------------------------------- */

static void plan_item(struct tg_plan *p, enum tg_action a, const char *id,
		      const struct tg_object *desired, const cJSON *actual)
{
	struct tg_plan_item *it;

	p->items = tg_xreallocarray(p->items, p->len + 1, sizeof(*p->items));
	it = &p->items[p->len++];
	memset(it, 0, sizeof(*it));
	it->kind = TG_KIND_API;
	it->id = tg_xstrdup(id);
	it->action = a;
	it->desired = desired;
	it->actual = actual;
	p->counts[a]++;
}

static void test_insights__problems_and_changes_become_annotations(void **state)
{
	struct tg_reconcile_result res;
	struct tg_object o = { 0 };
	struct tg_insights ins;
	struct tg_insights_input in = { "prod", "https://ci.example/1", "env", 1, &res, 0 };
	struct tg_marker m = { 0 };
	cJSON *gone = cJSON_Parse("{\"api_id\":\"gone\",\"config_data\":{}}"), *a;
	struct tg_change ch = { (char *)"proxy.listen_path", (char *)"\"/a/\"", (char *)"\"/b/\"" };

	(void)state;
	memset(&res, 0, sizeof(res));
	tg_problems_init(&res.problems);
	tg_problems_add(&res.problems, TG_SEV_WARNING, "apis/x.json", 4, 2, NULL, "unknown file");
	o.file = (char *)"apis/new.json";
	o.line = 3;
	m.sync = (char *)"prod";
	m.file = (char *)"apis/gone.json";
	tg_marker_stamp(gone, TG_KIND_API, &m);
	plan_item(&res.plan, TG_ACTION_CREATE, "new", &o, NULL);
	plan_item(&res.plan, TG_ACTION_UPDATE, "upd", &o, NULL);
	res.plan.items[1].changes.items = &ch;
	res.plan.items[1].changes.len = 1;
	plan_item(&res.plan, TG_ACTION_DELETE, "gone", NULL, gone);
	plan_item(&res.plan, TG_ACTION_NONE, "same", &o, NULL);

	tg_insights_build(&ins, TG_BB_CLOUD, &in);
	assert_true(ins.passed);
	assert_int_equal(ins.n_found, 4);
	assert_int_equal(ins.n_batches, 1);
	assert_int_equal(cJSON_GetArraySize(ins.batches[0]), 4);
	assert_string_equal(cJSON_GetObjectItem(ins.report, "result")->valuestring, "PASSED");
	assert_string_equal(cJSON_GetObjectItem(ins.report, "link")->valuestring,
			    "https://ci.example/1");
	a = cJSON_GetArrayItem(ins.batches[0], 0);
	assert_string_equal(cJSON_GetObjectItem(a, "path")->valuestring, "env/apis/x.json");
	assert_int_equal(cJSON_GetObjectItem(a, "line")->valueint, 4);
	assert_string_equal(cJSON_GetObjectItem(a, "severity")->valuestring, "LOW");
	assert_string_equal(cJSON_GetObjectItem(a, "summary")->valuestring,
			    "warning: unknown file");
	a = cJSON_GetArrayItem(ins.batches[0], 2);
	assert_string_equal(cJSON_GetObjectItem(a, "summary")->valuestring,
			    "will update api 'upd'");
	assert_string_equal(cJSON_GetObjectItem(a, "details")->valuestring,
			    "proxy.listen_path: \"/a/\" -> \"/b/\"");
	a = cJSON_GetArrayItem(ins.batches[0], 3);
	assert_string_equal(cJSON_GetObjectItem(a, "path")->valuestring, "env/apis/gone.json");
	assert_null(cJSON_GetObjectItem(a, "line"));
	assert_string_equal(cJSON_GetObjectItem(a, "severity")->valuestring, "MEDIUM");
	tg_insights_release(&ins);

	/* Data Center: wrapped, "message" holds both texts, PASS/FAIL. */
	tg_problems_add(&res.problems, TG_SEV_ERROR, "apis/y.json", 1, 1, "api_id", "missing");
	res.outcome = TG_OUTCOME_REFUSED;
	tg_insights_build(&ins, TG_BB_DC, &in);
	assert_false(ins.passed);
	assert_string_equal(cJSON_GetObjectItem(ins.report, "result")->valuestring, "FAIL");
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ins.report, "data")), 6);
	a = cJSON_GetArrayItem(cJSON_GetObjectItem(ins.batches[0], "annotations"), 3);
	assert_string_equal(cJSON_GetObjectItem(a, "message")->valuestring,
			    "will update api 'upd'\nproxy.listen_path: \"/a/\" -> \"/b/\"");
	assert_string_equal(cJSON_GetObjectItem(a, "externalId")->valuestring, "tyk-gitops-4");
	tg_insights_release(&ins);

	res.plan.items[1].changes.items = NULL;
	res.plan.items[1].changes.len = 0;
	for (size_t i = 0; i < res.plan.len; i++)
		free(res.plan.items[i].id);
	free(res.plan.items);
	tg_problems_release(&res.problems);
	cJSON_Delete(gone);
}

static void test_insights__batches_and_the_cut_at_the_report_limit(void **state)
{
	struct tg_reconcile_result res;
	struct tg_insights ins;
	struct tg_insights_input in = { NULL, NULL, NULL, 0, &res, 0 };
	struct tg_buf md = TG_BUF_INIT;
	const char *details;

	(void)state;
	memset(&res, 0, sizeof(res));
	tg_problems_init(&res.problems);
	for (int i = 0; i < 1234; i++)
		tg_problems_add(&res.problems, TG_SEV_ERROR, "apis/a.yaml", i + 1, 1, NULL,
				"problem %d", i);
	res.outcome = TG_OUTCOME_REFUSED;
	tg_insights_build(&ins, TG_BB_CLOUD, &in);
	assert_int_equal(ins.n_annotations, 1000);
	assert_int_equal(ins.n_batches, 10);
	for (size_t b = 0; b < ins.n_batches; b++)
		assert_int_equal(cJSON_GetArraySize(ins.batches[b]), 100);
	details = cJSON_GetObjectItem(ins.report, "details")->valuestring;
	assert_non_null(strstr(details, "Showing 1000 of 1234 annotations"));
	tg_insights_release(&ins);
	tg_insights_build(&ins, TG_BB_DC, &in);
	assert_int_equal(ins.n_batches, 1);
	tg_insights_release(&ins);

	/* Markdown stays comment-sized and says what it left out. */
	tg_insights_markdown(&md, &in, 4096);
	assert_true(md.len <= 4096);
	assert_non_null(strstr(tg_buf_cstr(&md), "more; `tyk-gitops diff` lists them all"));
	assert_non_null(strstr(tg_buf_cstr(&md), "- `apis/a.yaml:1` `error: problem 0`"));
	tg_buf_release(&md);
	tg_problems_release(&res.problems);
}

static void test_insights__markdown_keeps_repository_text_in_code_spans(void **state)
{
	struct tg_reconcile_result res;
	struct tg_insights_input in = { "prod", NULL, NULL, 1, &res, 0 };
	struct tg_buf md = TG_BUF_INIT;

	(void)state;
	memset(&res, 0, sizeof(res));
	tg_problems_init(&res.problems);
	tg_problems_add(&res.problems, TG_SEV_ERROR, "apis/`x`.json", 2, 1, NULL,
			"bad [link](http://evil)\n# heading");
	tg_insights_markdown(&md, &in, 32768);
	assert_non_null(strstr(tg_buf_cstr(&md),
			       "- `apis/'x'.json:2` `error: bad [link](http://evil) # heading`"));
	tg_buf_release(&md);
	tg_problems_release(&res.problems);
}

static void test_insights__report_urls(void **state)
{
	struct tg_bb_target t;
	char *u;

	(void)state;
	assert_int_equal(resolve(&t, "https://bitbucket.org/acme/gw.git", NULL), 0);
	u = tg_insights_annotations_url(&t, "abc", "tyk-gitops-prod");
	assert_string_equal(u, "https://api.bitbucket.org/2.0/repositories/acme/gw/commit/abc/"
			       "reports/tyk-gitops-prod/annotations");
	free(u);
	tg_bb_target_release(&t);
	assert_int_equal(resolve(&t, "https://bb.corp/scm/PLAT/gw.git", NULL), 0);
	u = tg_insights_report_url(&t, "abc", "r 1");
	assert_string_equal(u, "https://bb.corp/rest/insights/1.0/projects/PLAT/repos/gw/commits/"
			       "abc/reports/r%201");
	free(u);
	tg_bb_target_release(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bitbucket__coordinates_from_every_cloud_url_form),
		cmocka_unit_test(test_bitbucket__coordinates_from_data_center_clone_urls),
		cmocka_unit_test(
			test_bitbucket__overrides_win_and_missing_coordinates_are_an_error),
		cmocka_unit_test(test_bitbucket__status_requests_follow_the_documented_shapes),
		cmocka_unit_test(test_bitbucket__fields_are_clipped_to_data_center_limits),
		cmocka_unit_test(test_bitbucket__status_keys_are_stable_and_at_most_40),
		cmocka_unit_test(test_bitbucket__default_link_is_the_sync_page),
		cmocka_unit_test(test_bitbucket__error_replies_of_cloud_and_data_center),
		cmocka_unit_test(test_bitbucket__retry_after_seconds_and_http_dates),
		cmocka_unit_test(test_bitbucket__results_and_what_is_retried),
		cmocka_unit_test(test_insights__problems_and_changes_become_annotations),
		cmocka_unit_test(test_insights__batches_and_the_cut_at_the_report_limit),
		cmocka_unit_test(test_insights__markdown_keeps_repository_text_in_code_spans),
		cmocka_unit_test(test_insights__report_urls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
