/*
 * Bitbucket coordinates and requests (see include/tg/bitbucket.h).  Pure.
 */
#include "tg/bitbucket.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "tg/buf.h"
#include "tg/banned.h"

const char *tg_bb_api_name(enum tg_bb_api api)
{
	return api == TG_BB_CLOUD ? "cloud" : "datacenter";
}

/* --- repository URL -> coordinates ------------------------------------------ */

struct url_parts {
	char *scheme; /* "https", "ssh", ... or NULL for scp-like */
	char *host;
	char *port; /* NULL: default */
	char **seg; /* path segments, ".git" dropped from the last */
	size_t n_seg;
};

static void parts_release(struct url_parts *u)
{
	free(u->scheme);
	free(u->host);
	free(u->port);
	for (size_t i = 0; i < u->n_seg; i++)
		free(u->seg[i]);
	free(u->seg);
	memset(u, 0, sizeof(*u));
}

static void split_path(struct url_parts *u, const char *p)
{
	while (*p) {
		const char *e;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchr(p, '/');
		if (!e)
			e = p + strlen(p);
		u->seg = tg_xreallocarray(u->seg, u->n_seg + 1, sizeof(*u->seg));
		u->seg[u->n_seg++] = tg_xstrndup(p, (size_t)(e - p));
		p = e;
	}
	if (u->n_seg) {
		char *last = u->seg[u->n_seg - 1];
		size_t n = strlen(last);

		if (n > 4 && !strcasecmp(last + n - 4, ".git"))
			last[n - 4] = '\0';
	}
}

