/* Ids and references of Tyk objects (see include/tg/tykobj.h). */
#include "tg/tykobj.h"

#include <stdio.h>
#include <string.h>

#include "tg/banned.h"

static const char *nonempty(const cJSON *v)
{
	return v && cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
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
	case TG_KIND_API: return nonempty(cJSON_GetObjectItemCaseSensitive(obj, "api_id"));
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
	cJSON_ArrayForEach(e, rights)
	{
		const char *api_id = nonempty(cJSON_GetObjectItemCaseSensitive(e, "api_id"));

		if (e->string && e->string[0] && (rc = fn(ctx, e->string, e, 1)) != 0)
			return rc;
		if (api_id && (!e->string || strcmp(api_id, e->string)) &&
		    (rc = fn(ctx, api_id, e, 0)) != 0)
			return rc;
	}
	return 0;
}

static const cJSON *at(const cJSON *o, const char *a, const char *b, const char *c)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);

	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	if (c)
		v = cJSON_GetObjectItemCaseSensitive(v, c);
	return v;
}

/* The first middleware file of a classic definition, or NULL. */
static const char *middleware_file(const cJSON *api)
{
	static const char *const hooks[] = { "pre", "post", "post_key_auth", "response" };
	const cJSON *cm = cJSON_GetObjectItemCaseSensitive(api, "custom_middleware"), *e;
	const char *path = nonempty(at(cm, "auth_check", "path", NULL));

	for (size_t i = 0; !path && i < sizeof(hooks) / sizeof(hooks[0]); i++)
		cJSON_ArrayForEach(
			e,
			cJSON_GetObjectItemCaseSensitive(
				cm,
				hooks[i])) if ((path =
							nonempty(cJSON_GetObjectItemCaseSensitive(
								e, "path"))) != NULL) break;
	return path;
}

int tg_tyk_external_dependency(char *out, size_t size, enum tg_kind kind, const cJSON *body)
{
	const cJSON *gw = cJSON_GetObjectItemCaseSensitive(body, "x-tyk-api-gateway");
	const cJSON *certs = cJSON_GetObjectItemCaseSensitive(body, "certificates");
	const char *v;

	if (kind == TG_KIND_POLICY)
		return 0;
	if ((v = nonempty(cJSON_GetObjectItemCaseSensitive(body, "custom_middleware_bundle"))) ||
	    (v = nonempty(at(gw, "middleware", "global", "pluginConfig")
				  ? at(at(gw, "middleware", "global", "pluginConfig"), "bundle",
				       "path", NULL)
				  : NULL))) {
		snprintf(out, size,
			 "the plugin bundle '%.100s' (the gateway needs "
			 "enable_bundle_downloader, bundle_base_url and the bundle)",
			 v);
		return 1;
	}
	if ((v = middleware_file(body))) {
		snprintf(out, size, "the middleware file '%.100s' (it must exist on the gateway)",
			 v);
		return 1;
	}
	if (cJSON_GetArraySize(certs) > 0 && (v = nonempty(cJSON_GetArrayItem(certs, 0)))) {
		snprintf(out, size,
			 "the certificate '%.100s' by id (it must be in the gateway's "
			 "certificate store)",
			 v);
		return 1;
	}
	if (cJSON_GetArraySize(at(gw, "server", "clientCertificates", "allowlist")) > 0) {
		snprintf(out, size,
			 "client certificates by id (they must be in the gateway's "
			 "certificate store)");
		return 1;
	}
	return 0;
}
