/*
 * Verdicts on list elements by the hash of their bytes (see
 * include/tg/verified.h).
 *
 * The file is text, one entry a line, so that a torn write loses whole
 * entries at worst:
 *   tyk-gitops-verified 1 <hex of the sync's name>
 *   <kind 0|1|2> <s|f|d> <hex sha256 of the bytes> <desired hash|-> <hex id|-> <skeleton JSON|->
 */
#include "tg/verified.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tg/buf.h"
#include "tg/listscan.h"
#include "tg/log.h"
#include "tg/marker.h"
#include "tg/tykobj.h"
#include "tg/banned.h"

#define FILE_MAGIC "tyk-gitops-verified 1 "
/* Longer ids are not cached (desired ids are at most 255 bytes). */
#define MAX_ID 1024

/* OpenSSL failing to hash, or cJSON to allocate: nothing to carry on with. */
static void die(const char *what)
{
	fprintf(stderr, "{\"level\":\"error\",\"msg\":\"%s\"}\n", what);
	abort();
}

enum verdict { V_IN_SYNC = 's', V_FOREIGN = 'f', V_DROPPED = 'd' };

struct entry {
	unsigned char hash[32];
	unsigned char kind;
	unsigned char verdict;
	char desired_hash[65]; /* in sync only */
	char *id;              /* NULL when dropped */
	char *skeleton;        /* compact JSON; NULL when dropped */
};

struct tg_verified {
	char *sync;
	char *path;
	struct entry *e;
	size_t len;
	int loaded, dirty;
};

static void entry_release(struct entry *e)
{
	free(e->id);
	free(e->skeleton);
}

static void entries_free(struct entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		entry_release(&e[i]);
	free(e);
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return memcmp(x->hash, y->hash, sizeof(x->hash));
}

/* Sorts and drops repeated keys (identical elements: one verdict). */
static size_t sort_unique(struct entry *e, size_t n)
{
	size_t out = 0;

	qsort(e, n, sizeof(*e), cmp_entry);
	for (size_t i = 0; i < n; i++) {
		if (out && !cmp_entry(&e[out - 1], &e[i])) {
			entry_release(&e[i]);
			continue;
		}
		e[out++] = e[i];
	}
	return out;
}

static const struct entry *find_entry(const struct tg_verified *v, enum tg_kind kind,
				      const unsigned char hash[32])
{
	struct entry key;

	key.kind = (unsigned char)kind;
	memcpy(key.hash, hash, sizeof(key.hash));
	return v->len ? bsearch(&key, v->e, v->len, sizeof(*v->e), cmp_entry) : NULL;
}

struct tg_verified *tg_verified_new(const char *sync, const char *path)
{
	struct tg_verified *v = tg_xcalloc(1, sizeof(*v));

	v->sync = tg_xstrdup(sync);
	v->path = path ? tg_xstrdup(path) : NULL;
	return v;
}

void tg_verified_free(struct tg_verified *v)
{
	if (!v)
		return;
	entries_free(v->e, v->len);
	free(v->sync);
	free(v->path);
	free(v);
}

size_t tg_verified_count(const struct tg_verified *v)
{
	return v->len;
}

/* --- the file --- */

static void put_hex(struct tg_buf *b, const unsigned char *p, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	char tmp[128];

	while (n) {
		size_t k = n > sizeof(tmp) / 2 ? sizeof(tmp) / 2 : n;

		for (size_t i = 0; i < k; i++) {
			tmp[2 * i] = hex[p[i] >> 4];
			tmp[2 * i + 1] = hex[p[i] & 15];
		}
		tg_buf_put(b, tmp, 2 * k);
		p += k;
		n -= k;
	}
}

