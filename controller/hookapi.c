/*
 * The Bitbucket webhook endpoint (see include/tg/hookapi.h).  A delivery is
 * authenticated by its HMAC signature before a byte of the payload is read;
 * then it triggers, under the daemon's lock, the syncs it matches and was
 * signed for, and is handed to the replicas holding the others.
 */
#include "tg/hookapi.h"

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

int tg_hookapi_enabled(void *ctx)
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
	tg_handlers_put_json(out, o);
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

int tg_hookapi_serve(void *ctx, const struct tg_http_request *req, struct tg_buf *out)
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
		status = tg_handlers_error_json(out, 404, "%s",
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
		tg_handlers_error_json(
			out, status, "%s",
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
		tg_actor_webhook(&actor, &push, event, delivery[0] ? delivery : NULL,
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
