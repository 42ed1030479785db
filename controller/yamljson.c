/*
 * YAML and JSON documents to cJSON, remembering where every member came
 * from (see include/tg/yamljson.h).
 *
 * YAML goes through libyaml's event API rather than its document API: the
 * document API forgets whether a scalar was quoted or explicitly tagged,
 * and both matter ("0755" quoted must stay a string).  Scalars follow the
 * YAML 1.2 core schema with one deliberate exception: plain yes/no/on/off
 * (booleans in YAML 1.1) stay strings, because Tyk fields never expect a
 * boolean spelled that way and silently turning a header value "on" into
 * true would corrupt the definition.  .inf and .nan also stay strings:
 * JSON cannot represent them.
 *
 * JSON files get a small parser of their own instead of libyaml: libyaml
 * implements YAML 1.1, which rejects or misreads some valid JSON (tabs as
 * separators, escapes), and a JSON parser can be stricter (duplicate keys,
 * invalid UTF-8, lone surrogates) while still knowing line and column.
 *
 * Integers beyond 2^53 cannot round-trip through a double, so they are
 * kept as raw cJSON numbers that print verbatim.
 *
 * Positions: a member's position is the position of its key; a sequence
 * item's and the root's is the position of the node itself.  Nodes copied
 * through an alias have no positions of their own (lookups for them fail and
 * callers fall back to an ancestor).  Paths join keys and indexes with '.',
 * unescaped, so a key containing '.' may shadow a nested path; the first
 * recorded position wins.
 *
 * Limits: nesting deeper than TG_YAML_MAX_DEPTH is rejected, so that the
 * stack stays bounded.  Memory stays proportional to the input:
 *
 * - Aliases and merge keys are the only way to build more than the text
 *   spells out, so they draw on a budget relative to the input, per file and
 *   per pass (a "billion laughs" spread over sixteen documents or a hundred
 *   files is stopped like one in a single document).  What they copy is
 *   counted as what malloc really hands out for cJSON nodes and strings, not
 *   as text, because a node costs some 80 bytes however short its text.
 * - Anchors are not copied when they are defined: an anchor points at the
 *   node in the tree, and nodes that leave the tree before the document ends
 *   (values of duplicate keys, merge sources) are parked, not freed, so that
 *   the pointer stays good.  A merge copies only the keys it takes.  Nested
 *   anchors therefore cost nothing, where a copy per anchor would multiply a
 *   deep document by its depth.
 * - Positions are recorded within a budget relative to the input too.
 */
#include "tg/yamljson.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/banned.h"

/*
 * What malloc takes for an n-byte block: glibc on 64-bit systems adds an
 * 8-byte header, rounds to 16 and hands out at least 32.  Close enough for
 * other allocators; the budget needs the right order, not the last byte.
 */
static size_t mem_of(size_t n)
{
	size_t m = (n + 8 + 15) & ~(size_t)15;

	return m < 32 ? 32 : m;
}

static size_t str_mem(const char *s)
{
	return s ? mem_of(strlen(s) + 1) : 0;
}

static cJSON *chk(cJSON *node)
{
	if (!node) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory building json\"}\n");
		abort();
	}
	return node;
}

/* ------------------------------------------------------------------ */
/* Position map: open-addressing hash table of path -> line/column.    */

struct pos_ent {
	size_t off; /* into arena; SIZE_MAX when the slot is empty */
	uint32_t hash;
	int line, column;
};

struct tg_pos_map {
	char *arena;
	size_t arena_len, arena_alloc;
	struct pos_ent *ents;
	size_t n, cap;
	size_t *left; /* bytes the file may still spend on positions */
};