/* Decodes n hex digits at s into out (n/2 bytes); -1 on a bad digit. */
static int get_hex(unsigned char *out, const char *s, size_t n)
{
	if (n % 2)
		return -1;
	for (size_t i = 0; i < n; i += 2) {
		int hi = tg_hex_digit(s[i]), lo = tg_hex_digit(s[i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

/* The next space-separated field of the line [*s, end); NULL when none. */
static const char *field(const char **s, const char *end, size_t *n, int last)
{
	const char *start = *s, *sp;

	if (start >= end)
		return NULL;
	sp = last ? end : memchr(start, ' ', (size_t)(end - start));
	if (!sp)
		return NULL;
	*n = (size_t)(sp - start);
	*s = sp + (sp < end);
	return *n ? start : NULL;
}

/* One entry line; -1 when it is not one this version writes. */
static int parse_line(struct entry *e, const char *s, const char *end)
{
	const char *f;
	size_t n;

	memset(e, 0, sizeof(*e));
	if (!(f = field(&s, end, &n, 0)) || n != 1 || f[0] < '0' || f[0] > '2')
		return -1;
	e->kind = (unsigned char)(f[0] - '0');
	if (!(f = field(&s, end, &n, 0)) || n != 1 ||
	    (f[0] != V_IN_SYNC && f[0] != V_FOREIGN && f[0] != V_DROPPED))
		return -1;
	e->verdict = (unsigned char)f[0];
	if (!(f = field(&s, end, &n, 0)) || n != 64 || get_hex(e->hash, f, n))
		return -1;
	if (!(f = field(&s, end, &n, 0)))
		return -1;
	if (e->verdict == V_IN_SYNC) {
		unsigned char tmp[32];

		if (n != 64 || get_hex(tmp, f, n))
			return -1;
		memcpy(e->desired_hash, f, 64);
	} else if (n != 1 || f[0] != '-') {
		return -1;
	}
	if (!(f = field(&s, end, &n, 0)))
		return -1;
	if (e->verdict == V_DROPPED) {
		if (n != 1 || f[0] != '-')
			return -1;
	} else {
		if (n > 2 * MAX_ID)
			return -1;
		e->id = tg_xcalloc(n / 2 + 1, 1);
		if (get_hex((unsigned char *)e->id, f, n) || !e->id[0] || strlen(e->id) != n / 2)
			goto bad;
	}
	if (!(f = field(&s, end, &n, 1)))
		goto bad;
	if (e->verdict == V_DROPPED) {
		if (n != 1 || f[0] != '-')
			goto bad;
	} else {
		e->skeleton = tg_xcalloc(n + 1, 1);
		memcpy(e->skeleton, f, n);
	}
	return 0;
bad:
	entry_release(e);
	memset(e, 0, sizeof(*e));
	return -1;
}

void tg_verified_load(struct tg_verified *v)
{
	struct tg_buf magic = TG_BUF_INIT;
	struct entry *e = NULL;
	size_t n = 0, alloc = 0, len = 0;
	char *data = NULL;
	const char *s, *end, *nl;

	if (v->loaded || !v->path)
		return;
	v->loaded = 1;
	if (tg_read_file(&data, &len, v->path, TG_VERIFIED_MAX_FILE, NULL))
		return;
	tg_buf_puts(&magic, FILE_MAGIC);
	put_hex(&magic, (const unsigned char *)v->sync, strlen(v->sync));
	tg_buf_put(&magic, "\n", 1);
	if (len < magic.len || memcmp(data, magic.ptr, magic.len))
		goto bad;
	end = data + len;
	for (s = data + magic.len; s < end; s = nl + 1) {
		nl = memchr(s, '\n', (size_t)(end - s));
		if (!nl)
			break; /* a torn last line */
		if (n == alloc) {
			alloc = alloc ? alloc * 2 : 256;
			e = tg_xreallocarray(e, alloc, sizeof(*e));
		}
		if (parse_line(&e[n], s, nl))
			goto bad;
		n++;
	}
	entries_free(v->e, v->len);
	v->e = e;
	v->len = sort_unique(e, n);
	goto out;
bad:
	tg_log_kv(TG_LOG_DEBUG, "ignoring the verified-objects cache: not one this version wrote",
		  "file", v->path, NULL);
	entries_free(e, n);
out:
	tg_buf_release(&magic);
	free(data);
}

int tg_verified_save(struct tg_verified *v, struct tg_err *err)
{
	struct tg_buf b;
	char *tmp = NULL;
	int fd = -1, rc = 0;

	if (!v->path || !v->dirty)
		return 0;
	tg_buf_init(&b, TG_VERIFIED_MAX_FILE);
	tg_buf_puts(&b, FILE_MAGIC);
	put_hex(&b, (const unsigned char *)v->sync, strlen(v->sync));
	tg_buf_put(&b, "\n", 1);
	for (size_t i = 0; i < v->len; i++) {
		const struct entry *e = &v->e[i];

		tg_buf_printf(&b, "%d %c ", e->kind, e->verdict);
		put_hex(&b, e->hash, sizeof(e->hash));
		tg_buf_put(&b, " ", 1);
		tg_buf_puts(&b, e->verdict == V_IN_SYNC ? e->desired_hash : "-");
		tg_buf_put(&b, " ", 1);
		if (e->id)
			put_hex(&b, (const unsigned char *)e->id, strlen(e->id));
		else
			tg_buf_put(&b, "-", 1);
		tg_buf_put(&b, " ", 1);
		tg_buf_puts(&b, e->skeleton ? e->skeleton : "-");
		tg_buf_put(&b, "\n", 1);
	}
	if (tg_buf_overflowed(&b)) {
		rc = tg_err_set(err, TG_ERROR, "verified-objects cache is over %zu bytes",
				TG_VERIFIED_MAX_FILE);
		goto out;
	}
	tmp = tg_xasprintf("%s.tmp", v->path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, b.ptr, b.len) != (ssize_t)b.len || close(fd) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot write '%s': %s", tmp, strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		goto out;
	}
	if (rename(tmp, v->path) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot replace '%s': %s", v->path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	v->dirty = 0;
out:
	free(tmp);
	tg_buf_release(&b);
	return rc;
}

/* --- skeletons --- */

static void copy_item(cJSON *to, const cJSON *from, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(from, key);

	if (it)
		cJSON_AddItemToObject(to, key, cJSON_Duplicate(it, 1));
}

/* The marker slot under its container (tg_marker's layout). */
static void copy_slot(cJSON *to, const cJSON *from, const char *container, const char *slot)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(from, container);

	if (!cJSON_GetObjectItemCaseSensitive(c, slot))
		return;
	copy_item(cJSON_AddObjectToObject(to, container), c, slot);
}

/*
 * What the plan, the safety rules and the status rows read of an object
 * they do not diff, and nothing else: its id fields, name, marker and, for
 * a policy, the API ids of its access rights (keys and "api_id", in
 * order).  Every reader looks fields up the same way on the skeleton as on the
 * object (first match), so it gets the same answers.
 */
static cJSON *make_skeleton(enum tg_kind kind, const cJSON *obj)
{
	cJSON *skeleton = cJSON_CreateObject(), *rights, *info;
	const cJSON *gw, *all, *e;

	copy_item(skeleton, obj, "name");
	switch (kind) {
	case TG_KIND_API:
		copy_item(skeleton, obj, "api_id");
		copy_slot(skeleton, obj, "config_data", TG_MARKER_KEY);
		break;
	case TG_KIND_OAS_API:
		gw = cJSON_GetObjectItemCaseSensitive(obj, "x-tyk-api-gateway");
		info = cJSON_AddObjectToObject(
			cJSON_AddObjectToObject(skeleton, "x-tyk-api-gateway"), "info");
		copy_item(info, cJSON_GetObjectItemCaseSensitive(gw, "info"), "id");
		copy_item(skeleton, obj, TG_MARKER_OAS_KEY);
		break;
	case TG_KIND_POLICY:
		copy_item(skeleton, obj, "id");
		copy_item(skeleton, obj, "_id");
		copy_slot(skeleton, obj, "meta_data", TG_MARKER_KEY);
		all = cJSON_GetObjectItemCaseSensitive(obj, "access_rights");
		if (!cJSON_IsObject(all))
			break;
		rights = cJSON_AddObjectToObject(skeleton, "access_rights");
		cJSON_ArrayForEach(e, all)
		{
			cJSON *r = cJSON_CreateObject();

			copy_item(r, e, "api_id");
			if (e->string)
				cJSON_AddItemToObject(rights, e->string, r);
			else
				cJSON_AddItemToArray(rights, r);
		}
		break;
	}
	return skeleton;
}

/* --- a pass --- */

struct dentry {
	uint64_t key; /* of kind and id: most comparisons end there */
	enum tg_kind kind;
	const char *id;
	const char *hash;
};

struct elem {
	const cJSON *obj;
	unsigned char hash[32];
	enum tg_kind kind;
	const struct entry *entry; /* the verdict it stands for when a skeleton */
};

struct tg_verified_pass {
	struct tg_verified *v;
	struct dentry *desired;
	size_t n_desired;
	struct elem *elems;
	size_t n, alloc;
	int sorted;
	unsigned char (*dropped)[32]; /* classic elements that are OAS APIs */
	size_t n_dropped, alloc_dropped;
	EVP_MD *md;
	EVP_MD_CTX *ctx;
	size_t skeletons, parsed;
	struct entry *noted; /* tg_verified_note_in_sync, for tg_verified_merge */
	size_t n_noted, alloc_noted;
};

/* FNV-1a of the kind and the id: an order for lookups, not a digest. */
static uint64_t dentry_key(enum tg_kind kind, const char *id)
{
	uint64_t h = 1469598103934665603ULL ^ (uint64_t)kind;

	for (const unsigned char *c = (const unsigned char *)id; *c; c++)
		h = (h ^ *c) * 1099511628211ULL;
	return h;
}

static int cmp_dentry(const void *a, const void *b)
{
	const struct dentry *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	if (x->kind != y->kind)
		return x->kind < y->kind ? -1 : 1;
	return strcmp(x->id, y->id);
}

static const struct dentry *find_desired(const struct tg_verified_pass *p, enum tg_kind kind,
					 const char *id)
{
	struct dentry key = { dentry_key(kind, id), kind, id, NULL };

	return p->n_desired ? bsearch(&key, p->desired, p->n_desired, sizeof(key), cmp_dentry)
			    : NULL;
}

struct tg_verified_pass *tg_verified_pass_new(struct tg_verified *v, const struct tg_desired *d,
					      const char (*hashes)[65])
{
	struct tg_verified_pass *p = tg_xcalloc(1, sizeof(*p));

	p->v = v;
	p->desired = tg_xcalloc(d->len ? d->len : 1, sizeof(*p->desired));
	for (size_t i = 0; i < d->len; i++) {
		p->desired[i].key = dentry_key(d->objects[i].kind, d->objects[i].id);
		p->desired[i].kind = d->objects[i].kind;
		p->desired[i].id = d->objects[i].id;
		p->desired[i].hash = hashes[i];
	}
	p->n_desired = d->len;
	qsort(p->desired, p->n_desired, sizeof(*p->desired), cmp_dentry);
	p->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	p->ctx = EVP_MD_CTX_new();
	if (!p->md || !p->ctx)
		die("cannot set up SHA-256");
	return p;
}

void tg_verified_pass_free(struct tg_verified_pass *p)
{
	if (!p)
		return;
	free(p->desired);
	free(p->elems);
	free(p->dropped);
	entries_free(p->noted, p->n_noted);
	EVP_MD_CTX_free(p->ctx);
	EVP_MD_free(p->md);
	free(p);
}

void tg_verified_pass_counts(const struct tg_verified_pass *p, size_t *skeletons, size_t *parsed)
{
	*skeletons = p->skeletons;
	*parsed = p->parsed;
}

static void digest(struct tg_verified_pass *p, unsigned char out[32], const char *data, size_t len)
{
	unsigned int n = 0;

	if (!EVP_DigestInit_ex2(p->ctx, p->md, NULL) || !EVP_DigestUpdate(p->ctx, data, len) ||
	    !EVP_DigestFinal_ex(p->ctx, out, &n) || n != 32)
		die("SHA-256 failed");
}

static void add_elem(struct tg_verified_pass *p, const cJSON *obj, const unsigned char hash[32],
		     enum tg_kind kind, const struct entry *e)
{
	if (p->n == p->alloc) {
		p->alloc = p->alloc ? p->alloc * 2 : 256;
		p->elems = tg_xreallocarray(p->elems, p->alloc, sizeof(*p->elems));
	}
	p->elems[p->n].obj = obj;
	memcpy(p->elems[p->n].hash, hash, 32);
	p->elems[p->n].kind = kind;
	p->elems[p->n].entry = e;
	p->n++;
	p->sorted = 0;
}

static void add_dropped(struct tg_verified_pass *p, const unsigned char hash[32])
{
	if (p->n_dropped == p->alloc_dropped) {
		p->alloc_dropped = p->alloc_dropped ? p->alloc_dropped * 2 : 16;
		p->dropped = tg_xreallocarray(p->dropped, p->alloc_dropped, sizeof(*p->dropped));
	}
	memcpy(p->dropped[p->n_dropped++], hash, 32);
}

/* The skeleton for an element whose verdict still holds, or NULL. */
static cJSON *skeleton_for(const struct tg_verified_pass *p, const struct entry *e)
{
	const struct dentry *d = find_desired(p, (enum tg_kind)e->kind, e->id);

	if (e->verdict == V_IN_SYNC ? !d || strcmp(d->hash, e->desired_hash) : d != NULL)
		return NULL;
	return cJSON_ParseWithLength(e->skeleton, strlen(e->skeleton));
}

struct tg_verified_feed {
	struct tg_verified_pass *p;
	enum tg_kind kind;
	struct tg_listscan_feed scan;
	size_t scanned_to; /* the reply's length when last scanned */
	cJSON *list;
	int failed; /* the scanner refused the reply or an element is not JSON */
	size_t skeletons, parsed;
	tg_verified_visit_fn visit; /* NULL: elements go into the list */
	void *visit_ctx;
};

struct tg_verified_feed *tg_verified_feed_new(struct tg_verified_pass *p, enum tg_kind kind)
{
	struct tg_verified_feed *f = tg_xcalloc(1, sizeof(*f));

	f->p = p;
	f->kind = kind;
	tg_listscan_feed_init(&f->scan);
	f->list = cJSON_CreateArray();
	if (!f->list)
		die("out of memory");
	return f;
}

struct tg_verified_feed *tg_verified_feed_visiting(struct tg_verified_pass *p, enum tg_kind kind,
						   tg_verified_visit_fn visit, void *ctx)
{
	struct tg_verified_feed *f = tg_verified_feed_new(p, kind);

	f->visit = visit;
	f->visit_ctx = ctx;
	return f;
}

/* Forgets what the list added to the pass (its elements' trees go with
 * the list).  Lists of other kinds may be arriving at the same time: only
 * this kind's elements are taken out. */
static void feed_undo(struct tg_verified_feed *f)
{
	struct tg_verified_pass *p = f->p;
	size_t kept = 0;

	for (size_t i = 0; i < p->n; i++)
		if (p->elems[i].kind != f->kind)
			p->elems[kept++] = p->elems[i];
	p->n = kept;
	if (f->kind == TG_KIND_API)
		p->n_dropped = 0;
	p->skeletons -= f->skeletons;
	p->parsed -= f->parsed;
	f->skeletons = f->parsed = 0;
	f->scanned_to = 0;
	cJSON_Delete(f->list);
	f->list = NULL;
}

void tg_verified_feed_free(struct tg_verified_feed *f)
{
	if (!f)
		return;
	feed_undo(f);
	free(f);
}

/* One element of the list: a skeleton when its verdict holds, else parsed
 * (an OAS API in the classic list is left out either way). */
static void feed_element(struct tg_verified_feed *f, const char *at, size_t n)
{
	struct tg_verified_pass *p = f->p;
	const struct entry *e;
	unsigned char hash[32];
	cJSON *obj = NULL;

	digest(p, hash, at, n);
	e = find_entry(p->v, f->kind, hash);
	if (e && e->verdict == V_DROPPED) {
		add_dropped(p, hash);
		p->skeletons++;
		f->skeletons++;
		return;
	}
	if (e && (obj = skeleton_for(p, e)) != NULL) {
		p->skeletons++;
		f->skeletons++;
	} else {
		e = NULL;
		obj = cJSON_ParseWithLength(at, n);
		if (!obj) {
			f->failed = 1;
			return;
		}
		p->parsed++;
		f->parsed++;
		/* The classic list also holds OAS APIs in classic form. */
		if (f->kind == TG_KIND_API &&
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(obj, "is_oas"))) {
			cJSON_Delete(obj);
			add_dropped(p, hash);
			return;
		}
	}
	if (f->visit) {
		f->visit(f->visit_ctx, f->kind, obj, hash, e != NULL);
		cJSON_Delete(obj);
		return;
	}
	cJSON_AddItemToArray(f->list, obj);
	add_elem(p, obj, hash, f->kind, e);
}

static void feed_scan(struct tg_verified_feed *f, const char *data, size_t len, int final)
{
	struct tg_listscan_range r;
	int rc = 0;

	while (!f->failed && (rc = tg_listscan_next(&f->scan, data, len, final, &r)) == 1)
		feed_element(f, data + r.off, r.len);
	if (!f->failed && rc)
		f->failed = 1;
	f->scanned_to = len;
}

/* Bytes to wait for between scans: an element cut by the end of what has
 * arrived is scanned again from its start, so not at every small read. */
#define FEED_STEP ((size_t)64 * 1024)

size_t tg_verified_feed_progress(void *feed, const char *data, size_t len)
{
	struct tg_verified_feed *f = feed;
	size_t done;

	if (!data) {
		/* The request starts over: so does the list. */
		feed_undo(f);
		f->failed = 0;
		tg_listscan_feed_init(&f->scan);
		f->list = cJSON_CreateArray();
		if (!f->list)
			die("out of memory");
		return 0;
	}
	if (len - f->scanned_to < FEED_STEP)
		return 0;
	feed_scan(f, data, len, 0);
	if (f->failed)
		return 0;
	/* The elements handled are let go: what follows moves to the start. */
	done = tg_listscan_feed_done(&f->scan);
	tg_listscan_feed_shift(&f->scan, done);
	f->scanned_to -= done;
	return done;
}

int tg_verified_feed_finish(struct tg_verified_feed *f, const char *data, size_t len, cJSON **out)
{
	int rc = TG_EINVALID;

	*out = NULL;
	feed_scan(f, data, len, 1);
	if (!f->failed) {
		*out = f->list;
		f->list = NULL;
		rc = 0;
	} else {
		feed_undo(f);
	}
	free(f);
	return rc;
}

int tg_verified_list(struct tg_verified_pass *p, enum tg_kind kind, const char *data, size_t len,
		     cJSON **out)
{
	return tg_verified_feed_finish(tg_verified_feed_new(p, kind), data, len, out);
}

static int cmp_elem_obj(const void *a, const void *b)
{
	const struct elem *x = a, *y = b;

	return x->obj < y->obj ? -1 : x->obj > y->obj;
}

static const struct elem *find_elem(struct tg_verified_pass *p, const cJSON *obj)
{
	struct elem key;

	if (!p->sorted) {
		qsort(p->elems, p->n, sizeof(*p->elems), cmp_elem_obj);
		p->sorted = 1;
	}
	key.obj = obj;
	return p->n ? bsearch(&key, p->elems, p->n, sizeof(*p->elems), cmp_elem_obj) : NULL;
}

int tg_verified_in_sync(void *pass, enum tg_kind kind, const cJSON *obj)
{
	const struct elem *el = find_elem(pass, obj);

	return el && el->kind == kind && el->entry && el->entry->verdict == V_IN_SYNC;
}

static int cmp_item_actual(const void *a, const void *b)
{
	const struct tg_plan_item *const *x = a, *const *y = b;
	const void *pa = (*x)->actual, *pb = (*y)->actual;

	return pa < pb ? -1 : pa > pb;
}

static int holds_secret(const char *s, const char *const *secrets, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (secrets[i][0] && strstr(s, secrets[i]))
			return 1;
	return 0;
}

/* The plan item whose actual is obj, among the unchanged items sorted by
 * address (items hold a pointer to their element), or NULL. */
static const struct tg_plan_item *item_of(const struct tg_plan_item **none, size_t n_none,
					  const cJSON *obj)
{
	for (size_t lo = 0, hi = n_none; lo < hi;) {
		size_t mid = lo + (hi - lo) / 2;
		const void *a = none[mid]->actual;

		if (a == (const void *)obj)
			return none[mid];
		if (a < (const void *)obj)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* The verdict this pass reached on an element (0: none to record, e.g. it
 * is to be written); *desired_hash is set for one in sync. */
static int elem_verdict(const struct tg_verified_pass *p, const struct elem *el,
			const struct tg_plan_item **none, size_t n_none, const char **desired_hash)
{
	const char *id = tg_tyk_id(el->kind, el->obj);
	const char *owner = tg_marker_get(el->kind, el->obj, "sync");
	const struct tg_plan_item *it = item_of(none, n_none, el->obj);

	*desired_hash = NULL;
	if (!id || strlen(id) > MAX_ID)
		return 0;
	if (it && it->kind == el->kind && !strcmp(it->id, id)) {
		*desired_hash = it->desired_hash;
		return V_IN_SYNC;
	}
	if (!find_desired(p, el->kind, id) && !(owner && !strcmp(owner, p->v->sync)))
		return V_FOREIGN;
	return 0;
}

/*
 * Whether the pass's verdicts are exactly the cache's: every element a
 * skeleton of an entry whose verdict still holds, every dropped element
 * known, and every entry seen.  The usual drift pass: the cache is then
 * kept as it is instead of rebuilt.  With secrets, entries are checked
 * against them again (rebuilt).
 */
static int record_changes_nothing(const struct tg_verified_pass *p, const unsigned char *verdicts,
				  const char *const *desired_hashes, size_t n_secrets)
{
	const struct tg_verified *v = p->v;
	unsigned char *seen;
	size_t distinct = 0;
	int same = !n_secrets;

	if (!same)
		return 0;
	seen = tg_xcalloc(v->len + 1, 1);
	for (size_t i = 0; i < p->n && same; i++) {
		const struct entry *e = p->elems[i].entry;

		same = e && e->verdict == verdicts[i] &&
		       (verdicts[i] != V_IN_SYNC || !strcmp(e->desired_hash, desired_hashes[i]));
		if (same && !seen[e - v->e]++)
			distinct++;
	}
	for (size_t i = 0; i < p->n_dropped && same; i++) {
		const struct entry *e = find_entry(v, TG_KIND_API, p->dropped[i]);

		same = e != NULL;
		if (same && !seen[e - v->e]++)
			distinct++;
	}
	free(seen);
	return same && distinct == v->len;
}

void tg_verified_record(struct tg_verified_pass *p, const struct tg_plan *plan,
			const char *const *secrets, size_t n_secrets)
{
	struct tg_verified *v = p->v;
	const struct tg_plan_item **none = tg_xcalloc(plan->len + 1, sizeof(*none));
	unsigned char *verdicts = tg_xcalloc(p->n + 1, 1);
	const char **desired_hashes = tg_xcalloc(p->n + 1, sizeof(*desired_hashes));
	struct entry *e = NULL;
	size_t n_none = 0, n = 0, fresh = 0;

	for (size_t i = 0; i < plan->len; i++)
		if (plan->items[i].action == TG_ACTION_NONE && plan->items[i].actual)
			none[n_none++] = &plan->items[i];
	qsort(none, n_none, sizeof(*none), cmp_item_actual);
	for (size_t i = 0; i < p->n; i++)
		verdicts[i] = (unsigned char)elem_verdict(p, &p->elems[i], none, n_none,
							  &desired_hashes[i]);
	if (record_changes_nothing(p, verdicts, desired_hashes, n_secrets))
		goto out;
	e = tg_xcalloc(p->n + p->n_dropped + 1, sizeof(*e));
	for (size_t i = 0; i < p->n; i++) {
		const struct elem *el = &p->elems[i];
		const char *id = tg_tyk_id(el->kind, el->obj);
		struct entry *ne = &e[n];
		char *skeleton;

		if (!verdicts[i])
			continue;
		memset(ne, 0, sizeof(*ne));
		ne->verdict = verdicts[i];
		if (ne->verdict == V_IN_SYNC)
			memcpy(ne->desired_hash, desired_hashes[i], 65);
		if (el->entry && el->entry->verdict == ne->verdict) {
			skeleton = tg_xstrdup(el->entry->skeleton);
		} else {
			cJSON *s = make_skeleton(el->kind, el->obj);

			skeleton = cJSON_PrintUnformatted(s);
			cJSON_Delete(s);
			if (!skeleton)
				die("out of memory");
			fresh++;
		}
		if (strchr(skeleton, '\n') || holds_secret(skeleton, secrets, n_secrets) ||
		    holds_secret(id, secrets, n_secrets)) {
			free(skeleton);
			continue;
		}
		ne->kind = (unsigned char)el->kind;
		memcpy(ne->hash, el->hash, 32);
		ne->id = tg_xstrdup(id);
		ne->skeleton = skeleton;
		n++;
	}
	for (size_t i = 0; i < p->n_dropped; i++) {
		e[n].kind = TG_KIND_API;
		e[n].verdict = V_DROPPED;
		memcpy(e[n].hash, p->dropped[i], 32);
		if (!find_entry(v, TG_KIND_API, p->dropped[i]))
			fresh++;
		n++;
	}
	n = sort_unique(e, n);
	/* Elements are looked up by address from here on: the old entries
	 * they point at are gone. */
	for (size_t i = 0; i < p->n; i++)
		p->elems[i].entry = NULL;
	if (fresh || n != v->len)
		v->dirty = 1;
	entries_free(v->e, v->len);
	v->e = e;
	v->len = n;
out:
	free(desired_hashes);
	free(verdicts);
	free(none);
}

int tg_verified_note_in_sync(struct tg_verified_pass *p, enum tg_kind kind, const cJSON *obj,
			     const char *desired_hash)
{
	const struct elem *el = find_elem(p, obj);

	/* A skeleton is never a written object's element: its bytes would have
	 * to be known in sync with the desired object, which the plan would
	 * then not have written. */
	if (!el || el->entry || el->kind != kind)
		return 0;
	return tg_verified_note_bytes_in_sync(p, kind, obj, el->hash, desired_hash);
}

int tg_verified_note_bytes_in_sync(struct tg_verified_pass *p, enum tg_kind kind, const cJSON *obj,
				   const unsigned char bytes_hash[32], const char *desired_hash)
{
	const char *id = tg_tyk_id(kind, obj), *owner = tg_marker_get(kind, obj, "sync");
	const char *hash = tg_marker_get(kind, obj, "hash");
	struct entry *e;
	cJSON *skeleton;

	if (!id || strlen(id) > MAX_ID || !owner || strcmp(owner, p->v->sync) || !hash ||
	    strcmp(hash, desired_hash))
		return 0;
	if (p->n_noted == p->alloc_noted) {
		p->alloc_noted = p->alloc_noted ? p->alloc_noted * 2 : 64;
		p->noted = tg_xreallocarray(p->noted, p->alloc_noted, sizeof(*p->noted));
	}
	e = &p->noted[p->n_noted++];
	memset(e, 0, sizeof(*e));
	e->kind = (unsigned char)kind;
	e->verdict = V_IN_SYNC;
	memcpy(e->hash, bytes_hash, sizeof(e->hash));
	snprintf(e->desired_hash, sizeof(e->desired_hash), "%s", desired_hash);
	e->id = tg_xstrdup(id);
	skeleton = make_skeleton(kind, obj);
	e->skeleton = cJSON_PrintUnformatted(skeleton);
	cJSON_Delete(skeleton);
	if (!e->skeleton)
		die("out of memory");
	return 1;
}

void tg_verified_merge(struct tg_verified_pass *p, const char *const *secrets, size_t n_secrets)
{
	struct tg_verified *v = p->v;
	size_t n = v->len;

	if (!p->n_noted)
		return;
	v->e = tg_xreallocarray(v->e, v->len + p->n_noted, sizeof(*v->e));
	for (size_t i = 0; i < p->n_noted; i++) {
		struct entry *e = &p->noted[i];

		if (strchr(e->skeleton, '\n') || holds_secret(e->skeleton, secrets, n_secrets) ||
		    holds_secret(e->id, secrets, n_secrets)) {
			entry_release(e);
			continue;
		}
		v->e[n++] = *e;
	}
	p->n_noted = 0;
	/* Elements point at entries by address: none may from here on. */
	for (size_t i = 0; i < p->n; i++)
		p->elems[i].entry = NULL;
	v->len = sort_unique(v->e, n);
	v->dirty = 1;
}
