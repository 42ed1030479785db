/*
 * HTTP server (see include/tg/httpd.h).
 *
 * This file is only transport and routing: limits, methods, listener
 * roles, cross-site refusals, bodies, responses.  What a route answers, and
 * who may call it, is decided by the daemon through struct tg_httpd_ops.
 */
#include "tg/httpd.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "tg/conndeadline.h"
#include "tg/log.h"
#include "tg/banned.h"

#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_TIMEOUT_S 30
/* Time for each request, head and body, to arrive (slow clients). */
#define DEFAULT_REQUEST_TIMEOUT_MS (10LL * 1000)
#define DEFAULT_MAX_WAIT_MS (10LL * 60 * 1000)
#define DEFAULT_WAIT_MS (60LL * 1000)
/* Headers and MHD's own buffers per connection. */
#define CONNECTION_MEMORY (64 * 1024)
#define PER_IP_CONNECTIONS 32
#define THREAD_STACK (256 * 1024)

struct tg_httpd {
	struct MHD_Daemon *mhd;
	struct tg_httpd_ops ops;
	long long max_wait_ms;
	int loopback; /* bound to a loopback address */
	enum tg_httpd_role role;
	char *listen;
	struct tg_conndeadlines *deadlines;
};

/* Per request, between libmicrohttpd's calls of the access handler. */
struct request {
	struct tg_buf body;
	int too_large;
};

long long tg_httpd_wait_ms(const char *wait, const char *timeout, long long max_wait_ms)
{
	long long ms = DEFAULT_WAIT_MS;

	if (max_wait_ms <= 0)
		max_wait_ms = DEFAULT_MAX_WAIT_MS;
	if (!wait || !strcmp(wait, "false") || !strcmp(wait, "0"))
		return 0;
	if (strcmp(wait, "true") && strcmp(wait, "1") && *wait)
		return -1;
	if (timeout && tg_parse_duration_ms(&ms, timeout))
		return -1;
	if (ms <= 0)
		ms = 1;
	return ms < max_wait_ms ? ms : max_wait_ms;
}

int tg_httpd_parse_listen(const char *listen, char **host, unsigned *port, struct tg_err *err)
{
	const char *colon, *h = listen;
	size_t hlen;
	long long p;

	*host = NULL;
	if (!listen || !*listen)
		return tg_err_set(err, TG_EINVALID, "listen address is empty");
	colon = strrchr(listen, ':');
	if (!colon || tg_parse_ll(&p, colon + 1, 0, 65535))
		return tg_err_set(
			err, TG_EINVALID,
			"invalid listen address '%s': expected host:port, [ipv6]:port or :port",
			listen);
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	} else if (memchr(h, ':', hlen)) {
		return tg_err_set(err, TG_EINVALID,
				  "invalid listen address '%s': put IPv6 addresses in brackets",
				  listen);
	}
	if (hlen)
		*host = tg_xstrndup(h, hlen);
	*port = (unsigned)p;
	return 0;
}

static int addr_is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;

		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		const unsigned char *b = in6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return 1;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && b[12] == 127;
	}
	return 0;
}

int tg_httpd_host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (!host)
		return 0;
	if (!strcmp(host, "localhost"))
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6) ||
		       (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	return 0;
}

/* --- responses --- */

static enum MHD_Result respond_auth(struct MHD_Connection *c, int status, const char *type,
				    struct tg_buf *body, int bearer)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t len;
	char *data;

	if (tg_buf_overflowed(body)) {
		/* Never serve a cut document. */
		tg_buf_clear(body);
		tg_buf_puts(body, "{\"error\":\"response too large\"}\n");
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		type = "application/json";
	}
	len = body->len;
	data = tg_buf_detach(body);

	r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, POST");
	/* RFC 6750: how to authenticate, and why a token was refused. */
	if (bearer && status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"tyk-gitops\", error=\"invalid_token\"");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond(struct MHD_Connection *c, int status, const char *type,
			       struct tg_buf *body)
{
	return respond_auth(c, status, type, body, 0);
}

static enum MHD_Result respond_error(struct MHD_Connection *c, int status, const char *msg)
{
	struct tg_buf out = TG_BUF_INIT;

