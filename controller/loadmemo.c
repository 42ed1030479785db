/*
 * Per-file results of earlier loads (see include/tg/loadmemo.h).
 *
 * A load moves the files it reuses from `old` (sorted by file name, for
 * lookups) to `cur`, and adds the files it read; finishing makes `cur` the
 * new `old`.  What a load did not meet (files deleted or changed) is
 * dropped then, so the memo never holds more than the last commit.
 *
 * The file is text, one line per file and one per object, written whole
 * and renamed into place, and ends in the SHA-256 of what comes before it:
 *   tyk-gitops-desired 1 <hex of the key>
 *   f <hex of the file name> <content id> <bytes> <seen> <objects>
 *   o <kind> <line> <column> <hash> <envelope length> <envelope JSON><body JSON>
 *   end <hex sha256>
 * Anything else, a file cut short or a changed byte included, and the whole
 * file is ignored: objects taken from it go to the gateway unchecked.
 *
 * The envelope holds what the loader found (id, name, listen path,
 * references and where they came from); the body is Tyk's object.  A taken
 * object gets its envelope parsed and its body as text, parsed only when a
 * pass needs it (tg_object_body): a pass that finds the object in sync
 * never does.
 */
#include "tg/loadmemo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "tg/buf.h"
#include "tg/json.h"
#include "tg/log.h"
#include "tg/validate.h"
#include "tg/banned.h"

#define FILE_MAGIC "tyk-gitops-desired 2 "
#define FILE_END "end "
/* "end " and 64 hex digits and a newline. */
#define END_LEN (4 + 64 + 1)

struct memo_obj {
	int line, column; /* as tg_object's: they tell a file's objects apart */
	enum tg_kind kind;
	char hash[65];  /* "" until known */
	char *json;     /* envelope and body: the object without file and position */
	size_t env_len; /* json[0..env_len) is the envelope */
};

struct memo_file {
	char *file; /* as tg_object.file */
	char id[65];
	size_t bytes, seen, n;
	struct memo_obj *objs;
	int taken; /* moved to the load's files: an empty slot, kept for bsearch */
};

struct tg_loadmemo {
	char *path; /* NULL: memory only */
	char *key;
	struct memo_file *old; /* sorted by file */
	size_t n_old;
	struct memo_file *cur; /* this load's */
	size_t n_cur, alloc_cur;
	size_t text;    /* bytes of JSON in cur and old, for the bound */
	size_t taken;   /* files this load took from old */
	int read;       /* the file was read */
	int cur_sorted; /* cur is sorted by file, for the hash lookups */
	int dirty;      /* differs from the file */
};

static void memo_file_release(struct memo_file *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->objs[i].json);
	free(f->objs);
	free(f->file);
	memset(f, 0, sizeof(*f));
}

static void files_free(struct memo_file *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		memo_file_release(&v[i]);
	free(v);
}

static int cmp_file(const void *a, const void *b)
{
	return strcmp(((const struct memo_file *)a)->file, ((const struct memo_file *)b)->file);
}

static struct memo_file *find(struct memo_file *v, size_t n, const char *file)
{
	struct memo_file key;

	if (!n)
		return NULL;
	memset(&key, 0, sizeof(key));
	key.file = (char *)file;
	return bsearch(&key, v, n, sizeof(*v), cmp_file);
}

/* Sorts v and drops repeated names (the first stays); returns the length. */
static size_t sort_unique(struct memo_file *v, size_t n)
{
	size_t w = 0;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), cmp_file);
	for (size_t i = 0; i < n; i++) {
		if (w && !strcmp(v[w - 1].file, v[i].file))
			memo_file_release(&v[i]);
		else
			v[w++] = v[i];
	}
	return w;
}

struct tg_loadmemo *tg_loadmemo_new(const char *path)
{
	struct tg_loadmemo *m = tg_xcalloc(1, sizeof(*m));

	m->path = path ? tg_xstrdup(path) : NULL;
	m->key = tg_xstrdup("");
	return m;
}

void tg_loadmemo_free(struct tg_loadmemo *m)
{
	if (!m)
		return;
	files_free(m->old, m->n_old);
	files_free(m->cur, m->n_cur);
	free(m->path);
	free(m->key);
	free(m);
}

size_t tg_loadmemo_len(const struct tg_loadmemo *m)
{
	return m->n_old;
}

