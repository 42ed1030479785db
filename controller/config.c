/*
 * Configuration file loading (see include/tg/config.h).
 *
 * Each YAML mapping is matched against a table of options; the table says
 * the key's type and where the value goes, so unknown keys and wrong types
 * are reported uniformly with their line (config_table.h).  This file holds
 * the tables, the walk, flags laid over the file, and the equality and
 * release the tables drive; options whose value is more than a string, a
 * number or a section have their setters in config_blocks.c.
 */
#include "tg/config.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg/bitbucket.h"
#include "tg/config_blocks.h"
#include "tg/config_table.h"
#include "tg/lease.h"
#include "tg/rules.h"
#include "tg/yaml.h"
#include "tg/banned.h"

#define CONFIG_MAX_SIZE (1024 * 1024)

void tg_config_problem(struct tg_config_walk *w, const char *path, const char *fmt, const char *arg)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	int line = w->doc_line, col = 0;

	if (w->pos && tg_pos_lookup(w->pos, path, &line, &col))
		line = w->doc_line, col = 0;
	/* fmt is always one of the config modules' literals with one %s. */
	tg_problems_add(w->problems, TG_SEV_ERROR, w->file, line, col, path, fmt, arg);
#pragma GCC diagnostic pop
}

char *tg_config_join_path(const char *path, const char *key)
{
	return path[0] ? tg_xasprintf("%s.%s", path, key) : tg_xstrdup(key);
}

#define S(field) offsetof(struct tg_sync_config, field)

