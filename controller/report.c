/* The last stage of a pass: text, JSON, log line, metrics (see include/tg/report.h). */
#include "tg/report.h"

#include <stdlib.h>
#include <string.h>

#include "tg/buf.h"
#include "tg/catalog.h"
#include "tg/log.h"
#include "tg/marker.h"
#include "tg/banned.h"

void tg_report_summary(const struct tg_reconcile_result *res, char *out, size_t size)
{
	struct tg_buf b = TG_BUF_INIT;

	tg_buf_printf(&b, "%zu created, %zu updated, %zu deleted, %zu unchanged", res->created,
		      res->updated, res->deleted, res->unchanged);
	if (res->failed)
		tg_buf_printf(&b, ", %zu failed", res->failed);
	if (res->conflicts)
		tg_buf_printf(&b, ", %zu conflicts", res->conflicts);
	snprintf(out, size, "%s", tg_buf_cstr(&b));
	tg_buf_release(&b);
}

int tg_report_has_changes(const struct tg_reconcile_result *res)
{
	const struct tg_plan *plan = &res->plan;

	return plan->counts[TG_ACTION_CREATE] + plan->counts[TG_ACTION_UPDATE] +
		       plan->counts[TG_ACTION_DELETE] + plan->counts[TG_ACTION_CONFLICT] >
	       0;
}

static const char *short_commit(const struct tg_reconcile_result *res)
{
	return res->commit[0] ? res->commit : "(local)";
}

/* The per-object result of plan item i, or NULL before applying. */
static const struct tg_object_result *object_result(const struct tg_reconcile_result *res, size_t i)
{
	return i < res->n_objects ? &res->objects[i] : NULL;
}

/* An item worth showing: a change, a drift, or a failure. */
static int noteworthy(const struct tg_reconcile_result *res, size_t i)
{
	const struct tg_plan_item *it = &res->plan.items[i];
	const struct tg_object_result *r = object_result(res, i);

	return it->action != TG_ACTION_NONE || it->drifted || (r && !r->ok);
}

/* --- text ---------------------------------------------------------------- */

/* Repository text (ids, file names, values) shown to a person: control
 * characters escaped. */
static void item_text(FILE *out, const struct tg_plan_item *it)
{
	static const char *const sign[] = { "=", "+", "~", "-", "!" };
	struct tg_buf b = TG_BUF_INIT;

	tg_buf_printf(&b, "%s %s '", sign[it->action], tg_kind_name(it->kind));
	tg_buf_put_printable(&b, it->id);
	tg_buf_puts(&b, "'");
	if (it->desired) {
		tg_buf_puts(&b, " (");
		tg_buf_put_printable(&b, it->desired->file);
		tg_buf_puts(&b, ")");
	}
	fprintf(out, "%s\n", tg_buf_cstr(&b));
	tg_buf_release(&b);
	if (it->action == TG_ACTION_CONFLICT)
		fprintf(out,
			"    exists on the gateway and is not owned by this sync (set adopt: true to take it over)\n");
	if (it->drifted)
		fprintf(out, "    drifted: changed on the gateway%s\n",
			it->warn_only ? " (policy warn: left in place)" : "");
	for (size_t c = 0; c < it->changes.len; c++) {
		char *path = tg_printable(it->changes.items[c].path);

		/* Values are JSON text: control characters are escaped already. */
		fprintf(out, "    %s: %s -> %s\n", path,
			it->changes.items[c].before ? it->changes.items[c].before : "(absent)",
			it->changes.items[c].after ? it->changes.items[c].after : "(absent)");
		free(path);
	}
}

static void problems_text(FILE *err, const struct tg_reconcile_result *res)
{
	struct tg_buf text = TG_BUF_INIT;

	tg_problems_format_text(&res->problems, &text);
	fputs(tg_buf_cstr(&text), err);
	tg_buf_release(&text);
}

