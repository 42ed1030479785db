/*
 * The API's POSTs on a sync (see include/tg/passapi.h): they authorize the
 * caller, enqueue a trigger under the daemon's lock and, when asked, wait
 * on d->done for the pass the worker runs; they never touch git or the
 * gateway.
 */
#include "tg/passapi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg/actor.h"
#include "tg/catalog.h"
#include "tg/daemon_state.h"
#include "tg/elector.h"
#include "tg/forward.h"
#include "tg/handlers.h"
#include "tg/log.h"
#include "tg/report.h"
#include "tg/banned.h"

static int outcome_status(enum tg_outcome o)
{
	switch (o) {
	case TG_OUTCOME_SUCCESS: return 200;
	case TG_OUTCOME_REFUSED: return 422;
	default: return 502;
	}
}

/* 4 to 40 hex digits. */
static int valid_commit(const char *c)
{
	size_t n = strlen(c);

	return n >= 4 && n <= 40 && strspn(c, "0123456789abcdefABCDEF") == n;
}

static void unlink_query(struct tg_daemon *d, const char *name, struct tg_commit_query *q)
{
	struct tg_dsync *s = tg_daemon_find_sync(d, name);

	for (struct tg_commit_query **p = s ? &s->queries : NULL; p && *p; p = &(*p)->next)
		if (*p == q) {
			*p = q->next;
			return;
		}
}

/* The pass's result, with the answer about ?commit= when asked. */
static int put_result(struct tg_buf *out, const char *result, enum tg_outcome outcome,
		      const struct tg_commit_query *q)
{
	int status = outcome_status(outcome), live;
	cJSON *o, *c;

	if (!q) {
		tg_buf_puts(out, result);
		tg_buf_puts(out, "\n");
		return status;
	}
	o = cJSON_Parse(result);
	if (!o)
		o = cJSON_CreateObject();
	/* After a partial or failed pass nobody can vouch for what is live. */
	live = q->done && (!strcmp(q->relation, "applied") || !strcmp(q->relation, "ancestor")) &&
	       (outcome == TG_OUTCOME_SUCCESS || outcome == TG_OUTCOME_REFUSED);
	c = cJSON_AddObjectToObject(o, "commit_check");
	cJSON_AddStringToObject(c, "commit", q->sha);
	cJSON_AddBoolToObject(c, "live", live);
	cJSON_AddStringToObject(c, "relation", q->done ? q->relation : "unknown");
	tg_json_add_str_or_null(c, "live_commit", q->live_commit);
	tg_handlers_put_json(out, o);
	cJSON_Delete(o);
	/* The pass worked but did not make this commit live (another branch,
	 * a commit not pushed yet, a newer pass refused): the step fails. */
	if (status == 200 && !live)
		status = 409;
	return status;
}

/* --- leader election: requests for syncs another replica holds ------------ */

/* Percent-encodes everything but RFC 3986's unreserved characters. */
static void put_escaped(struct tg_buf *b, const char *s)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		    (*c >= '0' && *c <= '9') || *c == '-' || *c == '.' || *c == '_' || *c == '~')
			tg_buf_put(b, c, 1);
		else
			tg_buf_printf(b, "%%%02X", *c);
	}
}

/* What a client of the API sends that the holder needs too. */
static const char *const api_headers[] = { "Authorization", "Content-Type", "User-Agent",
					   "X-Request-Id", NULL };

/*
 * A reconcile or rollback for a sync this replica does not hold goes to the holder
 * (its address is on the Lease); the holder's answer is the answer.  The
 * caller authorized the request already; the holder checks it again (the
 * token travels with it).  Never forwards twice.
 */