/* https://user@host:port/path, ssh://git@host/path, git@host:path. */
static int parse_url(struct url_parts *u, const char *url)
{
	const char *p = strstr(url, "://"), *auth, *hostend, *at, *colon;

	memset(u, 0, sizeof(*u));
	if (p) {
		u->scheme = tg_xstrndup(url, (size_t)(p - url));
		for (char *c = u->scheme; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		auth = p + 3;
		hostend = auth + strcspn(auth, "/?#");
		at = memrchr(auth, '@', (size_t)(hostend - auth));
		if (at)
			auth = at + 1;
		{
			/* An IPv6 literal's colons are not a port's. */
			const char *from =
				auth[0] == '[' ? memchr(auth, ']', (size_t)(hostend - auth)) : auth;

			if (!from)
				from = auth;
			colon = memchr(from, ':', (size_t)(hostend - from));
		}
		u->host = tg_xstrndup(auth, (size_t)((colon ? colon : hostend) - auth));
		if (colon && colon + 1 < hostend)
			u->port = tg_xstrndup(colon + 1, (size_t)(hostend - colon - 1));
		split_path(u, hostend);
		return u->host[0] ? 0 : -1;
	}
	/* scp-like: [user@]host:path, where host has no slash */
	colon = strchr(url, ':');
	if (!colon || memchr(url, '/', (size_t)(colon - url)))
		return -1;
	at = memrchr(url, '@', (size_t)(colon - url));
	auth = at ? at + 1 : url;
	u->host = tg_xstrndup(auth, (size_t)(colon - auth));
	split_path(u, colon + 1);
	return u->host[0] ? 0 : -1;
}

static int is_cloud_host(const char *host)
{
	return !strcasecmp(host, "bitbucket.org") || !strcasecmp(host, "www.bitbucket.org");
}

static char *dup_or_null(const char *s)
{
	return s && *s ? tg_xstrdup(s) : NULL;
}

static char *strip_slashes(const char *s)
{
	size_t n = strlen(s);

	while (n && s[n - 1] == '/')
		n--;
	return tg_xstrndup(s, n);
}

/* Data Center clone URL: [/context]/scm/PROJECT/slug over http(s), or
 * /PROJECT/slug over ssh (its port is git's, not the REST API's). */
static void dc_from_url(struct tg_bb_target *t, const struct url_parts *u)
{
	size_t scm = u->n_seg;
	struct tg_buf b = TG_BUF_INIT;
	int web = u->scheme && (!strcmp(u->scheme, "https") || !strcmp(u->scheme, "http"));

	for (size_t i = 0; i + 2 < u->n_seg; i++)
		if (!strcmp(u->seg[i], "scm"))
			scm = i;
	if (web && scm + 2 < u->n_seg) {
		t->owner = tg_xstrdup(u->seg[scm + 1]);
		t->slug = tg_xstrdup(u->seg[scm + 2]);
	} else if (!web && u->n_seg >= 2) {
		t->owner = tg_xstrdup(u->seg[u->n_seg - 2]);
		t->slug = tg_xstrdup(u->seg[u->n_seg - 1]);
		scm = 0;
	}
	if (!t->owner)
		return;
	tg_buf_printf(&b, "%s://%s", web ? u->scheme : "https", u->host);
	if (web && u->port)
		tg_buf_printf(&b, ":%s", u->port);
	for (size_t i = 0; web && i < scm; i++)
		tg_buf_printf(&b, "/%s", u->seg[i]);
	t->base_url = tg_buf_detach(&b);
}

int tg_bb_target_resolve(struct tg_bb_target *out, const struct tg_sync_config *cfg,
			 struct tg_err *err)
{
	struct url_parts u = { 0 };
	int have_url = cfg->repo_url && !parse_url(&u, cfg->repo_url);
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (cfg->bb_api)
		out->api = !strcmp(cfg->bb_api, "cloud") ? TG_BB_CLOUD : TG_BB_DC;
	else if (cfg->bb_url)
		out->api = strstr(cfg->bb_url, "api.bitbucket.org") ? TG_BB_CLOUD : TG_BB_DC;
	else
		out->api = have_url && is_cloud_host(u.host) ? TG_BB_CLOUD : TG_BB_DC;
	if (have_url && out->api == TG_BB_CLOUD && is_cloud_host(u.host) && u.n_seg >= 2) {
		out->owner = tg_xstrdup(u.seg[0]);
		out->slug = tg_xstrdup(u.seg[1]);
		out->base_url = tg_xstrdup("https://api.bitbucket.org");
	} else if (have_url && out->api == TG_BB_DC && !is_cloud_host(u.host)) {
		dc_from_url(out, &u);
	}
	if (out->api == TG_BB_CLOUD && !out->base_url)
		out->base_url = tg_xstrdup("https://api.bitbucket.org");
	/* Overrides win over what the URL said. */
	if (cfg->bb_url) {
		free(out->base_url);
		out->base_url = strip_slashes(cfg->bb_url);
	}
	if (cfg->bb_workspace || cfg->bb_project) {
		free(out->owner);
		out->owner = tg_xstrdup(cfg->bb_workspace ? cfg->bb_workspace : cfg->bb_project);
	}
	if (cfg->bb_repo_slug) {
		free(out->slug);
		out->slug = tg_xstrdup(cfg->bb_repo_slug);
	}
	out->token_file = dup_or_null(cfg->bb_token_file);
	out->email = dup_or_null(cfg->bb_email);
	out->ca_file = dup_or_null(cfg->bb_ca_file);
	out->proxy = dup_or_null(cfg->bb_proxy);
	out->timeout_ms = cfg->bb_timeout_ms > 0 ? cfg->bb_timeout_ms : 10000;
	if (!out->base_url || !out->owner || !out->slug || !out->owner[0] || !out->slug[0])
		rc = tg_err_set(
			err, TG_EINVALID,
			"cannot tell the Bitbucket %s repository of '%s': set bitbucket.%s and bitbucket.repo_slug%s",
			out->api == TG_BB_CLOUD ? "Cloud" : "Data Center",
			cfg->repo_url ? cfg->repo_url : "(no url)",
			out->api == TG_BB_CLOUD ? "workspace" : "project",
			out->api == TG_BB_DC ? " (and bitbucket.url)" : "");
	parts_release(&u);
	if (rc)
		tg_bb_target_release(out);
	return rc;
}

void tg_bb_target_release(struct tg_bb_target *t)
{
	free(t->base_url);
	free(t->owner);
	free(t->slug);
	free(t->token_file);
	free(t->email);
	free(t->proxy);
	free(t->ca_file);
	memset(t, 0, sizeof(*t));
}

void tg_bb_target_copy(struct tg_bb_target *dst, const struct tg_bb_target *src)
{
	dst->api = src->api;
	dst->base_url = src->base_url ? tg_xstrdup(src->base_url) : NULL;
	dst->owner = src->owner ? tg_xstrdup(src->owner) : NULL;
	dst->slug = src->slug ? tg_xstrdup(src->slug) : NULL;
	dst->token_file = src->token_file ? tg_xstrdup(src->token_file) : NULL;
	dst->email = src->email ? tg_xstrdup(src->email) : NULL;
	dst->proxy = src->proxy ? tg_xstrdup(src->proxy) : NULL;
	dst->ca_file = src->ca_file ? tg_xstrdup(src->ca_file) : NULL;
	dst->timeout_ms = src->timeout_ms;
}

/* --- requests ------------------------------------------------------------------- */

char *tg_bb_path_escape(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct tg_buf b = TG_BUF_INIT;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (isalnum(*p) || strchr("-._~", *p)) {
			tg_buf_put(&b, p, 1);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			tg_buf_put(&b, e, 3);
		}
	}
	tg_buf_put(&b, "", 0);
	return tg_buf_detach(&b);
}

