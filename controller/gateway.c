/*
 * Tyk Gateway control API client (see include/tg/gateway.h).
 *
 * Reads go through one keep-alive easy handle.  Writes go through a curl
 * multi handle so that independent writes overlap, bounded by
 * max_concurrency and, when adaptive, by a window that follows what the
 * gateway keeps up with (additive increase, multiplicative decrease, as
 * TCP does); each failed write that may succeed later (transport error,
 * 429, 5xx) is retried with exponential backoff.
 */
#include "tg/gateway.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <curl/curl.h>

#include "tg/buf.h"
#include "tg/log.h"
#include "tg/banned.h"

/* A list of 10,000 classic definitions is about 60 MB of JSON. */
/* The most bytes a list reply may take unless gateway.max_list_mib says
 * otherwise: a broken or hostile gateway cannot exhaust memory.  About
 * 5.5 KB an API as the gateway lists a classic API: 90,000 APIs. */
#define LIST_BODY_CAP ((size_t)512 * 1024 * 1024)
#define ONE_BODY_CAP ((size_t)16 * 1024 * 1024)

struct tg_gateway {
	char *url;
	char *secret_file;
	char *secret;
	struct timespec secret_mtime;
	char *ca_file, *cert_file, *key_file;
	int insecure;
	long timeout_ms;
	int retries;
	int max_concurrency;
	size_t max_list_bytes;
	int adaptive;
	double window;       /* writes in flight allowed now, 1..max_concurrency */
	double fastest_ms;   /* the quickest recent write: an unloaded gateway */
	long long cut_at_ms; /* when the window was last halved */
	CURL *easy;
	CURLM *multi;
	unsigned long requests;
	/* Each list's last length: the next reply's buffer is made that
	 * large at once instead of doubled up to it. */
	size_t list_len_hint[TG_KIND_COUNT];
	tg_gateway_observe_fn observe;
	void *observe_ctx;
};

struct request {
	const char *method;
	char *path;           /* "/tyk/apis/x" */
	const char *endpoint; /* "/tyk/apis/{id}" for metrics */
	char *body;           /* request body or NULL */
	struct tg_buf reply;
	long status;
	CURLcode curl_rc;
	char curl_error[CURL_ERROR_SIZE];
	struct curl_slist *headers;
	long long started_ms;
	size_t reply_hint; /* bytes the reply likely takes, or 0 */
	size_t reply_cap;  /* the most the whole reply may take */
	size_t received;   /* bytes of the reply so far, let go or not */
	size_t dropped;    /* bytes progress let go */
	tg_gateway_progress_fn progress;
	void *progress_ctx;
};

static const char *kind_collection(enum tg_kind kind)
{
	switch (kind) {
	case TG_KIND_API: return "/tyk/apis";
	case TG_KIND_OAS_API: return "/tyk/apis/oas";
	case TG_KIND_POLICY: return "/tyk/policies";
	}
	return "/tyk/apis";
}

static const char *kind_item_endpoint(enum tg_kind kind)
{
	switch (kind) {
	case TG_KIND_API: return "/tyk/apis/{id}";
	case TG_KIND_OAS_API: return "/tyk/apis/oas/{id}";
	case TG_KIND_POLICY: return "/tyk/policies/{id}";
	}
	return "/tyk/apis/{id}";
}

static int refresh_secret(struct tg_gateway *gw, struct tg_err *err)
{
	struct stat st;
	char *secret = NULL;
	int rc;

	if (!gw->secret_file)
		return 0;
	if (stat(gw->secret_file, &st) < 0)
		return tg_err_set(err, TG_ERROR, "cannot read gateway secret file '%s'",
				  gw->secret_file);
	if (gw->secret && st.st_mtim.tv_sec == gw->secret_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == gw->secret_mtime.tv_nsec)
		return 0;
	rc = tg_read_secret_file(&secret, gw->secret_file, err);
	if (rc)
		return tg_err_prefix(err, "cannot read gateway secret");
	tg_secret_free(gw->secret);
	gw->secret = secret;
	gw->secret_mtime = st.st_mtim;
	return 0;
}