static int forward_pass(struct tg_daemon *d, const char *name, long long wait_ms,
			const struct tg_http_request *req, struct tg_buf *out, unsigned action)
{
	struct tg_err err = { 0, "" };
	struct tg_buf path = TG_BUF_INIT;
	const char *args[] = { "wait", "timeout", "commit", "force", "to" };
	char addr[TG_LEASE_ADDR_MAX];
	long status = 0;
	int known;

	pthread_mutex_lock(&d->lock);
	known = tg_elector_holder_address_locked(d->elector, name, addr, sizeof(addr));
	pthread_mutex_unlock(&d->lock);
	if (req->header(req, TG_FORWARDED_HEADER) || !known) {
		const char *l[] = { "no_holder" };

		tg_metrics_add(d->metrics, TG_M_FORWARDS, l, 1);
		return tg_handlers_error_json(
			out, 503,
			"no replica holds sync '%s' right now (a takeover is under way); "
			"retry in a few seconds",
			name);
	}
	tg_buf_puts(&path, "/api/v1/syncs/");
	put_escaped(&path, name);
	tg_buf_puts(&path, action == TG_API_ROLLBACK ? "/rollback" : "/reconcile");
	for (size_t i = 0, n = 0; i < TG_ARRAY_SIZE(args); i++) {
		const char *v = req->query(req, args[i]);

		if (!v)
			continue;
		tg_buf_printf(&path, "%c%s=", n++ ? '&' : '?', args[i]);
		put_escaped(&path, v);
	}
	if (tg_forward_post(addr, tg_buf_cstr(&path), req, api_headers,
			    tg_elector_identity(d->elector), (long)wait_ms + 10000, out, &status,
			    &err)) {
		const char *l[] = { "error" };

		tg_buf_release(&path);
		tg_metrics_add(d->metrics, TG_M_FORWARDS, l, 1);
		tg_buf_clear(out);
		tg_log_kv(TG_LOG_WARN, "cannot hand the request to the sync's holder", "sync", name,
			  "error", err.msg, NULL);
		return tg_handlers_error_json(out, 502, "%s", err.msg);
	}
	tg_buf_release(&path);
	{
		const char *l[] = { "ok" };

		tg_metrics_add(d->metrics, TG_M_FORWARDS, l, 1);
	}
	return (int)status;
}

static int query_true(const char *v)
{
	return v && (!strcmp(v, "true") || !strcmp(v, "1"));
}

