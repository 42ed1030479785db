/*
 * Pipelines OIDC (see include/tg/oidc.h).
 *
 * One mutex guards every issuer's key set and schedule; `wake` tells the
 * fetch thread that a refresh was asked for, `fetched` tells waiting
 * verifiers that an attempt ended.  Key sets are reference-counted so a
 * verifier keeps the set it looked up while the fetch thread installs a
 * newer one.  The fetch thread owns its libcurl handles.
 */
#include "tg/oidc.h"

#include <errno.h>
#include <fnmatch.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "tg/buf.h"
#include "tg/log.h"
#include "tg/webhook.h"
#include "tg/banned.h"

#define FETCH_TIMEOUT_MS 10000L
#define CONNECT_TIMEOUT_MS 5000L
#define DISCOVERY_MAX ((size_t)64 * 1024)
/* A verifier waits this long for a refresh it asked for: longer than one
 * fetch may take (FETCH_TIMEOUT_MS), or a slow but good key server would be
 * reported unavailable while its keys were still on the way. */
#define VERIFY_WAIT_MS 12000
#define RETRY_MAX_MS 60000LL
#define CLAIM_MAX 512

struct keyset {
	int refs; /* under the verifier's lock */
	struct tg_jwks *jwks;
};

struct issuer {
	struct tg_oidc_issuer cfg; /* copied strings */
	struct keyset *keys;       /* NULL until the first successful fetch */
	long long next_fetch_ms;   /* monotonic */
	long long last_attempt_ms;
	unsigned failures;
	int want_refresh;
	int fetching;             /* an attempt is running */
	unsigned long generation; /* attempts finished */
};

struct tg_oidc {
	atomic_int refs;
	pthread_mutex_t lock;
	pthread_cond_t wake, fetched;
	struct issuer *iss;
	size_t n;
	atomic_int stop; /* also read by curl's progress callback */
	pthread_t thread;
	int thread_started;
};

/* --- identity and rules (pure) -------------------------------------------- */

static char *claim_text(const struct tg_jwt *t, const char *name)
{
	const char *v = tg_jwt_claim_str(t, name);
	char *u;

	if (!v)
		return NULL;
	u = tg_utf8_sanitize(v);
	if (strlen(u) > CLAIM_MAX) {
		size_t cut = CLAIM_MAX;

		while (cut > 0 && ((unsigned char)u[cut] & 0xc0) == 0x80)
			cut--;
		u[cut] = '\0';
	}
	for (char *p = u; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return u;
}

void tg_oidc_identity_release(struct tg_oidc_identity *id)
{
	if (!id)
		return;
	free(id->issuer);
	free(id->subject);
	free(id->repository_uuid);
	free(id->workspace_uuid);
	free(id->deployment_environment_uuid);
	free(id->branch);
	free(id->pipeline_uuid);
	free(id->step_uuid);
	free(id->account_uuid);
	memset(id, 0, sizeof(*id));
}

static int uuid_field_ok(const char *want, const char *have)
{
	return !want || !*want || tg_webhook_uuid_eq(want, have);
}

int tg_oidc_rules_allow(const struct tg_oidc_rule *rules, size_t n,
			const struct tg_oidc_identity *id, unsigned action)
{
	for (size_t i = 0; i < n; i++) {
		const struct tg_oidc_rule *r = &rules[i];

		if (!(r->actions & action))
			continue;
		/* Defence in depth: the loader refuses such rules already. */
		if ((!r->repository_uuid || !*r->repository_uuid) &&
		    (!r->workspace_uuid || !*r->workspace_uuid))
			continue;
		if (r->issuer && !tg_str_eq(r->issuer, id->issuer))
			continue;
		if (!uuid_field_ok(r->repository_uuid, id->repository_uuid) ||
		    !uuid_field_ok(r->workspace_uuid, id->workspace_uuid) ||
		    !uuid_field_ok(r->deployment_environment_uuid, id->deployment_environment_uuid))
			continue;
		if (r->branch && *r->branch &&
		    (!id->branch || fnmatch(r->branch, id->branch, 0) != 0))
			continue;
		return (int)i;
	}
	return -1;
}

/* --- fetching --------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
	struct tg_buf *b = ctx;

	/* Over the cap: returning less than given makes curl stop. */
	if (tg_buf_put(b, data, size * nmemb))
		return 0;
	return size * nmemb;
}

/* A fetch in flight gives up as soon as the verifier is being freed
 * (SIGTERM), instead of holding the shutdown for its timeout. */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load((atomic_int *)ctx) ? 1 : 0;
}

