/*
 * The daemon's shared state, for its three parts only:
 *   daemon.c   lifecycle, signals, SIGHUP validation (main thread)
 *   worker.c   the reconcile worker: scheduling, passes, swapping in a
 *              validated configuration (worker thread)
 *   handlers.c the HTTP endpoints (libmicrohttpd's threads): status here,
 *              the API's POSTs in passapi.c, Bitbucket webhooks in
 *              hookapi.c, who may call them (OIDC or loopback) in actor.c
 *
 * Locking: one mutex (lock) guards the sync list, every sync's scheduler and
 * status fields, and the daemon flags.  The worker holds it only to pick
 * work and to publish results, never across git or gateway I/O.  Two
 * condition variables on the monotonic clock: `wake` for the worker (new
 * trigger, reload, stop), `done` for HTTP requests waiting for a pass.  The
 * metrics registry has its own lock.
 *
 * Ownership: each sync owns a one-sync struct tg_config holding its
 * settings, so a syncer's pointer to them stays valid across reloads.  A
 * reload builds a new list: unchanged syncs move over with their syncer,
 * schedule and status; changed ones get a new syncer and keep their trigger
 * counters (so waiting requests still complete).  Who may trigger a sync
 * (webhook, OIDC rules) is swapped into a kept sync in place, under the
 * lock, and handlers copy what they need under it.
 *
 * Provenance: each trigger from the API or a webhook leaves an actor (a
 * text for the audit trail, an identity for the status API) on the sync;
 * the pass that serves the trigger takes them all (coalesced triggers:
 * several actors).
 */
#ifndef TG_DAEMON_STATE_H
#define TG_DAEMON_STATE_H

#include <pthread.h>
#include <time.h>

#include "tg/audit.h"
#include "tg/config.h"
#include "tg/httpd.h"
#include "tg/metrics.h"
#include "tg/notifier.h"
#include "tg/oidc.h"
#include "tg/reconcile.h"
#include "tg/scheduler.h"
#include "tg/webhook.h"

/* The worker wakes at least this often so /healthz can see it alive. */
#define TG_HEARTBEAT_MS 10000
/* /healthz fails when an idle worker has not woken for this long, or a
 * pass has run for longer than TG_PASS_STALL_MS. */
#define TG_IDLE_STALL_MS 60000
#define TG_PASS_STALL_MS (15LL * 60 * 1000)
/* Objects and problems listed in a sync's last_result (the CLI lists all). */
#define TG_STATUS_MAX_ITEMS 200
/* Actors kept for one pass; more are counted ("and N more"). */
#define TG_MAX_PENDING_ACTORS 8
/* Delivery ids remembered to drop replays. */
#define TG_WEBHOOK_SEEN 4096

/* Who asked for a pass. */
struct tg_actor {
	char *text;     /* one line for the audit trail's "actor" */
	char *identity; /* a JSON object for the status API */
};
/* actor.c, as tg_dsync_add_actor; making one: tg/actor.h. */
void tg_actor_release(struct tg_actor *a);

/*
 * A request waiting with ?commit=SHA: the worker says, after the pass that
 * serves `ticket`, how that commit relates to the one live on the gateway.
 * Lives on the waiting handler's stack, linked into its sync under the
 * lock; the handler unlinks it before returning.
 */
struct tg_commit_query {
	struct tg_commit_query *next;
	unsigned long long id, ticket;
	char sha[41];
	int done;
	const char *relation; /* "applied", "ancestor", "not_applied", "unknown" (static) */
	char live_commit[41]; /* the commit live after that pass */
};

struct tg_dsync {
	struct tg_config *own;      /* one sync: cfg points into it */
	struct tg_sync_config *cfg; /* name is immutable; the rest is the worker's */
	struct tg_syncer *syncer;   /* worker only */
	struct tg_sched sched;
	/* status, under the daemon's lock */
	unsigned long long trigger_seq; /* last explicit trigger ticket */
	unsigned long long done_seq;    /* tickets served by finished passes */
	unsigned passes;
	int has_result;
	enum tg_outcome last_outcome;
	char applied_commit[41]; /* commit of the last applied pass */
	char remote_head[41];    /* from the last remote check */
	char last_error[TG_ERR_MSG_MAX];
	char *last_result_json; /* tg_report_json of the last pass, rendered once */
	long long last_run_wall_ms, last_success_wall_ms;
	const char *running_trigger;                   /* static string while a pass runs */
	int config_suspended;                          /* `suspend:` as last read from the file */
	struct tg_actor actors[TG_MAX_PENDING_ACTORS]; /* of pending triggers */
	size_t n_actors, more_actors;
	struct tg_commit_query *queries;
	/* Bitbucket build status, worker only: the last final state posted
	 * (so a drift pass of the same commit posts nothing), and whether
	 * this pass posted INPROGRESS. */
	char bb_commit[41];
	const char *bb_state; /* static string */
	int bb_began;
	/* for the next pass, set by the API */
	int force_pending;      /* ?force=true: lift a rollback pin, pass max_delete */
	char rollback_to[41];   /* POST .../rollback?to=: apply this commit */
	char *history_json;     /* the apply history, rendered by the worker */
	char pinned_commit[41]; /* held by a rollback, "" when none */
	char failed_commit[41]; /* failed its health check and was rolled back */
};

struct tg_daemon {
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	struct tg_dsync **syncs;
	size_t n_syncs;
	size_t rr;                      /* round-robin start of the next pick */
	const struct tg_config *global; /* listen, cache_dir, audit, http */
	struct tg_config *owned_global; /* set after a reload */
	struct tg_config *pending;      /* validated by SIGHUP, applied by the worker */
	struct tg_metrics *metrics;
	struct tg_httpd *httpd;
	char *listen;
	struct tg_httpd *probe_httpd; /* NULL when probes are served on listen */
	char *probe_listen;
	struct tg_httpd *webhook_httpd; /* webhook_listen, or NULL */
	char *webhook_listen;
	struct tg_oidc *oidc;              /* under lock: handlers take a reference */
	struct tg_webhook_keys *hook_keys; /* locks itself */
	struct tg_webhook_seen *hook_seen; /* locks itself */
	unsigned long long query_seq;
	struct tg_audit *audit;
	char *audit_path;
	struct tg_notifier *notifier; /* Bitbucket build statuses; NULL: not started */
	long long heartbeat_ms, busy_since_ms;
	int stopping;
	unsigned long long rng; /* worker only */
	pthread_t worker;
	struct tg_elector *elector; /* leader election, or NULL (every sync is ours) */
};

struct tg_elector;

/* worker.c */
void *tg_worker_main(void *daemon);
/* Moves src's sync settings into a new sync of its own. */
struct tg_dsync *tg_dsync_new(struct tg_sync_config *src, long long now);
void tg_dsync_free(struct tg_dsync *s);
/* Under the lock (or on the worker, which alone changes the list). */
struct tg_dsync *tg_daemon_find_sync(struct tg_daemon *d, const char *name);
/* Under the lock: leaves an actor (taken over) for the sync's next pass. */
void tg_dsync_add_actor(struct tg_dsync *s, struct tg_actor *a);

/* handlers.c: the endpoints, with d as their context. */
void tg_handlers_fill(struct tg_httpd_ops *ops, struct tg_daemon *d);

#endif
