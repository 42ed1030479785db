/* Unit tests of the git source: URL redaction, options, file:// sync and work trees. */
#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <git2.h>

#include "tg/common.h"
#include "tg/gitsrc.h"
#include "tg/banned.h"

static void check_redact(const char *in, const char *want)
{
	char *got = tg_git_redact_url(in);

	assert_string_equal(got, want);
	free(got);
}

static void test_redact__hides_passwords_tokens_and_queries(void **state)
{
	(void)state;
	check_redact("https://user:s3cret@host/path/r.git", "https://user:***@host/path/r.git");
	check_redact("https://user:s3c:ret@host:8443/r.git", "https://user:***@host:8443/r.git");
	check_redact("https://ghp_TOKEN@github.com/o/r.git", "https://***@github.com/o/r.git");
	check_redact("https://host/r.git?access_token=abc", "https://host/r.git?***");
	check_redact("ssh://git@host:2222/r.git", "ssh://git@host:2222/r.git");
	check_redact("ssh://git:pw@host/r.git", "ssh://git:***@host/r.git");
	check_redact("git@github.com:o/r.git", "git@github.com:o/r.git");
	check_redact("/srv/git/r.git", "/srv/git/r.git");
	check_redact("file:///srv/git/r.git", "file:///srv/git/r.git");
	check_redact("https://host/a@b/r.git", "https://host/a@b/r.git");
	check_redact("", "");
}

/* ---- options ---- */

static void test_source_new__rejects_bad_options(void **state)
{
	struct tg_git_source *src = NULL;
	struct tg_git_opts o;
	struct tg_err err;
	const char *bad_key[] = { "ssh-ed25519 AAAA" };

	(void)state;
	memset(&o, 0, sizeof(o));
	o.cache_dir = "/tmp/x";
	o.ref = "main";
	assert_int_equal(tg_git_source_new(&src, &o, &err), TG_EINVALID);
	assert_string_equal(err.msg, "git source: url is empty");
	o.url = "/srv/r.git";
	o.ref_type = TG_REF_COMMIT;
	o.ref = "abc123";
	assert_int_equal(tg_git_source_new(&src, &o, &err), TG_EINVALID);
	assert_non_null(strstr(err.msg, "not a full 40-character sha"));
	o.ref_type = TG_REF_BRANCH;
	o.ref = "main";
	o.trusted_keys = bad_key;
	o.n_trusted_keys = 1;
	assert_int_equal(tg_git_source_new(&src, &o, &err), TG_EINVALID);
	assert_non_null(strstr(err.msg, "trusted key 1"));
	assert_null(src);
	tg_git_source_free(NULL);
}

/* ---- local repository ---- */

struct fx {
	char dir[64];
	char *repo, *cache, *url;
};

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	va_list ap;
	char *cmd = NULL;
	int rc;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0)
		abort();
	va_end(ap);
	rc = system(cmd);
	free(cmd);
	return rc;
}

#define GIT                                                                        \
	"GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_AUTHOR_NAME='Ann' " \
	"GIT_AUTHOR_EMAIL=ann@x GIT_COMMITTER_NAME=Bob GIT_COMMITTER_EMAIL=bob@x git -C "

static int setup_repo(void **state)
{
	struct fx *fx = tg_xcalloc(1, sizeof(*fx));

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/tg-test-gitsrc-XXXXXX");
	if (!mkdtemp(fx->dir))
		return -1;
	fx->repo = tg_xasprintf("%s/repo", fx->dir);
	fx->cache = tg_xasprintf("%s/cache", fx->dir);
	fx->url = tg_xasprintf("file://%s", fx->repo);
	if (run("git init -q -b main %s && echo one > %s/a.txt && " GIT "%s add a.txt && " GIT
		"%s commit -qm 'first line\n\nbody'",
		fx->repo, fx->repo, fx->repo, fx->repo))
		return -1;
	*state = fx;
	return 0;
}

static int teardown_repo(void **state)
{
	struct fx *fx = *state;

	run("rm -rf %s", fx->dir);
	free(fx->repo);
	free(fx->cache);
	free(fx->url);
	free(fx);
	return 0;
}

static char *slurp(const char *dir, const char *name)
{
	char *path = tg_xasprintf("%s/%s", dir, name), *data = NULL;
	size_t len;

	if (tg_read_file(&data, &len, path, 1 << 20, NULL) < 0)
		data = NULL;
	free(path);
	return data;
}