/* Warnings of guardrail rules do not stop a pass, but must be seen. */
static void rule_warnings(FILE *err, const struct tg_reconcile_result *res)
{
	struct tg_problems only;
	struct tg_buf text = TG_BUF_INIT;

	tg_problems_init(&only);
	for (size_t i = 0; i < res->problems.len; i++) {
		const struct tg_problem *pr = &res->problems.items[i];

		if (pr->rule)
			tg_problems_add_rule(&only, pr->severity, pr->file, pr->line, pr->column,
					     pr->field, pr->rule, "%s", pr->msg);
	}
	tg_problems_format_text(&only, &text);
	fputs(tg_buf_cstr(&text), err);
	tg_buf_release(&text);
	tg_problems_release(&only);
}

static void sync_error_line(FILE *err, const struct tg_report_ctx *ctx,
			    const struct tg_reconcile_result *res)
{
	char *e = tg_printable(res->error);

	fprintf(err, "tyk-gitops: sync '%s': %s\n", ctx->sync, e);
	free(e);
}

void tg_report_text(FILE *out, FILE *err, const struct tg_report_ctx *ctx,
		    const struct tg_reconcile_result *res)
{
	const struct tg_plan *plan = &res->plan;
	char summary[256];

	if (res->outcome == TG_OUTCOME_ERROR || res->outcome == TG_OUTCOME_REFUSED) {
		problems_text(err, res);
		sync_error_line(err, ctx, res);
		return;
	}
	rule_warnings(err, res);
	for (size_t i = 0; i < plan->len; i++)
		if (plan->items[i].action != TG_ACTION_NONE || plan->items[i].drifted)
			item_text(out, &plan->items[i]);
	for (size_t i = 0; i < res->n_objects; i++)
		if (res->objects[i].error) {
			char *id = tg_printable(res->objects[i].item->id);
			char *e = tg_printable(res->objects[i].error);

			fprintf(err, "tyk-gitops: %s '%s' failed: %s\n",
				tg_kind_name(res->objects[i].item->kind), id, e);
			free(id);
			free(e);
		}
	if (res->outcome == TG_OUTCOME_PARTIAL)
		sync_error_line(err, ctx, res);
	if (!ctx->plan_only && res->n_objects) {
		tg_report_summary(res, summary, sizeof(summary));
		fprintf(out, "sync '%s' at %.12s: %s\n", ctx->sync, short_commit(res), summary);
	} else if (!tg_report_has_changes(res)) {
		fprintf(out, "sync '%s' at %.12s: in sync (%zu objects)\n", ctx->sync,
			short_commit(res), plan->counts[TG_ACTION_NONE]);
	} else {
		fprintf(out,
			"sync '%s' at %.12s: %zu to create, %zu to update, %zu to delete, %zu conflicts\n",
			ctx->sync, short_commit(res), plan->counts[TG_ACTION_CREATE],
			plan->counts[TG_ACTION_UPDATE], plan->counts[TG_ACTION_DELETE],
			plan->counts[TG_ACTION_CONFLICT]);
	}
}

/* --- JSON ------------------------------------------------------------------ */

void tg_json_add_str_or_null(cJSON *o, const char *key, const char *v)
{
	if (v && *v)
		cJSON_AddStringToObject(o, key, v);
	else
		cJSON_AddNullToObject(o, key);
}

void tg_json_add_time(cJSON *o, const char *key, long long wall_ms)
{
	char when[TG_TIME_MAX];

	if (wall_ms <= 0) {
		cJSON_AddNullToObject(o, key);
		return;
	}
	tg_rfc3339(when, wall_ms, 0);
	cJSON_AddStringToObject(o, key, when);
}

/* Change values are JSON text already (redacted by the planner): embedded
 * as they are, not parsed again. */
static cJSON *json_value(const char *text)
{
	return text ? cJSON_CreateRaw(text) : cJSON_CreateNull();
}

