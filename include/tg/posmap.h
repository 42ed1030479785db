/*
 * Where the members of a parsed document came from: a map from JSON path
 * to line and column, and the documents that carry one.  The YAML and JSON
 * readers (yaml.h, json.h) fill it; whoever reports a problem in a field
 * looks its position up.
 *
 * Paths join keys and sequence indexes with '.' ("info.id", "tags.1",
 * "access_rights.abc.api_id"), unescaped, so a key containing '.' may
 * shadow a nested path: the first position recorded for a path wins.  A
 * member's position is the position of its key; a sequence item's and the
 * root's ("") the position of the node itself.
 *
 * Cap: paths repeat every ancestor key, so a long key above many members
 * would cost its length once per member.  A file's positions may take the
 * larger of TG_POS_FLOOR and TG_POS_FACTOR times its size (real documents
 * use 3 to 12 bytes per byte); beyond that positions are not recorded and
 * lookups for them fail, so callers fall back to the nearest ancestor.
 */
#ifndef TG_POSMAP_H
#define TG_POSMAP_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/buf.h"

#define TG_POS_FACTOR 32
#define TG_POS_FLOOR ((size_t)1024 * 1024)

struct tg_pos_map; /* JSON path -> line/column, opaque */

/* One parsed document: its value and where its nodes came from. */
struct tg_doc {
	cJSON *json;            /* owned */
	int line, column;       /* start of the document */
	struct tg_pos_map *pos; /* owned */
};

struct tg_docs {
	struct tg_doc *items;
	size_t len, alloc;
};

/* Bytes the positions of a file of input_len bytes may take (see above). */
size_t tg_pos_budget(size_t input_len);

/*
 * A new, empty map drawing on *left, the position budget of its file
 * (shared by the file's documents, so it must outlive the map's filling).
 * Free with tg_pos_map_free (NULL is a no-op).
 */
struct tg_pos_map *tg_pos_map_new(size_t *left);
void tg_pos_map_free(struct tg_pos_map *map);

/* Records path[0..len) at line/column, unless the path already has a
 * position or the budget is spent.  map may be NULL (nothing recorded). */
void tg_pos_put(struct tg_pos_map *map, const char *path, size_t len, int line, int column);

/* Looks up the position of a node by dotted path.  Returns 0 and fills
 * line/column, or TG_ENOTFOUND (also for a NULL map or path). */
int tg_pos_lookup(const struct tg_pos_map *pos, const char *path, int *line, int *column);

/* Path building: appends a key (or an index) to path, with a '.' when it
 * is not empty; truncate goes back to a length saved before. */
void tg_pos_path_push(struct tg_buf *path, const char *key, size_t len);
void tg_pos_path_push_index(struct tg_buf *path, size_t index);
void tg_pos_path_truncate(struct tg_buf *path, size_t len);

/*
 * A path to name in a problem, at most TG_POS_FIELD_MAX bytes: a longer
 * one is cut at a UTF-8 boundary into buf and ends in "...".  Returns
 * field itself when it is short enough (or NULL), else buf.
 */
#define TG_POS_FIELD_MAX 256
const char *tg_pos_field_clip(const char *field, char buf[TG_POS_FIELD_MAX + 4]);

/* Appends a document; docs takes json and pos. */
void tg_docs_push(struct tg_docs *docs, cJSON *json, int line, int column, struct tg_pos_map *pos);
/* Frees every document and empties docs (NULL is a no-op). */
void tg_docs_release(struct tg_docs *docs);

#endif
