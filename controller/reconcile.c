/*
 * One reconcile pass (see include/tg/reconcile.h): fetch, load, check,
 * plan, then the apply stages: writes in safe order, one reload, the
 * read-back, and the write-ahead audit calls around them.  The syncer's
 * handles are syncer.c's, what a pass reuses from the last passcache.c's,
 * and the health check, history and rollback around a pass governed.c's.
 *
 * Safety rules enforced here rather than in the planner because they depend
 * on what the gateway really accepted: a policy is written only when every
 * API it references exists (already, or written successfully in this pass),
 * and an API is deleted only when no policy left on the gateway still
 * references it.  So one failed object never leaves a policy pointing at a
 * missing API.
 */
#include "tg/reconcile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/audit.h"
#include "tg/diff.h"
#include "tg/gateway.h"
#include "tg/governed.h"
#include "tg/log.h"
#include "tg/marker.h"
#include "tg/passcache.h"
#include "tg/rules.h"
#include "tg/safety.h"
#include "tg/syncer_internal.h"
#include "tg/tykobj.h"
#include "tg/verified.h"
#include "tg/banned.h"

const char *tg_outcome_name(enum tg_outcome o)
{
	static const char *const names[] = { "success", "partial", "refused", "error" };

	return names[o];
}

void tg_reconcile_result_error(struct tg_reconcile_result *res, enum tg_outcome o, const char *msg)
{
	res->outcome = o;
	snprintf(res->error, sizeof(res->error), "%s", msg);
}

/* --- apply --- */

struct pass {
	struct tg_syncer *s;
	const struct tg_reconcile_opts *opts;
	struct tg_reconcile_result *res;
	const struct tg_commit_info *commit;
	int *written;                 /* 1 = write attempted and accepted, by plan index */
	char **errors;                /* by plan index */
	char (*ops)[TG_AUDIT_OP_MAX]; /* audit operation, by plan index ("" = none) */
	unsigned char *not_loaded;    /* written, but not served after the reload */
	size_t *write_order;          /* plan indexes in the order their intents were written */
	size_t n_write_order;
	int write_refused; /* the may_write hook said no: nothing more is written */
	/* The desired state and its hashes, for the read-back through the
	 * verified cache. */
	const struct tg_desired *d;
	const char (*hashes)[65];
	struct tombstone { /* the placeholder policy, when this pass wrote it */
		char op[TG_AUDIT_OP_MAX];
		int written;
		char *error;
	} tombstone;
};

static cJSON *stamped_body(struct pass *p, const struct tg_plan_item *it)
{
	cJSON *body = cJSON_Duplicate(tg_object_body(it->desired), 1);
	struct tg_marker m = { 0 };
	char when[TG_TIME_MAX];

	tg_rfc3339(when, tg_wall_ms(), 0);
	m.sync = p->s->cfg->name;
	m.commit = p->res->commit[0] ? p->res->commit : (char *)"local";
	m.file = it->desired->file;
	m.hash = (char *)it->desired_hash;
	m.applied_at = when;
	/* A drift policy the author put in the slot is kept. */
	m.drift = (char *)tg_marker_get(it->kind, tg_object_body(it->desired), "drift");
	tg_marker_stamp(body, it->kind, &m);
	return body;
}

static int item_is_write(const struct tg_plan_item *it)
{
	return (it->action == TG_ACTION_CREATE || it->action == TG_ACTION_UPDATE) && !it->warn_only;
}

static void audit_base(struct tg_audit_record *r, struct pass *p)
{
	memset(r, 0, sizeof(*r));
	r->sync = p->s->cfg->name;
	r->commit = p->res->commit;
	r->author = p->res->author;
	r->author_name = p->res->author_name;
	r->author_email = p->res->author_email;
	r->trigger = p->opts->trigger ? p->opts->trigger : "cli";
	r->actor = p->opts->actor;
}

static void audit_item(struct tg_audit_record *r, struct pass *p, size_t i, char before[65])
{
	const struct tg_plan_item *it = &p->res->plan.items[i];

	audit_base(r, p);
	if (!p->ops[i][0])
		tg_audit_new_op(p->ops[i], tg_wall_ms(), ++p->s->audit_seq);
	memcpy(r->op, p->ops[i], sizeof(r->op));
	before[0] = '\0';
	if (it->actual)
		tg_diff_hash(before, it->kind, it->actual);
	r->kind = it->kind;
	r->id = it->id;
	r->action = it->action;
	r->before_hash = before;
	r->after_hash = it->desired_hash;
}

/*
 * Write-ahead: the intent of every write in the batch is on disk before the
 * gateway sees any of them.  When it cannot be recorded, nothing is written.
 */