int tg_gateway_new(struct tg_gateway **out, const struct tg_gateway_opts *opts, struct tg_err *err)
{
	struct tg_gateway *gw;
	size_t len;

	if (!opts->url || strncmp(opts->url, "http", 4))
		return tg_err_set(err, TG_EINVALID,
				  "invalid gateway url '%s': want http(s)://host:port",
				  opts->url ? opts->url : "");
	gw = tg_xcalloc(1, sizeof(*gw));
	gw->url = tg_xstrdup(opts->url);
	len = strlen(gw->url);
	while (len > 0 && gw->url[len - 1] == '/')
		gw->url[--len] = '\0';
	gw->secret_file = opts->secret_file ? tg_xstrdup(opts->secret_file) : NULL;
	gw->ca_file = opts->ca_file ? tg_xstrdup(opts->ca_file) : NULL;
	gw->cert_file = opts->cert_file ? tg_xstrdup(opts->cert_file) : NULL;
	gw->key_file = opts->key_file ? tg_xstrdup(opts->key_file) : NULL;
	gw->insecure = opts->insecure_skip_verify;
	gw->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : 30000;
	gw->retries = opts->retries > 0 ? opts->retries : 3;
	gw->max_concurrency = opts->max_concurrency > 0 ? opts->max_concurrency : 16;
	gw->adaptive = opts->adaptive;
	gw->max_list_bytes = opts->max_list_bytes ? opts->max_list_bytes : LIST_BODY_CAP;
	gw->window = gw->max_concurrency < 4 ? gw->max_concurrency : 4;
	gw->easy = curl_easy_init();
	gw->multi = curl_multi_init();
	if (!gw->easy || !gw->multi) {
		tg_gateway_free(gw);
		return tg_err_set(err, TG_ERROR, "cannot initialise libcurl");
	}
	curl_multi_setopt(gw->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)gw->max_concurrency);
	if (refresh_secret(gw, err)) {
		tg_gateway_free(gw);
		return err ? err->code : TG_ERROR;
	}
	*out = gw;
	return 0;
}

void tg_gateway_free(struct tg_gateway *gw)
{
	if (!gw)
		return;
	if (gw->easy)
		curl_easy_cleanup(gw->easy);
	if (gw->multi)
		curl_multi_cleanup(gw->multi);
	free(gw->url);
	free(gw->secret_file);
	tg_secret_free(gw->secret);
	free(gw->ca_file);
	free(gw->cert_file);
	free(gw->key_file);
	free(gw);
}

void tg_gateway_set_observer(struct tg_gateway *gw, tg_gateway_observe_fn fn, void *ctx)
{
	gw->observe = fn;
	gw->observe_ctx = ctx;
}

unsigned long tg_gateway_request_count(const struct tg_gateway *gw)
{
	return gw->requests;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct request *req = userdata;
	size_t n = size * nmemb;

	/* Returning less than n makes curl fail the transfer: the cap is hit,
	 * by the whole reply even where most of it was let go. */
	if (n > req->reply_cap - req->received || tg_buf_put(&req->reply, data, n))
		return 0;
	req->received += n;
	if (req->progress) {
		size_t done = req->progress(req->progress_ctx, req->reply.ptr, req->reply.len);

		tg_buf_drop(&req->reply, done);
		req->dropped += done;
	}
	return n;
}

static void request_init(struct request *req, const char *method, char *path, const char *endpoint,
			 char *body, size_t reply_cap)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->path = path;
	req->endpoint = endpoint;
	req->body = body;
	req->reply_cap = reply_cap;
	tg_buf_init(&req->reply, reply_cap);
}

static void request_release(struct request *req)
{
	free(req->path);
	free(req->body);
	tg_buf_release(&req->reply);
	curl_slist_free_all(req->headers);
	req->headers = NULL;
}

