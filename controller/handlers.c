/*
 * HTTP endpoints of the daemon (see include/tg/daemon_state.h).  They run on
 * libmicrohttpd's threads: they read status under the daemon's lock and
 * enqueue triggers; they never touch git or the gateway.  They decide who
 * may trigger what: a webhook by its HMAC signature, the API by an OIDC
 * token and the sync's rules (or, without one, by a loopback listener).
 * Token keys are fetched by the oidc module's own thread, not here.
 */
#include "tg/daemon_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "tg/catalog.h"
#include "tg/elector.h"
#include "tg/forward.h"
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
			cJSON_AddItemToArray(list, sync_status_json(d, d->syncs[i]));
	} else {
		const struct tg_dsync *s = tg_daemon_find_sync(d, name);

		if (s)
			o = sync_status_json(d, s);
	}
	pthread_mutex_unlock(&d->lock);
	if (!o)
		return error_json(out, 404, "no sync named '%s'", name);
	put_json(out, o);
	cJSON_Delete(o);
	return status;
}

/* --- who is calling --------------------------------------------------------- */

void tg_actor_release(struct tg_actor *a)
{
	free(a->text);
	free(a->identity);
	a->text = a->identity = NULL;
}

/* key=value, quoted when the value has a space or a quote, for the audit
 * trail's one-line actor. */
static void put_kv(struct tg_buf *b, const char *key, const char *value)
{
	if (!value || !*value)
		return;
	if (b->len)
		tg_buf_puts(b, " ");
	tg_buf_printf(b, "%s=", key);
	if (!strpbrk(value, " \"\\")) {
		tg_buf_puts(b, value);
		return;
	}
	tg_buf_puts(b, "\"");
	for (const char *c = value; *c; c++) {
		if (*c == '"' || *c == '\\')
			tg_buf_puts(b, "\\");
		tg_buf_put(b, c, 1);
	}
	tg_buf_puts(b, "\"");
}

static void add_str(cJSON *o, const char *key, const char *v)
{
	if (v && *v)
		cJSON_AddStringToObject(o, key, v);
}

static char *render(cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	cJSON_Delete(o);
	return s ? s : tg_xstrdup("{}");
}

static void pipeline_actor(struct tg_actor *a, const struct tg_oidc_identity *id, unsigned action)
{
	struct tg_buf b = TG_BUF_INIT;
	cJSON *o = cJSON_CreateObject();

	tg_buf_puts(&b, "bitbucket-pipelines");
	put_kv(&b, "pipeline", id->pipeline_uuid);
	put_kv(&b, "step", id->step_uuid);
	put_kv(&b, "repository", id->repository_uuid);
	put_kv(&b, "branch", id->branch);
	put_kv(&b, "environment", id->deployment_environment_uuid);
	a->text = tg_buf_detach(&b);
	cJSON_AddStringToObject(o, "kind", "pipeline");
	cJSON_AddStringToObject(o, "action", tg_api_action_name(action));
	add_str(o, "issuer", id->issuer);
	add_str(o, "subject", id->subject);
	add_str(o, "workspace_uuid", id->workspace_uuid);
	add_str(o, "repository_uuid", id->repository_uuid);
	add_str(o, "branch", id->branch);
	add_str(o, "deployment_environment_uuid", id->deployment_environment_uuid);
	add_str(o, "pipeline_uuid", id->pipeline_uuid);
	add_str(o, "step_uuid", id->step_uuid);
	add_str(o, "account_uuid", id->account_uuid);
	a->identity = render(o);
}

static void loopback_actor(struct tg_actor *a, const struct tg_http_request *req, unsigned action)
{
	cJSON *o = cJSON_CreateObject();

	a->text = tg_xasprintf("api (loopback %s)", req->remote ? req->remote : "?");
	cJSON_AddStringToObject(o, "kind", "loopback");
	cJSON_AddStringToObject(o, "action", tg_api_action_name(action));
	add_str(o, "remote", req->remote);
	a->identity = render(o);
}

/* "Bearer <token>" (RFC 6750 2.1), or NULL. */
static const char *bearer_token(const char *authz, size_t *len)
{
	const char *t;

	if (!authz || strncasecmp(authz, "Bearer ", 7))
		return NULL;
	for (t = authz + 7; *t == ' '; t++)
		;
	*len = strlen(t);
	while (*len && t[*len - 1] == ' ')
		(*len)--;
	return *len ? t : NULL;
}