static int write_intents(struct pass *p, const size_t *idx, size_t n)
{
	struct tg_audit_record *recs;
	char(*before)[65];
	struct tg_err err = { 0, "" };
	int rc;

	if (!p->s->audit || !n)
		return 0;
	recs = tg_xcalloc(n, sizeof(*recs));
	before = tg_xcalloc(n, sizeof(*before));
	for (size_t i = 0; i < n; i++) {
		audit_item(&recs[i], p, idx[i], before[i]);
		recs[i].phase = TG_AUDIT_INTENT;
		recs[i].result = TG_AUDIT_PENDING;
	}
	rc = tg_audit_append(p->s->audit, recs, n, &err);
	for (size_t i = 0; i < n; i++) {
		if (rc)
			p->errors[idx[i]] = tg_xasprintf("not applied: %s", err.msg);
		else
			p->write_order[p->n_write_order++] = idx[i];
	}
	free(recs);
	free(before);
	return rc;
}

/*
 * The hook before each write batch (see tg_reconcile_opts.may_write).
 * Once refused, the rest of the pass writes nothing: a replica that lost
 * its Lease must not race the new holder.
 */
static int may_write(struct pass *p)
{
	if (!p->write_refused && p->opts->may_write &&
	    !p->opts->may_write(p->opts->may_write_ctx)) {
		p->write_refused = 1;
		tg_log_kv(TG_LOG_WARN,
			  "stopping the pass: this replica no longer holds the sync's lease",
			  "sync", p->s->cfg->name, NULL);
	}
	return !p->write_refused;
}

#define NOT_HOLDER "not applied: this replica no longer holds the sync's lease"

static void run_writes(struct pass *p, const size_t *idx, size_t n)
{
	struct tg_write *w = tg_xcalloc(n ? n : 1, sizeof(*w));
	struct tg_err err = { 0, "" };
	long long started;
	int rc;

	if (n && !may_write(p)) {
		for (size_t i = 0; i < n; i++)
			p->errors[idx[i]] = tg_xstrdup(NOT_HOLDER);
		free(w);
		return;
	}
	if (write_intents(p, idx, n)) {
		free(w);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct tg_plan_item *it = &p->res->plan.items[idx[i]];

		w[i].kind = it->kind;
		w[i].id = it->id;
		if (it->action == TG_ACTION_DELETE) {
			w[i].op = TG_WRITE_DELETE;
		} else {
			w[i].op =
				it->action == TG_ACTION_CREATE ? TG_WRITE_CREATE : TG_WRITE_UPDATE;
			w[i].body = stamped_body(p, it);
		}
	}
	/* The stamped copies live only as long as their writes: the read-back
	 * is judged against the desired object (the diff leaves the marker
	 * out), so a first sync does not hold every object twice. */
	started = tg_now_ms();
	rc = tg_gateway_write_all(p->s->gw, w, n, &err);
	if (n)
		tg_log_debug("sync '%s': %zu writes in %lld ms, %d in flight at the end",
			     p->s->cfg->name, n, tg_now_ms() - started,
			     tg_gateway_write_window(p->s->gw));
	for (size_t i = 0; i < n; i++)
		cJSON_Delete((cJSON *)w[i].body);
	if (rc) {
		for (size_t i = 0; i < n; i++)
			p->errors[idx[i]] = tg_xstrdup(err.msg);
	} else {
		for (size_t i = 0; i < n; i++) {
			if (w[i].rc)
				p->errors[idx[i]] = tg_xstrdup(w[i].error);
			else
				p->written[idx[i]] = 1;
		}
	}
	free(w);
}

static void skip(struct pass *p, size_t i, const char *why)
{
	p->errors[i] = tg_xstrdup(why);
}

/* Stage 1: API creates/updates. */
static void apply_api_writes(struct pass *p)
{
	struct tg_plan *plan = &p->res->plan;
	size_t *idx = tg_xcalloc(plan->len ? plan->len : 1, sizeof(*idx)), n = 0;

	for (size_t i = 0; i < plan->len; i++)
		if (plan->items[i].kind != TG_KIND_POLICY && item_is_write(&plan->items[i]))
			idx[n++] = i;
	run_writes(p, idx, n);
	free(idx);
}

/* Stage 2: policy creates/updates whose every API reference exists. */
static void apply_policy_writes(struct pass *p, cJSON *const actual[TG_KIND_COUNT])
{
	struct tg_plan *plan = &p->res->plan;
	size_t *idx = tg_xcalloc(plan->len ? plan->len : 1, sizeof(*idx)), n = 0;
	struct tg_idset apis = { 0 };

	tg_safety_available_apis(&apis, plan, p->written, actual);
	for (size_t i = 0; i < plan->len; i++) {
		const struct tg_plan_item *it = &plan->items[i];
		const char *missing = NULL;

		if (it->kind != TG_KIND_POLICY || !item_is_write(it))
			continue;
		if (!tg_safety_policy_refs_ok(tg_object_body(it->desired), &apis, &missing)) {
			char why[TG_ERR_MSG_MAX];

			snprintf(why, sizeof(why),
				 "not applied: api '%.200s' it references is not on the gateway",
				 missing);
			skip(p, i, why);
			continue;
		}
		idx[n++] = i;
	}
	run_writes(p, idx, n);
	tg_idset_release(&apis);
	free(idx);
}

