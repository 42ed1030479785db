/*
 * The positioned JSON reader (see include/tg/json.h).
 *
 * JSON files get a small parser of their own instead of libyaml: libyaml
 * implements YAML 1.1, which rejects or misreads some valid JSON (tabs as
 * separators, escapes), and a JSON parser can be stricter (duplicate keys,
 * invalid UTF-8, lone surrogates) while still knowing line and column.
 *
 * Integers beyond 2^53 cannot round-trip through a double, so they are
 * kept as raw cJSON numbers that print verbatim; the YAML reader builds its
 * numbers here too, so that both formats keep the same digits.
 */
#include "tg/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/objindex.h"
#include "tg/banned.h"

cJSON *tg_json_checked(cJSON *node)
{
	if (!node) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory building json\"}\n");
		abort();
	}
	return node;
}

/* ------------------------------------------------------------------ */
/* Numbers.                                                            */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * cJSON prints doubles with 15 significant digits (17 only when a loose
 * comparison says it must), so any number with more digits than that is
 * kept as raw text to print verbatim; that covers every integer beyond
 * 2^53.  Shorter numbers are exact as doubles and printed the same.
 */
#define EXACT_DIGITS 15

static size_t mantissa_digits(const char *s, size_t len)
{
	size_t i, n = 0, lead = 1;

	for (i = 0; i < len && s[i] != 'e' && s[i] != 'E'; i++) {
		if (!is_digit(s[i]))
			continue;
		if (lead && s[i] == '0')
			continue;
		lead = 0;
		n++;
	}
	return n;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)? */
static int is_json_number(const char *s, size_t len)
{
	size_t i = 0;

	if (i < len && s[i] == '-')
		i++;
	if (i < len && s[i] == '0')
		i++;
	else if (i < len && s[i] >= '1' && s[i] <= '9')
		while (i < len && is_digit(s[i]))
			i++;
	else
		return 0;
	if (i < len && s[i] == '.') {
		if (++i >= len || !is_digit(s[i]))
			return 0;
		while (i < len && is_digit(s[i]))
			i++;
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		if (i >= len || !is_digit(s[i]))
			return 0;
		while (i < len && is_digit(s[i]))
			i++;
	}
	return i == len;
}

static cJSON *make_raw(const char *s, size_t len)
{
	char *raw = tg_xstrndup(s, len);
	cJSON *node = tg_json_checked(cJSON_CreateRaw(raw));

	free(raw);
	return node;
}

/* An integer given as [-+]?digits, normalised ("+007" is 7). */
static cJSON *make_int(const char *s, size_t len)
{
	char tmp[EXACT_DIGITS + 2];
	char *raw = NULL;
	cJSON *node;
	int neg = 0;

	if (len && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		s++;
		len--;
	}
	while (len > 1 && s[0] == '0') {
		s++;
		len--;
	}
	if (len == 1 && s[0] == '0')
		neg = 0; /* "-0" would print as -0 */
	if (len <= EXACT_DIGITS) {
		double v;

		memcpy(tmp, s, len);
		tmp[len] = '\0';
		v = strtod(tmp, NULL);
		return tg_json_checked(cJSON_CreateNumber(neg ? -v : v));
	}
	raw = tg_xmalloc(len + 2);
	raw[0] = '-';
	memcpy(raw + 1, s, len);
	raw[len + 1] = '\0';
	node = tg_json_checked(cJSON_CreateRaw(neg ? raw : raw + 1));
	free(raw);
	return node;
}

/*
 * A non-integer number.  Raw when it has more digits than a double prints
 * back (and the text is valid JSON); NULL when it is not finite and cannot
 * be written as JSON, so the caller keeps a string.
 */
static cJSON *make_float(const char *s, size_t len)
{
	char *tmp;
	double v;
	int json_ok = is_json_number(s, len);

	if (json_ok && mantissa_digits(s, len) > EXACT_DIGITS)
		return make_raw(s, len);
	tmp = tg_xstrndup(s, len);
	v = strtod(tmp, NULL);
	free(tmp);
	if (!isfinite(v))
		return json_ok ? make_raw(s, len) : NULL;
	return tg_json_checked(cJSON_CreateNumber(v));
}

cJSON *tg_json_create_number(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (s[i] == '.' || s[i] == 'e' || s[i] == 'E')
			return make_float(s, len);
	return make_int(s, len);
}

/* ------------------------------------------------------------------ */
/* Reader.                                                             */