static int refuse(struct tg_daemon *d, struct tg_buf *out, int status, const char *result,
		  const char *reason, const char *msg, const struct tg_http_request *req,
		  const char *name, unsigned action, const char *detail,
		  const struct tg_oidc_identity *id)
{
	tg_catalog_auth(d->metrics, result, reason);
	tg_log_kv(TG_LOG_WARN, "api request refused", "sync", name, "action",
		  tg_api_action_name(action), "status",
		  status == 401   ? "401"
		  : status == 403 ? "403"
		  : status == 404 ? "404"
				  : "503",
		  "reason", reason, "detail", detail ? detail : msg, "remote", req->remote,
		  "repository_uuid", id ? id->repository_uuid : NULL, "branch",
		  id ? id->branch : NULL, "pipeline_uuid", id ? id->pipeline_uuid : NULL, NULL);
	return error_json(out, status, "%s", msg);
}

/*
 * Who may POST to /api/v1/syncs/{name}/{action}: 0 with *actor filled, or
 * the HTTP status with the answer in out.
 *   - with oidc.issuers, a bearer token is always verified, on any
 *     listener; then a rule of the sync must allow the action;
 *   - without a token: loopback listeners serve as before unless
 *     auth.required; other listeners, and webhook_listen, do not.
 */
static int authorize(struct tg_daemon *d, const struct tg_http_request *req, const char *name,
		     unsigned action, struct tg_actor *actor, struct tg_buf *out)
{
	const char *authz = req->header(req, "Authorization");
	struct tg_oidc_identity id;
	struct tg_oidc *oidc;
	struct tg_dsync *s;
	const char *token;
	char detail[256] = "";
	size_t len = 0;
	enum tg_jwt_reason r;
	int required, rule, found;

	memset(actor, 0, sizeof(*actor));
	pthread_mutex_lock(&d->lock);
	oidc = tg_oidc_ref(d->oidc);
	required = d->global->auth_required;
	pthread_mutex_unlock(&d->lock);
	if (!oidc) {
		if (req->role == TG_HTTPD_PUBLIC || !req->loopback)
			return refuse(
				d, out, 403, "forbidden", "oidc_not_configured",
				"POST requests are only served when listening on a loopback address "
				"(127.0.0.1 or ::1) unless oidc.issuers is configured, so that "
				"pipelines can authenticate with their OIDC token",
				req, name, action, NULL, NULL);
		tg_catalog_auth(d->metrics, "allowed", "loopback");
		loopback_actor(actor, req, action);
		return 0;
	}
	if (!authz) {
		tg_oidc_unref(oidc);
		if (req->role == TG_HTTPD_PUBLIC || !req->loopback || required)
			return refuse(
				d, out, 401, "unauthenticated", "missing_token",
				"this endpoint needs Authorization: Bearer <OIDC token> "
				"(in Bitbucket Pipelines: oidc: true and $BITBUCKET_STEP_OIDC_TOKEN)",
				req, name, action, NULL, NULL);
		tg_catalog_auth(d->metrics, "allowed", "loopback");
		loopback_actor(actor, req, action);
		return 0;
	}
	token = bearer_token(authz, &len);
	if (!token) {
		tg_oidc_unref(oidc);
		return refuse(d, out, 401, "unauthenticated", "malformed",
			      "the Authorization header must be 'Bearer <token>'", req, name,
			      action, NULL, NULL);
	}
	r = tg_oidc_verify(oidc, token, len, tg_wall_ms() / 1000, &id, detail, sizeof(detail));
	tg_oidc_unref(oidc);
	if (r != TG_JWT_OK) {
		char msg[160];

		snprintf(msg, sizeof(msg), "token refused: %s", tg_jwt_reason_name(r));
		return refuse(d, out, r == TG_JWT_JWKS_UNAVAILABLE ? 503 : 401,
			      r == TG_JWT_JWKS_UNAVAILABLE ? "unavailable" : "unauthenticated",
			      tg_jwt_reason_name(r), msg, req, name, action, detail, NULL);
	}
	pthread_mutex_lock(&d->lock);
	s = tg_daemon_find_sync(d, name);
	found = s != NULL;
	rule = s ? tg_oidc_rules_allow(s->cfg->oidc_rules, s->cfg->n_oidc_rules, &id, action) : -1;
	pthread_mutex_unlock(&d->lock);
	if (!found) {
		char msg[300];
		int st;

		snprintf(msg, sizeof(msg), "no sync named '%.256s'", name);
		st = refuse(d, out, 404, "not_found", "no_sync", msg, req, name, action, NULL, &id);
		tg_oidc_identity_release(&id);
		return st;
	}
	if (rule < 0) {
		int st;

		snprintf(detail, sizeof(detail),
			 "no oidc rule of sync '%s' allows '%s' for this token", name,
			 tg_api_action_name(action));
		st = refuse(d, out, 403, "forbidden", "no_rule",
			    "no oidc rule of this sync allows this pipeline to do that", req, name,
			    action, detail, &id);
		tg_oidc_identity_release(&id);
		return st;
	}
	tg_catalog_auth(d->metrics, "allowed", "token");
	pipeline_actor(actor, &id, action);
	tg_log_kv(TG_LOG_INFO, "api request authorized", "sync", name, "action",
		  tg_api_action_name(action), "actor", actor->text, "remote", req->remote, NULL);
	tg_oidc_identity_release(&id);
	return 0;
}

