/*
 * Validation of the desired state (see include/tg/validate.h): what makes a
 * document a usable object (the fields each kind needs, ids that are safe
 * as file names and URL segments, the OAS extension's fields) and the
 * checks across the loaded set (duplicate ids, duplicate listen paths,
 * policy references).
 *
 * Problems are reported at the field they concern, or at its nearest
 * ancestor that has a position, so that `validate` points at the line to
 * fix.  An object with a problem that makes it unusable (no id, an invalid
 * id) is not added; the caller must not apply a commit with errors anyway.
 */
#include "tg/validate.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/json.h"
#include "tg/tykobj.h"
#include "tg/banned.h"

static char *vfmt(const char *fmt, va_list ap)
{
	char *s = NULL;

	if (vasprintf(&s, fmt, ap) < 0) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory formatting\"}\n");
		abort();
	}
	return s;
}

/* User values in one-line messages: no control characters, bounded length. */
char *tg_validate_printable(const char *s)
{
	size_t len = strlen(s), n = len > 80 ? 80 : len, i;
	char *out = tg_xmalloc(n + 4);

	for (i = 0; i < n; i++)
		out[i] = ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) ? '?' : s[i];
	if (len > n) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

static char *full_field(const struct tg_doc_at *c, const char *rel)
{
	if (!*c->base)
		return tg_xstrdup(rel);
	if (!*rel)
		return tg_xstrdup(c->base);
	return tg_xasprintf("%s.%s", c->base, rel);
}

/* Position of field, or of its nearest ancestor that has one. */
static void locate(const struct tg_doc_at *c, const char *field, int *line, int *column)
{
	char *tmp = tg_xstrdup(field);
	char *dot;

	for (;;) {
		if (!tg_pos_lookup(c->doc->pos, tmp, line, column))
			goto out;
		dot = strrchr(tmp, '.');
		if (!dot)
			break;
		*dot = '\0';
	}
	if (!tg_pos_lookup(c->doc->pos, "", line, column))
		goto out;
	*line = c->doc->line;
	*column = c->doc->column;
out:
	free(tmp);
}

void tg_validate_problem(const struct tg_doc_at *c, enum tg_severity sev, const char *rel_field,
			 const char *fmt, ...)
{
	char *field = full_field(c, rel_field), *msg;
	int line, column;
	va_list ap;

	locate(c, field, &line, &column);
	va_start(ap, fmt);
	msg = vfmt(fmt, ap);
	va_end(ap);
	tg_problems_add(c->problems, sev, c->file, line, column, field, "%s", msg);
	free(msg);
	free(field);
}

static void src_set(struct tg_src *src, const struct tg_doc_at *c, const char *rel_field)
{
	src->field = full_field(c, rel_field);
	locate(c, src->field, &src->line, &src->column);
}

/* obj["a"]["b"] for "a.b"; keys in these paths never contain dots. */
static cJSON *get_path(const cJSON *obj, const char *path)
{
	char key[64];
	const char *dot;
	cJSON *cur = (cJSON *)obj;

	while (cur && *path) {
		size_t n;

		dot = strchr(path, '.');
		n = dot ? (size_t)(dot - path) : strlen(path);
		if (n >= sizeof(key) || !cJSON_IsObject(cur))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		cur = cJSON_GetObjectItemCaseSensitive(cur, key);
		path += n + (dot ? 1 : 0);
	}
	return cur;
}

static const char *nonempty_string(const cJSON *v)
{
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static struct tg_object *object_push(struct tg_desired *d, const struct tg_doc_at *c,
				     enum tg_kind kind, cJSON *body)
{
	struct tg_object *o;

	if (d->len == d->alloc) {
		d->alloc = d->alloc ? d->alloc * 2 : 64;
		d->objects = tg_xreallocarray(d->objects, d->alloc, sizeof(*d->objects));
	}
	o = &d->objects[d->len++];
	memset(o, 0, sizeof(*o));
	o->kind = kind;
	o->file = tg_xstrdup(c->file);
	locate(c, c->base, &o->line, &o->column);
	o->body = body;
	return o;
}

/*
 * Ids become file names (apps/<id>.json, policies) and URL path segments
 * (/tyk/apis/<id>) on the gateway, so only characters that are safe in both
 * are accepted, and "." and ".." are refused outright.
 */
const char *tg_validate_id(const char *id, int is_api)
{
	size_t len = strlen(id), i;

	/* A file-based gateway stores an OAS API's document as <id>-oas.json
	 * and skips every *-oas.json file when it looks for definitions, so
	 * an API whose id ends in "-oas" is written but never loaded. */
	if (is_api && len >= 4 && !strcmp(id + len - 4, "-oas"))
		return "ends in '-oas', which a file-based Tyk Gateway never loads";
	if (len > TG_DESIRED_MAX_ID_LEN)
		return "longer than 255 characters";
	if (!strcmp(id, ".") || !strcmp(id, ".."))
		return "not usable as a file name";
	for (i = 0; i < len; i++) {
		char ch = id[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '~' || ch == '-'))
			return "only letters, digits, '.', '_', '~' and '-' are allowed";
	}
	return NULL;
}

