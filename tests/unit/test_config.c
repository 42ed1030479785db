/* Configuration file: defaults, every section, and errors with lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg/buf.h"
#include "tg/rules.h"
#include "tg/config.h"

static char *write_temp(const char *text)
{
	char *path = tg_xstrdup("/tmp/tg-config-XXXXXX");
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs(text, f);
	fclose(f);
	return path;
}

static int load(struct tg_config **cfg, const char *text, struct tg_problems *p)
{
	char *path = write_temp(text);
	struct tg_err err = { 0, "" };
	int rc;

	tg_problems_init(p);
	rc = tg_config_load(cfg, path, p, &err);
	unlink(path);
	free(path);
	return rc;
}

static void test_config__reads_every_section(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;
	const struct tg_sync_config *s;

	(void)state;
	assert_int_equal(
		load(&cfg,
		     "listen: 127.0.0.1:9999\n"
		     "log: {format: text, level: debug}\n"
		     "cache_dir: /tmp/c\n"
		     "syncs:\n"
		     "  - name: prod\n"
		     "    repo:\n"
		     "      url: https://git.example/acme/cfg.git\n"
		     "      ref: {tag: v1.4.0}\n"
		     "      path: environments/prod\n"
		     "      auth: {token_file: /run/token}\n"
		     "    gateway: {url: 'http://gw:8080', secret_file: /run/secret, timeout: 5s,\n"
		     "              concurrency: 8, adaptive: false, max_list_mib: 2048}\n"
		     "    interval: 30s\n"
		     "    drift: {interval: 5m, policy: warn}\n"
		     "    prune: {enabled: false, max_delete: 3, allow_empty: true}\n"
		     "    webhook: {secret_file: /run/hook}\n",
		     &p),
		0);
	assert_string_equal(cfg->listen, "127.0.0.1:9999");
	assert_int_equal(cfg->log_format, TG_LOG_TEXT);
	assert_int_equal(cfg->n_syncs, 1);
	s = &cfg->syncs[0];
	assert_string_equal(s->name, "prod");
	assert_int_equal(s->ref_type, TG_REF_TAG);
	assert_string_equal(s->ref, "v1.4.0");
	assert_string_equal(s->path, "environments/prod");
	assert_string_equal(s->auth_token_file, "/run/token");
	assert_int_equal(s->gateway_timeout_ms, 5000);
	assert_int_equal(s->gateway_concurrency, 8);
	assert_false(s->gateway_adaptive);
	assert_int_equal(s->gateway_max_list_mib, 2048);
	assert_int_equal(s->interval_ms, 30000);
	assert_int_equal(s->drift_interval_ms, 300000);
	assert_int_equal(s->drift_policy, TG_DRIFT_WARN);
	assert_false(s->prune);
	assert_int_equal(s->max_delete, 3);
	assert_true(s->allow_empty);
	assert_int_equal(tg_config_check(cfg, &p), 0);
	tg_config_free(cfg);
	tg_problems_release(&p);
}

static void test_config__defaults(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;

	(void)state;
	assert_int_equal(load(&cfg, "syncs:\n  - name: a\n", &p), 0);
	assert_int_equal(cfg->syncs[0].interval_ms, 60000);
	assert_int_equal(cfg->syncs[0].ref_type, TG_REF_BRANCH);
	assert_string_equal(cfg->syncs[0].ref, "main");
	assert_true(cfg->syncs[0].prune);
	assert_int_equal(cfg->syncs[0].max_delete, -1);
	tg_config_free(cfg);
	tg_problems_release(&p);
}

static void test_config__unknown_key_is_named_with_its_line(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;
	struct tg_buf out = TG_BUF_INIT;

	(void)state;
	assert_int_equal(load(&cfg, "syncs:\n  - name: a\n    intervall: 5s\n", &p), TG_EINVALID);
	assert_null(cfg);
	tg_problems_format_text(&p, &out);
	assert_non_null(strstr(tg_buf_cstr(&out), ":3:"));
	assert_non_null(strstr(tg_buf_cstr(&out), "unknown key 'intervall'"));
	tg_buf_release(&out);
	tg_problems_release(&p);
}

static void test_config__all_bad_values_reported_at_once(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;

	(void)state;
	assert_int_equal(
		load(&cfg,
		     "syncs:\n  - name: a\n    interval: soon\n    drift: {policy: maybe}\n    prune: {enabled: 3}\n",
		     &p),
		TG_EINVALID);
	assert_int_equal(p.errors, 3);
	tg_problems_release(&p);
}

/* Numbers past what the options hold are errors, not undefined
 * conversions (make check runs this under UBSan). */
