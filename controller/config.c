/*
 * Configuration file loading (see include/tg/config.h).
 *
 * Each YAML mapping is matched against a table of options; the table says
 * the key's type and where the value goes, so unknown keys and wrong types
 * are reported uniformly with their line.
 */
#include "tg/config.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg/bitbucket.h"
#include "tg/lease.h"
#include "tg/rules.h"
#include "tg/yaml.h"
#include "tg/banned.h"

#define CONFIG_MAX_SIZE (1024 * 1024)

enum opt_type { OPT_STRING, OPT_BOOL, OPT_INT, OPT_DURATION, OPT_SECTION, OPT_CUSTOM };

struct walk;
struct option;
typedef void (*custom_fn)(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			  const char *path);

typedef int (*equal_fn)(const void *a, const void *b);

struct option {
	const char *name;
	enum opt_type type;
	int live;                     /* a reload applies it in place (see tg_sync_config_equal) */
	size_t offset;                /* into the struct being filled */
	const struct option *section; /* OPT_SECTION: nested table (same struct) */
	custom_fn custom;
	equal_fn equal; /* OPT_CUSTOM: compares what custom sets */
};

struct walk {
	const char *file;
	const struct tg_pos_map *pos;
	int doc_line;
	struct tg_problems *problems;
	struct tg_config *cfg; /* the configuration being loaded (issuers for rules) */
};

static void problem(struct walk *w, const char *path, const char *fmt, const char *arg)
	__attribute__((format(printf, 3, 0)));

static void problem(struct walk *w, const char *path, const char *fmt, const char *arg)
{
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	int line = w->doc_line, col = 0;

	if (w->pos && tg_pos_lookup(w->pos, path, &line, &col))
		line = w->doc_line, col = 0;
	/* fmt is always one of this file's literals with one %s. */
	tg_problems_add(w->problems, TG_SEV_ERROR, w->file, line, col, path, fmt, arg);
#pragma GCC diagnostic pop
}

static char *join_path(const char *path, const char *key)
{
	return path[0] ? tg_xasprintf("%s.%s", path, key) : tg_xstrdup(key);
}

static void set_ref(struct walk *w, const struct option *opt, const cJSON *v, void *base,
		    const char *path);
static void set_drift_policy(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			     const char *path);
static void set_log_level(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			  const char *path);
static void set_log_format(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			   const char *path);
static void set_trusted_keys(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			     const char *path);
static void set_webhook(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			const char *path);
static void set_oidc_rules(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			   const char *path);
static void set_bitbucket(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			  const char *path);
static void set_actions(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			const char *path);
static void set_issuers(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			const char *path);
static void set_algorithms(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			   const char *path);
static void set_rules(struct walk *w, const struct option *opt, const cJSON *v, void *base,
		      const char *path);
static void set_health(struct walk *w, const struct option *opt, const cJSON *v, void *base,
		       const char *path);
static void set_on_failure(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			   const char *path);
static int same_rules(const void *a, const void *b);
static int same_on_failure(const void *a, const void *b);

static int same_ref(const void *a, const void *b);
static int same_drift_policy(const void *a, const void *b);
static int same_trusted_keys(const void *a, const void *b);

#define S(field) offsetof(struct tg_sync_config, field)

