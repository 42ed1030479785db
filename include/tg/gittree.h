/*
 * The checked-out trees of one git source, in its cache directory:
 *   work.<random>/  one checked-out tree per commit (no .git inside)
 *   work          symbolic link to the current tree
 * A commit is checked out into a new, empty directory (sharing, by hard
 * links, the files it did not change with the current tree), and only once
 * every file is written does the link move to it (rename(2) of a new link
 * over the old one) and the previous tree go.  Call from the thread that
 * owns the source's libgit2 handles.
 */
#ifndef TG_GITTREE_H
#define TG_GITTREE_H

#include <git2.h>

#include "tg/common.h"

/* Embedded in the git source; the strings are owned. */
struct tg_gittree {
	char *cache_dir;
	char *gitdir;  /* the bare repository, which keeps the tree record */
	char *link;    /* cache_dir/work */
	char *workdir; /* the current tree, cache_dir/work.<random>, or NULL */
	int swept;     /* trees of earlier processes removed */
	/* Trees switched away from, removed by tg_gittree_tidy: after the
	 * pass, not while it waits on tens of thousands of unlinks. */
	char **retired;
	size_t n_retired;
	/* Retired trees being removed on a thread (tg_gittree_tidy_start). */
	struct tg_gittree_tidying *tidying;
};

/* Copies cache_dir and gitdir; no I/O. */
void tg_gittree_init(struct tg_gittree *t, const char *cache_dir, const char *gitdir);
/* Removes the retired trees and frees the strings; the current tree stays
 * on disk. */
void tg_gittree_release(struct tg_gittree *t);
/* Removes the trees switched away from, after waiting for the removal
 * tg_gittree_tidy_start began. */
void tg_gittree_tidy(struct tg_gittree *t);
/* Starts removing the trees switched away from on a thread of their own,
 * for a pass that is about to wait (on the gateway's reload) anyway; a
 * no-op while one is running or when no thread can be made. */
void tg_gittree_tidy_start(struct tg_gittree *t);

/* Removes path and everything under it, ignoring errors. */
void tg_gittree_remove(const char *path);

/*
 * Removes what an earlier process left behind: trees of checkouts cut
 * short, a link not yet renamed, and the single work/ directory of the
 * layout before trees had their own.  The tree the link names becomes
 * t->workdir, to be replaced by the next checkout.
 */
void tg_gittree_sweep(struct tg_gittree *t);

/*
 * Whether the current tree holds commit sha (full hex), as recorded by
 * tg_gittree_record: a new process that fetches the commit an earlier one
 * checked out uses that tree as it is.
 */
int tg_gittree_holds(const struct tg_gittree *t, const char *sha);

/*
 * Checks commit out into a new, empty directory; *out (caller frees) is its
 * path.  current is the commit the current tree holds when the caller
 * knows it, else NULL (the tree record is read): files that commit shares
 * with the new one are hard-linked from the current tree.  Nothing in the
 * repository's index or HEAD changes.  Returns 0; or TG_ERROR with err set
 * when a directory cannot be made; or, when libgit2 fails, its negative
 * code in *git_rc with err untouched, for the caller to word (it knows the
 * URL and the deadline).  On failure no directory is left behind.
 */
int tg_gittree_checkout(char **out, int *git_rc, struct tg_gittree *t, git_repository *repo,
			git_commit *commit, const char *current, struct tg_err *err);

/*
 * Makes dir (a complete tree from tg_gittree_checkout) the current one: a
 * new link renamed over "work" in one step; the previous tree is retired,
 * for tg_gittree_tidy.  Takes dir on success; on failure (TG_ERROR, err
 * set) nothing changed.
 */
int tg_gittree_switch(struct tg_gittree *t, char *dir, struct tg_err *err);

/* Records that the current tree holds commit sha, for tg_gittree_holds. */
void tg_gittree_record(const struct tg_gittree *t, const char *sha);

#endif