	tg_buf_puts(&out, "{\"error\":\"");
	tg_buf_put_json_escaped(&out, msg);
	tg_buf_puts(&out, "\"}\n");
	return respond(c, status, "application/json", &out);
}

/* An error answer after which the connection is closed, for requests
 * whose framing cannot be trusted. */
static enum MHD_Result respond_close(struct MHD_Connection *c, int status, const char *msg)
{
	struct MHD_Response *r;
	enum MHD_Result ret;
	struct tg_buf out = TG_BUF_INIT;
	size_t len;
	char *data;

	tg_buf_puts(&out, "{\"error\":\"");
	tg_buf_put_json_escaped(&out, msg);
	tg_buf_puts(&out, "\"}\n");
	len = out.len;
	data = tg_buf_detach(&out);
	r = MHD_create_response_from_buffer(len, data, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(data);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

/* --- request checks --- */

size_t tg_httpd_unescape(char *s)
{
	char *w = s;

	for (const char *r = s; *r; r++) {
		int hi, lo;

		if (r[0] == '%' && (hi = tg_hex_digit(r[1])) >= 0 &&
		    (lo = tg_hex_digit(r[2])) >= 0 && (hi || lo)) {
			*w++ = (char)(hi * 16 + lo);
			r += 2;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return (size_t)(w - s);
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return tg_httpd_unescape(s);
}

static int url_has_nul(const char *url)
{
	return strstr(url, "%00") != NULL;
}

/* Host of a request to a loopback listener: a browser tricked by DNS
 * rebinding sends the attacker's name here. */
static int loopback_host(struct MHD_Connection *c)
{
	const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	char name[256];
	size_t n;

	if (!host)
		return 1; /* HTTP/1.0 */
	if (host[0] == '[') {
		const char *end = strchr(host, ']');

		n = end ? (size_t)(end - host - 1) : 0;
		host++;
	} else {
		const char *colon = strchr(host, ':');

		n = colon ? (size_t)(colon - host) : strlen(host);
	}
	if (n == 0 || n >= sizeof(name))
		return 0;
	memcpy(name, host, n);
	name[n] = '\0';
	return !strcasecmp(name, "localhost") || tg_httpd_host_is_loopback(name);
}

/*
 * A POST a web page could make without the user knowing (CSRF): browsers
 * send such "simple" requests cross-site without asking, always with an
 * Origin (when cross-site) or one of three content types.  JSON or no body
 * needs a preflight this server never grants.
 */
static int cross_site(struct MHD_Connection *c)
{
	static const char *const simple[] = { "application/x-www-form-urlencoded",
					      "multipart/form-data", "text/plain" };
	const char *type =
		MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);

	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"))
		return 1;
	for (size_t i = 0; type && i < TG_ARRAY_SIZE(simple); i++)
		if (!strncasecmp(type, simple[i], strlen(simple[i])))
			return 1;
	return 0;
}

static const char *req_header(const struct tg_http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static const char *req_query(const struct tg_http_request *req, const char *name)
{
	return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

static void client_address(struct MHD_Connection *c, char *out, size_t n)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(out, n, "?");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
			  (socklen_t)n);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr,
			  out, (socklen_t)n);
}

static const char *content_type(int json)
{
	return json ? "application/json" : "text/plain; charset=utf-8";
}

/* --- routing --- */

enum route_method { GET, POST };

int tg_httpd_route(struct tg_route *out, const char *path)
{
	static const char prefix[] = "/api/v1/syncs";
	static const struct {
		const char *path, *action;
		enum tg_route_kind kind;
		int post;
	} fixed[] = {
		{ "/metrics", NULL, TG_ROUTE_METRICS, 0 },
		{ "/healthz", NULL, TG_ROUTE_HEALTHZ, 0 },
		{ "/readyz", NULL, TG_ROUTE_READYZ, 0 },
		{ "/hooks/bitbucket", NULL, TG_ROUTE_HOOK, 1 },
		{ NULL, "reconcile", TG_ROUTE_RECONCILE, 1 },
		{ NULL, "suspend", TG_ROUTE_SUSPEND, 1 },
		{ NULL, "resume", TG_ROUTE_RESUME, 1 },
		{ NULL, "history", TG_ROUTE_HISTORY, 0 },
		{ NULL, "rollback", TG_ROUTE_ROLLBACK, 1 },
	};
	const char *rest, *slash;
	size_t len;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < TG_ARRAY_SIZE(fixed); i++)
		if (fixed[i].path && !strcmp(path, fixed[i].path)) {
			out->kind = fixed[i].kind;
			out->post = fixed[i].post;
			return 0;
		}
	if (strncmp(path, prefix, sizeof(prefix) - 1))
		return TG_ENOTFOUND;
	rest = path + sizeof(prefix) - 1;
	if (!*rest || !strcmp(rest, "/")) {
		out->kind = TG_ROUTE_SYNCS;
		return 0;
	}
	if (*rest++ != '/')
		return TG_ENOTFOUND;
	slash = strchr(rest, '/');
	len = slash ? (size_t)(slash - rest) : strlen(rest);
	if (len == 0 || len >= sizeof(out->name))
		return TG_ENOTFOUND;
	memcpy(out->name, rest, len);
	out->name[len] = '\0';
	if (!slash) {
		out->kind = TG_ROUTE_SYNC;
		return 0;
	}
	for (size_t i = 0; i < TG_ARRAY_SIZE(fixed); i++)
		if (fixed[i].action && !strcmp(slash + 1, fixed[i].action)) {
			out->kind = fixed[i].kind;
			out->post = fixed[i].post;
			return 0;
		}
	out->name[0] = '\0';
	return TG_ENOTFOUND;
}

int tg_httpd_role_serves(enum tg_httpd_role role, enum tg_route_kind kind)
{
	switch (role) {
	case TG_HTTPD_PROBES:
		return kind == TG_ROUTE_METRICS || kind == TG_ROUTE_HEALTHZ ||
		       kind == TG_ROUTE_READYZ;
	case TG_HTTPD_PUBLIC:
		/* What Bitbucket and its pipelines call, nothing that tells
		 * the internet about the syncs. */
		return kind == TG_ROUTE_HOOK || kind == TG_ROUTE_HEALTHZ ||
		       kind == TG_ROUTE_RECONCILE || kind == TG_ROUTE_SUSPEND ||
		       kind == TG_ROUTE_RESUME || kind == TG_ROUTE_ROLLBACK;
	default: return 1;
	}
}

static int hooks_enabled(const struct tg_httpd *h)
{
	if (!h->ops.bitbucket_hook)
		return 0;
	return !h->ops.hooks_enabled || h->ops.hooks_enabled(h->ops.ctx);
}

static enum MHD_Result route(struct tg_httpd *h, struct MHD_Connection *c, const char *url,
			     enum route_method m, struct request *req)
{
	struct tg_buf out = TG_BUF_INIT;
	struct tg_http_request hr;
	struct tg_route r;
	char remote[64];
	int status;

