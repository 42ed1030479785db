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
#include "tg/gitsrc.h"
#include "tg/log.h"
#include "tg/plan.h"
#include "tg/problems.h"

struct tg_sync_config {
	char *name;
	/* repo */
	char *repo_url;
	enum tg_ref_type ref_type;
	char *ref;
	char *path;            /* inside the repository; "" = root */
	char *auth_username;
	char *auth_password_file;
	char *auth_token_file;
	char *auth_ssh_key_file;
	char *auth_known_hosts_file;
	char *auth_ca_file;
	int auth_insecure_skip_host_key_check;
	char **trusted_keys;   /* SSH public keys for signature verification */
	size_t n_trusted_keys;
	char *secrets_dir;     /* ${VAR} files */
	/* gateway */
	char *gateway_url;
	char *gateway_secret_file;
	char *gateway_ca_file;
	char *gateway_cert_file;
	char *gateway_key_file;
	int gateway_insecure_skip_verify;
	long long gateway_timeout_ms;
	long long gateway_concurrency;
	/* behaviour */
	long long interval_ms;
	long long drift_interval_ms;
	enum tg_drift_policy drift_policy;
	int prune;
	long long max_delete;  /* -1: max(10, 25% of owned objects) */
	int allow_empty;
	int adopt;
	int suspended;
	char *webhook_secret_file;
	/* daemon (`run`) */
	long long backoff_max_ms; /* cap of the retry backoff after failures; 0 = 5m */
};

struct tg_config {
	char *path;            /* file it came from, or NULL */
	char *listen;
	char *probe_listen;    /* own port for /healthz, /readyz, /metrics; NULL: on listen */
	enum tg_log_level log_level;
	enum tg_log_format log_format;
	char *cache_dir;
	char *audit;           /* "-" for stdout, a file path, or NULL */
	/* daemon HTTP limits (`http:`); 0 = the built-in default */
	long long http_max_connections;     /* 64 */
	long long http_connection_timeout_ms; /* 30s of inactivity */
	long long http_max_wait_ms;          /* longest ?wait=true, 10m */
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
	const char *sync;  /* --sync: the sync the single-sync flags apply to */
	/* single-sync flags */
	const char *name, *repo, *branch, *tag, *commit, *path, *gateway, *secret_file, *secrets_dir;
	int adopt, no_prune, allow_empty;
	/* global flags */
	const char *cache_dir, *audit, *log_format, *log_level;
	const char *local_dir; /* --dir: syncs without a repository read this directory */
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

struct tg_sync_config *tg_config_find_sync(struct tg_config *cfg, const char *name);
void tg_config_free(struct tg_config *cfg);

#endif
