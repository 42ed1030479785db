/* Unit tests for the desired state: controller/desired.c and the modules it drives (manifest,
 * placeholders, validate): objects, checks, substitution, layout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/desired.h"
#include "tg/tykobj.h"

static const char *fake_getenv(const char *name, void *ctx)
{
	static char big[64 * 1024 + 1];

	(void)ctx;
	if (!strcmp(name, "BIG")) { /* a certificate, say */
		memset(big, 'c', sizeof(big) - 1);
		return big;
	}
	if (!strcmp(name, "DB_PASS"))
		return "hunter2";
	if (!strcmp(name, "HOST"))
		return "upstream.internal";
	if (!strcmp(name, "EMPTY"))
		return "";
	return NULL;
}

struct loaded {
	struct tg_desired *d;
	struct tg_problems problems;
	struct tg_buf text;
};

static void load_buf(struct loaded *l, const char *file, const char *data, const char *secrets_dir)
{
	struct tg_load_opts opts = { 0 };

	opts.getenv_fn = fake_getenv;
	opts.secrets_dir = secrets_dir;
	tg_problems_init(&l->problems);
	tg_buf_init(&l->text, 0);
	assert_int_equal(
		tg_desired_load_buffer(&l->d, &l->problems, &opts, file, data, strlen(data)), 0);
	tg_desired_check_refs(l->d, NULL, 0, &l->problems);
	tg_problems_sort(&l->problems);
	tg_problems_format_text(&l->problems, &l->text);
}

static void unload(struct loaded *l)
{
	tg_desired_free(l->d);
	tg_problems_release(&l->problems);
	tg_buf_release(&l->text);
}

static void test_desired__classic_api_fields_are_read(void **state)
{
	struct loaded l;
	const struct tg_object *o;
	char *body;

	(void)state;
	load_buf(
		&l, "apis/a.json",
		"{\"api_id\":\"a\",\"name\":\"A\",\"domain\":\"x.com\",\"proxy\":{\"listen_path\":\"/a/\"},"
		"\"custom\":{\"new_gateway_field\":[1,2]}}",
		NULL);
	assert_string_equal(tg_buf_cstr(&l.text), "");
	o = tg_desired_find(l.d, TG_KIND_API, "a");
	assert_non_null(o);
	assert_string_equal(o->name, "A");
	assert_string_equal(o->listen_path, "/a/");
	assert_string_equal(o->domain, "x.com");
	assert_string_equal(o->file, "apis/a.json");
	assert_int_equal(o->line, 1);
	body = cJSON_PrintUnformatted(o->body);
	assert_string_equal(body,
			    "{\"api_id\":\"a\",\"name\":\"A\",\"domain\":\"x.com\",\"proxy\":"
			    "{\"listen_path\":\"/a/\"},\"custom\":{\"new_gateway_field\":[1,2]}}");
	free(body);
	assert_null(tg_desired_find(l.d, TG_KIND_OAS_API, "a"));
	unload(&l);
}

static void test_desired__oas_api_fields_come_from_extension(void **state)
{
	struct loaded l;
	const struct tg_object *o;

	(void)state;
	load_buf(
		&l, "apis/p.yaml",
		"openapi: 3.0.3\ninfo: {title: Pets, version: '1'}\nx-tyk-api-gateway:\n"
		"  info: {id: pets, name: Petstore}\n  upstream: {url: 'http://p/'}\n"
		"  server:\n    listenPath: {value: /pets/}\n    customDomain: {enabled: true, name: p.com}\n",
		NULL);
	assert_string_equal(tg_buf_cstr(&l.text), "");
	o = tg_desired_find(l.d, TG_KIND_OAS_API, "pets");
	assert_non_null(o);
	assert_string_equal(o->name, "Petstore");
	assert_string_equal(o->listen_path, "/pets/");
	assert_string_equal(o->domain, "p.com");
	assert_non_null(cJSON_GetObjectItem(o->body, "openapi"));
	unload(&l);
}

static void test_desired__dashboard_wrappers_are_unwrapped(void **state)
{
	struct loaded l;
	const struct tg_object *o;

	(void)state;
	load_buf(
		&l, "apis/w.yaml",
		"api_model: {}\napi_definition: {api_id: wrapped, proxy: {listen_path: /w/}}\n---\n"
		"api_definition: {api_id: both}\noas:\n  openapi: 3.0.3\n  x-tyk-api-gateway:\n"
		"    info: {id: both, name: Both}\n    upstream: {url: 'http://b/'}\n"
		"    server: {listenPath: {value: /both/}}\n---\n"
		"oas:\n  openapi: 3.0.3\n  x-tyk-api-gateway:\n    info: {name: NoId}\n"
		"    upstream: {url: 'http://b/'}\n    server: {listenPath: {value: /noid/}}\n",
		NULL);
	assert_string_equal(
		tg_buf_cstr(&l.text),
		"apis/w.yaml:15:5: error: oas.x-tyk-api-gateway.info.id: missing api id\n");
	o = tg_desired_find(l.d, TG_KIND_API, "wrapped");
	assert_non_null(o);
	assert_null(cJSON_GetObjectItem(o->body, "api_definition"));
	assert_string_equal(cJSON_GetObjectItem(o->body, "api_id")->valuestring, "wrapped");
	o = tg_desired_find(l.d, TG_KIND_OAS_API, "both");
	assert_non_null(o);
	assert_non_null(cJSON_GetObjectItem(o->body, "x-tyk-api-gateway"));
	unload(&l);
}

