/*
 * Git source: one cache directory per sync, cloned once, then fetched;
 * the exact commit the ref points to is checked out into a work tree of its
 * own, which replaces the previous one only once it is complete.
 * Owns every libgit2 handle it uses; call from the reconcile thread only.
 */
#ifndef TG_GITSRC_H
#define TG_GITSRC_H

#include <stddef.h>

#include "tg/common.h"
#include "tg/gitblobs.h"
#include "tg/vocab.h"

struct tg_git_auth {
	const char *username;         /* HTTPS basic user; default "x-token-auth" with a token */
	const char *password_file;    /* HTTPS password */
	const char *token_file;       /* HTTPS token, sent as the password */
	const char *ssh_key_file;     /* SSH private key */
	const char *ssh_pubkey_file;  /* optional; default ssh_key_file + ".pub" */
	const char *known_hosts_file; /* SSH host keys; checking is on unless insecure */
	int insecure_skip_host_key_check;
	const char *ca_file; /* extra CA for HTTPS */
};

struct tg_git_opts {
	const char *url; /* file://, local path, git://, http(s)://, ssh:// or scp-like */
	enum tg_ref_type ref_type;
	const char *ref;       /* branch name, tag name or full commit SHA */
	const char *cache_dir; /* directory owned by this sync */
	struct tg_git_auth auth;
	long timeout_ms;      /* network operations give up after this; 0 = 60 s */
	size_t max_file_size; /* refuse a checkout with a blob larger than this; 0 = 32 MiB */
	/* SSH commit signature verification (SPEC 5): when n_trusted_keys > 0
	 * an unsigned or untrusted head commit is refused. */
	const char *const *trusted_keys; /* "ssh-ed25519 AAAA... comment" lines */
	size_t n_trusted_keys;
};

struct tg_commit_info {
	char sha[41];
	char *author_name, *author_email;
	char *committer_name, *committer_email;
	char *message;  /* full message */
	char *summary;  /* first line */
	long long time; /* committer time, seconds since the epoch */
};

struct tg_git_source;

/* Creates a source; nothing touches the network until tg_git_sync. */
int tg_git_source_new(struct tg_git_source **out, const struct tg_git_opts *opts,
		      struct tg_err *err);
void tg_git_source_free(struct tg_git_source *src);

/*
 * Cheap remote check of the ref: one round trip (ls-remote style), no
 * fetch.  Fills sha with the commit the ref points to remotely.  For
 * TG_REF_COMMIT returns the configured SHA without network I/O.
 */
int tg_git_remote_head(struct tg_git_source *src, char sha[41], struct tg_err *err);

/*
 * Errors of remote_head and sync: TG_ENOTFOUND (branch, tag or commit not
 * on the remote), TG_EAUTH (credentials rejected, or the server's
 * certificate / ssh host key not trusted), TG_ETIMEOUT (timeout_ms
 * elapsed), TG_EINVALID (unsigned or untrusted commit, file over
 * max_file_size), TG_ERROR otherwise.  Messages carry the redacted URL.
 *
 * Makes the work tree hold the commit the ref points to: clones on first
 * use (or when the cache is corrupt), fetches otherwise, verifies the
 * signature if configured, and checks the commit out into a new directory
 * under cache_dir.  Only when every file is written does that directory
 * become the current tree (the symbolic link cache_dir/work is replaced, in
 * one rename, by one naming it) and the previous tree get removed.  On any
 * failure, a full disk half-way through the checkout included, the partial
 * directory is removed and the previous tree, tg_git_workdir() and
 * tg_git_commit() are left exactly as they were.  *changed is set when the
 * checked-out commit differs from before.  The first call removes what an
 * earlier process left behind (checkouts cut short, the older layout), but
 * not the tree cache_dir/work names.
 */
int tg_git_sync(struct tg_git_source *src, int *changed, struct tg_err *err);

/*
 * tg_git_sync, checking out sha (a full commit id) instead of the ref's
 * commit: the fetch still runs and head (when not NULL) gets the commit
 * the ref points to ("" when the fetch failed).  sha must be in the clone
 * already (TG_ENOTFOUND otherwise) and passes the same signature and size
 * checks.  sha NULL or "": exactly tg_git_sync.  For rollbacks.
 */
int tg_git_sync_at(struct tg_git_source *src, const char *sha, char head[41], int *changed,
		   struct tg_err *err);

/*
 * Path of the current work tree, or NULL before the first successful sync.
 * The path changes with every checkout; a returned path (and the tree under
 * it) stays valid until the next successful tg_git_sync or
 * tg_git_source_free.  Owned by src; the tree itself stays on disk after
 * tg_git_source_free, as cache_dir/work.
 */
const char *tg_git_workdir(const struct tg_git_source *src);
/* Removes the trees earlier syncs switched away from: work for after a
 * pass, not for while it runs (tg_git_source_free does it too). */
void tg_git_tidy(struct tg_git_source *src);
/* The same on a thread of its own, for while a pass waits (the next
 * tg_git_tidy, or tg_git_source_free, waits for it). */
void tg_git_tidy_start(struct tg_git_source *src);
/* Metadata of the checked-out commit, or NULL before the first sync.  It
 * always describes the tree tg_git_workdir() names. */
const struct tg_commit_info *tg_git_commit(const struct tg_git_source *src);
/* The head commit the last tg_git_sync refused to check out (unsigned,
 * untrusted signer, a file over max_file_size), or NULL. */
const char *tg_git_refused(const struct tg_git_source *src);

/*
 * How commit want (4 to 40 hex digits) relates to live (a full commit id,
 * or "" when nothing is live) in the clone of the source whose cache_dir
 * this is: "applied" (the same commit), "ancestor" (already contained),
 * "not_applied", or "unknown" (not in the clone: another branch, or not
 * pushed; or no clone).  A static string.  Opens the clone read-only: call
 * from the thread that owns the source, not during one of its syncs.
 */
const char *tg_git_commit_relation(const char *cache_dir, const char *live, const char *want);

/*
 * The blobs (gitblobs.h) of the commit the work tree holds (tg_git_commit)
 * below dir; TG_ERROR with err set when there is no commit yet or the clone
 * cannot be read.
 */
int tg_git_blobs(struct tg_git_blobs *out, const struct tg_git_source *src, const char *dir,
		 struct tg_err *err);

/*
 * "https://user:***@host/path" style rendering for logs. Caller frees.
 * Drops a password (and, for http(s), a lone user name, often a token) and
 * the query string.
 */
char *tg_git_redact_url(const char *url);

#endif
