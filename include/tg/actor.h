/*
 * Who is calling the daemon's endpoints, and whether they may: the OIDC
 * token or loopback listener behind an API request, the Bitbucket
 * webhook delivery behind a push.  An actor is a one-line text for logs and
 * the audit trail plus a JSON identity for the status API (struct tg_actor,
 * tg_actor_release and tg_dsync_add_actor are in daemon_state.h).  Runs on
 * libmicrohttpd's threads; takes d->lock only briefly.
 */
#ifndef TG_ACTOR_H
#define TG_ACTOR_H

#include "tg/daemon_state.h"
#include "tg/httpd.h"
#include "tg/webhook.h"

/*
 * Who may POST to /api/v1/syncs/{name}/{action} (action a TG_API_*): 0
 * with *actor filled (the caller releases it), or the HTTP status (401,
 * 403, 404, 503) with the JSON answer in out, counted and logged.
 *   - with oidc.issuers, a bearer token is always verified, on any
 *     listener; then a rule of the sync must allow the action;
 *   - without a token: loopback listeners serve as before unless
 *     auth.required; other listeners, and webhook_listen, do not.
 */
int tg_actor_authorize(struct tg_actor *actor, struct tg_daemon *d,
		       const struct tg_http_request *req, const char *name, unsigned action,
		       struct tg_buf *out);

/*
 * The actor of a signed webhook delivery that changed ref ch: the push's
 * user, the delivery and hook ids (NULL when not sent).  The caller
 * releases it.
 */
void tg_actor_webhook(struct tg_actor *a, const struct tg_webhook_push *p, const char *event,
		      const char *delivery, const char *hook, const struct tg_webhook_change *ch);

#endif