static void tombstone_record(struct tg_audit_record *r, struct pass *p)
{
	audit_base(r, p);
	if (!p->tombstone.op[0])
		tg_audit_new_op(p->tombstone.op, tg_wall_ms(), ++p->s->audit_seq);
	memcpy(r->op, p->tombstone.op, sizeof(r->op));
	r->kind = TG_KIND_POLICY;
	r->id = TG_TOMBSTONE_POLICY_ID;
	r->action = TG_ACTION_CREATE;
}

static int tombstone_intent(struct pass *p, struct tg_err *err)
{
	struct tg_audit_record r;

	if (!p->s->audit)
		return 0;
	tombstone_record(&r, p);
	r.phase = TG_AUDIT_INTENT;
	r.result = TG_AUDIT_PENDING;
	return tg_audit_append(p->s->audit, &r, 1, err);
}

/* See TG_TOMBSTONE_POLICY_ID. */
static void write_tombstone(struct pass *p)
{
	struct tg_marker m = { 0 };
	struct tg_write w = { 0 };
	struct tg_err err = { 0, "" };
	cJSON *body = cJSON_CreateObject();
	char when[TG_TIME_MAX];

	tg_rfc3339(when, tg_wall_ms(), 0);
	cJSON_AddStringToObject(body, "id", TG_TOMBSTONE_POLICY_ID);
	cJSON_AddStringToObject(body, "name", "tyk-gitops: placeholder so deleted policies unload");
	cJSON_AddBoolToObject(body, "active", 0);
	cJSON_AddBoolToObject(body, "is_inactive", 1);
	cJSON_AddObjectToObject(body, "access_rights");
	m.sync = p->s->cfg->name;
	m.commit = p->res->commit;
	m.file = (char *)"(tombstone)";
	m.applied_at = when;
	tg_marker_stamp(body, TG_KIND_POLICY, &m);
	w.op = TG_WRITE_CREATE;
	w.kind = TG_KIND_POLICY;
	w.id = TG_TOMBSTONE_POLICY_ID;
	w.body = body;
	if (!may_write(p))
		tg_err_set(&err, TG_ERROR, NOT_HOLDER);
	else if (tombstone_intent(p, &err) == 0 &&
		 (tg_gateway_write_all(p->s->gw, &w, 1, &err) == 0 && w.rc == 0))
		p->tombstone.written = 1;
	if (!p->tombstone.written) {
		p->tombstone.error = tg_xstrdup(w.rc ? w.error : err.msg);
		tg_log_kv(
			TG_LOG_WARN,
			"cannot write the tombstone policy; deleted policies stay loaded until the gateway restarts",
			"sync", p->s->cfg->name, "error", p->tombstone.error, NULL);
	}
	cJSON_Delete(body);
}

/* Stage 3 and 4: policy deletes, then API deletes. */
static void apply_deletes(struct pass *p, cJSON *const actual[TG_KIND_COUNT])
{
	struct tg_plan *plan = &p->res->plan;
	size_t *idx = tg_xcalloc(plan->len ? plan->len : 1, sizeof(*idx)), n = 0;
	struct tg_idset referenced = { 0 };

	for (size_t i = 0; i < plan->len; i++)
		if (plan->items[i].kind == TG_KIND_POLICY &&
		    plan->items[i].action == TG_ACTION_DELETE)
			idx[n++] = i;
	run_writes(p, idx, n);
	if (n > 0 && tg_safety_policies_left(plan, p->written, actual) == 0)
		write_tombstone(p);
	n = 0;
	tg_safety_referenced_apis(&referenced, plan, p->written, actual);
	for (size_t i = 0; i < plan->len; i++) {
		const struct tg_plan_item *it = &plan->items[i];

		if (it->kind == TG_KIND_POLICY || it->action != TG_ACTION_DELETE)
			continue;
		if (tg_idset_has(&referenced, it->id)) {
			skip(p, i, "not deleted: a policy on the gateway still references it");
			continue;
		}
		idx[n++] = i;
	}
	run_writes(p, idx, n);
	tg_idset_release(&referenced);
	free(idx);
}

/* Past this many writes, three list calls cost less than one GET each. */
#define VERIFY_BY_LIST_MIN 32

