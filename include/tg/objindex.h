/*
 * Member lookup by key for cJSON objects that may be wide.
 *
 * cJSON finds a member by walking the object's list, so checking every key
 * of an object against the others (duplicate keys while parsing, the two
 * sides of a diff) is quadratic: a 1.3 MB file holding one object of
 * 100,000 keys took a minute to validate.  An index starts as that linear
 * walk and switches to a hash table once the object has more than a few
 * members, so small objects, by far the most common, pay nothing extra.
 *
 * The index points at the object's members and their key strings; it is
 * valid while the object is not changed other than through
 * tg_objindex_added.
 */
#ifndef TG_OBJINDEX_H
#define TG_OBJINDEX_H

#include <stddef.h>

#include <cjson/cJSON.h>

struct tg_objindex {
	const cJSON *obj;
	const cJSON **slots; /* open addressing, NULL = empty; NULL until wide */
	size_t cap, members;
};

/* Starts an index of obj (which may already have members).  No allocation
 * until the object is wide. */
void tg_objindex_init(struct tg_objindex *ix, const cJSON *obj);
void tg_objindex_release(struct tg_objindex *ix);

/* The member with this key (case-sensitive, as cJSON_GetObjectItemCaseSensitive), or NULL. */
const cJSON *tg_objindex_get(struct tg_objindex *ix, const char *key);

/* item was just added to the object (its last member). */
void tg_objindex_added(struct tg_objindex *ix, const cJSON *item);

#endif
