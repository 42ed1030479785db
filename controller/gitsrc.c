/*
 * Git source on libgit2.
 *
 * Layout of cache_dir:
 *   repo.git/     bare repository; refs/tg/head pins the last fetched object
 *   work.<random>/  one checked-out tree per commit (no .git inside), and
 *   work          the symbolic link to the current tree: gittree.c
 * Keeping the work tree outside the repository lets a corrupt repository be
 * thrown away and cloned again (into repo.git.tmp, renamed when complete)
 * while the last good checkout stays in place.
 *
 * Every network operation (remote_head, sync) runs under a deadline of
 * timeout_ms kept by gitstream.c: libgit2 1.5 cannot bound one itself.
 * Credentials and server trust are gitauth.c's.
 */
#include "tg/gitsrc.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <git2.h>

#include "tg/gitauth.h"
#include "tg/gitstream.h"
#include "tg/gittree.h"
#include "tg/log.h"
#include "tg/sshsig.h"
#include "tg/banned.h"

#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_MAX_FILE ((size_t)32 * 1024 * 1024)
#define PIN_REF "refs/tg/head"

struct tg_git_source {
	struct tg_git_opts o; /* strings below are owned copies */
	char **trusted;
	char *url_redacted;
	char *gitdir, *tmpdir;
	struct tg_gittree trees;
	int have_commit;
	struct tg_commit_info commit;
	char refused[41]; /* the head the last sync refused, or "" */
	char port[8];     /* ssh port for known_hosts lookups */
	/* tg_git_sync_at: the commit to check out instead of the ref's, and
	 * the ref's commit the fetch found. */
	const char *pin;
	char fetched[41];
};

/* One network operation: deadline, auth attempts, failure reasons. */
struct op {
	struct tg_git_source *src;
	struct tg_gitstream_deadline dl;
	struct tg_gitauth auth;
	int local_fault; /* error came from the local repository */
};

/* ---- URL redaction ---------------------------------------------------- */

char *tg_git_redact_url(const char *url)
{
	const char *scheme_end, *auth, *at, *colon, *slash, *q;
	char *out;

	if (!url)
		return tg_xstrdup("");
	scheme_end = strstr(url, "://");
	if (!scheme_end)
		return tg_xstrdup(url); /* local path or scp-like: no secret */
	auth = scheme_end + 3;
	slash = auth + strcspn(auth, "/?#");
	q = strchr(url, '?');
	at = memrchr(auth, '@', (size_t)(slash - auth));
	if (at) {
		colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon)
			out = tg_xasprintf("%.*s:***%.*s", (int)(colon - url), url,
					   (int)((q ? q : slash + strlen(slash)) - at), at);
		else if (!strncasecmp(url, "http", 4))
			/* A lone http user name is often a token. */
			out = tg_xasprintf("%.*s***%.*s", (int)(auth - url), url,
					   (int)((q ? q : slash + strlen(slash)) - at), at);
		else
			out = tg_xstrndup(url, (size_t)((q ? q : slash + strlen(slash)) - url));
	} else {
		out = tg_xstrndup(url, (size_t)((q ? q : slash + strlen(slash)) - url));
	}
	if (q) {
		/* Query strings carry access tokens on some servers. */
		char *t = tg_xasprintf("%s?***", out);

		free(out);
		out = t;
	}
	return out;
}

/* ---- operations ------------------------------------------------------- */

static void op_begin(struct op *op, struct tg_git_source *src)
{
	tg_gitstream_register();
	memset(op, 0, sizeof(*op));
	op->src = src;
	tg_gitauth_init(&op->auth, &src->o.auth, src->port);
	tg_gitstream_begin(&op->dl, src->o.timeout_ms);
}

static void op_end(struct op *op)
{
	tg_gitstream_end(&op->dl);
}

/* ---- libgit2 callbacks ------------------------------------------------ */

static int cred_cb(git_credential **out, const char *url, const char *user_from_url,
		   unsigned int allowed, void *payload)
{
	struct op *op = payload;

	(void)url;
	return tg_gitauth_credential(out, &op->auth, user_from_url, allowed);
}

