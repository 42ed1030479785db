/* Ids and references of Tyk objects (see include/tg/tykobj.h). */
#include "tg/tykobj.h"

#include <string.h>

#include "tg/banned.h"

static const char *nonempty(const cJSON *v)
{
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

const char *tg_tyk_policy_id_field(const cJSON *policy)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(policy, "id");

	if (!nonempty(id) && cJSON_GetObjectItemCaseSensitive(policy, "_id") &&
	    (!id || cJSON_IsNull(id) || cJSON_IsString(id)))
		return "_id";
	return "id";
}

const char *tg_tyk_id(enum tg_kind kind, const cJSON *obj)
{
	const cJSON *gw;

	switch (kind) {
	case TG_KIND_API:
		return nonempty(cJSON_GetObjectItemCaseSensitive(obj, "api_id"));
	case TG_KIND_OAS_API:
		gw = cJSON_GetObjectItemCaseSensitive(obj, "x-tyk-api-gateway");
		return nonempty(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(gw, "info"), "id"));
	case TG_KIND_POLICY:
		return nonempty(cJSON_GetObjectItemCaseSensitive(obj, tg_tyk_policy_id_field(obj)));
	}
	return NULL;
}

int tg_tyk_policy_refs(const cJSON *policy, tg_tyk_ref_fn fn, void *ctx)
{
	const cJSON *rights = cJSON_GetObjectItemCaseSensitive(policy, "access_rights"), *e;
	int rc;

	if (!cJSON_IsObject(rights))
		return 0;
	cJSON_ArrayForEach(e, rights) {
		const char *api_id = nonempty(cJSON_GetObjectItemCaseSensitive(e, "api_id"));

		if (e->string && e->string[0] && (rc = fn(ctx, e->string, e, 1)) != 0)
			return rc;
		if (api_id && (!e->string || strcmp(api_id, e->string)) &&
		    (rc = fn(ctx, api_id, e, 0)) != 0)
			return rc;
	}
	return 0;
}
