/*
 * Governance around one pass (see include/tg/governed.h): the refusal
 * event, the health check, the apply history, rollback and its pin.
 *
 * A commit that fails its health check is recorded, then the last healthy
 * commit is pinned before it is applied again: should that rollback pass
 * fail half-way, the next pass still works towards the good commit.  A
 * new commit on the ref, or a forced pass, lifts the pin.
 */
#include "tg/governed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tg/audit.h"
#include "tg/buf.h"
#include "tg/health.h"
#include "tg/history.h"
#include "tg/log.h"
#include "tg/marker.h"
#include "tg/syncer_internal.h"
#include "tg/banned.h"

/* How long a pass waits for another pass of its sync (another process) to
 * finish: below the daemon's 20 s SIGTERM drain. */
#define PASS_LOCK_WAIT_MS 10000

/* A history that cannot be read is started afresh, loudly: it records,
 * it does not decide what is safe to apply. */
void tg_governed_load_history(struct tg_syncer *s)
{
	struct tg_err err = { 0, "" };

	if (s->hist_path && tg_history_load(&s->hist, s->hist_path, &err))
		tg_log_kv(TG_LOG_WARN, "cannot read the apply history; starting a new one", "sync",
			  s->cfg->name, "error", err.msg, NULL);
}

static void save_history(struct tg_syncer *s)
{
	struct tg_err err = { 0, "" };

	if (s->hist_path && tg_history_save(&s->hist, s->hist_path, &err))
		tg_log_kv(TG_LOG_ERROR, "cannot write the apply history", "sync", s->cfg->name,
			  "error", err.msg, NULL);
}

void tg_syncer_pin(struct tg_syncer *s, char pin[41], char failed[41])
{
	const struct tg_history_entry *e;

	memcpy(pin, s->hist.pin, 41);
	failed[0] = '\0';
	if (!s->hist.pin[0])
		return;
	e = tg_history_find(&s->hist, s->hist.pin_head);
	if (e && e->rolled_back)
		memcpy(failed, e->commit, 41);
}

cJSON *tg_syncer_history_json(struct tg_syncer *s, size_t max)
{
	tg_governed_load_history(s);
	return tg_history_json(&s->hist, max);
}

/* The refusal of a commit by a guardrail rule, in the audit trail. */
void tg_governed_audit_refusal(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
			       struct tg_reconcile_result *res)
{
	struct tg_buf names = TG_BUF_INIT;
	struct tg_audit_event ev = { 0 };
	struct tg_err err = { 0, "" };

	if (!s->audit || opts->dry_run || !tg_problems_rule_errors(&res->problems, &names))
		goto out;
	ev.event = "refused";
	ev.sync = s->cfg->name;
	ev.commit = res->commit;
	ev.author = res->author;
	ev.trigger = opts->trigger ? opts->trigger : "cli";
	ev.actor = opts->actor;
	ev.rule = tg_buf_cstr(&names);
	ev.error = res->error;
	if (tg_audit_append_event(s->audit, &ev, &err))
		tg_log_kv(TG_LOG_ERROR, "cannot record a refused commit", "sync", s->cfg->name,
			  "error", err.msg, NULL);
out:
	tg_buf_release(&names);
}

/* --- health check, history, rollback --- */