	if (tg_httpd_route(&r, url))
		return respond_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
	if (!tg_httpd_role_serves(h->role, r.kind))
		return respond_error(
			c, MHD_HTTP_NOT_FOUND,
			h->role == TG_HTTPD_PROBES
				? "this port serves /healthz, /readyz and /metrics only"
				: "this port serves /hooks/bitbucket, /healthz and the API's POST "
				  "endpoints only");
	if (r.kind == TG_ROUTE_HOOK && !hooks_enabled(h))
		return respond_error(c, MHD_HTTP_NOT_FOUND,
				     "webhooks are not enabled: no sync has a webhook secret_file");
	if ((m == POST) != r.post)
		return respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED,
				     r.post ? "use POST" : "use GET");
	client_address(c, remote, sizeof(remote));
	memset(&hr, 0, sizeof(hr));
	hr.body = tg_buf_cstr(&req->body);
	hr.body_len = req->body.len;
	hr.header = req_header;
	hr.query = req_query;
	hr.conn = c;
	hr.loopback = h->loopback;
	hr.role = h->role;
	hr.remote = remote;
	switch (r.kind) {
	case TG_ROUTE_METRICS:
		status = h->ops.metrics(h->ops.ctx, &out);
		return respond(c, status, "text/plain; version=0.0.4; charset=utf-8", &out);
	case TG_ROUTE_HEALTHZ:
		return respond(c, h->ops.healthz(h->ops.ctx, &out), content_type(0), &out);
	case TG_ROUTE_READYZ:
		return respond(c, h->ops.readyz(h->ops.ctx, &out), content_type(0), &out);
	case TG_ROUTE_HOOK:
		/* Webhooks authenticate by HMAC signature, not by address or
		 * content type: no loopback or cross-site rule here. */
		status = h->ops.bitbucket_hook(h->ops.ctx, &hr, &out);
		return respond(c, status, content_type(1), &out);
	case TG_ROUTE_SYNCS:
	case TG_ROUTE_SYNC:
		status = h->ops.syncs(h->ops.ctx, r.kind == TG_ROUTE_SYNC ? r.name : NULL, &out);
		return respond(c, status, content_type(1), &out);
	case TG_ROUTE_HISTORY:
		if (!h->ops.history)
			return respond_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
		status = h->ops.history(h->ops.ctx, r.name, &out);
		return respond(c, status, content_type(1), &out);
	default: break;
	}
	if (cross_site(c))
		return respond_error(
			c, MHD_HTTP_FORBIDDEN,
			"refusing a POST a browser could send from another site: "
			"send no body or Content-Type: application/json, and no Origin");
	if (r.kind == TG_ROUTE_RECONCILE || r.kind == TG_ROUTE_ROLLBACK) {
		long long wait = tg_httpd_wait_ms(
			MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait"),
			MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "timeout"),
			h->max_wait_ms);

