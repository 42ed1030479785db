/*
 * Code Insights documents (see include/tg/insights.h).  Pure.
 *
 * Every validation problem and every planned change becomes one note;
 * notes become annotations, problems first (they decide the result), cut
 * at the report's limit with the cut said in the report's details.
 */
#include "tg/insights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/marker.h"
#include "tg/banned.h"

struct note {
	char *path; /* relative to the repository root; NULL: not tied to a file */
	int line;   /* 0: the whole file */
	char *summary;
	char *details; /* may be NULL */
	const char *severity, *type;
	int failed;
};

struct notes {
	struct note *items;
	size_t len;
	const char *prefix; /* the sync's path: file names are relative to it */
};

static void add_note(struct notes *ns, const char *path, int line, char *summary, char *details,
		     const char *severity, const char *type, int failed)
{
	struct note *n;

	ns->items = tg_xreallocarray(ns->items, ns->len + 1, sizeof(*ns->items));
	n = &ns->items[ns->len++];
	if (!path || !*path)
		n->path = NULL;
	else if (ns->prefix && *ns->prefix)
		n->path = tg_xasprintf("%s/%s", ns->prefix, path);
	else
		n->path = tg_xstrdup(path);
	n->line = line > 0 ? line : 0;
	n->summary = summary;
	n->details = details;
	n->severity = severity;
	n->type = type;
	n->failed = failed;
}

static void collect_problems(struct notes *ns, const struct tg_problems *p)
{
	for (size_t i = 0; i < p->len; i++) {
		const struct tg_problem *pr = &p->items[i];
		int err = pr->severity == TG_SEV_ERROR;
		/* As in the text form: a guardrail's finding names its rule. */
		const char *label = pr->rule ? pr->rule : pr->field;

		add_note(ns, pr->file, pr->line,
			 tg_xasprintf("%s: %s%s%s", err ? "error" : "warning", label ? label : "",
				      label ? ": " : "", pr->msg),
			 NULL, err ? "HIGH" : "LOW", err ? "BUG" : "CODE_SMELL", err);
	}
}

static const char *verb(enum tg_action a)
{
	switch (a) {
	case TG_ACTION_CREATE: return "will create";
	case TG_ACTION_UPDATE: return "will update";
	case TG_ACTION_DELETE: return "will delete";
	case TG_ACTION_CONFLICT: return "conflict:";
	default: return "unchanged";
	}
}

static char *change_details(const struct tg_plan_item *it)
{
	struct tg_buf b = TG_BUF_INIT;

	for (size_t c = 0; c < it->changes.len; c++) {
		const struct tg_change *ch = &it->changes.items[c];

		tg_buf_printf(&b, "%s%s: %s -> %s", c ? "\n" : "", ch->path,
			      ch->before ? ch->before : "(absent)",
			      ch->after ? ch->after : "(absent)");
	}
	if (it->action == TG_ACTION_CONFLICT)
		tg_buf_puts(&b, "an object with this id exists on the gateway and is not owned by "
				"this sync (set adopt: true to take it over)");
	if (!b.len) {
		tg_buf_release(&b);
		return NULL;
	}
	return tg_buf_detach(&b);
}

static void collect_plan(struct notes *ns, const struct tg_plan *plan)
{
	for (size_t i = 0; plan && i < plan->len; i++) {
		const struct tg_plan_item *it = &plan->items[i];
		const char *path = NULL, *sev;
		int line = 0;
		char *summary;

		if (it->action == TG_ACTION_NONE)
			continue;
		if (it->desired) {
			path = it->desired->file;
			line = it->desired->line;
		} else if (it->actual) {
			/* A delete: the file the object came from, as its
			 * marker remembers (now gone from the commit). */
			path = tg_marker_get(it->kind, it->actual, "file");
		}
		summary = tg_xasprintf("%s %s '%s'%s%s%s%s", verb(it->action),
				       tg_kind_name(it->kind), it->id, it->name ? " (" : "",
				       it->name ? it->name : "", it->name ? ")" : "",
				       it->action == TG_ACTION_UPDATE && it->drifted
					       ? ", changed on the gateway by hand"
					       : "");
		sev = it->action == TG_ACTION_CONFLICT ? "HIGH"
		      : it->action == TG_ACTION_DELETE ? "MEDIUM"
						       : "LOW";
		add_note(ns, path, line, summary, change_details(it), sev, "CODE_SMELL",
			 it->action == TG_ACTION_CONFLICT);
	}
}