static uint32_t hash_path(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

/* left: the file's position budget, shared by its documents. */
static struct tg_pos_map *pos_new(size_t *left)
{
	struct tg_pos_map *m = tg_xcalloc(1, sizeof(struct tg_pos_map));

	m->left = left;
	return m;
}

static size_t pos_budget(size_t input_len)
{
	size_t n;

	if (__builtin_mul_overflow(input_len, (size_t)TG_YAML_POS_FACTOR, &n))
		return SIZE_MAX;
	return n > TG_YAML_POS_FLOOR ? n : TG_YAML_POS_FLOOR;
}

static void pos_free(struct tg_pos_map *m)
{
	if (!m)
		return;
	free(m->arena);
	free(m->ents);
	free(m);
}

static struct pos_ent *pos_slot(const struct tg_pos_map *m, const char *path, size_t len,
				uint32_t h)
{
	size_t i = h & (m->cap - 1);

	while (m->ents[i].off != SIZE_MAX) {
		const char *k = m->arena + m->ents[i].off;

		if (m->ents[i].hash == h && !memcmp(k, path, len) && k[len] == '\0')
			break;
		i = (i + 1) & (m->cap - 1);
	}
	return &m->ents[i];
}

static void pos_grow(struct tg_pos_map *m)
{
	struct pos_ent *old = m->ents;
	size_t old_cap = m->cap, i;

	m->cap = m->cap ? m->cap * 2 : 64;
	m->ents = tg_xreallocarray(NULL, m->cap, sizeof(*m->ents));
	for (i = 0; i < m->cap; i++)
		m->ents[i].off = SIZE_MAX;
	for (i = 0; i < old_cap; i++) {
		const char *k;

		if (old[i].off == SIZE_MAX)
			continue;
		k = m->arena + old[i].off;
		*pos_slot(m, k, strlen(k), old[i].hash) = old[i];
	}
	free(old);
}

static void pos_put(struct tg_pos_map *m, const char *path, size_t len, int line, int column)
{
	struct pos_ent *e;
	uint32_t h;
	size_t need, cost;

	if (!m)
		return;
	/* The path, and the table at half load and the arena at worst half
	 * used; over the budget the position is simply not recorded. */
	cost = 2 * (len + 1 + sizeof(*e));
	if (*m->left < cost)
		return;
	h = hash_path(path, len);
	if ((m->n + 1) * 2 > m->cap)
		pos_grow(m);
	e = pos_slot(m, path, len, h);
	if (e->off != SIZE_MAX)
		return; /* first position wins */
	if (__builtin_add_overflow(m->arena_len, len + 1, &need))
		abort();
	if (need > m->arena_alloc) {
		m->arena_alloc = m->arena_alloc ? m->arena_alloc : 256;
		while (m->arena_alloc < need)
			m->arena_alloc *= 2;
		m->arena = tg_xrealloc(m->arena, m->arena_alloc);
	}
	memcpy(m->arena + m->arena_len, path, len);
	m->arena[m->arena_len + len] = '\0';
	e->off = m->arena_len;
	e->hash = h;
	e->line = line;
	e->column = column;
	m->arena_len = need;
	m->n++;
	*m->left -= cost;
}

int tg_pos_lookup(const struct tg_pos_map *pos, const char *path, int *line, int *column)
{
	const struct pos_ent *e;
	size_t len;

	if (!pos || !pos->cap || !path)
		return TG_ENOTFOUND;
	len = strlen(path);
	e = pos_slot(pos, path, len, hash_path(path, len));
	if (e->off == SIZE_MAX)
		return TG_ENOTFOUND;
	*line = e->line;
	*column = e->column;
	return 0;
}

static void docs_push(struct tg_docs *docs, cJSON *json, int line, int column,
		      struct tg_pos_map *pos)
{
	struct tg_doc *d;

	if (docs->len == docs->alloc) {
		docs->alloc = docs->alloc ? docs->alloc * 2 : 4;
		docs->items = tg_xreallocarray(docs->items, docs->alloc, sizeof(*docs->items));
	}
	d = &docs->items[docs->len++];
	d->json = json;
	d->line = line;
	d->column = column;
	d->pos = pos;
}

void tg_docs_release(struct tg_docs *docs)
{
	size_t i;

	if (!docs)
		return;
	for (i = 0; i < docs->len; i++) {
		cJSON_Delete(docs->items[i].json);
		pos_free(docs->items[i].pos);
	}
	free(docs->items);
	docs->items = NULL;
	docs->len = docs->alloc = 0;
}

/* Paths: "a.b.0.c". */
static void path_push(struct tg_buf *path, const char *seg, size_t len)
{
	if (path->len)
		tg_buf_put(path, ".", 1);
	tg_buf_put(path, seg, len);
}

static void path_push_index(struct tg_buf *path, size_t index)
{
	tg_buf_printf(path, "%s%zu", path->len ? "." : "", index);
}

static void path_truncate(struct tg_buf *path, size_t len)
{
	path->len = len;
	if (path->ptr)
		path->ptr[len] = '\0';
}

/* ------------------------------------------------------------------ */
/* Scalars.                                                            */

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* [-+]?[0-9]+ */
static int is_int_text(const char *s, size_t len)
{
	size_t i = 0;

	if (len && (s[0] == '-' || s[0] == '+'))
		i++;
	if (i == len)
		return 0;
	for (; i < len; i++)
		if (!is_digit(s[i]))
			return 0;
	return 1;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static int is_float_text(const char *s, size_t len)
{
	size_t i = 0, digits = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		i++;
	while (i < len && is_digit(s[i])) {
		i++;
		digits++;
	}
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && is_digit(s[i])) {
			i++;
			digits++;
		}
	}
	if (!digits)
		return 0;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		size_t exp_digits = 0;

		i++;
		if (i < len && (s[i] == '-' || s[i] == '+'))
			i++;
		while (i < len && is_digit(s[i])) {
			i++;
			exp_digits++;
		}
		if (!exp_digits)
			return 0;
	}
	return i == len;
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
	cJSON *node = chk(cJSON_CreateRaw(raw));

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
		return chk(cJSON_CreateNumber(neg ? -v : v));
	}
	raw = tg_xmalloc(len + 2);
	raw[0] = '-';
	memcpy(raw + 1, s, len);
	raw[len + 1] = '\0';
	node = chk(cJSON_CreateRaw(neg ? raw : raw + 1));
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
	return chk(cJSON_CreateNumber(v));
}

