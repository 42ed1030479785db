/*
 * Desired state: a config directory to classic APIs, Tyk OAS APIs and
 * policies (see include/tg/desired.h).
 *
 * Every problem in the input is collected and loading carries on, so that
 * `validate` lists all of them at once.  An object with a problem that
 * makes it unusable (no id, invalid id, a duplicate) is left out of the
 * result; the caller must not apply a commit with errors anyway.
 *
 * Layout: files under apis/ and policies/ (recursively, hidden files and
 * directories skipped), loaded in byte order of their paths so that "first
 * defined" is stable.  A .tyk.json manifest at the root (tyk-sync) replaces
 * the scan: only the files it lists are loaded.
 *
 * Symbolic links: a repository decides what its links point at, so a link
 * could make the controller read, and publish, any file it can read.  Below
 * the trusted root (opts->root) every path is therefore opened one component
 * at a time with openat(O_NOFOLLOW), never through "..", and files are read
 * through the descriptor that was checked.  Every link is refused, even one
 * that stays inside the repository: that needs no resolving and leaves no
 * case to get wrong.  A link the directory scan meets is skipped with a
 * warning; a link on the way to something the repository asks for by name
 * (the sync path, apis/, policies/, .tyk.json and the files it lists) is an
 * error, so that a commit never silently publishes less than it says.
 *
 * Limits: files larger than TG_DESIRED_MAX_FILE_SIZE (8 MiB) are reported
 * and skipped; directories nested deeper than TG_DESIRED_MAX_DIR_DEPTH are
 * not walked; nesting is bounded by the readers (yaml.h, json.h), and so is
 * YAML alias expansion, with one budget for all the files of a load; values
 * filled in by ${VAR} are bounded relative to the size of the files too.
 */
#include "tg/desired.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg/buf.h"
#include "tg/json.h"
#include "tg/posmap.h"
#include "tg/tykobj.h"
#include "tg/yaml.h"
#include "tg/banned.h"

enum family { FAM_API, FAM_POLICY };

struct loader {
	const struct tg_load_opts *opts;
	struct tg_problems *problems;
	struct tg_desired *d;
	char *prefix;  /* root relative to repo_root, "" or "dir/" */
	size_t n_seen; /* files and documents seen, usable or not */
	int dirfd;     /* the directory holding apis/ and policies/; -1 for buffers */
	int refused;   /* the layout itself was refused: "empty" would be noise */
	struct tg_yaml_budget budget; /* alias expansion, for all files together */
	size_t input;                 /* bytes of all files read */
	size_t filled;                /* bytes of values filled in by ${VAR} */
	int fill_over;                /* filled reached its limit: reported, substitution stopped */
};

/* One document being turned into an object. */
struct docctx {
	struct loader *ld;
	const char *file; /* as shown in problems */
	const struct tg_doc *doc;
	const char *base; /* where the object sits in the document: "", "oas"... */
};

const char *tg_kind_name(enum tg_kind kind)
{
	switch (kind) {
	case TG_KIND_API: return "api";
	case TG_KIND_OAS_API: return "oas";
	case TG_KIND_POLICY: return "policy";
	}
	return "unknown";
}

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
static char *printable(const char *s)
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

static char *full_field(const struct docctx *c, const char *rel)
{
	if (!*c->base)
		return tg_xstrdup(rel);
	if (!*rel)
		return tg_xstrdup(c->base);
	return tg_xasprintf("%s.%s", c->base, rel);
}

/* Position of field, or of its nearest ancestor that has one. */
static void locate(const struct docctx *c, const char *field, int *line, int *column)
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

