/*
 * The inside of struct tg_syncer, and the calls between the files that
 * implement reconcile.h.  Only those files include this header; callers
 * keep reconcile.h, where the struct stays opaque.
 *
 * Why the fields are shared: reconcile.h is implemented by four modules,
 * one concern each, and each reads the syncer's handles and state:
 * syncer.c (the sync's long-lived handles and the fetch of a pass's
 * commit), reconcile.c (one pass: plan, writes in safe order, reload,
 * read-back, write-ahead audit), passcache.c (what a pass reuses from the
 * last: the desired state of an unchanged commit, the verified cache) and
 * governed.c (refusals, health check, history and rollback around a pass).
 */
#ifndef TG_SYNCER_INTERNAL_H
#define TG_SYNCER_INTERNAL_H

#include "tg/history.h"
#include "tg/reconcile.h"
#include "tg/verified.h"

struct tg_syncer {
	const struct tg_sync_config *cfg;
	struct tg_git_source *git;
	struct tg_gateway *gw;
	char *cache_dir;
	struct tg_audit *audit;
	unsigned long audit_seq;
	tg_git_observe_fn git_observe;
	void *git_observe_ctx;
	tg_commit_observe_fn commit_observe;
	void *commit_observe_ctx;
	struct tg_history hist; /* re-read at every pass: `rollback` may run beside */
	char *hist_path;        /* NULL without a repository */
	/* Held for a whole pass (NULL without a repository): the CLI and a
	 * running controller may share cache_dir, and two passes of one sync
	 * at once would fetch into one clone and switch one work tree. */
	char *lock_path;
	struct tg_verified *verified; /* list elements known in sync, across passes */
	/* The desired state of the last commit loaded, with its objects'
	 * hashes, while the next pass finds the same commit (see
	 * tg_passcache_desired). */
	struct tg_desired *kept;
	char (*kept_hashes)[65];
	char kept_commit[41];
	/* What each file of the commits loaded gave, by blob id, so that a
	 * new commit reads only the files it changed (loadmemo.h); NULL until
	 * the first load of a commit. */
	struct tg_loadmemo *memo;
};

/*
 * syncer.c.  Brings the pass's commit (pin: that commit instead of the
 * ref's, NULL: the ref's) into the working tree and fills res's commit
 * fields; head gets the ref's commit (may be NULL).  *root gets the
 * directory to load from (opts->local_dir when set), which the caller
 * frees.  When the fetch fails but the last good checkout is usable (and
 * is the pinned commit, if any), the pass goes on there: 0, with
 * res->source_error set.  Otherwise -1 with res's outcome and error set.
 */
int tg_syncer_fetch(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
		    struct tg_reconcile_result *res, char **root, const char *pin, char head[41]);

/* reconcile.c.  Sets res's outcome and its error message. */
void tg_reconcile_result_error(struct tg_reconcile_result *res, enum tg_outcome o, const char *msg);

/*
 * reconcile.c.  One pass on the ref's commit, or on pin when non-NULL
 * (head as for tg_syncer_fetch): fetch, load, check, plan, apply.  res is
 * overwritten (not released first); the caller releases it with
 * tg_reconcile_result_release.  No health check, no history: governed.c
 * does those around it.
 */
void tg_reconcile_one_pass(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
			   struct tg_reconcile_result *res, const char *pin, char head[41]);

#endif
