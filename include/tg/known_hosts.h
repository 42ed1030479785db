/*
 * OpenSSH known_hosts lookup, for checking the host key of an ssh:// git
 * remote.  Pure: the caller reads the file and passes its text, which is
 * untrusted input (pointer + length, no NUL needed).
 */
#ifndef TG_KNOWN_HOSTS_H
#define TG_KNOWN_HOSTS_H

#include <stddef.h>

#include "tg/common.h"

/*
 * Looks up an SSH host key in known_hosts text (OpenSSH format: patterns
 * with '*', '?' and '!', "[host]:port" for ports other than 22, hashed
 * "|1|salt|hmac" names, @revoked; @cert-authority lines are ignored).
 * key is the SSH wire blob of the host key.  Returns 0 when listed,
 * TG_ENOTFOUND when the host is not listed, TG_ECONFLICT when it is listed
 * with other keys only or the key is revoked.
 */
int tg_known_hosts_check(const char *text, size_t len, const char *host, int port,
			 const unsigned char *key, size_t key_len);

#endif
