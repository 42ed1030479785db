/*
 * tyk-sync's formats (see include/tg/manifest.h): the .tyk.json manifest
 * and the Dashboard export wrappers that `tyk-sync dump` writes.
 */
#include "tg/manifest.h"

#include <stdlib.h>
#include <string.h>

#include "tg/json.h"
#include "tg/posmap.h"
#include "tg/validate.h"
#include "tg/banned.h"

static const char *nonempty_string(const cJSON *v)
{
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

static int has(const cJSON *o, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(o, key) != NULL;
}

cJSON *tg_manifest_unwrap(cJSON *root, const char **base)
{
	cJSON *ad, *oas;

	if (has(root, "api_id") || has(root, "openapi"))
		return root;
	ad = cJSON_GetObjectItemCaseSensitive(root, "api_definition");
	oas = cJSON_GetObjectItemCaseSensitive(root, "oas");
	if (cJSON_IsObject(oas)) {
		*base = "oas";
		return oas;
	}
	if (cJSON_IsObject(ad)) {
		*base = "api_definition";
		return ad;
	}
	return root;
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

	ca = tg_path_next_component(a, &na);
	cb = tg_path_next_component(b, &nb);
	while (ca && cb) {
		c = memcmp(ca, cb, na < nb ? na : nb);
		if (c || na != nb)
			return c ? c : (na > nb) - (na < nb);
		ca = tg_path_next_component(ca + na, &na);
		cb = tg_path_next_component(cb + nb, &nb);
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
void tg_manifest_load(struct tg_problems *problems, const char *file, const char *data, size_t len,
		      tg_manifest_open_fn open_fn, void *ctx)
{
	static const struct {
		const char *key;
		enum tg_family fam;
	} lists[] = { { "files", TG_FAMILY_API },
		      { "oas", TG_FAMILY_API },
		      { "policies", TG_FAMILY_POLICY } };
	struct tg_docs docs = { NULL, 0, 0 };
	struct tg_doc_at c = { problems, file, NULL, "" };
	struct listed *v = NULL;
	size_t n = 0, alloc = 0, l, i;
	const cJSON *root;

	if (tg_json_parse(&docs, data, len, file, problems) || !docs.len)
		goto out;
	c.doc = &docs.items[0];
	root = docs.items[0].json;
	if (!cJSON_IsObject(root)) {
		tg_validate_problem(&c, TG_SEV_ERROR, "", "manifest is not an object");
		goto out;
	}
	for (l = 0; l < TG_ARRAY_SIZE(lists); l++) {
		const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, lists[l].key), *e;

		if (!list || cJSON_IsNull(list))
			continue;
		if (!cJSON_IsArray(list)) {
			tg_validate_problem(&c, TG_SEV_ERROR, lists[l].key, "%s must be a list",
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
		char *p = it->name ? tg_validate_printable(it->name) : NULL;
		struct tg_err err = { 0, "" };

		if (!it->name) {
			tg_validate_problem(&c, TG_SEV_ERROR, field, "missing file name");
		} else if (!it->usable) {
			tg_validate_problem(&c, TG_SEV_ERROR, field,
					    "path '%s' leaves the repository", p);
		} else if (it->first && it->first->loaded) {
			tg_validate_problem(
				&c, TG_SEV_WARNING, field,
				"'%s' is listed more than once (first at %s.%zu.file): loaded once",
				p, lists[it->first->list].key, it->first->index);
		} else if (open_fn(ctx, it->name, lists[it->list].fam, &err) < 0) {
			tg_validate_problem(&c, TG_SEV_ERROR, field, "cannot read '%s': %s", p,
					    err.msg);
		} else {
			it->loaded = 1;
		}
		free(p);
		free(field);
	}
out:
	free(v);
	tg_docs_release(&docs);
}
