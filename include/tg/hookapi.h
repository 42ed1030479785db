/*
 * POST /hooks/bitbucket (libmicrohttpd's threads; ctx is the struct
 * tg_daemon): a Bitbucket push, authenticated by the HMAC signature of a
 * sync's webhook secret before a byte of the payload is read, triggers the
 * syncs that follow the pushed repository and ref and were signed for.
 * With leader election, the delivery is handed, once per replica, to the
 * holders of matching syncs this replica does not hold.
 */
#ifndef TG_HOOKAPI_H
#define TG_HOOKAPI_H

#include "tg/buf.h"
#include "tg/httpd.h"

/* The HTTP status; the answer (delivery, result, triggered syncs) in out. */
int tg_hookapi_serve(void *ctx, const struct tg_http_request *req, struct tg_buf *out);

/* Whether any sync has a webhook: the route answers 404 otherwise. */
int tg_hookapi_enabled(void *ctx);

#endif