static cJSON *object_json(const struct tg_reconcile_result *res, size_t i)
{
	const struct tg_plan_item *it = &res->plan.items[i];
	const struct tg_object_result *r = object_result(res, i);
	cJSON *o = cJSON_CreateObject(), *changes;

	cJSON_AddStringToObject(o, "kind", tg_kind_name(it->kind));
	cJSON_AddStringToObject(o, "id", it->id);
	cJSON_AddStringToObject(o, "action", tg_action_name(it->action));
	tg_json_add_str_or_null(o, "file", it->desired ? it->desired->file : NULL);
	cJSON_AddBoolToObject(o, "drifted", it->drifted);
	cJSON_AddBoolToObject(o, "warn_only", it->warn_only);
	if (r) {
		cJSON_AddBoolToObject(o, "ok", r->ok);
		tg_json_add_str_or_null(o, "error", r->error);
	}
	changes = cJSON_AddArrayToObject(o, "changes");
	for (size_t c = 0; c < it->changes.len; c++) {
		cJSON *ch = cJSON_CreateObject();

		cJSON_AddStringToObject(ch, "path", it->changes.items[c].path);
		cJSON_AddItemToObject(ch, "before", json_value(it->changes.items[c].before));
		cJSON_AddItemToObject(ch, "after", json_value(it->changes.items[c].after));
		cJSON_AddItemToArray(changes, ch);
	}
	return o;
}

static void add_counts(cJSON *o, const struct tg_reconcile_result *res)
{
	static const char *const count_names[] = { "created",   "updated", "deleted", "unchanged",
						   "conflicts", "failed",  "drifted", "warned" };
	const size_t counts[] = { res->created,   res->updated, res->deleted, res->unchanged,
				  res->conflicts, res->failed,  res->drifted, res->warned };
	static const char *const planned_names[] = { "unchanged", "create", "update", "delete",
						     "conflict" };
	cJSON *c = cJSON_AddObjectToObject(o, "counts"), *p;

	for (size_t i = 0; i < TG_ARRAY_SIZE(counts); i++)
		cJSON_AddNumberToObject(c, count_names[i], (double)counts[i]);
	p = cJSON_AddObjectToObject(o, "planned");
	for (size_t a = 0; a < TG_ARRAY_SIZE(planned_names); a++)
		cJSON_AddNumberToObject(p, planned_names[a], (double)res->plan.counts[a]);
}

cJSON *tg_report_json(const struct tg_report_ctx *ctx, const struct tg_reconcile_result *res)
{
	cJSON *o = cJSON_CreateObject(), *objs;
	struct tg_buf problems = TG_BUF_INIT;
	size_t max = ctx->max_items ? ctx->max_items : (size_t)-1, listed = 0;
	char summary[256];

	cJSON_AddStringToObject(o, "sync", ctx->sync);
	cJSON_AddStringToObject(o, "trigger", ctx->trigger ? ctx->trigger : "cli");
	cJSON_AddStringToObject(o, "outcome", tg_outcome_name(res->outcome));
	tg_json_add_str_or_null(o, "commit", res->commit);
	tg_json_add_str_or_null(o, "author", res->author);
	tg_json_add_str_or_null(o, "author_name", res->author_name);
	tg_json_add_str_or_null(o, "author_email", res->author_email);
	tg_json_add_str_or_null(o, "commit_summary", res->summary_line);
	tg_json_add_str_or_null(o, "error", res->error);
	cJSON_AddBoolToObject(o, "plan_only", ctx->plan_only);
	tg_json_add_time(o, "started_at", ctx->started_wall_ms);
	cJSON_AddNumberToObject(o, "duration_seconds", (double)res->duration_ms / 1000.0);
	tg_report_summary(res, summary, sizeof(summary));
	cJSON_AddStringToObject(o, "summary", summary);
	add_counts(o, res);
	objs = cJSON_AddArrayToObject(o, "objects");
	for (size_t i = 0; i < res->plan.len; i++) {
		if (!noteworthy(res, i))
			continue;
		if (listed++ == max) {
			cJSON_AddBoolToObject(o, "objects_truncated", 1);
			break;
		}
		cJSON_AddItemToArray(objs, object_json(res, i));
	}
	tg_json_add_str_or_null(o, "health", res->health);
	tg_json_add_str_or_null(o, "health_detail", res->health_detail);
	tg_json_add_str_or_null(o, "rolled_back_to", res->rolled_back_to);
	tg_json_add_str_or_null(o, "rollback_from", res->rollback_from);
	tg_json_add_str_or_null(o, "live_commit", res->live_commit);
	cJSON_AddBoolToObject(o, "pinned", res->pinned);
	if (res->health[0] && strcmp(res->health, "unchecked"))
		cJSON_AddNumberToObject(o, "health_seconds", (double)res->health_ms / 1000.0);
	if (res->rollback_ms > 0)
		cJSON_AddNumberToObject(o, "rollback_seconds", (double)res->rollback_ms / 1000.0);
	tg_problems_format_json_max(&res->problems, &problems, max);
	cJSON_AddItemToObject(o, "problems", cJSON_CreateRaw(tg_buf_cstr(&problems)));
	tg_buf_release(&problems);
	return o;
}

