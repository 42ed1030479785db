/*
 * Report: the last stage of a pass.  Turns one struct tg_reconcile_result
 * into what each reader needs: the text a person reads at the CLI, the one
 * JSON schema (CLI `--format json` and the status API's `last_result`), the
 * log line, and the metric updates.  The audit trail is written by the pass
 * itself, because its intents must reach the disk before the gateway.
 *
 * JSON schema of a pass:
 *   {"sync", "trigger", "outcome", "commit", "author", "commit_summary",
 *    "error", "plan_only", "started_at", "duration_seconds", "summary",
 *    "counts": {created, updated, deleted, unchanged, conflicts, failed,
 *               drifted, warned},
 *    "planned": {create, update, delete, conflict, unchanged},
 *    "objects": [{kind, id, action, file, drifted, warn_only, ok, error,
 *                 changes: [{path, before, after}]}],
 *    "problems": {valid, errors, warnings, problems: [...]}}
 * "objects" lists every item that is not simply unchanged; "ok" and
 * "error" appear once the pass applied; change values are redacted.
 */
#ifndef TG_REPORT_H
#define TG_REPORT_H

#include <stdio.h>

#include <cjson/cJSON.h>

#include "tg/metrics.h"
#include "tg/reconcile.h"

struct tg_report_ctx {
	const char *sync;
	const char *trigger;       /* "cli", "poll", ... */
	long long started_wall_ms; /* 0: unknown */
	int plan_only;             /* diff, --dry-run, or a suspended sync */
	size_t max_items;          /* JSON: list at most this many objects and problems
	                               ("objects_truncated", problems' "truncated"); 0 = all */
};

/* "2 created, 1 updated, 0 deleted, 5 unchanged[, 1 failed][, 1 conflicts]" */
void tg_report_summary(const struct tg_reconcile_result *res, char *out, size_t size);

/* The CLI's text: one line per change (with its JSON paths), failures and
 * problems on err, then a closing line on out. */
void tg_report_text(FILE *out, FILE *err, const struct tg_report_ctx *ctx,
		    const struct tg_reconcile_result *res);

/* The pass as the JSON schema above.  Caller deletes. */
cJSON *tg_report_json(const struct tg_report_ctx *ctx, const struct tg_reconcile_result *res);

/* One log line: "reconciled" at info, or "reconcile failed" at error. */
void tg_report_log(const struct tg_report_ctx *ctx, const struct tg_reconcile_result *res);

/*
 * Updates the controller's metric families (see tg/catalog.h) after a
 * pass: passes by result and duration, and, when the pass applied a
 * commit, the commit info, objects by kind and state, drift corrections
 * (prev_commit: the commit applied before, "" if none) and the last
 * success time.
 */
void tg_report_metrics(struct tg_metrics *m, const struct tg_report_ctx *ctx,
		       const struct tg_reconcile_result *res, const char *prev_commit);

/* JSON helpers shared with the status API: a string, or null when NULL or
 * empty; an RFC 3339 time, or null when wall_ms <= 0. */
void tg_json_add_str_or_null(cJSON *o, const char *key, const char *v);
void tg_json_add_time(cJSON *o, const char *key, long long wall_ms);

/* `status`: every object on the gateway that sync owns, with the commit
 * and file of its marker and its state (in-sync, drifted, out-of-date,
 * pruned-from-git), from a dry-run result.  Text rows (after the header)
 * or JSON objects appended to rows. */
void tg_report_status_header(FILE *out);
void tg_report_status_text(FILE *out, const char *sync, const struct tg_reconcile_result *res);
void tg_report_status_json(cJSON *rows, const char *sync, const struct tg_reconcile_result *res);

/* Whether the plan would change anything (diff's exit code 2). */
int tg_report_has_changes(const struct tg_reconcile_result *res);

#endif