char *tg_bb_default_status_url(const char *listen, const char *sync)
{
	const char *colon = strrchr(listen, ':');
	char *name = tg_bb_path_escape(sync), *url;
	size_t hl = colon ? (size_t)(colon - listen) : strlen(listen);
	int wild = hl == 0 || (hl == 7 && !strncmp(listen, "0.0.0.0", 7)) ||
		   (hl == 4 && !strncmp(listen, "[::]", 4));

	if (wild)
		url = tg_xasprintf("http://localhost%s/api/v1/syncs/%s", colon ? colon : "", name);
	else
		url = tg_xasprintf("http://%s/api/v1/syncs/%s", listen, name);
	free(name);
	return url;
}

char *tg_bb_clip(const char *s, size_t max)
{
	size_t n = strlen(s), keep = 0;
	char *out;

	if (n <= max)
		return tg_xstrdup(s);
	/* Room for "…" (3 bytes), then back off to a sequence start. */
	keep = max >= 3 ? max - 3 : 0;
	while (keep > 0 && ((unsigned char)s[keep] & 0xC0) == 0x80)
		keep--;
	out = tg_xmalloc(keep + 4);
	memcpy(out, s, keep);
	memcpy(out + keep, "\xe2\x80\xa6", 4);
	return out;
}

void tg_bb_status_key(char out[TG_BB_KEY_MAX + 1], const char *sync)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int n = snprintf(out, TG_BB_KEY_MAX + 1, "tyk-gitops-%s", sync);

	if (n >= 0 && n <= TG_BB_KEY_MAX)
		return;
	EVP_Digest(sync, strlen(sync), md, &mdlen, EVP_sha256(), NULL);
	/* 40 = "tyk-gitops-" (11) + 20 bytes of the name + "-" + 8 hex */
	snprintf(out, TG_BB_KEY_MAX + 1, "tyk-gitops-%.20s-%02x%02x%02x%02x", sync, md[0], md[1],
		 md[2], md[3]);
}

static void add_clipped(cJSON *o, const char *key, const char *v, size_t max)
{
	char *c;

	if (!v)
		return;
	c = tg_bb_clip(v, max);
	cJSON_AddStringToObject(o, key, c);
	free(c);
}