/* The non-empty string at field; NULL (reported) when missing or not a string. */
static const char *require_string(const struct tg_doc_at *c, const char *field, const cJSON *v,
				  const char *what)
{
	if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0])) {
		tg_validate_problem(c, TG_SEV_ERROR, field, "missing %s", what);
		return NULL;
	}
	if (!cJSON_IsString(v)) {
		tg_validate_problem(c, TG_SEV_ERROR, field, "%s must be a string", what);
		return NULL;
	}
	return v->valuestring;
}

/* The id at field, checked; NULL (reported) when missing or invalid. */
static const char *check_id(const struct tg_doc_at *c, const char *field, const cJSON *v,
			    const char *what)
{
	const char *id = require_string(c, field, v, what), *why;
	char *p;

	if (!id)
		return NULL;
	why = tg_validate_id(id, !strcmp(what, "api id"));
	if (why) {
		p = tg_validate_printable(id);
		tg_validate_problem(c, TG_SEV_ERROR, field, "invalid %s '%s': %s", what, p, why);
		free(p);
		return NULL;
	}
	return id;
}

static char *xstrdup_or_null(const char *s)
{
	return s ? tg_xstrdup(s) : NULL;
}

/*
 * Something the API needs from the gateway's own environment (a plugin
 * bundle, a middleware file, a certificate by id): the gateway answers the
 * reload "ok" without it and skips the definition, so say so before.
 */
static void warn_external(const struct tg_doc_at *c, const struct tg_object *o)
{
	char what[256];

	if (tg_tyk_external_dependency(what, sizeof(what), o->kind, o->body))
		tg_validate_problem(c, TG_SEV_WARNING, "",
				    "needs %s: a gateway without it skips this api at reload",
				    what);
}

static void oas_api(struct tg_desired *d, const struct tg_doc_at *c, cJSON *body)
{
	const cJSON *xt = cJSON_GetObjectItemCaseSensitive(body, "x-tyk-api-gateway");
	const cJSON *openapi = cJSON_GetObjectItemCaseSensitive(body, "openapi");
	const char *id, *name, *listen;
	struct tg_object *o;
	int ok = 1;

	if (!nonempty_string(openapi)) {
		tg_validate_problem(c, TG_SEV_ERROR, "openapi", "missing openapi version");
		ok = 0;
	}
	if (!cJSON_IsObject(xt)) {
		tg_validate_problem(c, TG_SEV_ERROR, "x-tyk-api-gateway",
				    "missing tyk extension: a tyk oas api needs x-tyk-api-gateway");
		cJSON_Delete(body);
		return;
	}
	id = check_id(c, "x-tyk-api-gateway.info.id", get_path(xt, "info.id"), "api id");
	name = require_string(c, "x-tyk-api-gateway.info.name", get_path(xt, "info.name"),
			      "api name");
	listen = require_string(c, "x-tyk-api-gateway.server.listenPath.value",
				get_path(xt, "server.listenPath.value"), "listen path");
	if (!require_string(c, "x-tyk-api-gateway.upstream.url", get_path(xt, "upstream.url"),
			    "upstream url"))
		ok = 0;
	if (!id || !name || !listen || !ok) {
		cJSON_Delete(body);
		return;
	}
	o = object_push(d, c, TG_KIND_OAS_API, body);
	o->id = tg_xstrdup(id);
	o->name = tg_xstrdup(name);
	o->listen_path = tg_xstrdup(listen);
	o->domain = xstrdup_or_null(nonempty_string(get_path(xt, "server.customDomain.name")));
	src_set(&o->id_src, c, "x-tyk-api-gateway.info.id");
	src_set(&o->listen_path_src, c, "x-tyk-api-gateway.server.listenPath.value");
	warn_external(c, o);
}

static void classic_api(struct tg_desired *d, const struct tg_doc_at *c, cJSON *body)
{
	const char *id =
		check_id(c, "api_id", cJSON_GetObjectItemCaseSensitive(body, "api_id"), "api id");
	struct tg_object *o;

	if (!id) {
		cJSON_Delete(body);
		return;
	}
	o = object_push(d, c, TG_KIND_API, body);
	o->id = tg_xstrdup(id);
	o->name = xstrdup_or_null(nonempty_string(cJSON_GetObjectItemCaseSensitive(body, "name")));
	o->listen_path = xstrdup_or_null(nonempty_string(get_path(body, "proxy.listen_path")));
	o->domain =
		xstrdup_or_null(nonempty_string(cJSON_GetObjectItemCaseSensitive(body, "domain")));
	src_set(&o->id_src, c, "api_id");
	src_set(&o->listen_path_src, c, "proxy.listen_path");
	warn_external(c, o);
}