/* --- log and metrics --------------------------------------------------- */

void tg_report_log(const struct tg_report_ctx *ctx, const struct tg_reconcile_result *res)
{
	char summary[256];

	tg_report_summary(res, summary, sizeof(summary));
	if (res->outcome == TG_OUTCOME_SUCCESS)
		tg_log_kv(TG_LOG_INFO, ctx->plan_only ? "planned (suspended)" : "reconciled",
			  "sync", ctx->sync, "commit", res->commit, "trigger", ctx->trigger,
			  "summary", summary, NULL);
	else
		tg_log_kv(TG_LOG_ERROR, "reconcile failed", "sync", ctx->sync, "commit",
			  res->commit, "trigger", ctx->trigger, "outcome",
			  tg_outcome_name(res->outcome), "error", res->error, "summary", summary,
			  NULL);
}

/* Object states and drift corrections after an applied pass. */
static void object_metrics(struct tg_metrics *m, const char *sync,
			   const struct tg_reconcile_result *res, const char *prev_commit)
{
	static const char *const states[] = { "in_sync", "drifted", "failed" };
	double counts[TG_KIND_COUNT][3] = { { 0 } };
	double corrections = 0;
	int same_commit = prev_commit[0] && !strcmp(prev_commit, res->commit);

	for (size_t i = 0; i < res->plan.len; i++) {
		const struct tg_plan_item *it = &res->plan.items[i];
		const struct tg_object_result *r = object_result(res, i);
		int ok = r ? r->ok : 1;
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

			tg_metrics_set(m, TG_M_OBJECTS, l, counts[k][st]);
		}
	if (corrections > 0) {
		const char *l[] = { sync };

		tg_metrics_add(m, TG_M_DRIFT, l, corrections);
	}
}

void tg_report_metrics(struct tg_metrics *m, const struct tg_report_ctx *ctx,
		       const struct tg_reconcile_result *res, const char *prev_commit)
{
	const char *l_result[] = { ctx->sync, tg_outcome_name(res->outcome) };
	const char *l_sync[] = { ctx->sync };
	int applied = !ctx->plan_only && res->commit[0] &&
		      (res->outcome == TG_OUTCOME_SUCCESS || res->outcome == TG_OUTCOME_PARTIAL);

	tg_metrics_add(m, TG_M_RECONCILES, l_result, 1);
	for (size_t i = 0; i < res->problems.len; i++) {
		const struct tg_problem *pr = &res->problems.items[i];
		const char *l[] = { ctx->sync, pr->rule,
				    pr->severity == TG_SEV_ERROR ? "error" : "warning" };

		if (pr->rule)
			tg_metrics_add(m, TG_M_RULES, l, 1);
	}
	if (res->health[0] && strcmp(res->health, "unchecked")) {
		const char *l[] = { ctx->sync, res->health };

		tg_metrics_add(m, TG_M_HEALTH, l, 1);
	}
	if (res->rollback) {
		const char *l[] = { ctx->sync, res->rollback > 0 ? "ok" : "failed" };

		tg_metrics_add(m, TG_M_ROLLBACKS, l, 1);
	}
	tg_metrics_observe(m, TG_M_RECONCILE_SECONDS, l_result, (double)res->duration_ms / 1000.0);
	if (applied) {
		const char *l[] = { ctx->sync, res->commit };

		tg_metrics_remove(m, TG_M_COMMIT, "sync", ctx->sync);
		tg_metrics_set(m, TG_M_COMMIT, l, 1);
		object_metrics(m, ctx->sync, res, prev_commit);
	}
	if (!ctx->plan_only && res->outcome == TG_OUTCOME_SUCCESS)
		tg_metrics_set(m, TG_M_LAST_SUCCESS, l_sync, (double)tg_wall_ms() / 1000.0);
}

