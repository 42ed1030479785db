/*
 * Shared error type, error codes and allocation helpers.
 *
 * Fallible functions return 0 or a negative TG_E* code and, when given a
 * struct tg_err, leave a one-line message there that a user can act on.
 * There is no global "last error".
 */
#ifndef TG_COMMON_H
#define TG_COMMON_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <time.h>

enum {
	TG_OK = 0,
	TG_ERROR = -1,     /* generic failure */
	TG_ENOTFOUND = -2, /* object, file or ref does not exist */
	TG_EINVALID = -3,  /* input rejected: parse or validation error */
	TG_ETIMEOUT = -4,  /* peer did not answer in time */
	TG_ECONFLICT = -5, /* object exists but is not ours */
	TG_EAUTH = -6      /* credentials rejected */
};

#define TG_ERR_MSG_MAX 512

struct tg_err {
	int code;
	char msg[TG_ERR_MSG_MAX];
};

/* Sets err (when non-NULL) and returns code, so callers can write
 * `return tg_err_set(err, TG_EINVALID, "...")`. */
int tg_err_set(struct tg_err *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int tg_err_vset(struct tg_err *err, int code, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));
/* Prefixes the existing message: "context: old message". */
int tg_err_prefix(struct tg_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tg_err_clear(struct tg_err *err);

/* Allocation that aborts with a log line on out-of-memory. */
void *tg_xmalloc(size_t size);
void *tg_xcalloc(size_t nmemb, size_t size);
void *tg_xrealloc(void *ptr, size_t size);
/* realloc to nmemb*size with overflow check. */
void *tg_xreallocarray(void *ptr, size_t nmemb, size_t size);
char *tg_xstrdup(const char *s);
char *tg_xstrndup(const char *s, size_t n);
char *tg_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Frees a secret after wiping it. NULL is a no-op. */
void tg_secret_free(char *secret);

/*
 * Parses a whole string as a base-10 integer in [min, max].
 * Returns 0, or TG_EINVALID when s is empty, has trailing garbage or is
 * out of range.
 */
int tg_parse_ll(long long *out, const char *s, long long min, long long max);

/*
 * Parses a duration such as "60s", "5m", "1h", "250ms" or a bare number of
 * seconds into milliseconds.
 */
int tg_parse_duration_ms(long long *out, const char *s);

/* The value of a hexadecimal digit of either case, or -1. */
int tg_hex_digit(int c);

/* Monotonic and wall clocks in milliseconds. */
long long tg_now_ms(void);
long long tg_wall_ms(void);

/* A condition variable whose timed waits count on the monotonic clock, so a
 * step of the wall clock neither stretches nor cuts a wait. */
void tg_cond_init_monotonic(pthread_cond_t *cond);

/* The monotonic instant mono_ms (tg_now_ms) as pthread_cond_timedwait wants it. */
void tg_timespec_at(struct timespec *ts, long long mono_ms);

/* "2026-11-29T03:41:36Z", or with millis "2026-11-29T03:41:36.123Z" (UTC). */
#define TG_TIME_MAX 32
/* 9999-12-31T23:59:59.999Z, the last instant RFC 3339 can write. */
#define TG_WALL_MS_MAX 253402300799999LL
/* wall_ms (clamped to 0..TG_WALL_MS_MAX) as RFC 3339 UTC, with milliseconds
 * when millis. */
void tg_rfc3339(char out[TG_TIME_MAX], long long wall_ms, int millis);

/* strcmp that treats two NULLs as equal and one NULL as different. */
int tg_str_eq(const char *a, const char *b);

/* The next component of a relative path at or after s ("" and "." skipped,
 * ".." returned like any name), its length in *n; NULL at the end. */
const char *tg_path_next_component(const char *s, size_t *n);

/* mkdir -p: creates path and its missing parents with mode.  0, or -1
 * with errno set. */
int tg_mkdir_p(const char *path, unsigned mode);

/*
 * Takes an exclusive lock (flock) on path, created 0600 when missing and
 * never through a symbolic link, waiting at most wait_ms for another
 * process to release it.  Returns the descriptor, which the caller closes
 * to release the lock (the kernel releases it when the process dies), or
 * -1 with err set: TG_ETIMEOUT when still held at the deadline.
 */
int tg_lock_file(const char *path, long long wait_ms, struct tg_err *err);

/*
 * Reads a whole file (at most max_size bytes) into a NUL-terminated buffer.
 * *out is owned by the caller.  TG_ENOTFOUND when missing, TG_EINVALID when
 * larger than max_size.
 */
int tg_read_file(char **out, size_t *out_len, const char *path, size_t max_size,
		 struct tg_err *err);

/* Reads a secret file and strips one trailing newline. Wipe with
 * tg_secret_free. */
int tg_read_secret_file(char **out, const char *path, struct tg_err *err);

#define TG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
