/*
 * Credentials and server trust for one libgit2 network operation of a git
 * source: the token, password or ssh key files (read again on every
 * operation, so a rotation needs no restart), the ssh host key checked
 * against known_hosts, and an HTTPS certificate checked against an extra
 * CA.  The git source calls these from its libgit2 callbacks; the reasons
 * they leave behind word its error messages.
 */
#ifndef TG_GITAUTH_H
#define TG_GITAUTH_H

#include <git2.h>

#include "tg/gitsrc.h"

/*
 * The state of one operation.  Complete so that a caller can embed it; set
 * it up with tg_gitauth_init and read the outcome from the fields.
 */
struct tg_gitauth {
	const struct tg_git_auth *cfg; /* not owned; outlives the operation */
	const char *port;              /* ssh port for known_hosts ("" = 22), not NULL; not owned */
	int tries;
	int failed;       /* credentials missing, unreadable or rejected */
	int trust_failed; /* certificate or host key not trusted */
	char reason[256]; /* our own reason, preferred to libgit2's */
};

/* Starts an operation: no tries, no failure, no reason. */
void tg_gitauth_init(struct tg_gitauth *a, const struct tg_git_auth *cfg, const char *port);

/*
 * Port of an ssh:// (ssh+git://, git+ssh://) URL, for "[host]:port"
 * known_hosts entries; "" for other URLs or none given.
 */
void tg_gitauth_ssh_port(char port[8], const char *url);

/*
 * libgit2's credential callback: a credential for the allowed types from
 * the configured files, or GIT_EAUTH (a second try, a file missing or
 * unreadable, nothing configured) with op->failed and op->reason set.
 */
int tg_gitauth_credential(git_credential **out, struct tg_gitauth *op, const char *user_from_url,
			  unsigned int allowed);

/*
 * libgit2's certificate check: 0 when the ssh host key is in known_hosts
 * (or checking is off) or the certificate is trusted, by the system store
 * or by ca_file; GIT_ECERTIFICATE otherwise, with op->trust_failed and
 * op->reason set.
 */
int tg_gitauth_check_certificate(struct tg_gitauth *op, git_cert *cert, int valid,
				 const char *host);

#endif