static int http_get(const char *url, const char *ca_file, size_t max, atomic_int *stop,
		    struct tg_buf *out, struct tg_err *err)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = NULL;
	CURL *c = curl_easy_init();
	long status = 0;
	CURLcode cc;
	int rc = 0;

	tg_buf_init(out, max);
	if (!c)
		return tg_err_set(err, TG_ERROR, "cannot fetch '%s': curl_easy_init failed", url);
	hdr = curl_slist_append(hdr, "Accept: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	/* Keys only ever come over verified TLS, redirects included. */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 3L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (ca_file)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "tyk-gitops/" TG_VERSION);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, stop);
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (tg_buf_overflowed(out))
		rc = tg_err_set(err, TG_EINVALID, "cannot fetch '%s': answer over %zu bytes", url,
				max);
	else if (cc != CURLE_OK)
		rc = tg_err_set(err, cc == CURLE_OPERATION_TIMEDOUT ? TG_ETIMEOUT : TG_ERROR,
				"cannot fetch '%s': %s", url,
				errbuf[0] ? errbuf : curl_easy_strerror(cc));
	else if (status != 200)
		rc = tg_err_set(err, TG_ERROR, "cannot fetch '%s': HTTP %ld", url, status);
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	return rc;
}

/* The jwks_uri of the issuer's discovery document (OIDC Discovery 4). */
static int discover(const struct tg_oidc_issuer *is, atomic_int *stop, char **jwks_uri,
		    struct tg_err *err)
{
	struct tg_buf body = TG_BUF_INIT;
	size_t len = strlen(is->issuer);
	char *url =
		tg_xasprintf("%.*s/.well-known/openid-configuration",
			     (int)(len && is->issuer[len - 1] == '/' ? len - 1 : len), is->issuer);
	cJSON *doc = NULL;
	const cJSON *iss, *uri;
	int rc;

	*jwks_uri = NULL;
	rc = http_get(url, is->ca_file, DISCOVERY_MAX, stop, &body, err);
	if (rc)
		goto out;
	doc = cJSON_ParseWithLength(tg_buf_cstr(&body), body.len);
	iss = cJSON_GetObjectItemCaseSensitive(doc, "issuer");
	uri = cJSON_GetObjectItemCaseSensitive(doc, "jwks_uri");
	if (!cJSON_IsString(iss) || strcmp(iss->valuestring, is->issuer)) {
		/* A document for another issuer must not supply this one's keys. */
		rc = tg_err_set(err, TG_EINVALID, "discovery document '%s' is not for issuer '%s'",
				url, is->issuer);
		goto out;
	}
	if (!cJSON_IsString(uri) || strncmp(uri->valuestring, "https://", 8)) {
		rc = tg_err_set(err, TG_EINVALID, "discovery document '%s' has no https jwks_uri",
				url);
		goto out;
	}
	*jwks_uri = tg_xstrdup(uri->valuestring);
out:
	cJSON_Delete(doc);
	tg_buf_release(&body);
	free(url);
	return rc;
}

static int fetch_keys(const struct tg_oidc_issuer *is, atomic_int *stop, struct tg_jwks **out,
		      struct tg_err *err)
{
	struct tg_buf body = TG_BUF_INIT;
	char *data = NULL, *uri = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	if (is->jwks_file) {
		rc = tg_read_file(&data, &len, is->jwks_file, TG_JWKS_MAX_LEN, err);
		if (rc)
			return rc;
		rc = tg_jwks_parse(out, data, len, err);
		if (rc)
			tg_err_prefix(err, "key set '%s'", is->jwks_file);
		free(data);
		return rc;
	}
	if (!is->jwks_url && (rc = discover(is, stop, &uri, err)))
		return rc;
	rc = http_get(is->jwks_url ? is->jwks_url : uri, is->ca_file, TG_JWKS_MAX_LEN, stop, &body,
		      err);
	if (!rc && (rc = tg_jwks_parse(out, tg_buf_cstr(&body), body.len, err)))
		tg_err_prefix(err, "key set '%s'", is->jwks_url ? is->jwks_url : uri);
	tg_buf_release(&body);
	free(uri);
	return rc;
}

static void keyset_unref(struct keyset *k)
{
	/* Under the lock. */
	if (k && --k->refs == 0) {
		tg_jwks_free(k->jwks);
		free(k);
	}
}

static long long retry_delay(const struct issuer *is)
{
	long long d = 1000LL << (is->failures < 6 ? is->failures : 6);

	if (d > RETRY_MAX_MS)
		d = RETRY_MAX_MS;
	return d < is->cfg.refresh_interval_ms ? d : is->cfg.refresh_interval_ms;
}