static int cert_cb(git_cert *cert, int valid, const char *host, void *payload)
{
	struct op *op = payload;

	return tg_gitauth_check_certificate(&op->auth, cert, valid, host);
}

/* Data-flow progress: a second guard on the deadline. */
static int progress_cb(const git_indexer_progress *stats, void *payload)
{
	struct op *op = payload;

	(void)stats;
	if (tg_gitstream_expired(&op->dl)) {
		git_error_set(GIT_ERROR_NET, "timed out");
		return -1;
	}
	return 0;
}

static void set_callbacks(git_remote_callbacks *cb, struct op *op)
{
	git_remote_init_callbacks(cb, GIT_REMOTE_CALLBACKS_VERSION);
	cb->credentials = cred_cb;
	cb->certificate_check = cert_cb;
	cb->transfer_progress = progress_cb;
	cb->payload = op;
}

/* ---- errors ----------------------------------------------------------- */

static int is_local_class(int klass)
{
	switch (klass) {
	case GIT_ERROR_ODB:
	case GIT_ERROR_OBJECT:
	case GIT_ERROR_REPOSITORY:
	case GIT_ERROR_REFERENCE:
	case GIT_ERROR_INDEX:
	case GIT_ERROR_ZLIB:
	case GIT_ERROR_CONFIG:
	case GIT_ERROR_TREE: return 1;
	default: return 0;
	}
}

/* Writes "<what> '<url>': <reason>" into err and returns the TG code. */
static int fail_git(struct op *op, struct tg_err *err, int gitrc, const char *what)
{
	const git_error *ge = git_error_last();
	const struct tg_git_source *src = op->src;
	char reason[300];
	int code = TG_ERROR;

	if (tg_gitstream_timed_out(&op->dl)) {
		snprintf(reason, sizeof(reason), "timed out after %ld ms", src->o.timeout_ms);
		code = TG_ETIMEOUT;
	} else if (op->auth.failed || gitrc == GIT_EAUTH) {
		const struct tg_git_auth *a = &src->o.auth;

		if (op->auth.reason[0] && strcmp(op->auth.reason, "authentication failed"))
			snprintf(reason, sizeof(reason), "%s", op->auth.reason);
		else if (a->ssh_key_file && strstr(src->o.url, "://") == NULL)
			snprintf(reason, sizeof(reason), "authentication failed with ssh key '%s'",
				 a->ssh_key_file);
		else
			snprintf(reason, sizeof(reason), "authentication failed (check %s)",
				 a->token_file      ? "the token file"
				 : a->password_file ? "the username and password file"
				 : a->ssh_key_file  ? "the ssh key"
						    : "the credentials");
		code = TG_EAUTH;
	} else if (op->auth.trust_failed || gitrc == GIT_ECERTIFICATE) {
		snprintf(reason, sizeof(reason), "%s",
			 op->auth.reason[0] ? op->auth.reason : "server certificate not trusted");
		code = TG_EAUTH;
	} else {
		const char *m = ge && ge->message ? ge->message : "unknown error";
		size_t i;

		if (ge && is_local_class(ge->klass))
			op->local_fault = 1;
		snprintf(reason, sizeof(reason), "%s", m);
		/* libgit2 messages start upper-case and may end with '.' or '\n'. */
		reason[0] = (char)tolower((unsigned char)reason[0]);
		i = strlen(reason);
		while (i && (reason[i - 1] == '\n' || reason[i - 1] == '.'))
			reason[--i] = '\0';
		if (gitrc == GIT_ENOTFOUND)
			code = TG_ENOTFOUND;
	}
	/* Never echo a secret-bearing URL from libgit2's own message. */
	if (strstr(reason, src->o.url)) {
		char *r = strstr(reason, src->o.url);
		char tail[300];

		snprintf(tail, sizeof(tail), "%s", r + strlen(src->o.url));
		snprintf(r, sizeof(reason) - (size_t)(r - reason), "%s%s", src->url_redacted, tail);
	}
	return tg_err_set(err, code, "%s '%s': %s", what, src->url_redacted, reason);
}

/* ---- source lifecycle ------------------------------------------------- */

