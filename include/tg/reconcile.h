/*
 * One reconcile pass of one sync: git -> desired state -> gate -> gateway
 * lists -> plan -> safeguards -> apply (API writes, policy writes, policy
 * deletes, API deletes) -> one blocking reload -> read-back -> audit.
 *
 * A struct tg_syncer keeps a sync's long-lived handles (git source, gateway
 * client) and its last good commit; it is used by one thread at a time.
 */
#ifndef TG_RECONCILE_H
#define TG_RECONCILE_H

#include "tg/config.h"
#include "tg/desired.h"
#include "tg/gateway.h"
#include "tg/gitsrc.h"
#include "tg/plan.h"
#include "tg/problems.h"

struct tg_reconcile_opts {
	int dry_run;           /* plan only: nothing is written */
	int force;             /* override max_delete */
	const char *trigger;   /* "cli", "poll", "webhook", "pipeline", "drift", "startup" */
	const char *actor;     /* who triggered (pipeline id, webhook delivery...) */
	const char *local_dir; /* use this directory instead of the git source (no git) */
	/*
	 * Asked before every write batch (each stage's writes, the tombstone,
	 * the reload): 0 stops the pass from writing anything more, and the
	 * objects not yet written fail with "not applied".  Leader election's
	 * guard (a replica writes only while its Lease is valid).  NULL:
	 * always allowed.  May be called from the pass's thread only.
	 */
	int (*may_write)(void *ctx);
	void *may_write_ctx;
	/* Apply this earlier commit (a full SHA, or a prefix of one in the
	 * history) instead of the ref's, and pin it (history.h): `rollback
	 * --to`.  NULL: the ref's commit, or the pin a rollback left. */
	const char *rollback_to;
};

enum tg_outcome {
	TG_OUTCOME_SUCCESS, /* everything applied and verified (or nothing to do) */
	TG_OUTCOME_PARTIAL, /* some objects failed; the others were applied */
	TG_OUTCOME_REFUSED, /* invalid commit or safeguard: nothing applied */
	TG_OUTCOME_ERROR    /* git or gateway unusable: nothing applied, or (source_error)
	                         the last good commit was applied again */
};

/* What became of one plan item in an applied pass. */
struct tg_object_result {
	const struct tg_plan_item *item; /* in the result's plan */
	int ok;
	char *error; /* NULL when ok */
};

struct tg_reconcile_result {
	enum tg_outcome outcome;
	char error[TG_ERR_MSG_MAX];
	char source_error[TG_ERR_MSG_MAX]; /* git failed: the pass ran on the last good commit */
	char commit[41];
	char refused_commit[41]; /* the git source refused this commit (unsigned, too big) */
	char *author;            /* "name <email>" */
	char *author_name;       /* the commit author's name and email, apart */
	char *author_email;
	char *summary_line;  /* commit summary */
	struct tg_plan plan; /* items point into desired and actual */
	cJSON *actual[TG_KIND_COUNT];
	struct tg_desired *desired;
	struct tg_problems problems;
	struct tg_object_result *objects; /* one per plan item once applied, else NULL */
	size_t n_objects;
	size_t created, updated, deleted, unchanged, conflicts, failed, drifted, warned;
	long long duration_ms;
	unsigned long gateway_requests;
	/* Post-apply health check (health.h): "healthy", "unhealthy",
	 * "unchecked" (no `health:`), or "" (nothing applied). */
	char health[16];
	char *health_detail; /* unhealthy APIs, one line, or NULL */
	size_t probed, unhealthy;
	long long health_ms; /* time the probes took */
	/* Rollback: this pass's commit failed its health check and the last
	 * healthy commit was applied again (rolled_back_to), or a `rollback
	 * --to` applied an earlier commit (rollback_from: the one it
	 * replaced). */
	char rolled_back_to[41];
	char rollback_from[41];
	int pinned;            /* the pass ran on a pinned commit, not the ref's */
	int rollback;          /* a rollback was made: 1 it worked, -1 it failed, 0 none */
	char live_commit[41];  /* the commit live after the pass, "" when unknown */
	long long rollback_ms; /* from the bad commit's apply to the rollback's end */
};

struct tg_syncer;

/* cfg must outlive the syncer.  cache_dir holds one directory per sync. */
int tg_syncer_new(struct tg_syncer **out, const struct tg_sync_config *cfg, const char *cache_dir,
		  struct tg_err *err);
void tg_syncer_free(struct tg_syncer *s);
/* What a pass leaves for after it: removing the checked-out trees it
 * switched away from (a commit changing a few of 20,000 files retires a
 * tree of 20,000 links). */
void tg_syncer_tidy(struct tg_syncer *s);
/* The same on a thread of its own while the pass waits on the gateway;
 * tg_syncer_tidy and tg_syncer_free wait for it. */
void tg_syncer_tidy_start(struct tg_syncer *s);

struct tg_audit;
/* Records every object change in the write-ahead audit trail (NULL: none).
 * The trail must outlive the syncer's passes. */
void tg_syncer_set_audit(struct tg_syncer *s, struct tg_audit *audit);

/* Start-up check: the gateway answers and accepts the secret. */
int tg_syncer_check_gateway(struct tg_syncer *s, struct tg_err *err);

/* Forwards every gateway request's method, endpoint, status and duration
 * to fn (for metrics). */
void tg_syncer_set_gateway_observer(struct tg_syncer *s, tg_gateway_observe_fn fn, void *ctx);

/* Called after every git fetch with the sync's name, the operation
 * ("fetch"), whether it worked and its duration (for metrics). */
typedef void (*tg_git_observe_fn)(void *ctx, const char *sync, const char *op, int ok,
				  double seconds);
void tg_syncer_set_git_observer(struct tg_syncer *s, tg_git_observe_fn fn, void *ctx);

/* Called when a pass that will apply has its commit (after the fetch,
 * before anything is loaded or written): where the notifier posts
 * INPROGRESS.  Not called for dry runs, local directories, or a pass
 * running on the last good commit because the fetch failed. */
typedef void (*tg_commit_observe_fn)(void *ctx, const char *sync, const char *commit);
void tg_syncer_set_commit_observer(struct tg_syncer *s, tg_commit_observe_fn fn, void *ctx);

/* Runs one pass.  res must be released with tg_reconcile_result_release. */
void tg_syncer_run(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
		   struct tg_reconcile_result *res);
void tg_reconcile_result_release(struct tg_reconcile_result *res);

/* The sync's apply history as JSON (tg_history_json, newest max
 * entries), read from its cache directory.  Caller frees. */
cJSON *tg_syncer_history_json(struct tg_syncer *s, size_t max);

/*
 * The rollback pin as of the last pass (history.h): pin gets the pinned
 * commit ("" when none) and failed the commit it replaced when that one
 * failed its health check ("" otherwise).  For the status API.
 */
void tg_syncer_pin(struct tg_syncer *s, char pin[41], char failed[41]);

/* "success", "partial", "refused", "error" */
const char *tg_outcome_name(enum tg_outcome o);

/*
 * Cheap poll (SPEC 4, "Triggers"): asks the remote where the ref points
 * (one ls-remote round trip, no fetch) and sets *changed when that differs
 * from the commit checked out by the last pass, or when there was none yet
 * or the sync has no repository.  Fills head (when non-NULL) with the
 * remote commit.  Errors as tg_git_remote_head.  Added for the daemon.
 */
int tg_syncer_remote_changed(struct tg_syncer *s, int *changed, char head[41], struct tg_err *err);

#endif
