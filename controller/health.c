/* Post-apply health probes (see include/tg/health.h). */
#include "tg/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "tg/buf.h"
#include "tg/banned.h"

/* Enough of a body to recognise the gateway's own answers. */
#define PROBE_BODY_MAX 4096

static const char *const verdict_names[] = { "up",        "guarded", "no_route", "upstream_down",
					     "no_answer", "skipped" };

const char *tg_health_verdict_name(enum tg_health_verdict v)
{
	return verdict_names[v];
}

int tg_health_ok(enum tg_health_verdict v)
{
	return v == TG_HEALTH_UP || v == TG_HEALTH_GUARDED || v == TG_HEALTH_SKIPPED;
}

/* The body, trimmed of white space, is exactly s. */
static int body_is(const struct tg_health_answer *a, const char *s)
{
	const char *p = a->body;
	size_t n = a->body_len, m = strlen(s);

	if (!p)
		return 0;
	while (n && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == '\t'))
		n--;
	return n == m && !memcmp(p, s, m);
}

enum tg_health_verdict tg_health_judge(const struct tg_health_answer *a)
{
	if (a->status <= 0)
		return TG_HEALTH_NO_ANSWER;
	if (a->tyk_generated) {
		if (a->status >= 500)
			return TG_HEALTH_UPSTREAM;
		if (a->status == 404)
			return TG_HEALTH_NO_ROUTE;
		return TG_HEALTH_GUARDED;
	}
	/* The router's answer for a path no API listens on. */
	if (a->status == 404 && !a->rate_headers && body_is(a, "Not Found"))
		return TG_HEALTH_NO_ROUTE;
	return TG_HEALTH_UP;
}

char *tg_health_path(const char *listen_path, const char *health_path)
{
	const char *lp = listen_path && *listen_path ? listen_path : "/";
	size_t n = strlen(lp);

	if (!health_path || !*health_path)
		return tg_xasprintf("%s%s", lp[0] == '/' ? "" : "/", lp);
	return tg_xasprintf("%s%s%s%s", lp[0] == '/' ? "" : "/", lp, lp[n - 1] == '/' ? "" : "/",
			    health_path);
}

struct probe_io {
	struct tg_buf body;
	int tyk_generated, rate_headers;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct probe_io *io = ud;
	size_t n = size * nmemb, room = PROBE_BODY_MAX - io->body.len;

	/* Only the start matters; the rest is read and dropped. */
	tg_buf_put(&io->body, ptr, n < room ? n : room);
	return n;
}

static int header_named(const char *line, size_t len, const char *name)
{
	size_t m = strlen(name);

	return len > m && line[m] == ':' && !strncasecmp(line, name, m);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct probe_io *io = ud;
	size_t n = size * nmemb;

	/* A new status line (redirect, 100-continue) starts over. */
	if (n >= 5 && !strncmp(ptr, "HTTP/", 5))
		io->tyk_generated = io->rate_headers = 0;
	if (header_named(ptr, n, "X-Generator")) {
		const char *v = ptr + strlen("X-Generator") + 1;
		size_t vl = n - strlen("X-Generator") - 1;

		while (vl && (*v == ' ' || *v == '\t'))
			v++, vl--;
		io->tyk_generated = vl >= 7 && !strncasecmp(v, "tyk.io", 6);
	}
	if (header_named(ptr, n, "X-Ratelimit-Limit") ||
	    header_named(ptr, n, "X-Ratelimit-Remaining"))
		io->rate_headers = 1;
	return n;
}

static void sleep_ms(long long ms)
{
	struct timespec ts;

	if (ms <= 0)
		return;
	ts.tv_sec = (time_t)(ms / 1000);
	ts.tv_nsec = (long)(ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* One request; fills the answer (status 0 when there was none). */
static void probe_once(CURL *h, const struct tg_health_opts *o, const struct tg_health_target *t,
		       struct probe_io *io, struct tg_health_answer *a)
{
	struct curl_slist *hdrs = NULL;
	char *url = tg_xasprintf("%s%s", o->base_url, t->path);
	char *host = NULL;
	long status = 0;

	io->body.len = 0;
	io->tyk_generated = io->rate_headers = 0;
	if (t->domain && *t->domain) {
		host = tg_xasprintf("Host: %s", t->domain);
		hdrs = curl_slist_append(hdrs, host);
	}
	hdrs = curl_slist_append(hdrs, "User-Agent: tyk-gitops-health/1");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	a->status = status;
	a->tyk_generated = io->tyk_generated;
	a->rate_headers = io->rate_headers;
	a->body = io->body.ptr;
	a->body_len = io->body.len;
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdrs);
	free(host);
	free(url);
}

size_t tg_health_probe(const struct tg_health_opts *o, struct tg_health_target *targets, size_t n,
		       struct tg_err *err)
{
	struct probe_io io;
	CURL *h = NULL;
	size_t bad = 0, probed = 0;
	long long gap = o->rate > 0 ? 1000 / o->rate : 0, last = 0;

	for (size_t i = 0; i < n; i++) {
		targets[i].verdict = TG_HEALTH_NO_ANSWER;
		targets[i].status = 0;
		targets[i].tries = 0;
	}
	if (!o->base_url ||
	    (strncmp(o->base_url, "http://", 7) && strncmp(o->base_url, "https://", 8))) {
		tg_err_set(err, TG_EINVALID, "health check needs an http(s) url for the data port");
		return n;
	}
	h = curl_easy_init();
	if (!h) {
		tg_err_set(err, TG_ERROR, "cannot start the health check: libcurl failed");
		return n;
	}
	tg_buf_init(&io.body, PROBE_BODY_MAX + 1);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)o->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &io);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &io);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	if (o->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	if (o->insecure_skip_verify) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	for (size_t i = 0; i < n; i++) {
		struct tg_health_target *t = &targets[i];

		if ((long long)probed >= o->max_probes) {
			t->verdict = TG_HEALTH_SKIPPED;
			continue;
		}
		probed++;
		for (long long k = 0; k < o->attempts; k++) {
			struct tg_health_answer a;
			long long now = tg_now_ms();

			/* The rate bounds every request, retries included. */
			if (last && now - last < gap)
				sleep_ms(gap - (now - last));
			if (k)
				sleep_ms(o->interval_ms);
			last = tg_now_ms();
			probe_once(h, o, t, &io, &a);
			t->tries++;
			t->status = a.status;
			t->verdict = tg_health_judge(&a);
			if (tg_health_ok(t->verdict))
				break;
		}
		if (!tg_health_ok(t->verdict))
			bad++;
	}
	tg_buf_release(&io.body);
	curl_easy_cleanup(h);
	return bad;
}
