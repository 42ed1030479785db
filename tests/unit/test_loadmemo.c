/* Unit tests for controller/loadmemo.c and its use by the loader (desired.c): a load that takes
 * files from the memo gives what a fresh load gives, and only files that depend on their
 * content alone are taken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/desired.h"
#include "tg/diff.h"
#include "tg/loadmemo.h"

/* A file of the fixture, with the id a checkout would give its content. */
struct file {
	const char *rel;
	char id[41];
	const char *text;
};

static struct file files[] = {
	{ "apis/a.json", "",
	  "{\"name\": \"a\", \"api_id\": \"a\", \"domain\": \"x.example\",\n"
	  " \"proxy\": {\"listen_path\": \"/a/\"}, \"n\": 1.5, \"big\": 100000000000000}" },
	/* Two documents; the second takes a's listen path: a problem found
	 * across files, which a load taking b.yaml must still report. */
	{ "apis/b.yaml", "",
	  "openapi: 3.0.3\ninfo: {title: b, version: '1'}\npaths: {}\n"
	  "x-tyk-api-gateway:\n  info: {id: b, name: b, state: {active: true}}\n"
	  "  upstream: {url: 'http://u'}\n  server: {listenPath: {value: /b/}}\n"
	  "---\napi_id: c\nname: \"c\\u00e9\"\nproxy: {listen_path: /a/}\nx: [1, 'two', null, true]\n" },
	{ "apis/dash.json", "",
	  "{\"api_model\": {}, \"api_definition\": {\"api_id\": \"d\", \"name\": \"d\",\n"
	  "  \"proxy\": {\"listen_path\": \"/d/\"}}}" },
	/* Drops as a duplicate of a: its file is not kept. */
	{ "apis/dup.json", "", "{\"api_id\": \"a\", \"proxy\": {\"listen_path\": \"/dup/\"}}" },
	{ "apis/bad.json", "", "{\"api_id\": \"bad\"," },
	{ "apis/var.json", "",
	  "{\"api_id\": \"v\", \"proxy\": {\"target_url\": \"http://${HOST}\"}}" },
	/* A number a double cannot hold. */
	{ "apis/raw.json", "", "{\"api_id\": \"r\", \"n\": 123456789012345678901234567890}" },
	{ "policies/p.json", "",
	  "{\"_id\": \"p\", \"id\": \"\", \"name\": \"p\",\n"
	  " \"access_rights\": {\"a\": {\"api_id\": \"a\"}, \"b\": {}, \"zz\": {}}}" },
	{ "policies/q.yaml", "", "id: q\naccess_rights: {c: {api_id: c}}\n" },
};

/* Files that depend on their content alone, of those above. */
#define KEPT 5

static const char *fake_getenv(const char *name, void *ctx)
{
	(void)ctx;
	return !strcmp(name, "HOST") ? "upstream.internal" : NULL;
}

static const char *file_id(void *ctx, const char *rel)
{
	(void)ctx;
	for (size_t i = 0; i < TG_ARRAY_SIZE(files); i++)
		if (!strcmp(files[i].rel, rel))
			return files[i].id;
	return NULL;
}

/* What the content ids mean, for tg_loadmemo_begin. */
static const char *load_key = "key-1";

struct fx {
	char dir[64];
	char *root, *memo_path;
};

static void write_text(const struct fx *fx, const char *rel, const char *text)
{
	char *path = tg_xasprintf("%s/%s", fx->root, rel);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	fclose(f);
	free(path);
}

static void set_id(size_t i, unsigned n)
{
	snprintf(files[i].id, sizeof(files[i].id), "%040x", n);
}

