/*
 * Problems found in user input, collected so that every one of them can be
 * reported at once (see include/tg/problems.h).
 */
#include "tg/problems.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/banned.h"

void tg_problems_init(struct tg_problems *p)
{
	p->items = NULL;
	p->len = p->alloc = 0;
	p->errors = 0;
}

static void problem_release(struct tg_problem *pr)
{
	free(pr->file);
	free(pr->field);
	free(pr->msg);
	free(pr->rule);
}

void tg_problems_release(struct tg_problems *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; i < p->len; i++)
		problem_release(&p->items[i]);
	free(p->items);
	tg_problems_init(p);
}

static void add_v(struct tg_problems *p, enum tg_severity sev, const char *file, int line,
		  int column, const char *field, const char *rule, const char *fmt, va_list ap)
	__attribute__((format(printf, 8, 0)));

void tg_problems_add(struct tg_problems *p, enum tg_severity sev, const char *file, int line,
		     int column, const char *field, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_v(p, sev, file, line, column, field, NULL, fmt, ap);
	va_end(ap);
}

void tg_problems_add_rule(struct tg_problems *p, enum tg_severity sev, const char *file, int line,
			  int column, const char *field, const char *rule, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	add_v(p, sev, file, line, column, field, rule, fmt, ap);
	va_end(ap);
}

int tg_problems_rule_errors(const struct tg_problems *p, struct tg_buf *names)
{
	int any = 0;

	for (size_t i = 0; i < p->len; i++) {
		const struct tg_problem *pr = &p->items[i];
		int seen = 0;

		if (!pr->rule || pr->severity != TG_SEV_ERROR)
			continue;
		for (size_t j = 0; j < i && !seen; j++)
			seen = p->items[j].rule && p->items[j].severity == TG_SEV_ERROR &&
			       !strcmp(p->items[j].rule, pr->rule);
		if (!seen && names) {
			if (any)
				tg_buf_puts(names, ",");
			tg_buf_puts(names, pr->rule);
		}
		any = 1;
	}
	return any;
}

static void add_v(struct tg_problems *p, enum tg_severity sev, const char *file, int line,
		  int column, const char *field, const char *rule, const char *fmt, va_list ap)
{
	struct tg_problem *pr;
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	if (!msg)
		msg = tg_xstrdup("out of memory formatting message");

	if (p->len == p->alloc) {
		p->alloc = p->alloc ? p->alloc * 2 : 16;
		p->items = tg_xreallocarray(p->items, p->alloc, sizeof(*p->items));
	}
	pr = &p->items[p->len++];
	pr->severity = sev;
	pr->file = file ? tg_xstrdup(file) : NULL;
	pr->line = line;
	pr->column = column;
	pr->field = field && *field ? tg_xstrdup(field) : NULL;
	pr->msg = msg;
	pr->rule = rule ? tg_xstrdup(rule) : NULL;
	if (sev == TG_SEV_ERROR)
		p->errors++;
}

struct sort_ent {
	const struct tg_problem *pr;
	size_t seq; /* insertion order: qsort is not stable, reports must be */
};