void tg_dsync_add_actor(struct tg_dsync *s, struct tg_actor *a)
{
	for (size_t i = 0; i < s->n_actors; i++)
		if (tg_str_eq(s->actors[i].text, a->text)) {
			tg_actor_release(a); /* the same caller twice: once is enough */
			return;
		}
	if (s->n_actors == TG_MAX_PENDING_ACTORS) {
		s->more_actors++;
		tg_actor_release(a);
		return;
	}
	s->actors[s->n_actors++] = *a;
	memset(a, 0, sizeof(*a));
}

/* --- the API ------------------------------------------------------------------ */

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
	put_json(out, o);
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
		return error_json(out, 503,
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
		return error_json(out, 502, "%s", err.msg);
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

	status = authorize(d, req, name, action, &actor, out);
	if (status)
		return status;
	if (action == TG_API_ROLLBACK && (!to || !valid_commit(to))) {
		tg_actor_release(&actor);
		return error_json(out, 400, "%s",
				  "rollback needs ?to= with 4 to 40 hexadecimal digits");
	}
	if (commit && (!valid_commit(commit) || wait_ms <= 0)) {
		tg_actor_release(&actor);
		return error_json(out, 400, "%s",
				  !valid_commit(commit)
					  ? "commit must be 4 to 40 hexadecimal digits"
					  : "commit= needs wait=true: the answer says whether "
					    "that commit went live");
	}
	pthread_mutex_lock(&d->lock);
	s = tg_daemon_find_sync(d, name);
	if (!s || d->stopping) {
		pthread_mutex_unlock(&d->lock);
		tg_actor_release(&actor);
		return s ? error_json(out, 503, "shutting down; sync '%s' was not triggered", name)
			 : error_json(out, 404, "no sync named '%s'", name);
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
		return error_json(out, 404, "sync '%s' was removed by a configuration reload",
				  name);
	if (wait_ms > 0 && d->stopping)
		return error_json(out, 503, "shutting down before the pass of sync '%s' finished",
				  name);
	{
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "sync", name);
		cJSON_AddBoolToObject(o, "queued", 1);
		if (wait_ms > 0)
			cJSON_AddStringToObject(
				o, "message",
				"the pass did not finish in time; see GET /api/v1/syncs/{name}");
		put_json(out, o);
		cJSON_Delete(o);
	}
	return 202;
}

static int http_reconcile(void *ctx, const char *name, long long wait_ms,
			  const struct tg_http_request *req, struct tg_buf *out)
{
	return pass_request(ctx, name, wait_ms, req, out, TG_API_RECONCILE);
}

static int http_rollback(void *ctx, const char *name, long long wait_ms,
			 const struct tg_http_request *req, struct tg_buf *out)
{
	return pass_request(ctx, name, wait_ms, req, out, TG_API_ROLLBACK);
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
		return error_json(out, 404, "no sync named '%s'", name);
	tg_buf_puts(out, json ? json : "{\"pin\":null,\"pin_head\":null,\"entries\":[]}");
	tg_buf_puts(out, "\n");
	free(json);
	return 200;
}