static void test_desired__policy_refs_come_from_keys_and_api_ids(void **state)
{
	struct loaded l;
	const struct tg_object *o;

	(void)state;
	load_buf(&l, "policies/p.json",
		 "{\"_id\":\"abc123\",\"id\":\"\",\"access_rights\":{\"k1\":{\"api_id\":\"k1\"},"
		 "\"k2\":{\"api_id\":\"other\"},\"k3\":{}}}",
		 NULL);
	o = tg_desired_find(l.d, TG_KIND_POLICY, "abc123");
	assert_non_null(o);
	assert_int_equal(o->n_api_refs, 4);
	assert_string_equal(o->api_refs[0], "k1");
	assert_string_equal(o->api_refs[1], "k2");
	assert_string_equal(o->api_refs[2], "other");
	assert_string_equal(o->api_refs[3], "k3");
	assert_int_equal(l.problems.errors, 4); /* none of them is in the repository */
	unload(&l);
}

static void test_desired__refs_known_on_the_gateway_are_fine(void **state)
{
	struct loaded l;
	struct tg_problems p;
	const char *known[] = { "k1", "k2" };

	(void)state;
	load_buf(&l, "policies/p.yaml",
		 "id: p\naccess_rights: {k1: {api_id: k1}, k2: {}, k3: {}}\n", NULL);
	tg_problems_init(&p);
	tg_desired_check_refs(l.d, known, 2, &p);
	assert_int_equal(p.len, 1);
	assert_string_equal(
		p.items[0].msg,
		"policy 'p' grants access to unknown api 'k3' (not in the repository nor on the gateway)");
	assert_int_equal(p.items[0].line, 2);
	assert_int_equal(p.items[0].column, 43);
	tg_problems_release(&p);
	unload(&l);
}

static void test_desired__variables_are_substituted_and_recorded_as_secrets(void **state)
{
	struct loaded l;
	const struct tg_object *o;
	const cJSON *auth;

	(void)state;
	load_buf(
		&l, "apis/s.yaml",
		"api_id: s\nproxy: {listen_path: /s/, target_url: 'https://${HOST}:${PORT:-8443}/x'}\n"
		"auth: {pass: '${DB_PASS}', again: 'x${DB_PASS}y${DB_PASS}', lit: '$${HOST}', "
		"empty: '${EMPTY}', dflt: '${EMPTY:-fallback}', dollar: 'a$b$$c'}\n",
		NULL);
	assert_string_equal(tg_buf_cstr(&l.text), "");
	o = tg_desired_find(l.d, TG_KIND_API, "s");
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o->body, "proxy"), "target_url")
				    ->valuestring,
			    "https://upstream.internal:8443/x");
	auth = cJSON_GetObjectItem(o->body, "auth");
	assert_string_equal(cJSON_GetObjectItem(auth, "pass")->valuestring, "hunter2");
	assert_string_equal(cJSON_GetObjectItem(auth, "again")->valuestring, "xhunter2yhunter2");
	assert_string_equal(cJSON_GetObjectItem(auth, "lit")->valuestring, "${HOST}");
	assert_string_equal(cJSON_GetObjectItem(auth, "empty")->valuestring, "");
	assert_string_equal(cJSON_GetObjectItem(auth, "dflt")->valuestring, "fallback");
	assert_string_equal(cJSON_GetObjectItem(auth, "dollar")->valuestring, "a$b$$c");
	assert_int_equal(l.d->n_secrets, 2);
	assert_string_equal(l.d->secrets[0], "upstream.internal");
	assert_string_equal(l.d->secrets[1], "hunter2");
	unload(&l);
}

/* Files without "${" skip the substitution walk; one spelled with escapes
 * must not. */
static void test_desired__escaped_dollar_brace_is_still_substituted(void **state)
{
	struct loaded l;
	const struct tg_object *o;

	(void)state;
	load_buf(&l, "apis/j.json",
		 "{\"api_id\":\"j\",\"proxy\":{\"listen_path\":\"/j/\","
		 "\"target_url\":\"https://\\u0024{HOST}/\"}}",
		 NULL);
	o = tg_desired_find(l.d, TG_KIND_API, "j");
	assert_non_null(o);
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o->body, "proxy"), "target_url")
				    ->valuestring,
			    "https://upstream.internal/");
	assert_true(l.d->used_vars);
	unload(&l);
	load_buf(&l, "apis/y.yaml",
		 "api_id: y\nproxy: {listen_path: /y/, target_url: \"\\x24{HOST}\"}\n", NULL);
	o = tg_desired_find(l.d, TG_KIND_API, "y");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(o->body, "proxy"), "target_url")
				    ->valuestring,
			    "upstream.internal");
	unload(&l);
	load_buf(&l, "apis/n.yaml",
		 "api_id: n\nproxy: {listen_path: /n/, target_url: 'http://$x{y}'}\n", NULL);
	assert_false(l.d->used_vars);
	unload(&l);
}