static void doc_problem(const struct docctx *c, enum tg_severity sev, const char *rel_field,
			const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void doc_problem(const struct docctx *c, enum tg_severity sev, const char *rel_field,
			const char *fmt, ...)
{
	char *field = full_field(c, rel_field), *msg;
	int line, column;
	va_list ap;

	locate(c, field, &line, &column);
	va_start(ap, fmt);
	msg = vfmt(fmt, ap);
	va_end(ap);
	tg_problems_add(c->ld->problems, sev, c->file, line, column, field, "%s", msg);
	free(msg);
	free(field);
}

static void src_set(struct tg_src *src, const struct docctx *c, const char *rel_field)
{
	src->field = full_field(c, rel_field);
	locate(c, src->field, &src->line, &src->column);
}

static void src_release(struct tg_src *src)
{
	free(src->field);
	src->field = NULL;
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

/* ------------------------------------------------------------------ */
/* ${VAR} substitution.                                                */

static void add_secret(struct tg_desired *d, const char *value)
{
	size_t i;

	for (i = 0; i < d->n_secrets; i++)
		if (!strcmp(d->secrets[i], value))
			return;
	d->secrets = tg_xreallocarray(d->secrets, d->n_secrets + 1, sizeof(*d->secrets));
	d->secrets[d->n_secrets++] = tg_xstrdup(value);
}

static const char *default_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return getenv(name);
}

static int valid_var_name(const char *s, size_t len)
{
	size_t i;

	if (!len || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (i = 0; i < len; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_'))
			return 0;
	}
	return 1;
}

/* The value of name (owned, wipe with tg_secret_free) or NULL when unset. */
static char *lookup_var(const struct docctx *c, const char *name, const char *field)
{
	const struct tg_load_opts *opts = c->ld->opts;
	tg_getenv_fn fn = opts->getenv_fn ? opts->getenv_fn : default_getenv;
	const char *v = fn(name, opts->getenv_ctx);
	struct tg_err err = { 0, "" };
	char *path = NULL, *value = NULL;
	int rc;

	if (v)
		return tg_xstrdup(v);
	if (!opts->secrets_dir)
		return NULL;
	/* name is [A-Za-z_][A-Za-z0-9_]*, so it cannot leave secrets_dir. */
	path = tg_xasprintf("%s/%s", opts->secrets_dir, name);
	rc = tg_read_secret_file(&value, path, &err);
	if (rc && rc != TG_ENOTFOUND)
		doc_problem(c, TG_SEV_ERROR, field, "cannot read secret for '%s': %s", name,
			    err.msg);
	free(path);
	return rc ? NULL : value;
}

/*
 * What ${VAR} may fill in, relative to the input like alias expansion: a
 * short reference to a long secret (a certificate, 64 KiB from secrets_dir)
 * repeated through a file would otherwise multiply it without bound.
 */
static size_t fill_limit(const struct loader *ld)
{
	size_t n;

	if (__builtin_mul_overflow(ld->input, (size_t)TG_DESIRED_FILL_FACTOR, &n))
		return SIZE_MAX;
	return n > TG_DESIRED_FILL_FLOOR ? n : TG_DESIRED_FILL_FLOOR;
}

/* 0, or -1 (reported, once) when value_len more bytes cross the limit. */
static int fill_charge(const struct docctx *c, size_t value_len, const char *field)
{
	struct loader *ld = c->ld;
	size_t filled;

	if (!ld->fill_over && !__builtin_add_overflow(ld->filled, value_len, &filled) &&
	    filled <= fill_limit(ld)) {
		ld->filled = filled;
		return 0;
	}
	if (!ld->fill_over)
		doc_problem(
			c, TG_SEV_ERROR, field,
			"values filled in by '${...}' add up to more than %zu bytes (the limit: %d "
			"times the %zu bytes of the files, at least %zu MiB)",
			fill_limit(ld), TG_DESIRED_FILL_FACTOR, ld->input,
			TG_DESIRED_FILL_FLOOR / (1024 * 1024));
	ld->fill_over = 1;
	return -1;
}

/*
 * Expands ${VAR}, ${VAR:-default} and $${ (a literal "${") in s.  Shell
 * semantics for the default: used when VAR is unset or empty.  A default
 * ends at the first '}', so defaults cannot nest, and substituted values
 * are not expanded again.  Values from the environment or secret files go
 * into d->secrets; defaults do not, since they are written in the
 * repository and redacting short ones ("80", "true") would garble logs.
 * Once the values filled in reach fill_limit, nothing more is looked up.
 * Returns the new string (wipe with tg_secret_free), or NULL when nothing
 * changed or on an error (reported).
 */
static char *expand(const struct docctx *c, const char *s, const char *field)
{
	struct tg_buf b;
	int changed = 0, bad = 0;

	tg_buf_init(&b, 0);
	tg_buf_put(&b, "", 0);
	while (*s) {
		const char *end, *name, *def = NULL, *colon;
		size_t name_len, def_len = 0;
		char *nm, *value;

		if (s[0] == '$' && s[1] == '$' && s[2] == '{') {
			tg_buf_put(&b, "${", 2);
			s += 3;
			changed = 1;
			continue;
		}
		if (s[0] != '$' || s[1] != '{') {
			tg_buf_put(&b, s, 1);
			s++;
			continue;
		}
		changed = 1;
		if (c->ld->fill_over) {
			bad = 1;
			break;
		}
		name = s + 2;
		end = strchr(name, '}');
		if (!end) {
			doc_problem(c, TG_SEV_ERROR, field,
				    "unterminated '${' (write '$${' for a literal '${')");
			bad = 1;
			break;
		}
		colon = memmem(name, (size_t)(end - name), ":-", 2);
		name_len = (size_t)((colon ? colon : end) - name);
		if (colon) {
			def = colon + 2;
			def_len = (size_t)(end - def);
		}
		s = end + 1;
		nm = tg_xstrndup(name, name_len);
		if (!valid_var_name(name, name_len)) {
			char *p = printable(nm);

			doc_problem(c, TG_SEV_ERROR, field,
				    "invalid variable name '%s' in '${...}'", p);
			free(p);
			free(nm);
			bad = 1;
			continue;
		}
		value = lookup_var(c, nm, field);
		if ((!value || !*value) && def) {
			tg_buf_put(&b, def, def_len);
		} else if (!value) {
			doc_problem(c, TG_SEV_ERROR, field,
				    "variable '%s' is not set and has no default", nm);
			bad = 1;
		} else if (fill_charge(c, strlen(value), field)) {
			bad = 1;
		} else {
			tg_buf_puts(&b, value);
			if (*value)
				add_secret(c->ld->d, value);
		}
		tg_secret_free(value);
		free(nm);
	}
	if (bad || !changed) {
		if (b.ptr)
			tg_secret_free(tg_buf_detach(&b));
		return NULL;
	}
	return tg_buf_detach(&b);
}

static void subst_walk(const struct docctx *c, cJSON *node, struct tg_buf *path)
{
	size_t saved = path->len, i = 0;
	cJSON *child;

	if (cJSON_IsString(node) && strstr(node->valuestring, "${")) {
		char *v;

		c->ld->d->used_vars = 1;
		v = expand(c, node->valuestring, path->ptr);

		if (v) {
			/* Relative to c->base, which doc_problem adds back. */
			cJSON_SetValuestring(node, v);
			tg_secret_free(v);
		}
		return;
	}
	for (child = node->child; child; child = child->next, i++) {
		if (cJSON_IsObject(node))
			tg_pos_path_push(path, child->string, strlen(child->string));
		else
			tg_pos_path_push_index(path, i);
		subst_walk(c, child, path);
		tg_pos_path_truncate(path, saved);
	}
}

/* ------------------------------------------------------------------ */
/* Objects.                                                            */

static void object_release(struct tg_object *o)
{
	size_t i;

	free(o->id);
	free(o->name);
	free(o->file);
	cJSON_Delete(o->body);
	free(o->listen_path);
	free(o->domain);
	for (i = 0; i < o->n_api_refs; i++) {
		free(o->api_refs[i]);
		if (o->api_ref_srcs)
			src_release(&o->api_ref_srcs[i]);
	}
	free(o->api_refs);
	free(o->api_ref_srcs);
	src_release(&o->id_src);
	src_release(&o->listen_path_src);
	tg_pos_map_free(o->pos);
	free(o->pos_base);
}

static struct tg_object *object_push(struct tg_desired *d, const struct docctx *c,
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
static const char *id_problem(const char *id, int is_api)
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
static const char *require_string(const struct docctx *c, const char *field, const cJSON *v,
				  const char *what)
{
	if (!v || cJSON_IsNull(v) || (cJSON_IsString(v) && !v->valuestring[0])) {
		doc_problem(c, TG_SEV_ERROR, field, "missing %s", what);
		return NULL;
	}
	if (!cJSON_IsString(v)) {
		doc_problem(c, TG_SEV_ERROR, field, "%s must be a string", what);
		return NULL;
	}
	return v->valuestring;
}

/* The id at field, checked; NULL (reported) when missing or invalid. */
static const char *check_id(const struct docctx *c, const char *field, const cJSON *v,
			    const char *what)
{
	const char *id = require_string(c, field, v, what), *why;
	char *p;

	if (!id)
		return NULL;
	why = id_problem(id, !strcmp(what, "api id"));
	if (why) {
		p = printable(id);
		doc_problem(c, TG_SEV_ERROR, field, "invalid %s '%s': %s", what, p, why);
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
static void warn_external(const struct docctx *c, const struct tg_object *o)
{
	char what[256];

	if (tg_tyk_external_dependency(what, sizeof(what), o->kind, o->body))
		doc_problem(c, TG_SEV_WARNING, "",
			    "needs %s: a gateway without it skips this api at reload", what);
}

static void oas_api(const struct docctx *c, cJSON *body)
{
	const cJSON *xt = cJSON_GetObjectItemCaseSensitive(body, "x-tyk-api-gateway");
	const cJSON *openapi = cJSON_GetObjectItemCaseSensitive(body, "openapi");
	const char *id, *name, *listen;
	struct tg_object *o;
	int ok = 1;

	if (!nonempty_string(openapi)) {
		doc_problem(c, TG_SEV_ERROR, "openapi", "missing openapi version");
		ok = 0;
	}
	if (!cJSON_IsObject(xt)) {
		doc_problem(c, TG_SEV_ERROR, "x-tyk-api-gateway",
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
	o = object_push(c->ld->d, c, TG_KIND_OAS_API, body);
	o->id = tg_xstrdup(id);
	o->name = tg_xstrdup(name);
	o->listen_path = tg_xstrdup(listen);
	o->domain = xstrdup_or_null(nonempty_string(get_path(xt, "server.customDomain.name")));
	src_set(&o->id_src, c, "x-tyk-api-gateway.info.id");
	src_set(&o->listen_path_src, c, "x-tyk-api-gateway.server.listenPath.value");
	warn_external(c, o);
}

static void classic_api(const struct docctx *c, cJSON *body)
{
	const char *id =
		check_id(c, "api_id", cJSON_GetObjectItemCaseSensitive(body, "api_id"), "api id");
	struct tg_object *o;

	if (!id) {
		cJSON_Delete(body);
		return;
	}
	o = object_push(c->ld->d, c, TG_KIND_API, body);
	o->id = tg_xstrdup(id);
	o->name = xstrdup_or_null(nonempty_string(cJSON_GetObjectItemCaseSensitive(body, "name")));
	o->listen_path = xstrdup_or_null(nonempty_string(get_path(body, "proxy.listen_path")));
	o->domain =
		xstrdup_or_null(nonempty_string(cJSON_GetObjectItemCaseSensitive(body, "domain")));
	src_set(&o->id_src, c, "api_id");
	src_set(&o->listen_path_src, c, "proxy.listen_path");
	warn_external(c, o);
}

static void add_ref(struct tg_object *o, const struct docctx *c, const char *id, const char *field)
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
	const struct docctx *c;
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

static void policy(const struct docctx *c, cJSON *body)
{
	const char *field = tg_tyk_policy_id_field(body), *id;
	const cJSON *rights = cJSON_GetObjectItemCaseSensitive(body, "access_rights");
	struct policy_refs pr = { c, NULL };

	id = check_id(c, field, cJSON_GetObjectItemCaseSensitive(body, field), "policy id");
	if (rights && !cJSON_IsNull(rights) && !cJSON_IsObject(rights)) {
		doc_problem(c, TG_SEV_ERROR, "access_rights", "access_rights must be an object");
		id = NULL;
	}
	if (!id) {
		cJSON_Delete(body);
		return;
	}
	pr.o = object_push(c->ld->d, c, TG_KIND_POLICY, body);
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

static void handle_doc(struct loader *ld, const char *file, struct tg_doc *doc, enum family fam,
		       int may_subst)
{
	struct docctx c = { ld, file, doc, "" };
	cJSON *root = doc->json, *body, *ad, *oas;
	struct tg_buf path;
	size_t n_before;

	if (!root || cJSON_IsNull(root))
		return; /* an empty YAML document, e.g. after a trailing '---' */
	ld->n_seen++;
	if (!cJSON_IsObject(root)) {
		doc_problem(&c, TG_SEV_ERROR, "", "document is not an object");
		return;
	}
	body = root;
	if (fam == FAM_API && !has(root, "api_id") && !has(root, "openapi")) {
		/* Dashboard export wrappers, as written by tyk-sync dump. */
		ad = cJSON_GetObjectItemCaseSensitive(root, "api_definition");
		oas = cJSON_GetObjectItemCaseSensitive(root, "oas");
		if (cJSON_IsObject(oas)) {
			body = oas;
			c.base = "oas";
		} else if (cJSON_IsObject(ad)) {
			body = ad;
			c.base = "api_definition";
		}
	}
	if (body == root)
		doc->json = NULL;
	else
		cJSON_DetachItemViaPointer(root, body);

	if (may_subst) {
		tg_buf_init(&path, 0);
		tg_buf_put(&path, "", 0);
		subst_walk(&c, body, &path);
		tg_buf_release(&path);
	}

	n_before = ld->d->len;
	if (fam == FAM_POLICY)
		policy(&c, body);
	else if (has(body, "openapi") || has(body, "x-tyk-api-gateway"))
		oas_api(&c, body);
	else if (has(body, "api_id") || has(body, "proxy"))
		classic_api(&c, body);
	else {
		doc_problem(
			&c, TG_SEV_ERROR, "",
			"document is neither a classic api definition (api_id) nor a tyk oas api "
			"(openapi with x-tyk-api-gateway)");
		cJSON_Delete(body);
	}
	/* Rules report at the offending field, after loading: the object
	 * takes its document's positions over. */
	if (ld->opts->keep_positions && ld->d->len > n_before) {
		struct tg_object *o = &ld->d->objects[ld->d->len - 1];

		o->pos = doc->pos;
		doc->pos = NULL;
		o->pos_base = tg_xstrdup(c.base);
	}
}

void tg_object_locate(const struct tg_object *o, const char *field, int *line, int *column)
{
	char *tmp;
	char *dot;

	*line = o->line;
	*column = o->column;
	if (!o->pos || !field)
		return;
	tmp = o->pos_base && *o->pos_base ? tg_xasprintf("%s.%s", o->pos_base, field)
					  : tg_xstrdup(field);
	/* The nearest ancestor that has a position: a missing field is
	 * reported where it should have been. */
	for (;;) {
		if (!tg_pos_lookup(o->pos, tmp, line, column))
			break;
		dot = strrchr(tmp, '.');
		if (!dot) {
			*line = o->line;
			*column = o->column;
			break;
		}
		*dot = '\0';
	}
	free(tmp);
}

static int has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static int known_extension(const char *name)
{
	return has_suffix(name, ".json") || has_suffix(name, ".yaml") || has_suffix(name, ".yml");
}

static void load_data(struct loader *ld, const char *file, const char *data, size_t len,
		      enum family fam)
{
	struct tg_docs docs = { NULL, 0, 0 };
	/* A string value can hold "${" only when the file does, or spells it
	 * with an escape (JSON "\u0024", YAML "\x24", a YAML escaped line
	 * break): without either, no walk building a path per node. */
	int may_subst = memmem(data, len, "${", 2) || memchr(data, '\\', len);
	size_t i;

	ld->n_seen++;
	if (__builtin_add_overflow(ld->input, len, &ld->input))
		ld->input = SIZE_MAX;
	if (has_suffix(file, ".json"))
		tg_json_parse(&docs, data, len, file, ld->problems);
	else
		tg_yaml_parse_budgeted(&docs, &ld->budget, data, len, file, ld->problems);
	for (i = 0; i < docs.len; i++)
		handle_doc(ld, file, &docs.items[i], fam, may_subst);
	tg_docs_release(&docs);
}

/* ------------------------------------------------------------------ */
/* Files below the root, without following links.                     */

#define LINK_REFUSED "links are not followed: they could point outside the repository"

/* The next path component at or after s ("" and "." skipped), or NULL. */
static const char *next_component(const char *s, size_t *n)
{
	for (;;) {
		while (*s == '/')
			s++;
		if (!*s)
			return NULL;
		*n = strcspn(s, "/");
		if (*n != 1 || s[0] != '.')
			return s;
		s++;
	}
}

static int is_link_at(int dirfd, const char *name)
{
	struct stat st;

	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/*
 * Opens rel below dirfd, one component at a time, refusing symbolic links
 * and "..": a directory when want_dir, else anything that is not a link
 * (the caller checks that it is a regular file; O_NONBLOCK keeps a FIFO from
 * blocking the open).  Returns a descriptor, or a negative code with the
 * reason in err: TG_ENOTFOUND when something is missing, TG_EINVALID for a
 * link or "..", TG_ERROR otherwise.  shown prefixes rel in messages.
 */
static int open_below(int dirfd, const char *rel, int want_dir, const char *shown,
		      struct tg_err *err)
{
	const char *c, *next;
	size_t n, next_n = 0;
	int cur = dirfd, fd, rc = TG_ERROR;
	char *name = NULL;

	c = next_component(rel, &n);
	if (!c) {
		if (!want_dir)
			return tg_err_set(err, TG_EINVALID, "not a file");
		fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return tg_err_set(err, TG_ERROR, "%s", strerror(errno));
		return fd;
	}
	for (; c; c = next, n = next_n) {
		int flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;

		next = next_component(c + n, &next_n);
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			rc = tg_err_set(err, TG_EINVALID, "'..' would leave the repository");
			goto fail;
		}
		flags |= next || want_dir ? O_DIRECTORY : O_NONBLOCK;
		name = tg_xstrndup(c, n);
		fd = openat(cur, name, flags);
		if (fd < 0) {
			int e = errno;

			if ((e == ELOOP || e == ENOTDIR || e == EMLINK) && is_link_at(cur, name))
				rc = tg_err_set(err, TG_EINVALID,
						"'%s%.*s' is a symbolic link (%s)", shown,
						(int)(c + n - rel), rel, LINK_REFUSED);
			else
				rc = tg_err_set(err, e == ENOENT ? TG_ENOTFOUND : TG_ERROR, "%s",
						strerror(e));
			goto fail;
		}
		free(name);
		name = NULL;
		if (cur != dirfd)
			close(cur);
		cur = fd;
	}
	return cur;
fail:
	free(name);
	if (cur != dirfd)
		close(cur);
	return rc;
}

/* Reads the regular file open on fd (closed here) into *out; err holds a
 * whole message for the file. */
static int read_fd(int fd, char **out, size_t *out_len, struct tg_err *err)
{
	struct stat st;
	char *data = NULL;
	size_t len = 0, want;
	int rc = TG_ERROR;

	if (fstat(fd, &st) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot read file: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = tg_err_set(err, TG_EINVALID, "cannot read file: not a regular file");
		goto out;
	}
	if ((unsigned long long)st.st_size > TG_DESIRED_MAX_FILE_SIZE) {
		rc = tg_err_set(err, TG_EINVALID, "file is larger than the %zu MiB limit",
				TG_DESIRED_MAX_FILE_SIZE / (1024 * 1024));
		goto out;
	}
	/* The size checked is the size read: a file that grows is cut there. */
	want = (size_t)st.st_size;
	data = tg_xmalloc(want + 1);
	while (len < want) {
		ssize_t r = read(fd, data + len, want - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = tg_err_set(err, TG_ERROR, "cannot read file: %s", strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	data[len] = '\0';
	*out = data;
	*out_len = len;
	data = NULL;
	rc = 0;
out:
	free(data);
	close(fd);
	return rc;
}

/* Reads the file open on fd (closed here), rel relative to the root;
 * problems are reported at the file. */
static void load_fd(struct loader *ld, int fd, const char *rel, enum family fam)
{
	struct tg_err err = { 0, "" };
	char *file = tg_xasprintf("%s%s", ld->prefix, rel), *data = NULL;
	size_t len = 0;

	if (read_fd(fd, &data, &len, &err))
		tg_problems_add(ld->problems, TG_SEV_ERROR, file, 0, 0, NULL, "%s", err.msg);
	else
		load_data(ld, file, data, len, fam);
	free(data);
	free(file);
}

/* Opens rel without following links and loads it. */
static void load_path(struct loader *ld, const char *rel, enum family fam)
{
	struct tg_err err = { 0, "" };
	int fd = open_below(ld->dirfd, rel, 0, ld->prefix, &err);
	char *file;

	if (fd >= 0) {
		load_fd(ld, fd, rel, fam);
		return;
	}
	file = tg_xasprintf("%s%s", ld->prefix, rel);
	tg_problems_add(ld->problems, TG_SEV_ERROR, file, 0, 0, NULL, "cannot read file: %s",
			err.msg);
	free(file);
}

struct strvec {
	char **v;
	size_t n, alloc;
};

static void strvec_push(struct strvec *sv, char *s)
{
	if (sv->n == sv->alloc) {
		sv->alloc = sv->alloc ? sv->alloc * 2 : 64;
		sv->v = tg_xreallocarray(sv->v, sv->alloc, sizeof(*sv->v));
	}
	sv->v[sv->n++] = s;
}

static void strvec_release(struct strvec *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Walks the directory open on fd (closed here); rel is its path from the root. */
static void scan_dir(struct loader *ld, int fd, const char *rel, int depth, struct strvec *files)
{
	DIR *dir = NULL;
	struct dirent *de;
	char *shown = tg_xasprintf("%s%s", ld->prefix, rel);

	if (depth > TG_DESIRED_MAX_DIR_DEPTH) {
		tg_problems_add(ld->problems, TG_SEV_WARNING, shown, 0, 0, NULL,
				"directory nested deeper than %d levels is not read",
				TG_DESIRED_MAX_DIR_DEPTH);
		close(fd);
		goto out;
	}
	dir = fdopendir(fd);
	if (!dir) {
		tg_problems_add(ld->problems, TG_SEV_ERROR, shown, 0, 0, NULL,
				"cannot read directory: %s", strerror(errno));
		close(fd);
		goto out;
	}
	while ((de = readdir(dir))) {
		char *child, *child_shown;
		struct stat st;
		int cfd;

		/* ".", "..", and hidden files such as .gitkeep */
		if (de->d_name[0] == '.')
			continue;
		child = tg_xasprintf("%s/%s", rel, de->d_name);
		child_shown = tg_xasprintf("%s%s", ld->prefix, child);
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			tg_problems_add(ld->problems, TG_SEV_ERROR, child_shown, 0, 0, NULL,
					"cannot read file: %s", strerror(errno));
			free(child);
		} else if (S_ISLNK(st.st_mode)) {
			tg_problems_add(ld->problems, TG_SEV_WARNING, child_shown, 0, 0, NULL,
					"ignoring symbolic link");
			free(child);
		} else if (S_ISDIR(st.st_mode)) {
			/* O_NOFOLLOW again: the entry may have changed since fstatat. */
			cfd = openat(dirfd(dir), de->d_name,
				     O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (cfd < 0)
				tg_problems_add(ld->problems, TG_SEV_ERROR, child_shown, 0, 0, NULL,
						"cannot read directory: %s", strerror(errno));
			else
				scan_dir(ld, cfd, child, depth + 1, files);
			free(child);
		} else if (S_ISREG(st.st_mode) && known_extension(de->d_name)) {
			strvec_push(files, child);
		} else {
			tg_problems_add(ld->problems, TG_SEV_WARNING, child_shown, 0, 0, NULL,
					"ignoring file: not .json, .yaml or .yml");
			free(child);
		}
		free(child_shown);
	}
out:
	if (dir)
		closedir(dir);
	free(shown);
}

/* apis/ or policies/: missing is fine, a link is not (the repository asked
 * for that directory by its layout). */
static void scan_top(struct loader *ld, const char *name, struct strvec *files)
{
	struct tg_err err = { 0, "" };
	int fd = open_below(ld->dirfd, name, 1, ld->prefix, &err);
	char *shown;

	if (fd >= 0) {
		scan_dir(ld, fd, name, 0, files);
		return;
	}
	if (fd == TG_ENOTFOUND)
		return;
	shown = tg_xasprintf("%s%s", ld->prefix, name);
	tg_problems_add(ld->problems, TG_SEV_ERROR, shown, 0, 0, NULL, "cannot read directory: %s",
			err.msg);
	free(shown);
	if (fd == TG_EINVALID)
		ld->refused = 1;
}

static int path_escapes(const char *p)
{
	const char *s = p;

	if (p[0] == '/')
		return 1;
	while (*s) {
		size_t n = strcspn(s, "/");

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return 1;
		s += n;
		if (*s == '/')
			s++;
	}
	return 0;
}

/* One file named by the manifest: lists[list] entry index. */
struct listed {
	const char *name; /* as written; NULL when missing */
	size_t list, index;
	int usable;                 /* named, and inside the repository */
	int loaded;                 /* opened: a repeat is not read again */
	const struct listed *first; /* an earlier entry naming the same file, or NULL */
};

/*
 * Orders names by their components, so that names of one file compare
 * equal: "./apis//a.json" and "apis/a.json".
 */
static int cmp_names(const char *a, const char *b)
{
	const char *ca, *cb;
	size_t na = 0, nb = 0;
	int c;

	ca = next_component(a, &na);
	cb = next_component(b, &nb);
	while (ca && cb) {
		c = memcmp(ca, cb, na < nb ? na : nb);
		if (c || na != nb)
			return c ? c : (na > nb) - (na < nb);
		ca = next_component(ca + na, &na);
		cb = next_component(cb + nb, &nb);
	}
	return !!ca - !!cb;
}

static int cmp_listed(const void *va, const void *vb)
{
	const struct listed *a = *(struct listed *const *)va;
	const struct listed *b = *(struct listed *const *)vb;
	int c = cmp_names(a->name, b->name);

	return c ? c : (a > b) - (a < b); /* the earlier entry first */
}

/*
 * Marks every entry that names a file an earlier entry names too: tyk-sync
 * accepts a manifest that lists a file twice, and loading it twice would
 * make its objects duplicates of themselves.  Sorted, so that a manifest of
 * many entries costs n log n.
 */
static void mark_repeated(struct listed *v, size_t n)
{
	struct listed **by_name = tg_xreallocarray(NULL, n ? n : 1, sizeof(*by_name));
	size_t i, m = 0;

	for (i = 0; i < n; i++)
		if (v[i].usable)
			by_name[m++] = &v[i];
	if (m)
		qsort(by_name, m, sizeof(*by_name), cmp_listed);
	for (i = 1; i < m; i++)
		if (!cmp_names(by_name[i - 1]->name, by_name[i]->name))
			by_name[i]->first =
				by_name[i - 1]->first ? by_name[i - 1]->first : by_name[i - 1];
	free(by_name);
}

/*
 * tyk-sync's .tyk.json: {"files":[{"file":...}],"policies":[{"file":...}]}.
 * Every file it lists is loaded once, in the order listed; a repeated
 * entry is a warning.  (An entry whose file could not be opened is not
 * loaded: a repeat of it gets the same error, at its own place.)
 */
static void load_manifest(struct loader *ld, const char *data, size_t len)
{
	static const struct {
		const char *key;
		enum family fam;
	} lists[] = { { "files", FAM_API }, { "oas", FAM_API }, { "policies", FAM_POLICY } };
	struct tg_docs docs = { NULL, 0, 0 };
	char *file = tg_xasprintf("%s.tyk.json", ld->prefix);
	struct docctx c = { ld, file, NULL, "" };
	struct listed *v = NULL;
	size_t n = 0, alloc = 0, l, i;
	const cJSON *root;

	if (tg_json_parse(&docs, data, len, file, ld->problems) || !docs.len)
		goto out;
	c.doc = &docs.items[0];
	root = docs.items[0].json;
	if (!cJSON_IsObject(root)) {
		doc_problem(&c, TG_SEV_ERROR, "", "manifest is not an object");
		goto out;
	}
	for (l = 0; l < TG_ARRAY_SIZE(lists); l++) {
		const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, lists[l].key), *e;

		if (!list || cJSON_IsNull(list))
			continue;
		if (!cJSON_IsArray(list)) {
			doc_problem(&c, TG_SEV_ERROR, lists[l].key, "%s must be a list",
				    lists[l].key);
			continue;
		}
		i = 0;
		for (e = list->child; e; e = e->next, i++) {
			struct listed *it;

			if (n == alloc) {
				alloc = alloc ? alloc * 2 : 16;
				v = tg_xreallocarray(v, alloc, sizeof(*v));
			}
			it = &v[n++];
			it->name = nonempty_string(cJSON_GetObjectItemCaseSensitive(e, "file"));
			it->list = l;
			it->index = i;
			it->usable = it->name && !path_escapes(it->name);
			it->loaded = 0;
			it->first = NULL;
		}
	}
	mark_repeated(v, n);
	for (i = 0; i < n; i++) {
		struct listed *it = &v[i];
		char *field = tg_xasprintf("%s.%zu.file", lists[it->list].key, it->index);
		char *p = it->name ? printable(it->name) : NULL;
		struct tg_err err = { 0, "" };
		int fd;

		if (!it->name) {
			doc_problem(&c, TG_SEV_ERROR, field, "missing file name");
		} else if (!it->usable) {
			doc_problem(&c, TG_SEV_ERROR, field, "path '%s' leaves the repository", p);
		} else if (it->first && it->first->loaded) {
			doc_problem(
				&c, TG_SEV_WARNING, field,
				"'%s' is listed more than once (first at %s.%zu.file): loaded once",
				p, lists[it->first->list].key, it->first->index);
		} else if ((fd = open_below(ld->dirfd, it->name, 0, ld->prefix, &err)) < 0) {
			doc_problem(&c, TG_SEV_ERROR, field, "cannot read '%s': %s", p, err.msg);
		} else {
			load_fd(ld, fd, it->name, lists[it->list].fam);
			it->loaded = 1;
		}
		free(p);
		free(field);
	}
out:
	free(v);
	tg_docs_release(&docs);
	free(file);
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

static void check_duplicates(struct loader *ld)
{
	struct tg_desired *d = ld->d;
	struct ref_ent *ents = NULL;
	char *dead = NULL, *lp, *dom;
	size_t i, n = 0, w;

	if (!d->len)
		return;
	ents = tg_xreallocarray(NULL, d->len, sizeof(*ents));
	dead = tg_xcalloc(d->len, 1);
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
		report_at(ld->problems, o, &o->id_src,
			  "duplicate %s id '%s', first defined at %s:%d:%d",
			  o->kind == TG_KIND_POLICY ? "policy" : "api", o->id, first->file,
			  first->id_src.line, first->id_src.column);
		dead[ents[i].index] = 1;
	}
	/* Drop second occurrences so that lookups find the first one. */
	for (i = w = 0; i < d->len; i++) {
		if (dead[i])
			object_release(&d->objects[i]);
		else
			d->objects[w++] = d->objects[i];
	}
	d->len = w;

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
		lp = printable(o->listen_path);
		dom = printable(or_empty(o->domain));
		if (o->domain)
			report_at(
				ld->problems, o, &o->listen_path_src,
				"duplicate listen path '%s' on domain '%s', first used by api '%s' at %s:%d:%d",
				lp, dom, first->id, first->file, first->listen_path_src.line,
				first->listen_path_src.column);
		else
			report_at(ld->problems, o, &o->listen_path_src,
				  "duplicate listen path '%s', first used by api '%s' at %s:%d:%d",
				  lp, first->id, first->file, first->listen_path_src.line,
				  first->listen_path_src.column);
		free(lp);
		free(dom);
	}
	free(dead);
	free(ents);
}

static void finish(struct loader *ld)
{
	check_duplicates(ld);
	/* Broken files already have problems of their own: only a repository
	 * with nothing in it at all is reported as empty. */
	if (!ld->n_seen && !ld->refused && !ld->opts->allow_empty)
		tg_problems_add(
			ld->problems, TG_SEV_ERROR, NULL, 0, 0, NULL,
			"no apis or policies found (expected files under apis/ and policies/)");
}

static char *make_prefix(const char *root, const char *repo_root)
{
	size_t n, m;

	if (!root || !repo_root)
		return tg_xstrdup("");
	n = strlen(repo_root);
	while (n > 1 && repo_root[n - 1] == '/')
		n--;
	if (strncmp(root, repo_root, n) || root[n] != '/')
		return tg_xstrdup("");
	root += n;
	while (*root == '/')
		root++;
	m = strlen(root);
	while (m > 0 && root[m - 1] == '/')
		m--;
	if (!m)
		return tg_xstrdup("");
	return tg_xasprintf("%.*s/", (int)m, root);
}

static int has_dotdot(const char *p)
{
	const char *c;
	size_t n;

	for (c = next_component(p, &n); c; c = next_component(c + n, &n))
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return 1;
	return 0;
}

/*
 * The directory to load from: opts->root, trusted and opened as it is, then
 * opts->path below it, which the repository controls.  Returns a descriptor,
 * or a negative code: with err set when loading cannot start, or
 * TG_EINVALID with a problem added when the repository makes the path a
 * link (loading reports that and nothing else).
 */
static int open_load_dir(struct loader *ld, const char *dir, struct tg_err *err)
{
	const struct tg_load_opts *opts = ld->opts;
	struct tg_err ferr = { 0, "" };
	size_t n;
	int top, fd, e;

	top = open(opts->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (top < 0) {
		e = errno;
		if (e == ENOTDIR)
			return tg_err_set(err, TG_ENOTFOUND, "cannot open '%s': not a directory",
					  dir);
		return tg_err_set(err, e == ENOENT ? TG_ENOTFOUND : TG_ERROR,
				  "cannot open '%s': %s", dir, strerror(e));
	}
	if (!opts->path || !next_component(opts->path, &n))
		return top;
	if (has_dotdot(opts->path)) {
		close(top);
		return tg_err_set(err, TG_EINVALID,
				  "cannot open '%s': the path must not contain '..'", dir);
	}
	fd = open_below(top, opts->path, 1, "", &ferr);
	close(top);
	if (fd == TG_EINVALID) {
		tg_problems_add(ld->problems, TG_SEV_ERROR, NULL, 0, 0, NULL,
				"cannot open the sync path '%s': %s", opts->path, ferr.msg);
		ld->refused = 1;
		return fd;
	}
	if (fd < 0)
		return tg_err_set(err, fd == TG_ENOTFOUND ? TG_ENOTFOUND : TG_ERROR,
				  "cannot open '%s': %s", dir, ferr.msg);
	return fd;
}

int tg_desired_load(struct tg_desired **out, struct tg_problems *problems,
		    const struct tg_load_opts *opts, struct tg_err *err)
{
	static const char *const dirs[] = { "apis", "policies" };
	struct loader ld;
	struct tg_err ferr = { 0, "" };
	struct strvec files = { NULL, 0, 0 };
	char *data = NULL, *dir = NULL, *shown = NULL;
	size_t len = 0, i;
	int rc = 0, fd;

	*out = NULL;
	memset(&ld, 0, sizeof(ld));
	ld.opts = opts;
	ld.problems = problems;
	dir = opts->path && *opts->path ? tg_xasprintf("%s/%s", opts->root, opts->path)
					: tg_xstrdup(opts->root);
	ld.dirfd = open_load_dir(&ld, dir, err);
	if (ld.dirfd < 0 && !ld.refused) {
		rc = ld.dirfd;
		goto out;
	}
	ld.d = tg_xcalloc(1, sizeof(*ld.d));
	ld.prefix = make_prefix(dir, opts->repo_root);
	if (ld.refused)
		goto done;

	shown = tg_xasprintf("%s.tyk.json", ld.prefix);
	fd = open_below(ld.dirfd, ".tyk.json", 0, ld.prefix, &ferr);
	if (fd >= 0) {
		if (read_fd(fd, &data, &len, &ferr))
			tg_problems_add(problems, TG_SEV_ERROR, shown, 0, 0, NULL, "%s", ferr.msg);
		else
			load_manifest(&ld, data, len);
	} else if (fd != TG_ENOTFOUND) {
		/* Scanning instead would load what the manifest may leave out. */
		tg_problems_add(problems, TG_SEV_ERROR, shown, 0, 0, NULL, "cannot read file: %s",
				ferr.msg);
		ld.refused = fd == TG_EINVALID;
	} else {
		for (i = 0; i < TG_ARRAY_SIZE(dirs); i++)
			scan_top(&ld, dirs[i], &files);
		if (files.n) /* qsort(NULL, 0, ...) is undefined */
			qsort(files.v, files.n, sizeof(*files.v), cmp_str);
		for (i = 0; i < files.n; i++)
			load_path(&ld, files.v[i],
				  !strncmp(files.v[i], "policies/", 9) ? FAM_POLICY : FAM_API);
	}
done:
	finish(&ld);
	*out = ld.d;
out:
	if (ld.dirfd >= 0)
		close(ld.dirfd);
	strvec_release(&files);
	free(data);
	free(shown);
	free(dir);
	free(ld.prefix);
	return rc;
}

int tg_desired_load_buffer(struct tg_desired **out, struct tg_problems *problems,
			   const struct tg_load_opts *opts, const char *file, const char *data,
			   size_t len)
{
	struct loader ld;

	memset(&ld, 0, sizeof(ld));
	ld.opts = opts;
	ld.problems = problems;
	ld.dirfd = -1;
	ld.d = tg_xcalloc(1, sizeof(*ld.d));
	ld.prefix = tg_xstrdup("");
	load_data(&ld, file, data, len, !strncmp(file, "policies/", 9) ? FAM_POLICY : FAM_API);
	finish(&ld);
	free(ld.prefix);
	*out = ld.d;
	return 0;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void tg_desired_check_refs(const struct tg_desired *d, const char *const *known_api_ids,
			   size_t n_known, struct tg_problems *problems)
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
			p = printable(o->api_refs[j]);
			report_at(
				problems, o, &o->api_ref_srcs[j],
				"policy '%s' grants access to unknown api '%s' (not in the repository%s)",
				o->id, p, known_api_ids ? " nor on the gateway" : "");
			free(p);
		}
	}
	free(ids);
}

const struct tg_object *tg_desired_find(const struct tg_desired *d, enum tg_kind kind,
					const char *id)
{
	size_t i;

	for (i = 0; d && i < d->len; i++)
		if (d->objects[i].kind == kind && !strcmp(d->objects[i].id, id))
			return &d->objects[i];
	return NULL;
}

void tg_desired_ref(struct tg_desired *d)
{
	d->refs++;
}

void tg_desired_free(struct tg_desired *d)
{
	size_t i;

	if (!d)
		return;
	if (d->refs > 0) {
		d->refs--;
		return;
	}
	for (i = 0; i < d->len; i++)
		object_release(&d->objects[i]);
	free(d->objects);
	for (i = 0; i < d->n_secrets; i++)
		tg_secret_free(d->secrets[i]);
	free(d->secrets);
	free(d);
}