/* Prepares handle for req; the secret travels only inside the header list. */
static void request_setup(struct tg_gateway *gw, CURL *h, struct request *req)
{
	char *url = tg_xasprintf("%s%s", gw->url, req->path);
	char *auth = tg_xasprintf("x-tyk-authorization: %s", gw->secret ? gw->secret : "");

	curl_easy_reset(h);
	curl_slist_free_all(req->headers);
	req->headers = curl_slist_append(NULL, auth);
	req->headers = curl_slist_append(req->headers, "Content-Type: application/json");
	req->headers = curl_slist_append(req->headers, "Accept: application/json");
	tg_secret_free(auth);
	tg_buf_clear(&req->reply);
	req->received = req->dropped = 0;
	tg_buf_reserve(&req->reply, req->reply_hint);
	if (req->progress)
		req->progress(req->progress_ctx, NULL, 0);
	req->curl_error[0] = '\0';
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, gw->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 gw->timeout_ms < 10000 ? gw->timeout_ms : 10000L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, req->curl_error);
	curl_easy_setopt(h, CURLOPT_PRIVATE, req);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (req->body)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
	if (gw->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, gw->ca_file);
	if (gw->cert_file)
		curl_easy_setopt(h, CURLOPT_SSLCERT, gw->cert_file);
	if (gw->key_file)
		curl_easy_setopt(h, CURLOPT_SSLKEY, gw->key_file);
	if (gw->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	req->started_ms = tg_now_ms();
	free(url);
}

static void request_finish(struct tg_gateway *gw, CURL *h, struct request *req, CURLcode rc)
{
	req->curl_rc = rc;
	req->status = 0;
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &req->status);
	gw->requests++;
	if (gw->observe)
		gw->observe(gw->observe_ctx, req->method, req->endpoint, req->status,
			    (double)(tg_now_ms() - req->started_ms) / 1000.0);
}

static int retryable(const struct request *req)
{
	return req->curl_rc != CURLE_OK || req->status == 429 || req->status >= 500;
}

int tg_gateway_write_window(const struct tg_gateway *gw)
{
	return gw->adaptive ? (int)gw->window : gw->max_concurrency;
}

/* Latency that still counts as keeping up: twice the quickest, plus a
 * millisecond of noise. */
#define KEEPING_UP(fastest) (2.0 * (fastest) + 1.0)

/*
 * After each write: one that says "too much" (429, 5xx, a timeout, a
 * transport error) halves the window, once per round (a write sent before
 * the last cut does not cut again); one answered while the gateway keeps
 * up grows it by one per window of such writes.  The quickest latency is
 * forgotten a little at each write, so a gateway that got slower for good
 * becomes the new measure.
 */
static void adapt_window(struct tg_gateway *gw, const struct request *req)
{
	long long now = tg_now_ms();
	double took = (double)(now - req->started_ms);

	if (!gw->adaptive)
		return;
	if (retryable(req)) {
		if (req->started_ms >= gw->cut_at_ms) {
			gw->window = gw->window / 2 < 1 ? 1 : gw->window / 2;
			gw->cut_at_ms = now;
			tg_log_debug("gateway write window halved to %d after HTTP %ld",
				     (int)gw->window, req->status);
		}
		return;
	}
	if (gw->fastest_ms <= 0 || took < gw->fastest_ms)
		gw->fastest_ms = took;
	else
		gw->fastest_ms *= 1.01;
	if (took <= KEEPING_UP(gw->fastest_ms) && gw->window < gw->max_concurrency)
		gw->window += 1.0 / gw->window;
	if (gw->window > gw->max_concurrency)
		gw->window = gw->max_concurrency;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Turns a finished request into 0 or an error code with a message. */
static int request_result(struct tg_gateway *gw, const struct request *req, struct tg_err *err)
{
	if (req->curl_rc == CURLE_OPERATION_TIMEDOUT)
		return tg_err_set(err, TG_ETIMEOUT,
				  "gateway '%s' did not answer %s %s within %ld ms", gw->url,
				  req->method, req->endpoint, gw->timeout_ms);
	if (req->curl_rc != CURLE_OK)
		return tg_err_set(err, TG_ERROR, "cannot reach gateway '%s': %s", gw->url,
				  req->curl_error[0] ? req->curl_error
						     : curl_easy_strerror(req->curl_rc));
	if (req->status == 401 || req->status == 403)
		return tg_err_set(
			err, TG_EAUTH,
			"gateway '%s' rejected the secret%s%s%s (HTTP %ld): check the gateway's 'secret'",
			gw->url, gw->secret_file ? " from '" : "",
			gw->secret_file ? gw->secret_file : "", gw->secret_file ? "'" : "",
			req->status);
	if (req->status == 404)
		return tg_err_set(err, TG_ENOTFOUND, "not found");
	if (req->status < 200 || req->status >= 300) {
		const char *msg = NULL;
		cJSON *reply = cJSON_ParseWithLength(tg_buf_cstr(&req->reply), req->reply.len);
		cJSON *m = cJSON_GetObjectItemCaseSensitive(reply, "message");
		int rc;

		if (cJSON_IsString(m))
			msg = m->valuestring;
		rc = tg_err_set(err, TG_ERROR, "gateway answered %s %s with HTTP %ld%s%.200s",
				req->method, req->endpoint, req->status, msg ? ": " : "",
				msg ? msg : "");
		cJSON_Delete(reply);
		return rc;
	}
	return 0;
}

/* One request on the keep-alive handle, with retries. */
static int perform(struct tg_gateway *gw, struct request *req, struct tg_err *err)
{
	int attempt;
	long backoff = 100;

	if (refresh_secret(gw, err))
		return err ? err->code : TG_ERROR;
	for (attempt = 0;; attempt++) {
		request_setup(gw, gw->easy, req);
		request_finish(gw, gw->easy, req, curl_easy_perform(gw->easy));
		if (!retryable(req) || attempt >= gw->retries)
			break;
		tg_log_kv(TG_LOG_DEBUG, "retrying gateway request", "method", req->method,
			  "endpoint", req->endpoint, NULL);
		sleep_ms(backoff);
		backoff *= 2;
	}
	return request_result(gw, req, err);
}

int tg_gateway_check(struct tg_gateway *gw, struct tg_err *err)
{
	struct request req;
	int rc;

	request_init(&req, "GET", tg_xstrdup("/tyk/apis"), "/tyk/apis", NULL, gw->max_list_bytes);
	rc = perform(gw, &req, err);
	request_release(&req);
	if (rc == TG_ENOTFOUND)
		return tg_err_set(
			err, TG_ERROR,
			"'%s' does not look like a Tyk Gateway: GET /tyk/apis answered 404",
			gw->url);
	return rc;
}

/* The classic list also holds OAS APIs in classic form: drop those. */
static void drop_oas_from_classic(cJSON *list)
{
	cJSON *item = list ? list->child : NULL, *next;

	for (; item; item = next) {
		next = item->next;
		if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(item, "is_oas")))
			cJSON_Delete(cJSON_DetachItemViaPointer(list, item));
	}
}

