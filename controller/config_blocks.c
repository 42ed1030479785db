/*
 * The configuration's custom blocks (see include/tg/config_blocks.h): the
 * options whose value is more than a string, a number or a plain section,
 * each with the checks that span its fields and, where the generic
 * comparison would not do, its own equality.
 */
#include "tg/config_blocks.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tg/rules.h"
#include "tg/banned.h"

static void set_actions(struct tg_config_walk *w, const struct tg_config_option *opt,
			const cJSON *v, void *base, const char *path);
static void set_algorithms(struct tg_config_walk *w, const struct tg_config_option *opt,
			   const cJSON *v, void *base, const char *path);

#define R(field) offsetof(struct tg_oidc_rule, field)

static const struct tg_config_option rule_options[] = {
	{ "issuer", TG_OPT_STRING, 0, R(issuer), NULL, NULL, NULL },
	{ "repository_uuid", TG_OPT_STRING, 0, R(repository_uuid), NULL, NULL, NULL },
	{ "workspace_uuid", TG_OPT_STRING, 0, R(workspace_uuid), NULL, NULL, NULL },
	{ "deployment_environment_uuid", TG_OPT_STRING, 0, R(deployment_environment_uuid), NULL,
	  NULL, NULL },
	{ "branch", TG_OPT_STRING, 0, R(branch), NULL, NULL, NULL },
	{ "actions", TG_OPT_CUSTOM, 0, 0, NULL, set_actions, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

#undef R
#define I(field) offsetof(struct tg_oidc_issuer, field)

static const struct tg_config_option issuer_options[] = {
	{ "issuer", TG_OPT_STRING, 0, I(issuer), NULL, NULL, NULL },
	{ "audience", TG_OPT_STRING, 0, I(audience), NULL, NULL, NULL },
	{ "jwks_url", TG_OPT_STRING, 0, I(jwks_url), NULL, NULL, NULL },
	{ "jwks_file", TG_OPT_STRING, 0, I(jwks_file), NULL, NULL, NULL },
	{ "ca_file", TG_OPT_STRING, 0, I(ca_file), NULL, NULL, NULL },
	{ "algorithms", TG_OPT_CUSTOM, 0, 0, NULL, set_algorithms, NULL },
	{ "refresh_interval", TG_OPT_DURATION, 0, I(refresh_interval_ms), NULL, NULL, NULL },
	{ "min_refresh_interval", TG_OPT_DURATION, 0, I(min_refresh_interval_ms), NULL, NULL,
	  NULL },
	{ "leeway", TG_OPT_DURATION, 0, I(leeway_ms), NULL, NULL, NULL },
	{ NULL, 0, 0, 0, NULL, NULL, NULL }
};

#undef I

void tg_config_set_ref(struct tg_config_walk *w, const struct tg_config_option *opt, const cJSON *v,
		       void *base, const char *path)
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
		tg_config_problem(
			w, path, "'%s' must be one of {branch: NAME}, {tag: NAME} or {commit: SHA}",
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
	tg_config_problem(
		w, path, "'%s' must be one of {branch: NAME}, {tag: NAME} or {commit: SHA}", "ref");
}

void tg_config_set_drift_policy(struct tg_config_walk *w, const struct tg_config_option *opt,
				const cJSON *v, void *base, const char *path)
{
	struct tg_sync_config *s = base;

	(void)opt;
	if (cJSON_IsString(v) && !strcmp(v->valuestring, "correct"))
		s->drift_policy = TG_DRIFT_CORRECT;
	else if (cJSON_IsString(v) && !strcmp(v->valuestring, "warn"))
		s->drift_policy = TG_DRIFT_WARN;
	else
		tg_config_problem(w, path, "'%s' must be 'correct' or 'warn'", "policy");
}

void tg_config_set_log_level(struct tg_config_walk *w, const struct tg_config_option *opt,
			     const cJSON *v, void *base, const char *path)
{
	struct tg_config *c = base;

	(void)opt;
	if (!cJSON_IsString(v) || tg_log_parse_level(&c->log_level, v->valuestring))
		tg_config_problem(w, path, "'%s' must be debug, info, warn or error", "level");
}

void tg_config_set_log_format(struct tg_config_walk *w, const struct tg_config_option *opt,
			      const cJSON *v, void *base, const char *path)
{
	struct tg_config *c = base;

	(void)opt;
	if (!cJSON_IsString(v) || tg_log_parse_format(&c->log_format, v->valuestring))
		tg_config_problem(w, path, "'%s' must be json or text", "format");
}

void tg_config_set_trusted_keys(struct tg_config_walk *w, const struct tg_config_option *opt,
				const cJSON *v, void *base, const char *path)
{
	struct tg_sync_config *s = base;
	const cJSON *k;

	(void)opt;
	if (!cJSON_IsArray(v)) {
		tg_config_problem(w, path, "'%s' must be a list of SSH public keys",
				  "trusted_keys");
		return;
	}
	cJSON_ArrayForEach(k, v)
	{
		if (!cJSON_IsString(k)) {
			tg_config_problem(w, path, "'%s' must be a list of SSH public keys",
					  "trusted_keys");
			return;
		}
		s->trusted_keys = tg_xreallocarray(s->trusted_keys, s->n_trusted_keys + 1,
						   sizeof(*s->trusted_keys));
		s->trusted_keys[s->n_trusted_keys++] = tg_xstrdup(k->valuestring);
	}
}

void tg_config_set_webhook(struct tg_config_walk *w, const struct tg_config_option *opt,
			   const cJSON *v, void *base, const char *path)
{
	struct tg_sync_config *s = base;

	if (!cJSON_IsObject(v)) {
		tg_config_problem(w, path, "'%s' must be a mapping", opt->name);
		return;
	}
	s->webhook = 1;
	tg_config_walk_table(w, opt->section, v, base, path);
	/* An unsigned webhook would let anyone who finds the URL trigger
	 * passes: a webhook without a secret is a mistake, not a mode. */
	if (!s->webhook_secret_file || !*s->webhook_secret_file)
		tg_config_problem(w, path,
				  "'%s' needs a secret_file (Bitbucket signs deliveries with it)",
				  "webhook");
}

void tg_config_set_bitbucket(struct tg_config_walk *w, const struct tg_config_option *opt,
			     const cJSON *v, void *base, const char *path)
{
	struct tg_sync_config *s = base;
	char *sub;

	if (!cJSON_IsObject(v)) {
		tg_config_problem(w, path, "'%s' must be a mapping", opt->name);
		return;
	}
	s->bitbucket = 1;
	tg_config_walk_table(w, opt->section, v, base, path);
	sub = tg_config_join_path(path, "api");
	if (s->bb_api && strcmp(s->bb_api, "cloud") && strcmp(s->bb_api, "datacenter"))
		tg_config_problem(w, sub, "'%s' must be cloud or datacenter", "api");
	free(sub);
	/* Bitbucket Cloud retired app passwords: an email goes with an API
	 * token, never alone. */
	sub = tg_config_join_path(path, "email");
	if (s->bb_email && !s->bb_token_file)
		tg_config_problem(w, sub, "'%s' needs token_file (an Atlassian API token)",
				  "email");
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

static void set_actions(struct tg_config_walk *w, const struct tg_config_option *opt,
			const cJSON *v, void *base, const char *path)
{
	struct tg_oidc_rule *r = base;
	const cJSON *a;

	(void)opt;
	r->actions = 0;
	if (!cJSON_IsArray(v) || !cJSON_GetArraySize(v)) {
		tg_config_problem(w, path, "'%s' must be a list of reconcile, suspend and resume",
				  "actions");
		return;
	}
	cJSON_ArrayForEach(a, v)
	{
		unsigned bit = 0;

		for (size_t i = 0; cJSON_IsString(a) && i < TG_ARRAY_SIZE(api_actions); i++)
			if (!strcmp(a->valuestring, api_actions[i].name))
				bit = api_actions[i].bit;
		if (!bit) {
			tg_config_problem(w, path,
					  "'%s' must be a list of reconcile, suspend and resume",
					  "actions");
			return;
		}
		r->actions |= bit;
	}
}

void tg_config_rule_release(struct tg_oidc_rule *r)
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

/* One entry of a list of mappings, at path (e.g. "syncs.0.oidc.rules.2"). */
typedef void (*mapping_fn)(struct tg_config_walk *w, const cJSON *item, void *base,
			   const char *path);

/* Walks the list v of mappings named name: a problem for a v that is not a
 * list (not_list, a message with one %s for name) and for each entry that
 * is not a mapping; fn reads the others. */
static void walk_mappings(struct tg_config_walk *w, const cJSON *v, void *base, const char *path,
			  const char *name, const char *not_list, mapping_fn fn)
{
	const cJSON *item;
	int i = 0;

	if (!cJSON_IsArray(v)) {
		tg_config_problem(w, path, not_list, name);
		return;
	}
	cJSON_ArrayForEach(item, v)
	{
		char *p = tg_xasprintf("%s.%d", path, i++);

		if (!cJSON_IsObject(item))
			tg_config_problem(w, p, "'%s' entries must be mappings", name);
		else
			fn(w, item, base, p);
		free(p);
	}
}

static void oidc_rule(struct tg_config_walk *w, const cJSON *item, void *base, const char *p)
{
	struct tg_sync_config *s = base;
	struct tg_oidc_rule *r;

	s->oidc_rules =
		tg_xreallocarray(s->oidc_rules, s->n_oidc_rules + 1, sizeof(*s->oidc_rules));
	r = &s->oidc_rules[s->n_oidc_rules++];
	memset(r, 0, sizeof(*r));
	r->actions = TG_API_RECONCILE;
	tg_config_walk_table(w, rule_options, item, r, p);
	/* The issuer signs a token for every pipeline of every repository it
	 * serves: without a pin, any of them would do. */
	if ((!r->repository_uuid || !*r->repository_uuid) &&
	    (!r->workspace_uuid || !*r->workspace_uuid))
		tg_config_problem(w, p, "'%s' must pin repository_uuid or workspace_uuid", "rules");
	if (!w->cfg || w->cfg->n_oidc_issuers == 0)
		tg_config_problem(w, p, "'%s' need at least one entry in oidc.issuers", "rules");
	else if (r->issuer && !has_issuer(w->cfg, r->issuer))
		tg_config_problem(w, p, "issuer '%s' is not in oidc.issuers", r->issuer);
	else if (!r->issuer && w->cfg->n_oidc_issuers > 1)
		tg_config_problem(w, p, "'%s' must name their issuer when several are configured",
				  "rules");
}

void tg_config_set_oidc_rules(struct tg_config_walk *w, const struct tg_config_option *opt,
			      const cJSON *v, void *base, const char *path)
{
	(void)opt;
	walk_mappings(w, v, base, path, "rules", "'%s' must be a list of rules", oidc_rule);
}

static void set_algorithms(struct tg_config_walk *w, const struct tg_config_option *opt,
			   const cJSON *v, void *base, const char *path)
{
	struct tg_oidc_issuer *is = base;
	const cJSON *a;

	(void)opt;
	is->algorithms = 0;
	if (!cJSON_IsArray(v) || !cJSON_GetArraySize(v)) {
		tg_config_problem(w, path, "'%s' must be a list such as [RS256] or [ES256]",
				  "algorithms");
		return;
	}
	cJSON_ArrayForEach(a, v)
	{
		unsigned bit = cJSON_IsString(a) ? tg_jwt_alg_from_name(a->valuestring) : 0;

		if (!bit) {
			tg_config_problem(w, path,
					  "'%s' may hold RS256, RS384, RS512, ES256 and ES384 only",
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

void tg_config_issuer_release(struct tg_oidc_issuer *is)
{
	free(is->issuer);
	free(is->audience);
	free(is->jwks_url);
	free(is->jwks_file);
	free(is->ca_file);
}

static void oidc_issuer(struct tg_config_walk *w, const cJSON *item, void *base, const char *p)
{
	struct tg_config *c = base;
	struct tg_oidc_issuer *is;

	c->oidc_issuers =
		tg_xreallocarray(c->oidc_issuers, c->n_oidc_issuers + 1, sizeof(*c->oidc_issuers));
	is = &c->oidc_issuers[c->n_oidc_issuers++];
	memset(is, 0, sizeof(*is));
	is->algorithms = TG_JWT_RS256;
	is->refresh_interval_ms = 60LL * 60 * 1000;
	is->min_refresh_interval_ms = 15000;
	is->leeway_ms = 60000;
	tg_config_walk_table(w, issuer_options, item, is, p);
	if (!is_https(is->issuer))
		tg_config_problem(w, p, "'%s' must be an https:// URL (the token's iss)", "issuer");
	if (!is->audience || !*is->audience)
		tg_config_problem(
			w, p, "'%s' is required (Bitbucket: ari:cloud:bitbucket::workspace/UUID)",
			"audience");
	if (is->jwks_url && !is_https(is->jwks_url))
		tg_config_problem(w, p, "'%s' must be an https:// URL", "jwks_url");
	if (is->jwks_url && is->jwks_file)
		tg_config_problem(w, p, "'%s' and jwks_url exclude each other", "jwks_file");
	if (is->refresh_interval_ms < 1000 || is->min_refresh_interval_ms < 100)
		tg_config_problem(
			w, p,
			"'%s' is too short (refresh_interval >= 1s, min_refresh_interval >= 100ms)",
			"refresh_interval");
	for (size_t j = 0; j + 1 < c->n_oidc_issuers; j++)
		if (is->issuer && tg_str_eq(c->oidc_issuers[j].issuer, is->issuer))
			tg_config_problem(w, p, "issuer '%s' is listed twice", is->issuer);
}

void tg_config_set_issuers(struct tg_config_walk *w, const struct tg_config_option *opt,
			   const cJSON *v, void *base, const char *path)
{
	(void)opt;
	walk_mappings(w, v, base, path, "issuers", "'%s' must be a list", oidc_issuer);
}

struct rules_walk {
	struct tg_config_walk *w;
	const char *path;
};

static void rules_problem(void *ctx, const char *path, const char *msg)
{
	struct rules_walk *rw = ctx;
	char *p = path[0] ? tg_xasprintf("%s.%s", rw->path, path) : tg_xstrdup(rw->path);

	tg_config_problem(rw->w, p, "%s", msg);
	free(p);
}

void tg_config_set_rules(struct tg_config_walk *w, const struct tg_config_option *opt,
			 const cJSON *v, void *base, const char *path)
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
void tg_config_set_health(struct tg_config_walk *w, const struct tg_config_option *opt,
			  const cJSON *v, void *base, const char *path)
{
	struct tg_sync_config *s = base;

	if (!cJSON_IsObject(v)) {
		tg_config_problem(w, path, "'%s' must be a mapping", "health");
		return;
	}
	s->health = 1;
	tg_config_walk_table(w, opt->section, v, base, path);
	if (s->health_attempts < 1 || s->health_max_probes < 1 || s->health_rate < 1)
		tg_config_problem(w, path, "'%s' needs attempts, max_probes and rate of at least 1",
				  "health");
	if (s->health_timeout_ms < 1)
		tg_config_problem(w, path, "'%s' needs a timeout of at least 1ms", "health");
	if (s->health_path && s->health_path[0] == '/')
		tg_config_problem(w, path,
				  "'%s' path is relative to each listen path: drop the leading '/'",
				  "health");
}

void tg_config_set_on_failure(struct tg_config_walk *w, const struct tg_config_option *opt,
			      const cJSON *v, void *base, const char *path)
{
	struct tg_sync_config *s = base;

	(void)opt;
	if (cJSON_IsString(v) && !strcmp(v->valuestring, "report"))
		s->health_rollback = 0;
	else if (cJSON_IsString(v) && !strcmp(v->valuestring, "rollback"))
		s->health_rollback = 1;
	else
		tg_config_problem(w, path, "'%s' must be 'report' or 'rollback'", "on_failure");
}

int tg_config_same_ref(const void *a, const void *b)
{
	const struct tg_sync_config *x = a, *y = b;

	return x->ref_type == y->ref_type && tg_str_eq(x->ref, y->ref);
}

int tg_config_same_drift_policy(const void *a, const void *b)
{
	return ((const struct tg_sync_config *)a)->drift_policy ==
	       ((const struct tg_sync_config *)b)->drift_policy;
}

int tg_config_same_trusted_keys(const void *a, const void *b)
{
	const struct tg_sync_config *x = a, *y = b;

	if (x->n_trusted_keys != y->n_trusted_keys)
		return 0;
	for (size_t i = 0; i < x->n_trusted_keys; i++)
		if (!tg_str_eq(x->trusted_keys[i], y->trusted_keys[i]))
			return 0;
	return 1;
}

int tg_config_same_rules(const void *a, const void *b)
{
	return tg_str_eq(((const struct tg_sync_config *)a)->rules_json,
			 ((const struct tg_sync_config *)b)->rules_json);
}

int tg_config_same_on_failure(const void *a, const void *b)
{
	return ((const struct tg_sync_config *)a)->health_rollback ==
	       ((const struct tg_sync_config *)b)->health_rollback;
}