		if (wait < 0)
			return respond_error(
				c, MHD_HTTP_BAD_REQUEST,
				"wait must be true or false and timeout a duration such as 30s");
		if (r.kind == TG_ROUTE_ROLLBACK && !h->ops.rollback)
			return respond_error(c, MHD_HTTP_NOT_FOUND, "no such endpoint");
		status = r.kind == TG_ROUTE_ROLLBACK
				 ? h->ops.rollback(h->ops.ctx, r.name, wait, &hr, &out)
				 : h->ops.reconcile(h->ops.ctx, r.name, wait, &hr, &out);
	} else {
		status = h->ops.suspend(h->ops.ctx, r.name, r.kind == TG_ROUTE_SUSPEND, &hr, &out);
	}
	return respond_auth(c, status, content_type(1), &out, 1);
}

static struct tg_conndeadline *connection_deadline(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *info =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return info ? info->socket_context : NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	struct tg_httpd *h = cls;
	struct request *req = *con_cls;
	enum route_method m;

	(void)version;
	if (!req) {
		const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);
		long long n;

		req = tg_xcalloc(1, sizeof(*req));
		tg_buf_init(&req->body, TG_HTTPD_MAX_BODY);
		*con_cls = req;
		/* Both lengths: a proxy and this server could split the stream
		 * differently (request smuggling).  Answer and close. */
		if (cl && MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						      MHD_HTTP_HEADER_TRANSFER_ENCODING))
			return respond_close(c, MHD_HTTP_BAD_REQUEST,
					     "both Content-Length and Transfer-Encoding");
		if (url_has_nul(url))
			return respond_error(c, MHD_HTTP_BAD_REQUEST, "%00 in the path");
		/* A public listener (webhook_listen) sits behind a proxy that
		 * keeps the public Host, and grants nothing without a
		 * signature or token: rebinding gains nothing there. */
		if (h->loopback && h->role != TG_HTTPD_PUBLIC && !loopback_host(c))
			return respond_close(c, MHD_HTTP_FORBIDDEN,
					     "Host is not a loopback name (DNS rebinding?)");
		/* Refuse before reading a body we would not keep. */
		if (cl && (tg_parse_ll(&n, cl, 0, (long long)TG_HTTPD_MAX_BODY) != 0))
			return respond_error(c, MHD_HTTP_CONTENT_TOO_LARGE,
					     "request body over 1 MiB");
		return MHD_YES;
	}
	if (*upload_size) {
		if (!req->too_large && tg_buf_put(&req->body, upload, *upload_size))
			req->too_large = 1;
		*upload_size = 0;
		/* A chunked body with no length: stop reading, drop the connection. */
		return req->too_large ? MHD_NO : MHD_YES;
	}
	/* All of it is here: answering (perhaps waiting for a pass) is ours. */
	tg_conndeadlines_received(h->deadlines, connection_deadline(c));
	if (!strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD))
		m = GET;
	else if (!strcmp(method, MHD_HTTP_METHOD_POST))
		m = POST;
	else
		return respond_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or POST");
	return route(h, c, url, m, req);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct tg_httpd *h = cls;
	struct request *req = *con_cls;

	(void)toe;
	tg_conndeadlines_rearm(h->deadlines, connection_deadline(c));
	if (!req)
		return;
	tg_buf_release(&req->body);
	free(req);
	*con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode code)
{
	struct tg_httpd *h = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *fd =
			MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);

		*socket_context = fd ? tg_conndeadlines_add(h->deadlines, fd->connect_fd) : NULL;
	} else {
		tg_conndeadlines_remove(h->deadlines, *socket_context);
		*socket_context = NULL;
	}
}

