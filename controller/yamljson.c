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
 * Limits: nesting deeper than TG_YAML_MAX_DEPTH and documents that expand
 * (through aliases) beyond TG_YAML_MAX_EXPANSION bytes are rejected, so
 * that a "billion laughs" file cannot exhaust memory or the stack.
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

/* Rough bytes per node, used only for the expansion budget. */
#define NODE_COST 48

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

static struct tg_pos_map *pos_new(void)
{
	return tg_xcalloc(1, sizeof(struct tg_pos_map));
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
	uint32_t h = hash_path(path, len);
	size_t need;

	if (!m)
		return;
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
	int is_map;
	int has_key;      /* a key was read, its value is next */
	int key_is_merge; /* the key was "<<" */
	int skip_value;   /* the key was rejected: drop its value */
	char *key;
	int key_line, key_column;
	size_t index;     /* next sequence index */
	size_t path_len;  /* length of this container's path */
	char *anchor;
	cJSON *merges;    /* mappings to merge at the end, owned */
	int merge_line, merge_column;
};

struct anchor {
	char *name;
	cJSON *node; /* an owned copy: the original may be merged away */
	size_t cost;
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
	int have_root;
	int doc_line, doc_column;
	size_t cost;
	size_t skip_depth; /* inside a container used as a key */
	int doc_bad;
	int fatal;
};

static void yb_error(struct yb *b, const yaml_mark_t *mark, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void yb_error(struct yb *b, const yaml_mark_t *mark, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tg_problems_add(b->problems, TG_SEV_ERROR, b->file, (int)mark->line + 1,
			(int)mark->column + 1, field, "%s", msg);
	b->doc_bad = 1;
}

static size_t node_cost(const cJSON *n)
{
	size_t cost = NODE_COST;
	const cJSON *c;

	if (n->string)
		cost += strlen(n->string);
	if (cJSON_IsString(n) || cJSON_IsRaw(n))
		cost += strlen(n->valuestring);
	for (c = n->child; c; c = c->next)
		cost += node_cost(c);
	return cost;
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
	for (i = 0; i < b->n_anchors; i++) {
		free(b->anchors[i].name);
		cJSON_Delete(b->anchors[i].node);
	}
	b->n_anchors = 0;
	cJSON_Delete(b->root);
	b->root = NULL;
	b->have_root = 0;
	pos_free(b->pos);
	b->pos = NULL;
	path_truncate(&b->path, 0);
	b->cost = 0;
	b->skip_depth = 0;
	b->doc_bad = 0;
}

static struct frame *top(struct yb *b)
{
	return b->depth ? &b->stack[b->depth - 1] : NULL;
}

static void add_cost(struct yb *b, size_t cost, const yaml_mark_t *mark)
{
	if (b->fatal)
		return;
	if (__builtin_add_overflow(b->cost, cost, &b->cost) || b->cost > TG_YAML_MAX_EXPANSION) {
		yb_error(b, mark, NULL, "document expands to more than %zu bytes (too many aliases?)",
			 TG_YAML_MAX_EXPANSION);
		b->fatal = 1;
	}
}

static void anchor_register(struct yb *b, const char *name, const cJSON *node)
{
	struct anchor *a;

	if (b->n_anchors == b->anchors_alloc) {
		b->anchors_alloc = b->anchors_alloc ? b->anchors_alloc * 2 : 8;
		b->anchors = tg_xreallocarray(b->anchors, b->anchors_alloc, sizeof(*b->anchors));
	}
	a = &b->anchors[b->n_anchors++];
	a->name = tg_xstrdup(name);
	a->node = chk(cJSON_Duplicate(node, 1));
	a->cost = node_cost(node);
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

static void merge_add(struct yb *b, struct frame *f, cJSON *v, const yaml_mark_t *mark)
{
	cJSON *item, *next;

	if (!f->merges)
		f->merges = chk(cJSON_CreateArray());
	if (cJSON_IsObject(v)) {
		cJSON_AddItemToArray(f->merges, v);
		return;
	}
	if (cJSON_IsArray(v)) {
		for (item = v->child; item; item = next) {
			next = item->next;
			if (!cJSON_IsObject(item)) {
				yb_error(b, mark, b->path.ptr, "merge key '<<' needs a mapping or a list of mappings");
				break;
			}
			cJSON_AddItemToArray(f->merges, cJSON_DetachItemViaPointer(v, item));
		}
		cJSON_Delete(v);
		return;
	}
	yb_error(b, mark, b->path.ptr, "merge key '<<' needs a mapping or a list of mappings");
	cJSON_Delete(v);
}

/* Explicit keys win over merged ones, earlier merge sources over later ones. */
static void apply_merges(struct yb *b, struct frame *f)
{
	cJSON *src, *item, *next;

	if (!f->merges)
		return;
	for (src = f->merges->child; src; src = src->next) {
		for (item = src->child; item; item = next) {
			size_t saved = b->path.len;

			next = item->next;
			if (cJSON_GetObjectItemCaseSensitive(f->node, item->string))
				continue;
			path_push(&b->path, item->string, strlen(item->string));
			pos_put(b->pos, b->path.ptr, b->path.len, f->merge_line, f->merge_column);
			path_truncate(&b->path, saved);
			cJSON_DetachItemViaPointer(src, item);
			cJSON_AddItemToObject(f->node, item->string, item);
		}
	}
	cJSON_Delete(f->merges);
	f->merges = NULL;
}

/* Puts a finished value (NULL after an error) where it belongs. */
static void attach(struct yb *b, cJSON *v, const yaml_mark_t *mark)
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
		if (v)
			cJSON_AddItemToArray(f->node, v);
		f->index++;
		return;
	}
	if (f->skip_value)
		cJSON_Delete(v);
	else if (f->key_is_merge && v)
		merge_add(b, f, v, mark);
	else if (v)
		cJSON_AddItemToObject(f->node, f->key, v);
	free(f->key);
	f->key = NULL;
	f->has_key = f->key_is_merge = f->skip_value = 0;
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
	size_t saved;
	cJSON *v;

	if (b->skip_depth)
		return;
	add_cost(b, NODE_COST + ev->data.scalar.length, &ev->start_mark);
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

			anchor_register(b, anchor, k);
			cJSON_Delete(k);
		}
		return;
	}
	v = scalar_value(b, ev);
	if (v && anchor)
		anchor_register(b, anchor, v);
	attach(b, v, &ev->start_mark);
	path_truncate(&b->path, saved);
}