void tg_bb_status_request(char **url, char **body, const struct tg_bb_target *t, const char *sha,
			  const struct tg_bb_status *st)
{
	char *owner = tg_bb_path_escape(t->owner), *slug = tg_bb_path_escape(t->slug);
	char *commit = tg_bb_path_escape(sha);
	cJSON *o = cJSON_CreateObject();

	if (t->api == TG_BB_CLOUD)
		*url = tg_xasprintf("%s/2.0/repositories/%s/%s/commit/%s/statuses/build",
				    t->base_url, owner, slug, commit);
	else
		*url = tg_xasprintf("%s/rest/api/latest/projects/%s/repos/%s/commits/%s/builds",
				    t->base_url, owner, slug, commit);
	add_clipped(o, "key", st->key, TG_BB_KEY_MAX);
	cJSON_AddStringToObject(o, "state", st->state);
	add_clipped(o, "name", st->name, TG_BB_FIELD_MAX);
	/* A cut URL would point nowhere: one too long is left out. */
	if (st->url && strlen(st->url) <= TG_BB_URL_MAX)
		cJSON_AddStringToObject(o, "url", st->url);
	add_clipped(o, "description", st->description, TG_BB_FIELD_MAX);
	*body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	free(owner);
	free(slug);
	free(commit);
}

/* --- replies --------------------------------------------------------------------- */

static void put_printable(char *out, size_t size, const char *s)
{
	char *p = tg_printable(s);

	snprintf(out, size, "%s", p);
	free(p);
}

void tg_bb_reply_error(char *out, size_t size, const char *body, size_t len)
{
	cJSON *j, *e, *m = NULL;

	if (!size)
		return;
	out[0] = '\0';
	if (!body || !len)
		return;
	j = cJSON_ParseWithLength(body, len);
	if (!j)
		return;
	e = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (cJSON_IsObject(e))
		m = cJSON_GetObjectItemCaseSensitive(e, "message");
	e = cJSON_GetObjectItemCaseSensitive(j, "errors");
	if (!m && cJSON_IsArray(e) && cJSON_IsObject(cJSON_GetArrayItem(e, 0)))
		m = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(e, 0), "message");
	if (m && cJSON_IsString(m) && m->valuestring)
		put_printable(out, size, m->valuestring);
	cJSON_Delete(j);
}

static int month_of(const char *m)
{
	static const char names[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

	for (int i = 0; i < 12; i++)
		if (!strncmp(m, names + 3 * i, 3))
			return i;
	return -1;
}

long long tg_bb_retry_after_ms(const char *value, size_t len, long long now_wall_ms,
			       long long max_ms)
{
	char buf[64], mon[4] = "", tz[4] = "";
	long long secs;
	struct tm tm = { 0 };
	int day, year, hh, mm, ss, consumed = 0;
	char wd[4] = "";

	if (!value || !len || len >= sizeof(buf))
		return -1;
	memcpy(buf, value, len);
	buf[len] = '\0';
	while (len && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		buf[--len] = '\0';
	if (!tg_parse_ll(&secs, buf[0] == ' ' ? buf + 1 : buf, 0, 1LL << 40))
		return secs * 1000 > max_ms ? max_ms : secs * 1000;
	/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
	if (sscanf(buf, "%3[A-Za-z], %2d %3[A-Za-z] %4d %2d:%2d:%2d %3[A-Z]%n", wd, &day, mon,
		   &year, &hh, &mm, &ss, tz, &consumed) != 8 ||
	    (size_t)consumed != len || strcmp(tz, "GMT") || month_of(mon) < 0 || day < 1 ||
	    day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970 || year > 9999)
		return -1;
	tm.tm_year = year - 1900;
	tm.tm_mon = month_of(mon);
	tm.tm_mday = day;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	secs = (long long)timegm(&tm) * 1000 - now_wall_ms;
	if (secs < 0)
		return 0;
	return secs > max_ms ? max_ms : secs;
}

const char *tg_bb_result_name(long http, int timed_out)
{
	if (timed_out)
		return "timeout";
	if (http == 0)
		return "error";
	if (http >= 200 && http < 300)
		return "ok";
	if (http == 401 || http == 403)
		return "unauthorized";
	if (http == 404)
		return "not_found";
	if (http == 429)
		return "rate_limited";
	if (http >= 500)
		return "server_error";
	return "rejected";
}

int tg_bb_retryable(long http, int timed_out)
{
	return timed_out || http == 0 || http == 429 || http >= 500;
}
