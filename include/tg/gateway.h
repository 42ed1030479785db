/*
 * Client for the open-source Tyk Gateway control API (libcurl).
 *
 * Owns one curl easy handle (keep-alive) plus a multi handle for bounded
 * concurrent writes; use from one thread.  Known gateway behaviour handled
 * here: writes only touch files until a blocking reload; reads return only
 * loaded objects; deleting a missing policy answers 500; list order is
 * unstable.  Classic lists also contain OAS APIs (in classic form) and are
 * filtered out here.
 */
#ifndef TG_GATEWAY_H
#define TG_GATEWAY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/common.h"
#include "tg/desired.h"

struct tg_gateway_opts {
	const char *url;         /* http(s)://host:port */
	const char *secret_file; /* x-tyk-authorization value, re-read when it changes */
	const char *ca_file;     /* extra CA for https */
	const char *cert_file;   /* client certificate (PEM) */
	const char *key_file;    /* client key (PEM) */
	int insecure_skip_verify;
	long timeout_ms;       /* per request; 0 = 30 s */
	int retries;           /* on connection errors and 5xx; default 3 */
	int max_concurrency;   /* the most writes in flight; default 16 */
	size_t max_list_bytes; /* the most a list reply may take; 0 = 512 MiB */
	/* Below max_concurrency, as many writes in flight as the gateway keeps
	 * up with: starts at 4, grows by one per round of writes answered
	 * about as fast as the fastest, halves on 429, 5xx, a timeout or a
	 * transport error.  Off: always max_concurrency. */
	int adaptive;
};

/* Called after every request: endpoint template ("/tyk/apis/{id}"), method,
 * HTTP status (0 on transport error) and seconds. Used for metrics. */
typedef void (*tg_gateway_observe_fn)(void *ctx, const char *method, const char *endpoint,
				      long status, double seconds);

struct tg_gateway;

int tg_gateway_new(struct tg_gateway **out, const struct tg_gateway_opts *opts, struct tg_err *err);
void tg_gateway_free(struct tg_gateway *gw);
void tg_gateway_set_observer(struct tg_gateway *gw, tg_gateway_observe_fn fn, void *ctx);
/* Writes in flight allowed now (for tests and benchmarks). */
int tg_gateway_write_window(const struct tg_gateway *gw);

/* Checks that the gateway answers and the secret is accepted. */
int tg_gateway_check(struct tg_gateway *gw, struct tg_err *err);

/* Lists every loaded object of a kind. *out is a cJSON array owned by the caller. */
int tg_gateway_list(struct tg_gateway *gw, enum tg_kind kind, cJSON **out, struct tg_err *err);

/*
 * Called while a list reply arrives: data[0..len) is what has arrived and
 * was not let go (the buffer may move between calls); data NULL: a retry
 * starts over.  Returns how many bytes at data's start the caller is done
 * with: they are let go, and the next call's data starts after them, so
 * that a reply read as it arrives is never held whole.  Whether the reply
 * is one to use is known only once the call returns.
 */
typedef size_t (*tg_gateway_progress_fn)(void *ctx, const char *data, size_t len);

/* The reply of the list call of a kind as it came (*body is the caller's,
 * NUL-terminated, len bytes), for tg_verified_list or tg_gateway_parse_list. */
int tg_gateway_list_raw(struct tg_gateway *gw, enum tg_kind kind, char **body, size_t *len,
			struct tg_err *err);

/* The three list calls at once (see tg_gateway_list_raw); progress (may be
 * NULL) sees each reply arrive, and body is then only what it did not let
 * go.  On failure every body is NULL and err names the first kind that
 * failed. */
struct tg_list_reply {
	tg_gateway_progress_fn progress; /* may be NULL */
	void *progress_ctx;
	char *body; /* the caller's: the reply after the bytes progress let go */
	size_t len;
	size_t dropped; /* bytes progress let go before body */
};

int tg_gateway_list_all_raw(struct tg_gateway *gw, struct tg_list_reply replies[TG_KIND_COUNT],
			    struct tg_err *err);

/* Parses a list reply whole, as tg_gateway_list does: null is an empty
 * list, OAS APIs are dropped from the classic list.  Pure. */
int tg_gateway_parse_list(enum tg_kind kind, const char *data, size_t len, cJSON **out,
			  struct tg_err *err);

/* Reads one object. TG_ENOTFOUND when the gateway has not loaded it. */
int tg_gateway_get(struct tg_gateway *gw, enum tg_kind kind, const char *id, cJSON **out,
		   struct tg_err *err);

/* One write for tg_gateway_write_all. */
enum tg_write_op { TG_WRITE_CREATE, TG_WRITE_UPDATE, TG_WRITE_DELETE };
struct tg_write {
	enum tg_write_op op;
	enum tg_kind kind;
	const char *id;
	const cJSON *body;          /* NULL for deletes */
	int rc;                     /* out: 0 or TG_E* */
	char error[TG_ERR_MSG_MAX]; /* out */
};

/*
 * Performs every write, at most max_concurrency at a time (fewer while the
 * adaptive window is smaller), retrying connection errors, 429 and 5xx with
 * backoff.  Each write's result lands in its
 * rc/error; the call itself fails only when it cannot run at all.  Deleting
 * an object that is already gone counts as success.
 */
int tg_gateway_write_all(struct tg_gateway *gw, struct tg_write *writes, size_t n,
			 struct tg_err *err);

/* GET /tyk/reload?block=true: the gateway loads what was written. */
int tg_gateway_reload(struct tg_gateway *gw, struct tg_err *err);

/* Number of HTTP requests made so far (for tests and benchmarks). */
unsigned long tg_gateway_request_count(const struct tg_gateway *gw);

#endif
