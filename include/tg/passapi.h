/*
 * The API's POSTs on a sync (libmicrohttpd's threads; ctx is the struct
 * tg_daemon): reconcile and rollback trigger a pass and, with ?wait=, wait
 * for its result (with ?commit=, whether that commit went live); suspend
 * and resume flip the schedule.  Each authorizes its caller first
 * (actor.h).  With leader election, a pass for a sync another replica
 * holds is handed to that holder and its answer returned.  They only
 * enqueue: the worker runs the pass.
 */
#ifndef TG_PASSAPI_H
#define TG_PASSAPI_H

#include "tg/buf.h"
#include "tg/httpd.h"

/* POST /api/v1/syncs/{name}/reconcile[?wait=&timeout=&commit=&force=]:
 * the HTTP status, the answer in out. */
int tg_passapi_reconcile(void *ctx, const char *name, long long wait_ms,
			 const struct tg_http_request *req, struct tg_buf *out);

/* POST /api/v1/syncs/{name}/rollback?to=<commit>[&wait=&commit=]. */
int tg_passapi_rollback(void *ctx, const char *name, long long wait_ms,
			const struct tg_http_request *req, struct tg_buf *out);

/* POST /api/v1/syncs/{name}/suspend (suspend 1) or /resume (0). */
int tg_passapi_suspend(void *ctx, const char *name, int suspend, const struct tg_http_request *req,
		       struct tg_buf *out);

#endif
