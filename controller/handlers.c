/*
 * HTTP endpoints of the daemon (see include/tg/daemon_state.h and
 * include/tg/handlers.h).  They run on libmicrohttpd's threads: they read
 * status under the daemon's lock and enqueue triggers; they never touch git
 * or the gateway.  This file holds the router's table and the read-only
 * endpoints; the API's POSTs are passapi.c's, the webhook hookapi.c's, and
 * who may trigger what actor.c's.
 */
#include "tg/handlers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/catalog.h"
#include "tg/daemon_state.h"
#include "tg/elector.h"
#include "tg/hookapi.h"
#include "tg/passapi.h"
#include "tg/report.h"
#include "tg/banned.h"

void tg_handlers_put_json(struct tg_buf *out, cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);

	tg_buf_puts(out, text ? text : "{}");
	tg_buf_puts(out, "\n");
	free(text);
}

int tg_handlers_error_json(struct tg_buf *out, int status, const char *fmt, const char *arg)
{
	char msg[512];
	cJSON *o = cJSON_CreateObject();

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(msg, sizeof(msg), fmt, arg);
#pragma GCC diagnostic pop
	cJSON_AddStringToObject(o, "error", msg);
	tg_handlers_put_json(out, o);
	cJSON_Delete(o);
	return status;
}

static int http_metrics(void *ctx, struct tg_buf *out)
{
	struct tg_daemon *d = ctx;

	if (tg_metrics_render(d->metrics, out))
		return 500;
	return 200;
}

static void http_requests_cut(void *ctx, enum tg_httpd_role role, unsigned n)
{
	struct tg_daemon *d = ctx;

	tg_catalog_requests_cut(d->metrics, role, n);
}

static int http_healthz(void *ctx, struct tg_buf *out)
{
	struct tg_daemon *d = ctx;
	long long now = tg_now_ms();
	int ok;

	pthread_mutex_lock(&d->lock);
	if (d->busy_since_ms)
		ok = now - d->busy_since_ms < TG_PASS_STALL_MS;
	else
		ok = now - d->heartbeat_ms < TG_IDLE_STALL_MS;
	pthread_mutex_unlock(&d->lock);
	tg_buf_puts(out, ok ? "ok\n" : "reconcile loop stalled\n");
	return ok ? 200 : 503;
}

