/* base64 and base64url decoding (see include/tg/base64.h). */
#include "tg/base64.h"

#include <stdlib.h>

#include "tg/common.h"
#include "tg/banned.h"

/* The value of c in the alphabet whose last two characters are c62, c63. */
static int digit(unsigned char c, char c62, char c63)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (unsigned char)c62)
		return 62;
	if (c == (unsigned char)c63)
		return 63;
	return -1;
}

struct decoder {
	unsigned char *buf;
	size_t n;
	unsigned long acc; /* bits not yet output */
	int bits;
};

static void put_digit(struct decoder *d, int v)
{
	d->acc = (d->acc << 6) | (unsigned long)v;
	d->bits += 6;
	if (d->bits >= 8) {
		d->bits -= 8;
		d->buf[d->n++] = (unsigned char)(d->acc >> d->bits);
		d->acc &= (1UL << d->bits) - 1;
	}
}

static int finish(struct decoder *d, int ok, unsigned char **out, size_t *out_len)
{
	if (!ok) {
		free(d->buf);
		return TG_EINVALID;
	}
	d->buf[d->n] = '\0';
	*out = d->buf;
	*out_len = d->n;
	return 0;
}

int tg_base64_decode(unsigned char **out, size_t *out_len, const char *in, size_t len)
{
	struct decoder d = { tg_xmalloc(len / 4 * 3 + 4), 0, 0, 0 };
	size_t pad = 0;

	*out = NULL;
	*out_len = 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		int v;

		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		v = digit(c, '+', '/');
		if (v < 0 || pad) /* nothing but padding may follow '=' */
			return finish(&d, 0, out, out_len);
		put_digit(&d, v);
	}
	/* 6 leftover bits cannot come from a valid encoding; nor can > 2 pads. */
	return finish(&d, d.bits < 6 && pad <= 2, out, out_len);
}

int tg_base64url_decode(unsigned char **out, size_t *out_len, const char *in, size_t len)
{
	struct decoder d = { NULL, 0, 0, 0 };

	*out = NULL;
	*out_len = 0;
	if (len % 4 == 1)
		return TG_EINVALID;
	d.buf = tg_xmalloc(len / 4 * 3 + 3);
	for (size_t i = 0; i < len; i++) {
		int v = digit((unsigned char)in[i], '-', '_');

		if (v < 0)
			return finish(&d, 0, out, out_len);
		put_digit(&d, v);
	}
	/* Leftover bits must be zero: one token, one encoding. */
	return finish(&d, d.acc == 0, out, out_len);
}
