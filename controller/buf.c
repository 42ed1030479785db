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
	buf->overflowed = 0;
}

void tg_buf_release(struct tg_buf *buf)
{
	free(buf->ptr);
	buf->ptr = NULL;
	buf->len = buf->alloc = 0;
	buf->overflowed = 0;
}

static int grow(struct tg_buf *buf, size_t extra)
{
	size_t cap = buf->cap ? buf->cap : TG_BUF_DEFAULT_CAP;
	size_t need, alloc;

	if (buf->overflowed || __builtin_add_overflow(buf->len, extra, &need) || need > cap) {
		buf->overflowed = 1;
		return TG_EINVALID;
	}
	need += 1; /* NUL */
	if (buf->ptr && need <= buf->alloc)
		return 0;
	alloc = buf->alloc ? buf->alloc : 64;
	while (alloc < need)
		alloc = alloc > SIZE_MAX / 2 ? need : alloc * 2;
	buf->ptr = tg_xrealloc(buf->ptr, alloc);
	buf->alloc = alloc;
	return 0;
}

void tg_buf_reserve(struct tg_buf *buf, size_t n)
{
	size_t cap = buf->cap ? buf->cap : TG_BUF_DEFAULT_CAP;

	if (buf->overflowed || n < buf->alloc || n > cap)
		return;
	buf->ptr = tg_xrealloc(buf->ptr, n + 1);
	buf->alloc = n + 1;
	if (!buf->len)
		buf->ptr[0] = '\0';
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

void tg_buf_drop(struct tg_buf *buf, size_t n)
{
	if (n > buf->len)
		n = buf->len;
	if (!n)
		return;
	memmove(buf->ptr, buf->ptr + n, buf->len - n);
	buf->len -= n;
	buf->ptr[buf->len] = '\0';
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

size_t tg_utf8_seq_len(const unsigned char *s, size_t avail)
{
	size_t n, i;
	unsigned cp;

	if (!avail)
		return 0;
	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n > avail)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and code points past U+10FFFF. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/* Invalid UTF-8 bytes become U+FFFD so that the output stays valid JSON. */
int tg_buf_put_json_escaped(struct tg_buf *buf, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), n;
	int rc = 0;

	while (left && !rc) {
		switch (*p) {
		case '"':
			rc = tg_buf_puts(buf, "\\\"");
			n = 1;
			break;
		case '\\':
			rc = tg_buf_puts(buf, "\\\\");
			n = 1;
			break;
		case '\n':
			rc = tg_buf_puts(buf, "\\n");
			n = 1;
			break;
		case '\r':
			rc = tg_buf_puts(buf, "\\r");
			n = 1;
			break;
		case '\t':
			rc = tg_buf_puts(buf, "\\t");
			n = 1;
			break;
		default:
			n = tg_utf8_seq_len(p, left);
			if (*p < 0x20 || *p == 0x7f)
				rc = tg_buf_printf(buf, "\\u%04x", *p);
			else if (n)
				rc = tg_buf_put(buf, p, n);
			else
				rc = tg_buf_puts(buf, "\xef\xbf\xbd");
			if (!n)
				n = 1;
		}
		p += n;
		left -= n;
	}
	return rc;
}

int tg_buf_put_printable(struct tg_buf *buf, const char *s)
{
	const unsigned char *p;
	int rc = 0;

	for (p = (const unsigned char *)s; *p && !rc; p++)
		rc = *p < 0x20 || *p == 0x7f ? tg_buf_printf(buf, "\\x%02x", *p)
					     : tg_buf_put(buf, p, 1);
	return rc;
}

char *tg_printable(const char *s)
{
	struct tg_buf b = TG_BUF_INIT;

	tg_buf_init(&b, SIZE_MAX);
	tg_buf_put_printable(&b, s);
	return tg_buf_detach(&b);
}

char *tg_utf8_sanitize(const char *s)
{
	struct tg_buf out = TG_BUF_INIT;
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s), n;

	tg_buf_init(&out, SIZE_MAX);
	while (left) {
		n = tg_utf8_seq_len(p, left);
		if (n) {
			tg_buf_put(&out, p, n);
		} else {
			tg_buf_puts(&out, "\xef\xbf\xbd");
			n = 1;
		}
		p += n;
		left -= n;
	}
	return tg_buf_detach(&out);
}

int tg_buf_overflowed(const struct tg_buf *buf)
{
	return buf->overflowed;
}

void tg_buf_clear(struct tg_buf *buf)
{
	buf->len = 0;
	buf->overflowed = 0;
	if (buf->ptr)
		buf->ptr[0] = '\0';
}

char *tg_buf_detach(struct tg_buf *buf)
{
	char *s = buf->ptr ? buf->ptr : tg_xstrdup("");

	buf->ptr = NULL;
	buf->len = buf->alloc = 0;
	buf->overflowed = 0;
	return s;
}

const char *tg_buf_cstr(const struct tg_buf *buf)
{
	return buf->ptr ? buf->ptr : "";
}
