/*
 * Configuration file (YAML, SPEC 6): global settings and a list of syncs.
 * One table of options per section (name, type, default); unknown keys and
 * bad values are reported with file, line and key.  Secrets are given only
 * as file paths.  Flags override file values (the CLI applies them).
 */
#ifndef TG_CONFIG_H
#define TG_CONFIG_H

#include <stddef.h>

#include "tg/common.h"
#include "tg/jwt.h"
#include "tg/log.h"
#include "tg/problems.h"
#include "tg/vocab.h"

struct tg_rules; /* rules.h */

/* What a Pipelines OIDC rule may allow on a sync (the API's POST routes). */
enum {
	TG_API_RECONCILE = 1 << 0,
	TG_API_SUSPEND = 1 << 1,
	TG_API_RESUME = 1 << 2,
	TG_API_ROLLBACK = 1 << 3
};

/*
 * One `oidc.rules` entry of a sync: a token whose claims match every field
 * given may do `actions`.  repository_uuid or workspace_uuid is required
 * (the issuer signs a token for every pipeline it runs: a signature alone
 * must authorize nothing).  UUIDs compare case-insensitively, braces
 * optional; branch is an exact name or an fnmatch(3) glob.
 */
struct tg_oidc_rule {
	char *issuer;                      /* NULL: the only issuer configured */
	char *repository_uuid;             /* claim repositoryUuid */
	char *workspace_uuid;              /* claim workspaceUuid */
	char *deployment_environment_uuid; /* claim deploymentEnvironmentUuid */
	char *branch;                      /* claim branchName */
	unsigned actions;                  /* TG_API_* (default: reconcile) */
};

/* One `oidc.issuers` entry (global): whose tokens the API accepts. */
struct tg_oidc_issuer {
	char *issuer;                      /* exact "iss"; https:// */
	char *audience;                    /* must be in "aud" */
	char *jwks_url;                    /* https://; NULL: jwks_uri of the discovery document */
	char *jwks_file;                   /* a local key set instead of fetching one */
	char *ca_file;                     /* CA for the issuer's TLS; NULL: the system CAs */
	unsigned algorithms;               /* TG_JWT_* bits, pinned; default RS256 */
	long long refresh_interval_ms;     /* key set refreshed this often (1h) */
	long long min_refresh_interval_ms; /* at most one refresh on unknown kid per (15s) */
	long long leeway_ms;               /* clock skew on exp/nbf/iat (60s) */
};

struct tg_sync_config {
	char *name;
	/* repo */
	char *repo_url;
	enum tg_ref_type ref_type;
	char *ref;
	char *path; /* inside the repository; "" = root */
	char *auth_username;
	char *auth_password_file;
	char *auth_token_file;
	char *auth_ssh_key_file;
	char *auth_known_hosts_file;
	char *auth_ca_file;
	int auth_insecure_skip_host_key_check;
	char **trusted_keys; /* SSH public keys for signature verification */
	size_t n_trusted_keys;
	char *secrets_dir; /* ${VAR} files */
	/* gateway */
	char *gateway_url;
	char *gateway_secret_file;
	char *gateway_ca_file;
	char *gateway_cert_file;
	char *gateway_key_file;
	int gateway_insecure_skip_verify;
	long long gateway_timeout_ms;
	long long gateway_concurrency;  /* the most writes in flight */
	int gateway_adaptive;           /* below that, as many as the gateway keeps up with */
	long long gateway_max_list_mib; /* MiB of one list reply; 0 = the client's default */
	/* behaviour */
	long long interval_ms;
	long long drift_interval_ms;
	enum tg_drift_policy drift_policy;
	int prune;
	long long max_delete; /* -1: max(10, 25% of owned objects) */
	int allow_empty;
	int adopt;
	int suspended;
	/* webhook (a reload applies these in place: tg_sync_config_swap_access) */
	int webhook; /* a `webhook:` section is present */
	char *webhook_secret_file;
	char *webhook_repository; /* full name or uuid as the payload names it; NULL: from repo.url */
	long long webhook_rotation_overlap_ms; /* previous secrets stay valid this long (10m) */
	/* Pipelines OIDC rules (applied in place on reload too) */
	struct tg_oidc_rule *oidc_rules;
	size_t n_oidc_rules;
	/* Bitbucket out (`bitbucket:`): commit build statuses, and the
	 * coordinates `tyk-gitops report` uses (see tg/bitbucket.h) */
	int bitbucket;      /* a `bitbucket:` section is present */
	int bb_statuses;    /* post build statuses (default true) */
	char *bb_api;       /* "cloud", "datacenter", or NULL: from repo.url */
	char *bb_url;       /* REST base URL; NULL: from repo.url */
	char *bb_workspace; /* Cloud workspace; NULL: from repo.url */
	char *bb_project;   /* Data Center project key; NULL: from repo.url */
	char *bb_repo_slug; /* NULL: from repo.url */
	char *bb_token_file;
	char *bb_email;      /* with token_file: Atlassian account email + API token (Basic) */
	char *bb_ca_file;    /* NULL: the system CAs */
	char *bb_proxy;      /* HTTP proxy for Bitbucket requests, or NULL */
	char *bb_status_url; /* link of the status; NULL: the controller's /api/v1/syncs/<name> */
	long long bb_timeout_ms; /* per request (10s) */
	/* daemon (`run`) */
	long long backoff_max_ms; /* cap of the retry backoff after failures; 0 = 5m */
	/* guardrails (`rules:`, rules.h); NULL: none */
	struct tg_rules *rules;
	char *rules_json; /* the section as given, to compare on reload */
	/* post-apply health check (`health:`) */
	int health;                   /* the section is present and enabled */
	char *health_url;             /* the gateway's data port; NULL: gateway.url */
	char *health_path;            /* probed below each listen path; NULL: the listen path */
	long long health_timeout_ms;  /* per probe (2s) */
	long long health_attempts;    /* before an API counts as unhealthy (3) */
	long long health_interval_ms; /* between attempts (500ms) */
	long long health_max_probes;  /* APIs probed per pass at most (50) */
	long long health_rate;        /* probes per second at most (20) */
	int health_rollback;          /* on_failure: rollback (1) or report (0) */
};