static void on_alias(struct yb *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	const struct anchor *a;
	size_t saved;
	enum slot slot;

	if (b->skip_depth)
		return;
	slot = value_slot(b, &ev->start_mark, &saved);
	a = anchor_find(b, name);
	if (!a) {
		yb_error(b, &ev->start_mark, b->path.ptr, "undefined alias '%s'", name);
		if (slot == SLOT_KEY) {
			set_key(b, top(b), "\x01", 0, &ev->start_mark);
			top(b)->skip_value = 1;
		} else {
			attach(b, NULL, &ev->start_mark);
		}
		path_truncate(&b->path, saved);
		return;
	}
	add_cost(b, a->cost, &ev->start_mark);
	if (b->fatal)
		return;
	if (slot == SLOT_KEY) {
		if (!cJSON_IsString(a->node)) {
			yb_error(b, &ev->start_mark, b->path.ptr, "alias '%s' used as a key is not a string", name);
			set_key(b, top(b), "\x01", 0, &ev->start_mark);
			top(b)->skip_value = 1;
		} else {
			set_key(b, top(b), a->node->valuestring, 0, &ev->start_mark);
		}
		return;
	}
	attach(b, chk(cJSON_Duplicate(a->node, 1)), &ev->start_mark);
	path_truncate(&b->path, saved);
}

static void on_start(struct yb *b, const yaml_event_t *ev, int is_map)
{
	const yaml_char_t *anchor = is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
	const yaml_char_t *tag = is_map ? ev->data.mapping_start.tag : ev->data.sequence_start.tag;
	struct frame *f;
	size_t saved;

	if (b->skip_depth) {
		b->skip_depth++;
		return;
	}
	if (b->depth >= TG_YAML_MAX_DEPTH) {
		yb_error(b, &ev->start_mark, NULL, "nesting deeper than %d levels", TG_YAML_MAX_DEPTH);
		b->fatal = 1;
		return;
	}
	add_cost(b, NODE_COST, &ev->start_mark);
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
	f = b->stack[--b->depth];
	free(f.key);
	if (f.anchor)
		anchor_register(b, f.anchor, f.node);
	free(f.anchor);
	parent = top(b);
	attach(b, f.node, &ev->start_mark);
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
	yaml_parser_t parser;
	yaml_event_t ev;
	struct yb b;
	int rc = 0, done = 0;

	memset(&b, 0, sizeof(b));
	b.file = file;
	b.problems = problems;
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
			b.pos = pos_new();
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
	int failed; /* syntax error: parsing stopped */
	int bad;    /* semantic error (duplicate key): document dropped */
};

static void jp_error(struct jp *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void jp_error(struct jp *p, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tg_problems_add(p->problems, TG_SEV_ERROR, p->file, p->line, p->column,
			p->path.len ? p->path.ptr : NULL, "invalid json: %s", msg);
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
			tg_problems_add(p->problems, TG_SEV_ERROR, p->file, kline, kcol, p->path.ptr,
					"duplicate key '%s'", key);
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
	p.pos = pos_new();

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