static const struct option auth_options[] = {
	{ "username", OPT_STRING, 0, S(auth_username), NULL, NULL, NULL },
	{ "password_file", OPT_STRING, 0, S(auth_password_file), NULL, NULL, NULL },
	{ "token_file", OPT_STRING, 0, S(auth_token_file), NULL, NULL, NULL },
	{ "ssh_key_file", OPT_STRING, 0, S(auth_ssh_key_file), NULL, NULL, NULL },
	{ "known_hosts_file", OPT_STRING, 0, S(auth_known_hosts_file), NULL, NULL, NULL },
	{ "ca_file", OPT_STRING, 0, S(auth_ca_file), NULL, NULL, NULL },
	{ "insecure_skip_host_key_check", OPT_BOOL, 0, S(auth_insecure_skip_host_key_check), NULL,
	  NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option repo_options[] = {
	{ "url", OPT_STRING, 0, S(repo_url), NULL, NULL, NULL },
	{ "ref", OPT_CUSTOM, 0, 0, NULL, set_ref, same_ref },
	{ "path", OPT_STRING, 0, S(path), NULL, NULL, NULL },
	{ "auth", OPT_SECTION, 0, 0, auth_options, NULL, NULL },
	{ "trusted_keys", OPT_CUSTOM, 0, 0, NULL, set_trusted_keys, same_trusted_keys },
	{ "secrets_dir", OPT_STRING, 0, S(secrets_dir), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option gateway_tls_options[] = {
	{ "ca_file", OPT_STRING, 0, S(gateway_ca_file), NULL, NULL, NULL },
	{ "cert_file", OPT_STRING, 0, S(gateway_cert_file), NULL, NULL, NULL },
	{ "key_file", OPT_STRING, 0, S(gateway_key_file), NULL, NULL, NULL },
	{ "insecure_skip_verify", OPT_BOOL, 0, S(gateway_insecure_skip_verify), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option gateway_options[] = {
	{ "url", OPT_STRING, 0, S(gateway_url), NULL, NULL, NULL },
	{ "secret_file", OPT_STRING, 0, S(gateway_secret_file), NULL, NULL, NULL },
	{ "tls", OPT_SECTION, 0, 0, gateway_tls_options, NULL, NULL },
	{ "timeout", OPT_DURATION, 0, S(gateway_timeout_ms), NULL, NULL, NULL },
	{ "concurrency", OPT_INT, 0, S(gateway_concurrency), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option drift_options[] = {
	{ "interval", OPT_DURATION, 0, S(drift_interval_ms), NULL, NULL, NULL },
	{ "policy", OPT_CUSTOM, 0, 0, NULL, set_drift_policy, same_drift_policy },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option prune_options[] = {
	{ "enabled", OPT_BOOL, 0, S(prune), NULL, NULL, NULL },
	{ "max_delete", OPT_INT, 0, S(max_delete), NULL, NULL, NULL },
	{ "allow_empty", OPT_BOOL, 0, S(allow_empty), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option webhook_options[] = {
	{ "secret_file", OPT_STRING, 0, S(webhook_secret_file), NULL, NULL, NULL },
	{ "repository", OPT_STRING, 0, S(webhook_repository), NULL, NULL, NULL },
	{ "rotation_overlap", OPT_DURATION, 0, S(webhook_rotation_overlap_ms), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

/* `bitbucket:` of a sync: where statuses go (see tg/bitbucket.h). */
static const struct option bitbucket_options[] = {
	{ "statuses", OPT_BOOL, 0, S(bb_statuses), NULL, NULL, NULL },
	{ "api", OPT_STRING, 0, S(bb_api), NULL, NULL, NULL },
	{ "url", OPT_STRING, 0, S(bb_url), NULL, NULL, NULL },
	{ "workspace", OPT_STRING, 0, S(bb_workspace), NULL, NULL, NULL },
	{ "project", OPT_STRING, 0, S(bb_project), NULL, NULL, NULL },
	{ "repo_slug", OPT_STRING, 0, S(bb_repo_slug), NULL, NULL, NULL },
	{ "token_file", OPT_STRING, 0, S(bb_token_file), NULL, NULL, NULL },
	{ "email", OPT_STRING, 0, S(bb_email), NULL, NULL, NULL },
	{ "ca_file", OPT_STRING, 0, S(bb_ca_file), NULL, NULL, NULL },
	{ "proxy", OPT_STRING, 0, S(bb_proxy), NULL, NULL, NULL },
	{ "status_url", OPT_STRING, 0, S(bb_status_url), NULL, NULL, NULL },
	{ "timeout", OPT_DURATION, 0, S(bb_timeout_ms), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option health_options[] = {
	{ "enabled", OPT_BOOL, 0, S(health), NULL, NULL, NULL },
	{ "url", OPT_STRING, 0, S(health_url), NULL, NULL, NULL },
	{ "path", OPT_STRING, 0, S(health_path), NULL, NULL, NULL },
	{ "timeout", OPT_DURATION, 0, S(health_timeout_ms), NULL, NULL, NULL },
	{ "attempts", OPT_INT, 0, S(health_attempts), NULL, NULL, NULL },
	{ "interval", OPT_DURATION, 0, S(health_interval_ms), NULL, NULL, NULL },
	{ "max_probes", OPT_INT, 0, S(health_max_probes), NULL, NULL, NULL },
	{ "rate", OPT_INT, 0, S(health_rate), NULL, NULL, NULL },
	{ "on_failure", OPT_CUSTOM, 0, 0, NULL, set_on_failure, same_on_failure },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

/* `oidc:` of a sync; rules are parsed by set_oidc_rules. */
static const struct option sync_oidc_options[] = { { "rules", OPT_CUSTOM, 0, 0, NULL,
						     set_oidc_rules, NULL },
						   { NULL, 0, 0, 0, NULL, NULL, NULL } };

#undef S
#define R(field) offsetof(struct tg_oidc_rule, field)

static const struct option rule_options[] = {
	{ "issuer", OPT_STRING, 0, R(issuer), NULL, NULL, NULL },
	{ "repository_uuid", OPT_STRING, 0, R(repository_uuid), NULL, NULL, NULL },
	{ "workspace_uuid", OPT_STRING, 0, R(workspace_uuid), NULL, NULL, NULL },
	{ "deployment_environment_uuid", OPT_STRING, 0, R(deployment_environment_uuid), NULL, NULL,
	  NULL },
	{ "branch", OPT_STRING, 0, R(branch), NULL, NULL, NULL },
	{ "actions", OPT_CUSTOM, 0, 0, NULL, set_actions, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

#undef R
#define I(field) offsetof(struct tg_oidc_issuer, field)

static const struct option issuer_options[] = {
	{ "issuer", OPT_STRING, 0, I(issuer), NULL, NULL, NULL },
	{ "audience", OPT_STRING, 0, I(audience), NULL, NULL, NULL },
	{ "jwks_url", OPT_STRING, 0, I(jwks_url), NULL, NULL, NULL },
	{ "jwks_file", OPT_STRING, 0, I(jwks_file), NULL, NULL, NULL },
	{ "ca_file", OPT_STRING, 0, I(ca_file), NULL, NULL, NULL },
	{ "algorithms", OPT_CUSTOM, 0, 0, NULL, set_algorithms, NULL },
	{ "refresh_interval", OPT_DURATION, 0, I(refresh_interval_ms), NULL, NULL, NULL },
	{ "min_refresh_interval", OPT_DURATION, 0, I(min_refresh_interval_ms), NULL, NULL, NULL },
	{ "leeway", OPT_DURATION, 0, I(leeway_ms), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

#undef I
#define S(field) offsetof(struct tg_sync_config, field)

static const struct option sync_options[] = {
	{ "name", OPT_STRING, 0, S(name), NULL, NULL, NULL },
	{ "repo", OPT_SECTION, 0, 0, repo_options, NULL, NULL },
	{ "gateway", OPT_SECTION, 0, 0, gateway_options, NULL, NULL },
	{ "interval", OPT_DURATION, 0, S(interval_ms), NULL, NULL, NULL },
	{ "drift", OPT_SECTION, 0, 0, drift_options, NULL, NULL },
	{ "prune", OPT_SECTION, 0, 0, prune_options, NULL, NULL },
	{ "adopt", OPT_BOOL, 0, S(adopt), NULL, NULL, NULL },
	{ "suspend", OPT_BOOL, 1, S(suspended), NULL, NULL, NULL },
	/* Who may trigger the sync: a reload applies them in place. */
	{ "webhook", OPT_CUSTOM, 1, 0, webhook_options, set_webhook, NULL },
	{ "oidc", OPT_SECTION, 1, 0, sync_oidc_options, NULL, NULL },
	{ "backoff_max", OPT_DURATION, 0, S(backoff_max_ms), NULL, NULL, NULL },
	{ "bitbucket", OPT_CUSTOM, 0, 0, bitbucket_options, set_bitbucket, NULL },
	{ "rules", OPT_CUSTOM, 0, 0, NULL, set_rules, same_rules },
	{ "health", OPT_CUSTOM, 0, 0, health_options, set_health, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

#undef S
#define G(field) offsetof(struct tg_config, field)

static const struct option log_options[] = {
	{ "format", OPT_CUSTOM, 0, 0, NULL, set_log_format, NULL },
	{ "level", OPT_CUSTOM, 0, 0, NULL, set_log_level, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option http_options[] = {
	{ "max_connections", OPT_INT, 0, G(http_max_connections), NULL, NULL, NULL },
	{ "connection_timeout", OPT_DURATION, 0, G(http_connection_timeout_ms), NULL, NULL, NULL },
	{ "request_timeout", OPT_DURATION, 0, G(http_request_timeout_ms), NULL, NULL, NULL },
	{ "max_wait", OPT_DURATION, 0, G(http_max_wait_ms), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option auth_global_options[] = { { "required", OPT_BOOL, 0, G(auth_required),
						       NULL, NULL, NULL },
						     { NULL, 0, 0, 0, NULL, NULL, NULL } };

static const struct option oidc_global_options[] = { { "issuers", OPT_CUSTOM, 0, 0, NULL,
						       set_issuers, NULL },
						     { NULL, 0, 0, 0, NULL, NULL, NULL } };

static const struct option leader_options[] = {
	{ "enabled", OPT_BOOL, 0, G(le_enabled), NULL, NULL, NULL },
	{ "namespace", OPT_STRING, 0, G(le_namespace), NULL, NULL, NULL },
	{ "identity", OPT_STRING, 0, G(le_identity), NULL, NULL, NULL },
	{ "address", OPT_STRING, 0, G(le_address), NULL, NULL, NULL },
	{ "lease_prefix", OPT_STRING, 0, G(le_lease_prefix), NULL, NULL, NULL },
	{ "lease_duration", OPT_DURATION, 0, G(le_duration_ms), NULL, NULL, NULL },
	{ "renew_deadline", OPT_DURATION, 0, G(le_renew_deadline_ms), NULL, NULL, NULL },
	{ "retry_period", OPT_DURATION, 0, G(le_retry_ms), NULL, NULL, NULL },
	{ "kube_api", OPT_STRING, 0, G(kube_api), NULL, NULL, NULL },
	{ "kube_token_file", OPT_STRING, 0, G(kube_token_file), NULL, NULL, NULL },
	{ "kube_ca_file", OPT_STRING, 0, G(kube_ca_file), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

static const struct option global_options[] = {
	{ "leader_election", OPT_SECTION, 0, 0, leader_options, NULL, NULL },
	{ "listen", OPT_STRING, 0, G(listen), NULL, NULL, NULL },
	{ "webhook_listen", OPT_STRING, 0, G(webhook_listen), NULL, NULL, NULL },
	{ "auth", OPT_SECTION, 0, 0, auth_global_options, NULL, NULL },
	{ "oidc", OPT_SECTION, 0, 0, oidc_global_options, NULL, NULL },
	{ "probe_listen", OPT_STRING, 0, G(probe_listen), NULL, NULL, NULL },
	{ "log", OPT_SECTION, 0, 0, log_options, NULL, NULL },
	{ "cache_dir", OPT_STRING, 0, G(cache_dir), NULL, NULL, NULL },
	{ "audit", OPT_STRING, 0, G(audit), NULL, NULL, NULL },
	{ "http", OPT_SECTION, 0, 0, http_options, NULL, NULL },
	{ "syncs", OPT_CUSTOM, 0, 0, NULL, NULL, NULL }, /* handled by the loader */
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

#undef G

static void walk_table(struct walk *w, const struct option *table, const cJSON *map, void *base,
		       const char *path);

static void apply_option(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			 const char *path)
{
	char **sp;
	long long n;

	switch (opt->type) {
	case OPT_STRING:
		if (!cJSON_IsString(v) && !cJSON_IsNumber(v)) {
			problem(w, path, "'%s' must be a string", opt->name);
			return;
		}
		sp = (char **)((char *)base + opt->offset);
		free(*sp);
		*sp = cJSON_IsString(v) ? tg_xstrdup(v->valuestring) : cJSON_PrintUnformatted(v);
		return;
	case OPT_BOOL:
		if (!cJSON_IsBool(v)) {
			problem(w, path, "'%s' must be true or false", opt->name);
			return;
		}
		*(int *)((char *)base + opt->offset) = cJSON_IsTrue(v);
		return;
	case OPT_INT:
		if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble ||
		    v->valuedouble < 0 || v->valuedouble > INT_MAX) {
			problem(w, path, "'%s' must be a non-negative integer", opt->name);
			return;
		}
		*(long long *)((char *)base + opt->offset) = (long long)v->valuedouble;
		return;
	case OPT_DURATION:
		if (cJSON_IsNumber(v) && v->valuedouble >= 0) {
			n = (long long)(v->valuedouble * 1000);
		} else if (!cJSON_IsString(v) || tg_parse_duration_ms(&n, v->valuestring)) {
			problem(w, path, "'%s' must be a duration such as 30s, 5m or 1h",
				opt->name);
			return;
		}
		*(long long *)((char *)base + opt->offset) = n;
		return;
	case OPT_SECTION:
		if (!cJSON_IsObject(v)) {
			problem(w, path, "'%s' must be a mapping", opt->name);
			return;
		}
		walk_table(w, opt->section, v, base, path);
		return;
	case OPT_CUSTOM:
		if (opt->custom)
			opt->custom(w, opt, v, base, path);
		return;
	}
}

static void walk_table(struct walk *w, const struct option *table, const cJSON *map, void *base,
		       const char *path)
{
	const cJSON *v;

	cJSON_ArrayForEach(v, map)
	{
		const struct option *opt;
		char *p = join_path(path, v->string);

		for (opt = table; opt->name; opt++)
			if (!strcmp(opt->name, v->string))
				break;
		if (opt->name)
			apply_option(w, opt, v, base, p);
		else
			problem(w, p, "unknown key '%s'", v->string);
		free(p);
	}
}

static void set_ref(struct walk *w, const struct option *opt, const cJSON *v, void *base,
		    const char *path)
{
	struct tg_sync_config *s = base;
	static const struct {
		const char *key;
		enum tg_ref_type type;
	} kinds[] = { { "branch", TG_REF_BRANCH },
		      { "tag", TG_REF_TAG },
		      { "commit", TG_REF_COMMIT } };
	const cJSON *c;

	(void)opt;
	if (cJSON_IsString(v)) { /* shorthand: a branch name */
		free(s->ref);
		s->ref = tg_xstrdup(v->valuestring);
		s->ref_type = TG_REF_BRANCH;
		return;
	}
	if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) != 1) {
		problem(w, path, "'%s' must be one of {branch: NAME}, {tag: NAME} or {commit: SHA}",
			"ref");
		return;
	}
	c = v->child;
	for (size_t i = 0; i < TG_ARRAY_SIZE(kinds); i++) {
		if (!strcmp(c->string, kinds[i].key) && cJSON_IsString(c)) {
			free(s->ref);
			s->ref = tg_xstrdup(c->valuestring);
			s->ref_type = kinds[i].type;
			return;
		}
	}
	problem(w, path, "'%s' must be one of {branch: NAME}, {tag: NAME} or {commit: SHA}", "ref");
}

static void set_drift_policy(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			     const char *path)
{
	struct tg_sync_config *s = base;

	(void)opt;
	if (cJSON_IsString(v) && !strcmp(v->valuestring, "correct"))
		s->drift_policy = TG_DRIFT_CORRECT;
	else if (cJSON_IsString(v) && !strcmp(v->valuestring, "warn"))
		s->drift_policy = TG_DRIFT_WARN;
	else
		problem(w, path, "'%s' must be 'correct' or 'warn'", "policy");
}

static void set_log_level(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			  const char *path)
{
	struct tg_config *c = base;

	(void)opt;
	if (!cJSON_IsString(v) || tg_log_parse_level(&c->log_level, v->valuestring))
		problem(w, path, "'%s' must be debug, info, warn or error", "level");
}

static void set_log_format(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			   const char *path)
{
	struct tg_config *c = base;

	(void)opt;
	if (!cJSON_IsString(v) || tg_log_parse_format(&c->log_format, v->valuestring))
		problem(w, path, "'%s' must be json or text", "format");
}

static void set_trusted_keys(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			     const char *path)
{
	struct tg_sync_config *s = base;
	const cJSON *k;

	(void)opt;
	if (!cJSON_IsArray(v)) {
		problem(w, path, "'%s' must be a list of SSH public keys", "trusted_keys");
		return;
	}
	cJSON_ArrayForEach(k, v)
	{
		if (!cJSON_IsString(k)) {
			problem(w, path, "'%s' must be a list of SSH public keys", "trusted_keys");
			return;
		}
		s->trusted_keys = tg_xreallocarray(s->trusted_keys, s->n_trusted_keys + 1,
						   sizeof(*s->trusted_keys));
		s->trusted_keys[s->n_trusted_keys++] = tg_xstrdup(k->valuestring);
	}
}

static void set_webhook(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			const char *path)
{
	struct tg_sync_config *s = base;

	if (!cJSON_IsObject(v)) {
		problem(w, path, "'%s' must be a mapping", opt->name);
		return;
	}
	s->webhook = 1;
	walk_table(w, opt->section, v, base, path);
	/* An unsigned webhook would let anyone who finds the URL trigger
	 * passes: a webhook without a secret is a mistake, not a mode. */
	if (!s->webhook_secret_file || !*s->webhook_secret_file)
		problem(w, path, "'%s' needs a secret_file (Bitbucket signs deliveries with it)",
			"webhook");
}

static void set_bitbucket(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			  const char *path)
{
	struct tg_sync_config *s = base;
	char *sub;

	if (!cJSON_IsObject(v)) {
		problem(w, path, "'%s' must be a mapping", opt->name);
		return;
	}
	s->bitbucket = 1;
	walk_table(w, opt->section, v, base, path);
	sub = join_path(path, "api");
	if (s->bb_api && strcmp(s->bb_api, "cloud") && strcmp(s->bb_api, "datacenter"))
		problem(w, sub, "'%s' must be cloud or datacenter", "api");
	free(sub);
	/* Bitbucket Cloud retired app passwords: an email goes with an API
	 * token, never alone. */
	sub = join_path(path, "email");
	if (s->bb_email && !s->bb_token_file)
		problem(w, sub, "'%s' needs token_file (an Atlassian API token)", "email");
	free(sub);
}

static const struct {
	const char *name;
	unsigned bit;
} api_actions[] = { { "reconcile", TG_API_RECONCILE },
		    { "suspend", TG_API_SUSPEND },
		    { "resume", TG_API_RESUME },
		    { "rollback", TG_API_ROLLBACK } };

const char *tg_api_action_name(unsigned action)
{
	for (size_t i = 0; i < TG_ARRAY_SIZE(api_actions); i++)
		if (api_actions[i].bit == action)
			return api_actions[i].name;
	return "?";
}

static void set_actions(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			const char *path)
{
	struct tg_oidc_rule *r = base;
	const cJSON *a;

	(void)opt;
	r->actions = 0;
	if (!cJSON_IsArray(v) || !cJSON_GetArraySize(v)) {
		problem(w, path, "'%s' must be a list of reconcile, suspend and resume", "actions");
		return;
	}
	cJSON_ArrayForEach(a, v)
	{
		unsigned bit = 0;

		for (size_t i = 0; cJSON_IsString(a) && i < TG_ARRAY_SIZE(api_actions); i++)
			if (!strcmp(a->valuestring, api_actions[i].name))
				bit = api_actions[i].bit;
		if (!bit) {
			problem(w, path, "'%s' must be a list of reconcile, suspend and resume",
				"actions");
			return;
		}
		r->actions |= bit;
	}
}

static void rule_release(struct tg_oidc_rule *r)
{
	free(r->issuer);
	free(r->repository_uuid);
	free(r->workspace_uuid);
	free(r->deployment_environment_uuid);
	free(r->branch);
}

static int has_issuer(const struct tg_config *cfg, const char *iss)
{
	for (size_t i = 0; cfg && i < cfg->n_oidc_issuers; i++)
		if (tg_str_eq(cfg->oidc_issuers[i].issuer, iss))
			return 1;
	return 0;
}

static void set_oidc_rules(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			   const char *path)
{
	struct tg_sync_config *s = base;
	const cJSON *item;
	int i = 0;

	(void)opt;
	if (!cJSON_IsArray(v)) {
		problem(w, path, "'%s' must be a list of rules", "rules");
		return;
	}
	cJSON_ArrayForEach(item, v)
	{
		char *p = tg_xasprintf("%s.%d", path, i++);
		struct tg_oidc_rule *r;

		if (!cJSON_IsObject(item)) {
			problem(w, p, "'%s' entries must be mappings", "rules");
			free(p);
			continue;
		}
		s->oidc_rules = tg_xreallocarray(s->oidc_rules, s->n_oidc_rules + 1,
						 sizeof(*s->oidc_rules));
		r = &s->oidc_rules[s->n_oidc_rules++];
		memset(r, 0, sizeof(*r));
		r->actions = TG_API_RECONCILE;
		walk_table(w, rule_options, item, r, p);
		/* The issuer signs a token for every pipeline of every
		 * repository it serves: without a pin, any of them would do. */
		if ((!r->repository_uuid || !*r->repository_uuid) &&
		    (!r->workspace_uuid || !*r->workspace_uuid))
			problem(w, p, "'%s' must pin repository_uuid or workspace_uuid", "rules");
		if (!w->cfg || w->cfg->n_oidc_issuers == 0)
			problem(w, p, "'%s' need at least one entry in oidc.issuers", "rules");
		else if (r->issuer && !has_issuer(w->cfg, r->issuer))
			problem(w, p, "issuer '%s' is not in oidc.issuers", r->issuer);
		else if (!r->issuer && w->cfg->n_oidc_issuers > 1)
			problem(w, p, "'%s' must name their issuer when several are configured",
				"rules");
		free(p);
	}
}

static void set_algorithms(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			   const char *path)
{
	struct tg_oidc_issuer *is = base;
	const cJSON *a;

	(void)opt;
	is->algorithms = 0;
	if (!cJSON_IsArray(v) || !cJSON_GetArraySize(v)) {
		problem(w, path, "'%s' must be a list such as [RS256] or [ES256]", "algorithms");
		return;
	}
	cJSON_ArrayForEach(a, v)
	{
		unsigned bit = cJSON_IsString(a) ? tg_jwt_alg_from_name(a->valuestring) : 0;

		if (!bit) {
			problem(w, path, "'%s' may hold RS256, RS384, RS512, ES256 and ES384 only",
				"algorithms");
			return;
		}
		is->algorithms |= bit;
	}
}

static int is_https(const char *url)
{
	return url && !strncmp(url, "https://", 8) && url[8];
}

static void issuer_release(struct tg_oidc_issuer *is)
{
	free(is->issuer);
	free(is->audience);
	free(is->jwks_url);
	free(is->jwks_file);
	free(is->ca_file);
}

static void set_issuers(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			const char *path)
{
	struct tg_config *c = base;
	const cJSON *item;
	int i = 0;

	(void)opt;
	if (!cJSON_IsArray(v)) {
		problem(w, path, "'%s' must be a list", "issuers");
		return;
	}
	cJSON_ArrayForEach(item, v)
	{
		char *p = tg_xasprintf("%s.%d", path, i++);
		struct tg_oidc_issuer *is;

		if (!cJSON_IsObject(item)) {
			problem(w, p, "'%s' entries must be mappings", "issuers");
			free(p);
			continue;
		}
		c->oidc_issuers = tg_xreallocarray(c->oidc_issuers, c->n_oidc_issuers + 1,
						   sizeof(*c->oidc_issuers));
		is = &c->oidc_issuers[c->n_oidc_issuers++];
		memset(is, 0, sizeof(*is));
		is->algorithms = TG_JWT_RS256;
		is->refresh_interval_ms = 60LL * 60 * 1000;
		is->min_refresh_interval_ms = 15000;
		is->leeway_ms = 60000;
		walk_table(w, issuer_options, item, is, p);
		if (!is_https(is->issuer))
			problem(w, p, "'%s' must be an https:// URL (the token's iss)", "issuer");
		if (!is->audience || !*is->audience)
			problem(w, p,
				"'%s' is required (Bitbucket: ari:cloud:bitbucket::workspace/UUID)",
				"audience");
		if (is->jwks_url && !is_https(is->jwks_url))
			problem(w, p, "'%s' must be an https:// URL", "jwks_url");
		if (is->jwks_url && is->jwks_file)
			problem(w, p, "'%s' and jwks_url exclude each other", "jwks_file");
		if (is->refresh_interval_ms < 1000 || is->min_refresh_interval_ms < 100)
			problem(w, p,
				"'%s' is too short (refresh_interval >= 1s, min_refresh_interval >= 100ms)",
				"refresh_interval");
		for (size_t j = 0; j + 1 < c->n_oidc_issuers; j++)
			if (is->issuer && tg_str_eq(c->oidc_issuers[j].issuer, is->issuer))
				problem(w, p, "issuer '%s' is listed twice", is->issuer);
		free(p);
	}
}

struct rules_walk {
	struct walk *w;
	const char *path;
};

static void rules_problem(void *ctx, const char *path, const char *msg)
{
	struct rules_walk *rw = ctx;
	char *p = path[0] ? tg_xasprintf("%s.%s", rw->path, path) : tg_xstrdup(rw->path);

	problem(rw->w, p, "%s", msg);
	free(p);
}

static void set_rules(struct walk *w, const struct option *opt, const cJSON *v, void *base,
		      const char *path)
{
	struct tg_sync_config *s = base;
	struct rules_walk rw = { w, path };

	(void)opt;
	tg_rules_free(s->rules);
	free(s->rules_json);
	s->rules = NULL;
	s->rules_json = NULL;
	if (tg_rules_parse(&s->rules, v, rules_problem, &rw))
		return;
	s->rules_json = cJSON_PrintUnformatted(v);
}

/* A `health:` section turns the check on unless it says enabled: false. */
static void set_health(struct walk *w, const struct option *opt, const cJSON *v, void *base,
		       const char *path)
{
	struct tg_sync_config *s = base;

	if (!cJSON_IsObject(v)) {
		problem(w, path, "'%s' must be a mapping", "health");
		return;
	}
	s->health = 1;
	walk_table(w, opt->section, v, base, path);
	if (s->health_attempts < 1 || s->health_max_probes < 1 || s->health_rate < 1)
		problem(w, path, "'%s' needs attempts, max_probes and rate of at least 1",
			"health");
	if (s->health_timeout_ms < 1)
		problem(w, path, "'%s' needs a timeout of at least 1ms", "health");
	if (s->health_path && s->health_path[0] == '/')
		problem(w, path, "'%s' path is relative to each listen path: drop the leading '/'",
			"health");
}

static void set_on_failure(struct walk *w, const struct option *opt, const cJSON *v, void *base,
			   const char *path)
{
	struct tg_sync_config *s = base;

	(void)opt;
	if (cJSON_IsString(v) && !strcmp(v->valuestring, "report"))
		s->health_rollback = 0;
	else if (cJSON_IsString(v) && !strcmp(v->valuestring, "rollback"))
		s->health_rollback = 1;
	else
		problem(w, path, "'%s' must be 'report' or 'rollback'", "on_failure");
}

void tg_sync_config_defaults(struct tg_sync_config *s)
{
	memset(s, 0, sizeof(*s));
	s->name = tg_xstrdup("default");
	s->ref_type = TG_REF_BRANCH;
	s->ref = tg_xstrdup("main");
	s->path = tg_xstrdup("");
	s->gateway_timeout_ms = 30000;
	s->gateway_concurrency = 4;
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

static void load_syncs(struct walk *w, struct tg_config *cfg, const cJSON *list)
{
	const cJSON *item;
	int i = 0;

	if (!cJSON_IsArray(list)) {
		problem(w, "syncs", "'%s' must be a list", "syncs");
		return;
	}
	cJSON_ArrayForEach(item, list)
	{
		char path[32];
		struct tg_sync_config *s;

		snprintf(path, sizeof(path), "syncs.%d", i++);
		if (!cJSON_IsObject(item)) {
			problem(w, path, "'%s' entries must be mappings", "syncs");
			continue;
		}
		s = tg_config_add_sync(cfg);
		walk_table(w, sync_options, item, s, path);
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
	struct walk w;
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
	walk_table(&w, global_options, docs.items[0].json, cfg, "");
	/* Issuers first (walk_table above), so rules can be checked against them. */
	load_syncs(&w, cfg, cJSON_GetObjectItemCaseSensitive(docs.items[0].json, "syncs"));
	if (cfg->auth_required && cfg->n_oidc_issuers == 0)
		problem(&w, "auth.required", "'%s' needs at least one entry in oidc.issuers",
			"required");
	if (cfg->webhook_listen && tg_str_eq(cfg->webhook_listen, cfg->listen))
		problem(&w, "webhook_listen", "'%s' must differ from listen", "webhook_listen");
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

static int same_ref(const void *a, const void *b)
{
	const struct tg_sync_config *x = a, *y = b;

	return x->ref_type == y->ref_type && tg_str_eq(x->ref, y->ref);
}

static int same_drift_policy(const void *a, const void *b)
{
	return ((const struct tg_sync_config *)a)->drift_policy ==
	       ((const struct tg_sync_config *)b)->drift_policy;
}

static int same_trusted_keys(const void *a, const void *b)
{
	const struct tg_sync_config *x = a, *y = b;

	if (x->n_trusted_keys != y->n_trusted_keys)
		return 0;
	for (size_t i = 0; i < x->n_trusted_keys; i++)
		if (!tg_str_eq(x->trusted_keys[i], y->trusted_keys[i]))
			return 0;
	return 1;
}

static int same_rules(const void *a, const void *b)
{
	return tg_str_eq(((const struct tg_sync_config *)a)->rules_json,
			 ((const struct tg_sync_config *)b)->rules_json);
}

static int same_on_failure(const void *a, const void *b)
{
	return ((const struct tg_sync_config *)a)->health_rollback ==
	       ((const struct tg_sync_config *)b)->health_rollback;
}

static int same_options(const struct option *table, const void *a, const void *b)
{
	for (const struct option *o = table; o->name; o++) {
		const char *pa = (const char *)a + o->offset, *pb = (const char *)b + o->offset;

		if (o->live)
			continue;
		switch (o->type) {
		case OPT_STRING:
			if (!tg_str_eq(*(char *const *)pa, *(char *const *)pb))
				return 0;
			break;
		case OPT_BOOL:
			if (*(const int *)pa != *(const int *)pb)
				return 0;
			break;
		case OPT_INT:
		case OPT_DURATION:
			if (*(const long long *)pa != *(const long long *)pb)
				return 0;
			break;
		case OPT_SECTION:
			if (!same_options(o->section, a, b))
				return 0;
			break;
		case OPT_CUSTOM:
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

static void free_strings(const struct option *table, void *base)
{
	for (const struct option *o = table; o->name; o++) {
		if (o->type == OPT_STRING)
			free(*(char **)((char *)base + o->offset));
		else if (o->section)
			free_strings(o->section, base);
	}
}

static void sync_release(struct tg_sync_config *s)
{
	free_strings(sync_options, s);
	for (size_t i = 0; i < s->n_oidc_rules; i++)
		rule_release(&s->oidc_rules[i]);
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
		issuer_release(&cfg->oidc_issuers[i]);
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
