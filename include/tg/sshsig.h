/*
 * SSH signatures (OpenSSH PROTOCOL.sshsig), as made by `ssh-keygen -Y sign`
 * and `git commit -S` with gpg.format=ssh, verified with OpenSSL.
 *
 * Supported keys: ssh-ed25519, and ssh-rsa with rsa-sha2-512 or
 * rsa-sha2-256 signatures.  Everything given to these functions is
 * untrusted input passed as pointer + length.
 */
#ifndef TG_SSHSIG_H
#define TG_SSHSIG_H

#include <stddef.h>

#include "tg/common.h"

/*
 * Parses an authorized_keys style line "ssh-ed25519 AAAA... comment" into
 * the SSH wire blob of the key.  *blob is owned by the caller.
 * TG_EINVALID when the line is not a supported public key.
 */
int tg_sshsig_parse_pubkey(unsigned char **blob, size_t *blob_len, const char *line,
			   size_t line_len, struct tg_err *err);

/*
 * Verifies an armored "-----BEGIN SSH SIGNATURE-----" block over msg for
 * the given namespace ("git" for commits), made by one of the trusted keys
 * (authorized_keys style lines).  On success, when fpr is non-NULL, it
 * receives the "SHA256:..." fingerprint of the signing key.
 *
 * Returns 0, or TG_EINVALID with a reason in err: malformed signature,
 * wrong namespace, key not trusted, or a signature that does not verify.
 */
int tg_sshsig_verify(const char *armored, size_t armored_len, const void *msg, size_t msg_len,
		     const char *namespace_, const char *const *trusted_keys, size_t n_trusted_keys,
		     char fpr[64], struct tg_err *err);

/* "SHA256:<unpadded base64>" fingerprint of a key blob, as ssh-keygen -l. */
void tg_sshsig_fingerprint(char fpr[64], const unsigned char *blob, size_t blob_len);

#endif
