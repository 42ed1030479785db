/*
 * Hands an HTTP request to another replica (leader election: the one that
 * holds the sync's Lease) and relays its answer.
 *
 * Runs on the HTTP handler's thread with a curl handle of its own, made
 * and freed per request: the forward belongs to the request waiting for
 * it (a ?wait=true reconcile may wait minutes), and the worker, which
 * owns the long-lived handles, must not block on another replica.  The
 * forwarded request carries TG_FORWARDED_HEADER (our identity), and a
 * replica never forwards a request that has it, so a stale view of who
 * holds what cannot make a loop.
 */
#ifndef TG_FORWARD_H
#define TG_FORWARD_H

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/httpd.h"

#define TG_FORWARDED_HEADER "X-Tyk-Gitops-Forwarded-By"

/*
 * POSTs req's body to base_url + path_query with the headers named in
 * copy (NULL-terminated; absent ones skipped) and TG_FORWARDED_HEADER:
 * identity.  The answer's body goes to out (capped) and its status to
 * *status.  Returns 0, or TG_ETIMEOUT / TG_ERROR with err set when the
 * holder did not answer.
 */
int tg_forward_post(const char *base_url, const char *path_query, const struct tg_http_request *req,
		    const char *const *copy, const char *identity, long timeout_ms,
		    struct tg_buf *out, long *status, struct tg_err *err);

#endif
