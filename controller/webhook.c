/*
 * Bitbucket webhooks (see include/tg/webhook.h).
 *
 * Payload shapes follow Atlassian's "Event payloads" pages: Cloud sends
 * repository.full_name / uuid / links.html and push.changes[].new|old
 * (a ref with type and name, its target.hash); Data Center sends
 * repository.slug, project.key and links.clone[], and changes[] with ref
 * (id, displayId, type BRANCH|TAG), toHash and type (ADD, UPDATE, DELETE).
 * Only those fields are read; the rest of a payload is ignored, so a
 * payload that grows new fields keeps working.
 */
#include "tg/webhook.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tg/buf.h"
#include "tg/banned.h"

/* Longest name or id kept from a payload (a git ref name is at most a few
 * hundred bytes in practice). */
#define TEXT_MAX 1024
#define SECRET_FILE_MAX (64 * 1024)

enum tg_webhook_kind tg_webhook_event_kind(const char *event_key, enum tg_webhook_flavor *flavor)
{
	if (!event_key)
		return TG_WEBHOOK_OTHER;
	if (!strcmp(event_key, "repo:push")) {
		*flavor = TG_WEBHOOK_CLOUD;
		return TG_WEBHOOK_PUSH;
	}
	if (!strcmp(event_key, "repo:refs_changed")) {
		*flavor = TG_WEBHOOK_DC;
		return TG_WEBHOOK_PUSH;
	}
	if (!strcmp(event_key, "diagnostics:ping"))
		return TG_WEBHOOK_PING;
	return TG_WEBHOOK_OTHER;
}

/* --- parsing ---------------------------------------------------------------- */

/* A payload string made safe for logs, JSON and the audit trail: valid
 * UTF-8, control characters replaced, bounded. */
static char *clean(const char *s)
{
	char *u, *p;

	if (!s)
		return NULL;
	u = tg_utf8_sanitize(s);
	if (strlen(u) > TEXT_MAX) {
		size_t cut = TEXT_MAX;

		/* Do not split a UTF-8 sequence. */
		while (cut > 0 && ((unsigned char)u[cut] & 0xc0) == 0x80)
			cut--;
		u[cut] = '\0';
	}
	for (p = u; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return u;
}

static const char *str_at(const cJSON *o, const char *a, const char *b, const char *c)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);

	if (b)
		v = cJSON_GetObjectItemCaseSensitive(v, b);
	if (c)
		v = cJSON_GetObjectItemCaseSensitive(v, c);
	return v && cJSON_IsString(v) ? v->valuestring : NULL;
}

void tg_webhook_push_release(struct tg_webhook_push *p)
{
	if (!p)
		return;
	free(p->full_name);
	free(p->uuid);
	free(p->html_host);
	for (size_t i = 0; i < p->n_clone_urls; i++)
		free(p->clone_urls[i]);
	free(p->clone_urls);
	free(p->actor_id);
	free(p->actor_name);
	for (size_t i = 0; i < p->n_changes; i++) {
		free(p->changes[i].name);
		free(p->changes[i].commit);
	}
	free(p->changes);
	memset(p, 0, sizeof(*p));
}

static void add_change(struct tg_webhook_push *p, int is_tag, const char *name, const char *commit)
{
	struct tg_webhook_change *c;

	if (!name || !*name || p->n_changes == TG_WEBHOOK_MAX_CHANGES)
		return;
	p->changes = tg_xreallocarray(p->changes, p->n_changes + 1, sizeof(*p->changes));
	c = &p->changes[p->n_changes++];
	c->is_tag = is_tag;
	c->name = clean(name);
	c->commit = commit && *commit ? clean(commit) : NULL;
}

/* The host of an http(s) link, lowercased. */
static char *link_host(const char *href)
{
	char *key = href ? tg_webhook_url_key(href) : NULL;
	char *slash;

	if (!key)
		return NULL;
	slash = strchr(key, '/');
	if (slash)
		*slash = '\0';
	return key;
}