static void test_desired__unset_variable_is_named_in_the_problem(void **state)
{
	struct loaded l;

	(void)state;
	load_buf(&l, "apis/s.yaml", "api_id: s\nproxy:\n  target_url: '${NOPE}/${ALSO_NOPE}'\n",
		 NULL);
	assert_string_equal(
		tg_buf_cstr(&l.text),
		"apis/s.yaml:3:3: error: proxy.target_url: variable 'NOPE' is not set and has no default\n"
		"apis/s.yaml:3:3: error: proxy.target_url: variable 'ALSO_NOPE' is not set and has no default\n");
	unload(&l);
}

static void test_desired__variables_can_come_from_secret_files(void **state)
{
	char dir[] = "/tmp/tg-secrets-XXXXXX";
	char *path;
	FILE *f;
	struct loaded l;
	const struct tg_object *o;

	(void)state;
	assert_non_null(mkdtemp(dir));
	path = tg_xasprintf("%s/API_KEY", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("from-file\n", f);
	fclose(f);
	load_buf(&l, "apis/s.json", "{\"api_id\":\"s\",\"key\":\"${API_KEY}\"}", dir);
	assert_string_equal(tg_buf_cstr(&l.text), "");
	o = tg_desired_find(l.d, TG_KIND_API, "s");
	assert_string_equal(cJSON_GetObjectItem(o->body, "key")->valuestring, "from-file");
	assert_int_equal(l.d->n_secrets, 1);
	assert_string_equal(l.d->secrets[0], "from-file");
	unload(&l);
	unlink(path);
	rmdir(dir);
	free(path);
}

static void test_desired__duplicate_ids_name_the_first_definition(void **state)
{
	struct loaded l;

	(void)state;
	load_buf(
		&l, "apis/d.yaml",
		"api_id: x\nproxy: {listen_path: /one/}\n---\napi_id: x\nproxy: {listen_path: /two/}\n",
		NULL);
	assert_string_equal(
		tg_buf_cstr(&l.text),
		"apis/d.yaml:4:1: error: api_id: duplicate api id 'x', first defined at apis/d.yaml:1:1\n");
	assert_int_equal(l.d->len, 1);
	assert_string_equal(l.d->objects[0].listen_path, "/one/");
	unload(&l);
}

static void test_desired__api_and_policy_ids_are_separate_spaces(void **state)
{
	struct loaded l;

	(void)state;
	load_buf(&l, "policies/p.yaml", "id: same\n---\nid: other\naccess_rights: {}\n", NULL);
	assert_string_equal(tg_buf_cstr(&l.text), "");
	assert_int_equal(l.d->len, 2);
	unload(&l);
}

static void test_desired__same_listen_path_on_other_domain_is_fine(void **state)
{
	struct loaded l;

	(void)state;
	load_buf(
		&l, "apis/d.yaml",
		"api_id: a\nproxy: {listen_path: /x/}\n---\napi_id: b\ndomain: b.com\nproxy: {listen_path: /x/}\n"
		"---\napi_id: c\ndomain: ''\nproxy: {listen_path: /x/}\n",
		NULL);
	assert_string_equal(
		tg_buf_cstr(&l.text),
		"apis/d.yaml:10:9: error: proxy.listen_path: duplicate listen path '/x/', first used by api 'a' at apis/d.yaml:2:9\n");
	unload(&l);
}

static void test_desired__empty_repository_is_an_error_unless_allowed(void **state)
{
	struct tg_load_opts opts = { 0 };
	struct tg_problems p;
	struct tg_desired *d = NULL;

	(void)state;
	tg_problems_init(&p);
	assert_int_equal(tg_desired_load_buffer(&d, &p, &opts, "apis/e.yaml", "", 0), 0);
	assert_int_equal(p.errors, 0); /* a file was there, even if empty */
	tg_desired_free(d);
	assert_int_equal(tg_desired_load_buffer(&d, &p, &opts, "apis/e.yaml", "---\n", 4), 0);
	assert_int_equal(d->len, 0);
	tg_desired_free(d);
	tg_problems_release(&p);
}

static void test_desired__missing_root_is_not_found(void **state)
{
	struct tg_load_opts opts = { 0 };
	struct tg_problems p;
	struct tg_desired *d = NULL;
	struct tg_err err = { 0, "" };

	(void)state;
	opts.root = "/nonexistent/tg-root";
	tg_problems_init(&p);
	assert_int_equal(tg_desired_load(&d, &p, &opts, &err), TG_ENOTFOUND);
	assert_null(d);
	assert_non_null(strstr(err.msg, "/nonexistent/tg-root"));
	tg_problems_release(&p);
}

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static void test_desired__directory_layout_is_scanned_in_order(void **state)
{
	char dir[] = "/tmp/tg-repo-XXXXXX";
	struct tg_load_opts opts = { 0 };
	struct tg_problems p;
	struct tg_desired *d = NULL;
	struct tg_err err = { 0, "" };
	struct tg_buf text = TG_BUF_INIT;
	char *big, *cmd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	cmd = tg_xasprintf(
		"mkdir -p %s/sub/apis/nested %s/sub/policies && ln -s /etc/passwd %s/sub/apis/link.json",
		dir, dir, dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
#define W(rel, text)                                            \
	do {                                                    \
		char *p_ = tg_xasprintf("%s/sub/%s", dir, rel); \
		write_file(p_, text, strlen(text));             \
		free(p_);                                       \
	} while (0)
	W("apis/b.json", "{\"api_id\":\"b\"}");
	W("apis/nested/a.yml", "api_id: a\n");
	W("apis/.hidden.json", "not loaded");
	W("apis/notes.txt", "x");
	W("policies/p.yaml", "id: p\naccess_rights: {a: {}, b: {}}\n");
#undef W
	big = tg_xmalloc(TG_DESIRED_MAX_FILE_SIZE + 2);
	memset(big, ' ', TG_DESIRED_MAX_FILE_SIZE + 1);
	cmd = tg_xasprintf("%s/sub/apis/huge.json", dir);
	write_file(cmd, big, TG_DESIRED_MAX_FILE_SIZE + 1);
	free(cmd);
	free(big);

	opts.root = cmd = tg_xasprintf("%s/sub", dir);
	opts.repo_root = dir;
	tg_problems_init(&p);
	assert_int_equal(tg_desired_load(&d, &p, &opts, &err), 0);
	tg_desired_check_refs(d, NULL, 0, &p);
	tg_problems_sort(&p);
	tg_problems_format_text(&p, &text);
	assert_string_equal(
		tg_buf_cstr(&text),
		"sub/apis/huge.json: error: file is larger than the 8 MiB limit\n"
		"sub/apis/link.json: warning: ignoring symbolic link\n"
		"sub/apis/notes.txt: warning: ignoring file: not .json, .yaml or .yml\n");
	assert_int_equal(d->len, 3);
	assert_string_equal(d->objects[0].id, "b");
	assert_string_equal(d->objects[1].id, "a");
	assert_string_equal(d->objects[1].file, "sub/apis/nested/a.yml");
	assert_string_equal(d->objects[2].id, "p");
	tg_desired_free(d);
	tg_problems_release(&p);
	tg_buf_release(&text);
	free(cmd);
	cmd = tg_xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

/*
 * A scratch directory: repo/ is the checkout, outside/ sits beside it with a
 * file a link could expose ("stolen" is a valid api and a valid policy).
 */
struct scratch {
	char base[64];
	struct tg_problems p;
	struct tg_desired *d;
	struct tg_buf text;
	struct tg_err err;
};

static void sc_path(const struct scratch *sc, const char *rel, char *out, size_t n)
{
	assert_true((size_t)snprintf(out, n, "%s/%s", sc->base, rel) < n);
}

static void sc_mkdir(const struct scratch *sc, const char *rel)
{
	char path[512];

	sc_path(sc, rel, path, sizeof(path));
	assert_int_equal(tg_mkdir_p(path, 0755), 0);
}

static void sc_write(const struct scratch *sc, const char *rel, const char *text)
{
	char path[512];

	sc_path(sc, rel, path, sizeof(path));
	write_file(path, text, strlen(text));
}

/* target relative to the scratch base when it starts with '@'. */
static void sc_link(const struct scratch *sc, const char *target, const char *rel)
{
	char path[512], abs[512];

	sc_path(sc, rel, path, sizeof(path));
	if (target[0] == '@') {
		sc_path(sc, target + 1, abs, sizeof(abs));
		target = abs;
	}
	assert_int_equal(symlink(target, path), 0);
}

static void sc_init(struct scratch *sc)
{
	memset(sc, 0, sizeof(*sc));
	snprintf(sc->base, sizeof(sc->base), "/tmp/tg-links-XXXXXX");
	assert_non_null(mkdtemp(sc->base));
	sc_mkdir(sc, "repo");
	sc_mkdir(sc, "outside");
	sc_write(
		sc, "outside/secret.json",
		"{\"api_id\":\"stolen\",\"id\":\"stolen\",\"proxy\":{\"listen_path\":\"/stolen/\"}}");
	sc_write(sc, "outside/manifest.json", "{\"files\":[{\"file\":\"ok.json\"}]}");
	tg_problems_init(&sc->p);
	tg_buf_init(&sc->text, 0);
}

/* Loads root (relative to the base) with path; the text of the problems
 * ends up in sc->text. */
static int sc_load(struct scratch *sc, const char *root, const char *path)
{
	char abs[512];
	struct tg_load_opts opts = { 0 };
	int rc;

	tg_desired_free(sc->d);
	sc->d = NULL;
	tg_problems_release(&sc->p);
	tg_problems_init(&sc->p);
	tg_buf_release(&sc->text);
	tg_buf_init(&sc->text, 0);
	sc_path(sc, root, abs, sizeof(abs));
	opts.root = abs;
	opts.path = path;
	rc = tg_desired_load(&sc->d, &sc->p, &opts, &sc->err);
	tg_problems_sort(&sc->p);
	tg_problems_format_text(&sc->p, &sc->text);
	return rc;
}

static void sc_release(struct scratch *sc)
{
	char *cmd = tg_xasprintf("rm -rf %s", sc->base);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	tg_desired_free(sc->d);
	tg_problems_release(&sc->p);
	tg_buf_release(&sc->text);
}

#define NOT_FOLLOWED "(links are not followed: they could point outside the repository)"

static void test_desired__links_the_scan_meets_are_skipped_and_named_roots_refused(void **state)
{
	struct scratch sc;

	(void)state;
	sc_init(&sc);
	sc_mkdir(&sc, "repo/apis");
	sc_write(&sc, "repo/apis/ok.json", "{\"api_id\":\"ok\"}");
	sc_link(&sc, "@outside/secret.json", "repo/apis/file-link.json");
	sc_link(&sc, "../../outside", "repo/apis/dir-link");
	sc_link(&sc, "../outside", "repo/policies");
	assert_int_equal(sc_load(&sc, "repo", NULL), 0);
	assert_string_equal(
		tg_buf_cstr(&sc.text),
		"apis/dir-link: warning: ignoring symbolic link\n"
		"apis/file-link.json: warning: ignoring symbolic link\n"
		"policies: error: cannot read directory: 'policies' is a symbolic link " NOT_FOLLOWED
		"\n");
	assert_int_equal(sc.d->len, 1);
	assert_string_equal(sc.d->objects[0].id, "ok");

	/* apis/ as a link: an error, and no "empty repository" on top. */
	sc_mkdir(&sc, "repo2");
	sc_link(&sc, "@outside", "repo2/apis");
	assert_int_equal(sc_load(&sc, "repo2", NULL), 0);
	assert_string_equal(
		tg_buf_cstr(&sc.text),
		"apis: error: cannot read directory: 'apis' is a symbolic link " NOT_FOLLOWED "\n");
	assert_int_equal(sc.d->len, 0);
	sc_release(&sc);
}

static void test_desired__manifest_never_follows_links(void **state)
{
	struct scratch sc;

	(void)state;
	sc_init(&sc);
	sc_write(&sc, "repo/ok.json", "{\"api_id\":\"ok\"}");
	sc_mkdir(&sc, "repo/real");
	sc_link(&sc, "@outside/secret.json", "repo/link.json");
	sc_link(&sc, "../outside", "repo/sub");
	sc_write(&sc, "repo/.tyk.json",
		 "{\"files\": [{\"file\": \"ok.json\"},\n"
		 " {\"file\": \"link.json\"},\n"
		 " {\"file\": \"sub/secret.json\"},\n"
		 " {\"file\": \"real/../../outside/secret.json\"}],\n"
		 " \"policies\": [{\"file\": \"./sub/secret.json\"}]}\n");
	assert_int_equal(sc_load(&sc, "repo", NULL), 0);
	assert_string_equal(
		tg_buf_cstr(&sc.text),
		".tyk.json:2:3: error: files.1.file: cannot read 'link.json': 'link.json' is "
		"a symbolic link " NOT_FOLLOWED "\n"
		".tyk.json:3:3: error: files.2.file: cannot read 'sub/secret.json': 'sub' is "
		"a symbolic link " NOT_FOLLOWED "\n"
		".tyk.json:4:3: error: files.3.file: path 'real/../../outside/secret.json' "
		"leaves the repository\n"
		".tyk.json:5:16: error: policies.0.file: cannot read './sub/secret.json': "
		"'./sub' is a symbolic link " NOT_FOLLOWED "\n");
	assert_int_equal(sc.d->len, 1);
	assert_string_equal(sc.d->objects[0].id, "ok");

	/* A manifest that is a link is refused, and the scan does not step in. */
	sc_mkdir(&sc, "repo2/apis");
	sc_write(&sc, "repo2/apis/ok.json", "{\"api_id\":\"ok\"}");
	sc_link(&sc, "@outside/manifest.json", "repo2/.tyk.json");
	assert_int_equal(sc_load(&sc, "repo2", NULL), 0);
	assert_string_equal(
		tg_buf_cstr(&sc.text),
		".tyk.json: error: cannot read file: '.tyk.json' is a symbolic link " NOT_FOLLOWED
		"\n");
	assert_int_equal(sc.d->len, 0);
	sc_release(&sc);
}

static void test_desired__sync_path_is_opened_below_the_root_without_links(void **state)
{
	struct scratch sc;

	(void)state;
	sc_init(&sc);
	sc_mkdir(&sc, "repo/env-real/prod/apis");
	sc_write(&sc, "repo/env-real/prod/apis/a.json", "{\"api_id\":\"a\"}");
	sc_mkdir(&sc, "outside/prod/apis");
	sc_write(&sc, "outside/prod/apis/stolen.json", "{\"api_id\":\"stolen\"}");
	sc_link(&sc, "@outside", "repo/env");
	sc_link(&sc, "env-real", "repo/env-inside");

	/* File names stay relative to root/path, as before. */
	assert_int_equal(sc_load(&sc, "repo", "/env-real//./prod/"), 0);
	assert_string_equal(tg_buf_cstr(&sc.text), "");
	assert_int_equal(sc.d->len, 1);
	assert_string_equal(sc.d->objects[0].file, "apis/a.json");

	/* The root is the caller's and trusted: a link there is fine. */
	sc_link(&sc, "repo/env-real", "checkout-link");
	assert_int_equal(sc_load(&sc, "checkout-link", "prod"), 0);
	assert_int_equal(sc.d->len, 1);

	/* Below it, the repository decides: no link, even one that stays inside. */
	assert_int_equal(sc_load(&sc, "repo", "env/prod"), 0);
	assert_string_equal(
		tg_buf_cstr(&sc.text),
		"error: cannot open the sync path 'env/prod': 'env' is a symbolic link " NOT_FOLLOWED
		"\n");
	assert_int_equal(sc.d->len, 0);
	assert_int_equal(sc_load(&sc, "repo", "env-inside/prod"), 0);
	assert_int_equal(sc.p.errors, 1);
	assert_int_equal(sc.d->len, 0);

	/* ".." is refused outright, a missing path is not found. */
	assert_int_equal(sc_load(&sc, "repo", "env-real/../../outside/prod"), TG_EINVALID);
	assert_null(sc.d);
	assert_non_null(strstr(sc.err.msg, "must not contain '..'"));
	assert_int_equal(sc_load(&sc, "repo", "nope/prod"), TG_ENOTFOUND);
	assert_non_null(strstr(sc.err.msg, "No such file or directory"));
	assert_int_equal(sc_load(&sc, "repo", "env-real/prod/apis/a.json"), TG_ERROR);
	assert_non_null(strstr(sc.err.msg, "Not a directory"));
	sc_release(&sc);
}

static void test_desired__alias_bombs_in_one_small_file_are_all_reported(void **state)
{
	struct tg_buf b = TG_BUF_INIT;
	struct loaded l;
	int d, i, j;

	(void)state;
	/* 16 documents of 280 bytes, each under the old 64 MiB per-document
	 * cap: together they took 1.6 GB. */
	for (d = 0; d < 16; d++) {
		tg_buf_printf(
			&b,
			"---\napi_id: b%d\na0: &a0 {k0: '',k1: '',k2: '',k3: '',k4: '',k5: '',"
			"k6: ''}\n",
			d);
		for (i = 1; i < 9; i++) {
			tg_buf_printf(&b, "a%d: &a%d [", i, i);
			for (j = 0; j < 4; j++)
				tg_buf_printf(&b, "%s*a%d", j ? "," : "", i - 1);
			tg_buf_puts(&b, "]\n");
		}
	}
	load_buf(&l, "apis/bomb.yaml", tg_buf_cstr(&b), NULL);
	assert_int_equal(l.problems.errors, 16);
	assert_int_equal(l.d->len, 0);
	assert_non_null(
		strstr(tg_buf_cstr(&l.text),
		       "apis/bomb.yaml:9:10: error: a6.0: document expands to more than 2097152 "
		       "bytes through aliases"));
	unload(&l);
	tg_buf_release(&b);
}

static void test_desired__values_filled_in_are_bounded_by_the_input(void **state)
{
	struct tg_buf b = TG_BUF_INIT;
	struct loaded l;
	int i;

	(void)state;
	/* 2.7 KB of references to a 64 KiB value: 19 MB once filled in. */
	tg_buf_puts(&b, "{\"api_id\":\"a\",\"x\":[\"${BIG}\"");
	for (i = 1; i < 300; i++)
		tg_buf_puts(&b, ",\"${BIG}\"");
	tg_buf_puts(&b, "],\"y\":\"${HOST}\"}");
	load_buf(&l, "apis/a.json", tg_buf_cstr(&b), NULL);
	/* 256 values fit in 16 MiB; one error, and nothing looked up after it. */
	assert_string_equal(
		tg_buf_cstr(&l.text),
		"apis/a.json:1:2324: error: x.256: values filled in by '${...}' add up to "
		"more than 16777216 bytes (the limit: 64 times the 2734 bytes of the "
		"files, at least 16 MiB)\n");
	assert_int_equal(l.problems.errors, 1);
	unload(&l);
	tg_buf_release(&b);
}

struct refs_seen {
	const char *ids[16];
	char fields[16][64];
	size_t n;
};

static int collect_ref(void *ctx, const char *api_id, const cJSON *entry, int is_key)
{
	struct refs_seen *r = ctx;
	size_t i;

	for (i = 0; i < r->n; i++)
		if (!strcmp(r->ids[i], api_id))
			return 0;
	assert_true(r->n < 16);
	r->ids[r->n] = api_id;
	snprintf(r->fields[r->n], sizeof(r->fields[0]), "access_rights.%s%s", entry->string,
		 is_key ? "" : ".api_id");
	r->n++;
	return 0;
}

static void test_desired__policy_refs_and_id_follow_the_one_rule_of_tykobj(void **state)
{
	static const char *const policies[] = {
		/* A Dashboard export: _id, an empty id, keys and api_ids that differ. */
		"{\"_id\":\"abc123\",\"id\":\"\",\"access_rights\":{\"k1\":{\"api_id\":\"k1\"},"
		"\"k2\":{\"api_id\":\"other\"},\"k3\":{},\"k4\":{\"api_id\":\"k2\"},"
		"\"\":{\"api_id\":\"nameless\"},\"k5\":{\"api_id\":\"\"},\"k6\":[1],\"k7\":7}}",
		"{\"id\":null,\"_id\":\"n1\",\"access_rights\":{\"a\":{\"api_id\":\"b\"}}}",
		"{\"id\":\"plain\",\"_id\":\"ignored\",\"access_rights\":null}",
		"{\"id\":\"p\",\"access_rights\":{}}",
	};
	size_t i, j;

	(void)state;
	for (i = 0; i < TG_ARRAY_SIZE(policies); i++) {
		cJSON *body = cJSON_Parse(policies[i]);
		struct refs_seen want = { { NULL }, { "" }, 0 };
		const struct tg_object *o;
		struct loaded l;

		assert_non_null(body);
		tg_tyk_policy_refs(body, collect_ref, &want);
		load_buf(&l, "policies/p.json", policies[i], NULL);
		assert_int_equal(l.d->len, 1);
		o = &l.d->objects[0];
		assert_string_equal(o->id, tg_tyk_id(TG_KIND_POLICY, body));
		assert_string_equal(o->id_src.field, tg_tyk_policy_id_field(body));
		assert_int_equal(o->n_api_refs, want.n);
		for (j = 0; j < want.n; j++) {
			assert_string_equal(o->api_refs[j], want.ids[j]);
			/* is_key tells the field: the key itself, or the api_id in it. */
			assert_string_equal(o->api_ref_srcs[j].field, want.fields[j]);
		}
		unload(&l);
		cJSON_Delete(body);
	}
}

static void test_desired__policy_ref_fields_point_at_key_or_api_id(void **state)
{
	struct loaded l;
	const struct tg_object *o;

	(void)state;
	load_buf(&l, "policies/p.yaml",
		 "_id: d1\nid: ''\naccess_rights:\n  k1: {api_id: other}\n  k2: {}\n", NULL);
	o = tg_desired_find(l.d, TG_KIND_POLICY, "d1");
	assert_non_null(o);
	assert_string_equal(o->id_src.field, "_id");
	assert_int_equal(o->id_src.line, 1);
	/* A file-based gateway files it under "id": the id found is filled in. */
	assert_string_equal(cJSON_GetObjectItem(o->body, "id")->valuestring, "d1");
	assert_int_equal(o->n_api_refs, 3);
	assert_string_equal(o->api_ref_srcs[0].field, "access_rights.k1");
	assert_int_equal(o->api_ref_srcs[0].line, 4);
	assert_int_equal(o->api_ref_srcs[0].column, 3);
	assert_string_equal(o->api_ref_srcs[1].field, "access_rights.k1.api_id");
	assert_int_equal(o->api_ref_srcs[1].line, 4);
	assert_int_equal(o->api_ref_srcs[1].column, 8);
	assert_string_equal(o->api_ref_srcs[2].field, "access_rights.k2");
	assert_string_equal(
		tg_buf_cstr(&l.text),
		"policies/p.yaml:4:3: error: access_rights.k1: policy 'd1' grants access "
		"to unknown api 'k1' (not in the repository)\n"
		"policies/p.yaml:4:8: error: access_rights.k1.api_id: policy 'd1' grants "
		"access to unknown api 'other' (not in the repository)\n"
		"policies/p.yaml:5:3: error: access_rights.k2: policy 'd1' grants access "
		"to unknown api 'k2' (not in the repository)\n");
	unload(&l);
}

static void test_desired__manifest_listing_a_file_twice_loads_it_once_with_a_warning(void **state)
{
	struct scratch sc;

	(void)state;
	sc_init(&sc);
	sc_write(&sc, "repo/api.json", "{\"api_id\":\"a\",\"proxy\":{\"listen_path\":\"/a/\"}}");
	sc_mkdir(&sc, "repo/pol");
	sc_write(&sc, "repo/pol/p.json",
		 "{\"id\":\"p\",\"access_rights\":{\"a\":{\"api_id\":\"a\"}}}");
	/* tyk-sync accepts this: the same file twice, once spelled otherwise. */
	sc_write(&sc, "repo/.tyk.json",
		 "{\"type\": \"apidef\",\n"
		 " \"files\": [{\"file\": \"api.json\"},\n"
		 "           {\"file\": \"api.json\"},\n"
		 "           {\"file\": \"./api.json\"}],\n"
		 " \"policies\": [{\"file\": \"pol/p.json\"}, {\"file\": \"pol//p.json\"}]}\n");
	assert_int_equal(sc_load(&sc, "repo", NULL), 0);
	assert_string_equal(
		tg_buf_cstr(&sc.text),
		".tyk.json:3:13: warning: files.1.file: 'api.json' is listed more than once "
		"(first at files.0.file): loaded once\n"
		".tyk.json:4:13: warning: files.2.file: './api.json' is listed more than once "
		"(first at files.0.file): loaded once\n"
		".tyk.json:5:40: warning: policies.1.file: 'pol//p.json' is listed more than "
		"once (first at policies.0.file): loaded once\n");
	assert_int_equal(sc.p.errors, 0);
	assert_int_equal(sc.d->len, 2);
	assert_string_equal(sc.d->objects[0].id, "a");
	assert_string_equal(sc.d->objects[0].file, "api.json");
	assert_string_equal(sc.d->objects[1].id, "p");

	/* Listed as an API and again as a policy: loaded once, as listed first. */
	sc_write(&sc, "repo/.tyk.json",
		 "{\"files\": [{\"file\": \"api.json\"}],\n"
		 " \"policies\": [{\"file\": \"api.json\"}]}");
	assert_int_equal(sc_load(&sc, "repo", NULL), 0);
	assert_int_equal(sc.p.errors, 0);
	assert_int_equal(sc.p.len, 1);
	assert_string_equal(sc.p.items[0].field, "policies.0.file");
	assert_int_equal(sc.d->len, 1);
	assert_int_equal(sc.d->objects[0].kind, TG_KIND_API);
	sc_release(&sc);
}

static void test_desired__apis_that_need_the_gateways_environment_are_warned_about(void **state)
{
	static const struct {
		const char *file, *text, *want;
	} cases[] = {
		{ "apis/bundle.json",
		  "{\"api_id\":\"b\",\"custom_middleware_bundle\":\"bundle.zip\","
		  "\"proxy\":{\"listen_path\":\"/b/\"}}",
		  "apis/bundle.json:1:1: warning: needs the plugin bundle 'bundle.zip' (the "
		  "gateway needs enable_bundle_downloader, bundle_base_url and the bundle): a "
		  "gateway without it skips this api at reload\n" },
		{ "apis/mw.yaml",
		  "api_id: m\nproxy: {listen_path: /m/}\n"
		  "custom_middleware:\n  pre: [{name: f, path: /opt/mw/pre.js}]\n",
		  "apis/mw.yaml:1:1: warning: needs the middleware file '/opt/mw/pre.js' (it must "
		  "exist on the gateway): a gateway without it skips this api at reload\n" },
		{ "apis/cert.yaml",
		  "---\n# upstream mTLS\napi_definition:\n  api_id: c\n  certificates: [abc123]\n",
		  "apis/cert.yaml:3:1: warning: api_definition: needs the certificate 'abc123' by "
		  "id (it must be in the gateway's certificate store): a gateway without it skips "
		  "this api at reload\n" },
		{ "apis/oas.yaml",
		  "openapi: 3.0.3\nx-tyk-api-gateway:\n  info: {id: o, name: O}\n"
		  "  upstream: {url: 'http://o/'}\n  server: {listenPath: {value: /o/}}\n"
		  "  middleware:\n"
		  "    global: {pluginConfig: {bundle: {enabled: true, path: o.zip}}}\n",
		  "apis/oas.yaml:1:1: warning: needs the plugin bundle 'o.zip' (the gateway needs "
		  "enable_bundle_downloader, bundle_base_url and the bundle): a gateway without it "
		  "skips this api at reload\n" },
		/* What exports carry when nothing is needed. */
		{ "apis/plain.json",
		  "{\"api_id\":\"p\",\"custom_middleware_bundle\":\"\",\"certificates\":[],"
		  "\"custom_middleware\":{\"pre\":[],\"post\":[],\"driver\":\"\"}}",
		  "" },
		/* Policies need nothing from the environment. */
		{ "policies/p.json", "{\"id\":\"p\",\"certificates\":[\"x\"]}", "" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < TG_ARRAY_SIZE(cases); i++) {
		struct loaded l;

		load_buf(&l, cases[i].file, cases[i].text, NULL);
		assert_string_equal(tg_buf_cstr(&l.text), cases[i].want);
		assert_int_equal(l.problems.errors, 0);
		assert_int_equal(l.d->len, 1); /* a warning: the API is still loaded */
		unload(&l);
	}
}

static void test_desired__kind_names(void **state)
{
	(void)state;
	assert_string_equal(tg_kind_name(TG_KIND_API), "api");
	assert_string_equal(tg_kind_name(TG_KIND_OAS_API), "oas");
	assert_string_equal(tg_kind_name(TG_KIND_POLICY), "policy");
	tg_desired_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_desired__classic_api_fields_are_read),
		cmocka_unit_test(test_desired__oas_api_fields_come_from_extension),
		cmocka_unit_test(test_desired__dashboard_wrappers_are_unwrapped),
		cmocka_unit_test(test_desired__policy_refs_come_from_keys_and_api_ids),
		cmocka_unit_test(test_desired__refs_known_on_the_gateway_are_fine),
		cmocka_unit_test(test_desired__variables_are_substituted_and_recorded_as_secrets),
		cmocka_unit_test(test_desired__escaped_dollar_brace_is_still_substituted),
		cmocka_unit_test(test_desired__unset_variable_is_named_in_the_problem),
		cmocka_unit_test(test_desired__variables_can_come_from_secret_files),
		cmocka_unit_test(test_desired__duplicate_ids_name_the_first_definition),
		cmocka_unit_test(test_desired__api_and_policy_ids_are_separate_spaces),
		cmocka_unit_test(test_desired__same_listen_path_on_other_domain_is_fine),
		cmocka_unit_test(test_desired__empty_repository_is_an_error_unless_allowed),
		cmocka_unit_test(test_desired__missing_root_is_not_found),
		cmocka_unit_test(test_desired__directory_layout_is_scanned_in_order),
		cmocka_unit_test(
			test_desired__links_the_scan_meets_are_skipped_and_named_roots_refused),
		cmocka_unit_test(test_desired__manifest_never_follows_links),
		cmocka_unit_test(test_desired__sync_path_is_opened_below_the_root_without_links),
		cmocka_unit_test(test_desired__alias_bombs_in_one_small_file_are_all_reported),
		cmocka_unit_test(test_desired__values_filled_in_are_bounded_by_the_input),
		cmocka_unit_test(test_desired__policy_refs_and_id_follow_the_one_rule_of_tykobj),
		cmocka_unit_test(test_desired__policy_ref_fields_point_at_key_or_api_id),
		cmocka_unit_test(
			test_desired__manifest_listing_a_file_twice_loads_it_once_with_a_warning),
		cmocka_unit_test(
			test_desired__apis_that_need_the_gateways_environment_are_warned_about),
		cmocka_unit_test(test_desired__kind_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
