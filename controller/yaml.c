/*
 * YAML documents to cJSON (see include/tg/yaml.h).
 *
 * YAML goes through libyaml's event API rather than its document API: the
 * document API forgets whether a scalar was quoted or explicitly tagged,
 * and both matter ("0755" quoted must stay a string).  Scalars follow the
 * YAML 1.2 core schema with one deliberate exception: plain yes/no/on/off
 * (booleans in YAML 1.1) stay strings, because Tyk fields never expect a
 * boolean spelled that way and silently turning a header value "on" into
 * true would corrupt the definition.  .inf and .nan also stay strings:
 * JSON cannot represent them.  Numbers are built by the JSON reader's rule
 * (tg_json_create_number), so a YAML and a JSON file keep the same digits.
 *
 * Positions go into the document's position map (posmap.h).  Nodes copied
 * through an alias have no positions of their own (lookups for them fail
 * and callers fall back to an ancestor); keys taken by a merge are placed
 * at the merge key.
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
 * - Positions are recorded within the position map's budget, one per file.
 */
#include "tg/yaml.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/objindex.h"
#include "tg/json.h"
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
	return tg_json_create_number(dec, strlen(dec));
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
		return tg_json_checked(cJSON_CreateNull());
	if (text_is(s, len, trues))
		return tg_json_checked(cJSON_CreateTrue());
	if (text_is(s, len, falses))
		return tg_json_checked(cJSON_CreateFalse());
	if (is_int_text(s, len))
		return tg_json_create_number(s, len);
	if (len > 2 && s[0] == '0' && s[1] == 'x' &&
	    all_in(s + 2, len - 2, "0123456789abcdefABCDEF"))
		node = make_radix_int(s, len);
	else if (len > 2 && s[0] == '0' && s[1] == 'o' && all_in(s + 2, len - 2, "01234567"))
		node = make_radix_int(s, len);
	else if (is_float_text(s, len))
		node = tg_json_create_number(s, len);
	return node ? node : tg_json_checked(cJSON_CreateString(s));
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
	size_t index;    /* next sequence index */
	size_t path_len; /* length of this container's path */
	char *anchor;
	cJSON *merges; /* references to the mappings to merge at the end */
	int merge_line, merge_column;
	struct tg_objindex keys; /* of node, when a mapping */
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

