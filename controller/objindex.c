/* Member lookup for wide cJSON objects (see include/tg/objindex.h). */
#include "tg/objindex.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "tg/common.h"
#include "tg/banned.h"

/* Up to this many members a linear walk beats hashing every key. */
#define LINEAR_MAX 16

/*
 * The keys come from untrusted files.  With a fixed hash, keys that collide
 * in the table's low bits can be computed offline and make every lookup a
 * long probe, quadratic again.  So the hash starts from a per-process
 * random seed and ends with a full avalanche (fmix64), which lets every bit
 * of the state, not only its low bits, reach the bits the table uses.
 */
static uint64_t seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
	if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&seed;
}

static uint64_t key_hash(const char *s)
{
	uint64_t h = seed ^ 1469598103934665603ULL; /* FNV-1a over the bytes */

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

/* Inserts without checking for a duplicate: callers index distinct keys,
 * and for a duplicate the first member stays the one found, as with cJSON. */
static void slot_put(const cJSON **slots, size_t cap, const cJSON *item)
{
	size_t i = (size_t)key_hash(item->string) & (cap - 1);

	while (slots[i]) {
		if (!strcmp(slots[i]->string, item->string))
			return;
		i = (i + 1) & (cap - 1);
	}
	slots[i] = item;
}

static void grow(struct tg_objindex *ix)
{
	size_t cap = ix->cap ? ix->cap * 2 : 4 * LINEAR_MAX;
	const cJSON **slots;

	pthread_once(&seed_once, seed_init);
	while (ix->members * 2 > cap)
		cap *= 2;
	slots = tg_xcalloc(cap, sizeof(*slots));

	/* From the object itself, so members added before the switch count. */
	for (const cJSON *c = ix->obj->child; c; c = c->next)
		if (c->string)
			slot_put(slots, cap, c);
	free(ix->slots);
	ix->slots = slots;
	ix->cap = cap;
}

void tg_objindex_init(struct tg_objindex *ix, const cJSON *obj)
{
	memset(ix, 0, sizeof(*ix));
	ix->obj = obj;
	for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next)
		ix->members++;
	if (ix->members > LINEAR_MAX)
		grow(ix);
}

void tg_objindex_release(struct tg_objindex *ix)
{
	free(ix->slots);
	memset(ix, 0, sizeof(*ix));
}

const cJSON *tg_objindex_get(struct tg_objindex *ix, const char *key)
{
	size_t i;

	if (!ix->obj)
		return NULL;
	if (!ix->slots)
		return cJSON_GetObjectItemCaseSensitive(ix->obj, key);
	i = (size_t)key_hash(key) & (ix->cap - 1);
	while (ix->slots[i]) {
		if (!strcmp(ix->slots[i]->string, key))
			return ix->slots[i];
		i = (i + 1) & (ix->cap - 1);
	}
	return NULL;
}

void tg_objindex_added(struct tg_objindex *ix, const cJSON *item)
{
	ix->members++;
	if (!ix->slots) {
		if (ix->members > LINEAR_MAX)
			grow(ix);
		return;
	}
	/* Load factor at most 1/2 keeps probe runs short. */
	if (ix->members * 2 > ix->cap)
		grow(ix);
	else
		slot_put(ix->slots, ix->cap, item);
}