static const struct tg_config_option auth_options[] = {
	{ "username", TG_OPT_STRING, 0, S(auth_username), NULL, NULL, NULL },
	{ "password_file", TG_OPT_STRING, 0, S(auth_password_file), NULL, NULL, NULL },
	{ "token_file", TG_OPT_STRING, 0, S(auth_token_file), NULL, NULL, NULL },
	{ "ssh_key_file", TG_OPT_STRING, 0, S(auth_ssh_key_file), NULL, NULL, NULL },
	{ "known_hosts_file", TG_OPT_STRING, 0, S(auth_known_hosts_file), NULL, NULL, NULL },
	{ "ca_file", TG_OPT_STRING, 0, S(auth_ca_file), NULL, NULL, NULL },
	{ "insecure_skip_host_key_check", TG_OPT_BOOL, 0, S(auth_insecure_skip_host_key_check),
	  NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option repo_options[] = {
	{ "url", TG_OPT_STRING, 0, S(repo_url), NULL, NULL, NULL },
	{ "ref", TG_OPT_CUSTOM, 0, 0, NULL, tg_config_set_ref, tg_config_same_ref },
	{ "path", TG_OPT_STRING, 0, S(path), NULL, NULL, NULL },
	{ "auth", TG_OPT_SECTION, 0, 0, auth_options, NULL, NULL },
	{ "trusted_keys", TG_OPT_CUSTOM, 0, 0, NULL, tg_config_set_trusted_keys,
	  tg_config_same_trusted_keys },
	{ "secrets_dir", TG_OPT_STRING, 0, S(secrets_dir), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option gateway_tls_options[] = {
	{ "ca_file", TG_OPT_STRING, 0, S(gateway_ca_file), NULL, NULL, NULL },
	{ "cert_file", TG_OPT_STRING, 0, S(gateway_cert_file), NULL, NULL, NULL },
	{ "key_file", TG_OPT_STRING, 0, S(gateway_key_file), NULL, NULL, NULL },
	{ "insecure_skip_verify", TG_OPT_BOOL, 0, S(gateway_insecure_skip_verify), NULL, NULL,
	  NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option gateway_options[] = {
	{ "url", TG_OPT_STRING, 0, S(gateway_url), NULL, NULL, NULL },
	{ "secret_file", TG_OPT_STRING, 0, S(gateway_secret_file), NULL, NULL, NULL },
	{ "tls", TG_OPT_SECTION, 0, 0, gateway_tls_options, NULL, NULL },
	{ "timeout", TG_OPT_DURATION, 0, S(gateway_timeout_ms), NULL, NULL, NULL },
	{ "concurrency", TG_OPT_INT, 0, S(gateway_concurrency), NULL, NULL, NULL },
	{ "adaptive", TG_OPT_BOOL, 0, S(gateway_adaptive), NULL, NULL, NULL },
	{ "max_list_mib", TG_OPT_INT, 0, S(gateway_max_list_mib), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option drift_options[] = {
	{ "interval", TG_OPT_DURATION, 0, S(drift_interval_ms), NULL, NULL, NULL },
	{ "policy", TG_OPT_CUSTOM, 0, 0, NULL, tg_config_set_drift_policy,
	  tg_config_same_drift_policy },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option prune_options[] = {
	{ "enabled", TG_OPT_BOOL, 0, S(prune), NULL, NULL, NULL },
	{ "max_delete", TG_OPT_INT, 0, S(max_delete), NULL, NULL, NULL },
	{ "allow_empty", TG_OPT_BOOL, 0, S(allow_empty), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option webhook_options[] = {
	{ "secret_file", TG_OPT_STRING, 0, S(webhook_secret_file), NULL, NULL, NULL },
	{ "repository", TG_OPT_STRING, 0, S(webhook_repository), NULL, NULL, NULL },
	{ "rotation_overlap", TG_OPT_DURATION, 0, S(webhook_rotation_overlap_ms), NULL, NULL,
	  NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

/* `bitbucket:` of a sync: where statuses go (see tg/bitbucket.h). */
static const struct tg_config_option bitbucket_options[] = {
	{ "statuses", TG_OPT_BOOL, 0, S(bb_statuses), NULL, NULL, NULL },
	{ "api", TG_OPT_STRING, 0, S(bb_api), NULL, NULL, NULL },
	{ "url", TG_OPT_STRING, 0, S(bb_url), NULL, NULL, NULL },
	{ "workspace", TG_OPT_STRING, 0, S(bb_workspace), NULL, NULL, NULL },
	{ "project", TG_OPT_STRING, 0, S(bb_project), NULL, NULL, NULL },
	{ "repo_slug", TG_OPT_STRING, 0, S(bb_repo_slug), NULL, NULL, NULL },
	{ "token_file", TG_OPT_STRING, 0, S(bb_token_file), NULL, NULL, NULL },
	{ "email", TG_OPT_STRING, 0, S(bb_email), NULL, NULL, NULL },
	{ "ca_file", TG_OPT_STRING, 0, S(bb_ca_file), NULL, NULL, NULL },
	{ "proxy", TG_OPT_STRING, 0, S(bb_proxy), NULL, NULL, NULL },
	{ "status_url", TG_OPT_STRING, 0, S(bb_status_url), NULL, NULL, NULL },
	{ "timeout", TG_OPT_DURATION, 0, S(bb_timeout_ms), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option health_options[] = {
	{ "enabled", TG_OPT_BOOL, 0, S(health), NULL, NULL, NULL },
	{ "url", TG_OPT_STRING, 0, S(health_url), NULL, NULL, NULL },
	{ "path", TG_OPT_STRING, 0, S(health_path), NULL, NULL, NULL },
	{ "timeout", TG_OPT_DURATION, 0, S(health_timeout_ms), NULL, NULL, NULL },
	{ "attempts", TG_OPT_INT, 0, S(health_attempts), NULL, NULL, NULL },
	{ "interval", TG_OPT_DURATION, 0, S(health_interval_ms), NULL, NULL, NULL },
	{ "max_probes", TG_OPT_INT, 0, S(health_max_probes), NULL, NULL, NULL },
	{ "rate", TG_OPT_INT, 0, S(health_rate), NULL, NULL, NULL },
	{ "on_failure", TG_OPT_CUSTOM, 0, 0, NULL, tg_config_set_on_failure,
	  tg_config_same_on_failure },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

/* `oidc:` of a sync; rules are parsed by tg_config_set_oidc_rules. */
static const struct tg_config_option sync_oidc_options[] = { { "rules", TG_OPT_CUSTOM, 0, 0, NULL,
							       tg_config_set_oidc_rules, NULL },
							     { NULL, 0, 0, 0, NULL, NULL, NULL } };

static const struct tg_config_option sync_options[] = {
	{ "name", TG_OPT_STRING, 0, S(name), NULL, NULL, NULL },
	{ "repo", TG_OPT_SECTION, 0, 0, repo_options, NULL, NULL },
	{ "gateway", TG_OPT_SECTION, 0, 0, gateway_options, NULL, NULL },
	{ "interval", TG_OPT_DURATION, 0, S(interval_ms), NULL, NULL, NULL },
	{ "drift", TG_OPT_SECTION, 0, 0, drift_options, NULL, NULL },
	{ "prune", TG_OPT_SECTION, 0, 0, prune_options, NULL, NULL },
	{ "adopt", TG_OPT_BOOL, 0, S(adopt), NULL, NULL, NULL },
	{ "suspend", TG_OPT_BOOL, 1, S(suspended), NULL, NULL, NULL },
	/* Who may trigger the sync: a reload applies them in place. */
	{ "webhook", TG_OPT_CUSTOM, 1, 0, webhook_options, tg_config_set_webhook, NULL },
	{ "oidc", TG_OPT_SECTION, 1, 0, sync_oidc_options, NULL, NULL },
	{ "backoff_max", TG_OPT_DURATION, 0, S(backoff_max_ms), NULL, NULL, NULL },
	{ "bitbucket", TG_OPT_CUSTOM, 0, 0, bitbucket_options, tg_config_set_bitbucket, NULL },
	{ "rules", TG_OPT_CUSTOM, 0, 0, NULL, tg_config_set_rules, tg_config_same_rules },
	{ "health", TG_OPT_CUSTOM, 0, 0, health_options, tg_config_set_health, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

#undef S
#define G(field) offsetof(struct tg_config, field)

static const struct tg_config_option log_options[] = {
	{ "format", TG_OPT_CUSTOM, 0, 0, NULL, tg_config_set_log_format, NULL },
	{ "level", TG_OPT_CUSTOM, 0, 0, NULL, tg_config_set_log_level, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option http_options[] = {
	{ "max_connections", TG_OPT_INT, 0, G(http_max_connections), NULL, NULL, NULL },
	{ "connection_timeout", TG_OPT_DURATION, 0, G(http_connection_timeout_ms), NULL, NULL,
	  NULL },
	{ "request_timeout", TG_OPT_DURATION, 0, G(http_request_timeout_ms), NULL, NULL, NULL },
	{ "max_wait", TG_OPT_DURATION, 0, G(http_max_wait_ms), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option auth_global_options[] = {
	{ "required", TG_OPT_BOOL, 0, G(auth_required), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option oidc_global_options[] = {
	{ "issuers", TG_OPT_CUSTOM, 0, 0, NULL, tg_config_set_issuers, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option leader_options[] = {
	{ "enabled", TG_OPT_BOOL, 0, G(le_enabled), NULL, NULL, NULL },
	{ "namespace", TG_OPT_STRING, 0, G(le_namespace), NULL, NULL, NULL },
	{ "identity", TG_OPT_STRING, 0, G(le_identity), NULL, NULL, NULL },
	{ "address", TG_OPT_STRING, 0, G(le_address), NULL, NULL, NULL },
	{ "lease_prefix", TG_OPT_STRING, 0, G(le_lease_prefix), NULL, NULL, NULL },
	{ "lease_duration", TG_OPT_DURATION, 0, G(le_duration_ms), NULL, NULL, NULL },
	{ "renew_deadline", TG_OPT_DURATION, 0, G(le_renew_deadline_ms), NULL, NULL, NULL },
	{ "retry_period", TG_OPT_DURATION, 0, G(le_retry_ms), NULL, NULL, NULL },
	{ "kube_api", TG_OPT_STRING, 0, G(kube_api), NULL, NULL, NULL },
	{ "kube_token_file", TG_OPT_STRING, 0, G(kube_token_file), NULL, NULL, NULL },
	{ "kube_ca_file", TG_OPT_STRING, 0, G(kube_ca_file), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct tg_config_option global_options[] = {
	{ "leader_election", TG_OPT_SECTION, 0, 0, leader_options, NULL, NULL },
	{ "listen", TG_OPT_STRING, 0, G(listen), NULL, NULL, NULL },
	{ "webhook_listen", TG_OPT_STRING, 0, G(webhook_listen), NULL, NULL, NULL },
	{ "auth", TG_OPT_SECTION, 0, 0, auth_global_options, NULL, NULL },
	{ "oidc", TG_OPT_SECTION, 0, 0, oidc_global_options, NULL, NULL },
	{ "probe_listen", TG_OPT_STRING, 0, G(probe_listen), NULL, NULL, NULL },
	{ "log", TG_OPT_SECTION, 0, 0, log_options, NULL, NULL },
	{ "cache_dir", TG_OPT_STRING, 0, G(cache_dir), NULL, NULL, NULL },
	{ "audit", TG_OPT_STRING, 0, G(audit), NULL, NULL, NULL },
	{ "http", TG_OPT_SECTION, 0, 0, http_options, NULL, NULL },
	{ "syncs", TG_OPT_CUSTOM, 0, 0, NULL, NULL, NULL }, /* handled by the loader */
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

#undef G

static void apply_option(struct tg_config_walk *w, const struct tg_config_option *opt,
			 const cJSON *v, void *base, const char *path)
{
	char **sp;
	long long n;

	switch (opt->type) {
	case TG_OPT_STRING:
		if (!cJSON_IsString(v) && !cJSON_IsNumber(v)) {
			tg_config_problem(w, path, "'%s' must be a string", opt->name);
			return;
		}
		sp = (char **)((char *)base + opt->offset);
		free(*sp);
		*sp = cJSON_IsString(v) ? tg_xstrdup(v->valuestring) : cJSON_PrintUnformatted(v);
		return;
	case TG_OPT_BOOL:
		if (!cJSON_IsBool(v)) {
			tg_config_problem(w, path, "'%s' must be true or false", opt->name);
			return;
		}
		*(int *)((char *)base + opt->offset) = cJSON_IsTrue(v);
		return;
	case TG_OPT_INT:
		/* The range first: converting a double past long long's range
		 * is undefined. */
		if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > INT_MAX ||
		    v->valuedouble != (double)(long long)v->valuedouble) {
			tg_config_problem(w, path, "'%s' must be a non-negative integer",
					  opt->name);
			return;
		}
		*(long long *)((char *)base + opt->offset) = (long long)v->valuedouble;
		return;
	case TG_OPT_DURATION:
		/* Seconds; bounded so that the milliseconds fit a long long. */
		if (cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble <= 9.0e15) {
			n = (long long)(v->valuedouble * 1000);
		} else if (!cJSON_IsString(v) || tg_parse_duration_ms(&n, v->valuestring)) {
			tg_config_problem(w, path, "'%s' must be a duration such as 30s, 5m or 1h",
					  opt->name);
			return;
		}
		*(long long *)((char *)base + opt->offset) = n;
		return;
	case TG_OPT_SECTION:
		if (!cJSON_IsObject(v)) {
			tg_config_problem(w, path, "'%s' must be a mapping", opt->name);
			return;
		}
		tg_config_walk_table(w, opt->section, v, base, path);
		return;
	case TG_OPT_CUSTOM:
		if (opt->custom)
			opt->custom(w, opt, v, base, path);
		return;
	}
}

void tg_config_walk_table(struct tg_config_walk *w, const struct tg_config_option *table,
			  const cJSON *map, void *base, const char *path)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, map)
	{
		const struct tg_config_option *opt;
		char *p = tg_config_join_path(path, v->string);

		for (opt = table; opt->name; opt++)
			if (!strcmp(opt->name, v->string))
				break;
		if (opt->name)
			apply_option(w, opt, v, base, p);
		else
			tg_config_problem(w, p, "unknown key '%s'", v->string);
		free(p);
	}
}

void tg_sync_config_defaults(struct tg_sync_config *s)
{
	memset(s, 0, sizeof(*s));
	s->name = tg_xstrdup("default");
	s->ref_type = TG_REF_BRANCH;
	s->ref = tg_xstrdup("main");
	s->path = tg_xstrdup("");
	s->gateway_timeout_ms = 30000;
	s->gateway_concurrency = 16;
	s->gateway_adaptive = 1;
	s->interval_ms = 60000;
	s->drift_interval_ms = 300000;
	s->drift_policy = TG_DRIFT_CORRECT;
	s->prune = 1;
	s->max_delete = -1;
	s->webhook_rotation_overlap_ms = 10LL * 60 * 1000;
	s->bb_statuses = 1;
	s->bb_timeout_ms = 10000;
	s->health_timeout_ms = 2000;
	s->health_attempts = 3;
	s->health_interval_ms = 500;
	s->health_max_probes = 50;
	s->health_rate = 20;
}

struct tg_config *tg_config_new(void)
{
	struct tg_config *cfg = tg_xcalloc(1, sizeof(*cfg));

	cfg->listen = tg_xstrdup("127.0.0.1:9180");
	cfg->log_level = TG_LOG_INFO;
	cfg->log_format = TG_LOG_JSON;
	cfg->cache_dir = tg_xstrdup("/var/cache/tyk-gitops");
	cfg->le_lease_prefix = tg_xstrdup("tyk-gitops");
	cfg->le_duration_ms = TG_LEASE_DEFAULT_DURATION_MS;
	cfg->le_renew_deadline_ms = TG_LEASE_DEFAULT_RENEW_DEADLINE_MS;
	cfg->le_retry_ms = TG_LEASE_DEFAULT_RETRY_MS;
	return cfg;
}

struct tg_sync_config *tg_config_add_sync(struct tg_config *cfg)
{
	struct tg_sync_config *s;

	cfg->syncs = tg_xreallocarray(cfg->syncs, cfg->n_syncs + 1, sizeof(*cfg->syncs));
	s = &cfg->syncs[cfg->n_syncs++];
	tg_sync_config_defaults(s);
	return s;
}

static void load_syncs(struct tg_config_walk *w, struct tg_config *cfg, const cJSON *list)
{
	const cJSON *item;
	int i = 0;

	if (!cJSON_IsArray(list)) {
		tg_config_problem(w, "syncs", "'%s' must be a list", "syncs");
		return;
	}
	cJSON_ArrayForEach(item, list)
	{
		char path[32];
		struct tg_sync_config *s;

		snprintf(path, sizeof(path), "syncs.%d", i++);
		if (!cJSON_IsObject(item)) {
			tg_config_problem(w, path, "'%s' entries must be mappings", "syncs");
			continue;
		}
		s = tg_config_add_sync(cfg);
		tg_config_walk_table(w, sync_options, item, s, path);
	}
}

int tg_config_check(const struct tg_config *cfg, struct tg_problems *problems)
{
	const char *file = cfg->path;
	size_t before = problems->errors;

	for (size_t i = 0; i < cfg->n_syncs; i++) {
		const struct tg_sync_config *s = &cfg->syncs[i];

		if (!s->repo_url || !*s->repo_url)
			tg_problems_add(problems, TG_SEV_ERROR, file, 0, 0, "repo.url",
					"sync '%s' has no repository url", s->name);
		if (!s->gateway_url || !*s->gateway_url)
			tg_problems_add(problems, TG_SEV_ERROR, file, 0, 0, "gateway.url",
					"sync '%s' has no gateway url", s->name);
		if (!s->gateway_secret_file)
			tg_problems_add(problems, TG_SEV_ERROR, file, 0, 0, "gateway.secret_file",
					"sync '%s' has no gateway secret_file", s->name);
		if (s->bitbucket) {
			struct tg_bb_target t;
			struct tg_err err = { 0, "" };

			/* Fail at start, not on the first status. */
			if (tg_bb_target_resolve(&t, s, &err))
				tg_problems_add(problems, TG_SEV_ERROR, file, 0, 0, "bitbucket",
						"sync '%s': %s", s->name, err.msg);
			else
				tg_bb_target_release(&t);
		}
		for (size_t j = 0; j < i; j++)
			if (!strcmp(cfg->syncs[j].name, s->name))
				tg_problems_add(problems, TG_SEV_ERROR, file, 0, 0, "name",
						"duplicate sync name '%s'", s->name);
	}
	if (cfg->n_syncs == 0)
		tg_problems_add(problems, TG_SEV_ERROR, file, 0, 0, "syncs",
				"no sync is configured");
	if (cfg->le_enabled) {
		/* client-go's rules: the holder gives up before others may
		 * take over, and retries several times before giving up. */
		if (cfg->le_renew_deadline_ms >= cfg->le_duration_ms)
			tg_problems_add(problems, TG_SEV_ERROR, file, 0, 0,
					"leader_election.renew_deadline",
					"renew_deadline must be shorter than lease_duration");
		if (cfg->le_retry_ms <= 0 || cfg->le_retry_ms * 2 > cfg->le_renew_deadline_ms)
			tg_problems_add(
				problems, TG_SEV_ERROR, file, 0, 0, "leader_election.retry_period",
				"retry_period must be positive and at most half of renew_deadline");
		if (cfg->le_duration_ms < 1000)
			tg_problems_add(problems, TG_SEV_ERROR, file, 0, 0,
					"leader_election.lease_duration",
					"lease_duration must be at least 1s");
		if (!cfg->le_lease_prefix || !cfg->le_lease_prefix[0] ||
		    strlen(cfg->le_lease_prefix) > 60)
			tg_problems_add(problems, TG_SEV_ERROR, file, 0, 0,
					"leader_election.lease_prefix",
					"lease_prefix must be 1 to 60 characters");
	}
	return problems->errors > before ? TG_EINVALID : 0;
}

int tg_config_load(struct tg_config **out, const char *path, struct tg_problems *problems,
		   struct tg_err *err)
{
	struct tg_docs docs = { 0 };
	struct tg_config *cfg = NULL;
	struct tg_config_walk w;
	char *data = NULL;
	size_t len = 0;
	size_t errors_before = problems->errors;
	int rc;

	rc = tg_read_file(&data, &len, path, CONFIG_MAX_SIZE, err);
	if (rc)
		return rc;
	cfg = tg_config_new();
	cfg->path = tg_xstrdup(path);
	tg_yaml_parse(&docs, data, len, path, problems);
	if (problems->errors > errors_before)
		goto out;
	if (docs.len != 1 || !cJSON_IsObject(docs.items[0].json)) {
		tg_problems_add(problems, TG_SEV_ERROR, path, 1, 1, NULL,
				"the configuration must be one YAML mapping");
		goto out;
	}
	w.file = path;
	w.pos = docs.items[0].pos;
	w.doc_line = docs.items[0].line;
	w.problems = problems;
	w.cfg = cfg;
	tg_config_walk_table(&w, global_options, docs.items[0].json, cfg, "");
	/* Issuers first (walk_table above), so rules can be checked against them. */
	load_syncs(&w, cfg, cJSON_GetObjectItemCaseSensitive(docs.items[0].json, "syncs"));
	if (cfg->auth_required && cfg->n_oidc_issuers == 0)
		tg_config_problem(&w, "auth.required",
				  "'%s' needs at least one entry in oidc.issuers", "required");
	if (cfg->webhook_listen && tg_str_eq(cfg->webhook_listen, cfg->listen))
		tg_config_problem(&w, "webhook_listen", "'%s' must differ from listen",
				  "webhook_listen");
out:
	free(data);
	tg_docs_release(&docs);
	if (problems->errors > errors_before) {
		tg_config_free(cfg);
		tg_err_set(err, TG_EINVALID, "invalid configuration '%s'", path);
		return TG_EINVALID;
	}
	*out = cfg;
	return 0;
}

struct tg_sync_config *tg_config_find_sync(struct tg_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->n_syncs; i++)
		if (!strcmp(cfg->syncs[i].name, name))
			return &cfg->syncs[i];
	return NULL;
}

/* --- flags over the file ------------------------------------------------ */

static void replace(char **dst, const char *src)
{
	if (!src)
		return;
	free(*dst);
	*dst = tg_xstrdup(src);
}

static int single_sync_flags(const struct tg_config_overrides *ov)
{
	return ov->name || ov->repo || ov->branch || ov->tag || ov->commit || ov->path ||
	       ov->gateway || ov->secret_file || ov->secrets_dir || ov->adopt || ov->no_prune ||
	       ov->allow_empty;
}

static int overlay_sync(struct tg_config *cfg, const struct tg_config_overrides *ov,
			struct tg_err *err)
{
	struct tg_sync_config *s = NULL;

	if (ov->sync)
		s = tg_config_find_sync(cfg, ov->sync);
	else if (cfg->n_syncs == 1)
		s = &cfg->syncs[0];
	else if (cfg->n_syncs == 0)
		s = tg_config_add_sync(cfg);
	if (!s)
		return tg_err_set(err, TG_EINVALID,
				  "flags for one sync need --sync NAME when the file has several");
	replace(&s->name, ov->name);
	replace(&s->repo_url, ov->repo);
	if (ov->branch || ov->tag || ov->commit) {
		s->ref_type = ov->commit ? TG_REF_COMMIT : ov->tag ? TG_REF_TAG : TG_REF_BRANCH;
		replace(&s->ref, ov->commit ? ov->commit : ov->tag ? ov->tag : ov->branch);
	}
	replace(&s->path, ov->path);
	replace(&s->gateway_url, ov->gateway);
	replace(&s->gateway_secret_file, ov->secret_file);
	replace(&s->secrets_dir, ov->secrets_dir);
	s->adopt |= ov->adopt;
	if (ov->no_prune)
		s->prune = 0;
	s->allow_empty |= ov->allow_empty;
	return 0;
}

static int overlay(struct tg_config *cfg, const struct tg_config_overrides *ov, int have_file,
		   struct tg_err *err)
{
	if (ov->cache_dir) {
		replace(&cfg->cache_dir, ov->cache_dir);
	} else if (!have_file) {
		const char *home = getenv("HOME");

		free(cfg->cache_dir);
		cfg->cache_dir = tg_xasprintf("%s/.cache/tyk-gitops/syncs", home ? home : "/tmp");
	}
	replace(&cfg->audit, ov->audit);
	replace(&cfg->kube_api, ov->kube_api);
	replace(&cfg->kube_token_file, ov->kube_token_file);
	replace(&cfg->kube_ca_file, ov->kube_ca_file);
	replace(&cfg->le_identity, ov->lease_identity);
	replace(&cfg->le_address, ov->advertise_url);
	if (ov->log_format && tg_log_parse_format(&cfg->log_format, ov->log_format))
		return tg_err_set(err, TG_EINVALID, "--log-format must be json or text");
	if (ov->log_level && tg_log_parse_level(&cfg->log_level, ov->log_level))
		return tg_err_set(err, TG_EINVALID,
				  "--log-level must be debug, info, warn or error");
	if (single_sync_flags(ov) && overlay_sync(cfg, ov, err))
		return TG_EINVALID;
	if (ov->local_dir)
		for (size_t i = 0; i < cfg->n_syncs; i++)
			if (!cfg->syncs[i].repo_url)
				cfg->syncs[i].repo_url = tg_xstrdup(ov->local_dir);
	return 0;
}

int tg_config_build(struct tg_config **out, const char *file, const struct tg_config_overrides *ov,
		    struct tg_problems *problems, struct tg_err *err)
{
	static const struct tg_config_overrides none = { 0 };
	struct tg_config *cfg = NULL;
	int rc;

	*out = NULL;
	if (!ov)
		ov = &none;
	if (file) {
		if ((rc = tg_config_load(&cfg, file, problems, err)) != 0)
			return rc;
	} else {
		cfg = tg_config_new();
	}
	if ((rc = overlay(cfg, ov, file != NULL, err)) != 0)
		goto fail;
	if (tg_config_check(cfg, problems)) {
		rc = tg_err_set(err, TG_EINVALID, "invalid configuration");
		goto fail;
	}
	*out = cfg;
	return 0;
fail:
	tg_config_free(cfg);
	return rc;
}

/* --- equality and release, driven by the option tables ------------------ */

static int same_options(const struct tg_config_option *table, const void *a, const void *b)
{
	for (const struct tg_config_option *o = table; o->name; o++) {
		const char *pa = (const char *)a + o->offset, *pb = (const char *)b + o->offset;

		if (o->live)
			continue;
		switch (o->type) {
		case TG_OPT_STRING:
			if (!tg_str_eq(*(char *const *)pa, *(char *const *)pb))
				return 0;
			break;
		case TG_OPT_BOOL:
			if (*(const int *)pa != *(const int *)pb)
				return 0;
			break;
		case TG_OPT_INT:
		case TG_OPT_DURATION:
			if (*(const long long *)pa != *(const long long *)pb)
				return 0;
			break;
		case TG_OPT_SECTION:
			if (!same_options(o->section, a, b))
				return 0;
			break;
		case TG_OPT_CUSTOM:
			if (o->equal && !o->equal(a, b))
				return 0;
			if (!o->equal && o->section && !same_options(o->section, a, b))
				return 0;
			break;
		}
	}
	return 1;
}

int tg_sync_config_equal(const struct tg_sync_config *a, const struct tg_sync_config *b)
{
	return same_options(sync_options, a, b);
}

static void free_strings(const struct tg_config_option *table, void *base)
{
	for (const struct tg_config_option *o = table; o->name; o++) {
		if (o->type == TG_OPT_STRING)
			free(*(char **)((char *)base + o->offset));
		else if (o->section)
			free_strings(o->section, base);
	}
}

static void sync_release(struct tg_sync_config *s)
{
	free_strings(sync_options, s);
	for (size_t i = 0; i < s->n_oidc_rules; i++)
		tg_config_rule_release(&s->oidc_rules[i]);
	free(s->oidc_rules);
	free(s->ref); /* set by the custom "ref" option */
	tg_rules_free(s->rules);
	free(s->rules_json);
	for (size_t i = 0; i < s->n_trusted_keys; i++)
		free(s->trusted_keys[i]);
	free(s->trusted_keys);
}

void tg_config_free(struct tg_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_syncs; i++)
		sync_release(&cfg->syncs[i]);
	free(cfg->syncs);
	free(cfg->path);
	free(cfg->listen);
	free(cfg->probe_listen);
	free(cfg->cache_dir);
	free(cfg->audit);
	free(cfg->webhook_listen);
	free_strings(leader_options, cfg);
	for (size_t i = 0; i < cfg->n_oidc_issuers; i++)
		tg_config_issuer_release(&cfg->oidc_issuers[i]);
	free(cfg->oidc_issuers);
	free(cfg);
}

#define SWAP(type, x, y)         \
	do {                     \
		type tmp_ = (x); \
		(x) = (y);       \
		(y) = tmp_;      \
	} while (0)

void tg_sync_config_swap_access(struct tg_sync_config *a, struct tg_sync_config *b)
{
	SWAP(int, a->webhook, b->webhook);
	SWAP(char *, a->webhook_secret_file, b->webhook_secret_file);
	SWAP(char *, a->webhook_repository, b->webhook_repository);
	SWAP(long long, a->webhook_rotation_overlap_ms, b->webhook_rotation_overlap_ms);
	SWAP(struct tg_oidc_rule *, a->oidc_rules, b->oidc_rules);
	SWAP(size_t, a->n_oidc_rules, b->n_oidc_rules);
}

#undef SWAP

int tg_config_issuers_equal(const struct tg_config *a, const struct tg_config *b)
{
	if (a->n_oidc_issuers != b->n_oidc_issuers)
		return 0;
	for (size_t i = 0; i < a->n_oidc_issuers; i++) {
		const struct tg_oidc_issuer *x = &a->oidc_issuers[i], *y = &b->oidc_issuers[i];

		if (!tg_str_eq(x->issuer, y->issuer) || !tg_str_eq(x->audience, y->audience) ||
		    !tg_str_eq(x->jwks_url, y->jwks_url) ||
		    !tg_str_eq(x->jwks_file, y->jwks_file) || !tg_str_eq(x->ca_file, y->ca_file) ||
		    x->algorithms != y->algorithms ||
		    x->refresh_interval_ms != y->refresh_interval_ms ||
		    x->min_refresh_interval_ms != y->min_refresh_interval_ms ||
		    x->leeway_ms != y->leeway_ms)
			return 0;
	}
	return 1;
}
