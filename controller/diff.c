/* Semantic diff and canonical hashing (see include/tg/diff.h). */
#include "tg/diff.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tg/common.h"
#include "tg/objindex.h"
#include "tg/marker.h"
#include "tg/banned.h"

/* Fields the gateway fills in by itself, ignored when only it has them. */
static const char *const server_filled[] = {
	"servers",      /* OAS: the gateway adds its own URL */
	"last_updated", /* policy */
	"_id",          /* policy: database id, "" on file-based gateways */
	"is_oas",       /* classic: set for OAS APIs */
	"id",           /* classic API: database id */
};

static int is_server_filled(const char *key, int depth)
{
	size_t i;

	if (depth != 0)
		return 0;
	for (i = 0; i < TG_ARRAY_SIZE(server_filled); i++)
		if (!strcmp(key, server_filled[i]))
			return 1;
	return 0;
}

static int is_zero(const cJSON *v)
{
	const cJSON *c;

	if (!v || cJSON_IsNull(v) || cJSON_IsFalse(v))
		return 1;
	if (cJSON_IsNumber(v))
		return v->valuedouble == 0;
	if (cJSON_IsString(v))
		return v->valuestring[0] == '\0';
	if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
		for (c = v->child; c; c = c->next)
			if (!is_zero(c))
				return 0;
		return 1;
	}
	return 0;
}

static int contains_secret(const char *s, const struct tg_secrets *secrets)
{
	size_t i;

	if (!secrets)
		return 0;
	for (i = 0; i < secrets->len; i++)
		if (secrets->values[i][0] && strstr(s, secrets->values[i]))
			return 1;
	return 0;
}

static void redact(cJSON *v, const struct tg_secrets *secrets)
{
	cJSON *c;

	if (cJSON_IsString(v) && contains_secret(v->valuestring, secrets)) {
		cJSON_SetValuestring(v, "***");
		return;
	}
	for (c = v->child; c; c = c->next)
		redact(c, secrets);
}

static int holds_secret(const cJSON *v, const struct tg_secrets *secrets)
{
	const cJSON *c;

	if (cJSON_IsString(v))
		return contains_secret(v->valuestring, secrets);
	for (c = v->child; c; c = c->next)
		if (holds_secret(c, secrets))
			return 1;
	return 0;
}

static void hide_strings(cJSON *v)
{
	cJSON *c;

	if (cJSON_IsString(v)) {
		cJSON_SetValuestring(v, "***");
		return;
	}
	for (c = v->child; c; c = c->next)
		hide_strings(c);
}

/* v with every string shown as "***", or NULL when v is. */
static char *render_hidden(const cJSON *v)
{
	cJSON *copy;
	char *out;

	if (!v)
		return NULL;
	copy = cJSON_Duplicate(v, 1);
	hide_strings(copy);
	out = cJSON_PrintUnformatted(copy);
	cJSON_Delete(copy);
	return out;
}

char *tg_diff_render(const cJSON *v, const struct tg_secrets *secrets)
{
	cJSON *copy;
	char *out;

	if (!v)
		return NULL;
	copy = cJSON_Duplicate(v, 1);
	redact(copy, secrets);
	out = cJSON_PrintUnformatted(copy);
	cJSON_Delete(copy);
	return out;
}

static void add_change(struct tg_changes *out, const char *path, const cJSON *before,
		       const cJSON *after, const struct tg_secrets *secrets)
{
	struct tg_change *c;

	if (out->len == out->alloc) {
		out->alloc = out->alloc ? out->alloc * 2 : 8;
		out->items = tg_xreallocarray(out->items, out->alloc, sizeof(*out->items));
	}
	c = &out->items[out->len++];
	c->path = tg_xstrdup(path[0] ? path : "(root)");
	/* Where git fills in a secret, the gateway's value is the previous
	 * secret (after a rotation): hidden as well. */
	c->before = after && holds_secret(after, secrets) ? render_hidden(before)
							  : tg_diff_render(before, secrets);
	c->after = tg_diff_render(after, secrets);
}

