/*
 * The Bitbucket notifier (see include/tg/notifier.h): a queue drained by a
 * thread of its own, so a slow, failing or hanging Bitbucket costs a pass
 * nothing.  Order within one status (commit + key) is kept: the queue is
 * FIFO, a retry waits at its head, and a newer state replaces a queued
 * older one.
 */
#include "tg/notifier.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "tg/catalog.h"
#include "tg/log.h"
#include "tg/banned.h"

#define REPLY_MAX (64 * 1024)
#define RETRY_AFTER_MAX_MS 60000
#define SEEN_MAX 512

/* --- one request --------------------------------------------------------------- */

struct reply_ctx {
	struct tg_bb_reply *rep;
	const volatile int *stop;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct tg_bb_reply *rep = ((struct reply_ctx *)arg)->rep;
	size_t len = size * n, take = len;

	if (rep->len + take > REPLY_MAX)
		take = REPLY_MAX - rep->len;
	if (take) {
		rep->body = tg_xrealloc(rep->body, rep->len + take + 1);
		memcpy(rep->body + rep->len, p, take);
		rep->len += take;
		rep->body[rep->len] = '\0';
	}
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct tg_bb_reply *rep = ((struct reply_ctx *)arg)->rep;
	size_t len = size * n;
	static const char name[] = "retry-after:";

	if (len > sizeof(name) - 1 && !strncasecmp(p, name, sizeof(name) - 1)) {
		const char *v = p + sizeof(name) - 1;
		size_t vl = len - (sizeof(name) - 1);

		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl < sizeof(rep->retry_after)) {
			memcpy(rep->retry_after, v, vl);
			rep->retry_after[vl] = '\0';
		}
	}
	return len;
}

static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	const volatile int *stop = ((struct reply_ctx *)arg)->stop;

	(void)a, (void)b, (void)c, (void)d;
	return stop && *stop;
}

int tg_bb_send(void *curl_handle, const struct tg_bb_target *t, const char *token,
	       const char *method, const char *url, const char *body, struct tg_bb_reply *rep,
	       const volatile int *stop)
{
	CURL *h = curl_handle;
	struct curl_slist *hdr = NULL;
	struct reply_ctx ctx = { rep, stop };
	char errbuf[CURL_ERROR_SIZE] = "";
	CURLcode rc;

	memset(rep, 0, sizeof(*rep));
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "tyk-gitops/" TG_VERSION);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &ctx);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &ctx);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &ctx);
	/* The environment's proxies are not ours to use: only the one
	 * configured (the Pipelines proxy, a corporate one). */
	curl_easy_setopt(h, CURLOPT_PROXY, t->proxy ? t->proxy : "");
	if (t->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, t->ca_file);
	hdr = curl_slist_append(hdr, "Accept: application/json");
	if (body) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	if (token && t->email) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, t->email);
		curl_easy_setopt(h, CURLOPT_PASSWORD, token);
	} else if (token) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BEARER);
		curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, token);
	}
	rc = curl_easy_perform(h);
	/* Drop the credentials from the handle before anything else runs. */
	curl_easy_setopt(h, CURLOPT_PASSWORD, NULL);
	curl_easy_setopt(h, CURLOPT_XOAUTH2_BEARER, NULL);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	if (rc != CURLE_OK) {
		rep->timed_out = rc == CURLE_OPERATION_TIMEDOUT;
		snprintf(rep->error, sizeof(rep->error), "%s",
			 errbuf[0] ? errbuf : curl_easy_strerror(rc));
		rep->http = 0;
		return -1;
	}
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rep->http);
	return 0;
}

void tg_bb_reply_release(struct tg_bb_reply *rep)
{
	free(rep->body);
	memset(rep, 0, sizeof(*rep));
}

/* --- the queue ---------------------------------------------------------------------- */

struct item {
	struct item *next;
	char *sync;
	struct tg_bb_target t;
	char *url, *body;
	char *ident; /* url + key: the status this is a state of */
	int attempts;
	long long not_before; /* monotonic ms */
};

struct seen {
	char *ident, *body;
};

struct token {
	char *path, *value;
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
};

