/*
 * Who is calling (see include/tg/actor.h): the actor of an API request or a
 * webhook delivery, and whether an API caller may do what it asks.  Token
 * keys are fetched by the oidc module's own thread, not here.
 */
#include "tg/actor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "tg/catalog.h"
#include "tg/handlers.h"
#include "tg/log.h"
#include "tg/report.h"
#include "tg/banned.h"

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
	return tg_handlers_error_json(out, status, "%s", msg);
}

int tg_actor_authorize(struct tg_actor *actor, struct tg_daemon *d,
		       const struct tg_http_request *req, const char *name, unsigned action,
		       struct tg_buf *out)
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

void tg_actor_webhook(struct tg_actor *a, const struct tg_webhook_push *p, const char *event,
		      const char *delivery, const char *hook, const struct tg_webhook_change *ch)
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