static int scalar_equal(const cJSON *a, const cJSON *b)
{
	if (cJSON_IsNumber(a) && cJSON_IsNumber(b))
		return a->valuedouble == b->valuedouble ||
		       fabs(a->valuedouble - b->valuedouble) <= 1e-9 * fabs(a->valuedouble);
	if (cJSON_IsRaw(a) || cJSON_IsRaw(b)) {
		/* Raw numbers are integers too large for a double. */
		char *sa = cJSON_PrintUnformatted(a), *sb = cJSON_PrintUnformatted(b);
		int eq = sa && sb && !strcmp(sa, sb);

		free(sa);
		free(sb);
		return eq;
	}
	if (cJSON_IsString(a) && cJSON_IsString(b))
		return !strcmp(a->valuestring, b->valuestring);
	if (cJSON_IsBool(a) && cJSON_IsBool(b))
		return cJSON_IsTrue(a) == cJSON_IsTrue(b);
	return 0;
}

static char *child_path(const char *path, const char *key)
{
	return path[0] ? tg_xasprintf("%s.%s", path, key) : tg_xstrdup(key);
}

struct cmp {
	struct tg_changes *out;
	enum tg_kind kind;
	const struct tg_secrets *secrets;
};

/* The marker is not part of the comparison; skipping it here avoids
 * copying both objects to strip it. */
/* The OSS gateway rewrites an OAS API's "servers" with its own URL, so
 * that list belongs to the gateway, not to git. */
static int is_gateway_owned(const struct cmp *c, int depth, const char *key)
{
	return c->kind == TG_KIND_OAS_API && depth == 0 && !strcmp(key, "servers");
}

static int is_marker(const struct cmp *c, const char *path, int depth, const char *key)
{
	if (c->kind == TG_KIND_OAS_API)
		return depth == 0 && !strcmp(key, TG_MARKER_OAS_KEY);
	return depth == 1 && !strcmp(key, TG_MARKER_KEY) &&
	       !strcmp(path, c->kind == TG_KIND_API ? "config_data" : "meta_data");
}

static void compare(const struct cmp *c, const char *path, int depth, const cJSON *want,
		    const cJSON *have);

static void compare_objects(const struct cmp *c, const char *path, int depth, const cJSON *want,
			    const cJSON *have)
{
	struct tg_objindex have_keys, want_keys;
	const cJSON *w, *h;

	tg_objindex_init(&have_keys, have);
	tg_objindex_init(&want_keys, want);
	for (w = want->child; w; w = w->next) {
		char *p;

		h = tg_objindex_get(&have_keys, w->string);
		/* The gateway dropped the field: it does not know it. */
		if (!h || is_marker(c, path, depth, w->string) ||
		    is_gateway_owned(c, depth, w->string))
			continue;
		p = child_path(path, w->string);
		compare(c, p, depth + 1, w, h);
		free(p);
	}
	for (h = have->child; h; h = h->next) {
		char *p;

		if (tg_objindex_get(&want_keys, h->string) || is_zero(h) ||
		    is_server_filled(h->string, depth) || is_marker(c, path, depth, h->string))
			continue;
		/* A container holding only the marker is the marker's. */
		if (depth == 0 && cJSON_IsObject(h) && h->child && !h->child->next &&
		    is_marker(c, h->string, 1, h->child->string))
			continue;
		p = child_path(path, h->string);
		add_change(c->out, p, h, NULL, c->secrets);
		free(p);
	}
	tg_objindex_release(&have_keys);
	tg_objindex_release(&want_keys);
}

static void compare_arrays(const struct cmp *c, const char *path, int depth, const cJSON *want,
			   const cJSON *have)
{
	int nw = cJSON_GetArraySize(want), nh = cJSON_GetArraySize(have);
	const cJSON *w, *h;
	int i = 0;

	if (nw != nh) {
		add_change(c->out, path, have, want, c->secrets);
		return;
	}
	for (w = want->child, h = have->child; w && h; w = w->next, h = h->next, i++) {
		char *p = tg_xasprintf("%s[%d]", path, i);

		compare(c, p, depth + 1, w, h);
		free(p);
	}
}