static int parse_reply(cJSON **out, const struct request *req, const char *what, struct tg_err *err)
{
	cJSON *json = cJSON_ParseWithLength(tg_buf_cstr(&req->reply), req->reply.len);

	if (!json)
		return tg_err_set(err, TG_ERROR, "gateway sent invalid JSON for %s %s", req->method,
				  what);
	*out = json;
	return 0;
}

static void list_request(struct tg_gateway *gw, struct request *req, enum tg_kind kind,
			 tg_gateway_progress_fn progress, void *progress_ctx)
{
	size_t hint = gw->list_len_hint[kind];

	request_init(req, "GET", tg_xstrdup(kind_collection(kind)), kind_collection(kind), NULL,
		     gw->max_list_bytes);
	/* A little over the last length: a list that grew a bit still fits. */
	req->reply_hint = hint + hint / 16;
	req->progress = progress;
	req->progress_ctx = progress_ctx;
}

static void list_reply(struct tg_gateway *gw, struct request *req, enum tg_kind kind, char **body,
		       size_t *len, size_t *dropped)
{
	gw->list_len_hint[kind] = req->received;
	*len = req->reply.len;
	*dropped = req->dropped;
	*body = req->reply.ptr ? tg_buf_detach(&req->reply) : tg_xstrdup("");
}

int tg_gateway_list_raw(struct tg_gateway *gw, enum tg_kind kind, char **body, size_t *len,
			struct tg_err *err)
{
	struct request req;
	size_t dropped;
	int rc;

	*body = NULL;
	*len = 0;
	list_request(gw, &req, kind, NULL, NULL);
	rc = perform(gw, &req, err);
	if (!rc)
		list_reply(gw, &req, kind, body, len, &dropped);
	request_release(&req);
	return rc;
}

static void run_batch(struct tg_gateway *gw, struct request *reqs, const size_t *idx, size_t n);

int tg_gateway_list_all_raw(struct tg_gateway *gw, struct tg_list_reply replies[TG_KIND_COUNT],
			    struct tg_err *err)
{
	static const size_t all[TG_KIND_COUNT] = { 0, 1, 2 };
	struct request reqs[TG_KIND_COUNT];
	int rc = 0;

