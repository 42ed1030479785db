/* Splitting list replies into per-object byte ranges (see include/tg/listscan.h). */
#include "tg/listscan.h"

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

int tg_listscan_split(struct tg_listscan *out, const char *data, size_t len)
{
	size_t i;

	out->len = 0;
	i = skip_ws(data, len, 0);
	if (len - i >= 4 && !memcmp(data + i, "null", 4))
		return skip_ws(data, len, i + 4) == len ? 0 : TG_EINVALID;
	if (i >= len || data[i] != '[')
		return TG_EINVALID;
	i = skip_ws(data, len, i + 1);
	if (i < len && data[i] == ']')
		return skip_ws(data, len, i + 1) == len ? 0 : TG_EINVALID;
	for (;;) {
		size_t end;

		if (i >= len || data[i] != '{')
			return TG_EINVALID;
		end = skip_object(data, len, i);
		if (!end)
			return TG_EINVALID;
		push(out, i, end - i);
		i = skip_ws(data, len, end);
		if (i < len && data[i] == ',') {
			i = skip_ws(data, len, i + 1);
			continue;
		}
		if (i < len && data[i] == ']')
			return skip_ws(data, len, i + 1) == len ? 0 : TG_EINVALID;
		return TG_EINVALID;
	}
}

void tg_listscan_release(struct tg_listscan *ls)
{
	free(ls->items);
	memset(ls, 0, sizeof(*ls));
}