size_t tg_loadmemo_taken(const struct tg_loadmemo *m)
{
	return m->taken;
}

/* --- the file --- */

static void put_hex(struct tg_buf *b, const char *s)
{
	static const char hex[] = "0123456789abcdef";

	for (; *s; s++) {
		char two[2] = { hex[(unsigned char)*s >> 4], hex[(unsigned char)*s & 15] };

		tg_buf_put(b, two, 2);
	}
}

static int hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The text hex[0..n) spells, or NULL when it is not lowercase hex of a
 * string without NUL. */
static char *get_hex(const char *hex, size_t n)
{
	char *out;

	if (n % 2)
		return NULL;
	out = tg_xmalloc(n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);

		if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
			free(out);
			return NULL;
		}
		out[i] = (char)(hi << 4 | lo);
	}
	out[n / 2] = '\0';
	return out;
}

/* The next space-separated field of [*s, end), or NULL; last takes the
 * rest of the line. */
static const char *field(const char **s, const char *end, size_t *n, int last)
{
	const char *f = *s, *sp;

	if (f >= end)
		return NULL;
	sp = last ? end : memchr(f, ' ', (size_t)(end - f));
	if (!sp)
		return NULL;
	*n = (size_t)(sp - f);
	*s = sp + (sp < end);
	return *n ? f : NULL;
}

static int get_size(size_t *out, const char *f, size_t n)
{
	char tmp[24];
	long long v;

	if (n >= sizeof(tmp))
		return -1;
	memcpy(tmp, f, n);
	tmp[n] = '\0';
	if (tg_parse_ll(&v, tmp, 0, (long long)TG_LOADMEMO_MAX_FILE * 64))
		return -1;
	*out = (size_t)v;
	return 0;
}

static int is_hex_id(const char *f, size_t n)
{
	if (n < 40 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (hex_val(f[i]) < 0)
			return 0;
	return 1;
}

/* "f <file> <id> <bytes> <seen> <n>"; -1 when it is not such a line. */
static int parse_file_line(struct memo_file *f, const char *s, const char *end)
{
	const char *x;
	size_t n;

	memset(f, 0, sizeof(*f));
	if (!(x = field(&s, end, &n, 0)) || n != 1 || x[0] != 'f')
		return -1;
	if (!(x = field(&s, end, &n, 0)) || !(f->file = get_hex(x, n)))
		return -1;
	if (!(x = field(&s, end, &n, 0)) || !is_hex_id(x, n))
		return -1;
	memcpy(f->id, x, n);
	f->id[n] = '\0';
	if (!(x = field(&s, end, &n, 0)) || get_size(&f->bytes, x, n) ||
	    !(x = field(&s, end, &n, 0)) || get_size(&f->seen, x, n) ||
	    !(x = field(&s, end, &n, 1)) || get_size(&f->n, x, n) || f->n > 1024 * 1024)
		return -1;
	f->objs = tg_xcalloc(f->n ? f->n : 1, sizeof(*f->objs));
	return 0;
}

static int get_int(int *out, const char *f, size_t n)
{
	size_t v;

	if (get_size(&v, f, n) || v > 0x7fffffff)
		return -1;
	*out = (int)v;
	return 0;
}

/* "o <kind> <line> <column> <hash> <envelope length> <json>"; -1 when it is
 * not such a line. */
static int parse_obj_line(struct memo_obj *o, const char *s, const char *end)
{
	const char *x;
	size_t n;

	if (!(x = field(&s, end, &n, 0)) || n != 1 || x[0] != 'o')
		return -1;
	if (!(x = field(&s, end, &n, 0)) || n != 1 || x[0] < '0' || x[0] >= '0' + TG_KIND_COUNT)
		return -1;
	o->kind = (enum tg_kind)(x[0] - '0');
	if (!(x = field(&s, end, &n, 0)) || get_int(&o->line, x, n) ||
	    !(x = field(&s, end, &n, 0)) || get_int(&o->column, x, n))
		return -1;
	if (!(x = field(&s, end, &n, 0)) || n != 64 || !is_hex_id(x, n))
		return -1;
	memcpy(o->hash, x, 64);
	o->hash[64] = '\0';
	if (!(x = field(&s, end, &n, 0)) || get_size(&o->env_len, x, n))
		return -1;
	if (!(x = field(&s, end, &n, 1)) || o->env_len < 2 || o->env_len + 2 > n || x[0] != '{' ||
	    x[o->env_len] != '{')
		return -1;
	o->json = tg_xstrndup(x, n);
	return 0;
}

static int parse_entries(struct tg_loadmemo *m, const char *s, const char *end)
{
	struct memo_file *v = NULL, *f;
	size_t n = 0, alloc = 0, text = 0;
	const char *nl;

	for (; s < end; s = nl + 1) {
		if (!(nl = memchr(s, '\n', (size_t)(end - s))))
			goto bad;
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 256;
			v = tg_xreallocarray(v, alloc, sizeof(*v));
		}
		f = &v[n++];
		if (parse_file_line(f, s, nl))
			goto bad;
		for (size_t i = 0; i < f->n; i++) {
			s = nl + 1;
			if (s >= end || !(nl = memchr(s, '\n', (size_t)(end - s))) ||
			    parse_obj_line(&f->objs[i], s, nl))
				goto bad;
			text += (size_t)(nl - s);
		}
	}
	m->old = v;
	m->n_old = sort_unique(v, n);
	m->text = text;
	return 0;
bad:
	files_free(v, n);
	return -1;
}

