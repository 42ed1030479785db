/* Splitting list replies into per-object byte ranges (see include/tg/listscan.h). */
#include "tg/listscan.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/banned.h"

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *d, size_t len, size_t i)
{
	while (i < len && is_ws(d[i]))
		i++;
	return i;
}

/* Bytes that matter inside an object, and inside a string. */
enum { C_QUOTE = 1, C_OPEN_OBJ, C_OPEN_ARR, C_CLOSE_OBJ, C_CLOSE_ARR };
static const unsigned char in_object[256] = {
	['"'] = C_QUOTE,     ['{'] = C_OPEN_OBJ,  ['['] = C_OPEN_ARR,
	['}'] = C_CLOSE_OBJ, [']'] = C_CLOSE_ARR,
};

/* i is just past an opening quote; returns the index just past the closing
 * one, or 0 when the string never closes.  Escapes are skipped, not
 * decoded: only the closing quote matters here, found with memchr (the
 * bulk of a list's bytes are in strings). */
static size_t skip_string(const char *d, size_t len, size_t i)
{
	while (i < len) {
		const char *q = memchr(d + i, '"', len - i);
		size_t bs = 0;

		if (!q)
			return 0;
		/* The quote closes the string unless an odd run of backslashes
		 * precedes it. */
		for (size_t k = (size_t)(q - d); k > i && d[k - 1] == '\\'; k--)
			bs++;
		i = (size_t)(q - d) + 1;
		if (bs % 2 == 0)
			return i;
	}
	return 0;
}

/* d[i] == '{'.  Returns the index just past the matching '}', or 0 when the
 * object does not close, its brackets do not match, or it nests deeper
 * than TG_LISTSCAN_MAX_DEPTH. */
static size_t skip_object(const char *d, size_t len, size_t i)
{
	/* One bit per open level: 1 for '{', 0 for '['. */
	unsigned char stack[(TG_LISTSCAN_MAX_DEPTH + 7) / 8] = { 0 };
	size_t depth = 0;

	while (i < len) {
		unsigned char k = in_object[(unsigned char)d[i]];

		if (!k) {
			i++;
			continue;
		}
		if (k == C_QUOTE) {
			i = skip_string(d, len, i + 1);
			if (!i)
				return 0;
			continue;
		}
		if (k == C_OPEN_OBJ || k == C_OPEN_ARR) {
			if (depth >= TG_LISTSCAN_MAX_DEPTH)
				return 0;
			if (k == C_OPEN_OBJ)
				stack[depth / 8] |= (unsigned char)(1u << (depth % 8));
			else
				stack[depth / 8] &= (unsigned char)~(1u << (depth % 8));
			depth++;
		} else {
			int open_brace;

			if (!depth)
				return 0;
			depth--;
			open_brace = (stack[depth / 8] >> (depth % 8)) & 1;
			if (open_brace != (k == C_CLOSE_OBJ))
				return 0;
			if (!depth)
				return i + 1;
		}
		i++;
	}
	return 0;
}

static void push(struct tg_listscan *ls, size_t off, size_t len)
{
	if (ls->len == ls->alloc) {
		ls->alloc = ls->alloc ? ls->alloc * 2 : 64;
		ls->items = tg_xreallocarray(ls->items, ls->alloc, sizeof(*ls->items));
	}
	ls->items[ls->len].off = off;
	ls->items[ls->len].len = len;
	ls->len++;
}

void tg_listscan_feed_init(struct tg_listscan_feed *f)
{
	memset(f, 0, sizeof(*f));
}

size_t tg_listscan_feed_done(const struct tg_listscan_feed *f)
{
	return f->state == TG_LISTSCAN_BAD ? 0 : f->pos;
}

void tg_listscan_feed_shift(struct tg_listscan_feed *f, size_t n)
{
	assert(n <= tg_listscan_feed_done(f));
	f->pos -= n;
	if (f->retry_at)
		f->retry_at -= n;
}

static int feed_bad(struct tg_listscan_feed *f)
{
	f->state = TG_LISTSCAN_BAD;
	return TG_EINVALID;
}

/* d[i] == '{' opens an element: 1 with its range once it is complete, 0
 * while it may still be arriving. */
static int take_element(struct tg_listscan_feed *f, const char *d, size_t avail, size_t i,
			int final, struct tg_listscan_range *out)
{
	size_t end;

	/* An element still arriving is scanned again only once the bytes
	 * after its start have doubled: a huge element costs linear time. */
	if (!final && avail < f->retry_at) {
		f->pos = i;
		return 0;
	}
	end = skip_object(d, avail, i);
	if (!end) {
		if (final)
			return feed_bad(f);
		f->pos = i;
		f->retry_at = avail + (avail - i);
		return 0;
	}
	out->off = i;
	out->len = end - i;
	f->pos = end;
	f->retry_at = 0;
	f->state = TG_LISTSCAN_AFTER;
	return 1;
}

int tg_listscan_next(struct tg_listscan_feed *f, const char *d, size_t avail, int final,
		     struct tg_listscan_range *out)
{
	for (;;) {
		size_t i;

		if (f->state == TG_LISTSCAN_BAD)
			return TG_EINVALID;
		i = skip_ws(d, avail, f->pos);
		f->pos = i;
		if (i == avail)
			return final && f->state != TG_LISTSCAN_TAIL ? feed_bad(f) : 0;
		switch (f->state) {
		case TG_LISTSCAN_START:
			if (d[i] == '[') {
				f->state = TG_LISTSCAN_FIRST;
				f->pos = i + 1;
				continue;
			}
			/* The literal null an empty gateway may send. */
			if (avail - i < 4 && !final && !memcmp(d + i, "null", avail - i))
				return 0;
			if (avail - i < 4 || memcmp(d + i, "null", 4))
				return feed_bad(f);
			f->state = TG_LISTSCAN_TAIL;
			f->pos = i + 4;
			continue;
		case TG_LISTSCAN_FIRST:
		case TG_LISTSCAN_NEXT:
			if (f->state == TG_LISTSCAN_FIRST && d[i] == ']') {
				f->state = TG_LISTSCAN_TAIL;
				f->pos = i + 1;
				continue;
			}
			if (d[i] != '{')
				return feed_bad(f);
			return take_element(f, d, avail, i, final, out);
		case TG_LISTSCAN_AFTER:
			if (d[i] != ',' && d[i] != ']')
				return feed_bad(f);
			f->state = d[i] == ',' ? TG_LISTSCAN_NEXT : TG_LISTSCAN_TAIL;
			f->pos = i + 1;
			continue;
		default: /* TG_LISTSCAN_TAIL: only whitespace may follow */ return feed_bad(f);
		}
	}
}

int tg_listscan_split(struct tg_listscan *out, const char *data, size_t len)
{
	struct tg_listscan_feed f;
	struct tg_listscan_range r;
	int rc;

	out->len = 0;
	tg_listscan_feed_init(&f);
	while ((rc = tg_listscan_next(&f, data, len, 1, &r)) == 1)
		push(out, r.off, r.len);
	return rc;
}

void tg_listscan_release(struct tg_listscan *ls)
{
	free(ls->items);
	memset(ls, 0, sizeof(*ls));
}