static char *dupnull(const char *s)
{
	return s ? tg_xstrdup(s) : NULL;
}

static int is_hex_sha(const char *s)
{
	size_t i;

	for (i = 0; i < 40; i++)
		if (!s[i] || !strchr("0123456789abcdefABCDEF", s[i]))
			return 0;
	return s[40] == '\0';
}

static void commit_info_release(struct tg_commit_info *ci)
{
	free(ci->author_name);
	free(ci->author_email);
	free(ci->committer_name);
	free(ci->committer_email);
	free(ci->message);
	free(ci->summary);
	memset(ci, 0, sizeof(*ci));
}

int tg_git_source_new(struct tg_git_source **out, const struct tg_git_opts *opts,
		      struct tg_err *err)
{
	struct tg_git_source *src = NULL;
	size_t i;

	*out = NULL;
	if (!opts->url || !*opts->url)
		return tg_err_set(err, TG_EINVALID, "git source: url is empty");
	if (!opts->cache_dir || !*opts->cache_dir)
		return tg_err_set(err, TG_EINVALID, "git source: cache directory is empty");
	if (!opts->ref || !*opts->ref)
		return tg_err_set(err, TG_EINVALID, "git source: ref is empty");
	if (opts->ref_type == TG_REF_COMMIT && !is_hex_sha(opts->ref))
		return tg_err_set(err, TG_EINVALID,
				  "git source: commit '%s' is not a full 40-character sha",
				  opts->ref);
	for (i = 0; i < opts->n_trusted_keys; i++) {
		unsigned char *blob = NULL;
		size_t blen;
		struct tg_err e;

		if (tg_sshsig_parse_pubkey(&blob, &blen, opts->trusted_keys[i],
					   strlen(opts->trusted_keys[i]), &e) < 0)
			return tg_err_set(err, TG_EINVALID, "git source: trusted key %zu: %s",
					  i + 1, e.msg);
		free(blob);
	}
	if (tg_mkdir_p(opts->cache_dir, 0700) < 0)
		return tg_err_set(err, TG_ERROR, "cannot create cache directory '%s': %s",
				  opts->cache_dir, strerror(errno));

	src = tg_xcalloc(1, sizeof(*src));
	src->o = *opts;
	src->o.url = tg_xstrdup(opts->url);
	src->o.ref = tg_xstrdup(opts->ref);
	src->o.cache_dir = tg_xstrdup(opts->cache_dir);
	src->o.auth.username = dupnull(opts->auth.username);
	src->o.auth.password_file = dupnull(opts->auth.password_file);
	src->o.auth.token_file = dupnull(opts->auth.token_file);
	src->o.auth.ssh_key_file = dupnull(opts->auth.ssh_key_file);
	src->o.auth.ssh_pubkey_file = dupnull(opts->auth.ssh_pubkey_file);
	src->o.auth.known_hosts_file = dupnull(opts->auth.known_hosts_file);
	src->o.auth.ca_file = dupnull(opts->auth.ca_file);
	if (src->o.timeout_ms <= 0)
		src->o.timeout_ms = DEFAULT_TIMEOUT_MS;
	if (!src->o.max_file_size)
		src->o.max_file_size = DEFAULT_MAX_FILE;
	if (opts->n_trusted_keys) {
		src->trusted = tg_xcalloc(opts->n_trusted_keys, sizeof(char *));
		for (i = 0; i < opts->n_trusted_keys; i++)
			src->trusted[i] = tg_xstrdup(opts->trusted_keys[i]);
	}
	src->o.trusted_keys = (const char *const *)src->trusted;
	src->url_redacted = tg_git_redact_url(opts->url);
	src->gitdir = tg_xasprintf("%s/repo.git", opts->cache_dir);
	src->tmpdir = tg_xasprintf("%s/repo.git.tmp", opts->cache_dir);
	tg_gittree_init(&src->trees, opts->cache_dir, src->gitdir);
	tg_gitauth_ssh_port(src->port, opts->url);
	*out = src;
	return 0;
}