/* Judges one written object against what the gateway serves after the
 * reload (got is NULL when it does not serve it). */
static void judge_read_back(struct pass *p, size_t i, const cJSON *got)
{
	const struct tg_plan_item *it = &p->res->plan.items[i];
	struct tg_changes ch = { 0 };

	if (it->action == TG_ACTION_DELETE) {
		if (got)
			p->errors[i] = tg_xstrdup("still on the gateway after reload");
		return;
	}
	if (!got) {
		p->not_loaded[i] = 1; /* explained once every item is judged */
		return;
	}
	tg_diff_objects(&ch, it->kind, tg_object_body(it->desired), got, NULL);
	if (ch.len)
		p->errors[i] = tg_xasprintf("read back differs from what was written at '%s'",
					    ch.items[0].path);
	tg_changes_release(&ch);
}

static void verify_one_by_one(struct pass *p)
{
	struct tg_plan *plan = &p->res->plan;

	for (size_t i = 0; i < plan->len; i++) {
		struct tg_err err = { 0, "" };
		cJSON *got = NULL;
		int rc;

		if (!p->written[i])
			continue;
		rc = tg_gateway_get(p->s->gw, plan->items[i].kind, plan->items[i].id, &got, &err);
		if (rc && rc != TG_ENOTFOUND)
			p->errors[i] = tg_xstrdup(err.msg);
		else
			judge_read_back(p, i, got);
		cJSON_Delete(got);
	}
}

/* The written objects by kind and id, for the read-back through the lists. */
struct written_ref {
	const char *id;
	size_t item; /* plan index */
};

struct read_back {
	struct pass *p;
	struct tg_verified_pass *vp;
	struct written_ref *refs[TG_KIND_COUNT];
	size_t n_refs[TG_KIND_COUNT];
	unsigned char *seen; /* by plan index */
};

static int cmp_written_ref(const void *a, const void *b)
{
	return strcmp(((const struct written_ref *)a)->id, ((const struct written_ref *)b)->id);
}

/* One element of the lists after the reload: the written object of its id
 * (the first element of that id) is judged by it, and noted in sync when
 * it reads back as written. */
static void read_back_element(void *ctx, enum tg_kind kind, const cJSON *obj,
			      const unsigned char bytes_hash[32], int skeleton)
{
	struct read_back *rb = ctx;
	struct written_ref key = { tg_tyk_id(kind, obj), 0 };
	const struct written_ref *ref;
	const struct tg_plan_item *it;

	if (!key.id || !rb->n_refs[kind])
		return;
	ref = bsearch(&key, rb->refs[kind], rb->n_refs[kind], sizeof(key), cmp_written_ref);
	if (!ref || rb->seen[ref->item])
		return;
	rb->seen[ref->item] = 1;
	it = &rb->p->res->plan.items[ref->item];
	/* A skeleton's bytes are known in sync with the desired object: as
	 * written, nothing to diff. */
	if (skeleton && it->action != TG_ACTION_DELETE)
		return;
	judge_read_back(rb->p, ref->item, obj);
	if (!rb->p->errors[ref->item] && it->action != TG_ACTION_DELETE)
		tg_verified_note_bytes_in_sync(rb->vp, kind, obj, bytes_hash, it->desired_hash);
}

static void read_back_init(struct read_back *rb, struct pass *p, struct tg_verified_pass *vp)
{
	const struct tg_plan *plan = &p->res->plan;

	memset(rb, 0, sizeof(*rb));
	rb->p = p;
	rb->vp = vp;
	rb->seen = tg_xcalloc(plan->len ? plan->len : 1, 1);
	for (int k = 0; k < TG_KIND_COUNT; k++)
		rb->refs[k] = tg_xcalloc(plan->len ? plan->len : 1, sizeof(*rb->refs[k]));
	for (size_t i = 0; i < plan->len; i++) {
		enum tg_kind k = plan->items[i].kind;

		if (!p->written[i])
			continue;
		rb->refs[k][rb->n_refs[k]].id = plan->items[i].id;
		rb->refs[k][rb->n_refs[k]++].item = i;
	}
	for (int k = 0; k < TG_KIND_COUNT; k++)
		if (rb->n_refs[k])
			qsort(rb->refs[k], rb->n_refs[k], sizeof(*rb->refs[k]), cmp_written_ref);
}

static void read_back_release(struct read_back *rb)
{
	for (int k = 0; k < TG_KIND_COUNT; k++)
		free(rb->refs[k]);
	free(rb->seen);
}

/*
 * The read-back through the three lists, through the cache: what this pass
 * found in sync is not parsed again, each element is judged and freed as
 * it arrives (a first sync of 20,000 objects never holds them all parsed),
 * and what read back as written is noted in sync.  -1 when the lists
 * cannot be read so: the caller then reads each object.
 */