struct jp {
	const unsigned char *s;
	size_t len, i;
	int line, column;
	const char *file;
	struct tg_problems *problems;
	struct tg_buf path;
	struct tg_pos_map *pos;
	size_t pos_left;
	int failed; /* syntax error: parsing stopped */
	int bad;    /* semantic error (duplicate key): document dropped */
};

static void jp_error(struct jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jp_error(struct jp *p, const char *fmt, ...)
{
	char msg[512], clipped[TG_POS_FIELD_MAX + 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tg_problems_add(p->problems, TG_SEV_ERROR, p->file, p->line, p->column,
			p->path.len ? tg_pos_field_clip(p->path.ptr, clipped) : NULL,
			"invalid json: %s", msg);
	p->failed = 1;
}

/* Columns count characters, not bytes, like libyaml's. */
static void jp_adv(struct jp *p)
{
	unsigned char c = p->s[p->i++];

	if (c == '\n') {
		p->line++;
		p->column = 1;
	} else if ((c & 0xC0) != 0x80) {
		p->column++;
	}
}

static void jp_ws(struct jp *p)
{
	while (p->i < p->len && (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' ||
				 p->s[p->i] == '\r'))
		jp_adv(p);
}

static int jp_peek(const struct jp *p)
{
	return p->i < p->len ? p->s[p->i] : -1;
}

static void jp_unexpected(struct jp *p)
{
	int c = jp_peek(p);

	if (c < 0)
		jp_error(p, "unexpected end of input");
	else if (c > 0x20 && c < 0x7f)
		jp_error(p, "unexpected character '%c'", c);
	else
		jp_error(p, "unexpected byte 0x%02x", c);
}

static void put_utf8(struct tg_buf *b, unsigned cp)
{
	unsigned char u[4];
	size_t n;

	if (cp < 0x80) {
		u[0] = (unsigned char)cp;
		n = 1;
	} else if (cp < 0x800) {
		u[0] = (unsigned char)(0xC0 | (cp >> 6));
		u[1] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 2;
	} else if (cp < 0x10000) {
		u[0] = (unsigned char)(0xE0 | (cp >> 12));
		u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[2] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 3;
	} else {
		u[0] = (unsigned char)(0xF0 | (cp >> 18));
		u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
		u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		u[3] = (unsigned char)(0x80 | (cp & 0x3F));
		n = 4;
	}
	tg_buf_put(b, u, n);
}

static int jp_hex4(struct jp *p, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		int c = jp_peek(p);

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else {
			jp_error(p, "invalid \\u escape");
			return -1;
		}
		jp_adv(p);
	}
	*out = v;
	return 0;
}

static int jp_escape(struct jp *p, struct tg_buf *sb)
{
	unsigned cp, lo;
	int c;

	jp_adv(p); /* backslash */
	c = jp_peek(p);
	switch (c) {
	case '"':
	case '\\':
	case '/': tg_buf_put(sb, &p->s[p->i], 1); break;
	case 'b': tg_buf_put(sb, "\b", 1); break;
	case 'f': tg_buf_put(sb, "\f", 1); break;
	case 'n': tg_buf_put(sb, "\n", 1); break;
	case 'r': tg_buf_put(sb, "\r", 1); break;
	case 't': tg_buf_put(sb, "\t", 1); break;
	case 'u':
		jp_adv(p);
		if (jp_hex4(p, &cp))
			return -1;
		if (cp >= 0xDC00 && cp <= 0xDFFF) {
			jp_error(p, "unpaired surrogate in \\u escape");
			return -1;
		}
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			if (p->len - p->i < 2 || p->s[p->i] != '\\' || p->s[p->i + 1] != 'u') {
				jp_error(p, "unpaired surrogate in \\u escape");
				return -1;
			}
			jp_adv(p);
			jp_adv(p);
			if (jp_hex4(p, &lo))
				return -1;
			if (lo < 0xDC00 || lo > 0xDFFF) {
				jp_error(p, "unpaired surrogate in \\u escape");
				return -1;
			}
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		}
		if (cp == 0) {
			/* cJSON strings are NUL-terminated: the value would be cut. */
			jp_error(p, "\\u0000 in a string is not supported");
			return -1;
		}
		put_utf8(sb, cp);
		return 0;
	default:
		if (c < 0)
			jp_error(p, "unterminated string");
		else
			jp_error(p, "invalid escape '\\%c'", c > 0x20 && c < 0x7f ? c : '?');
		return -1;
	}
	jp_adv(p);
	return 0;
}

