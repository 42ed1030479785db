/*
 * What a pass reuses from the last (see include/tg/passcache.h): the
 * desired state of an unchanged commit, and the verified cache's glue.
 */
#include "tg/passcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/audit.h"
#include "tg/diff.h"
#include "tg/gateway.h"
#include "tg/gitsrc.h"
#include "tg/listahead.h"
#include "tg/loadmemo.h"
#include "tg/log.h"
#include "tg/syncer_internal.h"
#include "tg/banned.h"

/* A reply parsed whole (it then says what is wrong with it), read again
 * first when a feed let go of some of it. */
static int parse_whole(struct tg_gateway *gw, enum tg_kind kind, struct tg_list_reply *r,
		       cJSON **out, struct tg_err *err)
{
	int rc;

	if (r->dropped) {
		free(r->body);
		r->body = NULL;
		r->dropped = 0;
		if ((rc = tg_gateway_list_raw(gw, kind, &r->body, &r->len, err)) != 0)
			return rc;
	}
	return tg_gateway_parse_list(kind, r->body, r->len, out, err);
}

/*
 * The lists that ahead is reading, through vp when there is one: elements
 * whose bytes and desired object are as they were when found in sync come
 * back as skeletons, unparsed, and each element is handled as soon as it
 * has arrived, its bytes then let go.  A reply the scanner refuses, or
 * every reply without vp, is parsed whole, which reports what is wrong
 * with it.
 */
static int read_lists(struct tg_gateway *gw, struct tg_lists_ahead *ahead,
		      struct tg_verified_pass *vp, tg_verified_visit_fn visit, void *visit_ctx,
		      cJSON *out[TG_KIND_COUNT], struct tg_err *err)
{
	struct tg_list_reply replies[TG_KIND_COUNT];
	struct tg_verified_feed *feeds[TG_KIND_COUNT] = { NULL, NULL, NULL };
	int rc;

	for (int k = 0; k < TG_KIND_COUNT && vp; k++)
		feeds[k] = visit ? tg_verified_feed_visiting(vp, (enum tg_kind)k, visit, visit_ctx)
				 : tg_verified_feed_new(vp, (enum tg_kind)k);
	if (vp)
		tg_lists_ahead_feed(ahead, tg_verified_feed_progress, (void *const *)feeds);
	rc = tg_lists_ahead_wait(ahead, replies, err);
	for (int k = 0; k < TG_KIND_COUNT; k++) {
		out[k] = NULL;
		if (rc) {
			tg_verified_feed_free(feeds[k]);
		} else if (!feeds[k] || tg_verified_feed_finish(feeds[k], replies[k].body,
								replies[k].len, &out[k])) {
			/* Parsed whole, the reply says what is wrong with it; a
			 * visit cannot be made of it. */
			rc = parse_whole(gw, (enum tg_kind)k, &replies[k], &out[k], err);
			if (!rc && visit)
				rc = tg_err_set(err, TG_EINVALID,
						"gateway list %s cannot be read element by element",
						tg_kind_name((enum tg_kind)k));
		}
		free(replies[k].body);
	}
	if (rc)
		for (int k = 0; k < TG_KIND_COUNT; k++) {
			cJSON_Delete(out[k]);
			out[k] = NULL;
		}
	return rc;
}

int tg_passcache_list_actual(struct tg_syncer *s, struct tg_lists_ahead *ahead,
			     struct tg_verified_pass *vp, cJSON *out[TG_KIND_COUNT],
			     struct tg_err *err)
{
	return read_lists(s->gw, ahead ? ahead : tg_lists_ahead_start(s->gw, 0), vp, NULL, NULL,
			  out, err);
}

int tg_passcache_visit_lists(struct tg_syncer *s, struct tg_verified_pass *vp,
			     tg_verified_visit_fn visit, void *ctx, struct tg_err *err)
{
	cJSON *out[TG_KIND_COUNT];
	int rc = read_lists(s->gw, tg_lists_ahead_start(s->gw, 0), vp, visit, ctx, out, err);

	for (int k = 0; k < TG_KIND_COUNT; k++)
		cJSON_Delete(out[k]);
	return rc;
}

