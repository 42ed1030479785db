/* Error helpers, checked allocation, number parsing and file reading. */
#include "tg/common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "tg/log.h"
#include "tg/banned.h"

int tg_err_vset(struct tg_err *err, int code, const char *fmt, va_list ap)
{
	if (err) {
		err->code = code;
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	}
	return code;
}

int tg_err_set(struct tg_err *err, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tg_err_vset(err, code, fmt, ap);
	va_end(ap);
	return code;
}

int tg_err_prefix(struct tg_err *err, const char *fmt, ...)
{
	char joined[2 * TG_ERR_MSG_MAX + 2];
	size_t len;
	va_list ap;

	if (!err)
		return TG_ERROR;
	va_start(ap, fmt);
	len = (size_t)vsnprintf(joined, TG_ERR_MSG_MAX, fmt, ap);
	va_end(ap);
	if (len >= TG_ERR_MSG_MAX)
		len = TG_ERR_MSG_MAX - 1;
	memcpy(joined + len, ": ", 2);
	memcpy(joined + len + 2, err->msg, TG_ERR_MSG_MAX);
	joined[sizeof(joined) - 1] = '\0';
	/* Too long messages are cut, keeping the start. */
	len = strnlen(joined, TG_ERR_MSG_MAX - 1);
	memcpy(err->msg, joined, len);
	err->msg[len] = '\0';
	return err->code;
}

void tg_err_clear(struct tg_err *err)
{
	if (err) {
		err->code = 0;
		err->msg[0] = '\0';
	}
}

static void out_of_memory(size_t size)
{
	/* Avoid allocating while reporting the failure. */
	fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory allocating %zu bytes\"}\n",
		size);
	abort();
}

void *tg_xmalloc(size_t size)
{
	void *p = malloc(size ? size : 1);

	if (!p)
		out_of_memory(size);
	return p;
}

void *tg_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		out_of_memory(nmemb * size);
	return p;
}

void *tg_xrealloc(void *ptr, size_t size)
{
	void *p = realloc(ptr, size ? size : 1);

	if (!p)
		out_of_memory(size);
	return p;
}

void *tg_xreallocarray(void *ptr, size_t nmemb, size_t size)
{
	size_t total;

	if (__builtin_mul_overflow(nmemb, size, &total))
		out_of_memory(SIZE_MAX);
	return tg_xrealloc(ptr, total);
}

char *tg_xstrdup(const char *s)
{
	return tg_xstrndup(s, strlen(s));
}

char *tg_xstrndup(const char *s, size_t n)
{
	char *p;
	size_t len = strnlen(s, n);

	p = tg_xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

char *tg_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		out_of_memory(0);
	va_end(ap);
	return s;
}

void tg_secret_free(char *secret)
{
	if (!secret)
		return;
	OPENSSL_cleanse(secret, strlen(secret));
	free(secret);
}

int tg_parse_ll(long long *out, const char *s, long long min, long long max)
{
	char *end = NULL;
	long long v;

	if (!s || !*s)
		return TG_EINVALID;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return TG_EINVALID;
	*out = v;
	return 0;
}

int tg_parse_duration_ms(long long *out, const char *s)
{
	static const struct {
		const char *suffix;
		long long ms;
	} units[] = { { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "h", 3600000 } };
	char num[32];
	size_t len, i;
	long long v;

	if (!s)
		return TG_EINVALID;
	len = strlen(s);
	for (i = 0; i < TG_ARRAY_SIZE(units); i++) {
		size_t sl = strlen(units[i].suffix);

		if (len > sl && len - sl < sizeof(num) && !strcmp(s + len - sl, units[i].suffix)) {
			memcpy(num, s, len - sl);
			num[len - sl] = '\0';
			if (tg_parse_ll(&v, num, 0, LLONG_MAX / units[i].ms))
				return TG_EINVALID;
			*out = v * units[i].ms;
			return 0;
		}
	}
	if (tg_parse_ll(&v, s, 0, LLONG_MAX / 1000))
		return TG_EINVALID;
	*out = v * 1000;
	return 0;
}

int tg_hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

long long tg_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tg_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &ca);
	pthread_condattr_destroy(&ca);
}

void tg_timespec_at(struct timespec *ts, long long mono_ms)
{
	ts->tv_sec = (time_t)(mono_ms / 1000);
	ts->tv_nsec = (long)(mono_ms % 1000) * 1000000L;
}