static void *fetch_main(void *arg)
{
	struct tg_oidc *o = arg;

	pthread_mutex_lock(&o->lock);
	while (!atomic_load(&o->stop)) {
		long long now = tg_now_ms(), next = now + 60000;
		struct issuer *pick = NULL;

		for (size_t i = 0; i < o->n && !pick; i++) {
			struct issuer *is = &o->iss[i];

			if (is->want_refresh || now >= is->next_fetch_ms)
				pick = is;
			else if (is->next_fetch_ms < next)
				next = is->next_fetch_ms;
		}
		if (!pick) {
			struct timespec ts;

			tg_timespec_at(&ts, next);
			pthread_cond_timedwait(&o->wake, &o->lock, &ts);
			continue;
		}
		{
			struct tg_oidc_issuer cfg = pick->cfg; /* strings immutable */
			struct tg_err err = { 0, "" };
			struct tg_jwks *jwks = NULL;
			int rc;

			pick->want_refresh = 0;
			pick->fetching = 1;
			pick->last_attempt_ms = now;
			pthread_mutex_unlock(&o->lock);
			rc = fetch_keys(&cfg, &o->stop, &jwks, &err);
			pthread_mutex_lock(&o->lock);
			pick->fetching = 0;
			now = tg_now_ms();
			if (rc) {
				pick->failures++;
				pick->next_fetch_ms = now + retry_delay(pick);
				tg_log_kv(
					TG_LOG_WARN,
					pick->keys
						? "cannot refresh the oidc key set; keeping the previous keys"
						: "cannot fetch the oidc key set",
					"issuer", cfg.issuer, "error", err.msg, NULL);
			} else {
				struct keyset *k = tg_xcalloc(1, sizeof(*k));
				char n[32];

				k->refs = 1;
				k->jwks = jwks;
				keyset_unref(pick->keys);
				pick->keys = k;
				pick->failures = 0;
				pick->next_fetch_ms = now + cfg.refresh_interval_ms;
				snprintf(n, sizeof(n), "%zu", tg_jwks_count(jwks));
				tg_log_kv(TG_LOG_INFO, "oidc key set loaded", "issuer", cfg.issuer,
					  "keys", n, NULL);
			}
			pick->generation++;
			pthread_cond_broadcast(&o->fetched);
		}
	}
	pthread_mutex_unlock(&o->lock);
	return NULL;
}

/* --- lifecycle ---------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s ? tg_xstrdup(s) : NULL;
}

struct tg_oidc *tg_oidc_new(const struct tg_config *cfg)
{
	struct tg_oidc *o;

	if (!cfg->n_oidc_issuers)
		return NULL;
	o = tg_xcalloc(1, sizeof(*o));
	atomic_init(&o->refs, 1);
	atomic_init(&o->stop, 0);
	pthread_mutex_init(&o->lock, NULL);
	tg_cond_init_monotonic(&o->wake);
	tg_cond_init_monotonic(&o->fetched);
	o->n = cfg->n_oidc_issuers;
	o->iss = tg_xcalloc(o->n, sizeof(*o->iss));
	for (size_t i = 0; i < o->n; i++) {
		const struct tg_oidc_issuer *src = &cfg->oidc_issuers[i];
		struct tg_oidc_issuer *dst = &o->iss[i].cfg;

		*dst = *src;
		dst->issuer = dup_or_null(src->issuer);
		dst->audience = dup_or_null(src->audience);
		dst->jwks_url = dup_or_null(src->jwks_url);
		dst->jwks_file = dup_or_null(src->jwks_file);
		dst->ca_file = dup_or_null(src->ca_file);
		o->iss[i].next_fetch_ms = 0; /* at once */
	}
	if (pthread_create(&o->thread, NULL, fetch_main, o) == 0)
		o->thread_started = 1;
	else
		tg_log_kv(TG_LOG_ERROR, "cannot start the oidc key fetcher; tokens will be refused",
			  NULL);
	return o;
}

struct tg_oidc *tg_oidc_ref(struct tg_oidc *o)
{
	if (o)
		atomic_fetch_add(&o->refs, 1);
	return o;
}

void tg_oidc_unref(struct tg_oidc *o)
{
	if (!o || atomic_fetch_sub(&o->refs, 1) != 1)
		return;
	pthread_mutex_lock(&o->lock);
	atomic_store(&o->stop, 1);
	pthread_cond_broadcast(&o->wake);
	pthread_mutex_unlock(&o->lock);
	if (o->thread_started)
		pthread_join(o->thread, NULL);
	for (size_t i = 0; i < o->n; i++) {
		struct tg_oidc_issuer *c = &o->iss[i].cfg;

		keyset_unref(o->iss[i].keys);
		free(c->issuer);
		free(c->audience);
		free(c->jwks_url);
		free(c->jwks_file);
		free(c->ca_file);
	}
	free(o->iss);
	pthread_cond_destroy(&o->wake);
	pthread_cond_destroy(&o->fetched);
	pthread_mutex_destroy(&o->lock);
	free(o);
}

