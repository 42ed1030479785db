/*
 * The controller daemon (see include/tg/daemon.h).
 *
 * Locking: one mutex (d->lock) guards the sync list, every sync's
 * scheduler and status fields, and the daemon flags.  The worker holds it
 * only to pick work and to publish results, never across git or gateway
 * I/O.  Two condition variables on the monotonic clock: `wake` for the
 * worker (new trigger, reload, stop), `done` for HTTP requests waiting for
 * a pass.  The metrics registry has its own lock.
 *
 * Ownership: each sync owns a one-sync struct tg_config holding its
 * settings, so a syncer's pointer to them stays valid across reloads.  A
 * reload builds a new list: unchanged syncs move over with their syncer,
 * schedule and status; changed ones get a new syncer and keep their
 * trigger counters (so waiting requests still complete).
 */
#include "tg/daemon.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "tg/audit.h"
#include "tg/buf.h"
#include "tg/httpd.h"
#include "tg/log.h"
#include "tg/metrics.h"
#include "tg/reconcile.h"
#include "tg/scheduler.h"
#include "tg/banned.h"

/* The worker wakes at least this often so /healthz can see it alive. */
#define HEARTBEAT_MS 10000
/* /healthz fails when an idle worker has not woken for this long, or a
 * pass has run for longer than PASS_STALL_MS. */
#define IDLE_STALL_MS 60000
#define PASS_STALL_MS (15LL * 60 * 1000)
/* SIGTERM: how long the running pass may take before it is abandoned. */
#define DRAIN_DEADLINE_MS 20000

/* The only mutable globals: set by the signal handler, read by the main
 * thread. */
static volatile sig_atomic_t got_stop;
static volatile sig_atomic_t got_hup;

struct dsync {
	struct tg_config *own;       /* one sync: cfg points into it */
	struct tg_sync_config *cfg;  /* name is immutable; the rest is the worker's */
	struct tg_syncer *syncer;    /* worker only */
	struct tg_sched sched;
	/* status, under d->lock */
	unsigned long long trigger_seq; /* last explicit trigger ticket */
	unsigned long long done_seq;    /* tickets served by finished passes */
	unsigned passes;
	int has_result;
	enum tg_outcome last_outcome;
	char applied_commit[41];     /* commit of the last applied pass */
	char remote_head[41];        /* from the last remote check */
	char last_error[TG_ERR_MSG_MAX];
	char *last_result_json;
	long long last_run_wall_ms, last_success_wall_ms;
	const char *running_trigger; /* static string while a pass runs */
	int config_suspended;        /* `suspend:` as last read from the file */
};

struct daemon {
	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	struct dsync **syncs;
	size_t n_syncs;
	size_t rr;                   /* round-robin start of the next pick */
	const struct tg_config *global; /* listen, cache_dir, audit, http */
	struct tg_config *owned_global; /* set after a reload */
	struct tg_config *pending;   /* validated by SIGHUP, applied by the worker */
	struct tg_metrics *metrics;
	struct tg_httpd *httpd;
	char *listen;
	struct tg_audit *audit;
	char *audit_path;
	long long heartbeat_ms, busy_since_ms;
	int stopping;
	unsigned long long rng;      /* worker only */
	pthread_t worker;
};

static const char *const outcome_names[] = { "success", "partial", "refused", "error" };

/* --- small helpers --- */