int tg_passcache_keeps(const struct tg_syncer *s, const char *commit)
{
	return s->kept && (!commit || !strcmp(commit, s->kept_commit));
}

/*
 * An unchanged commit is not read, parsed or hashed again: a load depends
 * only on the commit's files (the path is the sync's), unless a value held
 * "${" (then the environment and secret files count too) or it reported
 * problems (those go into every pass's result).  A local directory is
 * always read.
 */
static struct tg_desired *desired_reuse(struct tg_syncer *s, const struct tg_reconcile_result *res,
					const struct tg_reconcile_opts *opts)
{
	if (!s->kept || opts->local_dir || !res->commit[0] || strcmp(res->commit, s->kept_commit))
		return NULL;
	tg_desired_ref(s->kept);
	return s->kept;
}

static void desired_keep(struct tg_syncer *s, struct tg_desired *d, char (*hashes)[65],
			 const struct tg_reconcile_result *res,
			 const struct tg_reconcile_opts *opts)
{
	if (d == s->kept)
		return;
	tg_desired_free(s->kept);
	free(s->kept_hashes);
	s->kept = NULL;
	s->kept_hashes = NULL;
	if (opts->local_dir || !res->commit[0] || d->used_vars || res->problems.len)
		return;
	tg_desired_ref(d);
	s->kept = d;
	s->kept_hashes = tg_xcalloc(d->len ? d->len : 1, sizeof(*s->kept_hashes));
	memcpy(s->kept_hashes, hashes, d->len * sizeof(*hashes));
	snprintf(s->kept_commit, sizeof(s->kept_commit), "%s", res->commit);
}

/* Open audit operations are settled from whole objects: no skeletons then. */
static int has_open_ops(struct tg_syncer *s)
{
	const struct tg_audit_op **ops;
	size_t n = 0;

	if (!s->audit)
		return 0;
	ops = tg_audit_open_ops(s->audit, s->cfg->name, &n);
	free(ops);
	return n > 0;
}

/* What a file of the checkout holds, for the loader: its blob id. */
static const char *blob_id(void *ctx, const char *rel)
{
	return tg_git_blobs_find(ctx, rel);
}

/*
 * A new commit's files whose blobs an earlier load read are taken from the
 * sync's memo (loadmemo.h) instead of being read, parsed, checked and
 * hashed again.  Only for the checkout of res's commit, whose blob ids
 * libgit2 gives; a load that keeps positions (rules) reads every file.
 * Returns whether lo now uses the memo (blobs to release then).
 */
static int memo_begin(struct tg_syncer *s, struct tg_load_opts *lo, struct tg_git_blobs *blobs,
		      const struct tg_reconcile_result *res, const struct tg_reconcile_opts *opts)
{
	const struct tg_commit_info *ci = s->git ? tg_git_commit(s->git) : NULL;
	struct tg_err err = { 0, "" };
	char *key;

	if (!ci || opts->local_dir || strcmp(ci->sha, res->commit) || lo->keep_positions)
		return 0;
	if (tg_git_blobs(blobs, s->git, s->cfg->path, &err)) {
		tg_log_kv(TG_LOG_DEBUG, "reading every file: no blob ids", "sync", s->cfg->name,
			  "error", err.msg, NULL);
		return 0;
	}
	if (!s->memo) {
		char *path = tg_xasprintf("%s/desired", s->cache_dir);

		s->memo = tg_loadmemo_new(path);
		free(path);
	}
	/* Another version may load a file differently; .gitattributes
	 * decide the bytes a blob is checked out as. */
	key = tg_xasprintf("%s %s", TG_VERSION, blobs->attrs);
	tg_loadmemo_begin(s->memo, key);
	free(key);
	lo->memo = s->memo;
	lo->content_id = blob_id;
	lo->content_ctx = blobs;
	return 1;
}