/* Probes every API the pass created or updated (health.h). */
static void check_health(struct tg_syncer *s, struct tg_reconcile_result *res)
{
	const struct tg_sync_config *c = s->cfg;
	struct tg_health_opts ho = { 0 };
	struct tg_health_target *t;
	char **paths;
	struct tg_buf detail = TG_BUF_INIT;
	struct tg_err err = { 0, "" };
	size_t n = 0;

	if (!c->health) {
		snprintf(res->health, sizeof(res->health), "unchecked");
		return;
	}
	t = tg_xcalloc(res->n_objects + 1, sizeof(*t));
	paths = tg_xcalloc(res->n_objects + 1, sizeof(*paths));
	for (size_t i = 0; i < res->n_objects; i++) {
		const struct tg_plan_item *it = res->objects[i].item;
		const char *own;

		if (it->kind == TG_KIND_POLICY || it->warn_only || !it->desired ||
		    (it->action != TG_ACTION_CREATE && it->action != TG_ACTION_UPDATE))
			continue;
		/* A path set on the object itself wins over the sync's. */
		own = tg_marker_get(it->kind, tg_object_body(it->desired), "health_path");
		paths[n] = tg_health_path(it->desired->listen_path, own ? own : c->health_path);
		t[n].id = it->id;
		t[n].path = paths[n];
		t[n].domain = it->desired->domain;
		n++;
	}
	ho.base_url = c->health_url ? c->health_url : c->gateway_url;
	ho.ca_file = c->gateway_ca_file;
	ho.insecure_skip_verify = c->gateway_insecure_skip_verify;
	ho.timeout_ms = c->health_timeout_ms;
	ho.attempts = c->health_attempts;
	ho.interval_ms = c->health_interval_ms;
	ho.max_probes = c->health_max_probes;
	ho.rate = c->health_rate;
	res->health_ms = tg_now_ms();
	res->unhealthy = n ? tg_health_probe(&ho, t, n, &err) : 0;
	res->health_ms = tg_now_ms() - res->health_ms;
	res->probed = n < (size_t)c->health_max_probes ? n : (size_t)c->health_max_probes;
	if (err.msg[0])
		tg_buf_printf(&detail, "%s; ", err.msg);
	for (size_t i = 0; i < n; i++) {
		if (tg_health_ok(t[i].verdict))
			continue;
		tg_buf_printf(&detail, "%sapi '%s' at %s: %s", detail.len ? "; " : "", t[i].id,
			      t[i].path, tg_health_verdict_name(t[i].verdict));
		if (t[i].status)
			tg_buf_printf(&detail, " (%ld)", t[i].status);
	}
	snprintf(res->health, sizeof(res->health), "%s", res->unhealthy ? "unhealthy" : "healthy");
	if (res->unhealthy)
		res->health_detail = tg_utf8_sanitize(tg_buf_cstr(&detail));
	tg_log_kv(res->unhealthy ? TG_LOG_ERROR : TG_LOG_INFO,
		  res->unhealthy ? "health check failed" : "health check passed", "sync", c->name,
		  "commit", res->commit, "detail", res->health_detail ? res->health_detail : "",
		  NULL);
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(t);
	tg_buf_release(&detail);
}

static int applied(const struct tg_reconcile_opts *opts, const struct tg_reconcile_result *res)
{
	return !opts->dry_run && res->commit[0] &&
	       (res->outcome == TG_OUTCOME_SUCCESS || res->outcome == TG_OUTCOME_PARTIAL);
}

static void record(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
		   const struct tg_reconcile_result *res, const char *kind, const char *from,
		   int rolled_back)
{
	struct tg_history_entry e;
	const struct tg_history_entry *last = s->hist.len ? &s->hist.items[s->hist.len - 1] : NULL;

	/* The history lists commits, not passes: a pass that re-applies the
	 * newest commit (drift repair, a poll) adds nothing. */
	if (!strcmp(kind, "apply") && last && !strcmp(last->commit, res->commit) && !rolled_back &&
	    !res->unhealthy)
		return;
	memset(&e, 0, sizeof(e));
	memcpy(e.commit, res->commit, sizeof(e.commit));
	snprintf(e.kind, sizeof(e.kind), "%s", kind);
	if (from)
		snprintf(e.from_commit, sizeof(e.from_commit), "%s", from);
	snprintf(e.outcome, sizeof(e.outcome), "%s", tg_outcome_name(res->outcome));
	snprintf(e.health, sizeof(e.health), "%s", res->health[0] ? res->health : "unchecked");
	e.rolled_back = rolled_back;
	e.wall_ms = tg_wall_ms();
	e.author = res->author;
	e.summary = res->summary_line;
	e.trigger = (char *)(opts->trigger ? opts->trigger : "cli");
	e.actor = (char *)opts->actor;
	e.error = res->error[0] ? (char *)res->error : res->health_detail;
	e.created = res->created;
	e.updated = res->updated;
	e.deleted = res->deleted;
	e.failed = res->failed;
	tg_history_add(&s->hist, &e);
}

static void audit_event(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
			const char *event, const char *commit, const char *from, const char *error)
{
	struct tg_audit_event ev = { 0 };
	struct tg_err err = { 0, "" };

	if (!s->audit)
		return;
	ev.event = event;
	ev.sync = s->cfg->name;
	ev.commit = commit;
	ev.trigger = opts->trigger ? opts->trigger : "cli";
	ev.actor = opts->actor;
	ev.from_commit = from;
	ev.error = error;
	if (tg_audit_append_event(s->audit, &ev, &err))
		tg_log_kv(TG_LOG_ERROR, "cannot record an event in the audit trail", "sync",
			  s->cfg->name, "event", event, "error", err.msg, NULL);
}

/* A full commit id for `rollback --to`: as given, or the one commit of the
 * history that starts with it. */