void tg_git_source_free(struct tg_git_source *src)
{
	size_t i;

	if (!src)
		return;
	free((char *)src->o.url);
	free((char *)src->o.ref);
	free((char *)src->o.cache_dir);
	free((char *)src->o.auth.username);
	free((char *)src->o.auth.password_file);
	free((char *)src->o.auth.token_file);
	free((char *)src->o.auth.ssh_key_file);
	free((char *)src->o.auth.ssh_pubkey_file);
	free((char *)src->o.auth.known_hosts_file);
	free((char *)src->o.auth.ca_file);
	for (i = 0; i < src->o.n_trusted_keys; i++)
		free(src->trusted[i]);
	free(src->trusted);
	free(src->url_redacted);
	free(src->gitdir);
	free(src->tmpdir);
	tg_gittree_release(&src->trees);
	commit_info_release(&src->commit);
	free(src);
}

void tg_git_tidy(struct tg_git_source *src)
{
	tg_gittree_tidy(&src->trees);
}

void tg_git_tidy_start(struct tg_git_source *src)
{
	tg_gittree_tidy_start(&src->trees);
}

const char *tg_git_workdir(const struct tg_git_source *src)
{
	return src->have_commit ? src->trees.workdir : NULL;
}

const struct tg_commit_info *tg_git_commit(const struct tg_git_source *src)
{
	return src->have_commit ? &src->commit : NULL;
}

const char *tg_git_refused(const struct tg_git_source *src)
{
	return src->refused[0] ? src->refused : NULL;
}

/* ---- remote ref lookup ------------------------------------------------ */

static const char *ref_kind(const struct tg_git_source *src)
{
	return src->o.ref_type == TG_REF_TAG ? "tag" : "branch";
}

/*
 * Finds the ref in the advertisement of a connected remote.  *obj is what
 * the ref points to; *commit the peeled commit when advertised ("^{}"),
 * else the same as *obj.
 */
static int find_advertised(git_oid *obj, git_oid *commit, git_remote *remote,
			   struct tg_git_source *src, struct op *op, struct tg_err *err)
{
	const git_remote_head **heads = NULL;
	size_t n = 0, i;
	char *name = NULL, *peeled = NULL;
	int found = 0, rc;

	if ((rc = git_remote_ls(&heads, &n, remote)) < 0)
		return fail_git(op, err, rc, "cannot list refs of");
	name = tg_xasprintf("refs/%s/%s", src->o.ref_type == TG_REF_TAG ? "tags" : "heads",
			    src->o.ref);
	peeled = tg_xasprintf("%s^{}", name);
	for (i = 0; i < n; i++) {
		if (!strcmp(heads[i]->name, name)) {
			git_oid_cpy(obj, &heads[i]->oid);
			if (!found)
				git_oid_cpy(commit, &heads[i]->oid);
			found = 1;
		} else if (!strcmp(heads[i]->name, peeled)) {
			git_oid_cpy(commit, &heads[i]->oid);
			found |= 2;
		}
	}
	if (!(found & 1))
		rc = tg_err_set(err, TG_ENOTFOUND, "%s '%s' not found in '%s'", ref_kind(src),
				src->o.ref, src->url_redacted);
	else
		rc = 0;
	free(name);
	free(peeled);
	return rc;
}

/*
 * An in-memory remote for exactly the configured URL.  url.*.insteadOf
 * rewriting from user config is skipped: a controller fetches from what it
 * was told.  (It also avoids a pcre2 match-data leak in libgit2 1.5's
 * config glob, fixed upstream in 1.6.)
 */
