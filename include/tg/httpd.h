/*
 * The daemon's HTTP server (libmicrohttpd): /metrics, /healthz, /readyz,
 * /api/v1/syncs... and /hooks/bitbucket.
 *
 * Threads: libmicrohttpd runs its own listening thread and one thread per
 * connection (bounded by max_connections), so a slow client or a request
 * waiting for a pass stalls only itself.  The server never touches git or
 * the gateway: every route calls one of the ops below, which read a status
 * snapshot or enqueue a trigger under the daemon's lock.
 *
 * Limits: request bodies over 1 MiB are refused (413), per-connection
 * memory is bounded, idle connections are closed after connection_timeout.
 *
 * Authentication is the endpoints' business (webhook signatures, OIDC
 * bearer tokens): the server passes every POST on with the facts they
 * need, whether the listener is on loopback and what role it has, after
 * refusing what a browser could send cross-site.
 */
#ifndef TG_HTTPD_H
#define TG_HTTPD_H

#include "tg/buf.h"
#include "tg/common.h"

#define TG_HTTPD_MAX_BODY ((size_t)1024 * 1024)

/* What a listener serves. */
enum tg_httpd_role {
	TG_HTTPD_MAIN,   /* everything */
	TG_HTTPD_PROBES, /* /healthz, /readyz, /metrics */
	TG_HTTPD_PUBLIC  /* /hooks/bitbucket, /healthz and the API's POSTs (tokens required) */
};

/* One request as an endpoint sees it.  Valid during the call only. */
struct tg_http_request {
	const char *body; /* raw bytes, NUL-terminated for convenience */
	size_t body_len;
	/* A request header (case-insensitive name) or query argument, NULL
	 * when absent. */
	const char *(*header)(const struct tg_http_request *req, const char *name);
	const char *(*query)(const struct tg_http_request *req, const char *name);
	void *conn;   /* the transport's, for the lookups */
	int loopback; /* the listener is bound to a loopback address */
	enum tg_httpd_role role;
	const char *remote; /* client address, for logs */
};

/*
 * Callbacks (called from libmicrohttpd's threads, concurrently).  Each
 * writes a response body to out and returns the HTTP status (401 answers
 * carry WWW-Authenticate: Bearer on the API routes).
 */
struct tg_httpd_ops {
	void *ctx;
	int (*metrics)(void *ctx, struct tg_buf *out); /* text/plain; version=0.0.4 */
	int (*healthz)(void *ctx, struct tg_buf *out); /* text */
	int (*readyz)(void *ctx, struct tg_buf *out);  /* text */
	/* JSON; name NULL lists every sync. */
	int (*syncs)(void *ctx, const char *name, struct tg_buf *out);
	/* JSON; wait_ms 0: enqueue and return 202, otherwise wait up to
	 * wait_ms for the pass and return its result.  Decides who may. */
	int (*reconcile)(void *ctx, const char *name, long long wait_ms,
			 const struct tg_http_request *req, struct tg_buf *out);
	int (*suspend)(void *ctx, const char *name, int suspend, const struct tg_http_request *req,
		       struct tg_buf *out); /* JSON */
	/* GET /api/v1/syncs/{name}/history, JSON. */
	int (*history)(void *ctx, const char *name, struct tg_buf *out);
	/* POST /api/v1/syncs/{name}/rollback?to=SHA, JSON; waits like
	 * reconcile.  Decides who may. */
	int (*rollback)(void *ctx, const char *name, long long wait_ms,
			const struct tg_http_request *req, struct tg_buf *out);
	/* POST /hooks/bitbucket, JSON.  NULL answers 404. */
	int (*bitbucket_hook)(void *ctx, const struct tg_http_request *req, struct tg_buf *out);
	/* Whether webhooks are configured at all; when it says no (or is
	 * NULL and bitbucket_hook is), /hooks/bitbucket answers 404. */
	int (*hooks_enabled)(void *ctx);
	/* n connections of this listener were cut for taking longer than
	 * request_timeout to send a request.  May be NULL. */
	void (*requests_cut)(void *ctx, enum tg_httpd_role role, unsigned n);
};

struct tg_httpd_opts {
	const char *listen;            /* "host:port", "[v6]:port" or ":port" (all addresses) */
	unsigned max_connections;      /* 0 = 64 */
	unsigned connection_timeout_s; /* idle time; 0 = 30 */
	long long request_timeout_ms;  /* per request, head and body; 0 = 10 s */
	long long max_wait_ms;         /* cap of ?wait=true; 0 = 10 min */
	enum tg_httpd_role role;
};

struct tg_httpd;

/* What a request path asks for.  Pure, for the router and its fuzzer. */
enum tg_route_kind {
	TG_ROUTE_METRICS,
	TG_ROUTE_HEALTHZ,
	TG_ROUTE_READYZ,
	TG_ROUTE_HOOK,
	TG_ROUTE_SYNCS, /* /api/v1/syncs */
	TG_ROUTE_SYNC,  /* /api/v1/syncs/{name} */
	TG_ROUTE_RECONCILE,
	TG_ROUTE_SUSPEND,
	TG_ROUTE_RESUME, /* /api/v1/syncs/{name}/... */
	TG_ROUTE_HISTORY,
	TG_ROUTE_ROLLBACK
};
struct tg_route {
	enum tg_route_kind kind;
	int post;       /* the method it takes: POST, else GET (or HEAD) */
	char name[256]; /* the sync, for the per-sync routes */
};
/* Fills out for path; TG_ENOTFOUND when no endpoint matches. */
int tg_httpd_route(struct tg_route *out, const char *path);
/* Whether a listener of that role serves the route (else 404). */
int tg_httpd_role_serves(enum tg_httpd_role role, enum tg_route_kind kind);

/*
 * Decodes %XX in place, as libmicrohttpd would, except %00: a NUL would
 * silently cut the path ("/api/v1/syncs/prod%00x" would name "prod"), so it
 * stays as it is and such a path names no sync.  Returns the new length.
 */
size_t tg_httpd_unescape(char *s);

/*
 * Binds and starts serving.  ops is copied.  Errors: TG_EINVALID for a
 * listen address that does not parse or resolve, TG_ERROR when it cannot
 * bind (message names the address).
 */
int tg_httpd_start(struct tg_httpd **out, const struct tg_httpd_opts *opts,
		   const struct tg_httpd_ops *ops, struct tg_err *err);
/* Stops accepting, waits for running handlers, frees.  NULL is a no-op. */
void tg_httpd_stop(struct tg_httpd *h);

/*
 * Splits a listen address into host (NULL for all addresses) and port.
 * *host is owned by the caller.  TG_EINVALID when it does not parse.
 */
int tg_httpd_parse_listen(const char *listen, char **host, unsigned *port, struct tg_err *err);

/* 1 when host is a loopback address (127.0.0.0/8, ::1, "localhost"). */
int tg_httpd_host_is_loopback(const char *host);

/* Parses "?wait=" style booleans and "timeout=30s" durations for handlers
 * (exposed for tests): returns the wait in ms (0: no wait), or -1 when a
 * value is malformed. */
long long tg_httpd_wait_ms(const char *wait, const char *timeout, long long max_wait_ms);

#endif
