/*
 * Git source on libgit2.
 *
 * Layout of cache_dir:
 *   repo.git/     bare repository; refs/tg/head pins the last fetched object
 *   work.XXXXXX/  one checked-out tree per commit (no .git inside)
 *   work          symbolic link to the current tree
 * Keeping the work tree outside the repository lets a corrupt repository be
 * thrown away and cloned again (into repo.git.tmp, renamed when complete)
 * while the last good checkout stays in place.  A commit is checked out
 * into a new, empty directory, and only once every file is written does the
 * link move to it (rename(2) of a new link over the old one) and the
 * previous tree go: a checkout cut short (a full disk) leaves the previous
 * tree byte for byte, so a pass that falls back to it never sees half of the
 * new commit.  Trees left by an interrupted process are swept at the first
 * sync; the one the link names survives a restart.
 *
 * Every network operation (remote_head, sync) runs under a deadline of
 * timeout_ms kept by gitstream.c: libgit2 1.5 cannot bound one itself.
 */
#include "tg/gitsrc.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tg/gitstream.h"
#include "tg/known_hosts.h"
#include "tg/log.h"
#include "tg/sshsig.h"
#include "tg/banned.h"

#define DEFAULT_TIMEOUT_MS 60000L
#define DEFAULT_MAX_FILE ((size_t)32 * 1024 * 1024)
#define MAX_KNOWN_HOSTS ((size_t)4 * 1024 * 1024)
#define PIN_REF "refs/tg/head"
#define TREE_PREFIX "work."

struct tg_git_source {
	struct tg_git_opts o; /* strings below are owned copies */
	char **trusted;
	char *url_redacted;
	char *gitdir, *tmpdir;
	char *link;    /* cache_dir/work */
	char *workdir; /* the current tree, cache_dir/work.XXXXXX, or NULL */
	int swept;     /* trees of earlier processes removed */
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
	int auth_tries;
	int auth_failed;
	int trust_failed;
	int local_fault;  /* error came from the local repository */
	char reason[256]; /* our own reason, preferred to libgit2's */
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
	tg_gitstream_begin(&op->dl, src->o.timeout_ms);
}

static void op_end(struct op *op)
{
	tg_gitstream_end(&op->dl);
}

/* ---- libgit2 callbacks ------------------------------------------------ */

static int file_exists(const char *p)
{
	struct stat sb;

	return p && stat(p, &sb) == 0;
}

static int cred_cb(git_credential **out, const char *url, const char *user_from_url,
		   unsigned int allowed, void *payload)
{
	struct op *op = payload;
	const struct tg_git_auth *a = &op->src->o.auth;
	struct tg_err e;
	char *secret = NULL, *pub = NULL;
	const char *user;
	int rc;

	(void)url;
	if (++op->auth_tries > 1) {
		op->auth_failed = 1;
		snprintf(op->reason, sizeof(op->reason), "authentication failed");
		git_error_set(GIT_ERROR_NET, "authentication failed");
		return GIT_EAUTH;
	}
	if ((allowed & GIT_CREDENTIAL_SSH_KEY) && a->ssh_key_file) {
		user = user_from_url ? user_from_url : (a->username ? a->username : "git");
		if (a->ssh_pubkey_file)
			pub = tg_xstrdup(a->ssh_pubkey_file);
		else {
			pub = tg_xasprintf("%s.pub", a->ssh_key_file);
			if (!file_exists(pub)) {
				free(pub);
				pub = NULL;
			}
		}
		if (!file_exists(a->ssh_key_file)) {
			free(pub);
			op->auth_failed = 1;
			snprintf(op->reason, sizeof(op->reason), "cannot read ssh key '%s'",
				 a->ssh_key_file);
			git_error_set(GIT_ERROR_NET, "%s", op->reason);
			return GIT_EAUTH;
		}
		rc = git_credential_ssh_key_new(out, user, pub, a->ssh_key_file, NULL);
		free(pub);
		return rc;
	}
	if ((allowed & GIT_CREDENTIAL_USERPASS_PLAINTEXT) && (a->token_file || a->password_file)) {
		const char *file = a->token_file ? a->token_file : a->password_file;

		/* Re-read on every operation: rotation needs no restart. */
		if (tg_read_secret_file(&secret, file, &e) < 0) {
			op->auth_failed = 1;
			snprintf(op->reason, sizeof(op->reason), "cannot read credentials: %.200s",
				 e.msg);
			git_error_set(GIT_ERROR_NET, "%s", op->reason);
			return GIT_EAUTH;
		}
		user = a->username ? a->username
				   : (user_from_url && *user_from_url
					      ? user_from_url
					      : (a->token_file ? "x-token-auth" : "git"));
		rc = git_credential_userpass_plaintext_new(out, user, secret);
		tg_secret_free(secret);
		return rc;
	}
	op->auth_failed = 1;
	snprintf(op->reason, sizeof(op->reason), "authentication required but no %s configured",
		 (allowed & GIT_CREDENTIAL_SSH_KEY) ? "ssh key" : "token or password file");
	git_error_set(GIT_ERROR_NET, "%s", op->reason);
	return GIT_EAUTH;
}