static void notes_release(struct notes *ns)
{
	for (size_t i = 0; i < ns->len; i++) {
		free(ns->items[i].path);
		free(ns->items[i].summary);
		free(ns->items[i].details);
	}
	free(ns->items);
}

static void add_clipped(cJSON *o, const char *key, const char *v, size_t max)
{
	char *c = tg_bb_clip(v, max);

	cJSON_AddStringToObject(o, key, c);
	free(c);
}

static cJSON *annotation(enum tg_bb_api api, const struct note *n, size_t idx)
{
	cJSON *a = cJSON_CreateObject();
	char id[64];

	snprintf(id, sizeof(id), "tyk-gitops-%zu", idx + 1);
	if (api == TG_BB_CLOUD) {
		cJSON_AddStringToObject(a, "external_id", id);
		cJSON_AddStringToObject(a, "annotation_type", n->type);
		add_clipped(a, "summary", n->summary, TG_INSIGHTS_SUMMARY_MAX);
		if (n->details)
			add_clipped(a, "details", n->details, TG_INSIGHTS_DETAILS_MAX);
		cJSON_AddStringToObject(a, "severity", n->severity);
		cJSON_AddStringToObject(a, "result", n->failed ? "FAILED" : "PASSED");
	} else {
		struct tg_buf msg = TG_BUF_INIT;

		cJSON_AddStringToObject(a, "externalId", id);
		cJSON_AddStringToObject(a, "type", n->type);
		/* Data Center has no CRITICAL; one message holds both texts. */
		cJSON_AddStringToObject(a, "severity", n->severity);
		tg_buf_puts(&msg, n->summary);
		if (n->details)
			tg_buf_printf(&msg, "\n%s", n->details);
		add_clipped(a, "message", tg_buf_cstr(&msg), TG_INSIGHTS_DETAILS_MAX);
		tg_buf_release(&msg);
	}
	if (n->path)
		cJSON_AddStringToObject(a, "path", n->path);
	if (n->path && n->line)
		cJSON_AddNumberToObject(a, "line", n->line);
	return a;
}

static void add_datum(cJSON *data, const char *title, size_t v)
{
	cJSON *d = cJSON_CreateObject();

	cJSON_AddStringToObject(d, "title", title);
	cJSON_AddStringToObject(d, "type", "NUMBER");
	cJSON_AddNumberToObject(d, "value", (double)v);
	cJSON_AddItemToArray(data, d);
}

