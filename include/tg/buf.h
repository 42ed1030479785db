/*
 * Growable byte buffer with a hard cap, for HTTP bodies, files and
 * generated text.  The content is always NUL-terminated.
 *
 * Overflow is sticky: the first append past the cap marks the buffer as
 * overflowed and it, and every later append, is dropped whole (curl's
 * dynbuf works the same way).  Code that builds text therefore checks
 * once, with tg_buf_overflowed, before it uses the result; a single
 * append's return value says the same for code that must stop at once.
 */
#ifndef TG_BUF_H
#define TG_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct tg_buf {
	char *ptr;
	size_t len;
	size_t alloc;
	size_t cap; /* 0 means TG_BUF_DEFAULT_CAP */
	int overflowed;
};

#define TG_BUF_DEFAULT_CAP ((size_t)64 * 1024 * 1024)
#define TG_BUF_INIT              \
	{                        \
		NULL, 0, 0, 0, 0 \
	}

void tg_buf_init(struct tg_buf *buf, size_t cap);
void tg_buf_release(struct tg_buf *buf);
/* Returns 0, or TG_EINVALID when the cap would be exceeded or was before
 * (buf unchanged, and marked overflowed). */
int tg_buf_put(struct tg_buf *buf, const void *data, size_t len);
/* Makes room for n bytes at once (no more than the cap): a hint, so it
 * never fails; puts that fit then copy no bytes twice. */
void tg_buf_reserve(struct tg_buf *buf, size_t n);
int tg_buf_puts(struct tg_buf *buf, const char *s);
int tg_buf_printf(struct tg_buf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int tg_buf_vprintf(struct tg_buf *buf, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));
/* Appends s as the inside of a JSON string (no quotes), escaping control
 * characters; invalid UTF-8 bytes become U+FFFD. */
int tg_buf_put_json_escaped(struct tg_buf *buf, const char *s);
/* Whether an append was dropped since init or the last clear. */
int tg_buf_overflowed(const struct tg_buf *buf);
void tg_buf_clear(struct tg_buf *buf);
/* Lets go of the first n bytes (at most len): the rest moves to the start. */
void tg_buf_drop(struct tg_buf *buf, size_t n);
/* Appends s with control characters shown as \xNN, for text a terminal
 * shows: a file name cannot forge a line or send escape sequences. */
int tg_buf_put_printable(struct tg_buf *buf, const char *s);
/* The same as a new string. Caller frees. */
char *tg_printable(const char *s);
/* Length of the valid UTF-8 sequence at s (at most avail bytes), or 0. */
size_t tg_utf8_seq_len(const unsigned char *s, size_t avail);
/* Copy of s with every invalid UTF-8 byte replaced by U+FFFD. Caller frees. */
char *tg_utf8_sanitize(const char *s);
/* Hands the string to the caller and resets buf. Never NULL. */
char *tg_buf_detach(struct tg_buf *buf);
/* Current content, "" when empty. */
const char *tg_buf_cstr(const struct tg_buf *buf);

#endif