static int http_suspend(void *ctx, const char *name, int suspend, const struct tg_http_request *req,
			struct tg_buf *out)
{
	struct tg_daemon *d = ctx;
	struct tg_dsync *s;
	struct tg_actor actor;
	int status;
	cJSON *o;

	status = authorize(d, req, name, suspend ? TG_API_SUSPEND : TG_API_RESUME, &actor, out);
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
		return error_json(out, 404, "no sync named '%s'", name);
	{
		const char *l[] = { name };

		tg_metrics_set(d->metrics, TG_M_SUSPENDED, l, suspend);
	}
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "sync", name);
	cJSON_AddBoolToObject(o, "suspended", suspend);
	put_json(out, o);
	cJSON_Delete(o);
	return 200;
}

/* --- Bitbucket webhooks --------------------------------------------------- */

/* A sync with a webhook, copied under the lock. */
struct hook_target {
	char *name, *secret_file, *repository, *repo_url, *ref;
	enum tg_ref_type ref_type;
	long long overlap_ms;
	int verified; /* its secret signed this delivery */
	int previous; /* ... with a secret from before the last rotation */
};

static size_t hook_targets(struct tg_daemon *d, struct hook_target **out)
{
	struct hook_target *t = NULL;
	size_t n = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->n_syncs; i++) {
		const struct tg_sync_config *c = d->syncs[i]->cfg;

		if (!c->webhook || !c->webhook_secret_file)
			continue;
		t = tg_xreallocarray(t, n + 1, sizeof(*t));
		t[n].name = tg_xstrdup(c->name);
		t[n].secret_file = tg_xstrdup(c->webhook_secret_file);
		t[n].repository = c->webhook_repository ? tg_xstrdup(c->webhook_repository) : NULL;
		t[n].repo_url = c->repo_url ? tg_xstrdup(c->repo_url) : NULL;
		t[n].ref = c->ref ? tg_xstrdup(c->ref) : NULL;
		t[n].ref_type = c->ref_type;
		t[n].overlap_ms = c->webhook_rotation_overlap_ms;
		t[n].verified = t[n].previous = 0;
		n++;
	}
	pthread_mutex_unlock(&d->lock);
	*out = t;
	return n;
}

static void free_targets(struct hook_target *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(t[i].name);
		free(t[i].secret_file);
		free(t[i].repository);
		free(t[i].repo_url);
		free(t[i].ref);
	}
	free(t);
}

static int http_hooks_enabled(void *ctx)
{
	struct tg_daemon *d = ctx;
	int any = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->n_syncs && !any; i++)
		any = d->syncs[i]->cfg->webhook;
	pthread_mutex_unlock(&d->lock);
	return any;
}

/* A header value fit for logs and JSON: at most 128 printable bytes. */
static void header_text(char *out, size_t n, const char *v)
{
	size_t i = 0;

	for (; v && *v && i + 1 < n && i < 128; v++)
		out[i++] = (*v > 0x20 && *v < 0x7f) ? *v : '?';
	out[i] = '\0';
}

/*
 * Checks the signature with the secrets of every sync that has a webhook
 * (each distinct file once) and marks the syncs whose secret signed it.
 * Returns 0 when one did, 401 when none did, 500 when a secret file could
 * not be read and none of the others signed it.
 */
static int verify_delivery(struct tg_daemon *d, struct hook_target *t, size_t n, const char *sig,
			   const struct tg_http_request *req)
{
	long long now = tg_now_ms();
	int any = 0, unreadable = 0;

	for (size_t i = 0; i < n; i++) {
		struct tg_err err = { 0, "" };
		size_t j;
		int rc;

		for (j = 0; j < i; j++)
			if (!strcmp(t[j].secret_file, t[i].secret_file))
				break;
		if (j < i) { /* same file as an earlier sync: same answer */
			t[i].verified = t[j].verified;
			t[i].previous = t[j].previous;
			continue;
		}
		rc = tg_webhook_keys_check(d->hook_keys, t[i].secret_file, t[i].overlap_ms, now,
					   sig, req->body, req->body_len, &t[i].previous, &err);
		if (rc == 0) {
			t[i].verified = any = 1;
		} else if (rc != TG_EAUTH) {
			unreadable = 1;
			tg_log_kv(TG_LOG_ERROR, "webhook: cannot use the secret file", "sync",
				  t[i].name, "error", err.msg, NULL);
		}
	}
	if (any)
		return 0;
	return unreadable ? 500 : 401;
}