static void digest_hex(char out[65], const char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL)) {
		fprintf(stderr, "{\"level\":\"error\",\"msg\":\"cannot hash: openssl failed\"}\n");
		abort();
	}
	for (unsigned int i = 0; i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

/* Whether data[0..len) ends in the "end" line of what comes before it;
 * *body_len gets the length before it. */
static int intact(const char *data, size_t len, size_t *body_len)
{
	char want[65];

	if (len < END_LEN)
		return 0;
	*body_len = len - END_LEN;
	digest_hex(want, data, *body_len);
	return !memcmp(data + *body_len, FILE_END, 4) && !memcmp(data + *body_len + 4, want, 64) &&
	       data[len - 1] == '\n';
}

static void read_file(struct tg_loadmemo *m)
{
	struct tg_buf magic = TG_BUF_INIT;
	char *data = NULL;
	size_t len = 0, body = 0;

	m->read = 1;
	m->dirty = 1; /* until the file turns out to hold what memory does */
	if (!m->path || tg_read_file(&data, &len, m->path, TG_LOADMEMO_MAX_FILE, NULL))
		return;
	tg_buf_puts(&magic, FILE_MAGIC);
	put_hex(&magic, m->key);
	tg_buf_put(&magic, "\n", 1);
	if (!intact(data, len, &body) || body < magic.len || memcmp(data, magic.ptr, magic.len) ||
	    parse_entries(m, data + magic.len, data + body))
		tg_log_kv(TG_LOG_DEBUG, "ignoring the desired-state cache: not one for this load",
			  "file", m->path, NULL);
	else
		m->dirty = 0;
	tg_buf_release(&magic);
	free(data);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int save(struct tg_loadmemo *m, struct tg_err *err)
{
	struct tg_buf b;
	char *tmp = NULL;
	int fd = -1, rc = 0;

	tg_buf_init(&b, TG_LOADMEMO_MAX_FILE);
	tg_buf_puts(&b, FILE_MAGIC);
	put_hex(&b, m->key);
	tg_buf_put(&b, "\n", 1);
	for (size_t i = 0; i < m->n_old; i++) {
		const struct memo_file *f = &m->old[i];

		tg_buf_puts(&b, "f ");
		put_hex(&b, f->file);
		tg_buf_printf(&b, " %s %zu %zu %zu\n", f->id, f->bytes, f->seen, f->n);
		for (size_t k = 0; k < f->n; k++)
			tg_buf_printf(&b, "o %d %d %d %s %zu %s\n", (int)f->objs[k].kind,
				      f->objs[k].line, f->objs[k].column, f->objs[k].hash,
				      f->objs[k].env_len, f->objs[k].json);
	}
	if (!tg_buf_overflowed(&b)) {
		char sum[65];

		digest_hex(sum, b.ptr, b.len);
		tg_buf_printf(&b, FILE_END "%s\n", sum);
	}
	tmp = tg_xasprintf("%s.tmp", m->path);
	if (tg_buf_overflowed(&b)) {
		/* Too big to keep: no stale file either. */
		unlink(m->path);
		rc = tg_err_set(err, TG_ERROR, "desired-state cache is over %zu bytes",
				TG_LOADMEMO_MAX_FILE);
		goto out;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write_all(fd, b.ptr, b.len) < 0 || close(fd) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot write '%s': %s", tmp, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		goto out;
	}
	if (rename(tmp, m->path) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot replace '%s': %s", m->path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	m->dirty = 0;
out:
	free(tmp);
	tg_buf_release(&b);
	return rc;
}

/* --- objects as JSON --- */

static void oom(void)
{
	fprintf(stderr, "{\"level\":\"error\",\"msg\":\"out of memory building json\"}\n");
	abort();
}

/* Appends src as field (or null), line, column. */
static void put_src(cJSON *a, const struct tg_src *src)
{
	cJSON_AddItemToArray(a, tg_json_checked(src->field ? cJSON_CreateString(src->field)
							   : cJSON_CreateNull()));
	cJSON_AddItemToArray(a, tg_json_checked(cJSON_CreateNumber(src->line)));
	cJSON_AddItemToArray(a, tg_json_checked(cJSON_CreateNumber(src->column)));
}

static void add_src(cJSON *env, const char *key, const struct tg_src *src)
{
	cJSON *a = tg_json_checked(cJSON_CreateArray());

	put_src(a, src);
	cJSON_AddItemToObject(env, key, a);
}

static void add_opt_string(cJSON *env, const char *key, const char *s)
{
	if (s)
		cJSON_AddItemToObject(env, key, tg_json_checked(cJSON_CreateString(s)));
}

/* A raw number prints as its text and would parse back as a double. */
static int has_raw(const cJSON *v)
{
	for (; v; v = v->next)
		if (cJSON_IsRaw(v) || has_raw(v->child))
			return 1;
	return 0;
}

/* o as compact JSON, envelope then body (*env_len: the envelope's length),
 * or NULL when it cannot be kept: what tg_object holds but the file (the
 * entry's) and its start (the "o" line's). */
static char *object_json(const struct tg_object *o, size_t *env_len)
{
	cJSON *env, *refs;
	char *envelope, *body, *json;

	if (o->pos || !o->body || has_raw(o->body))
		return NULL;
	env = tg_json_checked(cJSON_CreateObject());
	cJSON_AddItemToObject(env, "id", tg_json_checked(cJSON_CreateString(o->id)));
	add_opt_string(env, "name", o->name);
	add_opt_string(env, "lp", o->listen_path);
	add_opt_string(env, "domain", o->domain);
	add_src(env, "ids", &o->id_src);
	add_src(env, "lps", &o->listen_path_src);
	refs = tg_json_checked(cJSON_CreateArray());
	for (size_t i = 0; i < o->n_api_refs; i++) {
		cJSON *r = tg_json_checked(cJSON_CreateArray());

		cJSON_AddItemToArray(r, tg_json_checked(cJSON_CreateString(o->api_refs[i])));
		put_src(r, &o->api_ref_srcs[i]);
		cJSON_AddItemToArray(refs, r);
	}
	cJSON_AddItemToObject(env, "refs", refs);
	envelope = cJSON_PrintUnformatted(env);
	cJSON_Delete(env);
	body = cJSON_PrintUnformatted(o->body);
	if (!envelope || !body)
		oom();
	*env_len = strlen(envelope);
	json = tg_xasprintf("%s%s", envelope, body);
	cJSON_free(envelope);
	cJSON_free(body);
	return json;
}

static char *opt_string(const cJSON *env, const char *key, int *bad)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(env, key);

	if (!v)
		return NULL;
	if (!cJSON_IsString(v)) {
		*bad = 1;
		return NULL;
	}
	return tg_xstrdup(v->valuestring);
}

/* a[first..first+3): field or null, line, column. */
static int get_src(struct tg_src *src, const cJSON *a, int first)
{
	const cJSON *f = cJSON_GetArrayItem(a, first), *l = cJSON_GetArrayItem(a, first + 1),
		    *c = cJSON_GetArrayItem(a, first + 2);

	if (!f || !cJSON_IsNumber(l) || !cJSON_IsNumber(c) ||
	    (!cJSON_IsString(f) && !cJSON_IsNull(f)))
		return -1;
	src->field = cJSON_IsString(f) ? tg_xstrdup(f->valuestring) : NULL;
	src->line = l->valueint;
	src->column = c->valueint;
	return 0;
}

static int get_refs(struct tg_object *o, const cJSON *refs)
{
	size_t n = (size_t)cJSON_GetArraySize(refs);
	const cJSON *r;

	if (!n)
		return 0;
	o->api_refs = tg_xcalloc(n, sizeof(*o->api_refs));
	o->api_ref_srcs = tg_xcalloc(n, sizeof(*o->api_ref_srcs));
	cJSON_ArrayForEach(r, refs)
	{
		const cJSON *id = cJSON_GetArrayItem(r, 0);

		if (!cJSON_IsString(id))
			return -1;
		o->api_refs[o->n_api_refs] = tg_xstrdup(id->valuestring);
		if (get_src(&o->api_ref_srcs[o->n_api_refs], r, 1)) {
			free(o->api_refs[o->n_api_refs]);
			return -1;
		}
		o->n_api_refs++;
	}
	return 0;
}

/* Fills o (zeroed, kind and start set) from mo: the envelope parsed, the
 * body kept as text; -1 when it is not what object_json wrote (o then holds
 * what was read, for release). */
static int restore(struct tg_object *o, const struct memo_obj *mo)
{
	cJSON *env = cJSON_ParseWithLength(mo->json, mo->env_len);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(env, "id");
	const cJSON *refs = cJSON_GetObjectItemCaseSensitive(env, "refs");
	int bad = 0;

	if (!cJSON_IsObject(env) || !cJSON_IsString(id) ||
	    tg_validate_id(id->valuestring, o->kind != TG_KIND_POLICY) || !cJSON_IsArray(refs) ||
	    get_src(&o->id_src, cJSON_GetObjectItemCaseSensitive(env, "ids"), 0) ||
	    get_src(&o->listen_path_src, cJSON_GetObjectItemCaseSensitive(env, "lps"), 0) ||
	    get_refs(o, refs)) {
		cJSON_Delete(env);
		return -1;
	}
	o->id = tg_xstrdup(id->valuestring);
	o->name = opt_string(env, "name", &bad);
	o->listen_path = opt_string(env, "lp", &bad);
	o->domain = opt_string(env, "domain", &bad);
	o->body_text = tg_xstrdup(mo->json + mo->env_len);
	cJSON_Delete(env);
	return bad ? -1 : 0;
}

/* --- a load --- */

/* What a load left unfinished: settled as if it had finished. */
static void settle(struct tg_loadmemo *m)
{
	size_t w = 0;

	for (size_t i = 0; i < m->n_cur; i++) {
		struct memo_file *f = &m->cur[i];
		int complete = 1;

		for (size_t k = 0; k < f->n; k++)
			complete = complete && f->objs[k].hash[0];
		if (complete) {
			m->cur[w++] = *f;
		} else {
			m->dirty = 1;
			memo_file_release(f);
		}
	}
	m->n_cur = w;
	for (size_t i = 0; i < m->n_old; i++)
		if (!m->old[i].taken)
			m->dirty = 1;
	files_free(m->old, m->n_old);
	m->old = m->cur;
	m->n_old = sort_unique(m->cur, m->n_cur);
	m->cur = NULL;
	m->n_cur = m->alloc_cur = 0;
	m->text = 0;
	for (size_t i = 0; i < m->n_old; i++)
		for (size_t k = 0; k < m->old[i].n; k++)
			m->text += strlen(m->old[i].objs[k].json);
}

void tg_loadmemo_begin(struct tg_loadmemo *m, const char *key)
{
	if (m->cur || m->n_cur)
		settle(m);
	m->taken = 0;
	m->cur_sorted = 0;
	if (strcmp(m->key, key)) {
		free(m->key);
		m->key = tg_xstrdup(key);
		files_free(m->old, m->n_old);
		m->old = NULL;
		m->n_old = 0;
		m->text = 0;
		m->read = 0;
	}
	if (!m->read && !m->n_old)
		read_file(m);
	m->read = 1;
}

static struct memo_file *cur_push(struct tg_loadmemo *m)
{
	if (m->n_cur == m->alloc_cur) {
		m->alloc_cur = m->alloc_cur ? m->alloc_cur * 2 : 256;
		m->cur = tg_xreallocarray(m->cur, m->alloc_cur, sizeof(*m->cur));
	}
	m->cur_sorted = 0;
	memset(&m->cur[m->n_cur], 0, sizeof(*m->cur));
	return &m->cur[m->n_cur++];
}

static struct tg_object *object_push(struct tg_desired *d)
{
	struct tg_object *o;

	if (d->len == d->alloc) {
		d->alloc = d->alloc ? d->alloc * 2 : 64;
		d->objects = tg_xreallocarray(d->objects, d->alloc, sizeof(*d->objects));
	}
	o = &d->objects[d->len++];
	memset(o, 0, sizeof(*o));
	return o;
}

int tg_loadmemo_take(struct tg_loadmemo *m, const char *file, const char *id, struct tg_desired *d,
		     size_t *bytes, size_t *seen)
{
	struct memo_file *f = find(m->old, m->n_old, file), *cur;
	size_t first = d->len;

	if (!f || f->taken || strcmp(f->id, id))
		return -1;
	for (size_t k = 0; k < f->n; k++) {
		struct tg_object *o = object_push(d);

		o->kind = f->objs[k].kind;
		o->line = f->objs[k].line;
		o->column = f->objs[k].column;
		o->file = tg_xstrdup(file);
		if (restore(o, &f->objs[k])) {
			/* Not what this version writes: the file is read instead. */
			while (d->len > first)
				tg_object_release(&d->objects[--d->len]);
			return -1;
		}
	}
	*bytes = f->bytes;
	*seen = f->seen;
	cur = cur_push(m);
	*cur = *f;
	cur->file = tg_xstrdup(f->file);
	f->objs = NULL;
	f->n = 0;
	f->taken = 1;
	m->taken++;
	return 0;
}

void tg_loadmemo_record(struct tg_loadmemo *m, const char *file, const char *id, size_t bytes,
			size_t seen, const struct tg_object *objs, size_t n)
{
	struct memo_obj *mo = tg_xcalloc(n ? n : 1, sizeof(*mo));
	struct memo_file *f;
	size_t text = 0;

	for (size_t k = 0; k < n; k++) {
		mo[k].kind = objs[k].kind;
		mo[k].line = objs[k].line;
		mo[k].column = objs[k].column;
		mo[k].json = object_json(&objs[k], &mo[k].env_len);
		text += mo[k].json ? strlen(mo[k].json) : 0;
		if (!mo[k].json || m->text + text > TG_LOADMEMO_MAX_FILE / 2) {
			for (size_t i = 0; i <= k; i++)
				free(mo[i].json);
			free(mo);
			return;
		}
	}
	m->text += text;
	m->dirty = 1;
	f = cur_push(m);
	f->file = tg_xstrdup(file);
	snprintf(f->id, sizeof(f->id), "%s", id);
	f->bytes = bytes;
	f->seen = seen;
	f->n = n;
	f->objs = mo;
}

static struct memo_obj *obj_of(struct tg_loadmemo *m, const struct tg_object *o)
{
	struct memo_file *f;

	if (!m->cur_sorted) {
		if (m->n_cur)
			qsort(m->cur, m->n_cur, sizeof(*m->cur), cmp_file);
		m->cur_sorted = 1;
	}
	f = find(m->cur, m->n_cur, o->file);
	for (size_t k = 0; f && k < f->n; k++)
		if (f->objs[k].line == o->line && f->objs[k].column == o->column &&
		    f->objs[k].kind == o->kind)
			return &f->objs[k];
	return NULL;
}

int tg_loadmemo_hash(struct tg_loadmemo *m, const struct tg_object *o, char out[65])
{
	const struct memo_obj *mo = obj_of(m, o);

	if (!mo || !mo->hash[0])
		return -1;
	memcpy(out, mo->hash, 65);
	return 0;
}

void tg_loadmemo_set_hash(struct tg_loadmemo *m, const struct tg_object *o, const char hash[65])
{
	struct memo_obj *mo = obj_of(m, o);

	if (mo)
		memcpy(mo->hash, hash, 65);
}

int tg_loadmemo_finish(struct tg_loadmemo *m, struct tg_err *err)
{
	settle(m);
	if (!m->path || !m->dirty)
		return 0;
	return save(m, err);
}