static void yb_error_at(struct yb *b, int line, int column, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void yb_error_at(struct yb *b, int line, int column, const char *field, const char *fmt, ...)
{
	char msg[512], clipped[TG_POS_FIELD_MAX + 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tg_problems_add(b->problems, TG_SEV_ERROR, b->file, line, column,
			tg_pos_field_clip(field, clipped), "%s", msg);
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
	cJSON *d = tg_json_checked(cJSON_Duplicate(n, 1));

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
		b->parked = tg_json_checked(cJSON_CreateArray());
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
		tg_objindex_release(&b->stack[i].keys);
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
	tg_pos_map_free(b->pos);
	b->pos = NULL;
	tg_pos_path_truncate(&b->path, 0);
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
		tg_pos_put(b->pos, "", 0, b->doc_line, b->doc_column);
		return SLOT_ROOT;
	}
	if (!f->is_map) {
		tg_pos_path_push_index(&b->path, f->index);
		tg_pos_put(b->pos, b->path.ptr, b->path.len, (int)mark->line + 1,
			   (int)mark->column + 1);
		return SLOT_ITEM;
	}
	if (!f->has_key)
		return SLOT_KEY;
	if (f->key_is_merge || f->skip_value) {
		tg_pos_path_push(&b->path, "<<", 2);
		return SLOT_VALUE;
	}
	tg_pos_path_push(&b->path, f->key, strlen(f->key));
	tg_pos_put(b->pos, b->path.ptr, b->path.len, f->key_line, f->key_column);
	return SLOT_VALUE;
}

/* A mapping whose members are v's, without owning them. */
static cJSON *members_of(const cJSON *v)
{
	return tg_json_checked(cJSON_CreateObjectReference(v->child));
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
		f->merges = tg_json_checked(cJSON_CreateArray());
	if (cJSON_IsObject(v)) {
		cJSON_AddItemToArray(f->merges, members_of(v));
	} else if (cJSON_IsArray(v)) {
		for (item = v->child; item; item = item->next) {
			if (!cJSON_IsObject(item)) {
				yb_error(b, mark, b->path.ptr,
					 "merge key '<<' needs a mapping or a list of mappings");
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
			cJSON *copy;

			if (tg_objindex_get(&f->keys, item->string))
				continue;
			cost = tree_mem(item);
			if (charge(b, cost, f->merge_line, f->merge_column))
				return;
			tg_pos_path_push(&b->path, item->string, strlen(item->string));
			tg_pos_put(b->pos, b->path.ptr, b->path.len, f->merge_line,
				   f->merge_column);
			tg_pos_path_truncate(&b->path, saved);
			copy = copy_node(item);
			cJSON_AddItemToObject(f->node, item->string, copy);
			tg_objindex_added(&f->keys, copy);
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
		tg_objindex_added(&f->keys, v);
		f->cost += cost + str_mem(f->key);
	}
	clear_key(f);
}

static void set_key(struct yb *b, struct frame *f, const char *key, int plain,
		    const yaml_mark_t *mark)
{
	f->has_key = 1;
	if (plain && !strcmp(key, "<<")) {
		f->key_is_merge = 1;
		f->merge_line = (int)mark->line + 1;
		f->merge_column = (int)mark->column + 1;
		return;
	}
	if (tg_objindex_get(&f->keys, key)) {
		size_t saved = b->path.len;

		tg_pos_path_push(&b->path, key, strlen(key));
		yb_error(b, mark, b->path.ptr, "duplicate key '%s'", key);
		tg_pos_path_truncate(&b->path, saved);
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
		yb_error(b, &ev->start_mark, b->path.ptr,
			 "nul character in a string is not supported");
		return NULL;
	}
	if (!tag)
		return plain ? resolve_plain(v, n) : tg_json_checked(cJSON_CreateString(v));
	if (tag_is(tag, "!") || tag_is(tag, YAML_STR_TAG))
		return tg_json_checked(cJSON_CreateString(v));
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
			yb_error(b, &ev->start_mark, b->path.ptr,
				 "nul character in a key is not supported");
			set_key(b, top(b), "\x01", 0, &ev->start_mark);
			top(b)->skip_value = 1;
			return;
		}
		set_key(b, top(b), key,
			ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev->data.scalar.tag,
			&ev->start_mark);
		if (anchor) {
			cJSON *k = tg_json_checked(cJSON_CreateString(key));

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
	tg_pos_path_truncate(&b->path, saved);
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
		tg_pos_path_truncate(&b->path, saved);
		return;
	}
	if (slot == SLOT_KEY) {
		if (!cJSON_IsString(a->node)) {
			yb_error(b, &ev->start_mark, b->path.ptr,
				 "alias '%s' used as a key is not a string", name);
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
	tg_pos_path_truncate(&b->path, saved);
}

static void on_start(struct yb *b, const yaml_event_t *ev, int is_map)
{
	const yaml_char_t *anchor =
		is_map ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
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
		yb_error(b, &ev->start_mark, NULL, "nesting deeper than %d levels",
			 TG_YAML_MAX_DEPTH);
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
		yb_error(b, &ev->start_mark, b->path.ptr, "unsupported tag '%s'",
			 (const char *)tag);
	if (b->depth == b->alloc) {
		b->alloc = b->alloc ? b->alloc * 2 : 16;
		b->stack = tg_xreallocarray(b->stack, b->alloc, sizeof(*b->stack));
	}
	f = &b->stack[b->depth++];
	memset(f, 0, sizeof(*f));
	f->node = tg_json_checked(is_map ? cJSON_CreateObject() : cJSON_CreateArray());
	f->cost = node_mem(f->node);
	f->is_map = is_map;
	if (is_map)
		tg_objindex_init(&f->keys, f->node);
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
	tg_objindex_release(&f.keys);
	free(f.key);
	if (f.anchor)
		anchor_register(b, f.anchor, f.node, f.cost);
	free(f.anchor);
	parent = top(b);
	attach(b, f.node, f.cost, &ev->start_mark);
	/* Back to the parent's own path. */
	tg_pos_path_truncate(&b->path, parent ? parent->path_len : 0);
}

static void report_parser_error(struct yb *b, const yaml_parser_t *p)
{
	yaml_mark_t mark = p->problem_mark;
	const char *problem = p->problem ? p->problem : "unknown error";

	if (p->error == YAML_READER_ERROR || p->error == YAML_MEMORY_ERROR)
		mark = p->mark;
	if (p->context)
		yb_error(b, &mark, NULL, "invalid yaml: %s %s (line %d, column %d)", problem,
			 p->context, (int)p->context_mark.line + 1,
			 (int)p->context_mark.column + 1);
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
	b.pos_left = tg_pos_budget(len);
	tg_buf_init(&b.path, 0);
	tg_buf_put(&b.path, "", 0);
	if (!yaml_parser_initialize(&parser)) {
		fprintf(stderr,
			"{\"level\":\"error\",\"msg\":\"out of memory initialising yaml parser\"}\n");
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
			b.pos = tg_pos_map_new(&b.pos_left);
			b.doc_line = (int)ev.start_mark.line + 1;
			b.doc_column = (int)ev.start_mark.column + 1;
			break;
		case YAML_DOCUMENT_END_EVENT:
			if (b.doc_bad)
				rc = TG_EINVALID;
			else if (b.have_root) {
				tg_docs_push(out, b.root, b.doc_line, b.doc_column, b.pos);
				b.root = NULL;
				b.pos = NULL;
			}
			doc_reset(&b);
			break;
		case YAML_MAPPING_START_EVENT: on_start(&b, &ev, 1); break;
		case YAML_SEQUENCE_START_EVENT: on_start(&b, &ev, 0); break;
		case YAML_MAPPING_END_EVENT:
		case YAML_SEQUENCE_END_EVENT: on_end(&b, &ev); break;
		case YAML_SCALAR_EVENT: on_scalar(&b, &ev); break;
		case YAML_ALIAS_EVENT: on_alias(&b, &ev); break;
		case YAML_STREAM_END_EVENT: done = 1; break;
		default: break;
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