static int parse_cloud(struct tg_webhook_push *p, const cJSON *root, struct tg_err *err)
{
	const cJSON *repo = cJSON_GetObjectItemCaseSensitive(root, "repository");
	const cJSON *changes = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(root, "push"), "changes");
	const cJSON *ch;
	const char *full = str_at(repo, "full_name", NULL, NULL);

	if (!cJSON_IsObject(repo) || !full || !*full)
		return tg_err_set(err, TG_EINVALID, "payload has no repository.full_name");
	if (!cJSON_IsArray(changes))
		return tg_err_set(err, TG_EINVALID, "payload has no push.changes list");
	p->full_name = clean(full);
	p->uuid = clean(str_at(repo, "uuid", NULL, NULL));
	p->html_host = link_host(str_at(repo, "links", "html", "href"));
	p->actor_id = clean(str_at(root, "actor", "uuid", NULL));
	p->actor_name = clean(str_at(root, "actor", "display_name", NULL));
	if (!p->actor_name)
		p->actor_name = clean(str_at(root, "actor", "nickname", NULL));
	cJSON_ArrayForEach(ch, changes)
	{
		const cJSON *nw = cJSON_GetObjectItemCaseSensitive(ch, "new");
		const cJSON *old = cJSON_GetObjectItemCaseSensitive(ch, "old");
		const cJSON *ref = cJSON_IsObject(nw) ? nw : old;
		const char *type = str_at(ref, "type", NULL, NULL);

		if (!cJSON_IsObject(ref) || !type)
			continue;
		/* named_branch: Mercurial's branches, long gone but harmless. */
		if (strcmp(type, "branch") && strcmp(type, "named_branch") && strcmp(type, "tag"))
			continue;
		add_change(p, !strcmp(type, "tag"), str_at(ref, "name", NULL, NULL),
			   cJSON_IsObject(nw) ? str_at(nw, "target", "hash", NULL) : NULL);
	}
	return 0;
}

static int parse_dc(struct tg_webhook_push *p, const cJSON *root, struct tg_err *err)
{
	const cJSON *repo = cJSON_GetObjectItemCaseSensitive(root, "repository");
	const cJSON *changes = cJSON_GetObjectItemCaseSensitive(root, "changes");
	const cJSON *clone = cJSON_GetObjectItemCaseSensitive(
		cJSON_GetObjectItemCaseSensitive(repo, "links"), "clone");
	const char *slug = str_at(repo, "slug", NULL, NULL);
	const char *key = str_at(repo, "project", "key", NULL);
	const cJSON *ch, *l;
	char *full;

	if (!cJSON_IsObject(repo) || !slug || !*slug || !key || !*key)
		return tg_err_set(err, TG_EINVALID,
				  "payload has no repository.slug and project.key");
	if (!cJSON_IsArray(changes))
		return tg_err_set(err, TG_EINVALID, "payload has no changes list");
	full = tg_xasprintf("%s/%s", key, slug);
	p->full_name = clean(full);
	free(full);
	cJSON_ArrayForEach(l, clone)
	{
		const char *href = str_at(l, "href", NULL, NULL);

		if (!href || p->n_clone_urls == TG_WEBHOOK_MAX_CLONE_URLS)
			continue;
		p->clone_urls = tg_xreallocarray(p->clone_urls, p->n_clone_urls + 1,
						 sizeof(*p->clone_urls));
		p->clone_urls[p->n_clone_urls++] = clean(href);
	}
	p->actor_id = clean(str_at(root, "actor", "slug", NULL));
	if (!p->actor_id)
		p->actor_id = clean(str_at(root, "actor", "name", NULL));
	p->actor_name = clean(str_at(root, "actor", "displayName", NULL));
	cJSON_ArrayForEach(ch, changes)
	{
		const char *type = str_at(ch, "ref", "type", NULL);
		const char *name = str_at(ch, "ref", "displayId", NULL);
		const char *id = str_at(ch, "refId", NULL, NULL);
		const char *to = str_at(ch, "toHash", NULL, NULL);
		const char *what = str_at(ch, "type", NULL, NULL);
		int is_tag;

		if (!id)
			id = str_at(ch, "ref", "id", NULL);
		if (type)
			is_tag = !strcmp(type, "TAG");
		else if (id)
			is_tag = !strncmp(id, "refs/tags/", 10);
		else
			continue;
		if (type && strcmp(type, "TAG") && strcmp(type, "BRANCH"))
			continue;
		if (!name && id) {
			const char *prefix = is_tag ? "refs/tags/" : "refs/heads/";

			if (!strncmp(id, prefix, strlen(prefix)))
				name = id + strlen(prefix);
		}
		if ((what && !strcmp(what, "DELETE")) || (to && strspn(to, "0") == strlen(to)))
			to = NULL;
		add_change(p, is_tag, name, to);
	}
	return 0;
}