static void test_sync__file_url_checkout_metadata_and_changes(void **state)
{
	struct fx *fx = *state;
	struct tg_git_source *src = NULL;
	struct tg_git_opts o;
	struct tg_err err;
	const struct tg_commit_info *ci;
	char sha[41], first[41];
	char *data;
	int changed = -1;

	memset(&o, 0, sizeof(o));
	o.url = fx->url;
	o.ref_type = TG_REF_BRANCH;
	o.ref = "main";
	o.cache_dir = fx->cache;
	assert_int_equal(tg_git_source_new(&src, &o, &err), 0);
	assert_null(tg_git_commit(src));
	assert_int_equal(tg_git_remote_head(src, sha, &err), 0);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 1);
	ci = tg_git_commit(src);
	assert_non_null(ci);
	assert_string_equal(ci->sha, sha);
	assert_string_equal(ci->author_name, "Ann");
	assert_string_equal(ci->author_email, "ann@x");
	assert_string_equal(ci->committer_name, "Bob");
	assert_string_equal(ci->summary, "first line");
	assert_string_equal(ci->message, "first line\n\nbody\n");
	assert_true(ci->time > 0);
	data = slurp(tg_git_workdir(src), "a.txt");
	assert_string_equal(data, "one\n");
	free(data);
	memcpy(first, sha, sizeof(first));

	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 0);

	assert_int_equal(
		run("echo two > %s/a.txt && " GIT "%s commit -qam second", fx->repo, fx->repo), 0);
	assert_int_equal(tg_git_remote_head(src, sha, &err), 0);
	assert_string_not_equal(sha, first);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_string_equal(tg_git_commit(src)->sha, sha);
	data = slurp(tg_git_workdir(src), "a.txt");
	assert_string_equal(data, "two\n");
	free(data);
	tg_git_source_free(src);

	/* an exact commit, no network once cached */
	o.ref_type = TG_REF_COMMIT;
	o.ref = first;
	assert_int_equal(tg_git_source_new(&src, &o, &err), 0);
	assert_int_equal(tg_git_remote_head(src, sha, &err), 0);
	assert_string_equal(sha, first);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 1);
	data = slurp(tg_git_workdir(src), "a.txt");
	assert_string_equal(data, "one\n");
	free(data);
	tg_git_source_free(src);
}

static void test_sync__missing_branch_keeps_checkout(void **state)
{
	struct fx *fx = *state;
	struct tg_git_source *src = NULL;
	struct tg_git_opts o;
	struct tg_err err;
	char sha[41];
	char *data;
	int changed;

	memset(&o, 0, sizeof(o));
	o.url = fx->repo; /* plain path */
	o.ref_type = TG_REF_BRANCH;
	o.ref = "gone";
	o.cache_dir = fx->cache;
	assert_int_equal(run(GIT "%s branch gone", fx->repo), 0);
	assert_int_equal(tg_git_source_new(&src, &o, &err), 0);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(run(GIT "%s branch -qD gone", fx->repo), 0);
	assert_int_equal(tg_git_remote_head(src, sha, &err), TG_ENOTFOUND);
	assert_int_equal(tg_git_sync(src, &changed, &err), TG_ENOTFOUND);
	assert_int_equal(err.code, TG_ENOTFOUND);
	assert_non_null(strstr(err.msg, "branch 'gone' not found in '"));
	data = slurp(tg_git_workdir(src), "a.txt");
	assert_string_equal(data, "one\n");
	free(data);
	assert_non_null(tg_git_commit(src));
	tg_git_source_free(src);
}

/* ---- work trees ---- */

static struct tg_git_source *source(struct fx *fx)
{
	struct tg_git_source *src = NULL;
	struct tg_git_opts o;
	struct tg_err err;

	memset(&o, 0, sizeof(o));
	o.url = fx->url;
	o.ref_type = TG_REF_BRANCH;
	o.ref = "main";
	o.cache_dir = fx->cache;
	assert_int_equal(tg_git_source_new(&src, &o, &err), 0);
	return src;
}

/* Entries of the cache named work.*: the trees (and any leftover link). */
static int count_trees(struct fx *fx)
{
	DIR *d = opendir(fx->cache);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		n += !strncmp(de->d_name, "work.", 5);
	closedir(d);
	return n;
}

/* The tree cache/work links to, as a full path. */
static char *linked_tree(struct fx *fx)
{
	char *link = tg_xasprintf("%s/work", fx->cache), name[PATH_MAX];
	ssize_t n = readlink(link, name, sizeof(name) - 1);

	free(link);
	assert_true(n > 0);
	name[n] = '\0';
	return tg_xasprintf("%s/%s", fx->cache, name);
}