static int verify_by_lists(struct pass *p)
{
	const struct tg_plan *plan = &p->res->plan;
	struct tg_verified_pass *vp;
	struct tg_err err = { 0, "" };
	struct read_back rb;

	vp = tg_verified_pass_new(p->s->verified, p->d, p->hashes);
	read_back_init(&rb, p, vp);
	if (tg_passcache_visit_lists(p->s, vp, read_back_element, &rb, NULL)) {
		/* Judgments made before the failure are made again. */
		for (size_t i = 0; i < plan->len; i++) {
			if (!p->written[i])
				continue;
			free(p->errors[i]);
			p->errors[i] = NULL;
			p->not_loaded[i] = 0;
		}
		read_back_release(&rb);
		tg_verified_pass_free(vp);
		return -1;
	}
	for (size_t i = 0; i < plan->len; i++)
		if (p->written[i] && !rb.seen[i])
			judge_read_back(p, i, NULL);
	tg_verified_merge(vp, (const char *const *)p->d->secrets, p->d->n_secrets);
	if (tg_verified_save(p->s->verified, &err))
		tg_log_kv(TG_LOG_WARN, "cannot save the verified-objects cache", "sync",
			  p->s->cfg->name, "error", err.msg, NULL);
	read_back_release(&rb);
	tg_verified_pass_free(vp);
	return 0;
}

/*
 * Why a written object is not served after the reload.  The gateway says
 * only "ok"; the likely causes are named: for a policy, no policy_path;
 * for an API, something it needs from the gateway's environment, or
 * (Tyk 5.x) a policy load failure, which makes the gateway skip its APIs too.
 */
static void explain_not_loaded(struct pass *p)
{
	const struct tg_plan *plan = &p->res->plan;
	int policies_failed = 0;
	char dep[256];

	for (size_t i = 0; i < plan->len; i++)
		policies_failed |= p->not_loaded[i] && plan->items[i].kind == TG_KIND_POLICY;
	for (size_t i = 0; i < plan->len; i++) {
		const struct tg_plan_item *it = &plan->items[i];

		if (!p->not_loaded[i] || p->errors[i])
			continue;
		if (it->kind == TG_KIND_POLICY)
			p->errors[i] = tg_xstrdup(
				"not loaded after reload: is policies.policy_path set and policy_source \"file\" on the gateway?");
		else if (tg_tyk_external_dependency(dep, sizeof(dep), it->kind,
						    tg_object_body(it->desired)))
			p->errors[i] = tg_xasprintf(
				"not loaded after reload: the gateway skipped the definition; it uses %s",
				dep);
		else if (policies_failed)
			p->errors[i] = tg_xstrdup(
				"not loaded after reload: the gateway could not load the policies either; "
				"Tyk 5.x then skips APIs too (is policies.policy_path set?)");
		else
			p->errors[i] = tg_xstrdup(
				"not loaded after reload: the gateway skipped the definition (see its log)");
	}
}

/* After the reload: every written object must be loaded as desired, every
 * deleted one gone.  The gateway answers "ok" even when it skipped a
 * definition, so this is the only proof. */
static void verify(struct pass *p)
{
	size_t written = 0;

	for (size_t i = 0; i < p->res->plan.len; i++)
		written += p->written[i] ? 1 : 0;
	if (written < VERIFY_BY_LIST_MIN || verify_by_lists(p))
		verify_one_by_one(p);
	explain_not_loaded(p);
}

/*
 * The outcome of every change this pass attempted or skipped, in the order
 * of the intents.  An object the gateway accepted but that failed later
 * (reload, read-back) is recorded with "written": true: it may still go
 * live, and the next pass settles it.
 */