static void test_config__huge_numbers_are_errors(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;

	(void)state;
	assert_int_equal(load(&cfg,
			      "syncs:\n  - name: a\n    interval: 1e300\n"
			      "    prune: {max_delete: 1e300}\n    drift: {interval: -1e300}\n",
			      &p),
			 TG_EINVALID);
	assert_int_equal(p.errors, 3);
	tg_problems_release(&p);
}

static void test_config__check_requires_repo_gateway_and_unique_names(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;

	(void)state;
	assert_int_equal(load(&cfg, "syncs:\n  - name: a\n  - name: a\n", &p), 0);
	assert_int_equal(tg_config_check(cfg, &p), TG_EINVALID);
	/* 2 x (repo, gateway, secret) + duplicate name */
	assert_int_equal(p.errors, 7);
	tg_config_free(cfg);
	tg_problems_release(&p);
}

#define ISSUER "https://api.bitbucket.org/2.0/workspaces/acme/pipelines-config/identity/oidc"

static void test_config__reads_webhook_oidc_and_auth(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;
	const struct tg_sync_config *s;
	const struct tg_oidc_rule *r;

	(void)state;
	assert_int_equal(
		load(&cfg,
		     "webhook_listen: 0.0.0.0:9443\n"
		     "auth: {required: true}\n"
		     "oidc:\n"
		     "  issuers:\n"
		     "    - issuer: " ISSUER "\n"
		     "      audience: ari:cloud:bitbucket::workspace/0f8e7a2c\n"
		     "      algorithms: [RS256, ES256]\n"
		     "      ca_file: /etc/ssl/ca.pem\n"
		     "      refresh_interval: 30m\n"
		     "      min_refresh_interval: 5s\n"
		     "syncs:\n"
		     "  - name: prod\n"
		     "    webhook: {secret_file: /run/hook, repository: acme/cfg, rotation_overlap: 1h}\n"
		     "    oidc:\n"
		     "      rules:\n"
		     "        - repository_uuid: '{7d3c5b2a}'\n"
		     "          deployment_environment_uuid: '{c3c3}'\n"
		     "          branch: main\n"
		     "        - workspace_uuid: '{0f8e7a2c}'\n"
		     "          branch: 'release/*'\n"
		     "          actions: [suspend, resume]\n",
		     &p),
		0);
	assert_string_equal(cfg->webhook_listen, "0.0.0.0:9443");
	assert_true(cfg->auth_required);
	assert_int_equal(cfg->n_oidc_issuers, 1);
	assert_string_equal(cfg->oidc_issuers[0].issuer, ISSUER);
	assert_int_equal(cfg->oidc_issuers[0].algorithms, TG_JWT_RS256 | TG_JWT_ES256);
	assert_int_equal(cfg->oidc_issuers[0].refresh_interval_ms, 1800000);
	assert_int_equal(cfg->oidc_issuers[0].min_refresh_interval_ms, 5000);
	assert_int_equal(cfg->oidc_issuers[0].leeway_ms, 60000);
	s = &cfg->syncs[0];
	assert_true(s->webhook);
	assert_string_equal(s->webhook_secret_file, "/run/hook");
	assert_string_equal(s->webhook_repository, "acme/cfg");
	assert_int_equal(s->webhook_rotation_overlap_ms, 3600000);
	assert_int_equal(s->n_oidc_rules, 2);
	r = &s->oidc_rules[0];
	assert_string_equal(r->repository_uuid, "{7d3c5b2a}");
	assert_string_equal(r->branch, "main");
	assert_int_equal(r->actions, TG_API_RECONCILE); /* the default */
	assert_int_equal(s->oidc_rules[1].actions, TG_API_SUSPEND | TG_API_RESUME);
	tg_config_free(cfg);
	tg_problems_release(&p);
}