struct tg_config {
	char *path; /* file it came from, or NULL */
	char *listen;
	char *probe_listen; /* own port for /healthz, /readyz, /metrics; NULL: on listen */
	enum tg_log_level log_level;
	enum tg_log_format log_format;
	char *cache_dir;
	char *audit; /* "-" for stdout, a file path, or NULL */
	/* daemon HTTP limits (`http:`); 0 = the built-in default */
	long long http_max_connections;       /* 64 */
	long long http_connection_timeout_ms; /* 30s of inactivity */
	long long http_request_timeout_ms;    /* 10s to send each request, head and body */
	long long http_max_wait_ms;           /* longest ?wait=true, 10m */
	/* Bitbucket in (`run`) */
	char *webhook_listen; /* own port for /hooks/bitbucket and token-only POSTs; NULL: none */
	int auth_required;    /* `auth.required`: POSTs need a token on loopback too */
	struct tg_oidc_issuer *oidc_issuers;
	size_t n_oidc_issuers;
	/* `leader_election:` (`run`): one Lease per sync; off by default */
	int le_enabled;
	char *le_namespace;             /* NULL: the ServiceAccount's namespace file */
	char *le_identity;              /* NULL: <hostname>_<random> */
	char *le_address;               /* where other replicas forward requests; NULL: none */
	char *le_lease_prefix;          /* Lease names: <prefix>-<sync> ("tyk-gitops") */
	long long le_duration_ms;       /* 15s */
	long long le_renew_deadline_ms; /* 10s */
	long long le_retry_ms;          /* 2s */
	char *kube_api;                 /* NULL: in-cluster */
	char *kube_token_file;          /* NULL: the ServiceAccount token */
	char *kube_ca_file;             /* NULL: the ServiceAccount CA (in-cluster) */
	struct tg_sync_config *syncs;
	size_t n_syncs;
};

/* An empty configuration with defaults and no syncs. */
struct tg_config *tg_config_new(void);
/* Fills a sync with defaults (name "default"). */
void tg_sync_config_defaults(struct tg_sync_config *s);
/* Appends a sync with defaults and returns it. */
struct tg_sync_config *tg_config_add_sync(struct tg_config *cfg);

/*
 * Loads path.  Every problem (unknown key, wrong type, missing required
 * key, duplicate sync name) is added to problems; returns TG_EINVALID when
 * there was any, TG_ENOTFOUND when the file is missing.
 */
int tg_config_load(struct tg_config **out, const char *path, struct tg_problems *problems,
		   struct tg_err *err);

/* Command-line settings laid over the file: flag > file > default. */
struct tg_config_overrides {
	const char *sync; /* --sync: the sync the single-sync flags apply to */
	/* single-sync flags */
	const char *name, *repo, *branch, *tag, *commit, *path, *gateway, *secret_file,
		*secrets_dir;
	int adopt, no_prune, allow_empty;
	/* global flags */
	const char *cache_dir, *audit, *log_format, *log_level;
	const char *local_dir; /* --dir: syncs without a repository read this directory */
	/* leader election (`run`) */
	const char *kube_api, *kube_token_file, *kube_ca_file, *lease_identity, *advertise_url;
};

/*
 * Loads file (NULL: start empty), lays ov (NULL: none) over it and checks
 * the result: the one way a configuration is built, at start-up and on
 * SIGHUP, so flags given to `run` survive a reload.  Problems in the file
 * go to problems; err says what failed ("invalid configuration", a bad
 * flag, or the load error).  Returns 0, TG_ENOTFOUND or TG_EINVALID.
 */
int tg_config_build(struct tg_config **out, const char *file, const struct tg_config_overrides *ov,
		    struct tg_problems *problems, struct tg_err *err);

/* Checks required fields of every sync (after flags were applied). */
int tg_config_check(const struct tg_config *cfg, struct tg_problems *problems);

/*
 * Whether two syncs have the same settings, option by option from the
 * option table, except those a reload applies in place (`suspend`).
 */
int tg_sync_config_equal(const struct tg_sync_config *a, const struct tg_sync_config *b);

/*
 * Swaps the settings that decide who may trigger a sync (webhook and OIDC
 * rules) between a and b: a reload applies them without restarting the
 * sync.  The caller holds whatever lock guards readers of both.
 */
void tg_sync_config_swap_access(struct tg_sync_config *a, struct tg_sync_config *b);

/* Whether two configurations have the same OIDC issuers (a reload keeps
 * the running verifier and its cached keys when they do). */
int tg_config_issuers_equal(const struct tg_config *a, const struct tg_config *b);

/* Names of TG_API_* bits: "reconcile", "suspend", "resume", "rollback". */
const char *tg_api_action_name(unsigned action);

struct tg_sync_config *tg_config_find_sync(struct tg_config *cfg, const char *name);
void tg_config_free(struct tg_config *cfg);

#endif