static void compare(const struct cmp *c, const char *path, int depth, const cJSON *want,
		    const cJSON *have)
{
	if (is_zero(want) && is_zero(have))
		return;
	if (cJSON_IsObject(want) && cJSON_IsObject(have)) {
		compare_objects(c, path, depth, want, have);
		return;
	}
	if (cJSON_IsArray(want) && cJSON_IsArray(have)) {
		compare_arrays(c, path, depth, want, have);
		return;
	}
	if (!scalar_equal(want, have))
		add_change(c->out, path, have, want, c->secrets);
}

void tg_diff_objects(struct tg_changes *out, enum tg_kind kind, const cJSON *desired,
		     const cJSON *actual, const struct tg_secrets *secrets)
{
	struct cmp c = { out, kind, secrets };

	compare(&c, "", 0, desired, actual);
}

void tg_changes_release(struct tg_changes *c)
{
	for (size_t i = 0; i < c->len; i++) {
		free(c->items[i].path);
		free(c->items[i].before);
		free(c->items[i].after);
	}
	free(c->items);
	memset(c, 0, sizeof(*c));
}

/*
 * The canonical text tg_diff_hash digests is exactly what printing a copy
 * with the marker stripped (tg_marker_strip) and every object's keys
 * sorted (stably, by strcmp) with cJSON_PrintUnformatted gives: markers on
 * the gateway carry these hashes, so the text must never change.  It is
 * streamed into the digest from the object as it is, without the copy,
 * the sort of the copy's lists and the printed string (a third of a
 * no-change pass once went there).  tests/unit/test_diff.c holds the copy
 * and print way as the reference.
 */
struct canon {
	EVP_MD_CTX *ctx;
	const cJSON *skip[2]; /* the marker slot, and its container when it holds only that */
	size_t len;
	char buf[4096];
};

static void canon_flush(struct canon *c)
{
	if (c->len && !EVP_DigestUpdate(c->ctx, c->buf, c->len))
		abort();
	c->len = 0;
}

static void canon_put(struct canon *c, const char *s, size_t n)
{
	if (c->len + n > sizeof(c->buf)) {
		canon_flush(c);
		if (n > sizeof(c->buf)) {
			if (!EVP_DigestUpdate(c->ctx, s, n))
				abort();
			return;
		}
	}
	memcpy(c->buf + c->len, s, n);
	c->len += n;
}

/* As cJSON's print_string_ptr. */
static void canon_string(struct canon *c, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : ""), *run = p;

	canon_put(c, "\"", 1);
	for (; *p; p++) {
		char esc[8];
		size_t n = 2;

		if (*p >= 32 && *p != '"' && *p != '\\')
			continue;
		canon_put(c, (const char *)run, (size_t)(p - run));
		run = p + 1;
		esc[0] = '\\';
		switch (*p) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default: n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p); break;
		}
		canon_put(c, esc, n);
	}
	canon_put(c, (const char *)run, (size_t)(p - run));
	canon_put(c, "\"", 1);
}

/* As cJSON's print_number (1.7.15: "%1.15g", or "%1.17g" when that does
 * not read back; -0.0 prints "-0"). */
static void canon_number(struct canon *c, const cJSON *v)
{
	double d = v->valuedouble, test;
	char num[32];
	int n;

	if (isnan(d) || isinf(d)) {
		n = snprintf(num, sizeof(num), "null");
	} else {
		char *end;
		double max;

		n = snprintf(num, sizeof(num), "%1.15g", d);
		test = strtod(num, &end);
		max = fabs(test) > fabs(d) ? fabs(test) : fabs(d);
		if (end == num || !(fabs(test - d) <= max * DBL_EPSILON))
			n = snprintf(num, sizeof(num), "%1.17g", d);
	}
	canon_put(c, num, (size_t)n);
}

