/* The controller's metric families (see include/tg/catalog.h). */
#include "tg/catalog.h"

#include <stdio.h>

#include "tg/common.h"
#include "tg/reconcile.h"
#include "tg/banned.h"

/* Families of per-sync samples, dropped when a sync leaves the config. */
static const char *const per_sync_families[] = {
	TG_M_RECONCILES, TG_M_RECONCILE_SECONDS, TG_M_COMMIT,       TG_M_OBJECTS,   TG_M_DRIFT,
	TG_M_GIT,        TG_M_GIT_SECONDS,       TG_M_LAST_SUCCESS, TG_M_SUSPENDED, TG_M_TRIGGERS,
	TG_M_LEADER,     TG_M_LEASE_TRANSITIONS, TG_M_RULES,        TG_M_HEALTH,    TG_M_ROLLBACKS
};

void tg_catalog_define(struct tg_metrics *m)
{
	static const char *const l_version[] = { "version", NULL };
	static const char *const l_sync[] = { "sync", NULL };
	static const char *const l_sync_result[] = { "sync", "result", NULL };
	static const char *const l_sync_commit[] = { "sync", "commit", NULL };
	static const char *const l_objects[] = { "sync", "kind", "state", NULL };
	static const char *const l_git[] = { "sync", "op", "result", NULL };
	static const char *const l_git_s[] = { "sync", "op", NULL };
	static const char *const l_gw[] = { "endpoint", "method", "code", NULL };
	static const char *const l_gw_s[] = { "endpoint", "method", NULL };
	static const char *const l_trigger[] = { "sync", "trigger", NULL };
	static const char *const l_result[] = { "result", NULL };
	static const char *const l_auth[] = { "result", "reason", NULL };
	static const char *const l_listener[] = { "listener", NULL };
	static const char *const l_lease[] = { "sync", "event", NULL };
	static const char *const l_kube[] = { "verb", "result", NULL };
	static const char *const l_rule[] = { "sync", "rule", "severity", NULL };
	/* Series that exist from the start, so rate() and alerts see zeros
	 * rather than nothing. */
	static const char *const hook_results[] = { "triggered", "no_match",  "ping",
						    "ignored",   "duplicate", "unauthorized",
						    "invalid",   "error" };
	static const char *const auth_series[][2] = {
		{ "allowed", "token" },
		{ "allowed", "loopback" },
		{ "unauthenticated", "missing_token" },
		{ "unauthenticated", "malformed" },
		{ "unauthenticated", "alg_not_allowed" },
		{ "unauthenticated", "wrong_issuer" },
		{ "unauthenticated", "unknown_kid" },
		{ "unauthenticated", "key_type" },
		{ "unauthenticated", "bad_signature" },
		{ "unauthenticated", "wrong_audience" },
		{ "unauthenticated", "expired" },
		{ "unauthenticated", "not_yet_valid" },
		{ "forbidden", "no_rule" },
		{ "forbidden", "oidc_not_configured" },
		{ "unavailable", "jwks_unavailable" },
	};
	static const double pass_buckets[] = {
		0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300
	};
	const char *const version[] = { TG_VERSION };

	tg_metrics_define(m, TG_M_BUILD, TG_METRIC_GAUGE,
			  "Build information of the running controller.", l_version, NULL, 0);
	tg_metrics_define(m, TG_M_RECONCILES, TG_METRIC_COUNTER,
			  "Reconcile passes by sync and result (success, partial, refused, error).",
			  l_sync_result, NULL, 0);
	tg_metrics_define(m, TG_M_RECONCILE_SECONDS, TG_METRIC_HISTOGRAM,
			  "Duration of reconcile passes by sync and result.", l_sync_result,
			  pass_buckets, TG_ARRAY_SIZE(pass_buckets));
	tg_metrics_define(m, TG_M_COMMIT, TG_METRIC_GAUGE,
			  "Commit last applied by each sync (always 1; the commit is a label).",
			  l_sync_commit, NULL, 0);
	tg_metrics_define(
		m, TG_M_OBJECTS, TG_METRIC_GAUGE,
		"Objects managed by each sync after its last pass, by kind and state "
		"(in_sync, drifted: left changed under the warn policy, failed: not applied "
		"or in conflict).",
		l_objects, NULL, 0);
	tg_metrics_define(m, TG_M_DRIFT, TG_METRIC_COUNTER,
			  "Objects changed or removed on the gateway by hand that a pass put back.",
			  l_sync, NULL, 0);
	tg_metrics_define(
		m, TG_M_GIT, TG_METRIC_COUNTER,
		"Git remote operations by sync, operation (ls_remote, fetch) and result (ok, error).",
		l_git, NULL, 0);
	tg_metrics_define(m, TG_M_GIT_SECONDS, TG_METRIC_HISTOGRAM,
			  "Duration of git remote operations by sync and operation.", l_git_s,
			  tg_metrics_latency_buckets, tg_metrics_n_latency_buckets);
	tg_metrics_define(
		m, TG_M_GATEWAY, TG_METRIC_COUNTER,
		"Tyk Gateway control API requests by endpoint template, method and HTTP status "
		"(error: no response).",
		l_gw, NULL, 0);
	tg_metrics_define(
		m, TG_M_GATEWAY_SECONDS, TG_METRIC_HISTOGRAM,
		"Duration of Tyk Gateway control API requests by endpoint template and method.",
		l_gw_s, tg_metrics_latency_buckets, tg_metrics_n_latency_buckets);
	tg_metrics_define(m, TG_M_LAST_SUCCESS, TG_METRIC_GAUGE,
			  "Unix time of the last fully successful pass of each sync.", l_sync, NULL,
			  0);
	tg_metrics_define(m, TG_M_SUSPENDED, TG_METRIC_GAUGE, "1 when the sync is suspended.",
			  l_sync, NULL, 0);
	tg_metrics_define(
		m, TG_M_TRIGGERS, TG_METRIC_COUNTER,
		"Passes started by sync and the trigger that started them (several triggers "
		"arriving during a pass are served by one).",
		l_trigger, NULL, 0);
	tg_metrics_define(
		m, TG_M_WEBHOOKS, TG_METRIC_COUNTER,
		"Bitbucket webhook deliveries by result (triggered, no_match, ping, ignored, "
		"duplicate, unauthorized, invalid, error).",
		l_result, NULL, 0);
	tg_metrics_define(m, TG_M_AUTH, TG_METRIC_COUNTER,
			  "Authorization decisions on the API's POST endpoints by result (allowed, "
			  "unauthenticated, forbidden, unavailable) and reason.",
			  l_auth, NULL, 0);
	tg_metrics_define(
		m, TG_M_HTTP_CUT, TG_METRIC_COUNTER,
		"Connections closed by listener (main, probes, public) because a request "
		"took longer than http.request_timeout to arrive (slow or garbage clients).",
		l_listener, NULL, 0);
	{
		static const char *const l_bb[] = { "api", "result", NULL };

		tg_metrics_define(
			m, TG_M_BITBUCKET, TG_METRIC_COUNTER,
			"Requests to Bitbucket's REST API (commit build statuses) by api (cloud, "
			"datacenter) and result (ok, unauthorized, not_found, rejected, "
			"rate_limited, server_error, timeout, error; dropped: given up).",
			l_bb, NULL, 0);
	}
	tg_metrics_define(m, TG_M_LEADER, TG_METRIC_GAUGE,
			  "1 when this replica holds the sync's Lease and applies it (leader "
			  "election on; without it every sync is 1).",
			  l_sync, NULL, 0);
	tg_metrics_define(m, TG_M_LEASE_TRANSITIONS, TG_METRIC_COUNTER,
			  "Changes of this replica's hold on a sync's Lease by event (acquired, "
			  "released, lost).",
			  l_lease, NULL, 0);
	tg_metrics_define(m, TG_M_KUBE, TG_METRIC_COUNTER,
			  "Kubernetes API requests for leader election by verb (list, create, "
			  "update) and result (ok, conflict, error).",
			  l_kube, NULL, 0);
	tg_metrics_define(
		m, TG_M_FORWARDS, TG_METRIC_COUNTER,
		"Requests for a sync this replica does not hold, handed to the holder, by "
		"result (ok, error, no_holder).",
		l_result, NULL, 0);
	tg_metrics_define(
		m, TG_M_RULES, TG_METRIC_COUNTER,
		"Guardrail rule violations found by passes, by sync, rule and severity (error: the "
		"commit was refused, warning: reported only).",
		l_rule, NULL, 0);
	tg_metrics_define(m, TG_M_HEALTH, TG_METRIC_COUNTER,
			  "Post-apply health checks by sync and result (healthy, unhealthy).",
			  l_sync_result, NULL, 0);
	tg_metrics_define(
		m, TG_M_ROLLBACKS, TG_METRIC_COUNTER,
		"Rollbacks by sync and result (ok, failed): automatic after a failed health "
		"check, or asked for with rollback --to.",
		l_sync_result, NULL, 0);
	tg_metrics_set(m, TG_M_BUILD, version, 1);
	for (int role = TG_HTTPD_MAIN; role <= TG_HTTPD_PUBLIC; role++)
		tg_catalog_requests_cut(m, (enum tg_httpd_role)role, 0);
	for (size_t i = 0; i < TG_ARRAY_SIZE(hook_results); i++) {
		const char *l[] = { hook_results[i] };

		tg_metrics_add(m, TG_M_WEBHOOKS, l, 0);
	}
	for (size_t i = 0; i < TG_ARRAY_SIZE(auth_series); i++)
		tg_metrics_add(m, TG_M_AUTH, auth_series[i], 0);
}