static void add_ref(struct tg_object *o, const struct tg_doc_at *c, const char *id,
		    const char *field)
{
	size_t i;

	for (i = 0; i < o->n_api_refs; i++)
		if (!strcmp(o->api_refs[i], id))
			return;
	o->api_refs = tg_xreallocarray(o->api_refs, o->n_api_refs + 1, sizeof(*o->api_refs));
	o->api_ref_srcs =
		tg_xreallocarray(o->api_ref_srcs, o->n_api_refs + 1, sizeof(*o->api_ref_srcs));
	o->api_refs[o->n_api_refs] = tg_xstrdup(id);
	src_set(&o->api_ref_srcs[o->n_api_refs], c, field);
	o->n_api_refs++;
}

struct policy_refs {
	const struct tg_doc_at *c;
	struct tg_object *o;
};

/* A reference named by an access_rights key, or by the api_id inside it. */
static int policy_ref(void *ctx, const char *api_id, const cJSON *entry, int is_key)
{
	struct policy_refs *pr = ctx;
	char *field = is_key ? tg_xasprintf("access_rights.%s", entry->string)
			     : tg_xasprintf("access_rights.%s.api_id", entry->string);

	add_ref(pr->o, pr->c, api_id, field);
	free(field);
	return 0;
}

/*
 * A file-based gateway files a policy under its "id"; Dashboard exports
 * carry the id in "_id" with an empty "id", which would be written as
 * ".json" and never loaded.  The id found is filled in.
 */
static void fill_policy_id(cJSON *body, const char *id)
{
	const cJSON *have = cJSON_GetObjectItemCaseSensitive(body, "id");

	if (cJSON_IsString(have) && have->valuestring[0])
		return;
	cJSON_DeleteItemFromObjectCaseSensitive(body, "id");
	cJSON_AddItemToObject(body, "id", tg_json_checked(cJSON_CreateString(id)));
}

void tg_validate_add_policy(struct tg_desired *d, const struct tg_doc_at *c, cJSON *body)
{
	const char *field = tg_tyk_policy_id_field(body), *id;
	const cJSON *rights = cJSON_GetObjectItemCaseSensitive(body, "access_rights");
	struct policy_refs pr = { c, NULL };

	id = check_id(c, field, cJSON_GetObjectItemCaseSensitive(body, field), "policy id");
	if (rights && !cJSON_IsNull(rights) && !cJSON_IsObject(rights)) {
		tg_validate_problem(c, TG_SEV_ERROR, "access_rights",
				    "access_rights must be an object");
		id = NULL;
	}
	if (!id) {
		cJSON_Delete(body);
		return;
	}
	fill_policy_id(body, id);
	pr.o = object_push(d, c, TG_KIND_POLICY, body);
	pr.o->id = tg_xstrdup(id);
	pr.o->name =
		xstrdup_or_null(nonempty_string(cJSON_GetObjectItemCaseSensitive(body, "name")));
	src_set(&pr.o->id_src, c, field);
	tg_tyk_policy_refs(body, policy_ref, &pr);
}

static int has(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key) != NULL;
}

void tg_validate_add_api(struct tg_desired *d, const struct tg_doc_at *c, cJSON *body)
{
	if (has(body, "openapi") || has(body, "x-tyk-api-gateway"))
		oas_api(d, c, body);
	else if (has(body, "api_id") || has(body, "proxy"))
		classic_api(d, c, body);
	else {
		tg_validate_problem(
			c, TG_SEV_ERROR, "",
			"document is neither a classic api definition (api_id) nor a tyk oas api "
			"(openapi with x-tyk-api-gateway)");
		cJSON_Delete(body);
	}
}

/* ------------------------------------------------------------------ */
/* Checks across objects.                                              */

struct ref_ent {
	const struct tg_object *o;
	size_t index;
};

static int family_of(enum tg_kind kind)
{
	return kind == TG_KIND_POLICY;
}