static int resolve_target(struct tg_syncer *s, const char *want, char out[41], struct tg_err *err)
{
	size_t n = strlen(want), hits = 0;

	if (n < 4 || n > 40 || strspn(want, "0123456789abcdef") != n)
		return tg_err_set(err, TG_EINVALID,
				  "rollback target '%.40s' is not a commit id (4 to 40 hex digits)",
				  want);
	if (n == 40) {
		memcpy(out, want, 41);
		return 0;
	}
	for (size_t i = 0; i < s->hist.len; i++)
		if (!strncmp(s->hist.items[i].commit, want, n) &&
		    strcmp(out, s->hist.items[i].commit)) {
			memcpy(out, s->hist.items[i].commit, 41);
			hits++;
		}
	if (hits != 1)
		return tg_err_set(
			err, TG_ENOTFOUND,
			hits ? "commit prefix '%s' is ambiguous in the history"
			     : "commit prefix '%s' is not in the history; give the full id",
			want);
	return 0;
}

static void run_governed(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
			 struct tg_reconcile_result *res)
{
	struct tg_err err = { 0, "" };
	char head[41] = "", target[41] = "", bad[41] = "";
	const char *pin = NULL;
	int manual = 0;
	long long t_apply;

	if (!s->git || opts->local_dir) {
		if (opts->rollback_to) {
			memset(res, 0, sizeof(*res));
			tg_problems_init(&res->problems);
			tg_reconcile_result_error(
				res, TG_OUTCOME_ERROR,
				"rollback needs a git repository: a local directory has no history");
			return;
		}
		tg_reconcile_one_pass(s, opts, res, NULL, head);
		if (applied(opts, res))
			check_health(s, res);
		return;
	}
	tg_governed_load_history(s);
	if (opts->rollback_to) {
		if (resolve_target(s, opts->rollback_to, target, &err)) {
			memset(res, 0, sizeof(*res));
			tg_problems_init(&res->problems);
			tg_reconcile_result_error(res, TG_OUTCOME_ERROR, err.msg);
			return;
		}
		pin = target;
		manual = 1;
	} else if (s->hist.pin[0] && opts->force) {
		/* Asked for: the ref's commit again, whatever failed before.
		 * A plan only (diff) shows that commit and lifts nothing. */
		if (!opts->dry_run) {
			tg_log_kv(TG_LOG_INFO, "forced pass lifts the rollback pin", "sync",
				  s->cfg->name, "pin", s->hist.pin, NULL);
			s->hist.pin[0] = s->hist.pin_head[0] = '\0';
			save_history(s);
		}
	} else if (s->hist.pin[0]) {
		memcpy(target, s->hist.pin, sizeof(target));
		pin = target;
	}
	t_apply = tg_now_ms();
	tg_reconcile_one_pass(s, opts, res, pin, head);
	if (pin && !manual && head[0] && strcmp(head, s->hist.pin_head)) {
		/* A new commit on the ref lifts the pin: it gets its chance. */
		if (!opts->dry_run) {
			tg_log_kv(TG_LOG_INFO, "new commit on the ref lifts the rollback pin",
				  "sync", s->cfg->name, "commit", head, "pin", s->hist.pin, NULL);
			s->hist.pin[0] = s->hist.pin_head[0] = '\0';
			save_history(s);
		}
		tg_reconcile_result_release(res);
		pin = NULL;
		t_apply = tg_now_ms();
		tg_reconcile_one_pass(s, opts, res, NULL, head);
	}
	res->pinned = pin != NULL;
	if (!applied(opts, res)) {
		if (manual && !opts->dry_run) {
			audit_event(s, opts, "rollback_failed", target, NULL, res->error);
			res->rollback = -1;
		}
		return;
	}
	memcpy(res->live_commit, res->commit, sizeof(res->live_commit));
	check_health(s, res);
	if (manual) {
		const struct tg_history_entry *last =
			s->hist.len ? &s->hist.items[s->hist.len - 1] : NULL;

		if (last)
			memcpy(res->rollback_from, last->commit, sizeof(res->rollback_from));
		memcpy(s->hist.pin, target, sizeof(s->hist.pin));
		memcpy(s->hist.pin_head, head[0] ? head : target, sizeof(s->hist.pin_head));
		record(s, opts, res, "rollback", res->rollback_from[0] ? res->rollback_from : NULL,
		       0);
		save_history(s);
		audit_event(s, opts, "rollback", res->commit,
			    res->rollback_from[0] ? res->rollback_from : NULL, NULL);
		res->rollback = 1;
		return;
	}
	if (!res->unhealthy || !s->cfg->health_rollback || pin) {
		record(s, opts, res, "apply", NULL, 0);
		save_history(s);
		if (res->unhealthy) {
			char msg[TG_ERR_MSG_MAX];

			snprintf(msg, sizeof(msg), "commit %.12s failed its health check: %.400s",
				 res->commit, res->health_detail ? res->health_detail : "");
			audit_event(s, opts, "health_failed", res->commit, NULL, msg);
			if (res->outcome == TG_OUTCOME_SUCCESS)
				tg_reconcile_result_error(res, TG_OUTCOME_PARTIAL, msg);
		}
		return;
	}
	/* Unhealthy, on_failure: rollback. */
	{
		const struct tg_history_entry *good =
			tg_history_last_healthy(&s->hist, res->commit);
		struct tg_reconcile_result rb;
		struct tg_reconcile_opts ro = *opts;
		char msg[TG_ERR_MSG_MAX];

		memcpy(bad, res->commit, sizeof(bad));
		/* Copied first: recording moves the history's entries. */
		if (good)
			memcpy(target, good->commit, sizeof(target));
		record(s, opts, res, "apply", NULL, good != NULL);
		audit_event(s, opts, "health_failed", bad, NULL, res->health_detail);
		if (!good) {
			save_history(s);
			snprintf(
				msg, sizeof(msg),
				"commit %.12s failed its health check (%.300s); no earlier healthy commit to roll back to",
				bad, res->health_detail ? res->health_detail : "");
			tg_reconcile_result_error(res, TG_OUTCOME_ERROR, msg);
			return;
		}
		/* Pinned first: should the rollback pass fail half-way, the
		 * next pass still works towards the good commit. */
		memcpy(s->hist.pin, target, sizeof(s->hist.pin));
		memcpy(s->hist.pin_head, head[0] ? head : bad, sizeof(s->hist.pin_head));
		save_history(s);
		tg_log_kv(TG_LOG_WARN, "rolling back", "sync", s->cfg->name, "commit", bad, "to",
			  target, NULL);
		ro.trigger = "rollback";
		tg_reconcile_one_pass(s, &ro, &rb, target, NULL);
		if (applied(&ro, &rb))
			check_health(s, &rb);
		rb.pinned = 1;
		memcpy(rb.rollback_from, bad, sizeof(rb.rollback_from));
		record(s, &ro, &rb, "rollback", bad, 0);
		save_history(s);
		audit_event(s, &ro, applied(&ro, &rb) ? "rollback" : "rollback_failed", target, bad,
			    rb.error[0] ? rb.error : NULL);
		res->rollback = applied(&ro, &rb) ? 1 : -1;
		if (applied(&ro, &rb)) {
			memcpy(res->rolled_back_to, target, sizeof(res->rolled_back_to));
			memcpy(res->live_commit, target, sizeof(res->live_commit));
			snprintf(
				msg, sizeof(msg),
				"commit %.12s failed its health check (%.300s); rolled back to %.12s",
				bad, res->health_detail ? res->health_detail : "", target);
		} else {
			res->live_commit[0] = '\0';
			snprintf(
				msg, sizeof(msg),
				"commit %.12s failed its health check; rollback to %.12s failed: %.200s",
				bad, target, rb.error);
		}
		res->rollback_ms = tg_now_ms() - t_apply;
		tg_reconcile_result_error(res, TG_OUTCOME_ERROR, msg);
		tg_reconcile_result_release(&rb);
	}
}

