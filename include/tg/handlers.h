/*
 * The daemon's HTTP endpoints (see include/tg/daemon_state.h): handlers.c
 * fills the router's table (tg_handlers_fill) and serves the read-only
 * endpoints (metrics, health, sync status, history); passapi.c serves the
 * API's POSTs and hookapi.c the Bitbucket webhook.  Every endpoint answers
 * in the JSON shapes below.
 */
#ifndef TG_HANDLERS_H
#define TG_HANDLERS_H

#include <cjson/cJSON.h>

#include "tg/buf.h"

/* Appends o, unformatted, and a newline to out; o stays the caller's. */
void tg_handlers_put_json(struct tg_buf *out, cJSON *o);

/*
 * Appends {"error": msg} to out, msg being fmt with its one %s replaced by
 * arg (cut at 511 bytes); returns status, for `return
 * tg_handlers_error_json(out, 404, ...)`.
 */
int tg_handlers_error_json(struct tg_buf *out, int status, const char *fmt, const char *arg)
	__attribute__((format(printf, 3, 0)));

#endif
