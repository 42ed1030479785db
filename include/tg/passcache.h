/*
 * What one pass of a sync reuses from the last, so that a pass costs what
 * changed: the desired state of an unchanged commit (not read, parsed or
 * hashed again), what each file of a commit gave (loadmemo.h: a new commit
 * reads only the files it changed), and the verified cache (verified.h),
 * through which the gateway's list elements known in sync come back as
 * unparsed skeletons.
 *
 * Glue between struct tg_syncer (syncer_internal.h) and desired.h and
 * verified.h, for reconcile.c.
 */
#ifndef TG_PASSCACHE_H
#define TG_PASSCACHE_H

#include "tg/desired.h"
#include "tg/listahead.h"
#include "tg/reconcile.h"
#include "tg/verified.h"

/*
 * The desired state of res's commit, loaded from lopts (root, path...) or
 * the one kept from the last pass on the same commit, with the hash of each
 * object (tg_diff_hash), by object index.  A fresh load of a checkout
 * takes the files whose blobs an earlier load read from the sync's memo
 * (<cache_dir>/<sync>/desired for a new process), and updates it.  A fresh
 * load is kept for the next pass when it may be reused.  *out is released with tg_desired_free,
 * *hashes with free.  Errors as tg_desired_load (problems go to
 * res->problems); *hashes is then NULL.
 */
int tg_passcache_desired(struct tg_desired **out, char (**hashes)[65], struct tg_syncer *s,
			 const struct tg_load_opts *lopts, struct tg_reconcile_result *res,
			 const struct tg_reconcile_opts *opts, struct tg_err *err);

/* A pass through the verified cache for d and its hashes, or NULL when the
 * audit trail has open operations: those are settled from whole objects.
 * Free with tg_verified_pass_free. */
struct tg_verified_pass *tg_passcache_verified_pass(struct tg_syncer *s, const struct tg_desired *d,
						    const char (*hashes)[65]);

/* Notes the plan's verdicts in the cache and saves it (a failed save is
 * logged: the cache only saves work). */
void tg_passcache_verified_record(struct tg_syncer *s, struct tg_verified_pass *vp,
				  const struct tg_plan *plan, const struct tg_desired *d);

/* Whether a pass on commit would take the desired state kept from the last
 * pass instead of loading it; with commit NULL (not known yet), whether a
 * state is kept at all. */
int tg_passcache_keeps(const struct tg_syncer *s, const char *commit);

/* The gateway's lists, read by ahead (consumed: see listahead.h), or now
 * when ahead is NULL, through vp when it is not NULL: elements in sync come
 * back as skeletons.  out[k] is a cJSON array owned by the caller.  err may
 * be NULL. */
int tg_passcache_list_actual(struct tg_syncer *s, struct tg_lists_ahead *ahead,
			     struct tg_verified_pass *vp, cJSON *out[TG_KIND_COUNT],
			     struct tg_err *err);

/* The gateway's lists read through vp element by element, each handed to
 * visit (tg_verified_feed_visiting) and freed: in the memory of one
 * element besides the replies.  A reply that cannot be read so fails the
 * call. */
int tg_passcache_visit_lists(struct tg_syncer *s, struct tg_verified_pass *vp,
			     tg_verified_visit_fn visit, void *ctx, struct tg_err *err);

#endif