static void write_outcomes(struct pass *p)
{
	const struct tg_plan *plan = &p->res->plan;
	struct tg_audit_record *recs;
	char(*before)[65];
	size_t n = 0, *order = tg_xcalloc(plan->len + 1, sizeof(*order)), n_order = 0;
	struct tg_err err = { 0, "" };
	char *seen;

	if (!p->s->audit)
		goto out_order;
	seen = tg_xcalloc(plan->len + 1, 1);
	for (size_t k = 0; k < p->n_write_order; k++) {
		order[n_order++] = p->write_order[k];
		seen[p->write_order[k]] = 1;
	}
	for (size_t i = 0; i < plan->len; i++)
		if (!seen[i] && p->errors[i] && !plan->items[i].warn_only &&
		    plan->items[i].action != TG_ACTION_NONE &&
		    plan->items[i].action != TG_ACTION_CONFLICT)
			order[n_order++] = i; /* skipped: no intent, only the outcome */
	free(seen);
	recs = tg_xcalloc(n_order + 1, sizeof(*recs));
	before = tg_xcalloc(n_order + 1, sizeof(*before));
	for (size_t k = 0; k < n_order; k++, n++) {
		size_t i = order[k];

		audit_item(&recs[n], p, i, before[n]);
		recs[n].phase = TG_AUDIT_OUTCOME;
		recs[n].result = p->errors[i] ? TG_AUDIT_FAILED : TG_AUDIT_APPLIED;
		recs[n].error = p->errors[i];
		recs[n].written = p->written[i];
	}
	if (p->tombstone.op[0]) {
		tombstone_record(&recs[n], p);
		recs[n].phase = TG_AUDIT_OUTCOME;
		recs[n].result = p->tombstone.error ? TG_AUDIT_FAILED : TG_AUDIT_APPLIED;
		recs[n].error = p->tombstone.error;
		recs[n].written = p->tombstone.written;
		n++;
	}
	if (tg_audit_append(p->s->audit, recs, n, &err)) {
		/* The intents are on disk and stay open: the next pass closes them. */
		tg_reconcile_result_error(p->res, TG_OUTCOME_ERROR, err.msg);
		tg_log_kv(TG_LOG_ERROR,
			  "changes were applied but their audit outcome was not recorded", "sync",
			  p->s->cfg->name, "error", err.msg, NULL);
	}
	free(recs);
	free(before);
out_order:
	free(order);
}

static void collect_results(struct pass *p)
{
	struct tg_reconcile_result *res = p->res;
	struct tg_plan *plan = &res->plan;

	res->objects = tg_xcalloc(plan->len ? plan->len : 1, sizeof(*res->objects));
	for (size_t i = 0; i < plan->len; i++) {
		const struct tg_plan_item *it = &plan->items[i];
		struct tg_object_result *o = &res->objects[res->n_objects++];

		o->item = it;
		o->ok = p->errors[i] == NULL;
		o->error = p->errors[i] ? tg_xstrdup(p->errors[i]) : NULL;
		if (it->drifted)
			res->drifted++;
		if (it->warn_only) {
			res->warned++;
			tg_log_kv(TG_LOG_WARN, "drift left in place (policy warn)", "sync",
				  p->s->cfg->name, "kind", tg_kind_name(it->kind), "id", it->id,
				  NULL);
			continue;
		}
		switch (it->action) {
		case TG_ACTION_NONE: res->unchanged++; continue;
		case TG_ACTION_CONFLICT: res->conflicts++; continue;
		default: break;
		}
		if (p->errors[i]) {
			res->failed++;
			tg_log_kv(TG_LOG_ERROR, "object failed", "sync", p->s->cfg->name, "commit",
				  res->commit, "kind", tg_kind_name(it->kind), "id", it->id,
				  "action", tg_action_name(it->action), "error", p->errors[i],
				  NULL);
		} else if (it->action == TG_ACTION_CREATE) {
			res->created++;
		} else if (it->action == TG_ACTION_UPDATE) {
			res->updated++;
		} else if (it->action == TG_ACTION_DELETE) {
			res->deleted++;
		}
	}
	/* A conflict leaves the commit only partly applied: say so, so that a
	 * pipeline step fails instead of reporting success. */
	res->outcome = res->failed || res->conflicts ? TG_OUTCOME_PARTIAL : TG_OUTCOME_SUCCESS;
	if (res->failed)
		snprintf(res->error, sizeof(res->error), "%zu object(s) failed", res->failed);
	else if (res->conflicts)
		snprintf(
			res->error, sizeof(res->error),
			"%zu object(s) exist on the gateway and are not owned by this sync (set adopt: true to take them over)",
			res->conflicts);
}

static void apply_plan(struct pass *p, cJSON *const actual[TG_KIND_COUNT])
{
	struct tg_plan *plan = &p->res->plan;
	struct tg_err err = { 0, "" };
	int any = 0;

	p->written = tg_xcalloc(plan->len ? plan->len : 1, sizeof(*p->written));
	p->errors = tg_xcalloc(plan->len ? plan->len : 1, sizeof(*p->errors));
	p->ops = tg_xcalloc(plan->len ? plan->len : 1, sizeof(*p->ops));
	p->not_loaded = tg_xcalloc(plan->len ? plan->len : 1, 1);
	p->write_order = tg_xcalloc(plan->len ? plan->len : 1, sizeof(*p->write_order));
	apply_api_writes(p);
	apply_policy_writes(p, actual);
	apply_deletes(p, actual);
	for (size_t i = 0; i < plan->len; i++)
		any |= p->written[i];
	if (any) {
		if (!may_write(p))
			tg_err_set(&err, TG_ERROR, NOT_HOLDER);
		/* The reload takes seconds on a big gateway: the tree this
		 * pass switched away from goes meanwhile. */
		if (!err.msg[0])
			tg_syncer_tidy_start(p->s);
		if (err.msg[0] || tg_gateway_reload(p->s->gw, &err)) {
			for (size_t i = 0; i < plan->len; i++)
				if (p->written[i] && !p->errors[i])
					p->errors[i] = tg_xstrdup(err.msg);
		} else {
			verify(p);
		}
		if (p->tombstone.written && !p->tombstone.error && err.msg[0])
			p->tombstone.error = tg_xstrdup(err.msg);
	}
	collect_results(p);
	write_outcomes(p);
	for (size_t i = 0; i < plan->len; i++)
		free(p->errors[i]);
	free(p->written);
	free(p->errors);
	free(p->ops);
	free(p->not_loaded);
	free(p->write_order);
	free(p->tombstone.error);
}