struct tg_notifier {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct item *head, *tail;
	size_t len;
	struct tg_notifier_opts o;
	struct seen seen[SEEN_MAX];
	size_t seen_next;
	struct tg_notifier_stats stats;
	volatile int stop;
	int busy; /* a request is in flight */
	pthread_cond_t idle;
	pthread_t thread;
	CURL *curl;
	struct token *tokens; /* thread only */
	size_t n_tokens;
};

static void item_free(struct item *it)
{
	if (!it)
		return;
	free(it->sync);
	tg_bb_target_release(&it->t);
	free(it->url);
	free(it->body);
	free(it->ident);
	free(it);
}

static struct seen *seen_find(struct tg_notifier *n, const char *ident)
{
	for (size_t i = 0; i < SEEN_MAX; i++)
		if (n->seen[i].ident && !strcmp(n->seen[i].ident, ident))
			return &n->seen[i];
	return NULL;
}

static void seen_set(struct tg_notifier *n, const char *ident, const char *body)
{
	struct seen *s = seen_find(n, ident);

	if (!s) {
		s = &n->seen[n->seen_next];
		n->seen_next = (n->seen_next + 1) % SEEN_MAX;
		free(s->ident);
		s->ident = tg_xstrdup(ident);
	}
	free(s->body);
	s->body = tg_xstrdup(body);
}

/* A dropped status may be sent again when it comes back. */
static void seen_forget(struct tg_notifier *n, const struct item *it)
{
	struct seen *s = seen_find(n, it->ident);

	if (s && !strcmp(s->body, it->body)) {
		free(s->body);
		s->body = tg_xstrdup("");
	}
}

static void count(struct tg_notifier *n, const struct item *it, const char *result)
{
	const char *l[] = { tg_bb_api_name(it->t.api), result };

	if (n->o.metrics)
		tg_metrics_add(n->o.metrics, TG_M_BITBUCKET, l, 1);
}

/* Under the lock. */
static void drop(struct tg_notifier *n, struct item *it, const char *why)
{
	n->stats.dropped++;
	count(n, it, "dropped");
	seen_forget(n, it);
	tg_log_kv(TG_LOG_WARN, "bitbucket status dropped", "sync", it->sync, "url", it->url,
		  "reason", why, NULL);
	item_free(it);
}

void tg_notifier_status(struct tg_notifier *n, const char *sync, const struct tg_bb_target *t,
			const char *sha, const struct tg_bb_status *st)
{
	struct item *it = tg_xcalloc(1, sizeof(*it));
	struct seen *s;

	it->sync = tg_xstrdup(sync);
	tg_bb_target_copy(&it->t, t);
	tg_bb_status_request(&it->url, &it->body, t, sha, st);
	it->ident = tg_xasprintf("%s#%s", it->url, st->key);
	pthread_mutex_lock(&n->lock);
	s = seen_find(n, it->ident);
	if (s && !strcmp(s->body, it->body)) {
		n->stats.skipped++;
		pthread_mutex_unlock(&n->lock);
		item_free(it);
		return;
	}
	seen_set(n, it->ident, it->body);
	for (struct item *q = n->head; q; q = q->next) {
		if (strcmp(q->ident, it->ident))
			continue;
		/* The newer state replaces the queued one, in its place. */
		free(q->body);
		q->body = it->body;
		it->body = NULL;
		q->attempts = 0;
		q->not_before = 0;
		pthread_mutex_unlock(&n->lock);
		item_free(it);
		return;
	}
	if (n->len >= n->o.queue_max && n->head) {
		struct item *old = n->head;

		n->head = old->next;
		if (!n->head)
			n->tail = NULL;
		n->len--;
		drop(n, old, "queue full");
	}
	if (n->tail)
		n->tail->next = it;
	else
		n->head = it;
	n->tail = it;
	n->len++;
	pthread_cond_signal(&n->cond);
	pthread_mutex_unlock(&n->lock);
}