/* reconcile and rollback: trigger a pass, wait for it when asked. */
static int pass_request(struct tg_daemon *d, const char *name, long long wait_ms,
			const struct tg_http_request *req, struct tg_buf *out, unsigned action)
{
	struct tg_dsync *s;
	struct tg_actor actor;
	struct tg_commit_query q, *query = NULL;
	const char *commit = req->query(req, "commit");
	const char *to = action == TG_API_ROLLBACK ? req->query(req, "to") : NULL;
	int force = action == TG_API_RECONCILE && query_true(req->query(req, "force"));
	unsigned long long ticket;
	long long deadline = tg_now_ms() + wait_ms;
	char *result = NULL;
	enum tg_outcome outcome = TG_OUTCOME_SUCCESS;
	int status;

	status = tg_actor_authorize(&actor, d, req, name, action, out);
	if (status)
		return status;
	if (action == TG_API_ROLLBACK && (!to || !valid_commit(to))) {
		tg_actor_release(&actor);
		return tg_handlers_error_json(
			out, 400, "%s", "rollback needs ?to= with 4 to 40 hexadecimal digits");
	}
	if (commit && (!valid_commit(commit) || wait_ms <= 0)) {
		tg_actor_release(&actor);
		return tg_handlers_error_json(
			out, 400, "%s",
			!valid_commit(commit) ? "commit must be 4 to 40 hexadecimal digits"
					      : "commit= needs wait=true: the answer says whether "
						"that commit went live");
	}
	pthread_mutex_lock(&d->lock);
	s = tg_daemon_find_sync(d, name);
	if (!s || d->stopping) {
		pthread_mutex_unlock(&d->lock);
		tg_actor_release(&actor);
		return s ? tg_handlers_error_json(
				   out, 503, "shutting down; sync '%s' was not triggered", name)
			 : tg_handlers_error_json(out, 404, "no sync named '%s'", name);
	}
	if (d->elector && !tg_elector_holds_locked(d->elector, name)) {
		pthread_mutex_unlock(&d->lock);
		tg_actor_release(&actor);
		return forward_pass(d, name, wait_ms, req, out, action);
	}
	ticket = ++s->trigger_seq;
	if (to) {
		snprintf(s->rollback_to, sizeof(s->rollback_to), "%s", to);
		for (char *c = s->rollback_to; *c; c++)
			if (*c >= 'A' && *c <= 'F')
				*c = (char)(*c - 'A' + 'a');
	}
	s->force_pending |= force;
	tg_sched_trigger(&s->sched, TG_TRIGGER_PIPELINE);
	tg_dsync_add_actor(s, &actor);
	if (commit) {
		memset(&q, 0, sizeof(q));
		q.id = ++d->query_seq;
		q.ticket = ticket;
		snprintf(q.sha, sizeof(q.sha), "%s", commit);
		for (char *c = q.sha; *c; c++)
			if (*c >= 'A' && *c <= 'F')
				*c = (char)(*c - 'A' + 'a');
		q.next = s->queries;
		s->queries = &q;
		query = &q;
	}
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
	if (query)
		unlink_query(d, name, query);
	pthread_mutex_unlock(&d->lock);
	if (result) {
		status = put_result(out, result, outcome, query);
		free(result);
		return status;
	}
	if (!s)
		return tg_handlers_error_json(
			out, 404, "sync '%s' was removed by a configuration reload", name);
	if (wait_ms > 0 && d->stopping)
		return tg_handlers_error_json(
			out, 503, "shutting down before the pass of sync '%s' finished", name);
	{
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "sync", name);
		cJSON_AddBoolToObject(o, "queued", 1);
		if (wait_ms > 0)
			cJSON_AddStringToObject(
				o, "message",
				"the pass did not finish in time; see GET /api/v1/syncs/{name}");
		tg_handlers_put_json(out, o);
		cJSON_Delete(o);
	}
	return 202;
}

int tg_passapi_reconcile(void *ctx, const char *name, long long wait_ms,
			 const struct tg_http_request *req, struct tg_buf *out)
{
	return pass_request(ctx, name, wait_ms, req, out, TG_API_RECONCILE);
}

int tg_passapi_rollback(void *ctx, const char *name, long long wait_ms,
			const struct tg_http_request *req, struct tg_buf *out)
{
	return pass_request(ctx, name, wait_ms, req, out, TG_API_ROLLBACK);
}

int tg_passapi_suspend(void *ctx, const char *name, int suspend, const struct tg_http_request *req,
		       struct tg_buf *out)
{
	struct tg_daemon *d = ctx;
	struct tg_dsync *s;
	struct tg_actor actor;
	int status;
	cJSON *o;

	status = tg_actor_authorize(&actor, d, req, name, suspend ? TG_API_SUSPEND : TG_API_RESUME,
				    out);
	if (status)
		return status;
	pthread_mutex_lock(&d->lock);
	s = tg_daemon_find_sync(d, name);
	if (s) {
		tg_log_kv(TG_LOG_INFO, suspend ? "sync suspended" : "sync resumed", "sync", name,
			  "actor", actor.text, NULL);
		if (s->sched.suspended && !suspend) {
			tg_sched_trigger(&s->sched, TG_TRIGGER_RESUME);
			tg_dsync_add_actor(s, &actor); /* the pass resuming starts */
		}
		s->sched.suspended = suspend;
		pthread_cond_broadcast(&d->wake);
	}
	pthread_mutex_unlock(&d->lock);
	tg_actor_release(&actor);
	if (!s)
		return tg_handlers_error_json(out, 404, "no sync named '%s'", name);
	{
		const char *l[] = { name };

		tg_metrics_set(d->metrics, TG_M_SUSPENDED, l, suspend);
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "sync", name);
	cJSON_AddBoolToObject(o, "suspended", suspend);
	tg_handlers_put_json(out, o);
	cJSON_Delete(o);
	return 200;
}