static int text_is(const char *s, size_t len, const char *const *words)
{
	for (; *words; words++)
		if (strlen(*words) == len && !memcmp(s, *words, len))
			return 1;
	return 0;
}

/* 0x.. and 0o.. integers; NULL when out of range (the caller keeps a string). */
static cJSON *make_radix_int(const char *s, size_t len)
{
	unsigned long long v;
	char *end = NULL, *tmp;
	int base = s[1] == 'x' ? 16 : 8;
	char dec[32];

	tmp = tg_xstrndup(s + 2, len - 2);
	errno = 0;
	v = strtoull(tmp, &end, base);
	if (errno || *end || !*tmp) {
		free(tmp);
		return NULL;
	}
	free(tmp);
	snprintf(dec, sizeof(dec), "%llu", v);
	return make_int(dec, strlen(dec));
}

static int all_in(const char *s, size_t len, const char *set)
{
	size_t i;

	if (!len)
		return 0;
	for (i = 0; i < len; i++)
		if (!strchr(set, s[i]) || !s[i])
			return 0;
	return 1;
}

/* Plain (unquoted, untagged) scalar under the YAML 1.2 core schema. */
static cJSON *resolve_plain(const char *s, size_t len)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL", NULL };
	static const char *const trues[] = { "true", "True", "TRUE", NULL };
	static const char *const falses[] = { "false", "False", "FALSE", NULL };
	cJSON *node = NULL;

	if (text_is(s, len, nulls))
		return chk(cJSON_CreateNull());
	if (text_is(s, len, trues))
		return chk(cJSON_CreateTrue());
	if (text_is(s, len, falses))
		return chk(cJSON_CreateFalse());
	if (is_int_text(s, len))
		return make_int(s, len);
	if (len > 2 && s[0] == '0' && s[1] == 'x' && all_in(s + 2, len - 2, "0123456789abcdefABCDEF"))
		node = make_radix_int(s, len);
	else if (len > 2 && s[0] == '0' && s[1] == 'o' && all_in(s + 2, len - 2, "01234567"))
		node = make_radix_int(s, len);
	else if (is_float_text(s, len))
		node = make_float(s, len);
	return node ? node : chk(cJSON_CreateString(s));
}

/* ------------------------------------------------------------------ */
/* YAML.                                                               */

struct frame {
	cJSON *node;
	size_t cost; /* memory of node and everything in it so far */
	int is_map;
	int has_key;      /* a key was read, its value is next */
	int key_is_merge; /* the key was "<<" */
	int skip_value;   /* the key was rejected: drop its value */
	char *key;
	int key_line, key_column;
	size_t index;     /* next sequence index */
	size_t path_len;  /* length of this container's path */
	char *anchor;
	cJSON *merges; /* references to the mappings to merge at the end */
	int merge_line, merge_column;
};

struct anchor {
	char *name;
	const cJSON *node; /* in the tree or parked; lives until the document ends */
	size_t cost;       /* memory of a copy */
};

struct yb {
	const char *file;
	struct tg_problems *problems;
	struct frame *stack;
	size_t depth, alloc;
	struct anchor *anchors;
	size_t n_anchors, anchors_alloc;
	struct tg_buf path;
	struct tg_pos_map *pos;
	cJSON *root;
	cJSON *parked; /* nodes out of the tree that anchors may point into */
	int have_root;
	int doc_line, doc_column;
	size_t skip_depth; /* inside a container used as a key */
	int doc_bad;
	int skip_doc; /* over budget: 1 drop what was built, 2 dropped */
	int fatal;
	/* Alias budget: this file's, and the pass's it draws on. */
	size_t file_size, file_limit, file_used, pass_limit;
	struct tg_yaml_budget *budget;
	size_t pos_left;
};

/* Fields in problems are paths, which repeat every ancestor key: a long key
 * above many members must not be copied into every problem. */
#define FIELD_MAX 256