/* --- verification ---------------------------------------------------------- */

/* The issuer's current key set (a reference), refreshing it first when the
 * token names a kid it lacks and the rate limit allows.  Under no lock. */
static struct keyset *keys_for(struct tg_oidc *o, struct issuer *is, const char *kid)
{
	struct keyset *k;
	long long now = tg_now_ms();

	pthread_mutex_lock(&o->lock);
	if (!is->keys || (kid && !tg_jwks_has_kid(is->keys->jwks, kid))) {
		int allowed =
			!is->keys || now - is->last_attempt_ms >= is->cfg.min_refresh_interval_ms;

		if (allowed && o->thread_started && !atomic_load(&o->stop)) {
			unsigned long gen = is->generation;
			struct timespec ts;

			/* An attempt already running will do (the first one,
			 * at start-up, usually). */
			if (!is->fetching) {
				is->want_refresh = 1;
				pthread_cond_broadcast(&o->wake);
			}
			tg_timespec_at(&ts, now + VERIFY_WAIT_MS);
			while (is->generation == gen && !atomic_load(&o->stop))
				if (pthread_cond_timedwait(&o->fetched, &o->lock, &ts) == ETIMEDOUT)
					break;
		}
	}
	k = is->keys;
	if (k)
		k->refs++;
	pthread_mutex_unlock(&o->lock);
	return k;
}

static void fill_identity(struct tg_oidc_identity *id, const struct tg_jwt *t)
{
	id->issuer = claim_text(t, "iss");
	id->subject = claim_text(t, "sub");
	id->repository_uuid = claim_text(t, "repositoryUuid");
	id->workspace_uuid = claim_text(t, "workspaceUuid");
	id->deployment_environment_uuid = claim_text(t, "deploymentEnvironmentUuid");
	id->branch = claim_text(t, "branchName");
	id->pipeline_uuid = claim_text(t, "pipelineUuid");
	id->step_uuid = claim_text(t, "stepUuid");
	id->account_uuid = claim_text(t, "accountUuid");
}

enum tg_jwt_reason tg_oidc_verify(struct tg_oidc *o, const char *token, size_t len, long long now_s,
				  struct tg_oidc_identity *id, char *detail, size_t n)
{
	struct tg_jwt t;
	struct tg_err err = { 0, "" };
	struct tg_jwt_expect want;
	struct issuer *is = NULL;
	struct keyset *k;
	const char *iss;
	enum tg_jwt_reason r;

	memset(id, 0, sizeof(*id));
	if (tg_jwt_parse(&t, token, len, &err)) {
		snprintf(detail, n, "%s", err.msg);
		return TG_JWT_MALFORMED;
	}
	iss = tg_jwt_claim_str(&t, "iss");
	for (size_t i = 0; iss && i < o->n && !is; i++)
		if (!strcmp(o->iss[i].cfg.issuer, iss))
			is = &o->iss[i];
	if (!is) {
		snprintf(detail, n, "iss is not a configured issuer");
		r = TG_JWT_WRONG_ISSUER;
		goto out;
	}
	/* The pin, before any key is touched: none, HS256 and friends, or
	 * an algorithm this issuer does not use. */
	if (!t.alg || !(t.alg & is->cfg.algorithms)) {
		snprintf(detail, n, "algorithm '%s' is not allowed for issuer '%s'", t.alg_name,
			 is->cfg.issuer);
		r = TG_JWT_ALG_NOT_ALLOWED;
		goto out;
	}
	k = keys_for(o, is, t.kid);
	if (!k) {
		snprintf(detail, n, "the key set of '%s' could not be fetched yet", is->cfg.issuer);
		r = TG_JWT_JWKS_UNAVAILABLE;
		goto out;
	}
	r = tg_jwks_verify(k->jwks, &t);
	pthread_mutex_lock(&o->lock);
	keyset_unref(k);
	pthread_mutex_unlock(&o->lock);
	if (r != TG_JWT_OK) {
		snprintf(detail, n, "%s (kid '%.64s', alg %s)",
			 r == TG_JWT_UNKNOWN_KID ? "no key with that kid in the issuer's key set"
			 : r == TG_JWT_KEY_TYPE
				 ? "the key named is not usable with the token's algorithm"
				 : "signature does not verify",
			 t.kid ? t.kid : "", t.alg_name);
		goto out;
	}
	want.issuer = is->cfg.issuer;
	want.audience = is->cfg.audience;
	want.algorithms = is->cfg.algorithms;
	want.now_s = now_s;
	want.leeway_s = is->cfg.leeway_ms / 1000;
	r = tg_jwt_check(&t, &want, detail, n);
	if (r == TG_JWT_OK)
		fill_identity(id, &t);
out:
	tg_jwt_release(&t);
	return r;
}
