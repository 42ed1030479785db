/* Growable, capped byte buffer (see include/tg/buf.h). */
#include "tg/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/banned.h"

void tg_buf_init(struct tg_buf *buf, size_t cap)
{
	buf->ptr = NULL;
	buf->len = 0;
	buf->alloc = 0;
	buf->cap = cap;
}

void tg_buf_release(struct tg_buf *buf)
{
	free(buf->ptr);
	buf->ptr = NULL;
	buf->len = buf->alloc = 0;
}

static int grow(struct tg_buf *buf, size_t extra)
{
	size_t cap = buf->cap ? buf->cap : TG_BUF_DEFAULT_CAP;
	size_t need, alloc;

	if (__builtin_add_overflow(buf->len, extra, &need) || need > cap)
		return TG_EINVALID;
	need += 1; /* NUL */
	if (need <= buf->alloc)
		return 0;
	alloc = buf->alloc ? buf->alloc : 64;
	while (alloc < need)
		alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
	buf->ptr = tg_xrealloc(buf->ptr, alloc);
	buf->alloc = alloc;
	return 0;
}

int tg_buf_put(struct tg_buf *buf, const void *data, size_t len)
{
	if (grow(buf, len))
		return TG_EINVALID;
	if (len)
		memcpy(buf->ptr + buf->len, data, len);
	buf->len += len;
	buf->ptr[buf->len] = '\0';
	return 0;
}

int tg_buf_puts(struct tg_buf *buf, const char *s)
{
	return tg_buf_put(buf, s, strlen(s));
}

int tg_buf_vprintf(struct tg_buf *buf, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || grow(buf, (size_t)n))
		return TG_EINVALID;
	vsnprintf(buf->ptr + buf->len, (size_t)n + 1, fmt, ap);
	buf->len += (size_t)n;
	return 0;
}

int tg_buf_printf(struct tg_buf *buf, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = tg_buf_vprintf(buf, fmt, ap);
	va_end(ap);
	return rc;
}

int tg_buf_put_json_escaped(struct tg_buf *buf, const char *s)
{
	const unsigned char *p;
	int rc = 0;

	for (p = (const unsigned char *)s; *p && !rc; p++) {
		switch (*p) {
		case '"': rc = tg_buf_puts(buf, "\\\""); break;
		case '\\': rc = tg_buf_puts(buf, "\\\\"); break;
		case '\n': rc = tg_buf_puts(buf, "\\n"); break;
		case '\r': rc = tg_buf_puts(buf, "\\r"); break;
		case '\t': rc = tg_buf_puts(buf, "\\t"); break;
		default:
			if (*p < 0x20)
				rc = tg_buf_printf(buf, "\\u%04x", *p);
			else
				rc = tg_buf_put(buf, p, 1);
		}
	}
	return rc;
}

void tg_buf_clear(struct tg_buf *buf)
{
	buf->len = 0;
	if (buf->ptr)
		buf->ptr[0] = '\0';
}

char *tg_buf_detach(struct tg_buf *buf)
{
	char *s = buf->ptr ? buf->ptr : tg_xstrdup("");

	buf->ptr = NULL;
	buf->len = buf->alloc = 0;
	return s;
}

const char *tg_buf_cstr(const struct tg_buf *buf)
{
	return buf->ptr ? buf->ptr : "";
}