static int is_dir(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

static void test_sync__new_commit_gets_new_tree_old_one_goes(void **state)
{
	struct fx *fx = *state;
	struct tg_git_source *src = source(fx);
	struct tg_err err;
	char *first, *link, *data;
	int changed;

	assert_null(tg_git_workdir(src));
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	first = tg_xstrdup(tg_git_workdir(src));
	link = linked_tree(fx);
	assert_string_equal(link, first);
	free(link);
	assert_int_equal(count_trees(fx), 1);

	/* unchanged: the same tree */
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 0);
	assert_string_equal(tg_git_workdir(src), first);

	assert_int_equal(
		run("echo two > %s/a.txt && " GIT "%s commit -qam second", fx->repo, fx->repo), 0);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_string_not_equal(tg_git_workdir(src), first);
	/* The old tree is retired: removed once the pass is over. */
	assert_true(is_dir(first));
	tg_git_tidy(src);
	assert_false(is_dir(first));
	link = linked_tree(fx);
	assert_string_equal(link, tg_git_workdir(src));
	free(link);
	assert_int_equal(count_trees(fx), 1);
	data = slurp(tg_git_workdir(src), "a.txt");
	assert_string_equal(data, "two\n");
	free(data);
	free(first);

	/* Removed on a thread while a pass waits; tidy waits for it. */
	first = tg_xstrdup(tg_git_workdir(src));
	assert_int_equal(
		run("echo three > %s/a.txt && " GIT "%s commit -qam third", fx->repo, fx->repo), 0);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 1);
	tg_git_tidy_start(src);
	tg_git_tidy_start(src); /* one at a time */
	tg_git_tidy(src);
	assert_false(is_dir(first));
	assert_int_equal(count_trees(fx), 1);
	free(first);
	tg_git_source_free(src);
}

/*
 * A checkout cut short must leave the previous tree byte for byte.  The
 * new commit removes b.txt (an in-place checkout removes first) and adds a
 * 1 MiB file of zeros: a tiny pack to fetch, but the checkout hits
 * RLIMIT_FSIZE (EFBIG, which even root gets) half-way.
 */
static void test_sync__checkout_cut_short_keeps_previous_tree(void **state)
{
	struct fx *fx = *state;
	struct tg_git_source *src = source(fx);
	struct tg_err err;
	struct rlimit saved, small;
	char first_sha[41], *first, *data;
	void (*old_handler)(int);
	int changed = -1, rc;

	assert_int_equal(run("echo bee > %s/b.txt && " GIT "%s add b.txt && " GIT
			     "%s commit -qm bee",
			     fx->repo, fx->repo, fx->repo),
			 0);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	memcpy(first_sha, tg_git_commit(src)->sha, sizeof(first_sha));
	first = tg_xstrdup(tg_git_workdir(src));
	assert_int_equal(run("echo two > %s/a.txt && head -c 1048576 /dev/zero > %s/big.bin && " GIT
			     "%s rm -q b.txt && " GIT "%s add -A && " GIT "%s commit -qm big",
			     fx->repo, fx->repo, fx->repo, fx->repo, fx->repo),
			 0);

	assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
	small = saved;
	small.rlim_cur = 64 * 1024;
	old_handler = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
	rc = tg_git_sync(src, &changed, &err);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
	signal(SIGXFSZ, old_handler);

	assert_int_equal(rc, TG_ERROR);
	assert_non_null(strstr(err.msg, "cannot check out '"));
	assert_non_null(strstr(err.msg, "big.bin"));
	assert_int_equal(changed, 0);
	assert_string_equal(tg_git_commit(src)->sha, first_sha);
	assert_string_equal(tg_git_workdir(src), first);
	data = slurp(first, "a.txt");
	assert_string_equal(data, "one\n");
	free(data);
	data = slurp(first, "b.txt");
	assert_string_equal(data, "bee\n");
	free(data);
	data = slurp(first, "big.bin");
	assert_null(data);
	assert_int_equal(count_trees(fx), 1); /* the partial tree is gone */

	/* with room again the same commit goes through */
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 1);
	assert_string_not_equal(tg_git_commit(src)->sha, first_sha);
	tg_git_tidy(src);
	assert_false(is_dir(first));
	data = slurp(tg_git_workdir(src), "b.txt");
	assert_null(data);
	assert_int_equal(count_trees(fx), 1);
	free(first);
	tg_git_source_free(src);
}

