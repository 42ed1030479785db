/*
 * The controller's metric families: names, help, labels, and the helpers
 * that keep per-sync samples consistent.  Every family name starts with
 * tyk_gitops_ and the output passes `promtool check metrics`.
 */
#ifndef TG_CATALOG_H
#define TG_CATALOG_H

#include "tg/httpd.h"
#include "tg/metrics.h"

#define TG_M_BUILD "tyk_gitops_build_info"
#define TG_M_RECONCILES "tyk_gitops_reconcile_total"
#define TG_M_RECONCILE_SECONDS "tyk_gitops_reconcile_duration_seconds"
#define TG_M_COMMIT "tyk_gitops_last_applied_commit_info"
#define TG_M_OBJECTS "tyk_gitops_objects"
#define TG_M_DRIFT "tyk_gitops_drift_corrections_total"
#define TG_M_GIT "tyk_gitops_git_requests_total"
#define TG_M_GIT_SECONDS "tyk_gitops_git_request_duration_seconds"
#define TG_M_GATEWAY "tyk_gitops_gateway_requests_total"
#define TG_M_GATEWAY_SECONDS "tyk_gitops_gateway_request_duration_seconds"
#define TG_M_LAST_SUCCESS "tyk_gitops_last_success_timestamp_seconds"
#define TG_M_SUSPENDED "tyk_gitops_suspended"
#define TG_M_TRIGGERS "tyk_gitops_triggers_total"
#define TG_M_WEBHOOKS "tyk_gitops_webhook_requests_total"
#define TG_M_AUTH "tyk_gitops_auth_requests_total"
#define TG_M_HTTP_CUT "tyk_gitops_http_requests_cut_total"
#define TG_M_BITBUCKET "tyk_gitops_bitbucket_requests_total"
#define TG_M_LEADER "tyk_gitops_leader"
#define TG_M_LEASE_TRANSITIONS "tyk_gitops_lease_transitions_total"
#define TG_M_KUBE "tyk_gitops_kube_requests_total"
#define TG_M_FORWARDS "tyk_gitops_forwarded_requests_total"
#define TG_M_RULES "tyk_gitops_rule_violations_total"
#define TG_M_HEALTH "tyk_gitops_health_checks_total"
#define TG_M_ROLLBACKS "tyk_gitops_rollbacks_total"

/* Defines every family and sets the build info. */
void tg_catalog_define(struct tg_metrics *m);

/* Zero samples for a new sync, so its series exist before its first pass. */
void tg_catalog_sync_init(struct tg_metrics *m, const char *sync, int suspended);
/* Drops every sample of a sync that left the configuration. */
void tg_catalog_sync_drop(struct tg_metrics *m, const char *sync);

/* One git remote operation ("ls_remote", "fetch"). */
void tg_catalog_git(struct tg_metrics *m, const char *sync, const char *op, int ok, double seconds);

/*
 * One POST /hooks/bitbucket by result: triggered, no_match, ping,
 * ignored (an event that triggers nothing), duplicate (delivery id seen),
 * unauthorized (missing or bad signature), invalid (400), error (secret
 * file unreadable).
 */
void tg_catalog_webhook(struct tg_metrics *m, const char *result);

/*
 * One authorization decision on the API's POSTs: result allowed,
 * unauthenticated (401), forbidden (403) or unavailable (503), and the
 * reason (token, loopback, missing_token, oidc_not_configured, no_rule,
 * no_sync, or a token's refusal reason from tg_jwt_reason_name).
 */
void tg_catalog_auth(struct tg_metrics *m, const char *result, const char *reason);

/* n connections of a listener cut at http.request_timeout. */
void tg_catalog_requests_cut(struct tg_metrics *m, enum tg_httpd_role role, unsigned n);

/* Observer callbacks for tg_syncer_set_git_observer and
 * tg_syncer_set_gateway_observer; ctx is the struct tg_metrics. */
void tg_catalog_observe_git(void *ctx, const char *sync, const char *op, int ok, double seconds);
void tg_catalog_observe_gateway(void *ctx, const char *method, const char *endpoint, long status,
				double seconds);

#endif