static int problems_of(const char *text, const char *needle)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;
	struct tg_buf out = TG_BUF_INIT;
	int found;

	assert_int_equal(load(&cfg, text, &p), TG_EINVALID);
	assert_null(cfg);
	tg_problems_format_text(&p, &out);
	found = strstr(tg_buf_cstr(&out), needle) != NULL;
	if (!found)
		fprintf(stderr, "problems: %s\n", tg_buf_cstr(&out));
	tg_buf_release(&out);
	tg_problems_release(&p);
	return found;
}

static void test_config__webhook_and_oidc_mistakes_are_errors_with_lines(void **state)
{
	static const char issuer[] = "oidc:\n  issuers:\n    - {issuer: " ISSUER ", audience: a}\n";
	char text[1024];

	(void)state;
	/* A webhook without a secret. */
	assert_true(problems_of("syncs:\n  - name: a\n    webhook: {repository: acme/x}\n", ":3:"));
	assert_true(problems_of("syncs:\n  - name: a\n    webhook: {}\n", "needs a secret_file"));
	/* A rule that pins neither repository nor workspace. */
	snprintf(text, sizeof(text),
		 "%ssyncs:\n  - name: a\n    oidc:\n      rules:\n"
		 "        - {branch: main}\n",
		 issuer);
	assert_true(problems_of(text, "must pin repository_uuid or workspace_uuid"));
	/* Rules without issuers; a rule naming an issuer that is not there. */
	assert_true(problems_of("syncs:\n  - name: a\n    oidc: {rules: [{workspace_uuid: x}]}\n",
				"need at least one entry in oidc.issuers"));
	snprintf(text, sizeof(text),
		 "%ssyncs:\n  - name: a\n    oidc: {rules: [{workspace_uuid: x, "
		 "issuer: 'https://evil'}]}\n",
		 issuer);
	assert_true(problems_of(text, "is not in oidc.issuers"));
	/* Two issuers: each rule names its own. */
	assert_true(problems_of("oidc:\n  issuers:\n    - {issuer: 'https://a', audience: a}\n"
				"    - {issuer: 'https://b', audience: b}\n"
				"syncs:\n  - name: a\n    oidc: {rules: [{workspace_uuid: x}]}\n",
				"must name their issuer"));
	/* Issuers: https, an audience, known algorithms, never HS256. */
	assert_true(problems_of("oidc: {issuers: [{issuer: 'http://idp', audience: a}]}\n",
				"must be an https:// URL"));
	assert_true(problems_of("oidc: {issuers: [{issuer: 'https://idp'}]}\n", "is required"));
	assert_true(problems_of("oidc: {issuers: [{issuer: 'https://idp', audience: a, "
				"algorithms: [HS256]}]}\n",
				"RS256, RS384"));
	assert_true(problems_of("oidc: {issuers: [{issuer: 'https://idp', audience: a, "
				"jwks_url: 'http://idp/keys'}]}\n",
				"'jwks_url' must be an https"));
	assert_true(problems_of("oidc: {issuers: [{issuer: 'https://idp', audience: a, "
				"actions: [reconcile]}]}\n",
				"unknown key 'actions'"));
	assert_true(problems_of("syncs:\n  - name: a\n    oidc: {rules: [{workspace_uuid: x, "
				"actions: [deploy]}]}\n",
				"reconcile, suspend and resume"));
	/* Lists of mappings: the list itself, then each entry. */
	assert_true(problems_of("oidc: {issuers: {issuer: 'https://idp'}}\n",
				"'issuers' must be a list"));
	assert_true(problems_of("oidc: {issuers: ['https://idp']}\n",
				"'issuers' entries must be mappings"));
	assert_true(problems_of("syncs:\n  - name: a\n    oidc: {rules: {workspace_uuid: x}}\n",
				"'rules' must be a list of rules"));
	snprintf(text, sizeof(text), "%ssyncs:\n  - name: a\n    oidc: {rules: [main]}\n", issuer);
	assert_true(problems_of(text, "'rules' entries must be mappings"));
	/* auth.required needs a way to authenticate. */
	assert_true(problems_of("auth: {required: true}\n",
				"needs at least one entry in oidc.issuers"));
	assert_true(problems_of("listen: 127.0.0.1:1\nwebhook_listen: 127.0.0.1:1\n",
				"must differ from listen"));
}