static void test_sync__leftovers_swept_last_tree_kept(void **state)
{
	struct fx *fx = *state;
	struct tg_git_source *src = source(fx);
	struct tg_err err;
	char *first, *second, *link, *data;
	int changed;

	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	first = tg_xstrdup(tg_git_workdir(src));
	tg_git_source_free(src);
	/* a checkout and a link switch cut short by a crash */
	assert_int_equal(run("mkdir %s/work.crash1 && echo x > %s/work.crash1/f && "
			     "ln -s work.crash1 %s/work.new",
			     fx->cache, fx->cache, fx->cache),
			 0);

	src = source(fx);
	assert_true(is_dir(first)); /* the last good tree is still there */
	assert_null(tg_git_workdir(src));
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 1);
	second = tg_xstrdup(tg_git_workdir(src));
	/* The same commit: the kept tree is used as it is, not checked out
	 * again (its record in the git cache names it). */
	assert_string_equal(second, first);
	assert_true(is_dir(first));
	link = linked_tree(fx);
	assert_string_equal(link, second);
	free(link);
	assert_int_equal(count_trees(fx), 1);
	tg_git_source_free(src);

	/* the layout before trees had their own directories: work/ itself */
	assert_int_equal(run("rm %s/work && mkdir %s/work && echo old > %s/work/a.txt", fx->cache,
			     fx->cache, fx->cache),
			 0);
	src = source(fx);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	link = linked_tree(fx);
	assert_string_equal(link, tg_git_workdir(src));
	free(link);
	data = slurp(fx->cache, "work/a.txt");
	assert_string_equal(data, "one\n");
	free(data);
	assert_false(is_dir(second));
	assert_int_equal(count_trees(fx), 1);
	tg_git_source_free(src);
	free(first);
	free(second);
}

static ino_t inode_of(const char *dir, const char *name)
{
	char *p = tg_xasprintf("%s/%s", dir, name);
	struct stat sb;

	assert_int_equal(stat(p, &sb), 0);
	free(p);
	return sb.st_ino;
}

static void test_sync__new_tree_links_what_the_commit_did_not_change(void **state)
{
	struct fx *fx = *state;
	struct tg_git_source *src = source(fx);
	struct tg_err err;
	char *first, *second, *third, *data, *rec;
	ino_t a_ino, b_ino;
	int changed;

	assert_int_equal(run("mkdir %s/d && echo bee > %s/d/b.txt && " GIT "%s add d && " GIT
			     "%s commit -qm b",
			     fx->repo, fx->repo, fx->repo, fx->repo),
			 0);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	first = tg_xstrdup(tg_git_workdir(src));
	a_ino = inode_of(first, "a.txt");
	b_ino = inode_of(first, "d/b.txt");
	tg_git_source_free(src);

	/* A new process, a commit changing a.txt only. */
	assert_int_equal(
		run("echo two > %s/a.txt && " GIT "%s commit -qam two", fx->repo, fx->repo), 0);
	src = source(fx);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(changed, 1);
	second = tg_xstrdup(tg_git_workdir(src));
	assert_string_not_equal(second, first);
	data = slurp(second, "a.txt");
	assert_string_equal(data, "two\n");
	free(data);
	data = slurp(second, "d/b.txt");
	assert_string_equal(data, "bee\n");
	free(data);
	assert_true(inode_of(second, "a.txt") != a_ino);   /* written */
	assert_true(inode_of(second, "d/b.txt") == b_ino); /* shared */
	tg_git_tidy(src);
	assert_false(is_dir(first));
	assert_int_equal(count_trees(fx), 1);
	tg_git_source_free(src);

	/* Without its record the tree is not trusted: checked out again. */
	rec = tg_xasprintf("%s/repo.git/tg-checked-out", fx->cache);
	assert_int_equal(unlink(rec), 0);
	free(rec);
	src = source(fx);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	third = tg_xstrdup(tg_git_workdir(src));
	assert_string_not_equal(third, second);
	assert_true(inode_of(third, "d/b.txt") != b_ino);
	data = slurp(third, "a.txt");
	assert_string_equal(data, "two\n");
	free(data);
	tg_git_tidy(src);
	assert_int_equal(count_trees(fx), 1);
	tg_git_source_free(src);
	free(first);
	free(second);
	free(third);
}