/* The token of t, re-read when its file changed.  Thread only. */
static const char *token_for(struct tg_notifier *n, const char *path, struct tg_err *err)
{
	struct token *tk = NULL;
	struct stat st;

	for (size_t i = 0; i < n->n_tokens; i++)
		if (!strcmp(n->tokens[i].path, path))
			tk = &n->tokens[i];
	if (stat(path, &st)) {
		tg_err_set(err, TG_ENOTFOUND, "cannot read token file '%s'", path);
		return NULL;
	}
	if (tk && tk->value && tk->dev == st.st_dev && tk->ino == st.st_ino &&
	    tk->size == st.st_size && tk->mtime.tv_sec == st.st_mtim.tv_sec &&
	    tk->mtime.tv_nsec == st.st_mtim.tv_nsec)
		return tk->value;
	if (!tk) {
		n->tokens = tg_xreallocarray(n->tokens, n->n_tokens + 1, sizeof(*n->tokens));
		tk = &n->tokens[n->n_tokens++];
		memset(tk, 0, sizeof(*tk));
		tk->path = tg_xstrdup(path);
	}
	tg_secret_free(tk->value);
	tk->value = NULL;
	if (tg_read_secret_file(&tk->value, path, err))
		return NULL;
	tk->dev = st.st_dev;
	tk->ino = st.st_ino;
	tk->size = st.st_size;
	tk->mtime = st.st_mtim;
	return tk->value;
}

static void at_mono(struct timespec *ts, long long ms)
{
	ts->tv_sec = (time_t)(ms / 1000);
	ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}

/* After an attempt, under the lock: done, retried at the head, or dropped. */
static void settle(struct tg_notifier *n, struct item *it, const struct tg_bb_reply *rep)
{
	const char *result = tg_bb_result_name(rep->http, rep->timed_out);
	long long delay;
	char msg[256] = "";

	count(n, it, result);
	if (rep->http >= 200 && rep->http < 300) {
		n->stats.sent++;
		item_free(it);
		return;
	}
	tg_bb_reply_error(msg, sizeof(msg), rep->body, rep->len);
	if (!msg[0])
		snprintf(msg, sizeof(msg), "%s", rep->error[0] ? rep->error : result);
	/* A newer state of this status is queued: this one is history. */
	for (struct item *q = n->head; q; q = q->next)
		if (!strcmp(q->ident, it->ident)) {
			item_free(it);
			return;
		}
	if (!tg_bb_retryable(rep->http, rep->timed_out)) {
		char code[16];

		n->stats.failed++;
		snprintf(code, sizeof(code), "%ld", rep->http);
		tg_log_kv(TG_LOG_WARN, "bitbucket refused the status", "sync", it->sync, "url",
			  it->url, "status", code, "error", msg, NULL);
		seen_forget(n, it);
		item_free(it);
		return;
	}
	if (++it->attempts >= n->o.max_attempts) {
		drop(n, it, msg);
		return;
	}
	delay = n->o.backoff_ms << (it->attempts - 1 < 16 ? it->attempts - 1 : 16);
	if (delay > n->o.backoff_max)
		delay = n->o.backoff_max;
	if (rep->http == 429) {
		long long ra = tg_bb_retry_after_ms(rep->retry_after, strlen(rep->retry_after),
						    tg_wall_ms(), RETRY_AFTER_MAX_MS);

		if (ra >= 0)
			delay = ra;
	}
	tg_log_kv(TG_LOG_INFO, "bitbucket status will be retried", "sync", it->sync, "result",
		  result, "error", msg, NULL);
	it->not_before = tg_now_ms() + delay;
	it->next = n->head;
	n->head = it;
	if (!n->tail)
		n->tail = it;
	n->len++;
}