void tg_syncer_run(struct tg_syncer *s, const struct tg_reconcile_opts *opts,
		   struct tg_reconcile_result *res)
{
	struct tg_err err = { 0, "" };
	int lock = -1;

	/* Another pass of this sync (the CLI beside the controller, or the
	 * other way round) finishes first; a pass seldom takes long, and one
	 * that waits past the limit fails and is retried like any other. */
	if (s->lock_path) {
		lock = tg_lock_file(s->lock_path, PASS_LOCK_WAIT_MS, &err);
		if (lock < 0) {
			memset(res, 0, sizeof(*res));
			tg_problems_init(&res->problems);
			tg_reconcile_result_error(res, TG_OUTCOME_ERROR, err.msg);
			return;
		}
	}
	run_governed(s, opts, res);
	if (lock >= 0)
		close(lock);
}

int tg_syncer_remote_changed(struct tg_syncer *s, int *changed, char head[41], struct tg_err *err)
{
	const struct tg_commit_info *ci;
	char sha[41] = "";
	int rc;

	*changed = 1;
	if (head)
		head[0] = '\0';
	if (!s->git)
		return 0;
	rc = tg_git_remote_head(s->git, sha, err);
	if (rc)
		return rc;
	if (head)
		memcpy(head, sha, sizeof(sha));
	ci = tg_git_commit(s->git);
	/* Pinned by a rollback: only a new commit on the ref is a change. */
	if (s->hist.pin[0])
		*changed = strcmp(s->hist.pin_head, sha) != 0;
	else
		*changed = !ci || strcmp(ci->sha, sha) != 0;
	return 0;
}