struct canon_key {
	const cJSON *item;
	size_t at;
};

static int cmp_canon_key(const void *a, const void *b)
{
	const struct canon_key *x = a, *y = b;
	int r = strcmp(x->item->string, y->item->string);

	/* Ties keep their order, as the stable sort of the copy did. */
	return r ? r : (x->at > y->at) - (x->at < y->at);
}

static void canon_value(struct canon *c, const cJSON *v)
{
	const cJSON *e;

	switch (v->type & 0xff) {
	case cJSON_NULL: canon_put(c, "null", 4); return;
	case cJSON_False: canon_put(c, "false", 5); return;
	case cJSON_True: canon_put(c, "true", 4); return;
	case cJSON_Number: canon_number(c, v); return;
	case cJSON_Raw:
		if (v->valuestring)
			canon_put(c, v->valuestring, strlen(v->valuestring));
		return;
	case cJSON_String: canon_string(c, v->valuestring); return;
	case cJSON_Array:
		canon_put(c, "[", 1);
		for (e = v->child; e; e = e->next) {
			if (e != v->child)
				canon_put(c, ",", 1);
			canon_value(c, e);
		}
		canon_put(c, "]", 1);
		return;
	case cJSON_Object: {
		struct canon_key small[32], *keys = small;
		size_t n = 0, i = 0;

		for (e = v->child; e; e = e->next)
			n++;
		if (n > TG_ARRAY_SIZE(small))
			keys = tg_xcalloc(n, sizeof(*keys));
		for (e = v->child; e; e = e->next)
			if (e != c->skip[0] && e != c->skip[1]) {
				keys[i].item = e;
				keys[i].at = i;
				i++;
			}
		n = i;
		qsort(keys, n, sizeof(*keys), cmp_canon_key);
		canon_put(c, "{", 1);
		for (i = 0; i < n; i++) {
			if (i)
				canon_put(c, ",", 1);
			canon_string(c, keys[i].item->string);
			canon_put(c, ":", 1);
			canon_value(c, keys[i].item);
		}
		canon_put(c, "}", 1);
		if (keys != small)
			free(keys);
		return;
	}
	default: return;
	}
}

static EVP_MD *sha256_md;

static void fetch_sha256(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* Fetched once: EVP_sha256() looks the implementation up again on every
 * init (OpenSSL 3), which cost more than hashing a small object. */
static const EVP_MD *sha256(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, fetch_sha256);
	if (!sha256_md)
		abort();
	return sha256_md;
}

void tg_diff_hash(char out[65], enum tg_kind kind, const cJSON *obj)
{
	static const char hex[] = "0123456789abcdef";
	const char *ck = kind == TG_KIND_API      ? "config_data"
			 : kind == TG_KIND_POLICY ? "meta_data"
						  : NULL;
	const char *slot = kind == TG_KIND_OAS_API ? TG_MARKER_OAS_KEY : TG_MARKER_KEY;
	const cJSON *container = ck ? cJSON_GetObjectItemCaseSensitive(obj, ck) : obj;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct canon cs, *c = &cs;

	c->skip[0] = c->skip[1] = NULL;
	c->len = 0;
	/* What tg_marker_strip removes. */
	if (cJSON_IsObject(container)) {
		c->skip[0] = cJSON_GetObjectItemCaseSensitive(container, slot);
		if (ck && c->skip[0] && container->child == c->skip[0] && !c->skip[0]->next)
			c->skip[1] = container;
	}
	c->ctx = EVP_MD_CTX_new();
	if (!c->ctx || !EVP_DigestInit_ex2(c->ctx, sha256(), NULL))
		abort();
	canon_value(c, obj);
	canon_flush(c);
	if (!EVP_DigestFinal_ex(c->ctx, md, &mdlen))
		abort();
	for (unsigned int i = 0; i < mdlen && i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
	EVP_MD_CTX_free(c->ctx);
}