static void memo_finish(struct tg_syncer *s, struct tg_git_blobs *blobs)
{
	struct tg_err err = { 0, "" };

	tg_log_debug("sync '%s': %zu of %zu files taken from the desired-state cache", s->cfg->name,
		     tg_loadmemo_taken(s->memo), blobs->len);
	if (tg_loadmemo_finish(s->memo, &err))
		tg_log_kv(TG_LOG_WARN, "cannot save the desired-state cache", "sync", s->cfg->name,
			  "error", err.msg, NULL);
	tg_git_blobs_release(blobs);
}

/* The hash of each object: kept by the memo for a file it gave, else
 * computed (and given to the memo for a file it just recorded). */
static char (*hash_objects(const struct tg_desired *d, struct tg_loadmemo *memo))[65]
{
	char(*h)[65] = tg_xcalloc(d->len ? d->len : 1, sizeof(*h));

	for (size_t i = 0; i < d->len; i++) {
		const struct tg_object *o = &d->objects[i];

		if (memo && !tg_loadmemo_hash(memo, o, h[i]))
			continue;
		tg_diff_hash(h[i], o->kind, tg_object_body(o));
		if (memo)
			tg_loadmemo_set_hash(memo, o, h[i]);
	}
	return h;
}

/* A fresh load of res's commit (or local directory), with its hashes. */
static int desired_load(struct tg_desired **out, char (**hashes)[65], struct tg_syncer *s,
			const struct tg_load_opts *lopts, struct tg_reconcile_result *res,
			const struct tg_reconcile_opts *opts, struct tg_err *err)
{
	struct tg_load_opts lo = *lopts;
	struct tg_git_blobs blobs;
	int memo = memo_begin(s, &lo, &blobs, res, opts);
	int rc = tg_desired_load(out, &res->problems, &lo, err);

	if (!rc) {
		*hashes = hash_objects(*out, memo ? s->memo : NULL);
	}
	if (memo)
		memo_finish(s, &blobs);
	return rc;
}

int tg_passcache_desired(struct tg_desired **out, char (**hashes)[65], struct tg_syncer *s,
			 const struct tg_load_opts *lopts, struct tg_reconcile_result *res,
			 const struct tg_reconcile_opts *opts, struct tg_err *err)
{
	struct tg_desired *d;
	char(*h)[65] = NULL;
	int rc;

	*hashes = NULL;
	if ((d = desired_reuse(s, res, opts)) != NULL) {
		h = tg_xcalloc(d->len ? d->len : 1, sizeof(*h));
		memcpy(h, s->kept_hashes, d->len * sizeof(*h));
	} else if ((rc = desired_load(&d, &h, s, lopts, res, opts, err)) != 0) {
		*out = d;
		return rc;
	} else {
		desired_keep(s, d, h, res, opts);
	}
	*out = d;
	*hashes = h;
	return 0;
}

struct tg_verified_pass *tg_passcache_verified_pass(struct tg_syncer *s, const struct tg_desired *d,
						    const char (*hashes)[65])
{
	if (has_open_ops(s))
		return NULL;
	tg_verified_load(s->verified);
	return tg_verified_pass_new(s->verified, d, hashes);
}

void tg_passcache_verified_record(struct tg_syncer *s, struct tg_verified_pass *vp,
				  const struct tg_plan *plan, const struct tg_desired *d)
{
	struct tg_err err = { 0, "" };
	size_t skeletons, parsed;

	tg_verified_record(vp, plan, (const char *const *)d->secrets, d->n_secrets);
	tg_verified_pass_counts(vp, &skeletons, &parsed);
	tg_log_debug("sync '%s': %zu list elements known in sync, %zu parsed", s->cfg->name,
		     skeletons, parsed);
	if (tg_verified_save(s->verified, &err))
		tg_log_kv(TG_LOG_WARN, "cannot save the verified-objects cache", "sync",
			  s->cfg->name, "error", err.msg, NULL);
}