static void webhook_actor(struct tg_actor *a, const struct tg_webhook_push *p, const char *event,
			  const char *delivery, const char *hook,
			  const struct tg_webhook_change *ch)
{
	struct tg_buf b = TG_BUF_INIT;
	cJSON *o = cJSON_CreateObject(), *ref;
	const char *source =
		p->flavor == TG_WEBHOOK_CLOUD ? "bitbucket-cloud" : "bitbucket-data-center";

	tg_buf_printf(&b, "%s-webhook", source);
	put_kv(&b, "delivery", delivery);
	put_kv(&b, "user", p->actor_id);
	put_kv(&b, "name", p->actor_name);
	put_kv(&b, "ref", ch->name);
	put_kv(&b, "commit", ch->commit);
	a->text = tg_buf_detach(&b);
	cJSON_AddStringToObject(o, "kind", "webhook");
	cJSON_AddStringToObject(o, "source", source);
	cJSON_AddStringToObject(o, "event", event);
	add_str(o, "delivery", delivery);
	add_str(o, "hook_uuid", hook);
	add_str(o, "repository", p->full_name);
	add_str(o, "repository_uuid", p->uuid);
	add_str(o, "user", p->actor_id);
	add_str(o, "user_name", p->actor_name);
	ref = cJSON_AddObjectToObject(o, "ref");
	cJSON_AddStringToObject(ref, "type", ch->is_tag ? "tag" : "branch");
	cJSON_AddStringToObject(ref, "name", ch->name);
	tg_json_add_str_or_null(ref, "commit", ch->commit);
	a->identity = render(o);
}

static int hook_answer(struct tg_daemon *d, struct tg_buf *out, int status, const char *result,
		       const char *event, const char *delivery, cJSON *triggered,
		       const char *message)
{
	cJSON *o = cJSON_CreateObject();

	tg_catalog_webhook(d->metrics, result);
	tg_json_add_str_or_null(o, "delivery", delivery);
	tg_json_add_str_or_null(o, "event", event);
	cJSON_AddStringToObject(o, "result", result);
	cJSON_AddItemToObject(o, "triggered", triggered ? triggered : cJSON_CreateArray());
	if (message)
		cJSON_AddStringToObject(o, "message", message);
	put_json(out, o);
	cJSON_Delete(o);
	return status;
}

/* A delivery to hand to one other replica, for the syncs it holds. */
struct hook_forward {
	char *address;
	char **syncs;
	size_t n;
};

static void add_forward(struct hook_forward **fw, size_t *n, const char *addr, const char *sync)
{
	struct hook_forward *f = NULL;

	for (size_t i = 0; i < *n && !f; i++)
		if (!strcmp((*fw)[i].address, addr))
			f = &(*fw)[i];
	if (!f) {
		*fw = tg_xreallocarray(*fw, *n + 1, sizeof(**fw));
		f = &(*fw)[(*n)++];
		f->address = tg_xstrdup(addr);
		f->syncs = NULL;
		f->n = 0;
	}
	f->syncs = tg_xreallocarray(f->syncs, f->n + 1, sizeof(*f->syncs));
	f->syncs[f->n++] = tg_xstrdup(sync);
}

static void free_forwards(struct hook_forward *fw, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < fw[i].n; j++)
			free(fw[i].syncs[j]);
		free(fw[i].syncs);
		free(fw[i].address);
	}
	free(fw);
}

/* What Bitbucket sends that the holder verifies and reads. */
static const char *const hook_headers[] = { "Content-Type",    "User-Agent",       "X-Event-Key",
					    "X-Request-UUID",  "X-Request-Id",     "X-Hook-UUID",
					    "X-Hub-Signature", "X-Attempt-Number", NULL };

