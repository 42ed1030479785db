/*
 * Guardrail rules (SPEC 11): a small, fixed set of checks a platform team
 * sets per sync (`rules:` in the configuration) on top of validation.
 *
 *   auth_required    no keyless API (classic use_keyless, OAS without
 *                    authentication enabled and a security requirement)
 *   policy_limits    every policy has a rate limit (and optionally a quota)
 *                    within configured maxima
 *   upstream_allow   upstream URLs use allowed schemes and hosts; loopback,
 *                    private, link-local (cloud metadata) and reserved
 *                    addresses are refused unless allowed.  Nothing is
 *                    resolved: the literal host is judged, in every spelling
 *                    a resolver would accept (decimal, hex, octal and short
 *                    IPv4 forms, IPv4-mapped and NAT64 IPv6, percent escapes)
 *   path_ownership   files matching a glob may only use given listen-path
 *                    prefixes and domains, nobody else may use those
 *                    prefixes, and only some files may define policies
 *   required_fields  fields that must be present and not empty
 *   max_changes      a plan that changes more than N objects needs --force
 *
 * Each rule is `error` (the commit is refused) or `warn` (reported only),
 * with an `except` list of globs matched against the object's file and its
 * id.  Globs are fnmatch(3) patterns without FNM_PATHNAME: '*' also matches
 * '/': "apis/teams/payments/" followed by '*' covers every file below that
 * directory.
 *
 * Violations are ordinary problems (problems.h) carrying the rule's name,
 * at the file, line and column of the offending field, so every consumer
 * of problems (validate, JSON results, the status API, the PR report)
 * shows them.  Pure: no I/O.
 */
#ifndef TG_RULES_H
#define TG_RULES_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/desired.h"
#include "tg/plan.h"
#include "tg/problems.h"

enum tg_rule {
	TG_RULE_AUTH_REQUIRED,
	TG_RULE_POLICY_LIMITS,
	TG_RULE_UPSTREAM_ALLOW,
	TG_RULE_PATH_OWNERSHIP,
	TG_RULE_REQUIRED_FIELDS,
	TG_RULE_MAX_CHANGES
};
#define TG_RULE_COUNT 6

/* "auth_required", "policy_limits", ... */
const char *tg_rule_name(enum tg_rule r);

/* One `path_ownership.owners` entry. */
struct tg_rule_owner {
	char *files;         /* glob on the object's file */
	char **listen_paths; /* allowed listen-path prefixes */
	size_t n_listen_paths;
	char **domains; /* allowed domains; none given: any (also none) */
	size_t n_domains;
};

struct tg_rules {
	struct tg_rule_setting {
		int enabled;
		enum tg_severity severity; /* error (default) or warn */
		char **except;             /* globs on file or id */
		size_t n_except;
	} set[TG_RULE_COUNT];
	/* policy_limits */
	double max_rate_per_second; /* 0: no maximum */
	int require_quota;
	long long max_quota; /* 0: no maximum */
	/* upstream_allow */
	char **schemes; /* default http, https */
	size_t n_schemes;
	char **hosts; /* globs on the host, or IPv4/IPv6 CIDR ranges; none: any public host */
	size_t n_hosts;
	int allow_private;  /* RFC 1918, CGNAT, IPv6 unique local */
	int allow_loopback; /* 127/8, 0/8, ::1, localhost */
	/* path_ownership */
	struct tg_rule_owner *owners;
	size_t n_owners;
	char **policy_files; /* globs: files that may define policies; none: any */
	size_t n_policy_files;
	/* required_fields: dotted paths in the object body */
	char **api_fields, **oas_fields, **policy_fields;
	size_t n_api_fields, n_oas_fields, n_policy_fields;
	/* max_changes */
	long long max_changes;
};

/* Reports a problem in the rules' configuration: path is the dotted path
 * below the `rules` key ("upstream_allow.hosts.1"), msg one line. */
typedef void (*tg_rules_problem_fn)(void *ctx, const char *path, const char *msg);

/*
 * Builds rules from the `rules:` mapping of a sync.  Every problem (unknown
 * rule or key, wrong type, bad level, a host entry that is neither a glob
 * nor a CIDR range) goes to fn; returns 0 or TG_EINVALID when there was
 * any.  *out is owned by the caller (tg_rules_free); it is NULL on error.
 */
int tg_rules_parse(struct tg_rules **out, const cJSON *v, tg_rules_problem_fn fn, void *ctx);
void tg_rules_free(struct tg_rules *r);

/*
 * Checks every object-level rule (all but max_changes) on d and appends a
 * problem per violation, at the offending field when the object kept its
 * positions (tg_load_opts.keep_positions), else at the object's start.
 * rules may be NULL (nothing to check).
 */
void tg_rules_check(const struct tg_rules *rules, const struct tg_desired *d,
		    struct tg_problems *problems);

/*
 * Checks max_changes on a plan: creates, updates and deletes that would be
 * applied (drift left in place under `warn` is not a change).  With force,
 * an `error` rule is reported as a warning that says it was overridden.
 */
void tg_rules_check_plan(const struct tg_rules *rules, const struct tg_plan *plan, int force,
			 struct tg_problems *problems);

#endif