static void on_requests_cut(void *cls, unsigned n)
{
	struct tg_httpd *h = cls;

	if (h->ops.requests_cut)
		h->ops.requests_cut(h->ops.ctx, h->role, n);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(line, sizeof(line), fmt, ap);
#pragma GCC diagnostic pop
	line[strcspn(line, "\n")] = '\0';
	tg_log_kv(TG_LOG_WARN, "http server", "error", line, NULL);
}

int tg_httpd_start(struct tg_httpd **out, const struct tg_httpd_opts *opts,
		   const struct tg_httpd_ops *ops, struct tg_err *err)
{
	struct addrinfo hints, *ai = NULL;
	struct tg_httpd *h = NULL;
	char *host = NULL, portstr[8];
	unsigned port = 0, flags;
	int rc, gai;

	rc = tg_httpd_parse_listen(opts->listen, &host, &port, err);
	if (rc)
		goto out;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(portstr, sizeof(portstr), "%u", port);
	gai = getaddrinfo(host, portstr, &hints, &ai);
	if (gai) {
		rc = tg_err_set(err, TG_EINVALID, "cannot resolve listen address '%s': %s",
				opts->listen, gai_strerror(gai));
		goto out;
	}
	h = tg_xcalloc(1, sizeof(*h));
	h->ops = *ops;
	h->listen = tg_xstrdup(opts->listen);
	h->max_wait_ms = opts->max_wait_ms > 0 ? opts->max_wait_ms : DEFAULT_MAX_WAIT_MS;
	h->loopback = addr_is_loopback(ai->ai_addr);
	h->role = opts->role;
	h->deadlines =
		tg_conndeadlines_new(opts->request_timeout_ms > 0 ? opts->request_timeout_ms
								  : DEFAULT_REQUEST_TIMEOUT_MS,
				     on_requests_cut, h);
	if (!h->deadlines) {
		rc = tg_err_set(err, TG_ERROR, "cannot start the HTTP request deadline thread");
		goto out;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
		MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->mhd = MHD_start_daemon(
		flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
		MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)(opts->max_connections ? opts->max_connections
						     : DEFAULT_MAX_CONNECTIONS),
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)PER_IP_CONNECTIONS,
		MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)(opts->connection_timeout_s ? opts->connection_timeout_s
							  : DEFAULT_TIMEOUT_S),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
		MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK, MHD_OPTION_UNESCAPE_CALLBACK,
		unescape, h, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_EXTERNAL_LOGGER,
		on_mhd_log, h, MHD_OPTION_END);
	if (!h->mhd) {
		rc = tg_err_set(err, TG_ERROR,
				"cannot listen on '%s': address in use or not available",
				opts->listen);
		goto out;
	}
	*out = h;
	h = NULL;
	rc = 0;
out:
	if (ai)
		freeaddrinfo(ai);
	free(host);
	tg_httpd_stop(h);
	return rc;
}

void tg_httpd_stop(struct tg_httpd *h)
{
	if (!h)
		return;
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	/* After the daemon: every connection has been removed by now. */
	tg_conndeadlines_free(h->deadlines);
	free(h->listen);
	free(h);
}
