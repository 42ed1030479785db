/*
 * The blob ids of a commit's files (see include/tg/gitblobs.h): what each
 * file of a checked-out tree holds, by name, without reading it.
 */
#include "tg/gitblobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>
#include <openssl/evp.h>

#include "tg/buf.h"
#include "tg/banned.h"

struct blob_walk {
	struct tg_git_blobs *out;
	size_t alloc;
	struct tg_buf attrs; /* "<path> <id>\n" of every .gitattributes that applies */
};

static void note_attrs(struct blob_walk *w, const char *path, const git_oid *id)
{
	char hex[GIT_OID_HEXSZ + 1];

	git_oid_tostr(hex, sizeof(hex), id);
	tg_buf_printf(&w->attrs, "%s %s\n", path, hex);
}

static int blob_cb(const char *root, const git_tree_entry *e, void *payload)
{
	struct blob_walk *w = payload;
	git_filemode_t mode = git_tree_entry_filemode(e);
	struct tg_git_blob *b;
	char *path;

	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
		return 0;
	path = tg_xasprintf("%s%s", root, git_tree_entry_name(e));
	if (!strcmp(git_tree_entry_name(e), ".gitattributes"))
		note_attrs(w, path, git_tree_entry_id(e));
	if (w->out->len == w->alloc) {
		w->alloc = w->alloc ? w->alloc * 2 : 256;
		w->out->v = tg_xreallocarray(w->out->v, w->alloc, sizeof(*w->out->v));
	}
	b = &w->out->v[w->out->len++];
	b->path = path;
	git_oid_tostr(b->id, sizeof(b->id), git_tree_entry_id(e));
	return 0;
}

static int cmp_blob(const void *a, const void *b)
{
	return strcmp(((const struct tg_git_blob *)a)->path, ((const struct tg_git_blob *)b)->path);
}

/* dir as the commit names it ("a/b"), or NULL when it holds "..". */
static char *tree_path(const char *dir)
{
	const char *c;
	char *out = tg_xstrdup(""), *tmp;
	size_t n;

	for (c = tg_path_next_component(dir ? dir : "", &n); c;
	     c = tg_path_next_component(c + n, &n)) {
		if (n == 2 && c[0] == '.' && c[1] == '.') {
			free(out);
			return NULL;
		}
		tmp = tg_xasprintf("%s%s%.*s", out, *out ? "/" : "", (int)n, c);
		free(out);
		out = tmp;
	}
	return out;
}

/* The .gitattributes of the directories above dir ("a/b": "" and "a"); its
 * own and those below are met by the walk. */
static void parent_attrs(struct blob_walk *w, git_tree *top, const char *dir)
{
	const char *end = dir;
	git_tree_entry *e;

	while (end) {
		char *p = tg_xasprintf("%.*s%s.gitattributes", (int)(end - dir), dir,
				       end == dir ? "" : "/");

		if (git_tree_entry_bypath(&e, top, p) == 0) {
			if (git_tree_entry_type(e) == GIT_OBJECT_BLOB)
				note_attrs(w, p, git_tree_entry_id(e));
			git_tree_entry_free(e);
		}
		free(p);
		end = strchr(end == dir ? dir : end + 1, '/');
	}
}

static void digest_hex(char out[65], const char *data, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL))
		abort(); /* OpenSSL cannot hash: nothing to carry on with */
	for (unsigned int i = 0; i < n && i < 32; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 15];
	}
	out[64] = '\0';
}

int tg_git_blobs_read(struct tg_git_blobs *out, const char *gitdir, const char *sha,
		      const char *dir, struct tg_err *err)
{
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_tree *top = NULL, *tree = NULL;
	git_tree_entry *e = NULL;
	struct blob_walk w;
	git_oid id;
	char *path = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	memset(&w, 0, sizeof(w));
	w.out = out;
	tg_buf_init(&w.attrs, 0);
	path = tree_path(dir);
	if (git_repository_open_bare(&repo, gitdir) < 0 || git_oid_fromstr(&id, sha) < 0 ||
	    git_commit_lookup(&commit, repo, &id) < 0 || git_commit_tree(&top, commit) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot read commit %s: %s", sha,
				git_error_last() ? git_error_last()->message : "unknown error");
		goto out;
	}
	if (!path)
		goto out;
	if (!*path) {
		tree = top;
		top = NULL;
	} else if (git_tree_entry_bypath(&e, top, path) < 0 ||
		   git_tree_entry_type(e) != GIT_OBJECT_TREE ||
		   git_tree_lookup(&tree, repo, git_tree_entry_id(e)) < 0) {
		goto out;
	} else {
		parent_attrs(&w, top, path);
	}
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, blob_cb, &w) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot read commit %s: %s", sha,
				git_error_last() ? git_error_last()->message : "unknown error");
		goto out;
	}
	if (tg_buf_overflowed(&w.attrs)) {
		rc = tg_err_set(err, TG_ERROR, "commit %s has too many .gitattributes files", sha);
		goto out;
	}
	if (out->len)
		qsort(out->v, out->len, sizeof(*out->v), cmp_blob);
	digest_hex(out->attrs, tg_buf_cstr(&w.attrs), w.attrs.len);
out:
	if (rc)
		tg_git_blobs_release(out);
	tg_buf_release(&w.attrs);
	git_tree_entry_free(e);
	git_tree_free(tree);
	git_tree_free(top);
	git_commit_free(commit);
	git_repository_free(repo);
	free(path);
	return rc;
}

const char *tg_git_blobs_find(const struct tg_git_blobs *b, const char *path)
{
	struct tg_git_blob key, *hit;

	if (!b->len)
		return NULL;
	key.path = (char *)path;
	hit = bsearch(&key, b->v, b->len, sizeof(*b->v), cmp_blob);
	return hit ? hit->id : NULL;
}

void tg_git_blobs_release(struct tg_git_blobs *b)
{
	for (size_t i = 0; i < b->len; i++)
		free(b->v[i].path);
	free(b->v);
	memset(b, 0, sizeof(*b));
}
