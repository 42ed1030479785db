/*
 * Structured logging: one JSON object per line on stderr (or text).
 * Each level has a macro that skips formatting below the level.
 * Context fields are given as a NULL-terminated list of key, value pairs
 * through tg_log_kv(); values are escaped.
 */
#ifndef TG_LOG_H
#define TG_LOG_H

enum tg_log_level { TG_LOG_DEBUG, TG_LOG_INFO, TG_LOG_WARN, TG_LOG_ERROR };
enum tg_log_format { TG_LOG_JSON, TG_LOG_TEXT };

void tg_log_setup(enum tg_log_level level, enum tg_log_format format);
int tg_log_parse_level(enum tg_log_level *out, const char *s);
int tg_log_parse_format(enum tg_log_format *out, const char *s);
int tg_log_enabled(enum tg_log_level level);

/*
 * Logs msg with extra string fields: pairs of (key, value) ending in NULL.
 * Example: tg_log_kv(TG_LOG_INFO, "synced", "sync", name, "commit", sha, NULL);
 */
void tg_log_kv(enum tg_log_level level, const char *msg, ...) __attribute__((sentinel));
/* printf-style message with no extra fields. */
void tg_log_msg(enum tg_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define tg_log_debug(...)                                      \
	do {                                                   \
		if (tg_log_enabled(TG_LOG_DEBUG))              \
			tg_log_msg(TG_LOG_DEBUG, __VA_ARGS__); \
	} while (0)
#define tg_log_info(...)                                      \
	do {                                                  \
		if (tg_log_enabled(TG_LOG_INFO))              \
			tg_log_msg(TG_LOG_INFO, __VA_ARGS__); \
	} while (0)
#define tg_log_warn(...)                                      \
	do {                                                  \
		if (tg_log_enabled(TG_LOG_WARN))              \
			tg_log_msg(TG_LOG_WARN, __VA_ARGS__); \
	} while (0)
#define tg_log_error(...)                                      \
	do {                                                   \
		if (tg_log_enabled(TG_LOG_ERROR))              \
			tg_log_msg(TG_LOG_ERROR, __VA_ARGS__); \
	} while (0)

#endif