static int cmp_by_id(const void *va, const void *vb)
{
	const struct ref_ent *a = va, *b = vb;
	int c = family_of(a->o->kind) - family_of(b->o->kind);

	if (!c)
		c = strcmp(a->o->id, b->o->id);
	if (!c)
		c = a->index < b->index ? -1 : a->index > b->index;
	return c;
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

static int cmp_by_listen(const void *va, const void *vb)
{
	const struct ref_ent *a = va, *b = vb;
	int c = strcmp(or_empty(a->o->domain), or_empty(b->o->domain));

	if (!c)
		c = strcmp(a->o->listen_path, b->o->listen_path);
	if (!c)
		c = a->index < b->index ? -1 : a->index > b->index;
	return c;
}

static void report_at(struct tg_problems *problems, const struct tg_object *o,
		      const struct tg_src *src, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void report_at(struct tg_problems *problems, const struct tg_object *o,
		      const struct tg_src *src, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	va_start(ap, fmt);
	msg = vfmt(fmt, ap);
	va_end(ap);
	tg_problems_add(problems, TG_SEV_ERROR, o->file, src->line, src->column, src->field, "%s",
			msg);
	free(msg);
}

void tg_validate_duplicate_ids(const struct tg_desired *d, struct tg_problems *problems, char *dead)
{
	struct ref_ent *ents = NULL;
	size_t i;

	if (!d->len)
		return;
	ents = tg_xreallocarray(NULL, d->len, sizeof(*ents));
	for (i = 0; i < d->len; i++) {
		ents[i].o = &d->objects[i];
		ents[i].index = i;
	}
	qsort(ents, d->len, sizeof(*ents), cmp_by_id);
	for (i = 1; i < d->len; i++) {
		const struct tg_object *first, *o = ents[i].o;
		size_t j = i;

		while (j > 0 && family_of(ents[j - 1].o->kind) == family_of(o->kind) &&
		       !strcmp(ents[j - 1].o->id, o->id))
			j--;
		if (j == i)
			continue;
		first = ents[j].o;
		report_at(problems, o, &o->id_src,
			  "duplicate %s id '%s', first defined at %s:%d:%d",
			  o->kind == TG_KIND_POLICY ? "policy" : "api", o->id, first->file,
			  first->id_src.line, first->id_src.column);
		dead[ents[i].index] = 1;
	}
	free(ents);
}

void tg_validate_listen_paths(const struct tg_desired *d, struct tg_problems *problems)
{
	struct ref_ent *ents = NULL;
	char *lp, *dom;
	size_t i, n = 0;

	if (!d->len)
		return;
	ents = tg_xreallocarray(NULL, d->len, sizeof(*ents));
	for (i = 0; i < d->len; i++)
		if (d->objects[i].kind != TG_KIND_POLICY && d->objects[i].listen_path) {
			ents[n].o = &d->objects[i];
			ents[n].index = i;
			n++;
		}
	qsort(ents, n, sizeof(*ents), cmp_by_listen);
	for (i = 1; i < n; i++) {
		const struct tg_object *first, *o = ents[i].o;
		size_t j = i;

		while (j > 0 && !strcmp(or_empty(ents[j - 1].o->domain), or_empty(o->domain)) &&
		       !strcmp(ents[j - 1].o->listen_path, o->listen_path))
			j--;
		if (j == i)
			continue;
		first = ents[j].o;
		lp = tg_validate_printable(o->listen_path);
		dom = tg_validate_printable(or_empty(o->domain));
		if (o->domain)
			report_at(
				problems, o, &o->listen_path_src,
				"duplicate listen path '%s' on domain '%s', first used by api '%s' at %s:%d:%d",
				lp, dom, first->id, first->file, first->listen_path_src.line,
				first->listen_path_src.column);
		else
			report_at(problems, o, &o->listen_path_src,
				  "duplicate listen path '%s', first used by api '%s' at %s:%d:%d",
				  lp, first->id, first->file, first->listen_path_src.line,
				  first->listen_path_src.column);
		free(lp);
		free(dom);
	}
	free(ents);
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void tg_validate_refs(const struct tg_desired *d, const char *const *known_api_ids, size_t n_known,
		      struct tg_problems *problems)
{
	const char **ids = NULL;
	size_t n = 0, i, j;

	ids = tg_xreallocarray(NULL, d->len + n_known + 1, sizeof(*ids));
	for (i = 0; i < d->len; i++)
		if (d->objects[i].kind != TG_KIND_POLICY)
			ids[n++] = d->objects[i].id;
	for (i = 0; known_api_ids && i < n_known; i++)
		if (known_api_ids[i])
			ids[n++] = known_api_ids[i];
	qsort(ids, n, sizeof(*ids), cmp_cstr);
	for (i = 0; i < d->len; i++) {
		const struct tg_object *o = &d->objects[i];

		for (j = 0; j < o->n_api_refs; j++) {
			char *p;

			if (bsearch(&o->api_refs[j], ids, n, sizeof(*ids), cmp_cstr))
				continue;
			p = tg_validate_printable(o->api_refs[j]);
			report_at(
				problems, o, &o->api_ref_srcs[j],
				"policy '%s' grants access to unknown api '%s' (not in the repository%s)",
				o->id, p, known_api_ids ? " nor on the gateway" : "");
			free(p);
		}
	}
	free(ids);
}