static int new_remote(git_remote **out, git_repository *repo, const char *url)
{
	git_remote_create_options ro;

	git_remote_create_options_init(&ro, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	ro.repository = repo;
	ro.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF;
	return git_remote_create_with_opts(out, url, &ro);
}

static int connect_remote(git_remote *remote, struct op *op, struct tg_err *err)
{
	git_remote_callbacks cb;
	int rc;

	set_callbacks(&cb, op);
	rc = git_remote_connect(remote, GIT_DIRECTION_FETCH, &cb, NULL, NULL);
	if (rc < 0)
		return fail_git(op, err, rc == GIT_ENOTFOUND ? GIT_ERROR : rc, "cannot fetch");
	return 0;
}

int tg_git_remote_head(struct tg_git_source *src, char sha[41], struct tg_err *err)
{
	git_remote *remote = NULL;
	git_oid obj, commit;
	struct op op;
	int rc;

	if (src->o.ref_type == TG_REF_COMMIT) {
		size_t i;

		for (i = 0; i < 40; i++)
			sha[i] = (char)tolower((unsigned char)src->o.ref[i]);
		sha[40] = '\0';
		return 0;
	}
	op_begin(&op, src);
	git_error_clear();
	rc = new_remote(&remote, NULL, src->o.url);
	if (rc < 0) {
		rc = fail_git(&op, err, rc, "cannot fetch");
		goto out;
	}
	if ((rc = connect_remote(remote, &op, err)) < 0)
		goto out;
	if ((rc = find_advertised(&obj, &commit, remote, src, &op, err)) < 0)
		goto out;
	git_oid_tostr(sha, 41, &commit);
out:
	if (remote)
		git_remote_disconnect(remote);
	git_remote_free(remote);
	op_end(&op);
	return rc;
}

/* ---- sync ------------------------------------------------------------- */

struct size_check {
	git_odb *odb;
	size_t max;
	char path[512];
	size_t size;
	int failed;
};

static int size_walk_cb(const char *root, const git_tree_entry *entry, void *payload)
{
	struct size_check *sc = payload;
	git_object_t type;
	size_t len = 0;

	if (git_tree_entry_type(entry) != GIT_OBJECT_BLOB)
		return 0;
	if (git_odb_read_header(&len, &type, sc->odb, git_tree_entry_id(entry)) < 0)
		return -1;
	if (len > sc->max) {
		snprintf(sc->path, sizeof(sc->path), "%s%s", root, git_tree_entry_name(entry));
		sc->size = len;
		sc->failed = 1;
		return -1;
	}
	return 0;
}

static int check_sizes(git_repository *repo, git_commit *commit, struct tg_git_source *src,
		       struct op *op, struct tg_err *err)
{
	struct size_check sc;
	git_tree *tree = NULL;
	char sha[41];
	int rc;

	memset(&sc, 0, sizeof(sc));
	sc.max = src->o.max_file_size;
	if ((rc = git_repository_odb(&sc.odb, repo)) < 0 ||
	    (rc = git_commit_tree(&tree, commit)) < 0) {
		rc = fail_git(op, err, rc, "cannot read commit from");
		goto out;
	}
	rc = git_tree_walk(tree, GIT_TREEWALK_PRE, size_walk_cb, &sc);
	if (sc.failed) {
		git_oid_tostr(sha, sizeof(sha), git_commit_id(commit));
		memcpy(src->refused, sha, sizeof(src->refused));
		rc = tg_err_set(
			err, TG_EINVALID,
			"refusing to check out commit %s: file '%s' is %zu bytes, over the limit of %zu bytes",
			sha, sc.path, sc.size, sc.max);
	} else if (rc < 0) {
		rc = fail_git(op, err, rc, "cannot read commit from");
	}
out:
	git_tree_free(tree);
	git_odb_free(sc.odb);
	return rc;
}

static int verify_signature(git_repository *repo, const git_oid *id, struct tg_git_source *src,
			    struct tg_err *err)
{
	git_buf sig = GIT_BUF_INIT, data = GIT_BUF_INIT;
	char sha[41], fpr[64];
	struct tg_err e;
	int rc;

	git_oid_tostr(sha, sizeof(sha), id);
	/* Until verified: any way out below refuses this commit. */
	memcpy(src->refused, sha, sizeof(src->refused));
	rc = git_commit_extract_signature(&sig, &data, repo, (git_oid *)id, NULL);
	if (rc < 0) {
		rc = tg_err_set(err, TG_EINVALID, "refusing commit %s: it is not signed", sha);
		goto out;
	}
	if (tg_sshsig_verify(sig.ptr, sig.size, data.ptr, data.size, "git", src->o.trusted_keys,
			     src->o.n_trusted_keys, fpr, &e) < 0) {
		rc = tg_err_set(err, TG_EINVALID, "refusing commit %s: %s", sha, e.msg);
		goto out;
	}
	tg_log_kv(TG_LOG_DEBUG, "commit signature verified", "commit", sha, "key", fpr, NULL);
	src->refused[0] = '\0';
	rc = 0;
out:
	git_buf_dispose(&sig);
	git_buf_dispose(&data);
	return rc;
}

static void fill_commit_info(struct tg_commit_info *ci, git_commit *c)
{
	const git_signature *a = git_commit_author(c), *m = git_commit_committer(c);
	const char *msg = git_commit_message(c), *sum = git_commit_summary(c);

	commit_info_release(ci);
	git_oid_tostr(ci->sha, sizeof(ci->sha), git_commit_id(c));
	ci->author_name = tg_xstrdup(a->name ? a->name : "");
	ci->author_email = tg_xstrdup(a->email ? a->email : "");
	ci->committer_name = tg_xstrdup(m->name ? m->name : "");
	ci->committer_email = tg_xstrdup(m->email ? m->email : "");
	ci->message = tg_xstrdup(msg ? msg : "");
	ci->summary = tg_xstrdup(sum ? sum : "");
	ci->time = (long long)git_commit_time(c);
}

static int fetch_target(git_oid *commit_id, git_repository *repo, struct tg_git_source *src,
			struct op *op, struct tg_err *err)
{
	git_remote *remote = NULL;
	git_fetch_options fo;
	git_strarray specs;
	git_object *obj = NULL, *peeled = NULL;
	git_reference *pin = NULL;
	git_odb *odb = NULL;
	git_oid want, peeled_id;
	char *spec[2] = { NULL, NULL };
	int rc, have = 0;

	if (src->o.ref_type == TG_REF_COMMIT) {
		git_oid_fromstr(&want, src->o.ref);
		git_oid_cpy(&peeled_id, &want);
		/* A commit never changes: no network once we have it. */
		if (git_commit_lookup((git_commit **)&obj, repo, &want) == 0) {
			git_oid_cpy(commit_id, &want);
			rc = 0;
			goto out;
		}
	}
	git_error_clear();
	if ((rc = new_remote(&remote, repo, src->o.url)) < 0) {
		rc = fail_git(op, err, rc, "cannot fetch");
		goto out;
	}
	if ((rc = connect_remote(remote, op, err)) < 0)
		goto out;
	if (src->o.ref_type == TG_REF_COMMIT) {
		/* libgit2 1.5 cannot ask for a bare sha: fetch branches and tags. */
		spec[0] = tg_xstrdup("+refs/heads/*:refs/tg/heads/*");
		spec[1] = tg_xstrdup("+refs/tags/*:refs/tg/tags/*");
		specs.count = 2;
	} else {
		if ((rc = find_advertised(&want, &peeled_id, remote, src, op, err)) < 0)
			goto out;
		/* Forced: a force-push rewrote history, we follow it. */
		spec[0] =
			tg_xasprintf("+refs/%s/%s",
				     src->o.ref_type == TG_REF_TAG ? "tags" : "heads", src->o.ref);
		specs.count = 1;
		if (git_repository_odb(&odb, repo) == 0)
			have = git_odb_exists(odb, &want) && git_odb_exists(odb, &peeled_id);
		git_odb_free(odb);
	}
	specs.strings = spec;
	if (!have) {
		git_fetch_options_init(&fo, GIT_FETCH_OPTIONS_VERSION);
		set_callbacks(&fo.callbacks, op);
		fo.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
		fo.update_fetchhead = 0;
		if ((rc = git_remote_download(remote, &specs, &fo)) < 0) {
			rc = fail_git(op, err, rc, "cannot fetch");
			goto out;
		}
		if (src->o.ref_type == TG_REF_COMMIT &&
		    (rc = git_remote_update_tips(remote, &fo.callbacks, 0,
						 GIT_REMOTE_DOWNLOAD_TAGS_NONE, NULL)) < 0) {
			rc = fail_git(op, err, rc, "cannot update refs from");
			goto out;
		}
	}
	git_remote_disconnect(remote);
	if ((rc = git_object_lookup(&obj, repo, &want, GIT_OBJECT_ANY)) < 0) {
		if (src->o.ref_type == TG_REF_COMMIT)
			rc = tg_err_set(err, TG_ENOTFOUND, "commit %s not found in '%s'",
					src->o.ref, src->url_redacted);
		else
			rc = fail_git(op, err, rc, "cannot read fetched objects from");
		goto out;
	}
	if (git_object_peel(&peeled, obj, GIT_OBJECT_COMMIT) < 0) {
		rc = tg_err_set(err, TG_EINVALID, "%s '%s' in '%s' does not point to a commit",
				ref_kind(src), src->o.ref, src->url_redacted);
		goto out;
	}
	/* Pin what we fetched: keeps it reachable and makes the next fetch
	 * negotiate from it. */
	if ((rc = git_reference_create(&pin, repo, PIN_REF, &want, 1, "tg: fetch")) < 0) {
		rc = fail_git(op, err, rc, "cannot update the cache of");
		goto out;
	}
	git_oid_cpy(commit_id, git_object_id(peeled));
	rc = 0;
out:
	free(spec[0]);
	free(spec[1]);
	git_reference_free(pin);
	git_object_free(peeled);
	git_object_free(obj);
	git_remote_free(remote);
	return rc;
}

static int sync_once(struct tg_git_source *src, struct op *op, int *changed, int fresh,
		     struct tg_err *err)
{
	git_repository *repo = NULL;
	git_commit *commit = NULL;
	git_oid id;
	const char *dir = fresh ? src->tmpdir : src->gitdir;
	char sha[41], *tree = NULL;
	int rc, gitrc = 0;

	git_error_clear();
	if (fresh) {
		tg_gittree_remove(src->tmpdir);
		if ((rc = git_repository_init(&repo, src->tmpdir, 1)) < 0) {
			rc = fail_git(op, err, rc, "cannot create a cache for");
			op->local_fault = 0; /* a fresh clone cannot be helped by another */
			goto out;
		}
	} else if ((rc = git_repository_open_bare(&repo, dir)) < 0) {
		rc = fail_git(op, err, rc, "cannot open the cache of");
		op->local_fault = 1;
		goto out;
	}
	if ((rc = fetch_target(&id, repo, src, op, err)) < 0)
		goto out;
	git_oid_tostr(src->fetched, sizeof(src->fetched), &id);
	/* A pinned commit must already be in the clone: it was fetched
	 * when it was on the ref. */
	if (src->pin &&
	    (git_oid_fromstr(&id, src->pin) < 0 || git_commit_lookup(&commit, repo, &id) < 0)) {
		rc = tg_err_set(err, TG_ENOTFOUND, "commit '%.40s' is not in the clone of '%s'",
				src->pin, src->url_redacted);
		goto out;
	}
	if (!commit && (rc = git_commit_lookup(&commit, repo, &id)) < 0) {
		rc = fail_git(op, err, rc, "cannot read commit from");
		goto out;
	}
	git_oid_tostr(sha, sizeof(sha), &id);
	if (src->o.n_trusted_keys && (rc = verify_signature(repo, &id, src, err)) < 0)
		goto out;
	if (!fresh && src->have_commit && !strcmp(sha, src->commit.sha)) {
		/* Unchanged: leave the work tree alone. */
		*changed = 0;
		rc = 0;
		goto out;
	}
	if (!fresh && !src->have_commit && tg_gittree_holds(&src->trees, sha)) {
		/* An earlier process checked this commit out (and checked its
		 * sizes): the first pass of this one uses that tree. */
		*changed = 1;
		fill_commit_info(&src->commit, commit);
		src->have_commit = 1;
		rc = 0;
		goto out;
	}
	if ((rc = check_sizes(repo, commit, src, op, err)) < 0)
		goto out;
	if ((rc = tg_gittree_checkout(&tree, &gitrc, &src->trees, repo, commit,
				      src->have_commit ? src->commit.sha : NULL, err)) < 0) {
		if (gitrc)
			rc = fail_git(op, err, gitrc, "cannot check out");
		goto out;
	}
	if (fresh) {
		git_repository_free(repo);
		repo = NULL;
		tg_gittree_remove(src->gitdir);
		if (rename(src->tmpdir, src->gitdir) < 0) {
			rc = tg_err_set(err, TG_ERROR, "cannot move the new cache into '%s': %s",
					src->gitdir, strerror(errno));
			goto out;
		}
	}
	/* Last: the tree and the commit info change together or not at all. */
	if ((rc = tg_gittree_switch(&src->trees, tree, err)) < 0)
		goto out;
	tree = NULL;
	tg_gittree_record(&src->trees, sha);
	*changed = !src->have_commit || strcmp(sha, src->commit.sha) != 0;
	fill_commit_info(&src->commit, commit);
	src->have_commit = 1;
	rc = 0;
out:
	if (tree)
		tg_gittree_remove(tree);
	free(tree);
	git_commit_free(commit);
	git_repository_free(repo);
	if (rc < 0 && fresh)
		tg_gittree_remove(src->tmpdir);
	return rc;
}

int tg_git_sync_at(struct tg_git_source *src, const char *sha, char head[41], int *changed,
		   struct tg_err *err)
{
	int rc;

	src->pin = sha && *sha ? sha : NULL;
	src->fetched[0] = '\0';
	rc = tg_git_sync(src, changed, err);
	src->pin = NULL;
	if (head)
		memcpy(head, src->fetched, sizeof(src->fetched));
	return rc;
}

int tg_git_sync(struct tg_git_source *src, int *changed, struct tg_err *err)
{
	struct op op;
	struct stat sb;
	int dummy = 0, rc;

	if (!changed)
		changed = &dummy;
	*changed = 0;
	if (!src->trees.swept)
		tg_gittree_sweep(&src->trees);
	src->refused[0] = '\0';
	op_begin(&op, src);
	rc = sync_once(src, &op, changed, stat(src->gitdir, &sb) != 0, err);
	if (rc < 0 && op.local_fault && !tg_gitstream_timed_out(&op.dl)) {
		tg_log_kv(TG_LOG_WARN, "git cache is damaged; cloning again", "url",
			  src->url_redacted, "cache", src->gitdir, "error", err ? err->msg : "",
			  NULL);
		op.local_fault = 0;
		rc = sync_once(src, &op, changed, 1, err);
	}
	op_end(&op);
	return rc;
}

/* ---- commits in the clone --------------------------------------------- */

const char *tg_git_commit_relation(const char *cache_dir, const char *live, const char *want)
{
	git_repository *repo = NULL;
	git_object *obj = NULL, *commit = NULL;
	git_oid live_oid, want_oid;
	const char *rel = "unknown";
	char *path;
	int rc;

	if (!live[0])
		return "not_applied";
	if (!strncmp(live, want, strlen(want)))
		return "applied";
	path = tg_xasprintf("%s/repo.git", cache_dir);
	/* A prefix lookup, not revparse: "beef" names an object, never a ref. */
	if (git_repository_open_bare(&repo, path) < 0 || git_oid_fromstr(&live_oid, live) < 0 ||
	    git_oid_fromstrn(&want_oid, want, strlen(want)) < 0 ||
	    git_object_lookup_prefix(&obj, repo, &want_oid, strlen(want), GIT_OBJECT_ANY) < 0 ||
	    git_object_peel(&commit, obj, GIT_OBJECT_COMMIT) < 0)
		goto out;
	if (git_oid_equal(git_object_id(commit), &live_oid))
		rel = "applied";
	else if ((rc = git_graph_descendant_of(repo, &live_oid, git_object_id(commit))) == 1)
		rel = "ancestor";
	else if (rc == 0)
		rel = "not_applied";
out:
	git_object_free(commit);
	git_object_free(obj);
	git_repository_free(repo);
	free(path);
	return rel;
}

int tg_git_blobs(struct tg_git_blobs *out, const struct tg_git_source *src, const char *dir,
		 struct tg_err *err)
{
	memset(out, 0, sizeof(*out));
	if (!src->have_commit)
		return tg_err_set(err, TG_ERROR, "no commit is checked out");
	return tg_git_blobs_read(out, src->gitdir, src->commit.sha, dir, err);
}
