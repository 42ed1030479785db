/*
 * The checked-out trees of a git source (see include/tg/gittree.h).
 *
 * Keeping the trees outside the repository lets a corrupt repository be
 * thrown away and cloned again while the last good checkout stays in
 * place.  A checkout cut short (a full disk) leaves the previous tree byte
 * for byte, so a pass that falls back to it never sees half of the new
 * commit.  Trees left by an interrupted process are swept at the first
 * sync; the one the link names survives a restart.
 */
#include "tg/gittree.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tg/banned.h"

#define TREE_PREFIX "work."

void tg_gittree_init(struct tg_gittree *t, const char *cache_dir, const char *gitdir)
{
	memset(t, 0, sizeof(*t));
	t->cache_dir = tg_xstrdup(cache_dir);
	t->gitdir = tg_xstrdup(gitdir);
	t->link = tg_xasprintf("%s/work", cache_dir);
}

void tg_gittree_release(struct tg_gittree *t)
{
	tg_gittree_tidy(t);
	free(t->retired);
	free(t->cache_dir);
	free(t->gitdir);
	free(t->link);
	free(t->workdir);
	memset(t, 0, sizeof(*t));
}

struct tg_gittree_tidying {
	pthread_t thread;
	char **trees;
	size_t n;
};

static void *tidy_thread(void *arg)
{
	struct tg_gittree_tidying *job = arg;

	for (size_t i = 0; i < job->n; i++)
		tg_gittree_remove(job->trees[i]);
	return NULL;
}

void tg_gittree_tidy_start(struct tg_gittree *t)
{
	struct tg_gittree_tidying *job;

	if (t->tidying || !t->n_retired)
		return;
	job = tg_xcalloc(1, sizeof(*job));
	job->trees = t->retired;
	job->n = t->n_retired;
	if (pthread_create(&job->thread, NULL, tidy_thread, job) != 0) {
		free(job);
		return;
	}
	t->retired = NULL;
	t->n_retired = 0;
	t->tidying = job;
}