/* At the opening quote; returns the decoded string (owned) or NULL. */
static char *jp_string(struct jp *p)
{
	struct tg_buf sb;

	tg_buf_init(&sb, 0);
	tg_buf_put(&sb, "", 0);
	jp_adv(p);
	for (;;) {
		int c = jp_peek(p);
		size_t n;

		if (c < 0) {
			jp_error(p, "unterminated string");
			goto fail;
		}
		if (c == '"') {
			jp_adv(p);
			return tg_buf_detach(&sb);
		}
		if (c < 0x20) {
			jp_error(p, "unescaped control character in string");
			goto fail;
		}
		if (c == '\\') {
			if (jp_escape(p, &sb))
				goto fail;
			continue;
		}
		n = tg_utf8_seq_len(p->s + p->i, p->len - p->i);
		if (!n) {
			jp_error(p, "invalid utf-8 in string");
			goto fail;
		}
		tg_buf_put(&sb, p->s + p->i, n);
		while (n--)
			jp_adv(p);
	}
fail:
	tg_buf_release(&sb);
	return NULL;
}

static cJSON *jp_number(struct jp *p)
{
	size_t start = p->i;
	int is_int = 1;
	const char *s;
	size_t len;
	cJSON *node;

	if (jp_peek(p) == '-')
		jp_adv(p);
	if (jp_peek(p) == '0') {
		jp_adv(p);
	} else if (jp_peek(p) >= '1' && jp_peek(p) <= '9') {
		while (jp_peek(p) >= '0' && jp_peek(p) <= '9')
			jp_adv(p);
	} else {
		jp_error(p, "invalid number");
		return NULL;
	}
	if (jp_peek(p) == '.') {
		is_int = 0;
		jp_adv(p);
		if (!(jp_peek(p) >= '0' && jp_peek(p) <= '9')) {
			jp_error(p, "invalid number");
			return NULL;
		}
		while (jp_peek(p) >= '0' && jp_peek(p) <= '9')
			jp_adv(p);
	}
	if (jp_peek(p) == 'e' || jp_peek(p) == 'E') {
		is_int = 0;
		jp_adv(p);
		if (jp_peek(p) == '+' || jp_peek(p) == '-')
			jp_adv(p);
		if (!(jp_peek(p) >= '0' && jp_peek(p) <= '9')) {
			jp_error(p, "invalid number");
			return NULL;
		}
		while (jp_peek(p) >= '0' && jp_peek(p) <= '9')
			jp_adv(p);
	}
	if (jp_peek(p) >= '0' && jp_peek(p) <= '9') {
		jp_error(p, "invalid number (leading zero)");
		return NULL;
	}
	s = (const char *)p->s + start;
	len = p->i - start;
	if (is_int)
		return make_int(s, len);
	/* Never NULL here: the text is valid JSON, 1e999 stays raw. */
	node = make_float(s, len);
	return node;
}

static int jp_literal(struct jp *p, const char *word)
{
	size_t n = strlen(word);

	if (p->len - p->i < n || memcmp(p->s + p->i, word, n)) {
		jp_unexpected(p);
		return -1;
	}
	while (n--)
		jp_adv(p);
	return 0;
}

static cJSON *jp_value(struct jp *p, int depth);

/* After a member or element: 1 when another follows (the ',' consumed),
 * 0 when close ends the container, -1 (reported) otherwise. */