void tg_insights_build(struct tg_insights *out, enum tg_bb_api api,
		       const struct tg_insights_input *in)
{
	const struct tg_reconcile_result *res = in->res;
	const struct tg_plan *plan = &res->plan;
	size_t max = in->max_annotations ? in->max_annotations : TG_INSIGHTS_MAX_ANNOTATIONS;
	size_t batch = api == TG_BB_CLOUD ? TG_INSIGHTS_CLOUD_BATCH : TG_INSIGHTS_DC_BATCH;
	struct notes ns = { NULL, 0, in->path };
	struct tg_buf details = TG_BUF_INIT;
	cJSON *r, *data, *cur = NULL;
	char title[TG_INSIGHTS_TITLE_MAX + 1];

	memset(out, 0, sizeof(*out));
	if (max > TG_INSIGHTS_MAX_ANNOTATIONS)
		max = TG_INSIGHTS_MAX_ANNOTATIONS;
	collect_problems(&ns, &res->problems);
	collect_plan(&ns, plan);
	out->n_found = ns.len;
	out->passed = res->outcome == TG_OUTCOME_SUCCESS && res->problems.errors == 0;

	snprintf(title, sizeof(title), "tyk-gitops: %s", in->sync ? in->sync : "gateway plan");
	if (res->problems.errors)
		tg_buf_printf(&details, "The repository is invalid: %zu error(s), %zu warning(s). ",
			      res->problems.errors, res->problems.len - res->problems.errors);
	else if (res->outcome != TG_OUTCOME_SUCCESS && res->error[0])
		tg_buf_printf(&details, "%s. ", res->error);
	if (in->gateway && plan->len)
		tg_buf_printf(
			&details,
			"Merging this will create %zu, update %zu and delete %zu object(s) on "
			"the gateway (%zu unchanged, %zu conflict(s)).",
			plan->counts[TG_ACTION_CREATE], plan->counts[TG_ACTION_UPDATE],
			plan->counts[TG_ACTION_DELETE], plan->counts[TG_ACTION_NONE],
			plan->counts[TG_ACTION_CONFLICT]);
	else if (!in->gateway)
		tg_buf_puts(&details, "Validated offline (no gateway configured: no plan).");
	if (ns.len > max)
		tg_buf_printf(&details,
			      " Showing %zu of %zu annotations (Bitbucket keeps at most %d per "
			      "report); `tyk-gitops diff` lists them all.",
			      max, ns.len, TG_INSIGHTS_MAX_ANNOTATIONS);

	r = cJSON_CreateObject();
	add_clipped(r, "title", title, TG_INSIGHTS_TITLE_MAX);
	add_clipped(r, "details", tg_buf_cstr(&details), TG_INSIGHTS_DETAILS_MAX);
	cJSON_AddStringToObject(r, "reporter", "tyk-gitops");
	if (api == TG_BB_CLOUD) {
		cJSON_AddStringToObject(r, "report_type", "TEST");
		cJSON_AddStringToObject(r, "result", out->passed ? "PASSED" : "FAILED");
	} else {
		cJSON_AddStringToObject(r, "result", out->passed ? "PASS" : "FAIL");
	}
	if (in->link && *in->link)
		cJSON_AddStringToObject(r, "link", in->link);
	/* Six figures: Data Center shows at most six. */
	data = cJSON_AddArrayToObject(r, "data");
	add_datum(data, "Created", plan->counts[TG_ACTION_CREATE]);
	add_datum(data, "Updated", plan->counts[TG_ACTION_UPDATE]);
	add_datum(data, "Deleted", plan->counts[TG_ACTION_DELETE]);
	add_datum(data, "Unchanged", plan->counts[TG_ACTION_NONE]);
	add_datum(data, "Conflicts", plan->counts[TG_ACTION_CONFLICT]);
	add_datum(data, "Problems", res->problems.len);
	out->report = r;

	for (size_t i = 0; i < ns.len && i < max; i++) {
		if (!cur || (size_t)cJSON_GetArraySize(cur) >= batch) {
			cur = cJSON_CreateArray();
			out->batches = tg_xreallocarray(out->batches, out->n_batches + 1,
							sizeof(*out->batches));
			out->batches[out->n_batches++] = cur;
		}
		cJSON_AddItemToArray(cur, annotation(api, &ns.items[i], i));
		out->n_annotations++;
	}
	if (api == TG_BB_DC)
		for (size_t b = 0; b < out->n_batches; b++) {
			cJSON *wrap = cJSON_CreateObject();

			cJSON_AddItemToObject(wrap, "annotations", out->batches[b]);
			out->batches[b] = wrap;
		}
	tg_buf_release(&details);
	notes_release(&ns);
}

void tg_insights_release(struct tg_insights *ins)
{
	cJSON_Delete(ins->report);
	for (size_t i = 0; i < ins->n_batches; i++)
		cJSON_Delete(ins->batches[i]);
	free(ins->batches);
	memset(ins, 0, sizeof(*ins));
}