static void *run(void *arg)
{
	struct tg_notifier *n = arg;

	pthread_mutex_lock(&n->lock);
	while (!n->stop) {
		struct item *it = n->head;
		struct tg_bb_reply rep;
		struct tg_err err = { 0, "" };
		const char *token = NULL;
		long long now = tg_now_ms();

		if (!it) {
			pthread_cond_wait(&n->cond, &n->lock);
			continue;
		}
		if (it->not_before > now) {
			struct timespec ts;

			at_mono(&ts, it->not_before);
			pthread_cond_timedwait(&n->cond, &n->lock, &ts);
			continue;
		}
		n->head = it->next;
		if (!n->head)
			n->tail = NULL;
		it->next = NULL;
		n->len--;
		n->busy = 1;
		pthread_mutex_unlock(&n->lock);
		if (it->t.token_file)
			token = token_for(n, it->t.token_file, &err);
		if (it->t.token_file && !token) {
			memset(&rep, 0, sizeof(rep));
			snprintf(rep.error, sizeof(rep.error), "%.200s", err.msg);
		} else {
			tg_bb_send(n->curl, &it->t, token, "POST", it->url, it->body, &rep,
				   &n->stop);
		}
		pthread_mutex_lock(&n->lock);
		n->busy = 0;
		pthread_cond_broadcast(&n->idle);
		if (n->stop) {
			item_free(it);
			tg_bb_reply_release(&rep);
			break;
		}
		settle(n, it, &rep);
		tg_bb_reply_release(&rep);
	}
	pthread_mutex_unlock(&n->lock);
	return NULL;
}

int tg_notifier_new(struct tg_notifier **out, const struct tg_notifier_opts *opts,
		    struct tg_err *err)
{
	struct tg_notifier *n = tg_xcalloc(1, sizeof(*n));
	pthread_condattr_t ca;

	n->o = *opts;
	if (!n->o.queue_max)
		n->o.queue_max = 256;
	if (n->o.max_attempts <= 0)
		n->o.max_attempts = 5;
	if (n->o.backoff_ms <= 0)
		n->o.backoff_ms = 1000;
	if (n->o.backoff_max <= 0)
		n->o.backoff_max = 30000;
	n->curl = curl_easy_init();
	if (!n->curl) {
		free(n);
		return tg_err_set(err, TG_ERROR, "cannot start the bitbucket notifier: curl");
	}
	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cond, &ca);
	pthread_cond_init(&n->idle, &ca);
	pthread_condattr_destroy(&ca);
	for (size_t i = 0; i < SEEN_MAX; i++)
		n->seen[i].ident = NULL;
	if (pthread_create(&n->thread, NULL, run, n)) {
		curl_easy_cleanup(n->curl);
		pthread_cond_destroy(&n->cond);
		pthread_cond_destroy(&n->idle);
		pthread_mutex_destroy(&n->lock);
		free(n);
		return tg_err_set(err, TG_ERROR, "cannot start the bitbucket notifier thread");
	}
	*out = n;
	return 0;
}

void tg_notifier_free(struct tg_notifier *n)
{
	if (!n)
		return;
	pthread_mutex_lock(&n->lock);
	n->stop = 1;
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	pthread_join(n->thread, NULL);
	while (n->head) {
		struct item *it = n->head;

		n->head = it->next;
		item_free(it);
	}
	for (size_t i = 0; i < SEEN_MAX; i++) {
		free(n->seen[i].ident);
		free(n->seen[i].body);
	}
	for (size_t i = 0; i < n->n_tokens; i++) {
		free(n->tokens[i].path);
		tg_secret_free(n->tokens[i].value);
	}
	free(n->tokens);
	curl_easy_cleanup(n->curl);
	pthread_cond_destroy(&n->cond);
	pthread_cond_destroy(&n->idle);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

size_t tg_notifier_drain(struct tg_notifier *n, long long timeout_ms)
{
	long long deadline = tg_now_ms() + timeout_ms;
	struct timespec ts;
	size_t left;

	at_mono(&ts, deadline);
	pthread_mutex_lock(&n->lock);
	/* A retry waiting for its backoff counts as queued: only an answer
	 * empties the queue. */
	while ((n->len || n->busy) && tg_now_ms() < deadline)
		pthread_cond_timedwait(&n->idle, &n->lock, &ts);
	left = n->len + (size_t)n->busy;
	pthread_mutex_unlock(&n->lock);
	return left;
}

void tg_notifier_stats(struct tg_notifier *n, struct tg_notifier_stats *out)
{
	pthread_mutex_lock(&n->lock);
	*out = n->stats;
	out->queued = n->len;
	pthread_mutex_unlock(&n->lock);
}