void tg_catalog_webhook(struct tg_metrics *m, const char *result)
{
	const char *l[] = { result };

	tg_metrics_add(m, TG_M_WEBHOOKS, l, 1);
}

void tg_catalog_requests_cut(struct tg_metrics *m, enum tg_httpd_role role, unsigned n)
{
	static const char *const names[] = {
		[TG_HTTPD_MAIN] = "main", [TG_HTTPD_PROBES] = "probes", [TG_HTTPD_PUBLIC] = "public"
	};
	const char *l[] = { names[role] };

	tg_metrics_add(m, TG_M_HTTP_CUT, l, n);
}

void tg_catalog_auth(struct tg_metrics *m, const char *result, const char *reason)
{
	const char *l[] = { result, reason };

	tg_metrics_add(m, TG_M_AUTH, l, 1);
}

void tg_catalog_sync_init(struct tg_metrics *m, const char *sync, int suspended)
{
	const char *l_sync[] = { sync };

	for (int o = TG_OUTCOME_SUCCESS; o <= TG_OUTCOME_ERROR; o++) {
		const char *l[] = { sync, tg_outcome_name((enum tg_outcome)o) };

		tg_metrics_add(m, TG_M_RECONCILES, l, 0);
	}
	tg_metrics_add(m, TG_M_DRIFT, l_sync, 0);
	tg_metrics_set(m, TG_M_SUSPENDED, l_sync, suspended);
	/* Without leader election every replica applies every sync; the
	 * elector sets 0 for the syncs it does not hold. */
	tg_metrics_set(m, TG_M_LEADER, l_sync, 1);
}

