/*
 * Credentials and server trust for the git source's libgit2 callbacks (see
 * include/tg/gitauth.h).  Secrets are read from their files on every
 * operation and wiped once libgit2 has its copy.
 */
#include "tg/gitauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tg/known_hosts.h"
#include "tg/banned.h"

#define MAX_KNOWN_HOSTS ((size_t)4 * 1024 * 1024)

void tg_gitauth_init(struct tg_gitauth *a, const struct tg_git_auth *cfg, const char *port)
{
	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	a->port = port;
}

/* Port of an ssh:// URL, for "[host]:port" known_hosts entries. */
void tg_gitauth_ssh_port(char port[8], const char *url)
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

static int file_exists(const char *p)
{
	struct stat sb;

	return p && stat(p, &sb) == 0;
}

int tg_gitauth_credential(git_credential **out, struct tg_gitauth *op, const char *user_from_url,
			  unsigned int allowed)
{
	const struct tg_git_auth *a = op->cfg;
	struct tg_err e;
	char *secret = NULL, *pub = NULL;
	const char *user;
	int rc;

	if (++op->tries > 1) {
		op->failed = 1;
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
			op->failed = 1;
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
			op->failed = 1;
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
	op->failed = 1;
	snprintf(op->reason, sizeof(op->reason), "authentication required but no %s configured",
		 (allowed & GIT_CREDENTIAL_SSH_KEY) ? "ssh key" : "token or password file");
	git_error_set(GIT_ERROR_NET, "%s", op->reason);
	return GIT_EAUTH;
}

/* Verifies a leaf certificate (DER) against ca_file and the host name. */
static int check_x509(struct tg_gitauth *op, const unsigned char *der, size_t len, const char *host)
{
	const char *ca = op->cfg->ca_file;
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

static int check_hostkey(struct tg_gitauth *op, git_cert_hostkey *hk, const char *host)
{
	const struct tg_git_auth *a = op->cfg;
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
	if (op->port[0])
		tg_parse_ll(&port, op->port, 1, 65535);
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
int tg_gitauth_check_certificate(struct tg_gitauth *op, git_cert *cert, int valid, const char *host)
{
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
		if (op->cfg->insecure_skip_host_key_check)
			return 0;
		if (check_hostkey(op, (git_cert_hostkey *)cert, host))
			return 0;
	} else if (cert->cert_type == GIT_CERT_X509) {
		git_cert_x509 *x = (git_cert_x509 *)cert;

		if (valid)
			return 0;
		if (op->cfg->ca_file) {
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