static void test_config__bitbucket_statuses_settings_and_mistakes(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;
	struct tg_buf out = TG_BUF_INIT;
	const struct tg_sync_config *s;

	(void)state;
	assert_int_equal(
		load(&cfg,
		     "syncs:\n  - name: a\n"
		     "    repo: {url: 'https://bitbucket.org/acme/gw.git'}\n"
		     "    gateway: {url: 'http://gw:8080', secret_file: /s}\n"
		     "    bitbucket: {token_file: /t, email: ops@example.com, timeout: 3s,\n"
		     "                status_url: 'https://gitops.example.com/s'}\n",
		     &p),
		0);
	s = &cfg->syncs[0];
	assert_true(s->bitbucket && s->bb_statuses);
	assert_string_equal(s->bb_token_file, "/t");
	assert_string_equal(s->bb_email, "ops@example.com");
	assert_int_equal(s->bb_timeout_ms, 3000);
	assert_int_equal(tg_config_check(cfg, &p), 0);
	tg_config_free(cfg);
	tg_problems_release(&p);

	assert_true(problems_of(
		"syncs:\n  - name: a\n    bitbucket: {api: server}\n",
		":3:17: error: syncs.0.bitbucket.api: 'api' must be cloud or datacenter"));
	/* App passwords are gone: an email only goes with an API token. */
	assert_true(problems_of("syncs:\n  - name: a\n    bitbucket: {email: a@b.c}\n",
				"'email' needs token_file"));
	assert_true(problems_of("syncs:\n  - name: a\n    bitbucket: {app_password: x}\n",
				"unknown key 'app_password'"));
	/* Coordinates that cannot be found fail at start, not on a status. */
	assert_int_equal(load(&cfg,
			      "syncs:\n  - name: a\n    repo: {url: /srv/git/gw.git}\n"
			      "    gateway: {url: 'http://gw:8080', secret_file: /s}\n"
			      "    bitbucket: {token_file: /t}\n",
			      &p),
			 0);
	assert_int_equal(tg_config_check(cfg, &p), TG_EINVALID);
	tg_problems_format_text(&p, &out);
	assert_non_null(
		strstr(tg_buf_cstr(&out), "cannot tell the Bitbucket Data Center repository"));
	tg_buf_release(&out);
	tg_config_free(cfg);
	tg_problems_release(&p);
}

static void test_config__webhook_and_rules_change_in_place_on_reload(void **state)
{
	struct tg_config *a = NULL, *b = NULL;
	struct tg_problems p;

	(void)state;
	assert_int_equal(load(&a, "syncs:\n  - name: a\n    webhook: {secret_file: /one}\n", &p),
			 0);
	tg_problems_release(&p);
	assert_int_equal(load(&b,
			      "oidc: {issuers: [{issuer: 'https://i', audience: x}]}\n"
			      "syncs:\n  - name: a\n    webhook: {secret_file: /two}\n"
			      "    oidc: {rules: [{repository_uuid: r}]}\n",
			      &p),
			 0);
	tg_problems_release(&p);
	/* Not a changed sync: no new syncer, no lost state. */
	assert_true(tg_sync_config_equal(&a->syncs[0], &b->syncs[0]));
	assert_false(tg_config_issuers_equal(a, b));
	tg_sync_config_swap_access(&a->syncs[0], &b->syncs[0]);
	assert_string_equal(a->syncs[0].webhook_secret_file, "/two");
	assert_int_equal(a->syncs[0].n_oidc_rules, 1);
	assert_string_equal(b->syncs[0].webhook_secret_file, "/one");
	assert_int_equal(b->syncs[0].n_oidc_rules, 0);
	assert_true(tg_config_issuers_equal(a, a));
	tg_config_free(a);
	tg_config_free(b);
}