/*
 * Closes the audit operations a crash (or a failed reload) left open, from
 * what the gateway serves now, before this pass plans anything: a change
 * that went live is never left unrecorded.
 */
static void settle_open_ops(struct tg_syncer *s, cJSON *const actual[TG_KIND_COUNT])
{
	const struct tg_audit_op **ops;
	struct tg_audit_record *recs;
	struct tg_index ix[TG_KIND_COUNT];
	struct tg_err err = { 0, "" };
	size_t n;

	if (!s->audit)
		return;
	ops = tg_audit_open_ops(s->audit, s->cfg->name, &n);
	if (!n) {
		free(ops);
		return;
	}
	for (int k = 0; k < TG_KIND_COUNT; k++)
		tg_index_build(&ix[k], (enum tg_kind)k, actual[k]);
	recs = tg_xcalloc(n, sizeof(*recs));
	for (size_t i = 0; i < n; i++) {
		long at = tg_index_find(&ix[ops[i]->kind], ops[i]->id);

		tg_audit_record_from_op(&recs[i], ops[i]);
		recs[i].result =
			tg_audit_judge(ops[i], at < 0 ? NULL : ix[ops[i]->kind].items[at].obj);
	}
	if (tg_audit_append(s->audit, recs, n, &err))
		tg_log_kv(TG_LOG_ERROR, "cannot record the outcome of earlier changes", "sync",
			  s->cfg->name, "error", err.msg, NULL);
	else
		tg_log_kv(TG_LOG_INFO, "recorded the outcome of changes an earlier run left open",
			  "sync", s->cfg->name, NULL);
	for (int k = 0; k < TG_KIND_COUNT; k++)
		tg_index_release(&ix[k]);
	free(recs);
	free(ops);
}

/* --- the pass --- */

void tg_reconcile_one_pass(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
			   struct tg_reconcile_result *res, const char *pin, char head[41])
{
	struct tg_desired *d = NULL;
	struct tg_load_opts lopts = { 0 };
	struct tg_plan_opts popts = { 0 };
	struct tg_err err = { 0, "" };
	struct pass p = { 0 };
	cJSON *actual[TG_KIND_COUNT] = { NULL, NULL, NULL };
	struct tg_idset gateway_apis = { 0 };
	struct tg_verified_pass *vp = NULL;
	struct tg_lists_ahead *ahead = NULL;
	char(*hashes)[65] = NULL;
	char *root = NULL;
	long long start = tg_now_ms(), max_delete;
	int rc;
	unsigned long requests0 = tg_gateway_request_count(s->gw);