/* Hands the delivery to the replica at f->address; 1 when it took it. */
static int forward_hook(struct tg_daemon *d, const struct hook_forward *f,
			const struct tg_http_request *req)
{
	struct tg_buf reply;
	struct tg_err err = { 0, "" };
	long status = 0;
	int ok;
	const char *l[1];

	tg_buf_init(&reply, 64 * 1024);
	ok = tg_forward_post(f->address, "/hooks/bitbucket", req, hook_headers,
			     tg_elector_identity(d->elector), 10000, &reply, &status, &err) == 0 &&
	     status >= 200 && status < 300;
	l[0] = ok ? "ok" : "error";
	tg_metrics_add(d->metrics, TG_M_FORWARDS, l, 1);
	if (!ok) {
		char st[24];

		snprintf(st, sizeof(st), "%ld", status);
		tg_log_kv(TG_LOG_WARN, "cannot hand the webhook to the sync's holder", "address",
			  f->address, "sync", f->syncs[0], "status", st, "error", err.msg, NULL);
	}
	tg_buf_release(&reply);
	return ok;
}

static int http_hook(void *ctx, const struct tg_http_request *req, struct tg_buf *out)
{
	struct tg_daemon *d = ctx;
	struct hook_target *t = NULL;
	struct tg_webhook_push push;
	struct tg_err err = { 0, "" };
	enum tg_webhook_flavor flavor = TG_WEBHOOK_CLOUD;
	enum tg_webhook_kind kind;
	const char *sig = req->header(req, "X-Hub-Signature");
	const char *id = req->header(req, "X-Request-UUID");
	char event[129], delivery[129], hook[129];
	cJSON *triggered = NULL;
	struct hook_forward *fw = NULL;
	size_t n, n_triggered = 0, n_fw = 0;
	int status;

	memset(&push, 0, sizeof(push));
	if (!id)
		id = req->header(req, "X-Request-Id");
	header_text(event, sizeof(event), req->header(req, "X-Event-Key"));
	header_text(delivery, sizeof(delivery), id);
	header_text(hook, sizeof(hook), req->header(req, "X-Hook-UUID"));
	n = hook_targets(d, &t);
	if (!n) {
		status = error_json(out, 404, "%s",
				    "webhooks are not enabled: no sync has a webhook");
		goto out;
	}
	/* Authenticate before reading a byte of the payload; say nothing of
	 * it in the log either way. */
	status = sig ? verify_delivery(d, t, n, sig, req) : 401;
	if (status) {
		tg_catalog_webhook(d->metrics, status == 401 ? "unauthorized" : "error");
		tg_log_kv(TG_LOG_WARN, "webhook refused", "reason",
			  !sig            ? "no X-Hub-Signature header"
			  : status == 401 ? "signature does not match any webhook secret"
					  : "a webhook secret file cannot be read",
			  "event", event, "delivery", delivery, "remote", req->remote, NULL);
		error_json(out, status, "%s",
			   !sig ? "missing X-Hub-Signature: set a secret on the Bitbucket webhook"
			   : status == 401
				   ? "the X-Hub-Signature does not match: check the webhook secret"
				   : "the webhook secret cannot be read; see the controller's log");
		goto out;
	}
	if (!event[0]) {
		status = hook_answer(d, out, 400, "invalid", NULL, delivery, NULL,
				     "missing X-Event-Key header");
		goto out;
	}
	kind = tg_webhook_event_kind(event, &flavor);
	if (kind == TG_WEBHOOK_PING) {
		tg_log_kv(TG_LOG_INFO, "webhook ping", "delivery", delivery, "remote", req->remote,
			  NULL);
		status = hook_answer(d, out, 200, "ping", event, delivery, NULL, "pong");
		goto out;
	}
	if (kind == TG_WEBHOOK_OTHER) {
		tg_log_kv(TG_LOG_INFO, "webhook event ignored", "event", event, "delivery",
			  delivery, NULL);
		status = hook_answer(d, out, 200, "ignored", event, delivery, NULL,
				     "only repo:push (Cloud) and repo:refs_changed (Data Center) "
				     "trigger syncs");
		goto out;
	}
	if (tg_webhook_parse_push(&push, flavor, req->body, req->body_len, &err)) {
		tg_log_kv(TG_LOG_WARN, "webhook payload refused", "event", event, "delivery",
			  delivery, "error", err.msg, NULL);
		status = hook_answer(d, out, 400, "invalid", event, delivery, NULL, err.msg);
		goto out;
	}
	/* After the signature: only Bitbucket can fill the set. */
	if (delivery[0] && tg_webhook_seen_check(d->hook_seen, delivery)) {
		tg_log_kv(TG_LOG_INFO, "webhook delivery already served", "delivery", delivery,
			  NULL);
		status = hook_answer(d, out, 200, "duplicate", event, delivery, NULL,
				     "this delivery was served already");
		goto out;
	}
	triggered = cJSON_CreateArray();
	for (size_t i = 0; i < n; i++) {
		const struct tg_webhook_change *ch;
		struct tg_actor actor;
		struct tg_dsync *s;

		if (!tg_webhook_repo_matches(&push, t[i].repo_url, t[i].repository))
			continue;
		ch = tg_webhook_ref_change(&push, t[i].ref_type, t[i].ref);
		if (!ch)
			continue;
		if (!t[i].verified) {
			/* Signed, but with another sync's secret: that sender
			 * does not speak for this sync. */
			tg_log_kv(TG_LOG_WARN,
				  "webhook matches a sync but is not signed with its secret",
				  "sync", t[i].name, "delivery", delivery, "repository",
				  push.full_name, NULL);
			continue;
		}
		if (t[i].previous)
			tg_log_kv(TG_LOG_WARN,
				  "webhook signed with the previous secret (rotation overlap)",
				  "sync", t[i].name, "delivery", delivery, NULL);
		webhook_actor(&actor, &push, event, delivery[0] ? delivery : NULL,
			      hook[0] ? hook : NULL, ch);
		pthread_mutex_lock(&d->lock);
		s = tg_daemon_find_sync(d, t[i].name);
		if (s && !d->stopping && d->elector &&
		    !tg_elector_holds_locked(d->elector, t[i].name)) {
			/* Another replica applies it: the delivery goes there
			 * (once per replica), unless it came from one. */
			char addr[TG_LEASE_ADDR_MAX];

			if (!req->header(req, TG_FORWARDED_HEADER) &&
			    tg_elector_holder_address_locked(d->elector, t[i].name, addr,
							     sizeof(addr)))
				add_forward(&fw, &n_fw, addr, t[i].name);
			else
				tg_log_kv(TG_LOG_INFO,
					  "webhook for a sync no replica holds right now: its next "
					  "holder starts with a pass of the branch head",
					  "sync", t[i].name, "delivery", delivery, NULL);
			s = NULL;
		}
		if (s && !d->stopping) {
			s->trigger_seq++;
			tg_sched_trigger(&s->sched, TG_TRIGGER_WEBHOOK);
			tg_dsync_add_actor(s, &actor);
			pthread_cond_broadcast(&d->wake);
			cJSON_AddItemToArray(triggered, cJSON_CreateString(t[i].name));
			n_triggered++;
		}
		pthread_mutex_unlock(&d->lock);
		tg_actor_release(&actor);
	}
	for (size_t k = 0; k < n_fw; k++)
		if (forward_hook(d, &fw[k], req)) {
			for (size_t j = 0; j < fw[k].n; j++)
				cJSON_AddItemToArray(triggered, cJSON_CreateString(fw[k].syncs[j]));
			n_triggered += fw[k].n;
		}
	{
		char count[24];
		char *names = cJSON_PrintUnformatted(triggered);

		snprintf(count, sizeof(count), "%zu", n_triggered);
		tg_log_kv(TG_LOG_INFO, n_triggered ? "webhook accepted" : "webhook matched no sync",
			  "event", event, "delivery", delivery, "repository", push.full_name,
			  "user", push.actor_id, "syncs", names ? names : "[]", "triggered", count,
			  NULL);
		free(names);
	}
	if (n_triggered) {
		status = hook_answer(d, out, 202, "triggered", event, delivery, triggered, NULL);
	} else {
		status = hook_answer(
			d, out, 200, "no_match", event, delivery, triggered,
			"no sync follows this repository and ref, or the matching syncs "
			"use another secret");
	}
	triggered = NULL;
out:
	cJSON_Delete(triggered);
	tg_webhook_push_release(&push);
	free_targets(t, n);
	free_forwards(fw, n_fw);
	return status;
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
	ops->history = http_history;
	ops->rollback = http_rollback;
	ops->bitbucket_hook = http_hook;
	ops->hooks_enabled = http_hooks_enabled;
	ops->requests_cut = http_requests_cut;
}
