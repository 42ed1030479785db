/*
 * Post-apply health check: after a pass applies a commit, each created or
 * changed API is probed through the gateway's data port, at its listen
 * path (or a health path below it), and the answer is judged: did it come
 * from the upstream, or did the gateway answer for a route it does not
 * have or an upstream it cannot reach?
 *
 * How the two are told apart (Tyk Gateway, checked against the real one):
 *   - an answer the gateway makes itself carries "X-Generator: tyk.io":
 *     500/502/503/504 for a dead or failing upstream ("There was a problem
 *     proxying the request"), 404, and 401/403/429/400 for a request it
 *     refused (missing key...).  A 404 or 5xx of its own is unhealthy; a
 *     refusal means the route is loaded and guarded: healthy, though the
 *     upstream was not reached (reported as "guarded");
 *   - a route the gateway does not have is answered by its router with a
 *     bare 404 "Not Found", without X-Generator and without the
 *     X-Ratelimit-* headers every proxied answer carries: unhealthy;
 *   - anything else came through the proxy from the upstream: healthy,
 *     whatever its status (an upstream 503 is the upstream answering);
 *   - no answer within the timeout, or a connection error: unhealthy.
 *
 * Probes are bounded: at most max_probes APIs per pass (the rest are
 * reported as not probed), at most `rate` requests per second, `attempts`
 * tries each with `interval` between them.  Probing runs on the calling
 * thread (the reconcile worker) with one reused libcurl handle.
 */
#ifndef TG_HEALTH_H
#define TG_HEALTH_H

#include <stddef.h>

#include "tg/common.h"

enum tg_health_verdict {
	TG_HEALTH_UP,        /* the upstream answered */
	TG_HEALTH_GUARDED,   /* the gateway refused the probe (auth): the route is live */
	TG_HEALTH_NO_ROUTE,  /* the gateway has no such route */
	TG_HEALTH_UPSTREAM,  /* the gateway could not reach the upstream (its own 5xx) */
	TG_HEALTH_NO_ANSWER, /* connection error or timeout */
	TG_HEALTH_SKIPPED    /* over max_probes: not probed */
};

/* "up", "guarded", "no_route", "upstream_down", "no_answer", "skipped" */
const char *tg_health_verdict_name(enum tg_health_verdict v);
/* Whether a verdict counts as healthy (up, guarded, skipped). */
int tg_health_ok(enum tg_health_verdict v);

/* What a probe saw, for tg_health_judge. */
struct tg_health_answer {
	long status;       /* HTTP status, 0 when there was no answer */
	int tyk_generated; /* X-Generator: tyk.io */
	int rate_headers;  /* an X-Ratelimit-* header was present */
	const char *body;  /* may be NULL */
	size_t body_len;
};

/* Pure: the verdict on one answer (see above). */
enum tg_health_verdict tg_health_judge(const struct tg_health_answer *a);

struct tg_health_opts {
	const char *base_url; /* the gateway's data port: "http://host:8080" */
	const char *ca_file;  /* for https, or NULL */
	int insecure_skip_verify;
	long long timeout_ms;
	long long attempts;
	long long interval_ms;
	long long max_probes;
	long long rate; /* probes per second */
};

struct tg_health_target {
	const char *id;     /* API id, for the report */
	const char *path;   /* request path: listen path (+ health path) */
	const char *domain; /* Host header, or NULL */
	/* filled by tg_health_probe */
	enum tg_health_verdict verdict;
	long status;
	int tries;
};

/*
 * Probes targets[0..n) (see above) and fills their verdicts.  Returns the
 * number of unhealthy targets.  err is set only when probing could not
 * start at all (bad base URL, libcurl unusable): then every target is
 * TG_HEALTH_NO_ANSWER and n is returned.
 */
size_t tg_health_probe(const struct tg_health_opts *opts, struct tg_health_target *targets,
		       size_t n, struct tg_err *err);

/* The request path of an API: listen path, then health_path below it
 * ("/orders/" + "ping" = "/orders/ping").  Caller frees. */
char *tg_health_path(const char *listen_path, const char *health_path);

#endif
