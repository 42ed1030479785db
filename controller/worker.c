/*
 * The reconcile worker (see include/tg/daemon_state.h): picks the next due
 * sync, runs its remote check or pass without holding the lock, publishes
 * the result, and swaps in configurations the main thread validated.  It
 * owns every syncer, so every libgit2 and libcurl handle.  After a pass it
 * also answers the requests waiting with ?commit=: whether that commit is
 * the one live, or an ancestor of it, in the sync's clone (asked of the
 * git source, on this thread, which owns every libgit2 handle).
 */
#include "tg/daemon_state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg/bitbucket.h"
#include "tg/catalog.h"
#include "tg/elector.h"
#include "tg/gitsrc.h"
#include "tg/history.h"
#include "tg/log.h"
#include "tg/report.h"
#include "tg/banned.h"

static double next_rand(struct tg_daemon *d)
{
	/* xorshift64*: jitter only needs to spread syncs apart. */
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return (double)((d->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

struct tg_dsync *tg_daemon_find_sync(struct tg_daemon *d, const char *name)
{
	for (size_t i = 0; i < d->n_syncs; i++)
		if (!strcmp(d->syncs[i]->cfg->name, name))
			return d->syncs[i];
	return NULL;
}

/* --- provenance -------------------------------------------------------------- */

/* The pass's actors: texts joined for the audit trail, identities as a
 * JSON list for the status API. */
struct pass_actors {
	struct tg_actor a[TG_MAX_PENDING_ACTORS];
	size_t n, more;
};

/* Under the lock, when a pass begins: it serves every pending trigger. */
static void take_actors(struct tg_dsync *s, struct pass_actors *pa)
{
	memcpy(pa->a, s->actors, sizeof(pa->a));
	pa->n = s->n_actors;
	pa->more = s->more_actors;
	memset(s->actors, 0, sizeof(s->actors));
	s->n_actors = s->more_actors = 0;
}

static void release_actors(struct pass_actors *pa)
{
	for (size_t i = 0; i < pa->n; i++)
		tg_actor_release(&pa->a[i]);
	pa->n = 0;
}

static char *actor_text(const struct pass_actors *pa)
{
	struct tg_buf b = TG_BUF_INIT;

	for (size_t i = 0; i < pa->n; i++) {
		if (i)
			tg_buf_puts(&b, "; ");
		tg_buf_puts(&b, pa->a[i].text);
	}
	if (pa->more)
		tg_buf_printf(&b, "; and %zu more", pa->more);
	return pa->n ? tg_buf_detach(&b) : (tg_buf_release(&b), NULL);
}

/* --- ?commit= ------------------------------------------------------------------ */

struct query_answer {
	unsigned long long id;
	char sha[41];
	const char *relation;
};

/* Under the lock: the queries this pass serves. */
static size_t pending_queries(struct tg_dsync *s, unsigned long long ticket,
			      struct query_answer **out)
{
	struct query_answer *a = NULL;
	size_t n = 0;

	for (struct tg_commit_query *q = s->queries; q; q = q->next) {
		if (q->ticket > ticket || q->done)
			continue;
		a = tg_xreallocarray(a, n + 1, sizeof(*a));
		a[n].id = q->id;
		memcpy(a[n].sha, q->sha, sizeof(a[n].sha));
		a[n].relation = "unknown";
		n++;
	}
	*out = a;
	return n;
}

/* --- Bitbucket build statuses ---------------------------------------------- */

/* Queues one state of the sync's status on commit (never waits on I/O). */
static void bb_post(struct tg_daemon *d, struct tg_dsync *s, const char *commit, const char *state,
		    const char *desc)
{
	struct tg_bb_target t;
	struct tg_err err = { 0, "" };
	struct tg_bb_status st;
	char key[TG_BB_KEY_MAX + 1], *name, *url;

	if (!d->notifier || !s->cfg->bitbucket || !s->cfg->bb_statuses)
		return;
	if (tg_bb_target_resolve(&t, s->cfg, &err)) {
		tg_log_kv(TG_LOG_WARN, "no bitbucket status", "sync", s->cfg->name, "error",
			  err.msg, NULL);
		return;
	}
	tg_bb_status_key(key, s->cfg->name);
	name = tg_xasprintf("tyk-gitops %s", s->cfg->name);
	url = s->cfg->bb_status_url ? tg_xstrdup(s->cfg->bb_status_url)
				    : tg_bb_default_status_url(d->global->listen, s->cfg->name);
	st.key = key;
	st.state = state;
	st.name = name;
	st.url = url;
	st.description = desc;
	tg_notifier_status(d->notifier, s->cfg->name, &t, commit, &st);
	free(name);
	free(url);
	tg_bb_target_release(&t);
}

/* The syncer's commit observer: a pass that will apply commit begins. */
static void bb_begin(void *ctx, const char *sync, const char *commit)
{
	struct tg_daemon *d = ctx;
	struct tg_dsync *s = tg_daemon_find_sync(d, sync); /* worker: the list is ours */

	if (!s)
		return;
	/* A drift pass of a commit already reported SUCCESSFUL posts nothing
	 * unless its outcome changes. */
	if (!strcmp(s->bb_commit, commit) && s->bb_state && !strcmp(s->bb_state, "SUCCESSFUL"))
		return;
	s->bb_began = 1;
	bb_post(d, s, commit, "INPROGRESS", "applying the commit to the gateway");
}

/* The one-line description of a pass's end: the summary, or the first
 * error (for a refused commit, its first problem too). */
static char *bb_description(const struct tg_reconcile_result *res)
{
	struct tg_buf b = TG_BUF_INIT;
	char summary[256];

	if (res->outcome == TG_OUTCOME_SUCCESS) {
		tg_report_summary(res, summary, sizeof(summary));
		return tg_xstrdup(summary);
	}
	tg_buf_puts(&b, res->error);
	for (size_t i = 0; i < res->n_objects; i++)
		if (!res->objects[i].ok && res->objects[i].error) {
			const struct tg_plan_item *it = res->objects[i].item;

			tg_buf_printf(&b, ": %s '%s': %s", tg_kind_name(it->kind), it->id,
				      res->objects[i].error);
			break;
		}
	for (size_t i = 0; i < res->problems.len; i++) {
		const struct tg_problem *p = &res->problems.items[i];

		if (p->severity != TG_SEV_ERROR)
			continue;
		tg_buf_printf(&b, ": %s:%d:%d: %s%s%s", p->file ? p->file : "", p->line, p->column,
			      p->field ? p->field : "", p->field ? ": " : "", p->msg);
		break;
	}
	return tg_buf_detach(&b);
}

static void bb_end(struct tg_daemon *d, struct tg_dsync *s, const struct tg_reconcile_result *res)
{
	const char *state = res->outcome == TG_OUTCOME_SUCCESS ? "SUCCESSFUL" : "FAILED";
	char *desc;
	int began = s->bb_began;

	s->bb_began = 0;
	if (res->refused_commit[0]) {
		if (strcmp(s->bb_commit, res->refused_commit)) {
			bb_post(d, s, res->refused_commit, "FAILED", res->error);
			memcpy(s->bb_commit, res->refused_commit, sizeof(s->bb_commit));
			s->bb_state = "FAILED";
		}
		return;
	}
	/* A fetch that failed ran the last good commit again: not the one
	 * anyone waits for a status on. */
	if (!res->commit[0] || res->source_error[0])
		return;
	if (!began && !strcmp(s->bb_commit, res->commit) && s->bb_state &&
	    !strcmp(s->bb_state, state))
		return;
	desc = bb_description(res);
	bb_post(d, s, res->commit, state, desc);
	free(desc);
	memcpy(s->bb_commit, res->commit, sizeof(s->bb_commit));
	s->bb_state = state;
}

/* --- passes ----------------------------------------------------------------- */

static void ensure_syncer(struct tg_daemon *d, struct tg_dsync *s, struct tg_err *err)
{
	if (s->syncer)
		return;
	if (tg_syncer_new(&s->syncer, s->cfg, d->global->cache_dir, err)) {
		s->syncer = NULL;
		return;
	}
	tg_syncer_set_audit(s->syncer, d->audit);
	tg_syncer_set_gateway_observer(s->syncer, tg_catalog_observe_gateway, d->metrics);
	tg_syncer_set_git_observer(s->syncer, tg_catalog_observe_git, d->metrics);
	tg_syncer_set_commit_observer(s->syncer, bb_begin, d);
	/* Say what is wrong with the gateway once, plainly, before the first
	 * pass fails on it and backs off. */
	if (tg_syncer_check_gateway(s->syncer, err))
		tg_log_kv(TG_LOG_ERROR, "gateway check failed", "sync", s->cfg->name, "error",
			  err->msg, NULL);
	else
		tg_log_kv(TG_LOG_INFO, "gateway reachable, secret accepted", "sync", s->cfg->name,
			  NULL);
	tg_err_clear(err);
}

static void run_check(struct tg_daemon *d, struct tg_dsync *s)
{
	struct tg_err err = { 0, "" };
	char head[41] = "";
	const char *name = s->cfg->name;
	long long t0 = tg_now_ms();
	int changed = 1, rc = 0;
	double secs;

	ensure_syncer(d, s, &err);
	if (s->syncer)
		rc = tg_syncer_remote_changed(s->syncer, &changed, head, &err);
	secs = (double)(tg_now_ms() - t0) / 1000.0;
	if (s->syncer && s->cfg->repo_url)
		tg_catalog_git(d->metrics, name, "ls_remote", rc == 0, secs);
	if (rc)
		tg_log_kv(TG_LOG_WARN, "cannot check the remote ref", "sync", name, "error",
			  err.msg, NULL);
	else if (changed && head[0])
		tg_log_kv(TG_LOG_INFO, "ref moved", "sync", name, "commit", head, NULL);
	pthread_mutex_lock(&d->lock);
	if (head[0])
		memcpy(s->remote_head, head, sizeof(head));
	if (rc)
		snprintf(s->last_error, sizeof(s->last_error), "%s", err.msg);
	tg_sched_check_done(&s->sched, tg_now_ms(), rc == 0, changed, next_rand(d));
	pthread_mutex_unlock(&d->lock);
}

/* The reconcile hook before each write batch: only while our Lease holds. */
struct guard_ctx {
	struct tg_daemon *d;
	const char *sync;
};

static int lease_guard(void *ctx)
{
	struct guard_ctx *g = ctx;

	return tg_elector_may_write(g->d->elector, g->sync);
}

/* The apply history for GET .../history, rendered on the worker (which
 * owns the syncer) so that handlers only copy a string. */
static char *history_text(struct tg_syncer *syncer)
{
	cJSON *h = tg_syncer_history_json(syncer, TG_HISTORY_MAX);
	char *text = cJSON_PrintUnformatted(h);

	cJSON_Delete(h);
	return text;
}

static void run_pass(struct tg_daemon *d, struct tg_dsync *s, unsigned triggers,
		     unsigned long long ticket, int plan_only, struct pass_actors *pa)
{
	struct tg_reconcile_result res;
	struct tg_reconcile_opts opts = { 0 };
	struct tg_report_ctx ctx = { 0 };
	struct tg_err err = { 0, "" };
	struct guard_ctx guard = { d, s->cfg->name };
	struct query_answer *answers = NULL;
	char prev_commit[41], live[41], rollback_to[41], *json, *actor = actor_text(pa);
	char *history = NULL, pin[41] = "", failed[41] = "";
	int force;
	size_t n_answers;
	cJSON *o, *ids;
	int ok, applied;

	ctx.sync = s->cfg->name;
	ctx.trigger = tg_sched_trigger_name(triggers);
	ctx.started_wall_ms = tg_wall_ms();
	ctx.plan_only = plan_only;
	/* The status API serves this on every GET: keep it small. */
	ctx.max_items = TG_STATUS_MAX_ITEMS;
	{
		const char *l[] = { ctx.sync, ctx.trigger };

		tg_metrics_add(d->metrics, TG_M_TRIGGERS, l, 1);
	}
	pthread_mutex_lock(&d->lock);
	memcpy(prev_commit, s->applied_commit, sizeof(prev_commit));
	/* What the API asked of this pass. */
	force = s->force_pending;
	memcpy(rollback_to, s->rollback_to, sizeof(rollback_to));
	s->force_pending = 0;
	s->rollback_to[0] = '\0';
	pthread_mutex_unlock(&d->lock);
	ensure_syncer(d, s, &err);
	if (!s->syncer) {
		memset(&res, 0, sizeof(res));
		tg_problems_init(&res.problems);
		res.outcome = TG_OUTCOME_ERROR;
		snprintf(res.error, sizeof(res.error), "%s", err.msg);
	} else {
		opts.trigger = ctx.trigger;
		opts.actor = actor ? actor : triggers & TG_TRIGGER_PIPELINE ? "api" : NULL;
		opts.dry_run = plan_only; /* suspended: plan only */
		if (d->elector) {
			opts.may_write = lease_guard;
			opts.may_write_ctx = &guard;
		}
		opts.force = force;
		opts.rollback_to = rollback_to[0] ? rollback_to : NULL;
		if (opts.rollback_to)
			ctx.trigger = opts.trigger = "rollback";
		tg_syncer_run(s->syncer, &opts, &res);
		history = history_text(s->syncer);
		tg_syncer_pin(s->syncer, pin, failed);
	}
	/* Settled passes are not retried: a refused commit stays refused, and
	 * after a rollback the pinned good commit is live until the ref moves,
	 * which the next cheap check sees without a failure's backoff. */
	ok = res.outcome == TG_OUTCOME_SUCCESS || res.outcome == TG_OUTCOME_REFUSED ||
	     res.rollback == 1;
	applied = !plan_only && res.commit[0] &&
		  (res.outcome == TG_OUTCOME_SUCCESS || res.outcome == TG_OUTCOME_PARTIAL);
	tg_report_metrics(d->metrics, &ctx, &res, prev_commit);
	tg_report_log(&ctx, &res);
	if (!plan_only)
		bb_end(d, s, &res);
	o = tg_report_json(&ctx, &res);
	/* Provenance of the run for the status API: who asked for it. */
	tg_json_add_str_or_null(o, "actor", actor);
	ids = cJSON_AddArrayToObject(o, "identities");
	for (size_t i = 0; i < pa->n; i++) {
		cJSON *id = pa->a[i].identity ? cJSON_Parse(pa->a[i].identity) : NULL;

		if (id)
			cJSON_AddItemToArray(ids, id);
	}
	json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);

	/* What is live after this pass, for the requests asking about a
	 * commit: the relations need libgit2, so outside the lock. */
	memcpy(live,
	       res.live_commit[0] ? res.live_commit
	       : applied          ? res.commit
				  : prev_commit,
	       sizeof(live));
	pthread_mutex_lock(&d->lock);
	n_answers = pending_queries(s, ticket, &answers);
	pthread_mutex_unlock(&d->lock);
	if (n_answers) {
		/* The clone is gitsrc's, in the sync's cache directory. */
		char *dir = tg_xasprintf("%s/%s", d->global->cache_dir, s->cfg->name);

		for (size_t i = 0; i < n_answers; i++)
			answers[i].relation = tg_git_commit_relation(dir, live, answers[i].sha);
		free(dir);
	}

	pthread_mutex_lock(&d->lock);
	for (struct tg_commit_query *q = s->queries; q; q = q->next)
		for (size_t i = 0; i < n_answers; i++)
			if (q->id == answers[i].id) {
				q->relation = answers[i].relation;
				memcpy(q->live_commit, live, sizeof(q->live_commit));
				q->done = 1;
			}
	s->passes++;
	s->has_result = 1;
	s->last_outcome = res.outcome;
	snprintf(s->last_error, sizeof(s->last_error), "%s", res.error);
	if (applied)
		memcpy(s->applied_commit, res.commit, sizeof(s->applied_commit));
	if (res.live_commit[0])
		memcpy(s->applied_commit, res.live_commit, sizeof(s->applied_commit));
	if (history) {
		free(s->history_json);
		s->history_json = history;
		memcpy(s->pinned_commit, pin, sizeof(pin));
		memcpy(s->failed_commit, failed, sizeof(failed));
	}
	s->last_run_wall_ms = ctx.started_wall_ms;
	if (!plan_only && res.outcome == TG_OUTCOME_SUCCESS)
		s->last_success_wall_ms = tg_wall_ms();
	free(s->last_result_json);
	s->last_result_json = json;
	s->running_trigger = NULL;
	if (ticket > s->done_seq)
		s->done_seq = ticket;
	tg_sched_pass_done(&s->sched, tg_now_ms(), ok, next_rand(d), next_rand(d));
	pthread_cond_broadcast(&d->done);
	pthread_mutex_unlock(&d->lock);
	tg_reconcile_result_release(&res);
	free(answers);
	free(actor);
	/* The result is out: now the old tree can go. */
	tg_syncer_tidy(s->syncer);
}

/* --- syncs and reloads ---------------------------------------------------- */

void tg_dsync_free(struct tg_dsync *s)
{
	if (!s)
		return;
	tg_syncer_free(s->syncer);
	tg_config_free(s->own);
	free(s->last_result_json);
	free(s->history_json);
	for (size_t i = 0; i < s->n_actors; i++)
		tg_actor_release(&s->actors[i]);
	/* s->queries live on their handlers' stacks. */
	free(s);
}

struct tg_dsync *tg_dsync_new(struct tg_sync_config *src, long long now)
{
	struct tg_dsync *s = tg_xcalloc(1, sizeof(*s));

	s->own = tg_config_new();
	s->own->syncs = tg_xcalloc(1, sizeof(*s->own->syncs));
	memcpy(&s->own->syncs[0], src, sizeof(*src));
	memset(src, 0, sizeof(*src));
	s->own->n_syncs = 1;
	s->cfg = &s->own->syncs[0];
	tg_sched_init(&s->sched, s->cfg->interval_ms, s->cfg->drift_interval_ms,
		      s->cfg->backoff_max_ms, now);
	s->sched.suspended = s->cfg->suspended;
	s->config_suspended = s->cfg->suspended;
	return s;
}

static struct tg_audit *open_audit(const char *path, struct tg_err *err)
{
	struct tg_audit *a = NULL;

	if (path)
		tg_audit_open(&a, path, err);
	return a;
}

/* Worker: swaps in a configuration the main thread validated. */
static void apply_reload(struct tg_daemon *d, struct tg_config *nc)
{
	struct tg_dsync **next = tg_xcalloc(nc->n_syncs ? nc->n_syncs : 1, sizeof(*next));
	struct tg_dsync **drop = tg_xcalloc(d->n_syncs ? d->n_syncs : 1, sizeof(*drop));
	int *dropped_name_kept = tg_xcalloc(d->n_syncs ? d->n_syncs : 1, sizeof(int));
	size_t n_drop = 0, kept = 0, changed = 0;
	int same_cache = !strcmp(nc->cache_dir, d->global->cache_dir);
	int audit_changed = !tg_str_eq(nc->audit, d->audit_path);
	struct tg_audit *audit = d->audit;
	struct tg_err err = { 0, "" };
	long long now = tg_now_ms();

	if (audit_changed) {
		audit = open_audit(nc->audit, &err);
		if (nc->audit && !audit) {
			tg_log_kv(TG_LOG_ERROR, "reload: keeping the old audit destination",
				  "error", err.msg, NULL);
			audit = d->audit;
			audit_changed = 0;
		}
	}
	pthread_mutex_lock(&d->lock);
	for (size_t j = 0; j < nc->n_syncs; j++) {
		struct tg_sync_config *sc = &nc->syncs[j];
		struct tg_dsync *old = tg_daemon_find_sync(d, sc->name);

		if (old && same_cache && tg_sync_config_equal(old->cfg, sc)) {
			/* Webhook and OIDC rules take effect now, without a
			 * new syncer; handlers read them under this lock. */
			tg_sync_config_swap_access(old->cfg, sc);
			/* Only an edit of `suspend:` overrides a suspend or
			 * resume made through the API. */
			if (old->config_suspended != sc->suspended) {
				const char *l[] = { sc->name };

				old->config_suspended = sc->suspended;
				if (old->sched.suspended && !sc->suspended)
					tg_sched_trigger(&old->sched, TG_TRIGGER_RESUME);
				old->sched.suspended = sc->suspended;
				tg_metrics_set(d->metrics, TG_M_SUSPENDED, l, sc->suspended);
			}
			next[j] = old;
			kept++;
			continue;
		}
		next[j] = tg_dsync_new(sc, now);
		changed++;
		if (old) {
			/* Waiting requests hold tickets of the old sync. */
			next[j]->trigger_seq = old->trigger_seq;
			next[j]->done_seq = old->done_seq;
			next[j]->sched.pending |= old->sched.pending;
			next[j]->queries = old->queries;
			old->queries = NULL;
			memcpy(next[j]->actors, old->actors, sizeof(old->actors));
			next[j]->n_actors = old->n_actors;
			next[j]->more_actors = old->more_actors;
			memset(old->actors, 0, sizeof(old->actors));
			old->n_actors = old->more_actors = 0;
		}
		tg_catalog_sync_init(d->metrics, next[j]->cfg->name, next[j]->sched.suspended);
		if (d->elector) {
			const char *l[] = { next[j]->cfg->name };

			tg_metrics_set(d->metrics, TG_M_LEADER, l,
				       tg_elector_holds_locked(d->elector, next[j]->cfg->name));
		}
	}
	for (size_t i = 0; i < d->n_syncs; i++) {
		size_t j;

		for (j = 0; j < nc->n_syncs; j++)
			if (next[j] == d->syncs[i])
				break;
		if (j == nc->n_syncs)
			drop[n_drop++] = d->syncs[i];
	}
	free(d->syncs);
	d->syncs = next;
	d->n_syncs = nc->n_syncs;
	d->rr = 0;
	tg_config_free(d->owned_global);
	d->owned_global = nc;
	d->global = nc;
	if (audit_changed) {
		tg_audit_free(d->audit);
		d->audit = audit;
		free(d->audit_path);
		d->audit_path = nc->audit ? tg_xstrdup(nc->audit) : NULL;
		for (size_t i = 0; i < d->n_syncs; i++)
			if (d->syncs[i]->syncer)
				tg_syncer_set_audit(d->syncs[i]->syncer, d->audit);
	}
	pthread_cond_broadcast(&d->done);
	pthread_mutex_unlock(&d->lock);
	for (size_t i = 0; i < n_drop; i++) {
		/* d->syncs only changes on this thread: safe to read unlocked. */
		dropped_name_kept[i] = tg_daemon_find_sync(d, drop[i]->cfg->name) != NULL;
		if (!dropped_name_kept[i])
			tg_catalog_sync_drop(d->metrics, drop[i]->cfg->name);
		tg_dsync_free(drop[i]);
	}
	free(drop);
	{
		char k[32], c[32], r[32];
		size_t removed = 0;

		for (size_t i = 0; i < n_drop; i++)
			removed += !dropped_name_kept[i];
		snprintf(k, sizeof(k), "%zu", kept);
		snprintf(c, sizeof(c), "%zu", changed);
		snprintf(r, sizeof(r), "%zu", removed);
		tg_log_kv(TG_LOG_INFO, "configuration reloaded", "unchanged_syncs", k,
			  "new_or_changed_syncs", c, "removed_syncs", r, "path",
			  nc->path ? nc->path : "", NULL);
	}
	free(dropped_name_kept);
}

/* --- the loop ---------------------------------------------------------------- */

void *tg_worker_main(void *arg)
{
	struct tg_daemon *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		struct tg_dsync *pick = NULL;
		enum tg_sched_action act = TG_SCHED_NONE;
		long long now = tg_now_ms(), next = now + TG_HEARTBEAT_MS;
		unsigned triggers;
		unsigned long long ticket;
		int plan_only;
		struct pass_actors pa = { .n = 0 };

		d->heartbeat_ms = now;
		if (d->pending) {
			struct tg_config *nc = d->pending;

			d->pending = NULL;
			pthread_mutex_unlock(&d->lock);
			apply_reload(d, nc);
			pthread_mutex_lock(&d->lock);
			continue;
		}
		/* Round robin, so a busy sync cannot starve the others. */
		for (size_t k = 0; k < d->n_syncs && !pick; k++) {
			struct tg_dsync *s = d->syncs[(d->rr + k) % d->n_syncs];

			/* Another replica applies the syncs whose Lease it holds. */
			if (d->elector && !tg_elector_holds_locked(d->elector, s->cfg->name))
				continue;
			act = tg_sched_due(&s->sched, now);
			if (act != TG_SCHED_NONE) {
				pick = s;
				d->rr = (d->rr + k + 1) % d->n_syncs;
			}
		}
		if (!pick) {
			struct timespec ts;

			for (size_t k = 0; k < d->n_syncs; k++) {
				long long t;

				if (d->elector &&
				    !tg_elector_holds_locked(d->elector, d->syncs[k]->cfg->name))
					continue;
				t = tg_sched_next(&d->syncs[k]->sched, now);

				if (t < next)
					next = t;
			}
			tg_timespec_at(&ts, next);
			pthread_cond_timedwait(&d->wake, &d->lock, &ts);
			continue;
		}
		triggers = tg_sched_begin(&pick->sched, act, now);
		ticket = pick->trigger_seq;
		if (act == TG_SCHED_PASS)
			take_actors(pick, &pa);
		plan_only = pick->sched.suspended;
		pick->running_trigger =
			act == TG_SCHED_CHECK ? "check" : tg_sched_trigger_name(triggers);
		d->busy_since_ms = now;
		pthread_mutex_unlock(&d->lock);
		if (act == TG_SCHED_CHECK)
			run_check(d, pick);
		else
			run_pass(d, pick, triggers, ticket, plan_only, &pa);
		release_actors(&pa);
		pthread_mutex_lock(&d->lock);
		pick->running_trigger = NULL;
		d->busy_since_ms = 0;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}
