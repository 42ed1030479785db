/* Ownership/provenance marker slots (see include/tg/marker.h). */
#include "tg/marker.h"

#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/banned.h"

static const char *container_key(enum tg_kind kind)
{
	switch (kind) {
	case TG_KIND_API: return "config_data";
	case TG_KIND_POLICY: return "meta_data";
	case TG_KIND_OAS_API: return NULL; /* top level */
	}
	return NULL;
}

static const char *slot_key(enum tg_kind kind)
{
	return kind == TG_KIND_OAS_API ? TG_MARKER_OAS_KEY : TG_MARKER_KEY;
}

static const cJSON *find_slot(enum tg_kind kind, const cJSON *obj)
{
	const char *ck = container_key(kind);
	const cJSON *container = ck ? cJSON_GetObjectItemCaseSensitive(obj, ck) : obj;

	return cJSON_GetObjectItemCaseSensitive(container, slot_key(kind));
}

const char *tg_marker_get(enum tg_kind kind, const cJSON *obj, const char *field)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(find_slot(kind, obj), field);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static char *dup_field(const cJSON *slot, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(slot, name);

	return cJSON_IsString(v) ? tg_xstrdup(v->valuestring) : NULL;
}

int tg_marker_read(struct tg_marker *out, enum tg_kind kind, const cJSON *obj)
{
	const cJSON *slot = find_slot(kind, obj);

	memset(out, 0, sizeof(*out));
	if (!cJSON_IsObject(slot))
		return TG_ENOTFOUND;
	out->sync = dup_field(slot, "sync");
	out->commit = dup_field(slot, "commit");
	out->file = dup_field(slot, "file");
	out->hash = dup_field(slot, "hash");
	out->applied_at = dup_field(slot, "applied_at");
	out->drift = dup_field(slot, "drift");
	return 0;
}

static void put(cJSON *slot, const char *name, const char *value)
{
	if (value)
		cJSON_AddStringToObject(slot, name, value);
}

void tg_marker_stamp(cJSON *obj, enum tg_kind kind, const struct tg_marker *m)
{
	const char *ck = container_key(kind);
	cJSON *container = obj, *slot;

	if (ck) {
		container = cJSON_GetObjectItemCaseSensitive(obj, ck);
		if (!cJSON_IsObject(container)) {
			cJSON_DeleteItemFromObjectCaseSensitive(obj, ck);
			container = cJSON_AddObjectToObject(obj, ck);
		}
	}
	cJSON_DeleteItemFromObjectCaseSensitive(container, slot_key(kind));
	slot = cJSON_AddObjectToObject(container, slot_key(kind));
	put(slot, "sync", m->sync);
	put(slot, "commit", m->commit);
	put(slot, "file", m->file);
	put(slot, "hash", m->hash);
	put(slot, "applied_at", m->applied_at);
	put(slot, "drift", m->drift);
}

void tg_marker_strip(cJSON *obj, enum tg_kind kind)
{
	const char *ck = container_key(kind);
	cJSON *container = ck ? cJSON_GetObjectItemCaseSensitive(obj, ck) : obj;

	if (!cJSON_IsObject(container))
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(container, slot_key(kind));
	if (ck && !container->child)
		cJSON_DeleteItemFromObjectCaseSensitive(obj, ck);
}

void tg_marker_release(struct tg_marker *m)
{
	free(m->sync);
	free(m->commit);
	free(m->file);
	free(m->hash);
	free(m->applied_at);
	free(m->drift);
	memset(m, 0, sizeof(*m));
}