	for (int k = 0; k < TG_KIND_COUNT; k++) {
		replies[k].body = NULL;
		replies[k].len = replies[k].dropped = 0;
	}
	if (refresh_secret(gw, err))
		return err ? err->code : TG_ERROR;
	for (int k = 0; k < TG_KIND_COUNT; k++)
		list_request(gw, &reqs[k], (enum tg_kind)k, replies[k].progress,
			     replies[k].progress_ctx);
	/* All at once: the gateway builds each list whole before it sends a
	 * byte, and builds them side by side; a list that arrives is read
	 * while the others are still being built. */
	run_batch(gw, reqs, all, TG_KIND_COUNT);
	for (int k = 0; k < TG_KIND_COUNT; k++) {
		/* A failed call is tried again alone, with perform's retries. */
		if (!rc && retryable(&reqs[k]) && gw->retries > 0)
			rc = perform(gw, &reqs[k], err);
		else if (!rc)
			rc = request_result(gw, &reqs[k], err);
		if (!rc)
			list_reply(gw, &reqs[k], (enum tg_kind)k, &replies[k].body, &replies[k].len,
				   &replies[k].dropped);
		request_release(&reqs[k]);
	}
	if (rc)
		for (int k = 0; k < TG_KIND_COUNT; k++) {
			free(replies[k].body);
			replies[k].body = NULL;
			replies[k].len = 0;
		}
	return rc;
}

int tg_gateway_parse_list(enum tg_kind kind, const char *data, size_t len, cJSON **out,
			  struct tg_err *err)
{
	cJSON *list = cJSON_ParseWithLength(data, len);

	*out = NULL;
	if (!list)
		return tg_err_set(err, TG_ERROR, "gateway sent invalid JSON for GET %s",
				  kind_collection(kind));
	if (cJSON_IsNull(list)) {
		/* An empty gateway may answer null instead of []. */
		cJSON_Delete(list);
		list = cJSON_CreateArray();
	}
	if (!cJSON_IsArray(list)) {
		cJSON_Delete(list);
		return tg_err_set(err, TG_ERROR, "gateway answered GET %s with a non-list",
				  kind_collection(kind));
	}
	if (kind == TG_KIND_API)
		drop_oas_from_classic(list);
	*out = list;
	return 0;
}

int tg_gateway_list(struct tg_gateway *gw, enum tg_kind kind, cJSON **out, struct tg_err *err)
{
	char *body = NULL;
	size_t len = 0;
	int rc = tg_gateway_list_raw(gw, kind, &body, &len, err);

	if (!rc)
		rc = tg_gateway_parse_list(kind, body, len, out, err);
	free(body);
	return rc;
}

static char *item_path(enum tg_kind kind, const char *id)
{
	char *escaped = curl_easy_escape(NULL, id, 0);
	char *path = tg_xasprintf("%s/%s", kind_collection(kind), escaped);

	curl_free(escaped);
	return path;
}

int tg_gateway_get(struct tg_gateway *gw, enum tg_kind kind, const char *id, cJSON **out,
		   struct tg_err *err)
{
	struct request req;
	int rc;

	request_init(&req, "GET", item_path(kind, id), kind_item_endpoint(kind), NULL,
		     ONE_BODY_CAP);
	rc = perform(gw, &req, err);
	if (!rc)
		rc = parse_reply(out, &req, kind_item_endpoint(kind), err);
	request_release(&req);
	return rc;
}

int tg_gateway_reload(struct tg_gateway *gw, struct tg_err *err)
{
	struct request req;
	int rc;

	request_init(&req, "GET", tg_xstrdup("/tyk/reload?block=true"), "/tyk/reload", NULL,
		     ONE_BODY_CAP);
	rc = perform(gw, &req, err);
	request_release(&req);
	if (rc)
		tg_err_prefix(err, "cannot reload gateway");
	return rc;
}

static void write_request(struct request *req, const struct tg_write *w)
{
	switch (w->op) {
	case TG_WRITE_CREATE:
		/* POST is an upsert on the gateway; create goes to the collection. */
		request_init(req, "POST", tg_xstrdup(kind_collection(w->kind)),
			     kind_collection(w->kind), cJSON_PrintUnformatted(w->body),
			     ONE_BODY_CAP);
		break;
	case TG_WRITE_UPDATE:
		request_init(req, "PUT", item_path(w->kind, w->id), kind_item_endpoint(w->kind),
			     cJSON_PrintUnformatted(w->body), ONE_BODY_CAP);
		break;
	case TG_WRITE_DELETE:
		request_init(req, "DELETE", item_path(w->kind, w->id), kind_item_endpoint(w->kind),
			     NULL, ONE_BODY_CAP);
		break;
	}
}