static void test_config__reads_rules_and_health(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;
	const struct tg_sync_config *s;

	(void)state;
	assert_int_equal(
		load(&cfg,
		     "syncs:\n"
		     "  - name: a\n"
		     "    rules:\n"
		     "      auth_required: {level: warn, except: ['apis/public/*']}\n"
		     "      max_changes: {max: 7}\n"
		     "    health: {url: 'http://gw:8080', path: ping, timeout: 3s, attempts: 5,\n"
		     "             on_failure: rollback}\n"
		     "  - name: b\n",
		     &p),
		0);
	s = &cfg->syncs[0];
	assert_non_null(s->rules);
	assert_int_equal(s->rules->set[TG_RULE_AUTH_REQUIRED].enabled, 1);
	assert_int_equal(s->rules->set[TG_RULE_AUTH_REQUIRED].severity, TG_SEV_WARNING);
	assert_string_equal(s->rules->set[TG_RULE_AUTH_REQUIRED].except[0], "apis/public/*");
	assert_int_equal(s->rules->max_changes, 7);
	assert_int_equal(s->health, 1);
	assert_string_equal(s->health_url, "http://gw:8080");
	assert_string_equal(s->health_path, "ping");
	assert_int_equal(s->health_timeout_ms, 3000);
	assert_int_equal(s->health_attempts, 5);
	assert_int_equal(s->health_rate, 20); /* default */
	assert_int_equal(s->health_rollback, 1);
	/* No sections: no rules, no health check. */
	assert_null(cfg->syncs[1].rules);
	assert_int_equal(cfg->syncs[1].health, 0);
	assert_int_equal(cfg->syncs[1].health_rollback, 0);
	/* A change of rules or health is a change of the sync. */
	assert_int_equal(tg_sync_config_equal(&cfg->syncs[0], &cfg->syncs[1]), 0);
	tg_config_free(cfg);
	tg_problems_release(&p);
}

static void test_config__rule_and_health_mistakes_name_key_and_line(void **state)
{
	struct tg_config *cfg = NULL;
	struct tg_problems p;
	struct tg_buf text = TG_BUF_INIT;

	(void)state;
	assert_int_equal(load(&cfg,
			      "syncs:\n"
			      "  - name: a\n"
			      "    rules:\n"
			      "      auth_required: {level: fatal}\n"
			      "      upstream_allow: {hosts: [300.0.0.0/8]}\n"
			      "    health: {on_failure: retry, path: /ping}\n",
			      &p),
			 TG_EINVALID);
	tg_problems_format_text(&p, &text);
	assert_non_null(strstr(tg_buf_cstr(&text),
			       ":4:23: error: syncs.0.rules.auth_required.level: 'level' must be "
			       "'error' or 'warn'\n"));
	assert_non_null(strstr(tg_buf_cstr(&text),
			       ":5:24: error: syncs.0.rules.upstream_allow.hosts: '300.0.0.0/8' is "
			       "neither a host glob nor a CIDR range\n"));
	assert_non_null(
		strstr(tg_buf_cstr(&text),
		       ":6:14: error: syncs.0.health.on_failure: 'on_failure' must be 'report' or "
		       "'rollback'\n"));
	assert_non_null(
		strstr(tg_buf_cstr(&text),
		       ":6:5: error: syncs.0.health: 'health' path is relative to each listen "
		       "path: drop the leading '/'\n"));
	tg_buf_release(&text);
	tg_problems_release(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config__reads_every_section),
		cmocka_unit_test(test_config__defaults),
		cmocka_unit_test(test_config__unknown_key_is_named_with_its_line),
		cmocka_unit_test(test_config__all_bad_values_reported_at_once),
		cmocka_unit_test(test_config__huge_numbers_are_errors),
		cmocka_unit_test(test_config__check_requires_repo_gateway_and_unique_names),
		cmocka_unit_test(test_config__reads_webhook_oidc_and_auth),
		cmocka_unit_test(test_config__webhook_and_oidc_mistakes_are_errors_with_lines),
		cmocka_unit_test(test_config__webhook_and_rules_change_in_place_on_reload),
		cmocka_unit_test(test_config__bitbucket_statuses_settings_and_mistakes),
		cmocka_unit_test(test_config__reads_rules_and_health),
		cmocka_unit_test(test_config__rule_and_health_mistakes_name_key_and_line),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