static double next_rand(struct daemon *d)
{
	/* xorshift64*: jitter only needs to spread syncs apart. */
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return (double)((d->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void rfc3339(char *out, size_t size, long long wall_ms)
{
	time_t t = (time_t)(wall_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void add_time(cJSON *o, const char *key, long long wall_ms)
{
	char buf[32];

	if (wall_ms <= 0) {
		cJSON_AddNullToObject(o, key);
		return;
	}
	rfc3339(buf, sizeof(buf), wall_ms);
	cJSON_AddStringToObject(o, key, buf);
}

static void add_str_or_null(cJSON *o, const char *key, const char *v)
{
	if (v && *v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

static void put_json(struct tg_buf *out, cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);

	tg_buf_puts(out, text ? text : "{}");
	tg_buf_puts(out, "\n");
	free(text);
}

static void timespec_at(struct timespec *ts, long long mono_ms)
{
	ts->tv_sec = (time_t)(mono_ms / 1000);
	ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

static struct dsync *find_sync(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < d->n_syncs; i++)
		if (!strcmp(d->syncs[i]->cfg->name, name))
			return d->syncs[i];
	return NULL;
}

/* --- metrics --- */

#define M_BUILD "tyk_gitops_build_info"
#define M_RECONCILES "tyk_gitops_reconcile_total"
#define M_RECONCILE_SECONDS "tyk_gitops_reconcile_duration_seconds"
#define M_COMMIT "tyk_gitops_last_applied_commit_info"
#define M_OBJECTS "tyk_gitops_objects"
#define M_DRIFT "tyk_gitops_drift_corrections_total"
#define M_GIT "tyk_gitops_git_requests_total"
#define M_GIT_SECONDS "tyk_gitops_git_request_duration_seconds"
#define M_GATEWAY "tyk_gitops_gateway_requests_total"
#define M_GATEWAY_SECONDS "tyk_gitops_gateway_request_duration_seconds"
#define M_LAST_SUCCESS "tyk_gitops_last_success_timestamp_seconds"
#define M_SUSPENDED "tyk_gitops_suspended"
#define M_TRIGGERS "tyk_gitops_triggers_total"

/* Families of per-sync samples, dropped when a sync leaves the config. */
static const char *const per_sync_families[] = { M_RECONCILES, M_RECONCILE_SECONDS, M_COMMIT,
						 M_OBJECTS,    M_DRIFT,             M_GIT,
						 M_GIT_SECONDS, M_LAST_SUCCESS,     M_SUSPENDED,
						 M_TRIGGERS };

static void define_metrics(struct tg_metrics *m)
{
	static const char *const l_version[] = { "version", NULL };
	static const char *const l_sync[] = { "sync", NULL };
	static const char *const l_sync_result[] = { "sync", "result", NULL };
	static const char *const l_sync_commit[] = { "sync", "commit", NULL };
	static const char *const l_objects[] = { "sync", "kind", "state", NULL };
	static const char *const l_git[] = { "sync", "op", "result", NULL };
	static const char *const l_git_s[] = { "sync", "op", NULL };
	static const char *const l_gw[] = { "endpoint", "method", "code", NULL };
	static const char *const l_gw_s[] = { "endpoint", "method", NULL };
	static const char *const l_trigger[] = { "sync", "trigger", NULL };
	static const double pass_buckets[] = { 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300 };
	const char *const version[] = { TG_VERSION };

	tg_metrics_define(m, M_BUILD, TG_METRIC_GAUGE, "Build information of the running controller.",
			  l_version, NULL, 0);
	tg_metrics_define(m, M_RECONCILES, TG_METRIC_COUNTER,
			  "Reconcile passes by sync and result (success, partial, refused, error).",
			  l_sync_result, NULL, 0);
	tg_metrics_define(m, M_RECONCILE_SECONDS, TG_METRIC_HISTOGRAM,
			  "Duration of reconcile passes by sync and result.", l_sync_result, pass_buckets,
			  TG_ARRAY_SIZE(pass_buckets));
	tg_metrics_define(m, M_COMMIT, TG_METRIC_GAUGE,
			  "Commit last applied by each sync (always 1; the commit is a label).",
			  l_sync_commit, NULL, 0);
	tg_metrics_define(m, M_OBJECTS, TG_METRIC_GAUGE,
			  "Objects managed by each sync after its last pass, by kind and state "
			  "(in_sync, drifted: left changed under the warn policy, failed: not applied "
			  "or in conflict).",
			  l_objects, NULL, 0);
	tg_metrics_define(m, M_DRIFT, TG_METRIC_COUNTER,
			  "Objects changed or removed on the gateway by hand that a pass put back.", l_sync,
			  NULL, 0);
	tg_metrics_define(m, M_GIT, TG_METRIC_COUNTER,
			  "Git remote operations by sync, operation (ls_remote, fetch) and result (ok, error).",
			  l_git, NULL, 0);
	tg_metrics_define(m, M_GIT_SECONDS, TG_METRIC_HISTOGRAM,
			  "Duration of git remote operations by sync and operation.", l_git_s,
			  tg_metrics_latency_buckets, tg_metrics_n_latency_buckets);
	tg_metrics_define(m, M_GATEWAY, TG_METRIC_COUNTER,
			  "Tyk Gateway control API requests by endpoint template, method and HTTP status "
			  "(error: no response).",
			  l_gw, NULL, 0);
	tg_metrics_define(m, M_GATEWAY_SECONDS, TG_METRIC_HISTOGRAM,
			  "Duration of Tyk Gateway control API requests by endpoint template and method.",
			  l_gw_s, tg_metrics_latency_buckets, tg_metrics_n_latency_buckets);
	tg_metrics_define(m, M_LAST_SUCCESS, TG_METRIC_GAUGE,
			  "Unix time of the last fully successful pass of each sync.", l_sync, NULL, 0);
	tg_metrics_define(m, M_SUSPENDED, TG_METRIC_GAUGE, "1 when the sync is suspended.", l_sync,
			  NULL, 0);
	tg_metrics_define(m, M_TRIGGERS, TG_METRIC_COUNTER,
			  "Passes started by sync and the trigger that started them (several triggers "
			  "arriving during a pass are served by one).",
			  l_trigger, NULL, 0);
	tg_metrics_set(m, M_BUILD, version, 1);
}

static void metrics_sync_init(struct tg_metrics *m, const struct dsync *s)
{
	const char *name = s->cfg->name;
	const char *l_sync[] = { name };

	for (size_t i = 0; i < TG_ARRAY_SIZE(outcome_names); i++) {
		const char *l[] = { name, outcome_names[i] };

		tg_metrics_add(m, M_RECONCILES, l, 0);
	}
	tg_metrics_add(m, M_DRIFT, l_sync, 0);
	tg_metrics_set(m, M_SUSPENDED, l_sync, s->sched.suspended);
}

static void metrics_sync_drop(struct tg_metrics *m, const char *name)
{
	for (size_t i = 0; i < TG_ARRAY_SIZE(per_sync_families); i++)
		tg_metrics_remove(m, per_sync_families[i], "sync", name);
}

static void record_git(struct tg_metrics *m, const char *sync, const char *op, int ok, double secs)
{
	const char *l[] = { sync, op, ok ? "ok" : "error" };
	const char *ls[] = { sync, op };

	tg_metrics_add(m, M_GIT, l, 1);
	tg_metrics_observe(m, M_GIT_SECONDS, ls, secs);
}

static void observe_git(void *ctx, const char *sync, const char *op, int ok, double seconds)
{
	record_git(ctx, sync, op, ok, seconds);
}

static void observe_gateway(void *ctx, const char *method, const char *endpoint, long status,
			    double seconds)
{
	struct tg_metrics *m = ctx;
	char code[24];
	const char *l[] = { endpoint, method, code };

	if (status > 0)
		snprintf(code, sizeof(code), "%ld", status);
	else
		snprintf(code, sizeof(code), "error");
	tg_metrics_add(m, M_GATEWAY, l, 1);
	tg_metrics_observe(m, M_GATEWAY_SECONDS, l, seconds);
}

/* Object states and drift corrections after an applied pass. */
static void metrics_after_pass(struct tg_metrics *m, const char *sync,
			       const struct tg_reconcile_result *res, const char *prev_commit)
{
	static const char *const states[] = { "in_sync", "drifted", "failed" };
	double counts[TG_KIND_COUNT][3] = { { 0 } };
	double corrections = 0;
	int same_commit = prev_commit[0] && !strcmp(prev_commit, res->commit);

	for (size_t i = 0; i < res->plan.len; i++) {
		const struct tg_plan_item *it = &res->plan.items[i];
		int ok = i < res->n_objects ? res->objects[i].ok : 1;
		int changed = it->action == TG_ACTION_CREATE || it->action == TG_ACTION_UPDATE ||
			      it->action == TG_ACTION_DELETE;

		/* Applying to an unchanged commit can only be repairing hand
		 * edits (the planner flags edits, not deletions). */
		if (ok && changed && !it->warn_only && (it->drifted || same_commit))
			corrections++;
		if (it->action == TG_ACTION_DELETE && ok)
			continue;
		if (!ok || it->action == TG_ACTION_CONFLICT)
			counts[it->kind][2]++;
		else if (it->warn_only)
			counts[it->kind][1]++;
		else
			counts[it->kind][0]++;
	}
	for (int k = 0; k < TG_KIND_COUNT; k++)
		for (int st = 0; st < 3; st++) {
			const char *l[] = { sync, tg_kind_name((enum tg_kind)k), states[st] };

			tg_metrics_set(m, M_OBJECTS, l, counts[k][st]);
		}
	if (corrections > 0) {
		const char *l[] = { sync };

		tg_metrics_add(m, M_DRIFT, l, corrections);
	}
}

/* --- result JSON --- */

static cJSON *result_json(const struct dsync *s, const struct tg_reconcile_result *res,
			  const char *trigger, long long started_wall_ms, int plan_only)
{
	static const char *const count_names[] = { "created", "updated",  "deleted", "unchanged",
						    "conflicts", "failed", "drifted", "warned" };
	const size_t counts[] = { res->created,   res->updated, res->deleted, res->unchanged,
				  res->conflicts, res->failed,  res->drifted, res->warned };
	cJSON *o = cJSON_CreateObject(), *c, *objs;
	char summary[256];

	cJSON_AddStringToObject(o, "sync", s->cfg->name);
	cJSON_AddStringToObject(o, "trigger", trigger);
	cJSON_AddStringToObject(o, "outcome", tg_outcome_name(res->outcome));
	add_str_or_null(o, "commit", res->commit);
	add_str_or_null(o, "author", res->author);
	add_str_or_null(o, "commit_summary", res->summary_line);
	add_str_or_null(o, "error", res->error);
	cJSON_AddBoolToObject(o, "plan_only", plan_only);
	add_time(o, "started_at", started_wall_ms);
	cJSON_AddNumberToObject(o, "duration_seconds", (double)res->duration_ms / 1000.0);
	tg_reconcile_summary(res, summary, sizeof(summary));
	cJSON_AddStringToObject(o, "summary", summary);
	c = cJSON_AddObjectToObject(o, "counts");
	for (size_t i = 0; i < TG_ARRAY_SIZE(counts); i++)
		cJSON_AddNumberToObject(c, count_names[i], (double)counts[i]);
	objs = cJSON_AddArrayToObject(o, "objects");
	for (size_t i = 0; i < res->plan.len; i++) {
		const struct tg_plan_item *it = &res->plan.items[i];
		const struct tg_object_result *r = i < res->n_objects ? &res->objects[i] : NULL;
		cJSON *e;

		if (it->action == TG_ACTION_NONE && !it->drifted && (!r || r->ok))
			continue;
		e = cJSON_CreateObject();
		cJSON_AddStringToObject(e, "kind", tg_kind_name(it->kind));
		cJSON_AddStringToObject(e, "id", it->id);
		cJSON_AddStringToObject(e, "action", tg_action_name(it->action));
		cJSON_AddBoolToObject(e, "drifted", it->drifted);
		if (r)
			cJSON_AddBoolToObject(e, "ok", r->ok);
		if (r && r->error)
			cJSON_AddStringToObject(e, "error", r->error);
		cJSON_AddItemToArray(objs, e);
	}
	if (res->problems.len) {
		struct tg_buf pj = TG_BUF_INIT;
		cJSON *p;

		tg_problems_format_json(&res->problems, &pj);
		p = cJSON_Parse(tg_buf_cstr(&pj));
		if (p)
			cJSON_AddItemToObject(o, "problems", p);
		tg_buf_release(&pj);
	}
	return o;
}

/* --- the worker --- */

static void ensure_syncer(struct daemon *d, struct dsync *s, struct tg_err *err)
{
	if (s->syncer)
		return;
	if (tg_syncer_new(&s->syncer, s->cfg, d->global->cache_dir, err)) {
		s->syncer = NULL;
		return;
	}
	tg_syncer_set_audit(s->syncer, d->audit);
	tg_syncer_set_gateway_observer(s->syncer, observe_gateway, d->metrics);
	tg_syncer_set_git_observer(s->syncer, observe_git, d->metrics);
	/* Say what is wrong with the gateway once, plainly, before the first
	 * pass fails on it and backs off. */
	if (tg_syncer_check_gateway(s->syncer, err))
		tg_log_kv(TG_LOG_ERROR, "gateway check failed", "sync", s->cfg->name, "error", err->msg, NULL);
	else
		tg_log_kv(TG_LOG_INFO, "gateway reachable, secret accepted", "sync", s->cfg->name, NULL);
	tg_err_clear(err);
}

static void run_check(struct daemon *d, struct dsync *s)
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
		record_git(d->metrics, name, "ls_remote", rc == 0, secs);
	if (rc)
		tg_log_kv(TG_LOG_WARN, "cannot check the remote ref", "sync", name, "error", err.msg, NULL);
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

static void run_pass(struct daemon *d, struct dsync *s, unsigned triggers,
		     unsigned long long ticket, int plan_only)
{
	struct tg_reconcile_result res;
	struct tg_reconcile_opts opts = { 0 };
	struct tg_err err = { 0, "" };
	const char *name = s->cfg->name;
	const char *trigger = tg_sched_trigger_name(triggers);
	long long started = tg_wall_ms();
	char prev_commit[41], summary[256], *json;
	cJSON *o;
	int ok, applied;

	{
		const char *l[] = { name, trigger };

		tg_metrics_add(d->metrics, M_TRIGGERS, l, 1);
	}
	pthread_mutex_lock(&d->lock);
	memcpy(prev_commit, s->applied_commit, sizeof(prev_commit));
	pthread_mutex_unlock(&d->lock);
	ensure_syncer(d, s, &err);
	if (!s->syncer) {
		memset(&res, 0, sizeof(res));
		tg_problems_init(&res.problems);
		res.outcome = TG_OUTCOME_ERROR;
		snprintf(res.error, sizeof(res.error), "%s", err.msg);
	} else {
		opts.trigger = trigger;
		opts.actor = triggers & TG_TRIGGER_PIPELINE ? "api" : NULL;
		s->cfg->suspended = plan_only;
		tg_syncer_run(s->syncer, &opts, &res);
	}
	ok = res.outcome == TG_OUTCOME_SUCCESS || res.outcome == TG_OUTCOME_REFUSED;
	applied = !plan_only && res.commit[0] &&
		  (res.outcome == TG_OUTCOME_SUCCESS || res.outcome == TG_OUTCOME_PARTIAL);
	{
		const char *l[] = { name, tg_outcome_name(res.outcome) };

		tg_metrics_add(d->metrics, M_RECONCILES, l, 1);
		tg_metrics_observe(d->metrics, M_RECONCILE_SECONDS, l, (double)res.duration_ms / 1000.0);
	}
	if (applied) {
		const char *l[] = { name, res.commit };

		tg_metrics_remove(d->metrics, M_COMMIT, "sync", name);
		tg_metrics_set(d->metrics, M_COMMIT, l, 1);
		metrics_after_pass(d->metrics, name, &res, prev_commit);
	}
	if (!plan_only && res.outcome == TG_OUTCOME_SUCCESS) {
		const char *l[] = { name };

		tg_metrics_set(d->metrics, M_LAST_SUCCESS, l, (double)tg_wall_ms() / 1000.0);
	}
	tg_reconcile_summary(&res, summary, sizeof(summary));
	if (res.outcome == TG_OUTCOME_SUCCESS)
		tg_log_kv(TG_LOG_INFO, plan_only ? "planned (suspended)" : "reconciled", "sync", name,
			  "commit", res.commit, "trigger", trigger, "summary", summary, NULL);
	else
		tg_log_kv(TG_LOG_ERROR, "reconcile failed", "sync", name, "commit", res.commit, "trigger",
			  trigger, "outcome", tg_outcome_name(res.outcome), "error", res.error, "summary",
			  summary, NULL);
	o = result_json(s, &res, trigger, started, plan_only);
	json = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);

	pthread_mutex_lock(&d->lock);
	s->passes++;
	s->has_result = 1;
	s->last_outcome = res.outcome;
	snprintf(s->last_error, sizeof(s->last_error), "%s", res.error);
	if (applied)
		memcpy(s->applied_commit, res.commit, sizeof(s->applied_commit));
	s->last_run_wall_ms = started;
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
}

static void dsync_free(struct dsync *s)
{
	if (!s)
		return;
	tg_syncer_free(s->syncer);
	tg_config_free(s->own);
	free(s->last_result_json);
	free(s);
}

/* Moves src's sync settings into a new sync of its own. */
static struct dsync *dsync_new(struct tg_sync_config *src, long long now)
{
	struct dsync *s = tg_xcalloc(1, sizeof(*s));

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

static int str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* Every setting but `suspend` (which a reload applies in place). */
static int same_settings(const struct tg_sync_config *a, const struct tg_sync_config *b)
{
	const char *const sa[] = { a->name, a->repo_url, a->ref, a->path, a->auth_username,
				   a->auth_password_file, a->auth_token_file, a->auth_ssh_key_file,
				   a->auth_known_hosts_file, a->auth_ca_file, a->secrets_dir,
				   a->gateway_url, a->gateway_secret_file, a->gateway_ca_file,
				   a->gateway_cert_file, a->gateway_key_file, a->webhook_secret_file };
	const char *const sb[] = { b->name, b->repo_url, b->ref, b->path, b->auth_username,
				   b->auth_password_file, b->auth_token_file, b->auth_ssh_key_file,
				   b->auth_known_hosts_file, b->auth_ca_file, b->secrets_dir,
				   b->gateway_url, b->gateway_secret_file, b->gateway_ca_file,
				   b->gateway_cert_file, b->gateway_key_file, b->webhook_secret_file };
	const long long na[] = { a->ref_type, a->auth_insecure_skip_host_key_check,
				 a->gateway_insecure_skip_verify, a->gateway_timeout_ms,
				 a->gateway_concurrency, a->interval_ms, a->drift_interval_ms,
				 a->drift_policy, a->prune, a->max_delete, a->allow_empty, a->adopt,
				 a->backoff_max_ms };
	const long long nb[] = { b->ref_type, b->auth_insecure_skip_host_key_check,
				 b->gateway_insecure_skip_verify, b->gateway_timeout_ms,
				 b->gateway_concurrency, b->interval_ms, b->drift_interval_ms,
				 b->drift_policy, b->prune, b->max_delete, b->allow_empty, b->adopt,
				 b->backoff_max_ms };

	for (size_t i = 0; i < TG_ARRAY_SIZE(sa); i++)
		if (!str_eq(sa[i], sb[i]))
			return 0;
	for (size_t i = 0; i < TG_ARRAY_SIZE(na); i++)
		if (na[i] != nb[i])
			return 0;
	if (a->n_trusted_keys != b->n_trusted_keys)
		return 0;
	for (size_t i = 0; i < a->n_trusted_keys; i++)
		if (!str_eq(a->trusted_keys[i], b->trusted_keys[i]))
			return 0;
	return 1;
}

static struct tg_audit *open_audit(const char *path, struct tg_err *err)
{
	struct tg_audit *a = NULL;

	if (path)
		tg_audit_open(&a, path, err);
	return a;
}

/* Worker: swaps in a configuration the main thread validated. */
static void apply_reload(struct daemon *d, struct tg_config *nc)
{
	struct dsync **next = tg_xcalloc(nc->n_syncs ? nc->n_syncs : 1, sizeof(*next));
	struct dsync **drop = tg_xcalloc(d->n_syncs ? d->n_syncs : 1, sizeof(*drop));
	int *dropped_name_kept = tg_xcalloc(d->n_syncs ? d->n_syncs : 1, sizeof(int));
	size_t n_drop = 0, kept = 0, changed = 0;
	int same_cache = !strcmp(nc->cache_dir, d->global->cache_dir);
	int audit_changed = !str_eq(nc->audit, d->audit_path);
	struct tg_audit *audit = d->audit;
	struct tg_err err = { 0, "" };
	long long now = tg_now_ms();

	if (audit_changed) {
		audit = open_audit(nc->audit, &err);
		if (nc->audit && !audit) {
			tg_log_kv(TG_LOG_ERROR, "reload: keeping the old audit destination", "error",
				  err.msg, NULL);
			audit = d->audit;
			audit_changed = 0;
		}
	}
	pthread_mutex_lock(&d->lock);
	for (size_t j = 0; j < nc->n_syncs; j++) {
		struct tg_sync_config *sc = &nc->syncs[j];
		struct dsync *old = find_sync(d, sc->name);

		if (old && same_cache && same_settings(old->cfg, sc)) {
			/* Only an edit of `suspend:` overrides a suspend or
			 * resume made through the API. */
			if (old->config_suspended != sc->suspended) {
				const char *l[] = { sc->name };

				old->config_suspended = sc->suspended;
				if (old->sched.suspended && !sc->suspended)
					tg_sched_trigger(&old->sched, TG_TRIGGER_RESUME);
				old->sched.suspended = sc->suspended;
				tg_metrics_set(d->metrics, M_SUSPENDED, l, sc->suspended);
			}
			next[j] = old;
			kept++;
			continue;
		}
		next[j] = dsync_new(sc, now);
		changed++;
		if (old) {
			/* Waiting requests hold tickets of the old sync. */
			next[j]->trigger_seq = old->trigger_seq;
			next[j]->done_seq = old->done_seq;
			next[j]->sched.pending |= old->sched.pending;
		}
		metrics_sync_init(d->metrics, next[j]);
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
		dropped_name_kept[i] = find_sync(d, drop[i]->cfg->name) != NULL;
		if (!dropped_name_kept[i])
			metrics_sync_drop(d->metrics, drop[i]->cfg->name);
		dsync_free(drop[i]);
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
			  "new_or_changed_syncs", c, "removed_syncs", r, "path", nc->path ? nc->path : "",
			  NULL);
	}
	free(dropped_name_kept);
}

static void *worker_main(void *arg)
{
	struct daemon *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		struct dsync *pick = NULL;
		enum tg_sched_action act = TG_SCHED_NONE;
		long long now = tg_now_ms(), next = now + HEARTBEAT_MS;
		unsigned triggers;
		unsigned long long ticket;
		int plan_only;

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
			struct dsync *s = d->syncs[(d->rr + k) % d->n_syncs];

			act = tg_sched_due(&s->sched, now);
			if (act != TG_SCHED_NONE) {
				pick = s;
				d->rr = (d->rr + k + 1) % d->n_syncs;
			}
		}
		if (!pick) {
			struct timespec ts;

			for (size_t k = 0; k < d->n_syncs; k++) {
				long long t = tg_sched_next(&d->syncs[k]->sched, now);

				if (t < next)
					next = t;
			}
			timespec_at(&ts, next);
			pthread_cond_timedwait(&d->wake, &d->lock, &ts);
			continue;
		}
		triggers = tg_sched_begin(&pick->sched, act, now);
		ticket = pick->trigger_seq;
		plan_only = pick->sched.suspended;
		pick->running_trigger = act == TG_SCHED_CHECK ? "check" : tg_sched_trigger_name(triggers);
		d->busy_since_ms = now;
		pthread_mutex_unlock(&d->lock);
		if (act == TG_SCHED_CHECK)
			run_check(d, pick);
		else
			run_pass(d, pick, triggers, ticket, plan_only);
		pthread_mutex_lock(&d->lock);
		pick->running_trigger = NULL;
		d->busy_since_ms = 0;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* --- HTTP callbacks (libmicrohttpd threads) --- */

static int http_metrics(void *ctx, struct tg_buf *out)
{
	struct daemon *d = ctx;

	if (tg_metrics_render(d->metrics, out))
		return 500;
	return 200;
}

static int http_healthz(void *ctx, struct tg_buf *out)
{
	struct daemon *d = ctx;
	long long now = tg_now_ms();
	int ok;

	pthread_mutex_lock(&d->lock);
	if (d->busy_since_ms)
		ok = now - d->busy_since_ms < PASS_STALL_MS;
	else
		ok = now - d->heartbeat_ms < IDLE_STALL_MS;
	pthread_mutex_unlock(&d->lock);
	tg_buf_puts(out, ok ? "ok\n" : "reconcile loop stalled\n");
	return ok ? 200 : 503;
}

static int http_readyz(void *ctx, struct tg_buf *out)
{
	struct daemon *d = ctx;
	int status = 200;

	pthread_mutex_lock(&d->lock);
	if (d->stopping) {
		tg_buf_puts(out, "shutting down\n");
		status = 503;
	}
	for (size_t i = 0; i < d->n_syncs && status == 200; i++) {
		const struct dsync *s = d->syncs[i];

		if (!s->passes && !s->sched.suspended) {
			tg_buf_printf(out, "waiting for the first reconcile of sync '%s'\n", s->cfg->name);
			status = 503;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (status == 200)
		tg_buf_puts(out, "ready\n");
	return status;
}

/* Under d->lock. */
static cJSON *sync_status_json(struct daemon *d, const struct dsync *s)
{
	cJSON *o = cJSON_CreateObject();
	long long now = tg_now_ms(), wall = tg_wall_ms();
	long long next = tg_sched_next(&s->sched, now);

	(void)d;
	cJSON_AddStringToObject(o, "name", s->cfg->name);
	cJSON_AddBoolToObject(o, "suspended", s->sched.suspended);
	cJSON_AddBoolToObject(o, "running", s->sched.running);
	add_str_or_null(o, "running_trigger", s->running_trigger);
	cJSON_AddBoolToObject(o, "ready", s->passes > 0);
	cJSON_AddNumberToObject(o, "passes", s->passes);
	add_str_or_null(o, "last_commit", s->applied_commit);
	add_str_or_null(o, "remote_head", s->remote_head);
	add_str_or_null(o, "last_outcome", s->has_result ? outcome_names[s->last_outcome] : NULL);
	add_str_or_null(o, "last_error", s->last_error);
	add_time(o, "last_run_at", s->last_run_wall_ms);
	add_time(o, "last_success_at", s->last_success_wall_ms);
	if (next == TG_SCHED_NEVER) {
		cJSON_AddNullToObject(o, "next_run_at");
	} else {
		long long in = next > now ? next - now : 0;

		add_time(o, "next_run_at", wall + in);
		cJSON_AddNumberToObject(o, "next_run_in_seconds", (double)in / 1000.0);
	}
	cJSON_AddNumberToObject(o, "consecutive_failures", s->sched.failures);
	cJSON_AddNumberToObject(o, "interval_seconds", (double)s->sched.interval_ms / 1000.0);
	cJSON_AddNumberToObject(o, "drift_interval_seconds", (double)s->sched.drift_interval_ms / 1000.0);
	if (s->last_result_json)
		cJSON_AddItemToObject(o, "last_result", cJSON_Parse(s->last_result_json));
	else
		cJSON_AddNullToObject(o, "last_result");
	return o;
}

static int error_json(struct tg_buf *out, int status, const char *fmt, const char *arg)
	__attribute__((format(printf, 3, 0)));

static int error_json(struct tg_buf *out, int status, const char *fmt, const char *arg)
{
	char msg[512];
	cJSON *o = cJSON_CreateObject();

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	snprintf(msg, sizeof(msg), fmt, arg);
#pragma GCC diagnostic pop
	cJSON_AddStringToObject(o, "error", msg);
	put_json(out, o);
	cJSON_Delete(o);
	return status;
}

static int http_syncs(void *ctx, const char *name, struct tg_buf *out)
{
	struct daemon *d = ctx;
	cJSON *o = NULL;
	int status = 200;

	pthread_mutex_lock(&d->lock);
	if (!name) {
		cJSON *list;

		o = cJSON_CreateObject();
		list = cJSON_AddArrayToObject(o, "syncs");
		for (size_t i = 0; i < d->n_syncs; i++)
			cJSON_AddItemToArray(list, sync_status_json(d, d->syncs[i]));
	} else {
		const struct dsync *s = find_sync(d, name);

		if (s)
			o = sync_status_json(d, s);
	}
	pthread_mutex_unlock(&d->lock);
	if (!o)
		return error_json(out, 404, "no sync named '%s'", name);
	put_json(out, o);
	cJSON_Delete(o);
	return status;
}

static int outcome_status(const char *json)
{
	cJSON *o = cJSON_Parse(json);
	const cJSON *oc = cJSON_GetObjectItemCaseSensitive(o, "outcome");
	int status = 200;

	if (cJSON_IsString(oc)) {
		if (!strcmp(oc->valuestring, "refused"))
			status = 422;
		else if (strcmp(oc->valuestring, "success"))
			status = 502;
	}
	cJSON_Delete(o);
	return status;
}

static int http_reconcile(void *ctx, const char *name, long long wait_ms, struct tg_buf *out)
{
	struct daemon *d = ctx;
	struct dsync *s;
	unsigned long long ticket;
	long long deadline = tg_now_ms() + wait_ms;
	char *result = NULL;
	int status;

	pthread_mutex_lock(&d->lock);
	s = find_sync(d, name);
	if (!s || d->stopping) {
		pthread_mutex_unlock(&d->lock);
		return s ? error_json(out, 503, "shutting down; sync '%s' was not triggered", name)
			 : error_json(out, 404, "no sync named '%s'", name);
	}
	ticket = ++s->trigger_seq;
	tg_sched_trigger(&s->sched, TG_TRIGGER_PIPELINE);
	pthread_cond_broadcast(&d->wake);
	while (wait_ms > 0 && s && s->done_seq < ticket && !d->stopping) {
		struct timespec ts;

		timespec_at(&ts, deadline);
		if (pthread_cond_timedwait(&d->done, &d->lock, &ts) == ETIMEDOUT)
			break;
		s = find_sync(d, name); /* a reload may have replaced it */
	}
	if (wait_ms > 0 && s && s->done_seq >= ticket && s->last_result_json)
		result = tg_xstrdup(s->last_result_json);
	pthread_mutex_unlock(&d->lock);
	if (result) {
		status = outcome_status(result);
		tg_buf_puts(out, result);
		tg_buf_puts(out, "\n");
		free(result);
		return status;
	}
	if (!s)
		return error_json(out, 404, "sync '%s' was removed by a configuration reload", name);
	if (wait_ms > 0 && d->stopping)
		return error_json(out, 503, "shutting down before the pass of sync '%s' finished", name);
	{
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "sync", name);
		cJSON_AddBoolToObject(o, "queued", 1);
		if (wait_ms > 0)
			cJSON_AddStringToObject(o, "message",
						"the pass did not finish in time; see GET /api/v1/syncs/{name}");
		put_json(out, o);
		cJSON_Delete(o);
	}
	return 202;
}

static int http_suspend(void *ctx, const char *name, int suspend, struct tg_buf *out)
{
	struct daemon *d = ctx;
	struct dsync *s;
	cJSON *o;

	pthread_mutex_lock(&d->lock);
	s = find_sync(d, name);
	if (s) {
		if (s->sched.suspended && !suspend)
			tg_sched_trigger(&s->sched, TG_TRIGGER_RESUME);
		s->sched.suspended = suspend;
		pthread_cond_broadcast(&d->wake);
	}
	pthread_mutex_unlock(&d->lock);
	if (!s)
		return error_json(out, 404, "no sync named '%s'", name);
	{
		const char *l[] = { name };

		tg_metrics_set(d->metrics, M_SUSPENDED, l, suspend);
	}
	tg_log_kv(TG_LOG_INFO, suspend ? "sync suspended" : "sync resumed", "sync", name, NULL);
	o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "sync", name);
	cJSON_AddBoolToObject(o, "suspended", suspend);
	put_json(out, o);
	cJSON_Delete(o);
	return 200;
}

/* --- main thread: signals, reload, shutdown --- */

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		got_hup = 1;
	else
		got_stop = 1;
}

static int start_httpd(struct daemon *d, const struct tg_config *cfg, struct tg_httpd **out,
		       struct tg_err *err)
{
	struct tg_httpd_ops ops = { 0 };
	struct tg_httpd_opts opts = { 0 };

	ops.ctx = d;
	ops.metrics = http_metrics;
	ops.healthz = http_healthz;
	ops.readyz = http_readyz;
	ops.syncs = http_syncs;
	ops.reconcile = http_reconcile;
	ops.suspend = http_suspend;
	opts.listen = cfg->listen;
	opts.max_connections = (unsigned)cfg->http_max_connections;
	opts.connection_timeout_s = (unsigned)((cfg->http_connection_timeout_ms + 999) / 1000);
	opts.max_wait_ms = cfg->http_max_wait_ms;
	return tg_httpd_start(out, &opts, &ops, err);
}

static void log_problems(const char *msg, struct tg_problems *problems)
{
	struct tg_buf text = TG_BUF_INIT;

	tg_problems_format_text(problems, &text);
	tg_log_kv(TG_LOG_ERROR, msg, "problems", tg_buf_cstr(&text), NULL);
	tg_buf_release(&text);
}

/* SIGHUP: load and check; hand to the worker only when valid. */
static void reload(struct daemon *d, const char *path)
{
	struct tg_problems problems;
	struct tg_err err = { 0, "" };
	struct tg_config *nc = NULL;

	tg_problems_init(&problems);
	if (!path) {
		tg_log_kv(TG_LOG_WARN, "SIGHUP ignored: the daemon was started without --config", NULL);
		goto out;
	}
	if (tg_config_load(&nc, path, &problems, &err) || tg_config_check(nc, &problems)) {
		log_problems("reload refused: the new configuration is invalid; keeping the running one",
			     &problems);
		goto out;
	}
	if (strcmp(nc->listen, d->listen)) {
		struct tg_httpd *h = NULL;

		if (start_httpd(d, nc, &h, &err)) {
			tg_log_kv(TG_LOG_ERROR, "reload refused: cannot listen on the new address", "error",
				  err.msg, NULL);
			goto out;
		}
		tg_httpd_stop(d->httpd);
		d->httpd = h;
		free(d->listen);
		d->listen = tg_xstrdup(nc->listen);
	}
	pthread_mutex_lock(&d->lock);
	tg_config_free(d->pending);
	d->pending = nc;
	nc = NULL;
	pthread_cond_broadcast(&d->wake);
	pthread_mutex_unlock(&d->lock);
out:
	tg_config_free(nc);
	tg_problems_release(&problems);
}

static void daemon_release(struct daemon *d, int worker_alive)
{
	tg_httpd_stop(d->httpd);
	if (!worker_alive) {
		for (size_t i = 0; i < d->n_syncs; i++)
			dsync_free(d->syncs[i]);
		free(d->syncs);
		tg_config_free(d->pending);
		tg_config_free(d->owned_global);
		tg_metrics_free(d->metrics);
		tg_audit_free(d->audit);
		pthread_cond_destroy(&d->wake);
		pthread_cond_destroy(&d->done);
		pthread_mutex_destroy(&d->lock);
	}
	/* else: the abandoned worker still uses them; the process is exiting. */
	free(d->audit_path);
	free(d->listen);
}

int tg_daemon_run(struct tg_config *cfg, const char *config_path)
{
	struct daemon d;
	struct tg_err err = { 0, "" };
	struct sigaction sa, old_term, old_int, old_hup;
	sigset_t block, old_mask;
	pthread_condattr_t ca;
	long long now = tg_now_ms();
	int worker_started = 0, worker_alive = 0, rc = -1;

	memset(&d, 0, sizeof(d));
	pthread_mutex_init(&d.lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d.wake, &ca);
	pthread_cond_init(&d.done, &ca);
	pthread_condattr_destroy(&ca);
	d.global = cfg;
	d.listen = tg_xstrdup(cfg->listen);
	d.rng = (unsigned long long)tg_wall_ms() * 2654435761ULL ^ (unsigned long long)getpid() ^
		0x9e3779b97f4a7c15ULL;
	d.heartbeat_ms = now;
	d.metrics = tg_metrics_new();
	define_metrics(d.metrics);
	d.syncs = tg_xcalloc(cfg->n_syncs ? cfg->n_syncs : 1, sizeof(*d.syncs));
	for (size_t i = 0; i < cfg->n_syncs; i++) {
		d.syncs[d.n_syncs] = dsync_new(&cfg->syncs[i], now);
		metrics_sync_init(d.metrics, d.syncs[d.n_syncs++]);
	}
	d.audit_path = cfg->audit ? tg_xstrdup(cfg->audit) : NULL;
	d.audit = open_audit(cfg->audit, &err);
	if (cfg->audit && !d.audit) {
		tg_log_kv(TG_LOG_ERROR, "cannot start", "error", err.msg, NULL);
		goto out;
	}

	/* Handlers only set flags.  The signals are blocked in every thread
	 * but this one, which waits for them in sigsuspend. */
	got_stop = got_hup = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGHUP, &sa, &old_hup);
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old_mask);

	if (start_httpd(&d, cfg, &d.httpd, &err)) {
		tg_log_kv(TG_LOG_ERROR, "cannot start", "error", err.msg, NULL);
		goto restore;
	}
	if (pthread_create(&d.worker, NULL, worker_main, &d)) {
		tg_log_kv(TG_LOG_ERROR, "cannot start the reconcile thread", NULL);
		goto restore;
	}
	worker_started = worker_alive = 1;
	{
		char n[32];

		snprintf(n, sizeof(n), "%zu", d.n_syncs);
		tg_log_kv(TG_LOG_INFO, "controller started", "listen", cfg->listen, "syncs", n, "version",
			  TG_VERSION, NULL);
	}

	for (;;) {
		sigset_t wait_mask = old_mask;

		sigdelset(&wait_mask, SIGTERM);
		sigdelset(&wait_mask, SIGINT);
		sigdelset(&wait_mask, SIGHUP);
		while (!got_stop && !got_hup)
			sigsuspend(&wait_mask);
		if (got_stop)
			break;
		got_hup = 0;
		tg_log_kv(TG_LOG_INFO, "SIGHUP: reloading the configuration", "path",
			  config_path ? config_path : "", NULL);
		reload(&d, config_path);
	}

	tg_log_kv(TG_LOG_INFO, "shutting down: finishing the running pass", NULL);
	pthread_mutex_lock(&d.lock);
	d.stopping = 1;
	pthread_cond_broadcast(&d.wake);
	pthread_cond_broadcast(&d.done);
	pthread_mutex_unlock(&d.lock);
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += DRAIN_DEADLINE_MS / 1000;
		if (pthread_timedjoin_np(d.worker, NULL, &ts) == 0) {
			worker_alive = 0;
		} else {
			/* Returning would let the caller shut libgit2 and libcurl
			 * down under the running pass. */
			tg_log_kv(TG_LOG_WARN, "abandoning the running pass at the shutdown deadline", NULL);
			tg_httpd_stop(d.httpd);
			fflush(NULL);
			_exit(0);
		}
	}
	rc = 0;
	tg_log_kv(TG_LOG_INFO, "stopped", NULL);
restore:
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
out:
	if (!worker_started)
		worker_alive = 0;
	daemon_release(&d, worker_alive);
	return rc;
}