static int setup(void **state)
{
	struct fx *fx = tg_xcalloc(1, sizeof(*fx));
	char *cmd;

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/tg-test-loadmemo-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	fx->root = tg_xasprintf("%s/repo", fx->dir);
	fx->memo_path = tg_xasprintf("%s/desired", fx->dir);
	cmd = tg_xasprintf("mkdir -p %s/apis %s/policies", fx->root, fx->root);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	for (size_t i = 0; i < TG_ARRAY_SIZE(files); i++) {
		set_id(i, (unsigned)i + 1);
		write_text(fx, files[i].rel, files[i].text);
	}
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char *cmd = tg_xasprintf("rm -rf %s", fx->dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(fx->root);
	free(fx->memo_path);
	free(fx);
	return 0;
}

/* One load and what a pass makes of it: problems as text, and the hash of
 * every object, from the memo where it has them (as passcache.c does). */
struct load {
	struct tg_desired *d;
	struct tg_problems p;
	struct tg_buf text;
	char (*hashes)[65];
	size_t taken;
};

static void load(struct load *l, const struct fx *fx, struct tg_loadmemo *memo)
{
	struct tg_load_opts opts = { 0 };
	struct tg_err err = { 0, "" };

	opts.root = fx->root;
	opts.getenv_fn = fake_getenv;
	if (memo) {
		tg_loadmemo_begin(memo, load_key);
		opts.memo = memo;
		opts.content_id = file_id;
	}
	tg_problems_init(&l->p);
	tg_buf_init(&l->text, 0);
	assert_int_equal(tg_desired_load(&l->d, &l->p, &opts, &err), 0);
	tg_desired_check_refs(l->d, NULL, 0, &l->p);
	tg_problems_sort(&l->p);
	tg_problems_format_text(&l->p, &l->text);
	l->hashes = tg_xcalloc(l->d->len + 1, sizeof(*l->hashes));
	for (size_t i = 0; i < l->d->len; i++) {
		const struct tg_object *o = &l->d->objects[i];

		if (memo && !tg_loadmemo_hash(memo, o, l->hashes[i]))
			continue;
		tg_diff_hash(l->hashes[i], o->kind, tg_object_body(o));
		if (memo)
			tg_loadmemo_set_hash(memo, o, l->hashes[i]);
	}
	l->taken = memo ? tg_loadmemo_taken(memo) : 0;
	if (memo)
		assert_int_equal(tg_loadmemo_finish(memo, &err), 0);
}

static void unload(struct load *l)
{
	tg_desired_free(l->d);
	tg_problems_release(&l->p);
	tg_buf_release(&l->text);
	free(l->hashes);
}

static void assert_same_string(const char *a, const char *b)
{
	if (!a || !b)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void assert_same_src(const struct tg_src *a, const struct tg_src *b)
{
	assert_same_string(a->field, b->field);
	assert_int_equal(a->line, b->line);
	assert_int_equal(a->column, b->column);
}

/* The same nodes: types (a raw number is not a double), keys, values. */
static void assert_same_json(const cJSON *a, const cJSON *b)
{
	for (; a || b; a = a->next, b = b->next) {
		assert_non_null(a);
		assert_non_null(b);
		assert_int_equal(a->type & 0xff, b->type & 0xff);
		assert_same_string(a->string, b->string);
		assert_same_string(a->valuestring, b->valuestring);
		assert_true(a->valuedouble == b->valuedouble);
		assert_int_equal(a->valueint, b->valueint);
		assert_same_json(a->child, b->child);
	}
}

static void assert_same_load(const struct load *a, const struct load *b)
{
	assert_string_equal(tg_buf_cstr(&a->text), tg_buf_cstr(&b->text));
	assert_int_equal(a->d->len, b->d->len);
	assert_int_equal(a->d->used_vars, b->d->used_vars);
	assert_int_equal(a->d->n_secrets, b->d->n_secrets);
	for (size_t i = 0; i < a->d->len; i++) {
		const struct tg_object *x = &a->d->objects[i], *y = &b->d->objects[i];

		assert_int_equal(x->kind, y->kind);
		assert_string_equal(x->id, y->id);
		assert_same_string(x->name, y->name);
		assert_string_equal(x->file, y->file);
		assert_int_equal(x->line, y->line);
		assert_int_equal(x->column, y->column);
		assert_same_json(tg_object_body(x), tg_object_body(y));
		assert_same_string(x->listen_path, y->listen_path);
		assert_same_string(x->domain, y->domain);
		assert_int_equal(x->n_api_refs, y->n_api_refs);
		for (size_t k = 0; k < x->n_api_refs; k++) {
			assert_string_equal(x->api_refs[k], y->api_refs[k]);
			assert_same_src(&x->api_ref_srcs[k], &y->api_ref_srcs[k]);
		}
		assert_same_src(&x->id_src, &y->id_src);
		assert_same_src(&x->listen_path_src, &y->listen_path_src);
		assert_null(x->pos);
		assert_null(y->pos);
		assert_string_equal(a->hashes[i], b->hashes[i]);
	}
}

static const struct tg_object *find_id(const struct load *l, const char *id)
{
	return tg_desired_find(l->d, TG_KIND_API, id);
}

static void test_loadmemo__taken_files_load_as_a_fresh_load_does(void **state)
{
	struct fx *fx = *state;
	struct load fresh, first, again, next;
	struct tg_loadmemo *m = tg_loadmemo_new(fx->memo_path), *m2;

	load(&fresh, fx, NULL);
	assert_true(fresh.p.errors > 0); /* bad.json, the duplicate, the listen path */
	load(&first, fx, m);
	assert_int_equal(first.taken, 0);
	assert_same_load(&fresh, &first);
	assert_int_equal(tg_loadmemo_len(m), KEPT);

	/* The same process on the next commit, and a new process.  A taken
	 * object's body stays text until it is asked for. */
	load(&again, fx, m);
	assert_int_equal(again.taken, KEPT);
	assert_null(find_id(&again, "a")->body);
	assert_non_null(find_id(&again, "a")->body_text);
	assert_same_load(&fresh, &again);
	m2 = tg_loadmemo_new(fx->memo_path);
	load(&next, fx, m2);
	assert_int_equal(next.taken, KEPT);
	assert_same_load(&fresh, &next);

	unload(&fresh);
	unload(&first);
	unload(&again);
	unload(&next);
	tg_loadmemo_free(m);
	tg_loadmemo_free(m2);
}

static void test_loadmemo__only_a_changed_blob_is_read(void **state)
{
	struct fx *fx = *state;
	struct load l;
	struct tg_loadmemo *m = tg_loadmemo_new(NULL);

	load(&l, fx, m);
	unload(&l);

	/* Bytes that differ under the same id are not even read... */
	write_text(fx, "apis/a.json",
		   "{\"name\": \"a2\", \"api_id\": \"a\", \"proxy\": {\"listen_path\": \"/a/\"}}");
	load(&l, fx, m);
	assert_int_equal(l.taken, KEPT);
	assert_string_equal(find_id(&l, "a")->name, "a");
	unload(&l);

	/* ...and a new id is: the file loads as it now is. */
	set_id(0, 100);
	load(&l, fx, m);
	assert_int_equal(l.taken, KEPT - 1);
	assert_string_equal(find_id(&l, "a")->name, "a2");
	assert_null(find_id(&l, "a")->domain);
	unload(&l);
	load(&l, fx, m);
	assert_int_equal(l.taken, KEPT);
	assert_string_equal(find_id(&l, "a")->name, "a2");
	unload(&l);
	tg_loadmemo_free(m);
	set_id(0, 1);
	write_text(fx, files[0].rel, files[0].text);
}

static void test_loadmemo__files_with_problems_or_placeholders_are_always_read(void **state)
{
	struct fx *fx = *state;
	struct load l;
	struct tg_loadmemo *m = tg_loadmemo_new(NULL);

	load(&l, fx, m);
	assert_int_equal(l.d->used_vars, 1);
	assert_int_equal(l.d->n_secrets, 1);
	unload(&l);

	/* New bytes under the same ids: what is read shows them. */
	write_text(
		fx, "apis/var.json",
		"{\"api_id\": \"v\", \"name\": \"${HOST}\", \"proxy\": {\"listen_path\": \"/v/\"}}");
	write_text(fx, "apis/bad.json", "{\"api_id\": \"bad\"}");
	write_text(fx, "apis/dup.json", "{\"api_id\": \"dup\"}");
	write_text(fx, "apis/raw.json", "{\"api_id\": \"r\", \"name\": \"raw\"}");
	load(&l, fx, m);
	assert_int_equal(l.taken, KEPT);
	assert_string_equal(find_id(&l, "v")->name, "upstream.internal");
	assert_int_equal(l.d->used_vars, 1);
	assert_non_null(find_id(&l, "bad"));
	assert_non_null(find_id(&l, "dup"));
	assert_string_equal(find_id(&l, "r")->name, "raw");
	unload(&l);

	/* Now clean, they are kept, apart from the one with "${". */
	load(&l, fx, m);
	assert_int_equal(l.taken, KEPT + 3);
	assert_int_equal(l.d->used_vars, 1);
	assert_int_equal(l.d->n_secrets, 1);
	unload(&l);
	tg_loadmemo_free(m);
	for (size_t i = 0; i < TG_ARRAY_SIZE(files); i++)
		write_text(fx, files[i].rel, files[i].text);
}

/* A memo file's last line made to match what comes before it again. */
static void reseal(char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t body = len - (4 + 64 + 1);
	unsigned int n = 0;

	assert_int_equal(memcmp(data + body, "end ", 4), 0);
	assert_true(EVP_Digest(data, body, md, &n, EVP_sha256(), NULL));
	for (unsigned int i = 0; i < 32; i++) {
		data[body + 4 + 2 * i] = hex[md[i] >> 4];
		data[body + 4 + 2 * i + 1] = hex[md[i] & 15];
	}
}

static void write_memo(const struct fx *fx, const char *text, size_t len)
{
	FILE *f = fopen(fx->memo_path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void test_loadmemo__a_file_not_written_for_this_load_is_ignored(void **state)
{
	struct fx *fx = *state;
	struct load fresh, l;
	struct tg_loadmemo *m = tg_loadmemo_new(fx->memo_path);
	char *good = NULL, *bad;
	size_t len = 0;

	load(&fresh, fx, NULL);
	load(&l, fx, m);
	unload(&l);
	tg_loadmemo_free(m);
	assert_int_equal(tg_read_file(&good, &len, fx->memo_path, 1 << 20, NULL), 0);

	/* Cut short, garbage, written for another key, by another version,
	 * a changed byte: each is ignored whole, and the load reads every
	 * file.  An object this version cannot read in a file that is
	 * otherwise whole: that one file is read. */
	for (int i = 0; i < 6; i++) {
		bad = tg_xmalloc(len);
		memcpy(bad, good, len);
		if (i == 0) {
			write_memo(fx, good, len - 10);
		} else if (i == 1) {
			write_memo(fx, "\x01\x02garbage\n", 10);
		} else if (i == 2) {
			write_memo(fx, good, len);
			load_key = "key-2";
		} else if (i == 3) {
			bad[19] = '9'; /* "tyk-gitops-desired 9" */
			reseal(bad, len);
			write_memo(fx, bad, len);
		} else if (i == 4) {
			bad[len / 2] ^= 1;
			write_memo(fx, bad, len);
		} else {
			memcpy(strstr(bad, "\"ids\":["), "\"ids\":{", 7);
			reseal(bad, len);
			write_memo(fx, bad, len);
		}
		free(bad);
		m = tg_loadmemo_new(fx->memo_path);
		load(&l, fx, m);
		assert_int_equal(l.taken, i == 5 ? KEPT - 1 : 0);
		assert_same_load(&fresh, &l);
		unload(&l);
		tg_loadmemo_free(m);
		/* Written again, whole. */
		m = tg_loadmemo_new(fx->memo_path);
		load(&l, fx, m);
		assert_int_equal(l.taken, KEPT);
		unload(&l);
		tg_loadmemo_free(m);
		load_key = "key-1";
	}
	unload(&fresh);
	free(good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_loadmemo__taken_files_load_as_a_fresh_load_does, setup, teardown),
		cmocka_unit_test_setup_teardown(test_loadmemo__only_a_changed_blob_is_read, setup,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_loadmemo__files_with_problems_or_placeholders_are_always_read, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_loadmemo__a_file_not_written_for_this_load_is_ignored, setup,
			teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
