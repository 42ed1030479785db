/*
 * HTTP endpoints of the daemon (see include/tg/daemon_state.h).  They run on
 * libmicrohttpd's threads: they read status under the daemon's lock and
 * enqueue triggers; they never touch git or the gateway.
 */
#include "tg/daemon_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg/catalog.h"
#include "tg/log.h"
#include "tg/report.h"
#include "tg/banned.h"

static void put_json(struct tg_buf *out, cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);

	tg_buf_puts(out, text ? text : "{}");
	tg_buf_puts(out, "\n");
	free(text);
}

static int http_metrics(void *ctx, struct tg_buf *out)
{
	struct tg_daemon *d = ctx;

	if (tg_metrics_render(d->metrics, out))
		return 500;
	return 200;
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

		if (!s->passes && !s->sched.suspended) {
			tg_buf_printf(out, "waiting for the first reconcile of sync '%s'\n", s->cfg->name);
			status = 503;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (status == 200)
		tg_buf_puts(out, "ready\n");
	return status;
}

/* Under d->lock. */
static cJSON *sync_status_json(const struct tg_dsync *s)
{
	cJSON *o = cJSON_CreateObject();
	long long now = tg_now_ms(), wall = tg_wall_ms();
	long long next = tg_sched_next(&s->sched, now);

	cJSON_AddStringToObject(o, "name", s->cfg->name);
	cJSON_AddBoolToObject(o, "suspended", s->sched.suspended);
	cJSON_AddBoolToObject(o, "running", s->sched.running);
	tg_json_add_str_or_null(o, "running_trigger", s->running_trigger);
	cJSON_AddBoolToObject(o, "ready", s->passes > 0);
	cJSON_AddNumberToObject(o, "passes", s->passes);
	tg_json_add_str_or_null(o, "last_commit", s->applied_commit);
	tg_json_add_str_or_null(o, "remote_head", s->remote_head);
	tg_json_add_str_or_null(o, "last_outcome", s->has_result ? tg_outcome_name(s->last_outcome) : NULL);
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
	cJSON_AddNumberToObject(o, "drift_interval_seconds", (double)s->sched.drift_interval_ms / 1000.0);
	/* Rendered once by the worker: embedded, not parsed again. */
	if (s->last_result_json)
		cJSON_AddItemToObject(o, "last_result", cJSON_CreateRaw(s->last_result_json));
	else
		cJSON_AddNullToObject(o, "last_result");
	return o;
}

static int error_json(struct tg_buf *out, int status, const char *fmt, const char *arg)
	__attribute__((format(printf, 3, 0)));

static int error_json(struct tg_buf *out, int status, const char *fmt, const char *arg)
{
	char msg[512];
	cJSON *o = cJSON_CreateObject();

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(msg, sizeof(msg), fmt, arg);
#pragma GCC diagnostic pop
	cJSON_AddStringToObject(o, "error", msg);
	put_json(out, o);
	cJSON_Delete(o);
	return status;
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
			cJSON_AddItemToArray(list, sync_status_json(d->syncs[i]));
	} else {
		const struct tg_dsync *s = tg_daemon_find_sync(d, name);

		if (s)
			o = sync_status_json(s);
	}
	pthread_mutex_unlock(&d->lock);
	if (!o)
		return error_json(out, 404, "no sync named '%s'", name);
	put_json(out, o);
	cJSON_Delete(o);
	return status;
}

static int outcome_status(enum tg_outcome o)
{
	switch (o) {
	case TG_OUTCOME_SUCCESS: return 200;
	case TG_OUTCOME_REFUSED: return 422;
	default: return 502;
	}
}

static int http_reconcile(void *ctx, const char *name, long long wait_ms, struct tg_buf *out)
{
	struct tg_daemon *d = ctx;
	struct tg_dsync *s;
	unsigned long long ticket;
	long long deadline = tg_now_ms() + wait_ms;
	char *result = NULL;
	enum tg_outcome outcome = TG_OUTCOME_SUCCESS;

	pthread_mutex_lock(&d->lock);
	s = tg_daemon_find_sync(d, name);
	if (!s || d->stopping) {
		pthread_mutex_unlock(&d->lock);
		return s ? error_json(out, 503, "shutting down; sync '%s' was not triggered", name)
			 : error_json(out, 404, "no sync named '%s'", name);
	}
	ticket = ++s->trigger_seq;
	tg_sched_trigger(&s->sched, TG_TRIGGER_PIPELINE);
	pthread_cond_broadcast(&d->wake);
	while (wait_ms > 0 && s && s->done_seq < ticket && !d->stopping) {
		struct timespec ts;

		tg_timespec_at(&ts, deadline);
		if (pthread_cond_timedwait(&d->done, &d->lock, &ts) == ETIMEDOUT)
			break;
		s = tg_daemon_find_sync(d, name); /* a reload may have replaced it */
	}
	if (wait_ms > 0 && s && s->done_seq >= ticket && s->last_result_json) {
		result = tg_xstrdup(s->last_result_json);
		outcome = s->last_outcome;
	}
	pthread_mutex_unlock(&d->lock);
	if (result) {
		tg_buf_puts(out, result);
		tg_buf_puts(out, "\n");
		free(result);
		return outcome_status(outcome);
	}
	if (!s)
		return error_json(out, 404, "sync '%s' was removed by a configuration reload", name);
	if (wait_ms > 0 && d->stopping)
		return error_json(out, 503, "shutting down before the pass of sync '%s' finished", name);
	{
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "sync", name);
		cJSON_AddBoolToObject(o, "queued", 1);
		if (wait_ms > 0)
			cJSON_AddStringToObject(o, "message",
						"the pass did not finish in time; see GET /api/v1/syncs/{name}");
		put_json(out, o);
		cJSON_Delete(o);
	}
	return 202;
}

static int http_suspend(void *ctx, const char *name, int suspend, struct tg_buf *out)
{
	struct tg_daemon *d = ctx;
	struct tg_dsync *s;
	cJSON *o;

	pthread_mutex_lock(&d->lock);
	s = tg_daemon_find_sync(d, name);
	if (s) {
		if (s->sched.suspended && !suspend)
			tg_sched_trigger(&s->sched, TG_TRIGGER_RESUME);
		s->sched.suspended = suspend;
		pthread_cond_broadcast(&d->wake);
	}
	pthread_mutex_unlock(&d->lock);
	if (!s)
		return error_json(out, 404, "no sync named '%s'", name);
	{
		const char *l[] = { name };

		tg_metrics_set(d->metrics, TG_M_SUSPENDED, l, suspend);
	}
	tg_log_kv(TG_LOG_INFO, suspend ? "sync suspended" : "sync resumed", "sync", name, NULL);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "sync", name);
	cJSON_AddBoolToObject(o, "suspended", suspend);
	put_json(out, o);
	cJSON_Delete(o);
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
	ops->reconcile = http_reconcile;
	ops->suspend = http_suspend;
}
