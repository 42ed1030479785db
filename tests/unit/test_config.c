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
	assert_int_equal(load(&cfg,
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
		"    gateway: {url: 'http://gw:8080', secret_file: /run/secret, timeout: 5s}\n"
		"    interval: 30s\n"
		"    drift: {interval: 5m, policy: warn}\n"
		"    prune: {enabled: false, max_delete: 3, allow_empty: true}\n"
		"    webhook: {secret_file: /run/hook}\n", &p), 0);
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
	assert_int_equal(load(&cfg,
		"syncs:\n  - name: a\n    interval: soon\n    drift: {policy: maybe}\n    prune: {enabled: 3}\n",
		&p), TG_EINVALID);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config__reads_every_section),
		cmocka_unit_test(test_config__defaults),
		cmocka_unit_test(test_config__unknown_key_is_named_with_its_line),
		cmocka_unit_test(test_config__all_bad_values_reported_at_once),
		cmocka_unit_test(test_config__check_requires_repo_gateway_and_unique_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
