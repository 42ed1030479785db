/*
 * Guardrail rules (see include/tg/rules.h).
 *
 * Each rule reads only the few fields it judges and reports through
 * tg_problems_add_rule at the field's position.  upstream_allow never
 * resolves a name: an address written in any spelling a resolver or the
 * gateway's URL parser would accept is brought to one canonical form and
 * judged by its class; a name is judged by the allow-list only.
 */
#include "tg/rules.h"

#include <arpa/inet.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/hostclass.h"
#include "tg/banned.h"

static const char *const rule_names[TG_RULE_COUNT] = {
	"auth_required",  "policy_limits",   "upstream_allow",
	"path_ownership", "required_fields", "max_changes",
};

const char *tg_rule_name(enum tg_rule r)
{
	return rule_names[r];
}

/* --- configuration -------------------------------------------------------- */

struct parse {
	tg_rules_problem_fn fn;
	void *ctx;
	int bad;
};

static void bad(struct parse *ps, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void bad(struct parse *ps, const char *path, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	ps->fn(ps->ctx, path, msg ? msg : "out of memory");
	free(msg);
	ps->bad = 1;
}

static void free_list(char **l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

/* A list of strings (a single string is a list of one). */
static void string_list(struct parse *ps, const char *path, const cJSON *v, char ***out, size_t *n)
{
	const cJSON *e;

	free_list(*out, *n);
	*out = NULL;
	*n = 0;
	if (cJSON_IsString(v)) {
		*out = tg_xcalloc(1, sizeof(**out));
		(*out)[(*n)++] = tg_xstrdup(v->valuestring);
		return;
	}
	if (!cJSON_IsArray(v)) {
		bad(ps, path, "'%s' must be a list of strings", v->string ? v->string : path);
		return;
	}
	*out = tg_xcalloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(**out));
	cJSON_ArrayForEach(e, v)
	{
		if (!cJSON_IsString(e) || !e->valuestring[0]) {
			bad(ps, path, "'%s' must be a list of non-empty strings", v->string);
			continue;
		}
		(*out)[(*n)++] = tg_xstrdup(e->valuestring);
	}
}

static int parse_number(struct parse *ps, const char *path, const cJSON *v, double *out)
{
	if (!cJSON_IsNumber(v) || v->valuedouble < 0) {
		bad(ps, path, "'%s' must be a non-negative number", v->string);
		return -1;
	}
	*out = v->valuedouble;
	return 0;
}

static int parse_bool(struct parse *ps, const char *path, const cJSON *v, int *out)
{
	if (!cJSON_IsBool(v)) {
		bad(ps, path, "'%s' must be true or false", v->string);
		return -1;
	}
	*out = cJSON_IsTrue(v);
	return 0;
}

static void parse_owners(struct parse *ps, struct tg_rules *r, const cJSON *v)
{
	const cJSON *e;
	int i = 0;

	if (!cJSON_IsArray(v)) {
		bad(ps, "path_ownership.owners", "'owners' must be a list");
		return;
	}
	r->owners = tg_xcalloc((size_t)cJSON_GetArraySize(v) + 1, sizeof(*r->owners));
	cJSON_ArrayForEach(e, v)
	{
		char path[64];
		const cJSON *k;
		struct tg_rule_owner *o;

		snprintf(path, sizeof(path), "path_ownership.owners.%d", i++);
		if (!cJSON_IsObject(e)) {
			bad(ps, path, "'owners' entries must be mappings");
			continue;
		}
		o = &r->owners[r->n_owners++];
		cJSON_ArrayForEach(k, e)
		{
			char *kp = tg_xasprintf("%s.%s", path, k->string);

			if (!strcmp(k->string, "files") && cJSON_IsString(k) && k->valuestring[0]) {
				free(o->files);
				o->files = tg_xstrdup(k->valuestring);
			} else if (!strcmp(k->string, "files")) {
				bad(ps, kp,
				    "'files' must be a glob such as 'apis/teams/payments/*'");
			} else if (!strcmp(k->string, "listen_paths")) {
				string_list(ps, kp, k, &o->listen_paths, &o->n_listen_paths);
			} else if (!strcmp(k->string, "domains")) {
				string_list(ps, kp, k, &o->domains, &o->n_domains);
			} else {
				bad(ps, kp, "unknown key '%s'", k->string);
			}
			free(kp);
		}
		if (!o->files)
			bad(ps, path, "'owners' entries need 'files'");
		if (!o->n_listen_paths)
			bad(ps, path, "'owners' entries need 'listen_paths'");
		for (size_t j = 0; j < o->n_listen_paths; j++)
			if (o->listen_paths[j][0] != '/')
				bad(ps, path, "listen path prefix '%s' must start with '/'",
				    o->listen_paths[j]);
	}
}

/* The keys one rule accepts besides level and except; 0 when known. */
static int rule_key(struct parse *ps, struct tg_rules *r, enum tg_rule rule, const cJSON *k,
		    const char *kp)
{
	double d;

	switch (rule) {
	case TG_RULE_AUTH_REQUIRED: return -1;
	case TG_RULE_POLICY_LIMITS:
		if (!strcmp(k->string, "max_requests_per_second")) {
			if (!parse_number(ps, kp, k, &d))
				r->max_rate_per_second = d;
			return 0;
		}
		if (!strcmp(k->string, "require_quota")) {
			parse_bool(ps, kp, k, &r->require_quota);
			return 0;
		}
		if (!strcmp(k->string, "max_quota")) {
			if (!parse_number(ps, kp, k, &d))
				r->max_quota = (long long)d;
			return 0;
		}
		return -1;
	case TG_RULE_UPSTREAM_ALLOW:
		if (!strcmp(k->string, "schemes")) {
			string_list(ps, kp, k, &r->schemes, &r->n_schemes);
			return 0;
		}
		if (!strcmp(k->string, "hosts")) {
			string_list(ps, kp, k, &r->hosts, &r->n_hosts);
			for (size_t i = 0; i < r->n_hosts; i++) {
				unsigned char a[16];
				int fam, bits;

				if (strchr(r->hosts[i], '/') &&
				    tg_host_parse_cidr(r->hosts[i], &fam, a, &bits))
					bad(ps, kp, "'%s' is neither a host glob nor a CIDR range",
					    r->hosts[i]);
			}
			return 0;
		}
		if (!strcmp(k->string, "allow_private")) {
			parse_bool(ps, kp, k, &r->allow_private);
			return 0;
		}
		if (!strcmp(k->string, "allow_loopback")) {
			parse_bool(ps, kp, k, &r->allow_loopback);
			return 0;
		}
		return -1;
	case TG_RULE_PATH_OWNERSHIP:
		if (!strcmp(k->string, "owners")) {
			parse_owners(ps, r, k);
			return 0;
		}
		if (!strcmp(k->string, "policy_files")) {
			string_list(ps, kp, k, &r->policy_files, &r->n_policy_files);
			return 0;
		}
		return -1;
	case TG_RULE_REQUIRED_FIELDS:
		if (!strcmp(k->string, "apis")) {
			string_list(ps, kp, k, &r->api_fields, &r->n_api_fields);
			return 0;
		}
		if (!strcmp(k->string, "oas")) {
			string_list(ps, kp, k, &r->oas_fields, &r->n_oas_fields);
			return 0;
		}
		if (!strcmp(k->string, "policies")) {
			string_list(ps, kp, k, &r->policy_fields, &r->n_policy_fields);
			return 0;
		}
		return -1;
	case TG_RULE_MAX_CHANGES:
		if (!strcmp(k->string, "max")) {
			if (!parse_number(ps, kp, k, &d))
				r->max_changes = (long long)d;
			return 0;
		}
		return -1;
	}
	return -1;
}

static void parse_rule(struct parse *ps, struct tg_rules *r, enum tg_rule rule, const cJSON *v)
{
	struct tg_rule_setting *st = &r->set[rule];
	const char *name = rule_names[rule];
	const cJSON *k;
	int has_max = 0;

	if (cJSON_IsBool(v)) { /* auth_required: true */
		st->enabled = cJSON_IsTrue(v);
		if (st->enabled && rule == TG_RULE_MAX_CHANGES)
			bad(ps, name, "'%s' needs a mapping with max", name);
		return;
	}
	if (!cJSON_IsObject(v)) {
		bad(ps, name, "'%s' must be a mapping (or true)", name);
		return;
	}
	st->enabled = 1;
	cJSON_ArrayForEach(k, v)
	{
		char *kp = tg_xasprintf("%s.%s", name, k->string);

		if (!strcmp(k->string, "level")) {
			if (cJSON_IsString(k) && !strcmp(k->valuestring, "error"))
				st->severity = TG_SEV_ERROR;
			else if (cJSON_IsString(k) && !strcmp(k->valuestring, "warn"))
				st->severity = TG_SEV_WARNING;
			else
				bad(ps, kp, "'level' must be 'error' or 'warn'");
		} else if (!strcmp(k->string, "except")) {
			string_list(ps, kp, k, &st->except, &st->n_except);
		} else if (!strcmp(k->string, "enabled")) {
			parse_bool(ps, kp, k, &st->enabled);
		} else if (rule_key(ps, r, rule, k, kp)) {
			bad(ps, kp, "unknown key '%s' in rule '%s'", k->string, name);
		}
		has_max |= !strcmp(k->string, "max");
		free(kp);
	}
	if (rule == TG_RULE_MAX_CHANGES && !has_max)
		bad(ps, name, "'%s' needs max", name);
	if (rule == TG_RULE_PATH_OWNERSHIP && !r->n_owners && !r->n_policy_files)
		bad(ps, name, "'%s' needs owners or policy_files", name);
}

int tg_rules_parse(struct tg_rules **out, const cJSON *v, tg_rules_problem_fn fn, void *ctx)
{
	struct parse ps = { fn, ctx, 0 };
	struct tg_rules *r = tg_xcalloc(1, sizeof(*r));
	const cJSON *k;

	*out = NULL;
	if (!cJSON_IsObject(v)) {
		bad(&ps, "", "'rules' must be a mapping of rule names");
		goto out;
	}
	cJSON_ArrayForEach(k, v)
	{
		int i;

		for (i = 0; i < TG_RULE_COUNT; i++)
			if (!strcmp(k->string, rule_names[i]))
				break;
		if (i == TG_RULE_COUNT) {
			bad(&ps, k->string,
			    "unknown rule '%s' (known: auth_required, policy_limits, upstream_allow, "
			    "path_ownership, required_fields, max_changes)",
			    k->string);
			continue;
		}
		parse_rule(&ps, r, (enum tg_rule)i, k);
	}
	if (!r->n_schemes) {
		r->schemes = tg_xcalloc(2, sizeof(*r->schemes));
		r->schemes[r->n_schemes++] = tg_xstrdup("http");
		r->schemes[r->n_schemes++] = tg_xstrdup("https");
	}
out:
	if (ps.bad) {
		tg_rules_free(r);
		return TG_EINVALID;
	}
	*out = r;
	return 0;
}

void tg_rules_free(struct tg_rules *r)
{
	if (!r)
		return;
	for (int i = 0; i < TG_RULE_COUNT; i++)
		free_list(r->set[i].except, r->set[i].n_except);
	free_list(r->schemes, r->n_schemes);
	free_list(r->hosts, r->n_hosts);
	for (size_t i = 0; i < r->n_owners; i++) {
		free(r->owners[i].files);
		free_list(r->owners[i].listen_paths, r->owners[i].n_listen_paths);
		free_list(r->owners[i].domains, r->owners[i].n_domains);
	}
	free(r->owners);
	free_list(r->policy_files, r->n_policy_files);
	free_list(r->api_fields, r->n_api_fields);
	free_list(r->oas_fields, r->n_oas_fields);
	free_list(r->policy_fields, r->n_policy_fields);
	free(r);
}

/* --- checks ----------------------------------------------------------------- */

struct check {
	const struct tg_rules *r;
	struct tg_problems *problems;
};

static int excepted(const struct tg_rule_setting *st, const struct tg_object *o)
{
	for (size_t i = 0; i < st->n_except; i++)
		if (fnmatch(st->except[i], o->file, 0) == 0 ||
		    (o->id && fnmatch(st->except[i], o->id, 0) == 0))
			return 1;
	return 0;
}

static void violation(struct check *c, enum tg_rule rule, const struct tg_object *o,
		      const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void violation(struct check *c, enum tg_rule rule, const struct tg_object *o,
		      const char *field, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;
	int line, column;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	tg_object_locate(o, field, &line, &column);
	tg_problems_add_rule(c->problems, c->r->set[rule].severity, o->file, line, column, field,
			     rule_names[rule], "%s", msg ? msg : "out of memory");
	free(msg);
}

/* A member by dotted path; numeric segments index arrays. */
static const cJSON *get_path(const cJSON *obj, const char *path)
{
	char *copy = tg_xstrdup(path), *seg = copy, *dot;
	const cJSON *v = obj;

	while (v && seg) {
		dot = strchr(seg, '.');
		if (dot)
			*dot = '\0';
		if (cJSON_IsArray(v)) {
			long long i;

			v = tg_parse_ll(&i, seg, 0, INT32_MAX) ? NULL
							       : cJSON_GetArrayItem(v, (int)i);
		} else {
			v = cJSON_GetObjectItemCaseSensitive(v, seg);
		}
		seg = dot ? dot + 1 : NULL;
	}
	free(copy);
	return v;
}

static const char *kind_word(const struct tg_object *o)
{
	return o->kind == TG_KIND_POLICY ? "policy" : "api";
}

static void check_auth(struct check *c, const struct tg_object *o)
{
	if (o->kind == TG_KIND_API) {
		if (cJSON_IsTrue(
			    cJSON_GetObjectItemCaseSensitive(tg_object_body(o), "use_keyless")))
			violation(c, TG_RULE_AUTH_REQUIRED, o, "use_keyless",
				  "api '%s' is keyless (use_keyless is true)", o->id);
		return;
	}
	if (o->kind == TG_KIND_OAS_API) {
		const cJSON *sec = cJSON_GetObjectItemCaseSensitive(tg_object_body(o), "security");

		if (!cJSON_IsTrue(get_path(tg_object_body(o),
					   "x-tyk-api-gateway.server.authentication.enabled")))
			violation(
				c, TG_RULE_AUTH_REQUIRED, o,
				"x-tyk-api-gateway.server.authentication.enabled",
				"api '%s' is keyless (x-tyk-api-gateway.server.authentication.enabled is not true)",
				o->id);
		else if (!cJSON_IsArray(sec) || !cJSON_GetArraySize(sec))
			violation(
				c, TG_RULE_AUTH_REQUIRED, o, "security",
				"api '%s' has no security requirement (security is missing or empty)",
				o->id);
	}
}

/* rate/per of a limit, or -1 when it has no working rate limit. */
static double rate_per_second(const cJSON *limit, const char **bad_field)
{
	const cJSON *rate = cJSON_GetObjectItemCaseSensitive(limit, "rate");
	const cJSON *per = cJSON_GetObjectItemCaseSensitive(limit, "per");

	*bad_field = !cJSON_IsNumber(rate) || rate->valuedouble <= 0 ? "rate" : "per";
	if (!cJSON_IsNumber(rate) || rate->valuedouble <= 0 || !cJSON_IsNumber(per) ||
	    per->valuedouble <= 0)
		return -1;
	return rate->valuedouble / per->valuedouble;
}

static void check_limit(struct check *c, const struct tg_object *o, const cJSON *limit,
			const char *at, int required)
{
	const struct tg_rules *r = c->r;
	const char *bad_field;
	double rps = rate_per_second(limit, &bad_field);
	const cJSON *quota = cJSON_GetObjectItemCaseSensitive(limit, "quota_max");
	char field[512];
	const char *where = at[0] ? at : "policy";

	snprintf(field, sizeof(field), "%s%s%s", at, at[0] ? "." : "", bad_field);
	if (rps < 0) {
		if (required)
			violation(c, TG_RULE_POLICY_LIMITS, o, field,
				  "policy '%s' has no rate limit (rate and per must be positive)",
				  o->id);
	} else if (r->max_rate_per_second > 0 && rps > r->max_rate_per_second) {
		snprintf(field, sizeof(field), "%s%srate", at, at[0] ? "." : "");
		violation(
			c, TG_RULE_POLICY_LIMITS, o, field,
			"policy '%s' allows %g requests per second in %s, more than max_requests_per_second %g",
			o->id, rps, where, r->max_rate_per_second);
	}
	snprintf(field, sizeof(field), "%s%squota_max", at, at[0] ? "." : "");
	if (cJSON_IsNumber(quota) && quota->valuedouble > 0) {
		if (r->max_quota > 0 && quota->valuedouble > (double)r->max_quota)
			violation(c, TG_RULE_POLICY_LIMITS, o, field,
				  "policy '%s' has quota_max %.0f in %s, more than max_quota %lld",
				  o->id, quota->valuedouble, where, r->max_quota);
	} else if (r->require_quota && required) {
		violation(c, TG_RULE_POLICY_LIMITS, o, field,
			  "policy '%s' has no quota (quota_max must be positive)", o->id);
	}
}

static void check_policy_limits(struct check *c, const struct tg_object *o)
{
	const cJSON *rights, *e;

	if (o->kind != TG_KIND_POLICY)
		return;
	check_limit(c, o, tg_object_body(o), "", 1);
	/* Per-API limits override the policy's: they must stay within the
	 * maxima too. */
	rights = cJSON_GetObjectItemCaseSensitive(tg_object_body(o), "access_rights");
	if (!cJSON_IsObject(rights))
		return;
	cJSON_ArrayForEach(e, rights)
	{
		const cJSON *limit = cJSON_GetObjectItemCaseSensitive(e, "limit");
		char *at;

		if (!cJSON_IsObject(limit) || !e->string)
			continue;
		at = tg_xasprintf("access_rights.%s.limit", e->string);
		check_limit(c, o, limit, at, 0);
		free(at);
	}
}

/* Splits url into scheme and host; 0, or -1 with *why set. */
static int split_url(const char *url, char *scheme, size_t scheme_size, char *host,
		     size_t host_size, const char **why)
{
	const char *p = strstr(url, "://"), *auth, *end, *at, *h, *he;
	size_t n;
	char raw[TG_HOST_MAX];
	size_t o = 0;

	if (!p || p == url || (size_t)(p - url) >= scheme_size) {
		*why = "has no scheme";
		return -1;
	}
	for (n = 0; url + n < p; n++)
		scheme[n] = (char)(url[n] >= 'A' && url[n] <= 'Z' ? url[n] + 32 : url[n]);
	scheme[n] = '\0';
	auth = p + 3;
	/* A backslash ends the authority for browsers and some parsers. */
	end = auth + strcspn(auth, "/?#\\");
	at = NULL;
	for (const char *q = auth; q < end; q++)
		if (*q == '@')
			at = q; /* userinfo ends at the last '@' */
	h = at ? at + 1 : auth;
	if (*h == '[') {
		he = memchr(h, ']', (size_t)(end - h));
		if (!he || (he + 1 < end && he[1] != ':')) {
			*why = "has no valid host";
			return -1;
		}
		h++;
	} else {
		he = memchr(h, ':', (size_t)(end - h));
		if (!he)
			he = end;
	}
	if (he <= h || (size_t)(he - h) >= sizeof(raw)) {
		*why = "has no valid host";
		return -1;
	}
	/* Percent escapes in a host are decoded by URL parsers: so here. */
	for (const char *q = h; q < he; q++) {
		if (*q == '%' && he - q >= 3 && tg_hex_digit(q[1]) >= 0 &&
		    tg_hex_digit(q[2]) >= 0) {
			raw[o++] = (char)(tg_hex_digit(q[1]) * 16 + tg_hex_digit(q[2]));
			q += 2;
		} else {
			raw[o++] = *q;
		}
	}
	raw[o] = '\0';
	if (strlen(raw) != o || o >= host_size) {
		*why = "has no valid host";
		return -1;
	}
	memcpy(host, raw, o + 1);
	return 0;
}

static int host_glob(const char *pattern, const char *host)
{
	return fnmatch(pattern, host, FNM_CASEFOLD) == 0;
}

/* How hosts names the host: 2 exactly (a literal entry or a range), 1 by
 * a wildcard glob, 0 not at all. */
static int listed(const struct tg_rules *r, const char *canon, const char *written)
{
	int best = 0;

	for (size_t i = 0; i < r->n_hosts; i++) {
		const char *e = r->hosts[i];

		if (strchr(e, '/')) {
			if (tg_host_in_cidr(e, canon))
				return 2;
		} else if (!strcasecmp(e, canon) || !strcasecmp(e, written)) {
			return 2;
		} else if (host_glob(e, canon)) {
			best = 1;
		}
	}
	return best;
}

static void check_url(struct check *c, const struct tg_object *o, const char *field,
		      const char *url)
{
	const struct tg_rules *r = c->r;
	char scheme[32], host[TG_HOST_MAX], canon[TG_HOST_MAX], shown[600];
	const char *why = NULL, *cls;
	int ok = 0, how;

	if (split_url(url, scheme, sizeof(scheme), host, sizeof(host), &why)) {
		/* Never the whole URL: it may carry credentials. */
		violation(c, TG_RULE_UPSTREAM_ALLOW, o, field, "api '%s': upstream url %s", o->id,
			  why);
		return;
	}
	for (size_t i = 0; i < r->n_schemes && !ok; i++)
		ok = !strcasecmp(r->schemes[i], scheme);
	if (!ok) {
		struct tg_buf allowed = TG_BUF_INIT;

		for (size_t i = 0; i < r->n_schemes; i++)
			tg_buf_printf(&allowed, "%s%s", i ? ", " : "", r->schemes[i]);
		violation(c, TG_RULE_UPSTREAM_ALLOW, o, field,
			  "api '%s': upstream scheme '%s' is not allowed (allowed: %s)", o->id,
			  scheme, tg_buf_cstr(&allowed));
		tg_buf_release(&allowed);
		return;
	}
	cls = tg_host_class(host, canon);
	if (!cls) {
		violation(c, TG_RULE_UPSTREAM_ALLOW, o, field, "api '%s': upstream url %s", o->id,
			  "has no valid host");
		return;
	}
	if (strcmp(canon, host))
		snprintf(shown, sizeof(shown), "'%s' (%s)", host, canon);
	else
		snprintf(shown, sizeof(shown), "'%s'", host);
	how = listed(r, canon, host);
	if (!strcmp(cls, "loopback") && !r->allow_loopback && how < 2) {
		violation(
			c, TG_RULE_UPSTREAM_ALLOW, o, field,
			"api '%s': upstream host %s is loopback; set allow_loopback or list it in hosts",
			o->id, shown);
		return;
	}
	if (!strcmp(cls, "private") && !r->allow_private && how < 2) {
		violation(
			c, TG_RULE_UPSTREAM_ALLOW, o, field,
			"api '%s': upstream host %s is a private address; set allow_private or list it in hosts",
			o->id, shown);
		return;
	}
	if ((!strcmp(cls, "link-local") || !strcmp(cls, "reserved")) && how < 2) {
		violation(
			c, TG_RULE_UPSTREAM_ALLOW, o, field,
			"api '%s': upstream host %s is %s%s; only an exact entry in hosts allows it",
			o->id, shown, cls,
			!strcmp(cls, "link-local") ? " (cloud metadata lives there)" : "");
		return;
	}
	if (r->n_hosts && !how)
		violation(c, TG_RULE_UPSTREAM_ALLOW, o, field,
			  "api '%s': upstream host %s is not in hosts", o->id, shown);
}

static void check_upstreams(struct check *c, const struct tg_object *o)
{
	const char *field =
		o->kind == TG_KIND_API ? "proxy.target_url" : "x-tyk-api-gateway.upstream.url";
	const cJSON *url = get_path(tg_object_body(o), field), *e, *targets;
	int i = 0;

	if (o->kind == TG_KIND_POLICY)
		return;
	if (cJSON_IsString(url) && url->valuestring[0])
		check_url(c, o, field, url->valuestring);
	/* Load-balanced targets go through the same door. */
	targets = o->kind == TG_KIND_API
			  ? get_path(tg_object_body(o), "proxy.targets")
			  : get_path(tg_object_body(o),
				     "x-tyk-api-gateway.upstream.loadBalancing.targets");
	if (!cJSON_IsArray(targets))
		return;
	cJSON_ArrayForEach(e, targets)
	{
		const cJSON *u = cJSON_IsString(e) ? e : cJSON_GetObjectItemCaseSensitive(e, "url");
		char *f =
			o->kind == TG_KIND_API
				? tg_xasprintf("proxy.targets.%d", i)
				: tg_xasprintf(
					  "x-tyk-api-gateway.upstream.loadBalancing.targets.%d.url",
					  i);

		if (cJSON_IsString(u) && u->valuestring[0])
			check_url(c, o, f, u->valuestring);
		free(f);
		i++;
	}
}

/* Whether listen path lp lies under prefix: "/payments" counts as under
 * "/payments/". */
static int under(const char *lp, const char *prefix)
{
	size_t n = strlen(prefix), m = strlen(lp);

	if (!strncmp(lp, prefix, n))
		return 1;
	return n && prefix[n - 1] == '/' && m + 1 == n && !strncmp(lp, prefix, m);
}

static void join_list(struct tg_buf *b, char *const *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tg_buf_printf(b, "%s%s", i ? ", " : "", l[i]);
}

static void check_ownership(struct check *c, const struct tg_object *o)
{
	const struct tg_rules *r = c->r;
	const struct tg_rule_owner *own = NULL;
	const char *lp = o->listen_path ? o->listen_path : "";
	const char *dom_field =
		o->kind == TG_KIND_API ? "domain" : "x-tyk-api-gateway.server.customDomain.name";
	struct tg_buf b = TG_BUF_INIT;
	size_t i;

	if (o->kind == TG_KIND_POLICY) {
		int ok = !r->n_policy_files;

		for (i = 0; i < r->n_policy_files && !ok; i++)
			ok = fnmatch(r->policy_files[i], o->file, 0) == 0;
		if (!ok) {
			join_list(&b, r->policy_files, r->n_policy_files);
			violation(
				c, TG_RULE_PATH_OWNERSHIP, o, "",
				"policy '%s' is defined outside the files that may define policies (%s)",
				o->id, tg_buf_cstr(&b));
		}
		tg_buf_release(&b);
		return;
	}
	for (i = 0; i < r->n_owners && !own; i++)
		if (fnmatch(r->owners[i].files, o->file, 0) == 0)
			own = &r->owners[i];
	if (own) {
		int ok = 0;

		for (i = 0; i < own->n_listen_paths && !ok; i++)
			ok = under(lp, own->listen_paths[i]);
		if (!ok) {
			join_list(&b, own->listen_paths, own->n_listen_paths);
			violation(
				c, TG_RULE_PATH_OWNERSHIP, o, o->listen_path_src.field,
				"api '%s': listen path '%s' is outside %s, which files '%s' may use",
				o->id, lp, tg_buf_cstr(&b), own->files);
		}
		ok = !own->n_domains;
		for (i = 0; i < own->n_domains && !ok; i++)
			ok = o->domain && !strcasecmp(o->domain, own->domains[i]);
		if (!ok) {
			tg_buf_release(&b);
			join_list(&b, own->domains, own->n_domains);
			violation(c, TG_RULE_PATH_OWNERSHIP, o, dom_field,
				  "api '%s': domain '%s' is not one that files '%s' may use (%s)",
				  o->id, o->domain ? o->domain : "", own->files, tg_buf_cstr(&b));
		}
		tg_buf_release(&b);
		return;
	}
	/* Not an owner's file: it may not take an owner's listen path. */
	for (i = 0; i < r->n_owners; i++)
		for (size_t j = 0; j < r->owners[i].n_listen_paths; j++)
			if (under(lp, r->owners[i].listen_paths[j])) {
				violation(c, TG_RULE_PATH_OWNERSHIP, o, o->listen_path_src.field,
					  "api '%s': listen path '%s' belongs to files '%s'", o->id,
					  lp, r->owners[i].files);
				return;
			}
}

static int present(const cJSON *v)
{
	if (!v || cJSON_IsNull(v))
		return 0;
	if (cJSON_IsString(v))
		return v->valuestring[0] != '\0';
	if (cJSON_IsArray(v) || cJSON_IsObject(v))
		return v->child != NULL;
	return 1;
}

static void check_required(struct check *c, const struct tg_object *o)
{
	const struct tg_rules *r = c->r;
	char *const *fields = o->kind == TG_KIND_API       ? r->api_fields
			      : o->kind == TG_KIND_OAS_API ? r->oas_fields
							   : r->policy_fields;
	size_t n = o->kind == TG_KIND_API       ? r->n_api_fields
		   : o->kind == TG_KIND_OAS_API ? r->n_oas_fields
						: r->n_policy_fields;

	for (size_t i = 0; i < n; i++)
		if (!present(get_path(tg_object_body(o), fields[i])))
			violation(c, TG_RULE_REQUIRED_FIELDS, o, fields[i],
				  "%s '%s' is missing required field '%s'", kind_word(o), o->id,
				  fields[i]);
}

typedef void (*check_fn)(struct check *c, const struct tg_object *o);

void tg_rules_check(const struct tg_rules *rules, const struct tg_desired *d,
		    struct tg_problems *problems)
{
	static const check_fn checks[TG_RULE_COUNT] = { check_auth,      check_policy_limits,
							check_upstreams, check_ownership,
							check_required,  NULL };
	struct check c = { rules, problems };

	if (!rules || !d)
		return;
	for (size_t i = 0; i < d->len; i++)
		for (int k = 0; k < TG_RULE_COUNT; k++)
			if (checks[k] && rules->set[k].enabled &&
			    !excepted(&rules->set[k], &d->objects[i]))
				checks[k](&c, &d->objects[i]);
}

void tg_rules_check_plan(const struct tg_rules *rules, const struct tg_plan *plan, int force,
			 struct tg_problems *problems)
{
	const struct tg_rule_setting *st;
	size_t n = 0;

	if (!rules || !rules->set[TG_RULE_MAX_CHANGES].enabled)
		return;
	st = &rules->set[TG_RULE_MAX_CHANGES];
	for (size_t i = 0; i < plan->len; i++) {
		const struct tg_plan_item *it = &plan->items[i];

		if (it->warn_only || it->action == TG_ACTION_NONE ||
		    it->action == TG_ACTION_CONFLICT)
			continue;
		n++;
	}
	if ((long long)n <= rules->max_changes)
		return;
	if (force)
		tg_problems_add_rule(
			problems, TG_SEV_WARNING, NULL, 0, 0, NULL, rule_names[TG_RULE_MAX_CHANGES],
			"plan changes %zu objects, more than max %lld; applied with --force", n,
			rules->max_changes);
	else
		tg_problems_add_rule(
			problems, st->severity, NULL, 0, 0, NULL, rule_names[TG_RULE_MAX_CHANGES],
			"plan changes %zu objects, more than max %lld; use --force to apply", n,
			rules->max_changes);
}
