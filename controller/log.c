/* JSON-lines or text logging on stderr (see include/tg/log.h). */
#include "tg/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/banned.h"

/* Set once at start-up before threads exist; read-only afterwards. */
static enum tg_log_level min_level = TG_LOG_INFO;
static enum tg_log_format out_format = TG_LOG_JSON;
static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

void tg_log_setup(enum tg_log_level level, enum tg_log_format format)
{
	min_level = level;
	out_format = format;
}

int tg_log_parse_level(enum tg_log_level *out, const char *s)
{
	size_t i;

	for (i = 0; i < TG_ARRAY_SIZE(level_names); i++) {
		if (!strcmp(s, level_names[i])) {
			*out = (enum tg_log_level)i;
			return 0;
		}
	}
	return TG_EINVALID;
}

int tg_log_parse_format(enum tg_log_format *out, const char *s)
{
	if (!strcmp(s, "json"))
		*out = TG_LOG_JSON;
	else if (!strcmp(s, "text"))
		*out = TG_LOG_TEXT;
	else
		return TG_EINVALID;
	return 0;
}

int tg_log_enabled(enum tg_log_level level)
{
	return level >= min_level;
}

static void put_timestamp(struct tg_buf *buf)
{
	char when[TG_TIME_MAX];

	tg_rfc3339(when, tg_wall_ms(), 1);
	tg_buf_puts(buf, when);
}

/* A line is capped at LINE_MAX_BYTES; past that each value is cut to
 * VALUE_CUT_BYTES, so that every record stays one valid line. */
#define LINE_MAX_BYTES ((size_t)1024 * 1024)
#define VALUE_CUT_BYTES ((size_t)16 * 1024)

static void put_value(struct tg_buf *line, const char *val, size_t cut)
{
	char *part;

	if (strlen(val) <= cut) {
		tg_buf_put_json_escaped(line, val);
		return;
	}
	part = tg_xstrndup(val, cut);
	tg_buf_put_json_escaped(line, part);
	tg_buf_puts(line, "...");
	free(part);
}

static void format_line(struct tg_buf *line, enum tg_log_level level, const char *msg,
			va_list fields, size_t cut)
{
	const char *key, *val;
	int json = out_format == TG_LOG_JSON;

	if (json) {
		tg_buf_puts(line, "{\"ts\":\"");
		put_timestamp(line);
		tg_buf_printf(line, "\",\"level\":\"%s\",\"msg\":\"", level_names[level]);
		put_value(line, msg, cut);
		tg_buf_puts(line, "\"");
	} else {
		put_timestamp(line);
		tg_buf_printf(line, " %-5s ", level_names[level]);
		put_value(line, msg, cut);
	}
	while ((key = va_arg(fields, const char *)) != NULL) {
		val = va_arg(fields, const char *);
		tg_buf_puts(line, json ? ",\"" : " ");
		tg_buf_put_json_escaped(line, key);
		tg_buf_puts(line, json ? "\":\"" : "=");
		put_value(line, val ? val : "", cut);
		if (json)
			tg_buf_puts(line, "\"");
	}
	if (cut != SIZE_MAX)
		tg_buf_puts(line, json ? ",\"truncated\":\"true\"" : " truncated=true");
	tg_buf_puts(line, json ? "}\n" : "\n");
}

static void emit(enum tg_log_level level, const char *msg, va_list fields)
{
	struct tg_buf line = TG_BUF_INIT;
	va_list again;

	va_copy(again, fields);
	tg_buf_init(&line, LINE_MAX_BYTES);
	format_line(&line, level, msg, fields, SIZE_MAX);
	if (tg_buf_overflowed(&line)) {
		tg_buf_clear(&line);
		format_line(&line, level, msg, again, VALUE_CUT_BYTES);
	}
	va_end(again);
	pthread_mutex_lock(&write_lock);
	if (!tg_buf_overflowed(&line))
		fwrite(line.ptr, 1, line.len, stderr);
	fflush(stderr);
	pthread_mutex_unlock(&write_lock);
	tg_buf_release(&line);
}

static void emit_fields(enum tg_log_level level, const char *msg, ...)
{
	va_list ap;

	va_start(ap, msg);
	emit(level, msg, ap);
	va_end(ap);
}

void tg_log_kv(enum tg_log_level level, const char *msg, ...)
{
	va_list ap;

	if (!tg_log_enabled(level))
		return;
	va_start(ap, msg);
	emit(level, msg, ap);
	va_end(ap);
}

void tg_log_msg(enum tg_log_level level, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;

	if (!tg_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit_fields(level, msg, (const char *)NULL);
}