	memset(res, 0, sizeof(*res));
	tg_problems_init(&res->problems);
	/* A pass that loads its commit asks for the lists first, so that the
	 * gateway builds them while git is fetched and the commit loaded;
	 * s->gw is then the list thread's until they are in. */
	if (!tg_passcache_keeps(s, NULL))
		ahead = tg_lists_ahead_start(s->gw, 1);
	if (tg_syncer_fetch(s, opts, res, &root, pin, head))
		goto out;
	if (!ahead && !tg_passcache_keeps(s, res->commit))
		ahead = tg_lists_ahead_start(s->gw, 1);
	if (s->commit_observe && !opts->dry_run && !opts->local_dir && !res->source_error[0] &&
	    res->commit[0])
		s->commit_observe(s->commit_observe_ctx, s->cfg->name, res->commit);
	lopts.root = root;
	/* The repository's side of the path: opened without following links. */
	lopts.path = s->cfg->path;
	lopts.secrets_dir = s->cfg->secrets_dir;
	lopts.allow_empty = s->cfg->allow_empty;
	lopts.keep_positions = s->cfg->rules != NULL;
	if (tg_passcache_desired(&d, &hashes, s, &lopts, res, opts, &err)) {
		tg_reconcile_result_error(res, TG_OUTCOME_REFUSED, err.msg);
		goto out;
	}
	vp = tg_passcache_verified_pass(s, d, (const char(*)[65])hashes);
	rc = tg_passcache_list_actual(s, ahead, vp, actual, &err);
	ahead = NULL;
	if (rc) {
		tg_reconcile_result_error(res, TG_OUTCOME_ERROR, err.msg);
		goto out;
	}
	settle_open_ops(s, actual);
	tg_safety_gateway_apis(&gateway_apis, actual);
	tg_desired_check_refs(d, gateway_apis.ids, gateway_apis.len, &res->problems);
	tg_rules_check(s->cfg->rules, d, &res->problems);
	tg_problems_redact(&res->problems, (const char *const *)d->secrets, d->n_secrets);
	if (res->problems.errors > 0) {
		char msg[TG_ERR_MSG_MAX];
		int by_rules = tg_problems_rule_errors(&res->problems, NULL);

		snprintf(msg, sizeof(msg),
			 "commit %.12s is %s (%zu problem(s)); nothing was applied",
			 res->commit[0] ? res->commit : "(local)",
			 by_rules ? "refused by rules" : "invalid", res->problems.errors);
		tg_reconcile_result_error(res, TG_OUTCOME_REFUSED, msg);
		tg_governed_audit_refusal(s, opts, res);
		goto out;
	}
	popts.sync_name = s->cfg->name;
	popts.adopt = s->cfg->adopt;
	popts.prune = s->cfg->prune;
	popts.drift = s->cfg->drift_policy;
	popts.secrets.values = (const char *const *)d->secrets;
	popts.secrets.len = d->n_secrets;
	popts.desired_hashes = (const char(*)[65])hashes;
	if (vp) {
		popts.in_sync = tg_verified_in_sync;
		popts.in_sync_ctx = vp;
	}
	tg_plan_build(&res->plan, d, actual, &popts);
	if (vp)
		tg_passcache_verified_record(s, vp, &res->plan, d);
	tg_rules_check_plan(s->cfg->rules, &res->plan, opts->force, &res->problems);
	if (res->problems.errors > 0) {
		char msg[TG_ERR_MSG_MAX];

		snprintf(msg, sizeof(msg),
			 "commit %.12s is refused by rules (%zu problem(s)); nothing was applied",
			 res->commit[0] ? res->commit : "(local)", res->problems.errors);
		tg_reconcile_result_error(res, TG_OUTCOME_REFUSED, msg);
		tg_governed_audit_refusal(s, opts, res);
		goto out;
	}
	max_delete = tg_safety_max_deletes(s->cfg->max_delete, res->plan.owned);
	if ((long long)res->plan.counts[TG_ACTION_DELETE] > max_delete && !opts->force) {
		char msg[TG_ERR_MSG_MAX];

		snprintf(
			msg, sizeof(msg),
			"refusing to delete %zu objects (max_delete is %lld); use --force to apply",
			res->plan.counts[TG_ACTION_DELETE], max_delete);
		tg_reconcile_result_error(res, TG_OUTCOME_REFUSED, msg);
		goto out;
	}
	if (opts->dry_run) {
		res->outcome = TG_OUTCOME_SUCCESS;
		goto out;
	}
	p.s = s;
	p.opts = opts;
	p.res = res;
	p.d = d;
	p.hashes = (const char(*)[65])hashes;
	apply_plan(&p, actual);
out:
	if (res->source_error[0] &&
	    (res->outcome == TG_OUTCOME_SUCCESS || res->outcome == TG_OUTCOME_PARTIAL)) {
		char msg[TG_ERR_MSG_MAX];

		snprintf(msg, sizeof(msg), "%.300s; the pass ran on the last good commit %.12s",
			 res->source_error, res->commit);
		tg_reconcile_result_error(res, TG_OUTCOME_ERROR, msg);
	}
	tg_lists_ahead_drop(ahead);
	res->duration_ms = tg_now_ms() - start;
	res->gateway_requests = tg_gateway_request_count(s->gw) - requests0;
	tg_idset_release(&gateway_apis);
	tg_verified_pass_free(vp);
	free(hashes);
	for (int k = 0; k < TG_KIND_COUNT; k++)
		res->actual[k] = actual[k];
	res->desired = d;
	free(root);
}

void tg_reconcile_result_release(struct tg_reconcile_result *res)
{
	free(res->health_detail);
	tg_plan_release(&res->plan);
	for (int k = 0; k < TG_KIND_COUNT; k++)
		cJSON_Delete(res->actual[k]);
	tg_desired_free(res->desired);
	tg_problems_release(&res->problems);
	for (size_t i = 0; i < res->n_objects; i++)
		free(res->objects[i].error);
	free(res->objects);
	free(res->author);
	free(res->author_name);
	free(res->author_email);
	free(res->summary_line);
	memset(res, 0, sizeof(*res));
}