/* --- status: every object the sync owns ------------------------------------ */

/* The owner's marker of an item (0), or TG_ENOTFOUND when another sync or
 * nobody owns it. */
static int owned_marker(struct tg_marker *m, const struct tg_plan_item *it, const char *sync)
{
	memset(m, 0, sizeof(*m));
	if (!it->actual || tg_marker_read(m, it->kind, it->actual) || !m->sync ||
	    strcmp(m->sync, sync)) {
		tg_marker_release(m);
		return TG_ENOTFOUND;
	}
	return 0;
}

static const char *status_state(const struct tg_plan_item *it)
{
	if (it->action == TG_ACTION_NONE)
		return "in-sync";
	if (it->action == TG_ACTION_DELETE)
		return "pruned-from-git";
	return it->drifted ? "drifted" : "out-of-date";
}

void tg_report_status_header(FILE *out)
{
	fprintf(out, "%-8s %-6s %-30s %-12s %-40s %s\n", "SYNC", "KIND", "ID", "COMMIT", "FILE",
		"STATE");
}

void tg_report_status_text(FILE *out, const char *sync, const struct tg_reconcile_result *res)
{
	for (size_t i = 0; i < res->plan.len; i++) {
		const struct tg_plan_item *it = &res->plan.items[i];
		struct tg_marker m;
		char *id, *file;

		if (owned_marker(&m, it, sync))
			continue;
		id = tg_printable(it->id);
		file = tg_printable(m.file ? m.file : "");
		fprintf(out, "%-8s %-6s %-30s %-12.12s %-40s %s\n", sync, tg_kind_name(it->kind),
			id, m.commit ? m.commit : "", file, status_state(it));
		free(id);
		free(file);
		tg_marker_release(&m);
	}
}

void tg_report_status_json(cJSON *rows, const char *sync, const struct tg_reconcile_result *res)
{
	for (size_t i = 0; i < res->plan.len; i++) {
		const struct tg_plan_item *it = &res->plan.items[i];
		const cJSON *name;
		struct tg_marker m;
		cJSON *o;

		if (owned_marker(&m, it, sync))
			continue;
		name = cJSON_GetObjectItemCaseSensitive(it->actual, "name");
		o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "sync", sync);
		cJSON_AddStringToObject(o, "kind", tg_kind_name(it->kind));
		cJSON_AddStringToObject(o, "id", it->id);
		cJSON_AddStringToObject(o, "name",
					it->name               ? it->name
					: cJSON_IsString(name) ? name->valuestring
							       : "");
		cJSON_AddStringToObject(o, "commit", m.commit ? m.commit : "");
		cJSON_AddStringToObject(o, "file", m.file ? m.file : "");
		cJSON_AddStringToObject(o, "applied_at", m.applied_at ? m.applied_at : "");
		cJSON_AddStringToObject(o, "state", status_state(it));
		cJSON_AddItemToArray(rows, o);
		tg_marker_release(&m);
	}
}