int tg_webhook_parse_push(struct tg_webhook_push *p, enum tg_webhook_flavor flavor,
			  const char *body, size_t len, struct tg_err *err)
{
	cJSON *root;
	int rc;

	memset(p, 0, sizeof(*p));
	p->flavor = flavor;
	if (memchr(body, '\0', len))
		return tg_err_set(err, TG_EINVALID, "payload holds a NUL byte");
	root = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return tg_err_set(err, TG_EINVALID, "payload is not a JSON object");
	}
	rc = flavor == TG_WEBHOOK_CLOUD ? parse_cloud(p, root, err) : parse_dc(p, root, err);
	cJSON_Delete(root);
	if (rc)
		tg_webhook_push_release(p);
	return rc;
}

/* --- matching ------------------------------------------------------------- */

static int default_port(const char *scheme, size_t len, const char *port)
{
	static const struct {
		const char *scheme, *port;
	} d[] = { { "https", "443" },  { "http", "80" },    { "ssh", "22" },
		  { "git+ssh", "22" }, { "ssh+git", "22" }, { "git", "9418" } };

	for (size_t i = 0; i < TG_ARRAY_SIZE(d); i++)
		if (strlen(d[i].scheme) == len && !strncasecmp(scheme, d[i].scheme, len))
			return !strcmp(port, d[i].port);
	return 0;
}