static int jp_after_member(struct jp *p, char close)
{
	jp_ws(p);
	if (jp_peek(p) == ',') {
		jp_adv(p);
		jp_ws(p);
		return 1;
	}
	if (jp_peek(p) == close) {
		jp_adv(p);
		return 0;
	}
	if (jp_peek(p) < 0)
		jp_error(p, "unexpected end of input");
	else
		jp_error(p, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
	return -1;
}

static cJSON *jp_object(struct jp *p, int depth)
{
	cJSON *obj = tg_json_checked(cJSON_CreateObject());
	size_t saved = p->path.len;
	struct tg_objindex keys;

	jp_adv(p);
	jp_ws(p);
	if (jp_peek(p) == '}') {
		jp_adv(p);
		return obj;
	}
	tg_objindex_init(&keys, obj);
	for (;;) {
		char *key;
		int kline, kcol, dup;
		cJSON *v;

		if (jp_peek(p) != '"') {
			if (jp_peek(p) < 0)
				jp_error(p, "unexpected end of input");
			else
				jp_error(p, "expected a string key");
			goto fail;
		}
		kline = p->line;
		kcol = p->column;
		key = jp_string(p);
		if (!key)
			goto fail;
		tg_pos_path_push(&p->path, key, strlen(key));
		tg_pos_put(p->pos, p->path.ptr, p->path.len, kline, kcol);
		dup = tg_objindex_get(&keys, key) != NULL;
		if (dup) {
			char clipped[TG_POS_FIELD_MAX + 4];

			/* Bounded like every other message: a key may be megabytes long. */
			tg_problems_add(p->problems, TG_SEV_ERROR, p->file, kline, kcol,
					tg_pos_field_clip(p->path.ptr, clipped),
					"duplicate key '%.*s%s'", TG_POS_FIELD_MAX, key,
					strlen(key) > TG_POS_FIELD_MAX ? "..." : "");
			p->bad = 1;
		}
		jp_ws(p);
		if (jp_peek(p) != ':') {
			free(key);
			jp_error(p, "expected ':' after key");
			goto fail;
		}
		jp_adv(p);
		jp_ws(p);
		v = jp_value(p, depth + 1);
		if (!v) {
			free(key);
			goto fail;
		}
		if (dup) {
			cJSON_Delete(v);
		} else {
			cJSON_AddItemToObject(obj, key, v);
			tg_objindex_added(&keys, v);
		}
		free(key);
		tg_pos_path_truncate(&p->path, saved);
		switch (jp_after_member(p, '}')) {
		case 1: continue;
		case 0: tg_objindex_release(&keys); return obj;
		default: goto fail;
		}
	}
fail:
	tg_objindex_release(&keys);
	cJSON_Delete(obj);
	return NULL;
}

static cJSON *jp_array(struct jp *p, int depth)
{
	cJSON *arr = tg_json_checked(cJSON_CreateArray());
	size_t saved = p->path.len, index = 0;

	jp_adv(p);
	jp_ws(p);
	if (jp_peek(p) == ']') {
		jp_adv(p);
		return arr;
	}
	for (;;) {
		cJSON *v;

		tg_pos_path_push_index(&p->path, index++);
		tg_pos_put(p->pos, p->path.ptr, p->path.len, p->line, p->column);
		v = jp_value(p, depth + 1);
		if (!v)
			goto fail;
		cJSON_AddItemToArray(arr, v);
		tg_pos_path_truncate(&p->path, saved);
		switch (jp_after_member(p, ']')) {
		case 1: continue;
		case 0: return arr;
		default: goto fail;
		}
	}
fail:
	cJSON_Delete(arr);
	return NULL;
}

static cJSON *jp_value(struct jp *p, int depth)
{
	char *s;
	cJSON *node;

	if (depth > TG_JSON_MAX_DEPTH) {
		jp_error(p, "nesting deeper than %d levels", TG_JSON_MAX_DEPTH);
		return NULL;
	}
	switch (jp_peek(p)) {
	case '{': return jp_object(p, depth);
	case '[': return jp_array(p, depth);
	case '"':
		s = jp_string(p);
		if (!s)
			return NULL;
		node = tg_json_checked(cJSON_CreateString(s));
		free(s);
		return node;
	case 't': return jp_literal(p, "true") ? NULL : tg_json_checked(cJSON_CreateTrue());
	case 'f': return jp_literal(p, "false") ? NULL : tg_json_checked(cJSON_CreateFalse());
	case 'n': return jp_literal(p, "null") ? NULL : tg_json_checked(cJSON_CreateNull());
	default:
		if (jp_peek(p) == '-' || (jp_peek(p) >= '0' && jp_peek(p) <= '9'))
			return jp_number(p);
		jp_unexpected(p);
		return NULL;
	}
}

int tg_json_parse(struct tg_docs *out, const char *data, size_t len, const char *file,
		  struct tg_problems *problems)
{
	struct jp p;
	cJSON *root = NULL;
	int line, column, rc = TG_EINVALID;

	memset(&p, 0, sizeof(p));
	p.s = (const unsigned char *)data;
	p.len = len;
	p.line = p.column = 1;
	p.file = file;
	p.problems = problems;
	tg_buf_init(&p.path, 0);
	tg_buf_put(&p.path, "", 0);
	p.pos_left = tg_pos_budget(len);
	p.pos = tg_pos_map_new(&p.pos_left);

	/* Editors on Windows still write a BOM. */
	if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))
		p.i = 3;
	jp_ws(&p);
	line = p.line;
	column = p.column;
	tg_pos_put(p.pos, "", 0, line, column);
	root = jp_value(&p, 0);
	if (!root)
		goto out;
	jp_ws(&p);
	if (p.i < p.len) {
		jp_error(&p, "unexpected data after the json value");
		goto out;
	}
	if (p.bad)
		goto out;
	tg_docs_push(out, root, line, column, p.pos);
	root = NULL;
	p.pos = NULL;
	rc = 0;
out:
	cJSON_Delete(root);
	tg_pos_map_free(p.pos);
	tg_buf_release(&p.path);
	return rc;
}