static char *report_url(const struct tg_bb_target *t, const char *sha, const char *report_id,
			const char *tail)
{
	char *o = tg_bb_path_escape(t->owner), *s = tg_bb_path_escape(t->slug);
	char *c = tg_bb_path_escape(sha), *r = tg_bb_path_escape(report_id), *url;

	if (t->api == TG_BB_CLOUD)
		url = tg_xasprintf("%s/2.0/repositories/%s/%s/commit/%s/reports/%s%s", t->base_url,
				   o, s, c, r, tail);
	else
		url = tg_xasprintf(
			"%s/rest/insights/1.0/projects/%s/repos/%s/commits/%s/reports/%s%s",
			t->base_url, o, s, c, r, tail);
	free(o);
	free(s);
	free(c);
	free(r);
	return url;
}

char *tg_insights_report_url(const struct tg_bb_target *t, const char *sha, const char *report_id)
{
	return report_url(t, sha, report_id, "");
}

char *tg_insights_annotations_url(const struct tg_bb_target *t, const char *sha,
				  const char *report_id)
{
	return report_url(t, sha, report_id, "/annotations");
}

/* Markdown: text from the repository goes in code spans, so a file name
 * or a message cannot inject markup into the comment. */
static void md_code(struct tg_buf *b, const char *s)
{
	tg_buf_puts(b, "`");
	for (const char *p = s; *p; p++)
		tg_buf_put(b, *p == '`' ? "'" : *p == '\n' ? " " : p, 1);
	tg_buf_puts(b, "`");
}

void tg_insights_markdown(struct tg_buf *out, const struct tg_insights_input *in, size_t max)
{
	const struct tg_reconcile_result *res = in->res;
	const struct tg_plan *plan = &res->plan;
	struct notes ns = { NULL, 0, in->path };
	int passed = res->outcome == TG_OUTCOME_SUCCESS && res->problems.errors == 0;
	size_t shown = 0, room;
	struct tg_buf line = TG_BUF_INIT;

	collect_problems(&ns, &res->problems);
	collect_plan(&ns, plan);
	tg_buf_printf(out, "### tyk-gitops: %s %s\n\n", in->sync ? in->sync : "plan",
		      passed ? "passed" : "failed");
	if (res->outcome != TG_OUTCOME_SUCCESS && res->error[0] && !res->problems.errors) {
		tg_buf_puts(out, "Error: ");
		md_code(out, res->error);
		tg_buf_puts(out, "\n\n");
	}
	tg_buf_puts(out, "| created | updated | deleted | unchanged | conflicts | problems |\n"
			 "|---|---|---|---|---|---|\n");
	tg_buf_printf(out, "| %zu | %zu | %zu | %zu | %zu | %zu |\n\n",
		      plan->counts[TG_ACTION_CREATE], plan->counts[TG_ACTION_UPDATE],
		      plan->counts[TG_ACTION_DELETE], plan->counts[TG_ACTION_NONE],
		      plan->counts[TG_ACTION_CONFLICT], res->problems.len);
	if (!in->gateway)
		tg_buf_puts(out, "_Validated offline: no gateway configured, no plan._\n\n");
	/* Keep 100 bytes for the closing line. */
	room = max > out->len + 100 ? max - out->len - 100 : 0;
	for (size_t i = 0; i < ns.len; i++) {
		const struct note *n = &ns.items[i];

		tg_buf_clear(&line);
		tg_buf_puts(&line, "- ");
		if (n->path) {
			char *loc = n->line ? tg_xasprintf("%s:%d", n->path, n->line)
					    : tg_xstrdup(n->path);

			md_code(&line, loc);
			tg_buf_puts(&line, " ");
			free(loc);
		}
		md_code(&line, n->summary);
		tg_buf_puts(&line, "\n");
		if (line.len > room)
			break;
		tg_buf_puts(out, tg_buf_cstr(&line));
		room -= line.len;
		shown++;
	}
	if (shown < ns.len)
		tg_buf_printf(out, "\n_…and %zu more; `tyk-gitops diff` lists them all._\n",
			      ns.len - shown);
	tg_buf_release(&line);
	notes_release(&ns);
}