static char *rev_parse(struct fx *fx, const char *spec)
{
	char *cmd = tg_xasprintf("git -C %s rev-parse %s", fx->repo, spec), line[128] = "";
	FILE *p = popen(cmd, "r");

	assert_non_null(p);
	assert_non_null(fgets(line, sizeof(line), p));
	pclose(p);
	free(cmd);
	line[strcspn(line, "\n")] = '\0';
	return tg_xstrdup(line);
}

static void test_blobs__regular_files_below_a_path_with_their_ids(void **state)
{
	struct fx *fx = *state;
	struct tg_git_source *src = source(fx);
	struct tg_git_blobs b, same;
	struct tg_err err;
	char attrs[65], *id;
	int changed;

	assert_int_equal(tg_git_blobs(&b, src, "d", &err), TG_ERROR); /* nothing checked out */
	assert_int_equal(
		run("mkdir -p %s/d/sub && echo x > %s/d/x.json && echo y > %s/d/sub/y.json "
		    "&& ln -s x.json %s/d/link.json && " GIT "%s add d && " GIT "%s commit -qm d",
		    fx->repo, fx->repo, fx->repo, fx->repo, fx->repo, fx->repo),
		0);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(tg_git_blobs(&b, src, "d", &err), 0);
	assert_int_equal(b.len, 2); /* no link */
	assert_string_equal(b.v[0].path, "sub/y.json");
	assert_string_equal(b.v[1].path, "x.json");
	id = rev_parse(fx, "HEAD:d/x.json");
	assert_string_equal(tg_git_blobs_find(&b, "x.json"), id);
	free(id);
	assert_null(tg_git_blobs_find(&b, "link.json"));
	assert_null(tg_git_blobs_find(&b, "a.txt"));
	memcpy(attrs, b.attrs, sizeof(attrs));

	/* The path as a sync may spell it; one that is not a directory. */
	assert_int_equal(tg_git_blobs(&same, src, "/./d//", &err), 0);
	assert_int_equal(same.len, 2);
	assert_string_equal(same.attrs, attrs);
	tg_git_blobs_release(&same);
	assert_int_equal(tg_git_blobs(&same, src, "d/x.json", &err), 0);
	assert_int_equal(same.len, 0);
	tg_git_blobs_release(&same);
	assert_int_equal(tg_git_blobs(&same, src, "d/../d", &err), 0);
	assert_int_equal(same.len, 0);
	tg_git_blobs_release(&same);
	assert_int_equal(tg_git_blobs(&same, src, NULL, &err), 0);
	assert_int_equal(same.len, 3);
	tg_git_blobs_release(&same);

	/* .gitattributes above the path change what a checkout writes. */
	assert_int_equal(run("echo '*.json text eol=crlf' > %s/.gitattributes && " GIT
			     "%s add .gitattributes && " GIT "%s commit -qm attrs",
			     fx->repo, fx->repo, fx->repo),
			 0);
	assert_int_equal(tg_git_sync(src, &changed, &err), 0);
	assert_int_equal(tg_git_blobs(&same, src, "d", &err), 0);
	assert_int_equal(same.len, 2);
	assert_string_equal(same.v[1].id, b.v[1].id);
	assert_string_not_equal(same.attrs, attrs);
	tg_git_blobs_release(&same);
	tg_git_blobs_release(&b);
	tg_git_source_free(src);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact__hides_passwords_tokens_and_queries),
		cmocka_unit_test(test_source_new__rejects_bad_options),
		cmocka_unit_test_setup_teardown(test_sync__file_url_checkout_metadata_and_changes,
						setup_repo, teardown_repo),
		cmocka_unit_test_setup_teardown(test_sync__missing_branch_keeps_checkout,
						setup_repo, teardown_repo),
		cmocka_unit_test_setup_teardown(
			test_sync__new_tree_links_what_the_commit_did_not_change, setup_repo,
			teardown_repo),
		cmocka_unit_test_setup_teardown(test_sync__new_commit_gets_new_tree_old_one_goes,
						setup_repo, teardown_repo),
		cmocka_unit_test_setup_teardown(test_sync__checkout_cut_short_keeps_previous_tree,
						setup_repo, teardown_repo),
		cmocka_unit_test_setup_teardown(
			test_blobs__regular_files_below_a_path_with_their_ids, setup_repo,
			teardown_repo),
		cmocka_unit_test_setup_teardown(test_sync__leftovers_swept_last_tree_kept,
						setup_repo, teardown_repo),
	};
	int rc;

	git_libgit2_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	git_libgit2_shutdown();
	return rc;
}