/* Verifies a leaf certificate (DER) against ca_file and the host name. */
static int check_x509(struct op *op, const unsigned char *der, size_t len, const char *host)
{
	const char *ca = op->src->o.auth.ca_file;
	X509_STORE *store = NULL;
	X509_STORE_CTX *ctx = NULL;
	X509 *cert = NULL;
	const unsigned char *p = der;
	int ok = 0;

	cert = d2i_X509(NULL, &p, (long)len);
	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	if (!cert || !store || !ctx) {
		snprintf(op->reason, sizeof(op->reason), "cannot parse the server certificate");
		goto out;
	}
	if (X509_STORE_load_file(store, ca) != 1) {
		snprintf(op->reason, sizeof(op->reason), "cannot load ca file '%s'", ca);
		goto out;
	}
	if (X509_STORE_CTX_init(ctx, store, cert, NULL) != 1 || X509_verify_cert(ctx) != 1) {
		snprintf(op->reason, sizeof(op->reason),
			 "server certificate not trusted by ca file '%s': %s", ca,
			 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	if (X509_check_host(cert, host, 0, 0, NULL) != 1 && X509_check_ip_asc(cert, host, 0) != 1) {
		snprintf(op->reason, sizeof(op->reason),
			 "server certificate does not match host '%s'", host);
		goto out;
	}
	ok = 1;
out:
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	X509_free(cert);
	return ok;
}

static int check_hostkey(struct op *op, git_cert_hostkey *hk, const char *host)
{
	const struct tg_git_auth *a = &op->src->o.auth;
	char *text = NULL;
	size_t len = 0;
	struct tg_err e;
	long long port = 22;
	int rc;

	if (!(hk->type & GIT_CERT_SSH_RAW)) {
		snprintf(op->reason, sizeof(op->reason), "ssh host key of '%s' not available",
			 host);
		return 0;
	}
	if (!a->known_hosts_file) {
		snprintf(op->reason, sizeof(op->reason),
			 "no known_hosts file configured to check the host key of '%s'", host);
		return 0;
	}
	if (tg_read_file(&text, &len, a->known_hosts_file, MAX_KNOWN_HOSTS, &e) < 0) {
		snprintf(op->reason, sizeof(op->reason), "cannot read known_hosts: %.200s", e.msg);
		return 0;
	}
	if (op->src->port[0])
		tg_parse_ll(&port, op->src->port, 1, 65535);
	rc = tg_known_hosts_check(text, len, host, (int)port, (const unsigned char *)hk->hostkey,
				  hk->hostkey_len);
	free(text);
	if (rc == 0)
		return 1;
	if (rc == TG_ECONFLICT)
		snprintf(
			op->reason, sizeof(op->reason),
			"ssh host key of '%s' does not match known_hosts '%s' (possible man-in-the-middle)",
			host, a->known_hosts_file);
	else
		snprintf(op->reason, sizeof(op->reason),
			 "ssh host '%s' (port %lld) is not in known_hosts '%s'", host, port,
			 a->known_hosts_file);
	return 0;
}

/*
 * Certificates are checked per remote here rather than with
 * GIT_OPT_SET_SSL_CERT_LOCATIONS: that option is process-global, so one
 * source's private CA would be trusted for every other source, and changing
 * it while another handshake runs is not safe.  With a ca_file we verify
 * the leaf ourselves (OpenSSL chain + host name check) whenever libgit2's
 * own verification against the system store failed.
 */
static int cert_cb(git_cert *cert, int valid, const char *host, void *payload)
{
	struct op *op = payload;

	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
		if (op->src->o.auth.insecure_skip_host_key_check)
			return 0;
		if (check_hostkey(op, (git_cert_hostkey *)cert, host))
			return 0;
	} else if (cert->cert_type == GIT_CERT_X509) {
		git_cert_x509 *x = (git_cert_x509 *)cert;

		if (valid)
			return 0;
		if (op->src->o.auth.ca_file) {
			if (check_x509(op, x->data, x->len, host))
				return 0;
		} else {
			snprintf(
				op->reason, sizeof(op->reason),
				"server certificate of '%s' is not trusted (set a ca file for a private ca)",
				host);
		}
	} else if (valid) {
		return 0;
	}
	op->trust_failed = 1;
	git_error_set(GIT_ERROR_NET, "%s", op->reason);
	return GIT_ECERTIFICATE;
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
	} else if (op->auth_failed || gitrc == GIT_EAUTH) {
		const struct tg_git_auth *a = &src->o.auth;

		if (op->reason[0] && strcmp(op->reason, "authentication failed"))
			snprintf(reason, sizeof(reason), "%s", op->reason);
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
	} else if (op->trust_failed || gitrc == GIT_ECERTIFICATE) {
		snprintf(reason, sizeof(reason), "%s",
			 op->reason[0] ? op->reason : "server certificate not trusted");
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

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void rm_rf(const char *path)
{
	nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Port of an ssh:// URL, for "[host]:port" known_hosts entries. */
static void ssh_port(char port[8], const char *url)
{
	const char *h, *end, *c;

	port[0] = '\0';
	if (strncmp(url, "ssh://", 6) && strncmp(url, "ssh+git://", 10) &&
	    strncmp(url, "git+ssh://", 10))
		return;
	h = strstr(url, "://") + 3;
	end = h + strcspn(h, "/");
	c = memrchr(h, '@', (size_t)(end - h));
	if (c)
		h = c + 1;
	if (*h == '[') {
		h = memchr(h, ']', (size_t)(end - h));
		if (!h)
			return;
	}
	c = memchr(h, ':', (size_t)(end - h));
	if (c && end - c - 1 > 0 && end - c - 1 < 6)
		snprintf(port, 8, "%.*s", (int)(end - c - 1), c + 1);
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
	src->link = tg_xasprintf("%s/work", opts->cache_dir);
	ssh_port(src->port, opts->url);
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
	free(src->link);
	free(src->workdir);
	commit_info_release(&src->commit);
	free(src);
}

const char *tg_git_workdir(const struct tg_git_source *src)
{
	return src->have_commit ? src->workdir : NULL;
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
static void sweep_trees(struct tg_git_source *src)
{
	char keep[64];
	struct dirent *de;
	struct stat sb;
	DIR *d;

	src->swept = 1;
	if (lstat(src->link, &sb) == 0 && S_ISDIR(sb.st_mode))
		rm_rf(src->link);
	link_target(keep, sizeof(keep), src->link);
	d = opendir(src->o.cache_dir);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		char *p;

		if (strncmp(de->d_name, TREE_PREFIX, strlen(TREE_PREFIX)) ||
		    !strcmp(de->d_name, keep))
			continue;
		p = tg_xasprintf("%s/%s", src->o.cache_dir, de->d_name);
		rm_rf(p);
		free(p);
	}
	closedir(d);
	free(src->workdir);
	src->workdir = keep[0] ? tg_xasprintf("%s/%s", src->o.cache_dir, keep) : NULL;
}

/*
 * "tg-checked-out" in the git cache names the commit the current tree
 * holds ("<sha> <tree>"), written once the tree is complete and switched
 * to, so that a new process (each CLI run) that fetches the same commit
 * uses the tree as it is instead of checking it out again.  A fresh clone
 * starts without one.
 */
#define TREE_RECORD "tg-checked-out"

static void write_tree_record(struct tg_git_source *src, const char *sha)
{
	char *path = tg_xasprintf("%s/" TREE_RECORD, src->gitdir);
	char *tmp = tg_xasprintf("%s.new", path);
	const char *name = strrchr(src->workdir, '/');
	FILE *f = fopen(tmp, "we");
	int ok = f != NULL;

	if (f) {
		ok = fprintf(f, "%s %s\n", sha, name ? name + 1 : src->workdir) > 0;
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
static int tree_commit(struct tg_git_source *src, char sha[41])
{
	char *path, got[128];
	const char *name = src->workdir ? strrchr(src->workdir, '/') : NULL;
	struct stat sb;
	FILE *f;
	int ok = 0;

	if (!name || lstat(src->workdir, &sb) < 0 || !S_ISDIR(sb.st_mode))
		return -1;
	if (src->have_commit) {
		memcpy(sha, src->commit.sha, 41);
		return 0;
	}
	path = tg_xasprintf("%s/" TREE_RECORD, src->gitdir);
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

static int tree_holds(struct tg_git_source *src, const char *sha)
{
	char have[41];

	return tree_commit(src, have) == 0 && !strcmp(have, sha);
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
};

static int plain_name(const char *name)
{
	return name[0] && strcmp(name, ".") && strcmp(name, "..") && !strchr(name, '/') &&
	       !strchr(name, '\\') && strcasecmp(name, ".git");
}

/* Creates the directories of rel (a path below w->to) up to its last '/'. */
static int make_parents(const struct link_walk *w, const char *rel)
{
	char *p = tg_xasprintf("%s/%s", w->to, rel), *slash = p + strlen(w->to) + 1;
	int rc = 0;

	while ((slash = strchr(slash, '/')) != NULL) {
		*slash = '\0';
		if (mkdir(p, 0777) < 0 && errno != EEXIST)
			rc = -1;
		*slash = '/';
		slash++;
	}
	free(p);
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
			  struct tg_git_source *src, const char *dir)
{
	git_commit *base = NULL;
	git_tree *old_tree = NULL, *new_tree = NULL;
	git_oid base_id;
	char sha[41];
	int rc = -1;

	memset(w, 0, sizeof(*w));
	if (tree_commit(src, sha) < 0 || git_oid_fromstr(&base_id, sha) < 0 ||
	    git_commit_lookup(&base, repo, &base_id) < 0 || git_commit_tree(&old_tree, base) < 0 ||
	    git_commit_tree(&new_tree, commit) < 0 ||
	    git_tree_walk(old_tree, GIT_TREEWALK_PRE, collect_old, w) < 0)
		goto out;
	qsort(w->old, w->n_old, sizeof(*w->old), cmp_old_file);
	w->from = src->workdir;
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
	memset(w, 0, sizeof(*w));
}

/*
 * Checks the commit out into a new, empty directory; *out is its path.
 * GIT_CHECKOUT_FORCE implies RECREATE_MISSING: every file of the commit is
 * written, whatever the cache's index and HEAD say.  The index is not
 * written (it would describe a directory that goes with the next commit),
 * so a checkout cut short changes nothing in the cache either.
 */
static int checkout(char **out, git_repository *repo, git_commit *commit, struct tg_git_source *src,
		    struct op *op, struct tg_err *err)
{
	git_checkout_options co;
	char *dir = tg_xasprintf("%s/" TREE_PREFIX "XXXXXX", src->o.cache_dir);
	struct link_walk w;
	int rc, skip = 0;

	*out = NULL;
	if (!mkdtemp(dir)) {
		rc = tg_err_set(err, TG_ERROR, "cannot create work tree in '%s': %s",
				src->o.cache_dir, strerror(errno));
		free(dir);
		return rc;
	}
	git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
	co.checkout_strategy = GIT_CHECKOUT_FORCE | GIT_CHECKOUT_DONT_UPDATE_INDEX;
	if (link_unchanged(&w, repo, commit, src, dir) == 0) {
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
		rm_rf(dir);
		if (mkdir(dir, 0700) < 0) {
			rc = tg_err_set(err, TG_ERROR, "cannot create work tree '%s': %s", dir,
					strerror(errno));
			goto out;
		}
	}
	if ((rc = git_repository_set_workdir(repo, dir, 0)) < 0 ||
	    (!skip && (rc = git_checkout_tree(repo, (git_object *)commit, &co)) < 0)) {
		rc = fail_git(op, err, rc, "cannot check out");
		goto out;
	}
	*out = dir;
	dir = NULL;
	rc = 0;
out:
	link_walk_release(&w);
	if (dir)
		rm_rf(dir);
	free(dir);
	return rc;
}

/*
 * Makes dir (a complete tree) the current one: a new link renamed over
 * "work" in one step, then the previous tree goes.  Takes dir on success;
 * on failure nothing changed.
 */
static int switch_tree(struct tg_git_source *src, char *dir, struct tg_err *err)
{
	char *tmp = tg_xasprintf("%s.new", src->link); /* swept if left over */
	const char *name;
	int rc = 0;

	assert(dir); /* a checkout() that returned 0 made it */
	name = dir + strlen(src->o.cache_dir) + 1;
	unlink(tmp);
	if (symlink(name, tmp) < 0 || rename(tmp, src->link) < 0) {
		rc = tg_err_set(err, TG_ERROR, "cannot switch work tree '%s' to '%s': %s",
				src->link, name, strerror(errno));
		unlink(tmp);
		goto out;
	}
	if (src->workdir)
		rm_rf(src->workdir);
	free(src->workdir);
	src->workdir = dir;
out:
	free(tmp);
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
	int rc;

	git_error_clear();
	if (fresh) {
		rm_rf(src->tmpdir);
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
	if (!fresh && !src->have_commit && tree_holds(src, sha)) {
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
	if ((rc = checkout(&tree, repo, commit, src, op, err)) < 0)
		goto out;
	if (fresh) {
		git_repository_free(repo);
		repo = NULL;
		rm_rf(src->gitdir);
		if (rename(src->tmpdir, src->gitdir) < 0) {
			rc = tg_err_set(err, TG_ERROR, "cannot move the new cache into '%s': %s",
					src->gitdir, strerror(errno));
			goto out;
		}
	}
	/* Last: the tree and the commit info change together or not at all. */
	if ((rc = switch_tree(src, tree, err)) < 0)
		goto out;
	tree = NULL;
	write_tree_record(src, sha);
	*changed = !src->have_commit || strcmp(sha, src->commit.sha) != 0;
	fill_commit_info(&src->commit, commit);
	src->have_commit = 1;
	rc = 0;
out:
	if (tree)
		rm_rf(tree);
	free(tree);
	git_commit_free(commit);
	git_repository_free(repo);
	if (rc < 0 && fresh)
		rm_rf(src->tmpdir);
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
	if (!src->swept)
		sweep_trees(src);
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