static int http_readyz(void *ctx, struct tg_buf *out)
{
	struct tg_daemon *d = ctx;
	int status = 200;

	pthread_mutex_lock(&d->lock);
	if (d->stopping) {
		tg_buf_puts(out, "shutting down\n");
		status = 503;
	}
	for (size_t i = 0; i < d->n_syncs && status == 200; i++) {
		const struct tg_dsync *s = d->syncs[i];

		/* A standby is ready: it serves the API and hands requests to
		 * the holders. */
		if (d->elector && !tg_elector_holds_locked(d->elector, s->cfg->name))
			continue;
		if (!s->passes && !s->sched.suspended) {
			tg_buf_printf(out, "waiting for the first reconcile of sync '%s'\n",
				      s->cfg->name);
			status = 503;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (status == 200)
		tg_buf_puts(out, "ready\n");
	return status;
}

/* Under d->lock. */
static cJSON *sync_status_json(const struct tg_daemon *d, const struct tg_dsync *s)
{
	cJSON *o = cJSON_CreateObject();
	long long now = tg_now_ms(), wall = tg_wall_ms();
	long long next = tg_sched_next(&s->sched, now);

	cJSON_AddStringToObject(o, "name", s->cfg->name);
	cJSON_AddBoolToObject(o, "suspended", s->sched.suspended);
	cJSON_AddBoolToObject(o, "webhook", s->cfg->webhook);
	cJSON_AddNumberToObject(o, "oidc_rules", (double)s->cfg->n_oidc_rules);
	cJSON_AddBoolToObject(o, "running", s->sched.running);
	tg_json_add_str_or_null(o, "running_trigger", s->running_trigger);
	cJSON_AddBoolToObject(o, "ready", s->passes > 0);
	cJSON_AddNumberToObject(o, "passes", s->passes);
	tg_json_add_str_or_null(o, "last_commit", s->applied_commit);
	tg_json_add_str_or_null(o, "remote_head", s->remote_head);
	/* A rollback holds pinned_commit; failed_commit is the commit it
	 * replaced when that one failed its health check: not applied again
	 * until a new commit arrives or a forced reconcile. */
	tg_json_add_str_or_null(o, "pinned_commit", s->pinned_commit);
	tg_json_add_str_or_null(o, "failed_commit", s->failed_commit);
	tg_json_add_str_or_null(o, "last_outcome",
				s->has_result ? tg_outcome_name(s->last_outcome) : NULL);
	tg_json_add_str_or_null(o, "last_error", s->last_error);
	tg_json_add_time(o, "last_run_at", s->last_run_wall_ms);
	tg_json_add_time(o, "last_success_at", s->last_success_wall_ms);
	if (next == TG_SCHED_NEVER) {
		cJSON_AddNullToObject(o, "next_run_at");
	} else {
		long long in = next > now ? next - now : 0;

		tg_json_add_time(o, "next_run_at", wall + in);
		cJSON_AddNumberToObject(o, "next_run_in_seconds", (double)in / 1000.0);
	}
	cJSON_AddNumberToObject(o, "consecutive_failures", s->sched.failures);
	cJSON_AddNumberToObject(o, "interval_seconds", (double)s->sched.interval_ms / 1000.0);
	cJSON_AddNumberToObject(o, "drift_interval_seconds",
				(double)s->sched.drift_interval_ms / 1000.0);
	/* Rendered once by the worker: embedded, not parsed again. */
	if (s->last_result_json)
		cJSON_AddItemToObject(o, "last_result", cJSON_CreateRaw(s->last_result_json));
	else
		cJSON_AddNullToObject(o, "last_result");
	/* Who applies it: with leader election, the holder of its Lease. */
	if (d->elector)
		cJSON_AddItemToObject(o, "leader",
				      tg_elector_status_json_locked(d->elector, s->cfg->name));
	else
		cJSON_AddNullToObject(o, "leader");
	return o;
}

static int http_syncs(void *ctx, const char *name, struct tg_buf *out)
{
	struct tg_daemon *d = ctx;
	cJSON *o = NULL;
	int status = 200;

	pthread_mutex_lock(&d->lock);
	if (!name) {
		cJSON *list;

		o = cJSON_CreateObject();
		list = cJSON_AddArrayToObject(o, "syncs");
		for (size_t i = 0; i < d->n_syncs; i++)
			cJSON_AddItemToArray(list, sync_status_json(d, d->syncs[i]));
	} else {
		const struct tg_dsync *s = tg_daemon_find_sync(d, name);

		if (s)
			o = sync_status_json(d, s);
	}
	pthread_mutex_unlock(&d->lock);
	if (!o)
		return tg_handlers_error_json(out, 404, "no sync named '%s'", name);
	tg_handlers_put_json(out, o);
	cJSON_Delete(o);
	return status;
}

static int http_history(void *ctx, const char *name, struct tg_buf *out)
{
	struct tg_daemon *d = ctx;
	const struct tg_dsync *s;
	char *json = NULL;
	int found;

	pthread_mutex_lock(&d->lock);
	s = tg_daemon_find_sync(d, name);
	found = s != NULL;
	if (s && s->history_json)
		json = tg_xstrdup(s->history_json);
	pthread_mutex_unlock(&d->lock);
	if (!found)
		return tg_handlers_error_json(out, 404, "no sync named '%s'", name);
	tg_buf_puts(out, json ? json : "{\"pin\":null,\"pin_head\":null,\"entries\":[]}");
	tg_buf_puts(out, "\n");
	free(json);
	return 200;
}

void tg_handlers_fill(struct tg_httpd_ops *ops, struct tg_daemon *d)
{
	memset(ops, 0, sizeof(*ops));
	ops->ctx = d;
	ops->metrics = http_metrics;
	ops->healthz = http_healthz;
	ops->readyz = http_readyz;
	ops->syncs = http_syncs;
	ops->reconcile = tg_passapi_reconcile;
	ops->suspend = tg_passapi_suspend;
	ops->history = http_history;
	ops->rollback = tg_passapi_rollback;
	ops->bitbucket_hook = tg_hookapi_serve;
	ops->hooks_enabled = tg_hookapi_enabled;
	ops->requests_cut = http_requests_cut;
}
