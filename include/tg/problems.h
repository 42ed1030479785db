/*
 * A list of problems found in user input (config repository or config
 * file), each with file, line, column, field and a one-line reason, so that
 * every problem can be reported at once instead of only the first.
 */
#ifndef TG_PROBLEMS_H
#define TG_PROBLEMS_H

#include <stddef.h>

struct tg_buf;

enum tg_severity { TG_SEV_ERROR, TG_SEV_WARNING };

struct tg_problem {
	enum tg_severity severity;
	char *file;  /* path relative to the repository root, or NULL */
	int line;    /* 1-based, 0 when unknown */
	int column;  /* 1-based, 0 when unknown */
	char *field; /* JSON path such as "info.id", or NULL */
	char *msg;   /* lowercase, failure first */
	char *rule;  /* the guardrail rule that found it (rules.h), or NULL */
};

struct tg_problems {
	struct tg_problem *items;
	size_t len, alloc;
	size_t errors; /* items with TG_SEV_ERROR */
};

void tg_problems_init(struct tg_problems *p);
void tg_problems_release(struct tg_problems *p);
void tg_problems_add(struct tg_problems *p, enum tg_severity sev, const char *file, int line,
		     int column, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
/* A problem found by a guardrail rule: the text form names the rule
 * where other problems name their field ("file:line:column: error: rule:
 * reason"); the JSON form carries both. */
void tg_problems_add_rule(struct tg_problems *p, enum tg_severity sev, const char *file, int line,
			  int column, const char *field, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 8, 9)));
/* Whether any error (not warning) came from a rule; fills names (when not
 * NULL) with the rules' names, comma-separated, each once. */
int tg_problems_rule_errors(const struct tg_problems *p, struct tg_buf *names);
/* Replaces every filled-in secret value in messages and fields by "***":
 * a reference check may quote a value that came from ${VAR}. */
void tg_problems_redact(struct tg_problems *p, const char *const *secrets, size_t n);
/* Sorts by file, line, column so reports are stable. */
void tg_problems_sort(struct tg_problems *p);
/* "file:line:column: error: field: msg" lines. */
void tg_problems_format_text(const struct tg_problems *p, struct tg_buf *out);
/* {"valid":bool,"errors":N,"warnings":N,"problems":[{...}]} */
void tg_problems_format_json(const struct tg_problems *p, struct tg_buf *out);
/* The same with at most max problems listed (and "truncated": true when
 * there were more); the counts stay whole. */
void tg_problems_format_json_max(const struct tg_problems *p, struct tg_buf *out, size_t max);

#endif
