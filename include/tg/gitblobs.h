/*
 * The blob ids of a commit's files, read from the clone without reading
 * the files: what lets a load of a new commit tell which files it changed
 * (loadmemo.h).
 */
#ifndef TG_GITBLOBS_H
#define TG_GITBLOBS_H

#include <stddef.h>

#include "tg/common.h"

/* A regular file of a commit and the id of its blob. */
struct tg_git_blob {
	char *path;  /* relative to the directory asked for */
	char id[65]; /* hex; SHA-1 ids take 40 digits */
};

/* The regular files of a commit below one directory, sorted by path. */
struct tg_git_blobs {
	struct tg_git_blob *v;
	size_t len;
	/* Hex digest of the .gitattributes that apply to those files: the
	 * bytes a checkout writes for a blob depend on them too. */
	char attrs[65];
};

/*
 * The regular files (not links, not submodules) of commit sha in the bare
 * repository gitdir below dir, a path in the commit ("" or NULL: all of it;
 * "." and empty components skipped), with their blob ids: what a file of a
 * checked-out tree holds, by name, without reading it.  No files when dir
 * is not a directory of the commit or names "..".  Returns 0, or TG_ERROR
 * with err set when the repository or the commit cannot be read.  Release
 * with tg_git_blobs_release.
 */
int tg_git_blobs_read(struct tg_git_blobs *out, const char *gitdir, const char *sha,
		      const char *dir, struct tg_err *err);
/* The blob id of path, or NULL when it is not a regular file in b. */
const char *tg_git_blobs_find(const struct tg_git_blobs *b, const char *path);
void tg_git_blobs_release(struct tg_git_blobs *b);

#endif
