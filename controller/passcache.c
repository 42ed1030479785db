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
#include "tg/log.h"
#include "tg/syncer_internal.h"
#include "tg/banned.h"

/*
 * The lists, read through the verified cache: elements whose bytes and
 * desired object are as they were when found in sync come back as skeletons,
 * unparsed.  The three calls run at once, and each element is handled as
 * soon as it has arrived.  A reply the scanner refuses is parsed whole,
 * which reports what is wrong with it.
 */
static int read_lists(struct tg_syncer *s, struct tg_verified_pass *vp, tg_verified_visit_fn visit,
		      void *visit_ctx, cJSON *out[TG_KIND_COUNT], struct tg_err *err)
{
	struct tg_list_reply replies[TG_KIND_COUNT];
	struct tg_verified_feed *feeds[TG_KIND_COUNT];
	int rc;

	for (int k = 0; k < TG_KIND_COUNT; k++) {
		out[k] = NULL;
		feeds[k] = visit ? tg_verified_feed_visiting(vp, (enum tg_kind)k, visit, visit_ctx)
				 : tg_verified_feed_new(vp, (enum tg_kind)k);
		replies[k].progress = tg_verified_feed_progress;
		replies[k].progress_ctx = feeds[k];
	}
	rc = tg_gateway_list_all_raw(s->gw, replies, err);
	for (int k = 0; k < TG_KIND_COUNT; k++) {
		if (rc) {
			tg_verified_feed_free(feeds[k]);
		} else if (tg_verified_feed_finish(feeds[k], replies[k].body, replies[k].len,
						   &out[k])) {
			/* Parsed whole, the reply says what is wrong with it; a
			 * visit cannot be made of it. */
			rc = tg_gateway_parse_list((enum tg_kind)k, replies[k].body, replies[k].len,
						   &out[k], err);
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

int tg_passcache_list_actual(struct tg_syncer *s, struct tg_verified_pass *vp,
			     cJSON *out[TG_KIND_COUNT], struct tg_err *err)
{
	return read_lists(s, vp, NULL, NULL, out, err);
}

int tg_passcache_visit_lists(struct tg_syncer *s, struct tg_verified_pass *vp,
			     tg_verified_visit_fn visit, void *ctx, struct tg_err *err)
{
	cJSON *out[TG_KIND_COUNT];
	int rc = read_lists(s, vp, visit, ctx, out, err);

	for (int k = 0; k < TG_KIND_COUNT; k++)
		cJSON_Delete(out[k]);
	return rc;
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

/*
 * A file-based gateway files a policy under its "id"; Dashboard exports
 * carry the id in "_id" with an empty "id", which would be written as
 * ".json" and never loaded.  The id the loader found is filled in.
 */
static void fill_policy_ids(struct tg_desired *d)
{
	for (size_t i = 0; i < d->len; i++) {
		struct tg_object *o = &d->objects[i];
		cJSON *id = cJSON_GetObjectItemCaseSensitive(o->body, "id");

		if (o->kind != TG_KIND_POLICY || (cJSON_IsString(id) && id->valuestring[0]))
			continue;
		cJSON_DeleteItemFromObjectCaseSensitive(o->body, "id");
		cJSON_AddStringToObject(o->body, "id", o->id);
	}
}

int tg_passcache_desired(struct tg_desired **out, char (**hashes)[65], struct tg_syncer *s,
			 const struct tg_load_opts *lopts, struct tg_reconcile_result *res,
			 const struct tg_reconcile_opts *opts, struct tg_err *err)
{
	struct tg_desired *d;
	char(*h)[65];
	int rc;

	*hashes = NULL;
	if ((d = desired_reuse(s, res, opts)) != NULL) {
		h = tg_xcalloc(d->len ? d->len : 1, sizeof(*h));
		memcpy(h, s->kept_hashes, d->len * sizeof(*h));
	} else if ((rc = tg_desired_load(&d, &res->problems, lopts, err)) != 0) {
		*out = d;
		return rc;
	} else {
		fill_policy_ids(d);
		h = tg_xcalloc(d->len ? d->len : 1, sizeof(*h));
		for (size_t i = 0; i < d->len; i++)
			tg_diff_hash(h[i], d->objects[i].kind, d->objects[i].body);
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