/* Deleting a missing policy answers 500: ask whether it is really gone. */
static int delete_result(struct tg_gateway *gw, struct tg_write *w, const struct request *req,
			 struct tg_err *err)
{
	cJSON *obj = NULL;
	int rc = request_result(gw, req, err);

	if (rc == TG_ENOTFOUND)
		return 0;
	if (rc && w->kind == TG_KIND_POLICY && req->status == 500) {
		if (tg_gateway_get(gw, w->kind, w->id, &obj, NULL) == TG_ENOTFOUND)
			rc = 0;
		cJSON_Delete(obj);
	}
	return rc;
}

/* Runs the requests listed in idx[0..n) through the multi handle, no more
 * in flight than the window allows (read again as each one ends). */
static void run_batch(struct tg_gateway *gw, struct request *reqs, const size_t *idx, size_t n)
{
	CURL **idle = tg_xcalloc((size_t)gw->max_concurrency, sizeof(*idle));
	size_t n_idle = 0, next = 0, active = 0, i;
	int running = 0, left;
	CURLMsg *msg;

	for (i = 0; i < (size_t)gw->max_concurrency; i++)
		idle[n_idle++] = curl_easy_init();
	for (;;) {
		while (next < n && n_idle > 0 && active < (size_t)tg_gateway_write_window(gw)) {
			CURL *h = idle[--n_idle];

			request_setup(gw, h, &reqs[idx[next++]]);
			curl_multi_add_handle(gw->multi, h);
			active++;
		}
		if (!active)
			break;
		curl_multi_perform(gw->multi, &running);
		while ((msg = curl_multi_info_read(gw->multi, &left)) != NULL) {
			struct request *req = NULL;
			CURL *h = msg->easy_handle;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(h, CURLINFO_PRIVATE, (char **)&req);
			request_finish(gw, h, req, msg->data.result);
			adapt_window(gw, req);
			curl_multi_remove_handle(gw->multi, h);
			idle[n_idle++] = h;
			active--;
		}
		if (active > 0)
			curl_multi_poll(gw->multi, NULL, 0, 1000, NULL);
	}
	for (i = 0; i < n_idle; i++)
		curl_easy_cleanup(idle[i]);
	free(idle);
}

int tg_gateway_write_all(struct tg_gateway *gw, struct tg_write *writes, size_t n,
			 struct tg_err *err)
{
	struct request *reqs = NULL;
	size_t *pending = NULL, npending = n, i, j;
	long backoff = 100;
	int attempt;

	if (n == 0)
		return 0;
	if (refresh_secret(gw, err))
		return err ? err->code : TG_ERROR;
	reqs = tg_xcalloc(n, sizeof(*reqs));
	pending = tg_xcalloc(n, sizeof(*pending));
	for (i = 0; i < n; i++) {
		write_request(&reqs[i], &writes[i]);
		pending[i] = i;
	}
	for (attempt = 0; npending > 0; attempt++) {
		run_batch(gw, reqs, pending, npending);
		for (i = 0, j = 0; i < npending; i++) {
			struct request *req = &reqs[pending[i]];
			int retry =
				retryable(req) && attempt < gw->retries &&
				!(writes[pending[i]].op == TG_WRITE_DELETE && req->status == 500);

			if (retry)
				pending[j++] = pending[i];
		}
		npending = j;
		if (npending > 0) {
			sleep_ms(backoff);
			backoff *= 2;
		}
	}
	for (i = 0; i < n; i++) {
		struct tg_err werr = { 0, "" };

		if (writes[i].op == TG_WRITE_DELETE)
			writes[i].rc = delete_result(gw, &writes[i], &reqs[i], &werr);
		else
			writes[i].rc = request_result(gw, &reqs[i], &werr);
		memcpy(writes[i].error, werr.msg, sizeof(writes[i].error));
		request_release(&reqs[i]);
	}
	free(reqs);
	free(pending);
	return 0;
}