void tg_catalog_sync_drop(struct tg_metrics *m, const char *name)
{
	for (size_t i = 0; i < TG_ARRAY_SIZE(per_sync_families); i++)
		tg_metrics_remove(m, per_sync_families[i], "sync", name);
}

void tg_catalog_git(struct tg_metrics *m, const char *sync, const char *op, int ok, double secs)
{
	const char *l[] = { sync, op, ok ? "ok" : "error" };
	const char *ls[] = { sync, op };

	tg_metrics_add(m, TG_M_GIT, l, 1);
	tg_metrics_observe(m, TG_M_GIT_SECONDS, ls, secs);
}

void tg_catalog_observe_git(void *ctx, const char *sync, const char *op, int ok, double seconds)
{
	tg_catalog_git(ctx, sync, op, ok, seconds);
}

void tg_catalog_observe_gateway(void *ctx, const char *method, const char *endpoint, long status,
				double seconds)
{
	struct tg_metrics *m = ctx;
	char code[24];
	const char *l[] = { endpoint, method, code };

	if (status > 0)
		snprintf(code, sizeof(code), "%ld", status);
	else
		snprintf(code, sizeof(code), "error");
	tg_metrics_add(m, TG_M_GATEWAY, l, 1);
	tg_metrics_observe(m, TG_M_GATEWAY_SECONDS, l, seconds);
}