long long tg_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tg_rfc3339(char out[TG_TIME_MAX], long long wall_ms, int millis)
{
	time_t t;
	struct tm tm;
	char sec[24] = "1970-01-01T00:00:00";

	/* Times come from files too (history, audit replay): outside the years
	 * RFC 3339 can write they are clamped, never formatted from garbage. */
	if (wall_ms < 0)
		wall_ms = 0;
	if (wall_ms > TG_WALL_MS_MAX)
		wall_ms = TG_WALL_MS_MAX;
	t = (time_t)(wall_ms / 1000);
	if (gmtime_r(&t, &tm))
		strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	if (millis)
		snprintf(out, TG_TIME_MAX, "%s.%03dZ", sec, (int)(wall_ms % 1000));
	else
		snprintf(out, TG_TIME_MAX, "%sZ", sec);
}

int tg_str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

const char *tg_path_next_component(const char *s, size_t *n)
{
	for (;;) {
		while (*s == '/')
			s++;
		if (!*s)
			return NULL;
		*n = strcspn(s, "/");
		if (*n != 1 || s[0] != '.')
			return s;
		s++;
	}
}

int tg_mkdir_p(const char *path, unsigned mode)
{
	char *p = tg_xstrdup(path), *s;
	int rc = 0;

	/* A leading '/' is the root, not a directory to make. */
	for (s = p; *s && !rc; s++) {
		if (*s != '/' || s == p)
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			rc = -1;
		*s = '/';
	}
	if (!rc && mkdir(p, mode) < 0 && errno != EEXIST)
		rc = -1;
	free(p);
	return rc;
}

int tg_lock_file(const char *path, long long wait_ms, struct tg_err *err)
{
	long long deadline = tg_now_ms() + wait_ms;
	int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0) {
		tg_err_set(err, TG_ERROR, "cannot open lock '%s': %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		struct timespec nap = { 0, 50 * 1000000L };

		if (errno != EWOULDBLOCK && errno != EINTR) {
			tg_err_set(err, TG_ERROR, "cannot lock '%s': %s", path, strerror(errno));
			close(fd);
			return -1;
		}
		if (tg_now_ms() >= deadline) {
			tg_err_set(
				err, TG_ETIMEOUT,
				"another tyk-gitops pass of this sync holds '%s' (waited %lld ms)",
				path, wait_ms);
			close(fd);
			return -1;
		}
		nanosleep(&nap, NULL);
	}
	return fd;
}

int tg_read_file(char **out, size_t *out_len, const char *path, size_t max_size, struct tg_err *err)
{
	FILE *f = NULL;
	char *data = NULL;
	struct stat st;
	size_t n;
	int fd = -1, rc = TG_ERROR;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer (a config
	 * path pointing at one would hang SIGHUP handling). */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		rc = errno == ENOENT ? TG_ENOTFOUND : TG_ERROR;
		tg_err_set(err, rc, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		rc = tg_err_set(err, TG_EINVALID, "cannot read '%s': not a regular file", path);
		goto out;
	}
	f = fdopen(fd, "rb");
	if (!f) {
		rc = tg_err_set(err, TG_ERROR, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	fd = -1;
	if ((size_t)st.st_size > max_size) {
		rc = tg_err_set(err, TG_EINVALID,
				"cannot read '%s': %lld bytes is over the %zu byte limit", path,
				(long long)st.st_size, max_size);
		goto out;
	}
	data = tg_xmalloc((size_t)st.st_size + 1);
	n = fread(data, 1, (size_t)st.st_size, f);
	if (ferror(f)) {
		rc = tg_err_set(err, TG_ERROR, "cannot read '%s': %s", path, strerror(errno));
		goto out;
	}
	data[n] = '\0';
	*out = data;
	if (out_len)
		*out_len = n;
	data = NULL;
	rc = 0;
out:
	free(data);
	if (f)
		fclose(f);
	if (fd >= 0)
		close(fd);
	return rc;
}

int tg_read_secret_file(char **out, const char *path, struct tg_err *err)
{
	char *data = NULL;
	size_t len = 0;
	int rc;

	rc = tg_read_file(&data, &len, path, 64 * 1024, err);
	if (rc)
		return rc;
	while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
		data[--len] = '\0';
	*out = data;
	return 0;
}