static int nullable_strcmp(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int cmp_problem(const void *va, const void *vb)
{
	const struct sort_ent *a = va, *b = vb;
	int c = nullable_strcmp(a->pr->file, b->pr->file);

	if (c)
		return c;
	if (a->pr->line != b->pr->line)
		return a->pr->line < b->pr->line ? -1 : 1;
	if (a->pr->column != b->pr->column)
		return a->pr->column < b->pr->column ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

void tg_problems_sort(struct tg_problems *p)
{
	struct sort_ent *ents = NULL;
	struct tg_problem *sorted = NULL;
	size_t i;

	if (p->len < 2)
		return;
	ents = tg_xreallocarray(NULL, p->len, sizeof(*ents));
	for (i = 0; i < p->len; i++) {
		ents[i].pr = &p->items[i];
		ents[i].seq = i;
	}
	qsort(ents, p->len, sizeof(*ents), cmp_problem);
	sorted = tg_xreallocarray(NULL, p->alloc, sizeof(*sorted));
	for (i = 0; i < p->len; i++)
		sorted[i] = *ents[i].pr;
	free(p->items);
	p->items = sorted;
	free(ents);
}

static const char *severity_name(enum tg_severity sev)
{
	return sev == TG_SEV_ERROR ? "error" : "warning";
}

void tg_problems_format_text(const struct tg_problems *p, struct tg_buf *out)
{
	size_t i;

	for (i = 0; i < p->len; i++) {
		const struct tg_problem *pr = &p->items[i];

		if (pr->file) {
			tg_buf_put_printable(out, pr->file);
			if (pr->line > 0) {
				tg_buf_printf(out, ":%d", pr->line);
				if (pr->column > 0)
					tg_buf_printf(out, ":%d", pr->column);
			}
			tg_buf_puts(out, ": ");
		}
		tg_buf_printf(out, "%s: ", severity_name(pr->severity));
		if (pr->rule || pr->field) {
			tg_buf_put_printable(out, pr->rule ? pr->rule : pr->field);
			tg_buf_puts(out, ": ");
		}
		tg_buf_put_printable(out, pr->msg);
		tg_buf_puts(out, "\n");
	}
}

static cJSON *nullable_string(const char *s)
{
	return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

void tg_problems_format_json(const struct tg_problems *p, struct tg_buf *out)
{
	tg_problems_format_json_max(p, out, (size_t)-1);
}

void tg_problems_format_json_max(const struct tg_problems *p, struct tg_buf *out, size_t max)
{
	cJSON *root = NULL, *list = NULL;
	char *text = NULL;
	size_t i;

	root = cJSON_CreateObject();
	if (!root)
		goto out;
	cJSON_AddItemToObject(root, "valid", cJSON_CreateBool(p->errors == 0));
	cJSON_AddItemToObject(root, "errors", cJSON_CreateNumber((double)p->errors));
	cJSON_AddItemToObject(root, "warnings", cJSON_CreateNumber((double)(p->len - p->errors)));
	if (p->len > max)
		cJSON_AddItemToObject(root, "truncated", cJSON_CreateBool(1));
	list = cJSON_AddArrayToObject(root, "problems");
	for (i = 0; list && i < p->len && i < max; i++) {
		const struct tg_problem *pr = &p->items[i];
		cJSON *o = cJSON_CreateObject();

		if (!o)
			break;
		cJSON_AddItemToObject(o, "severity",
				      cJSON_CreateString(severity_name(pr->severity)));
		cJSON_AddItemToObject(o, "file", nullable_string(pr->file));
		cJSON_AddItemToObject(o, "line", cJSON_CreateNumber(pr->line));
		cJSON_AddItemToObject(o, "column", cJSON_CreateNumber(pr->column));
		cJSON_AddItemToObject(o, "field", nullable_string(pr->field));
		cJSON_AddItemToObject(o, "message", cJSON_CreateString(pr->msg));
		if (pr->rule)
			cJSON_AddItemToObject(o, "rule", cJSON_CreateString(pr->rule));
		cJSON_AddItemToArray(list, o);
	}
	text = cJSON_PrintUnformatted(root);
out:
	if (text)
		tg_buf_puts(out, text);
	else
		tg_buf_puts(out, "{\"valid\":false,\"errors\":1,\"warnings\":0,\"problems\":"
				 "[{\"severity\":\"error\",\"file\":null,\"line\":0,\"column\":0,"
				 "\"field\":null,\"message\":\"out of memory\"}]}");
	free(text);
	cJSON_Delete(root);
}

/* s with every occurrence of each secret replaced by "***". */
static char *redacted(const char *s, const char *const *secrets, size_t n)
{
	char *out = tg_xstrdup(s);

	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(secrets[i]);
		struct tg_buf b = TG_BUF_INIT;
		const char *p = out, *hit;

		if (!len || !strstr(out, secrets[i]))
			continue;
		tg_buf_init(&b, SIZE_MAX);
		while ((hit = strstr(p, secrets[i])) != NULL) {
			tg_buf_put(&b, p, (size_t)(hit - p));
			tg_buf_puts(&b, "***");
			p = hit + len;
		}
		tg_buf_puts(&b, p);
		tg_secret_free(out);
		out = tg_buf_detach(&b);
	}
	return out;
}

void tg_problems_redact(struct tg_problems *p, const char *const *secrets, size_t n)
{
	for (size_t i = 0; i < p->len && n; i++) {
		char **texts[] = { &p->items[i].msg, &p->items[i].field };

		for (size_t t = 0; t < TG_ARRAY_SIZE(texts); t++) {
			char *r;

			if (!*texts[t])
				continue;
			r = redacted(*texts[t], secrets, n);
			tg_secret_free(*texts[t]);
			*texts[t] = r;
		}
	}
}