static const char *clip_field(const char *field, char buf[FIELD_MAX + 4])
{
	size_t n;

	if (!field || strlen(field) <= FIELD_MAX)
		return field;
	n = FIELD_MAX;
	while (n > 0 && ((unsigned char)field[n] & 0xC0) == 0x80)
		n--; /* do not cut a UTF-8 sequence */
	memcpy(buf, field, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

static void yb_error_at(struct yb *b, int line, int column, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void yb_error_at(struct yb *b, int line, int column, const char *field, const char *fmt, ...)
{
	char msg[512], clipped[FIELD_MAX + 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tg_problems_add(b->problems, TG_SEV_ERROR, b->file, line, column,
			clip_field(field, clipped), "%s", msg);
	b->doc_bad = 1;
}

#define yb_error(b, mark, ...) \
	yb_error_at((b), (int)(mark)->line + 1, (int)(mark)->column + 1, __VA_ARGS__)

/* Memory of one node and its own value string, not of its key or children. */
static size_t node_mem(const cJSON *n)
{
	size_t m = mem_of(sizeof(cJSON));

	if (cJSON_IsString(n) || cJSON_IsRaw(n))
		m += str_mem(n->valuestring);
	return m;
}

/* Memory of a copy of n (cJSON_Duplicate): n's own key is not copied along. */
static size_t tree_mem(const cJSON *n)
{
	size_t m = node_mem(n);
	const cJSON *c;

	for (c = n->child; c; c = c->next)
		m += tree_mem(c) + str_mem(c->string);
	return m;
}

/* A copy for another place in the tree: its key is whatever that place says. */
static cJSON *copy_node(const cJSON *n)
{
	cJSON *d = chk(cJSON_Duplicate(n, 1));

	if (d->string && !(d->type & cJSON_StringIsConst))
		cJSON_free(d->string);
	d->string = NULL;
	d->type &= ~cJSON_StringIsConst;
	return d;
}

/* Keeps a node that left the tree alive until the document ends. */
static void park(struct yb *b, cJSON *v)
{
	if (!v)
		return;
	if (!b->parked)
		b->parked = chk(cJSON_CreateArray());
	cJSON_AddItemToArray(b->parked, v);
}

static void doc_reset(struct yb *b)
{
	size_t i;

	for (i = 0; i < b->depth; i++) {
		cJSON_Delete(b->stack[i].node);
		cJSON_Delete(b->stack[i].merges);
		free(b->stack[i].key);
		free(b->stack[i].anchor);
	}
	b->depth = 0;
	for (i = 0; i < b->n_anchors; i++)
		free(b->anchors[i].name);
	b->n_anchors = 0;
	cJSON_Delete(b->root);
	b->root = NULL;
	b->have_root = 0;
	cJSON_Delete(b->parked);
	b->parked = NULL;
	pos_free(b->pos);
	b->pos = NULL;
	path_truncate(&b->path, 0);
	b->skip_depth = 0;
	b->doc_bad = 0;
	b->skip_doc = 0;
}

/* Over budget: free what the document built and ignore it up to its end. */
static void doc_drop(struct yb *b)
{
	doc_reset(b);
	b->doc_bad = 1;
	b->skip_doc = 2;
}

static struct frame *top(struct yb *b)
{
	return b->depth ? &b->stack[b->depth - 1] : NULL;
}

static size_t times_factor(size_t n)
{
	size_t m;

	if (__builtin_mul_overflow(n, (size_t)TG_YAML_EXPANSION_FACTOR, &m))
		return SIZE_MAX;
	return m;
}

static void budget_start(struct yb *b, struct tg_yaml_budget *budget, size_t len)
{
	size_t limit = times_factor(len);

	b->budget = budget;
	b->file_size = len;
	b->file_limit = limit > TG_YAML_EXPANSION_FLOOR ? limit : TG_YAML_EXPANSION_FLOOR;
	if (__builtin_add_overflow(budget->input, len, &budget->input))
		budget->input = SIZE_MAX;
	limit = times_factor(budget->input);
	b->pass_limit = limit > TG_YAML_PASS_EXPANSION_FLOOR ? limit : TG_YAML_PASS_EXPANSION_FLOOR;
}

/*
 * Charges cost bytes of copies made by an alias or a merge key, before they
 * are made.  0, or -1 when a limit would be crossed: reported there, and the
 * document is dropped (skip_doc) without building anything more.
 */
static int charge(struct yb *b, size_t cost, int line, int column)
{
	size_t file_used, pass_used;

	if (b->skip_doc)
		return -1;
	if (__builtin_add_overflow(b->file_used, cost, &file_used) || file_used > b->file_limit) {
		yb_error_at(
			b, line, column, b->path.ptr,
			"document expands to more than %zu bytes through aliases (the limit for "
			"the whole file: %d times its %zu bytes, at least %zu MiB)",
			b->file_limit, TG_YAML_EXPANSION_FACTOR, b->file_size,
			TG_YAML_EXPANSION_FLOOR / (1024 * 1024));
		b->skip_doc = 1;
		return -1;
	}
	if (__builtin_add_overflow(b->budget->expanded, cost, &pass_used) ||
	    pass_used > b->pass_limit) {
		yb_error_at(
			b, line, column, b->path.ptr,
			"document expands to more than %zu bytes through aliases (the limit "
			"shared by all files of a pass: %d times their %zu bytes, at least %zu MiB)",
			b->pass_limit, TG_YAML_EXPANSION_FACTOR, b->budget->input,
			TG_YAML_PASS_EXPANSION_FLOOR / (1024 * 1024));
		b->skip_doc = 1;
		return -1;
	}
	b->file_used = file_used;
	b->budget->expanded = pass_used;
	return 0;
}

static void anchor_register(struct yb *b, const char *name, const cJSON *node, size_t cost)
{
	struct anchor *a;

	if (b->n_anchors == b->anchors_alloc) {
		b->anchors_alloc = b->anchors_alloc ? b->anchors_alloc * 2 : 8;
		b->anchors = tg_xreallocarray(b->anchors, b->anchors_alloc, sizeof(*b->anchors));
	}
	a = &b->anchors[b->n_anchors++];
	a->name = tg_xstrdup(name);
	a->node = node;
	a->cost = cost;
}

static const struct anchor *anchor_find(const struct yb *b, const char *name)
{
	size_t i;

	/* Search backwards: a later anchor of the same name replaces an earlier one. */
	for (i = b->n_anchors; i > 0; i--)
		if (!strcmp(b->anchors[i - 1].name, name))
			return &b->anchors[i - 1];
	return NULL;
}

enum slot { SLOT_ROOT, SLOT_ITEM, SLOT_VALUE, SLOT_KEY };

/*
 * Works out where the node starting at mark goes, extends the path to it
 * and records its position.  The caller restores the path to *saved once
 * the node is complete (containers keep it while they are open).
 */
static enum slot value_slot(struct yb *b, const yaml_mark_t *mark, size_t *saved)
{
	struct frame *f = top(b);

	*saved = b->path.len;
	if (!f) {
		b->doc_line = (int)mark->line + 1;
		b->doc_column = (int)mark->column + 1;
		pos_put(b->pos, "", 0, b->doc_line, b->doc_column);
		return SLOT_ROOT;
	}
	if (!f->is_map) {
		path_push_index(&b->path, f->index);
		pos_put(b->pos, b->path.ptr, b->path.len, (int)mark->line + 1, (int)mark->column + 1);
		return SLOT_ITEM;
	}
	if (!f->has_key)
		return SLOT_KEY;
	if (f->key_is_merge || f->skip_value) {
		path_push(&b->path, "<<", 2);
		return SLOT_VALUE;
	}
	path_push(&b->path, f->key, strlen(f->key));
	pos_put(b->pos, b->path.ptr, b->path.len, f->key_line, f->key_column);
	return SLOT_VALUE;
}

/* A mapping whose members are v's, without owning them. */
static cJSON *members_of(const cJSON *v)
{
	return chk(cJSON_CreateObjectReference(v->child));
}

/*
 * Notes the mapping(s) in v to merge when f ends.  Only references are kept
 * and v stays as it is, because an anchor may point at it or into it: the
 * caller keeps v alive until the document ends.
 */
static void merge_add(struct yb *b, struct frame *f, const cJSON *v, const yaml_mark_t *mark)
{
	const cJSON *item;

	if (!f->merges)
		f->merges = chk(cJSON_CreateArray());
	if (cJSON_IsObject(v)) {
		cJSON_AddItemToArray(f->merges, members_of(v));
	} else if (cJSON_IsArray(v)) {
		for (item = v->child; item; item = item->next) {
			if (!cJSON_IsObject(item)) {
				yb_error(b, mark, b->path.ptr, "merge key '<<' needs a mapping or a list of mappings");
				break;
			}
			cJSON_AddItemToArray(f->merges, members_of(item));
		}
	} else {
		yb_error(b, mark, b->path.ptr,
			 "merge key '<<' needs a mapping or a list of mappings");
	}
}

/*
 * Explicit keys win over merged ones, earlier merge sources over later ones.
 * The keys taken are copied, and charged like aliases.  Leaves skip_doc set
 * when that is over budget.
 */
static void apply_merges(struct yb *b, struct frame *f)
{
	const cJSON *src, *item;

	if (!f->merges)
		return;
	for (src = f->merges->child; src; src = src->next) {
		for (item = src->child; item; item = item->next) {
			size_t saved = b->path.len, cost;

			if (cJSON_GetObjectItemCaseSensitive(f->node, item->string))
				continue;
			cost = tree_mem(item);
			if (charge(b, cost, f->merge_line, f->merge_column))
				return;
			path_push(&b->path, item->string, strlen(item->string));
			pos_put(b->pos, b->path.ptr, b->path.len, f->merge_line, f->merge_column);
			path_truncate(&b->path, saved);
			cJSON_AddItemToObject(f->node, item->string, copy_node(item));
			f->cost += cost + str_mem(item->string);
		}
	}
	cJSON_Delete(f->merges);
	f->merges = NULL;
}

static void clear_key(struct frame *f)
{
	free(f->key);
	f->key = NULL;
	f->has_key = f->key_is_merge = f->skip_value = 0;
}

/* Puts a finished value (NULL after an error) of cost bytes where it belongs. */
static void attach(struct yb *b, cJSON *v, size_t cost, const yaml_mark_t *mark)
{
	struct frame *f = top(b);

	if (!v)
		b->doc_bad = 1;
	if (!f) {
		cJSON_Delete(b->root);
		b->root = v;
		b->have_root = 1;
		return;
	}
	if (!f->is_map) {
		if (v) {
			cJSON_AddItemToArray(f->node, v);
			f->cost += cost;
		}
		f->index++;
		return;
	}
	if (f->skip_value) {
		park(b, v);
	} else if (f->key_is_merge && v) {
		merge_add(b, f, v, mark);
		park(b, v);
	} else if (v) {
		cJSON_AddItemToObject(f->node, f->key, v);
		f->cost += cost + str_mem(f->key);
	}
	clear_key(f);
}

static void set_key(struct yb *b, struct frame *f, const char *key, int plain, const yaml_mark_t *mark)
{
	f->has_key = 1;
	if (plain && !strcmp(key, "<<")) {
		f->key_is_merge = 1;
		f->merge_line = (int)mark->line + 1;
		f->merge_column = (int)mark->column + 1;
		return;
	}
	if (cJSON_GetObjectItemCaseSensitive(f->node, key)) {
		size_t saved = b->path.len;

		path_push(&b->path, key, strlen(key));
		yb_error(b, mark, b->path.ptr, "duplicate key '%s'", key);
		path_truncate(&b->path, saved);
		f->skip_value = 1;
		return;
	}
	f->key = tg_xstrdup(key);
	f->key_line = (int)mark->line + 1;
	f->key_column = (int)mark->column + 1;
}

static int tag_is(const char *tag, const char *name)
{
	return tag && !strcmp(tag, name);
}

static cJSON *scalar_value(struct yb *b, const yaml_event_t *ev)
{
	const char *tag = (const char *)ev->data.scalar.tag;
	const char *v = (const char *)ev->data.scalar.value;
	size_t n = ev->data.scalar.length;
	int plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	cJSON *node;

	if (memchr(v, '\0', n)) {
		yb_error(b, &ev->start_mark, b->path.ptr, "nul character in a string is not supported");
		return NULL;
	}
	if (!tag)
		return plain ? resolve_plain(v, n) : chk(cJSON_CreateString(v));
	if (tag_is(tag, "!") || tag_is(tag, YAML_STR_TAG))
		return chk(cJSON_CreateString(v));
	node = resolve_plain(v, n);
	if ((tag_is(tag, YAML_NULL_TAG) && cJSON_IsNull(node)) ||
	    (tag_is(tag, YAML_BOOL_TAG) && cJSON_IsBool(node)) ||
	    (tag_is(tag, YAML_INT_TAG) && (cJSON_IsNumber(node) || cJSON_IsRaw(node)) &&
	     (is_int_text(v, n) || (n > 2 && v[0] == '0' && (v[1] == 'x' || v[1] == 'o')))) ||
	    (tag_is(tag, YAML_FLOAT_TAG) && (cJSON_IsNumber(node) || cJSON_IsRaw(node))))
		return node;
	cJSON_Delete(node);
	if (tag_is(tag, YAML_NULL_TAG) || tag_is(tag, YAML_BOOL_TAG) || tag_is(tag, YAML_INT_TAG) ||
	    tag_is(tag, YAML_FLOAT_TAG))
		yb_error(b, &ev->start_mark, b->path.ptr, "'%s' is not a valid %s", v, tag);
	else
		yb_error(b, &ev->start_mark, b->path.ptr, "unsupported tag '%s'", tag);
	return NULL;
}

static void on_scalar(struct yb *b, const yaml_event_t *ev)
{
	const char *anchor = (const char *)ev->data.scalar.anchor;
	size_t saved, cost;
	cJSON *v;

	if (b->skip_depth || b->skip_doc)
		return;
	if (value_slot(b, &ev->start_mark, &saved) == SLOT_KEY) {
		const char *key = (const char *)ev->data.scalar.value;

		if (memchr(key, '\0', ev->data.scalar.length)) {
			yb_error(b, &ev->start_mark, b->path.ptr, "nul character in a key is not supported");
			set_key(b, top(b), "\x01", 0, &ev->start_mark);
			top(b)->skip_value = 1;
			return;
		}
		set_key(b, top(b), key, ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			!ev->data.scalar.tag, &ev->start_mark);
		if (anchor) {
			cJSON *k = chk(cJSON_CreateString(key));

			anchor_register(b, anchor, k, node_mem(k));
			park(b, k);
		}
		return;
	}
	v = scalar_value(b, ev);
	cost = v ? node_mem(v) : 0;
	if (v && anchor)
		anchor_register(b, anchor, v, cost);
	attach(b, v, cost, &ev->start_mark);
	path_truncate(&b->path, saved);
}

static void on_alias(struct yb *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const struct anchor *a;
	size_t saved;
	enum slot slot;
	struct frame *f;

	if (b->skip_depth || b->skip_doc)
		return;
	slot = value_slot(b, &ev->start_mark, &saved);
	f = top(b);
	a = anchor_find(b, name);
	if (!a) {
		yb_error(b, &ev->start_mark, b->path.ptr, "undefined alias '%s'", name);
		if (slot == SLOT_KEY) {
			set_key(b, f, "\x01", 0, &ev->start_mark);
			f->skip_value = 1;
		} else {
			attach(b, NULL, 0, &ev->start_mark);
		}
		path_truncate(&b->path, saved);
		return;
	}
	if (slot == SLOT_KEY) {
		if (!cJSON_IsString(a->node)) {
			yb_error(b, &ev->start_mark, b->path.ptr, "alias '%s' used as a key is not a string", name);
			set_key(b, f, "\x01", 0, &ev->start_mark);
			f->skip_value = 1;
		} else {
			set_key(b, f, a->node->valuestring, 0, &ev->start_mark);
		}
		return;
	}
	if (slot == SLOT_VALUE && f->key_is_merge) {
		/* No copy: apply_merges copies the keys it takes, and charges them. */
		merge_add(b, f, a->node, &ev->start_mark);
		clear_key(f);
	} else if (!charge(b, a->cost, (int)ev->start_mark.line + 1,
			   (int)ev->start_mark.column + 1)) {
		attach(b, copy_node(a->node), a->cost, &ev->start_mark);
	}
	path_truncate(&b->path, saved);
}

static void on_start(struct yb *b, const yaml_event_t *ev, int is_map)
{
	const yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	const yaml_char_t *tag = is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
	struct frame *f;
	size_t saved;

	if (b->skip_doc)
		return;
	if (b->skip_depth) {
		b->skip_depth++;
		return;
	}
	if (b->depth >= TG_YAML_MAX_DEPTH) {
		yb_error(b, &ev->start_mark, NULL, "nesting deeper than %d levels", TG_YAML_MAX_DEPTH);
		b->fatal = 1;
		return;
	}
	if (value_slot(b, &ev->start_mark, &saved) == SLOT_KEY) {
		yb_error(b, &ev->start_mark, b->path.ptr[0] ? b->path.ptr : NULL,
			 "mapping keys must be scalars");
		b->skip_depth = 1;
		return;
	}
	if (tag && strcmp((const char *)tag, "!") &&
	    strcmp((const char *)tag, is_map ? YAML_MAP_TAG : YAML_SEQ_TAG))
		yb_error(b, &ev->start_mark, b->path.ptr, "unsupported tag '%s'", (const char *)tag);
	if (b->depth == b->alloc) {
		b->alloc = b->alloc ? b->alloc * 2 : 16;
		b->stack = tg_xreallocarray(b->stack, b->alloc, sizeof(*b->stack));
	}
	f = &b->stack[b->depth++];
	memset(f, 0, sizeof(*f));
	f->node = chk(is_map ? cJSON_CreateObject() : cJSON_CreateArray());
	f->cost = node_mem(f->node);
	f->is_map = is_map;
	f->path_len = b->path.len;
	f->anchor = anchor ? tg_xstrdup((const char *)anchor) : NULL;
	/* The parent's path is restored when this container ends. */
	(void)saved;
}

static void on_end(struct yb *b, const yaml_event_t *ev)
{
	struct frame f;
	struct frame *parent;

	if (b->skip_doc)
		return;
	if (b->skip_depth) {
		if (--b->skip_depth == 0) {
			/* The container was a key: drop the value that follows. */
			set_key(b, top(b), "\x01", 0, &ev->start_mark);
			top(b)->skip_value = 1;
		}
		return;
	}
	if (!b->depth)
		return;
	apply_merges(b, top(b));
	if (b->skip_doc)
		return;
	f = b->stack[--b->depth];
	free(f.key);
	if (f.anchor)
		anchor_register(b, f.anchor, f.node, f.cost);
	free(f.anchor);
	parent = top(b);
	attach(b, f.node, f.cost, &ev->start_mark);
	/* Back to the parent's own path. */
	path_truncate(&b->path, parent ? parent->path_len : 0);
}

static void report_parser_error(struct yb *b, const yaml_parser_t *p)
{
	yaml_mark_t mark = p->problem_mark;
	const char *problem = p->problem ? p->problem : "unknown error";

	if (p->error == YAML_READER_ERROR || p->error == YAML_MEMORY_ERROR)
		mark = p->mark;
	if (p->context)
		yb_error(b, &mark, NULL, "invalid yaml: %s %s (line %d, column %d)", problem,
			 p->context, (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
	else
		yb_error(b, &mark, NULL, "invalid yaml: %s", problem);
}

int tg_yaml_parse(struct tg_docs *out, const char *data, size_t len, const char *file,
		  struct tg_problems *problems)
{
	struct tg_yaml_budget budget = TG_YAML_BUDGET_INIT;

	return tg_yaml_parse_budgeted(out, &budget, data, len, file, problems);
}

int tg_yaml_parse_budgeted(struct tg_docs *out, struct tg_yaml_budget *budget, const char *data,
			   size_t len, const char *file, struct tg_problems *problems)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct yb b;
	int rc = 0, done = 0;

	memset(&b, 0, sizeof(b));
	b.file = file;
	b.problems = problems;
	budget_start(&b, budget, len);
	b.pos_left = pos_budget(len);
	tg_buf_init(&b.path, 0);
	tg_buf_put(&b.path, "", 0);
	if (!yaml_parser_initialize(&parser)) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory initialising yaml parser\"}\n");
		abort();
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			report_parser_error(&b, &parser);
			rc = TG_EINVALID;
			break;
		}
		switch (ev.type) {
		case YAML_DOCUMENT_START_EVENT:
			doc_reset(&b);
			b.pos = pos_new(&b.pos_left);
			b.doc_line = (int)ev.start_mark.line + 1;
			b.doc_column = (int)ev.start_mark.column + 1;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (b.doc_bad)
				rc = TG_EINVALID;
			else if (b.have_root) {
				docs_push(out, b.root, b.doc_line, b.doc_column, b.pos);
				b.root = NULL;
				b.pos = NULL;
			}
			doc_reset(&b);
			break;
		case YAML_MAPPING_START_EVENT:
			on_start(&b, &ev, 1);
			break;
		case YAML_SEQUENCE_START_EVENT:
			on_start(&b, &ev, 0);
			break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT:
			on_end(&b, &ev);
			break;
		case YAML_SCALAR_EVENT:
			on_scalar(&b, &ev);
			break;
		case YAML_ALIAS_EVENT:
			on_alias(&b, &ev);
			break;
		case YAML_STREAM_END_EVENT:
			done = 1;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
		if (b.skip_doc == 1)
			doc_drop(&b); /* give the memory back now, not at the document's end */
		if (b.fatal) {
			rc = TG_EINVALID;
			break;
		}
	}
	doc_reset(&b);
	free(b.stack);
	free(b.anchors);
	tg_buf_release(&b.path);
	yaml_parser_delete(&parser);
	return rc;
}

/* ------------------------------------------------------------------ */
/* JSON.                                                               */

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
	char msg[512], clipped[FIELD_MAX + 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tg_problems_add(p->problems, TG_SEV_ERROR, p->file, p->line, p->column,
			p->path.len ? clip_field(p->path.ptr, clipped) : NULL, "invalid json: %s",
			msg);
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

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
	unsigned cp;
	size_t n, i;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xC2 && s[0] <= 0xDF)
		n = 2, cp = s[0] & 0x1F;
	else if (s[0] >= 0xE0 && s[0] <= 0xEF)
		n = 3, cp = s[0] & 0x0F;
	else if (s[0] >= 0xF0 && s[0] <= 0xF4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (avail < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
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
	case '"': case '\\': case '/':
		tg_buf_put(sb, &p->s[p->i], 1);
		break;
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
		n = utf8_len(p->s + p->i, p->len - p->i);
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
	cJSON *obj = chk(cJSON_CreateObject());
	size_t saved = p->path.len;

	jp_adv(p);
	jp_ws(p);
	if (jp_peek(p) == '}') {
		jp_adv(p);
		return obj;
	}
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
		path_push(&p->path, key, strlen(key));
		pos_put(p->pos, p->path.ptr, p->path.len, kline, kcol);
		dup = cJSON_GetObjectItemCaseSensitive(obj, key) != NULL;
		if (dup) {
			char clipped[FIELD_MAX + 4];

			/* Bounded like every other message: a key may be megabytes long. */
			tg_problems_add(p->problems, TG_SEV_ERROR, p->file, kline, kcol,
					clip_field(p->path.ptr, clipped), "duplicate key '%.*s%s'",
					FIELD_MAX, key, strlen(key) > FIELD_MAX ? "..." : "");
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
		if (dup)
			cJSON_Delete(v);
		else
			cJSON_AddItemToObject(obj, key, v);
		free(key);
		path_truncate(&p->path, saved);
		switch (jp_after_member(p, '}')) {
		case 1: continue;
		case 0: return obj;
		default: goto fail;
		}
	}
fail:
	cJSON_Delete(obj);
	return NULL;
}

static cJSON *jp_array(struct jp *p, int depth)
{
	cJSON *arr = chk(cJSON_CreateArray());
	size_t saved = p->path.len, index = 0;

	jp_adv(p);
	jp_ws(p);
	if (jp_peek(p) == ']') {
		jp_adv(p);
		return arr;
	}
	for (;;) {
		cJSON *v;

		path_push_index(&p->path, index++);
		pos_put(p->pos, p->path.ptr, p->path.len, p->line, p->column);
		v = jp_value(p, depth + 1);
		if (!v)
			goto fail;
		cJSON_AddItemToArray(arr, v);
		path_truncate(&p->path, saved);
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

	if (depth > TG_YAML_MAX_DEPTH) {
		jp_error(p, "nesting deeper than %d levels", TG_YAML_MAX_DEPTH);
		return NULL;
	}
	switch (jp_peek(p)) {
	case '{':
		return jp_object(p, depth);
	case '[':
		return jp_array(p, depth);
	case '"':
		s = jp_string(p);
		if (!s)
			return NULL;
		node = chk(cJSON_CreateString(s));
		free(s);
		return node;
	case 't':
		return jp_literal(p, "true") ? NULL : chk(cJSON_CreateTrue());
	case 'f':
		return jp_literal(p, "false") ? NULL : chk(cJSON_CreateFalse());
	case 'n':
		return jp_literal(p, "null") ? NULL : chk(cJSON_CreateNull());
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
	p.pos_left = pos_budget(len);
	p.pos = pos_new(&p.pos_left);

	/* Editors on Windows still write a BOM. */
	if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))
		p.i = 3;
	jp_ws(&p);
	line = p.line;
	column = p.column;
	pos_put(p.pos, "", 0, line, column);
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
	docs_push(out, root, line, column, p.pos);
	root = NULL;
	p.pos = NULL;
	rc = 0;
out:
	cJSON_Delete(root);
	pos_free(p.pos);
	tg_buf_release(&p.path);
	return rc;
}
