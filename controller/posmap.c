/*
 * Position map: an open-addressing hash table of path -> line/column, the
 * paths in one arena (see include/tg/posmap.h).
 */
#include "tg/posmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/banned.h"

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

struct tg_pos_map *tg_pos_map_new(size_t *left)
{
	struct tg_pos_map *m = tg_xcalloc(1, sizeof(struct tg_pos_map));

	m->left = left;
	return m;
}

size_t tg_pos_budget(size_t input_len)
{
	size_t n;

	if (__builtin_mul_overflow(input_len, (size_t)TG_POS_FACTOR, &n))
		return SIZE_MAX;
	return n > TG_POS_FLOOR ? n : TG_POS_FLOOR;
}

void tg_pos_map_free(struct tg_pos_map *m)
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

void tg_pos_put(struct tg_pos_map *m, const char *path, size_t len, int line, int column)
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

void tg_pos_path_push(struct tg_buf *path, const char *key, size_t len)
{
	if (path->len)
		tg_buf_put(path, ".", 1);
	tg_buf_put(path, key, len);
}

void tg_pos_path_push_index(struct tg_buf *path, size_t index)
{
	tg_buf_printf(path, "%s%zu", path->len ? "." : "", index);
}

void tg_pos_path_truncate(struct tg_buf *path, size_t len)
{
	path->len = len;
	if (path->ptr)
		path->ptr[len] = '\0';
}

const char *tg_pos_field_clip(const char *field, char buf[TG_POS_FIELD_MAX + 4])
{
	size_t n;

	if (!field || strlen(field) <= TG_POS_FIELD_MAX)
		return field;
	n = TG_POS_FIELD_MAX;
	while (n > 0 && ((unsigned char)field[n] & 0xC0) == 0x80)
		n--; /* do not cut a UTF-8 sequence */
	memcpy(buf, field, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

void tg_docs_push(struct tg_docs *docs, cJSON *json, int line, int column, struct tg_pos_map *pos)
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
		tg_pos_map_free(docs->items[i].pos);
	}
	free(docs->items);
	docs->items = NULL;
	docs->len = docs->alloc = 0;
}
