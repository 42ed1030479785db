/*
 * base64 decoding for the two places outside input carries it: SSH keys and
 * signatures (standard alphabet, as OpenSSH writes it) and JSON Web Tokens
 * and keys (base64url, RFC 7515).  Both return *out NUL-terminated for
 * convenience, owned by the caller, and TG_EINVALID on any input they
 * refuse (*out NULL then).
 */
#ifndef TG_BASE64_H
#define TG_BASE64_H

#include <stddef.h>

/*
 * Standard alphabet ('+', '/'), whitespace ignored, '=' padding optional at
 * the end and nothing but padding after it: what OpenSSH accepts in keys,
 * known_hosts and armored signatures.
 */
int tg_base64_decode(unsigned char **out, size_t *out_len, const char *in, size_t len);

/*
 * Strict base64url without padding (RFC 7515 section 2): other characters,
 * whitespace, '=', a length of 4n+1 and non-zero trailing bits are refused,
 * so one token has exactly one encoding.
 */
int tg_base64url_decode(unsigned char **out, size_t *out_len, const char *in, size_t len);

#endif
