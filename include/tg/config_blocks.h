/*
 * The configuration's custom blocks: options whose value is more than a
 * string, a number or a plain section (a sync's ref, drift policy, trusted
 * keys, webhook, Bitbucket, OIDC rules, guardrail rules, health check; the
 * global log settings and OIDC issuers).  Each setter is a
 * tg_config_custom_fn for the option tables (config_table.h): it parses its
 * value into the struct the table fills and reports what is wrong at the
 * key, including the checks that span the block's fields.
 */
#ifndef TG_CONFIG_BLOCKS_H
#define TG_CONFIG_BLOCKS_H

#include <cjson/cJSON.h>

#include "tg/config.h"
#include "tg/config_table.h"

/* Setters; base is a struct tg_sync_config, except where noted. */
void tg_config_set_ref(struct tg_config_walk *w, const struct tg_config_option *opt, const cJSON *v,
		       void *base, const char *path);
void tg_config_set_drift_policy(struct tg_config_walk *w, const struct tg_config_option *opt,
				const cJSON *v, void *base, const char *path);
void tg_config_set_trusted_keys(struct tg_config_walk *w, const struct tg_config_option *opt,
				const cJSON *v, void *base, const char *path);
/* webhook, bitbucket and health walk opt->section and then check the
 * block as a whole (a webhook needs a secret, an email a token...). */
void tg_config_set_webhook(struct tg_config_walk *w, const struct tg_config_option *opt,
			   const cJSON *v, void *base, const char *path);
void tg_config_set_bitbucket(struct tg_config_walk *w, const struct tg_config_option *opt,
			     const cJSON *v, void *base, const char *path);
void tg_config_set_health(struct tg_config_walk *w, const struct tg_config_option *opt,
			  const cJSON *v, void *base, const char *path);
void tg_config_set_on_failure(struct tg_config_walk *w, const struct tg_config_option *opt,
			      const cJSON *v, void *base, const char *path);
/* oidc.rules of a sync, checked against the issuers already loaded
 * (w->cfg): the loader walks the global options before the syncs. */
void tg_config_set_oidc_rules(struct tg_config_walk *w, const struct tg_config_option *opt,
			      const cJSON *v, void *base, const char *path);
/* rules: parsed by rules.h, kept as JSON for equality. */
void tg_config_set_rules(struct tg_config_walk *w, const struct tg_config_option *opt,
			 const cJSON *v, void *base, const char *path);
/* Global options: base is a struct tg_config. */
void tg_config_set_log_level(struct tg_config_walk *w, const struct tg_config_option *opt,
			     const cJSON *v, void *base, const char *path);
void tg_config_set_log_format(struct tg_config_walk *w, const struct tg_config_option *opt,
			      const cJSON *v, void *base, const char *path);
void tg_config_set_issuers(struct tg_config_walk *w, const struct tg_config_option *opt,
			   const cJSON *v, void *base, const char *path);

/* Equality of what a setter sets, for tg_sync_config_equal (a and b are
 * struct tg_sync_config). */
int tg_config_same_ref(const void *a, const void *b);
int tg_config_same_drift_policy(const void *a, const void *b);
int tg_config_same_trusted_keys(const void *a, const void *b);
int tg_config_same_rules(const void *a, const void *b);
int tg_config_same_on_failure(const void *a, const void *b);

/* Frees what an OIDC rule or issuer entry holds (not the entry itself). */
void tg_config_rule_release(struct tg_oidc_rule *r);
void tg_config_issuer_release(struct tg_oidc_issuer *is);

#endif