char *tg_webhook_url_key(const char *url)
{
	const char *sep, *auth, *auth_end, *path, *at, *host_end;
	char *out, *host = NULL, *port = NULL;
	struct tg_buf b = TG_BUF_INIT;
	size_t plen;

	if (!url || !*url)
		return NULL;
	sep = strstr(url, "://");
	if (sep) {
		if ((size_t)(sep - url) == 4 && !strncasecmp(url, "file", 4))
			return NULL;
		auth = sep + 3;
		auth_end = auth + strcspn(auth, "/?#");
		path = auth_end;
	} else {
		/* scp-like: [user@]host:path, with the colon before any slash. */
		const char *colon = strchr(url, ':');

		if (!colon || colon == url || memchr(url, '/', (size_t)(colon - url)) ||
		    url[0] == '.')
			return NULL;
		auth = url;
		auth_end = colon;
		path = colon + 1;
	}
	/* The user (and password) end at the last '@' of the authority. */
	at = NULL;
	for (const char *c = auth; c < auth_end; c++)
		if (*c == '@')
			at = c;
	if (at)
		auth = at + 1;
	if (auth < auth_end && *auth == '[') {
		const char *rb = memchr(auth, ']', (size_t)(auth_end - auth));

		if (!rb)
			return NULL;
		host = tg_xstrndup(auth, (size_t)(rb + 1 - auth));
		host_end = rb + 1;
	} else {
		host_end = sep ? auth + strcspn(auth, ":/?#") : auth_end;
		if (host_end > auth_end)
			host_end = auth_end;
		host = tg_xstrndup(auth, (size_t)(host_end - auth));
	}
	if (sep && host_end < auth_end && *host_end == ':')
		port = tg_xstrndup(host_end + 1, (size_t)(auth_end - host_end - 1));
	if (!*host) {
		free(host);
		free(port);
		return NULL;
	}
	tg_buf_puts(&b, host);
	if (port && *port && !default_port(url, (size_t)(sep - url), port))
		tg_buf_printf(&b, ":%s", port);
	while (*path == '/')
		path++;
	plen = strcspn(path, "?#");
	while (plen && path[plen - 1] == '/')
		plen--;
	if (plen >= 4 && !strncasecmp(path + plen - 4, ".git", 4))
		plen -= 4;
	while (plen && path[plen - 1] == '/')
		plen--;
	tg_buf_puts(&b, "/");
	tg_buf_put(&b, path, plen);
	free(host);
	free(port);
	out = tg_buf_detach(&b);
	for (char *c = out; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return out;
}

static const char *skip_brace(const char *s, size_t *len)
{
	*len = strlen(s);
	if (*len >= 2 && s[0] == '{' && s[*len - 1] == '}') {
		*len -= 2;
		return s + 1;
	}
	return s;
}

int tg_webhook_uuid_eq(const char *a, const char *b)
{
	size_t la, lb;

	if (!a || !b)
		return 0;
	a = skip_brace(a, &la);
	b = skip_brace(b, &lb);
	return la && la == lb && !strncasecmp(a, b, la);
}

/* The last two path segments of a key ("host/scm/proj/repo" -> "proj/repo"). */
static const char *tail2(const char *key)
{
	const char *last = strrchr(key, '/'), *p;

	if (!last || last == key)
		return NULL;
	for (p = last - 1; p > key && *p != '/'; p--)
		;
	return *p == '/' ? p + 1 : NULL;
}

int tg_webhook_repo_matches(const struct tg_webhook_push *p, const char *repo_url,
			    const char *explicit_repo)
{
	char *key, *want = NULL;
	int match = 0;

	if (!p->full_name)
		return 0;
	if (explicit_repo && *explicit_repo)
		return !strcasecmp(explicit_repo, p->full_name) ||
		       (p->uuid && tg_webhook_uuid_eq(explicit_repo, p->uuid));
	key = tg_webhook_url_key(repo_url);
	if (!key)
		return 0;
	if (p->flavor == TG_WEBHOOK_CLOUD) {
		want = tg_xasprintf("%s/%s", p->html_host ? p->html_host : "bitbucket.org",
				    p->full_name);
		match = !strcasecmp(key, want);
	} else {
		for (size_t i = 0; i < p->n_clone_urls && !match; i++) {
			char *k = tg_webhook_url_key(p->clone_urls[i]);

			match = k && !strcmp(k, key);
			free(k);
		}
		/* Payloads of older Server versions carry no links. */
		if (!p->n_clone_urls) {
			const char *t = tail2(key);

			match = t && !strcasecmp(t, p->full_name);
		}
	}
	free(want);
	free(key);
	return match;
}

const struct tg_webhook_change *tg_webhook_ref_change(const struct tg_webhook_push *p,
						      enum tg_ref_type type, const char *ref)
{
	if (!ref || type == TG_REF_COMMIT)
		return NULL;
	for (size_t i = 0; i < p->n_changes; i++) {
		const struct tg_webhook_change *c = &p->changes[i];

		if (c->is_tag == (type == TG_REF_TAG) && !strcmp(c->name, ref))
			return c;
	}
	return NULL;
}

/* --- signatures ------------------------------------------------------------- */

int tg_webhook_signature_match(const char *header, const void *body, size_t len,
			       const char *const *secrets, size_t n)
{
	unsigned char want[32], mac[EVP_MAX_MD_SIZE];
	unsigned int mac_len = 0;
	const char *hex;
	int found = -1;

	if (!header || strncasecmp(header, "sha256=", 7))
		return -1;
	hex = header + 7;
	if (strlen(hex) != 64)
		return -1;
	for (size_t i = 0; i < 32; i++) {
		int hi = tg_hex_digit(hex[2 * i]), lo = tg_hex_digit(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		want[i] = (unsigned char)(hi * 16 + lo);
	}
	for (size_t i = 0; i < n; i++) {
		if (!secrets[i] || !*secrets[i])
			continue;
		if (!HMAC(EVP_sha256(), secrets[i], (int)strlen(secrets[i]), body, len, mac,
			  &mac_len))
			continue;
		if (mac_len == 32 && CRYPTO_memcmp(mac, want, 32) == 0 && found < 0)
			found = (int)i;
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return found;
}

/* --- the key ring ------------------------------------------------------------ */

struct keyfile {
	char *path;
	int have_stat;
	struct stat st;
	char **cur;
	size_t n_cur;
	char **prev;
	size_t n_prev;
	long long prev_until_ms;
};

struct tg_webhook_keys {
	pthread_mutex_t lock;
	struct keyfile *files;
	size_t n;
};

static void free_secrets(char **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		tg_secret_free(s[i]);
	free(s);
}

struct tg_webhook_keys *tg_webhook_keys_new(void)
{
	struct tg_webhook_keys *k = tg_xcalloc(1, sizeof(*k));

	pthread_mutex_init(&k->lock, NULL);
	return k;
}

void tg_webhook_keys_free(struct tg_webhook_keys *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++) {
		free(k->files[i].path);
		free_secrets(k->files[i].cur, k->files[i].n_cur);
		free_secrets(k->files[i].prev, k->files[i].n_prev);
	}
	free(k->files);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static int same_secrets(char **a, size_t na, char **b, size_t nb)
{
	int same = na == nb;

	for (size_t i = 0; same && i < na; i++) {
		size_t la = strlen(a[i]), lb = strlen(b[i]);

		same = la == lb && CRYPTO_memcmp(a[i], b[i], la) == 0;
	}
	return same;
}

/* One secret per line; the buffer is wiped by the caller. */
static char **split_secrets(char *data, size_t *n)
{
	char **out = NULL;
	char *line = data;

	*n = 0;
	while (line && *line) {
		char *nl = strchr(line, '\n'), *end;

		if (nl)
			*nl = '\0';
		end = line + strlen(line);
		while (end > line && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (*line) {
			out = tg_xreallocarray(out, *n + 1, sizeof(*out));
			out[(*n)++] = tg_xstrdup(line);
		}
		line = nl ? nl + 1 : NULL;
	}
	return out;
}

static int refresh(struct keyfile *f, long long overlap_ms, long long now_ms, struct tg_err *err)
{
	struct stat st;
	char *data = NULL, **fresh;
	size_t len = 0, n;
	int rc;

	if (stat(f->path, &st) < 0)
		return tg_err_set(err, errno == ENOENT ? TG_ENOTFOUND : TG_ERROR,
				  "cannot read webhook secret file '%s': %s", f->path,
				  strerror(errno));
	if (f->have_stat && same_file(&st, &f->st))
		return 0;
	rc = tg_read_file(&data, &len, f->path, SECRET_FILE_MAX, err);
	if (rc)
		return rc;
	fresh = split_secrets(data, &n);
	OPENSSL_cleanse(data, len);
	free(data);
	if (!n) {
		free(fresh);
		return tg_err_set(err, TG_EINVALID, "webhook secret file '%s' holds no secret",
				  f->path);
	}
	if (f->n_cur && same_secrets(f->cur, f->n_cur, fresh, n)) {
		free_secrets(fresh, n);
	} else {
		if (f->n_cur) {
			free_secrets(f->prev, f->n_prev);
			f->prev = f->cur;
			f->n_prev = f->n_cur;
			f->prev_until_ms = now_ms + overlap_ms;
		}
		f->cur = fresh;
		f->n_cur = n;
	}
	f->st = st;
	f->have_stat = 1;
	return 0;
}

int tg_webhook_keys_check(struct tg_webhook_keys *k, const char *path, long long overlap_ms,
			  long long now_ms, const char *sig_header, const void *body, size_t len,
			  int *previous, struct tg_err *err)
{
	struct keyfile *f = NULL;
	int rc;

	*previous = 0;
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < k->n && !f; i++)
		if (!strcmp(k->files[i].path, path))
			f = &k->files[i];
	if (!f) {
		k->files = tg_xreallocarray(k->files, k->n + 1, sizeof(*k->files));
		f = &k->files[k->n++];
		memset(f, 0, sizeof(*f));
		f->path = tg_xstrdup(path);
	}
	rc = refresh(f, overlap_ms, now_ms, err);
	if (rc)
		goto out;
	if (tg_webhook_signature_match(sig_header, body, len, (const char *const *)f->cur,
				       f->n_cur) >= 0)
		goto out;
	if (f->n_prev && now_ms < f->prev_until_ms &&
	    tg_webhook_signature_match(sig_header, body, len, (const char *const *)f->prev,
				       f->n_prev) >= 0) {
		*previous = 1;
		goto out;
	}
	if (f->n_prev && now_ms >= f->prev_until_ms) {
		/* The overlap is over: forget the old secrets. */
		free_secrets(f->prev, f->n_prev);
		f->prev = NULL;
		f->n_prev = 0;
	}
	rc = TG_EAUTH;
out:
	pthread_mutex_unlock(&k->lock);
	return rc;
}

/* --- deliveries ------------------------------------------------------------- */

struct tg_webhook_seen {
	pthread_mutex_t lock;
	unsigned char (*ids)[16];
	size_t cap, n, next;
};

struct tg_webhook_seen *tg_webhook_seen_new(size_t capacity)
{
	struct tg_webhook_seen *s = tg_xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	s->cap = capacity ? capacity : 1;
	s->ids = tg_xcalloc(s->cap, sizeof(*s->ids));
	return s;
}

void tg_webhook_seen_free(struct tg_webhook_seen *s)
{
	if (!s)
		return;
	pthread_mutex_destroy(&s->lock);
	free(s->ids);
	free(s);
}

int tg_webhook_seen_check(struct tg_webhook_seen *s, const char *id)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int md_len = 0;
	int seen = 0;

	EVP_Digest(id, strlen(id), md, &md_len, EVP_sha256(), NULL);
	pthread_mutex_lock(&s->lock);
	/* A linear scan: 4096 ids of 16 bytes take microseconds, far below
	 * what one delivery costs, and there is nothing to keep in sync. */
	for (size_t i = 0; i < s->n && !seen; i++)
		seen = !memcmp(s->ids[i], md, 16);
	if (!seen) {
		memcpy(s->ids[s->next], md, 16);
		s->next = (s->next + 1) % s->cap;
		if (s->n < s->cap)
			s->n++;
	}
	pthread_mutex_unlock(&s->lock);
	return seen;
}