void tg_gittree_tidy(struct tg_gittree *t)
{
	if (t->tidying) {
		pthread_join(t->tidying->thread, NULL);
		for (size_t i = 0; i < t->tidying->n; i++)
			free(t->tidying->trees[i]);
		free(t->tidying->trees);
		free(t->tidying);
		t->tidying = NULL;
	}
	for (size_t i = 0; i < t->n_retired; i++) {
		tg_gittree_remove(t->retired[i]);
		free(t->retired[i]);
	}
	t->n_retired = 0;
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

void tg_gittree_remove(const char *path)
{
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Name of the tree the "work" link points to; "" when there is none. */
static void link_target(char *name, size_t size, const char *link)
{
	ssize_t n = readlink(link, name, size - 1);

	name[n > 0 ? n : 0] = '\0';
	/* Only ever one of our trees, never a path elsewhere. */
	if (strncmp(name, TREE_PREFIX, strlen(TREE_PREFIX)) || strchr(name, '/'))
		name[0] = '\0';
}

/*
 * Removes what an earlier process left behind: trees of checkouts cut
 * short, a link not yet renamed, and the single work/ directory of the
 * layout before trees had their own.  The tree the link names is kept as
 * the current one, to be replaced by the next checkout.
 */
void tg_gittree_sweep(struct tg_gittree *t)
{
	char keep[64];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	t->swept = 1;
	if (lstat(t->link, &sb) == 0 && S_ISDIR(sb.st_mode))
		tg_gittree_remove(t->link);
	link_target(keep, sizeof(keep), t->link);
	d = opendir(t->cache_dir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char *p;

		if (strncmp(de->d_name, TREE_PREFIX, strlen(TREE_PREFIX)) ||
		    !strcmp(de->d_name, keep))
			continue;
		p = tg_xasprintf("%s/%s", t->cache_dir, de->d_name);
		tg_gittree_remove(p);
		free(p);
	}
	closedir(d);
	free(t->workdir);
	t->workdir = keep[0] ? tg_xasprintf("%s/%s", t->cache_dir, keep) : NULL;
}

/*
 * "tg-checked-out" in the git cache names the commit the current tree
 * holds ("<sha> <tree>"), written once the tree is complete and switched
 * to, so that a new process (each CLI run) that fetches the same commit
 * uses the tree as it is instead of checking it out again.  A fresh clone
 * starts without one.
 */
#define TREE_RECORD "tg-checked-out"

void tg_gittree_record(const struct tg_gittree *t, const char *sha)
{
	char *path = tg_xasprintf("%s/" TREE_RECORD, t->gitdir);
	char *tmp = tg_xasprintf("%s.new", path);
	const char *name = strrchr(t->workdir, '/');
	FILE *f = fopen(tmp, "we");
	int ok = f != NULL;

	if (f) {
		ok = fprintf(f, "%s %s\n", sha, name ? name + 1 : t->workdir) > 0;
		ok = fclose(f) == 0 && ok;
	}
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		unlink(path); /* no record: the next process checks out */
	}
	free(tmp);
	free(path);
}

/* The commit the current tree (the one the link names, kept by the sweep)
 * holds, into sha[41]; 0, or -1 when not known. */
static int tree_commit(const struct tg_gittree *t, const char *current, char sha[41])
{
	char *path, got[128];
	const char *name = t->workdir ? strrchr(t->workdir, '/') : NULL;
	struct stat sb;
	FILE *f;
	int ok = 0;

	if (!name || lstat(t->workdir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return -1;
	if (current) {
		memcpy(sha, current, 41);
		return 0;
	}
	path = tg_xasprintf("%s/" TREE_RECORD, t->gitdir);
	f = fopen(path, "re");
	free(path);
	if (!f)
		return -1;
	if (fgets(got, sizeof(got), f)) {
		size_t n = strlen(got), k = strlen(name + 1);

		/* "<40 hex> <tree name>\n" */
		ok = n == 41 + k + 1 && got[40] == ' ' && got[n - 1] == '\n' &&
		     !strncmp(got + 41, name + 1, k);
	}
	fclose(f);
	if (!ok)
		return -1;
	memcpy(sha, got, 40);
	sha[40] = '\0';
	return 0;
}

int tg_gittree_holds(const struct tg_gittree *t, const char *sha)
{
	char have[41];

	return tree_commit(t, NULL, have) == 0 && !strcmp(have, sha);
}

/*
 * A new tree shares the files a commit did not change with the current
 * tree: they are hard-linked from it instead of written again (on a busy
 * disk, creating a file costs milliseconds; a commit touching 10 files of
 * 2,000 wrote all 2,000).  Trees are never written to once complete, so
 * sharing inodes is safe.  Only regular blobs with the same id and mode at
 * the same path are linked; everything else is left to libgit2's checkout,
 * limited to those paths.  A tree with a name that is not plain (".git",
 * "..", a backslash) is checked out whole by libgit2, as before.
 */
/* A file of the current tree's commit. */
struct old_file {
	char *path;
	git_oid id;
	git_filemode_t mode;
};

struct link_walk {
	struct old_file *old; /* sorted by path: one lookup per new file, not a
	                         tree walk (libgit2 does not cache big trees) */
	size_t n_old, alloc_old;
	const char *from, *to;
	char **paths; /* not linked: checked out by libgit2 */
	size_t n_paths, alloc_paths;
	size_t linked;
	/* The directory whose parents were made last: the walk meets a
	 * directory's files one after another, and a mkdir that finds the
	 * directory there is a system call per file for nothing. */
	char *made;
};

static int plain_name(const char *name)
{
	return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/') &&
	       !strchr(name, '\\') && strcasecmp(name, ".git");
}

/* Creates the directories of rel (a path below w->to) up to its last '/'. */
static int make_parents(struct link_walk *w, const char *rel)
{
	const char *last = strrchr(rel, '/');
	size_t n = last ? (size_t)(last - rel) : 0;
	char *p, *slash;
	int rc = 0;

	if (w->made && strlen(w->made) == n && !strncmp(w->made, rel, n))
		return 0;
	p = tg_xasprintf("%s/%s", w->to, rel);
	slash = p + strlen(w->to) + 1;
	while ((slash = strchr(slash, '/')) != NULL) {
		*slash = '\0';
		if (mkdir(p, 0777) < 0 && errno != EEXIST)
			rc = -1;
		*slash = '/';
		slash++;
	}
	free(p);
	free(w->made);
	w->made = rc ? NULL : tg_xstrndup(rel, n);
	return rc;
}

static int collect_old(const char *root, const git_tree_entry *e, void *payload)
{
	struct link_walk *w = payload;
	struct old_file *f;

	if (git_tree_entry_filemode(e) == GIT_FILEMODE_TREE)
		return 0;
	if (w->n_old == w->alloc_old) {
		w->alloc_old = w->alloc_old ? w->alloc_old * 2 : 256;
		w->old = tg_xreallocarray(w->old, w->alloc_old, sizeof(*w->old));
	}
	f = &w->old[w->n_old++];
	f->path = tg_xasprintf("%s%s", root, git_tree_entry_name(e));
	git_oid_cpy(&f->id, git_tree_entry_id(e));
	f->mode = git_tree_entry_filemode(e);
	return 0;
}

static int cmp_old_file(const void *a, const void *b)
{
	return strcmp(((const struct old_file *)a)->path, ((const struct old_file *)b)->path);
}

static int link_entry(const char *root, const git_tree_entry *e, void *payload)
{
	struct link_walk *w = payload;
	git_filemode_t mode = git_tree_entry_filemode(e);
	const struct old_file *old;
	struct old_file key;
	char *rel, *from = NULL, *to = NULL;
	struct stat sb;
	int same;

	/* A name libgit2 might refuse or treat specially: it decides, for
	 * the whole tree, as before. */
	if (!plain_name(git_tree_entry_name(e)))
		return GIT_EUSER;
	if (mode == GIT_FILEMODE_TREE)
		return 0;
	rel = tg_xasprintf("%s%s", root, git_tree_entry_name(e));
	key.path = rel;
	old = w->n_old ? bsearch(&key, w->old, w->n_old, sizeof(*w->old), cmp_old_file) : NULL;
	same = (mode == GIT_FILEMODE_BLOB || mode == GIT_FILEMODE_BLOB_EXECUTABLE) && old &&
	       old->mode == mode && git_oid_equal(&old->id, git_tree_entry_id(e));
	if (same) {
		from = tg_xasprintf("%s/%s", w->from, rel);
		to = tg_xasprintf("%s/%s", w->to, rel);
		same = lstat(from, &sb) == 0 && S_ISREG(sb.st_mode) && make_parents(w, rel) == 0 &&
		       link(from, to) == 0;
	}
	if (same) {
		w->linked++;
		free(rel);
	} else {
		if (w->n_paths == w->alloc_paths) {
			w->alloc_paths = w->alloc_paths ? w->alloc_paths * 2 : 16;
			w->paths = tg_xreallocarray(w->paths, w->alloc_paths, sizeof(*w->paths));
		}
		w->paths[w->n_paths++] = rel;
	}
	free(from);
	free(to);
	return 0;
}

/* Links what the new commit shares with the current tree's commit into
 * dir; 0 and w filled, or -1 when there is nothing to share from (then
 * everything is checked out). */
static int link_unchanged(struct link_walk *w, git_repository *repo, git_commit *commit,
			  const struct tg_gittree *t, const char *current, const char *dir)
{
	git_commit *base = NULL;
	git_tree *old_tree = NULL, *new_tree = NULL;
	git_oid base_id;
	char sha[41];
	int rc = -1;

	memset(w, 0, sizeof(*w));
	if (tree_commit(t, current, sha) < 0 || git_oid_fromstr(&base_id, sha) < 0 ||
	    git_commit_lookup(&base, repo, &base_id) < 0 || git_commit_tree(&old_tree, base) < 0 ||
	    git_commit_tree(&new_tree, commit) < 0 ||
	    git_tree_walk(old_tree, GIT_TREEWALK_PRE, collect_old, w) < 0)
		goto out;
	qsort(w->old, w->n_old, sizeof(*w->old), cmp_old_file);
	w->from = t->workdir;
	w->to = dir;
	if (git_tree_walk(new_tree, GIT_TREEWALK_PRE, link_entry, w) < 0)
		goto out;
	rc = 0;
out:
	git_tree_free(old_tree);
	git_tree_free(new_tree);
	git_commit_free(base);
	return rc;
}

static void link_walk_release(struct link_walk *w)
{
	for (size_t i = 0; i < w->n_paths; i++)
		free(w->paths[i]);
	free(w->paths);
	for (size_t i = 0; i < w->n_old; i++)
		free(w->old[i].path);
	free(w->old);
	free(w->made);
	memset(w, 0, sizeof(*w));
}

/*
 * Checks the commit out into a new, empty directory; *out is its path.
 * GIT_CHECKOUT_FORCE implies RECREATE_MISSING: every file of the commit is
 * written, whatever the cache's index and HEAD say.  The index is not
 * written (it would describe a directory that goes with the next commit),
 * so a checkout cut short changes nothing in the cache either.
 */
int tg_gittree_checkout(char **out, int *git_rc, struct tg_gittree *t, git_repository *repo,
			git_commit *commit, const char *current, struct tg_err *err)
{
	git_checkout_options co;
	char *dir = tg_xasprintf("%s/" TREE_PREFIX "XXXXXX", t->cache_dir);
	struct link_walk w;
	int rc, skip = 0;

	*out = NULL;
	*git_rc = 0;
	if (!mkdtemp(dir)) {
		rc = tg_err_set(err, TG_ERROR, "cannot create work tree in '%s': %s", t->cache_dir,
				strerror(errno));
		free(dir);
		return rc;
	}
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX;
	if (link_unchanged(&w, repo, commit, t, current, dir) == 0) {
		/* Only what was not linked; none at all when everything was
		 * (an empty path list would mean every path). */
		co.checkout_strategy |= GIT_CHECKOUT_DISABLE_PATHSPEC_MATCH;
		co.paths.strings = w.paths;
		co.paths.count = w.n_paths;
		if (!w.n_paths)
			skip = 1;
	} else {
		/* A failed walk may have linked some: start from empty. */
		link_walk_release(&w);
		tg_gittree_remove(dir);
		if (mkdir(dir, 0700) < 0) {
			rc = tg_err_set(err, TG_ERROR, "cannot create work tree '%s': %s", dir,
					strerror(errno));
			goto out;
		}
	}
	if ((rc = git_repository_set_workdir(repo, dir, 0)) < 0 ||
	    (!skip && (rc = git_checkout_tree(repo, (git_object *)commit, &co)) < 0)) {
		*git_rc = rc; /* the caller words it */
		goto out;
	}
	*out = dir;
	dir = NULL;
	rc = 0;
out:
	link_walk_release(&w);
	if (dir)
		tg_gittree_remove(dir);
	free(dir);
	return rc;
}

/*
 * Makes dir (a complete tree) the current one: a new link renamed over
 * "work" in one step; the previous tree is retired (tg_gittree_tidy).
 * Takes dir on success; on failure nothing changed.
 */
int tg_gittree_switch(struct tg_gittree *t, char *dir, struct tg_err *err)
{
	char *tmp = tg_xasprintf("%s.new", t->link); /* swept if left over */
	const char *name;
	int rc = 0;

	assert(dir); /* a tg_gittree_checkout() that returned 0 made it */
	name = dir + strlen(t->cache_dir) + 1;
	unlink(tmp);
	if (symlink(name, tmp) < 0 || rename(tmp, t->link) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot switch work tree '%s' to '%s': %s", t->link,
				name, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (t->workdir) {
		t->retired = tg_xreallocarray(t->retired, t->n_retired + 1, sizeof(*t->retired));
		t->retired[t->n_retired++] = t->workdir;
	}
	t->workdir = dir;
out:
	free(tmp);
	return rc;
}
