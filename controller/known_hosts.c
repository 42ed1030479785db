/*
 * known_hosts lookup, after sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT": one key
 * per line, led by a comma-separated list of host patterns.  A host listed
 * with other keys only is a mismatch (a changed or spoofed key), which the
 * caller reports differently from a host that is not listed at all.
 */
#include "tg/known_hosts.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tg/base64.h"
#include "tg/sshsig.h"
#include "tg/banned.h"

/* Glob with '*' and '?' only (ssh patterns; '[' is literal there). */
/*
 * '*' and '?' matching, case-insensitive.  Iterative with one backtrack
 * point (the last '*'): O(len(p) * len(s)), where recursion was exponential
 * in the number of stars and a crafted line could hang a sync.
 */
static int glob_match(const char *p, size_t plen, const char *s)
{
	size_t pi = 0, star = (size_t)-1;
	const char *mark = NULL;

	while (*s) {
		if (pi < plen &&
		    (p[pi] == '?' || (p[pi] != '*' && tolower((unsigned char)p[pi]) ==
							      tolower((unsigned char)*s)))) {
			pi++;
			s++;
		} else if (pi < plen && p[pi] == '*') {
			star = pi++;
			mark = s;
		} else if (star != (size_t)-1) {
			pi = star + 1;
			s = ++mark;
		} else {
			return 0;
		}
	}
	while (pi < plen && p[pi] == '*')
		pi++;
	return pi == plen;
}

/* "|1|salt|hash" entry: HMAC-SHA1(salt, name) == hash. */
static int hashed_match(const char *pat, size_t len, const char *name)
{
	const char *salt = pat + 3, *bar;
	unsigned char *s = NULL, *h = NULL, mac[EVP_MAX_MD_SIZE];
	size_t slen = 0, hlen = 0;
	unsigned int maclen = 0;
	int ok = 0;

	bar = memchr(salt, '|', len - 3);
	if (!bar)
		return 0;
	if (tg_base64_decode(&s, &slen, salt, (size_t)(bar - salt)) == 0 &&
	    tg_base64_decode(&h, &hlen, bar + 1, len - (size_t)(bar + 1 - pat)) == 0 &&
	    HMAC(EVP_sha1(), s, (int)slen, (const unsigned char *)name, strlen(name), mac,
		 &maclen) &&
	    maclen == hlen && CRYPTO_memcmp(mac, h, hlen) == 0)
		ok = 1;
	free(s);
	free(h);
	return ok;
}

/* 1 when the comma-separated pattern list matches name, honouring '!'. */
static int hosts_match(const char *pats, size_t len, const char *name)
{
	const char *p = pats, *end = pats + len;
	int matched = 0;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t n = (size_t)((c ? c : end) - p);
		int neg = n && *p == '!';
		const char *q = p + neg;
		size_t qn = n - (size_t)neg;
		int m;

		if (qn > 3 && !memcmp(q, "|1|", 3))
			m = hashed_match(q, qn, name);
		else
			m = glob_match(q, qn, name);
		if (m && neg)
			return 0;
		if (m)
			matched = 1;
		p = c ? c + 1 : end;
	}
	return matched;
}

int tg_known_hosts_check(const char *text, size_t len, const char *host, int port,
			 const unsigned char *key, size_t key_len)
{
	const char *line = text, *end = text + len;
	char name[300];
	int host_seen = 0, good = 0;

	if (port > 0 && port != 22)
		snprintf(name, sizeof(name), "[%s]:%d", host, port);
	else
		snprintf(name, sizeof(name), "%s", host);
	while (line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		const char *le = nl ? nl : end, *p = line, *f[3];
		size_t fl[3];
		int nf = 0, revoked = 0;
		unsigned char *blob = NULL;
		size_t blob_len = 0;

		/* fields: [marker] hosts keytype base64 [comment] */
		while (p < le && nf < 3) {
			while (p < le && (*p == ' ' || *p == '\t' || *p == '\r'))
				p++;
			if (p >= le || (nf == 0 && *p == '#'))
				break;
			f[nf] = p;
			while (p < le && *p != ' ' && *p != '\t' && *p != '\r')
				p++;
			fl[nf] = (size_t)(p - f[nf]);
			if (nf == 0 && *f[0] == '@') {
				/* @cert-authority lines hold CA keys, which we do not use. */
				if (fl[0] == 8 && !memcmp(f[0], "@revoked", 8)) {
					revoked = 1;
					continue;
				}
				goto next;
			}
			nf++;
		}
		if (nf < 3 || !hosts_match(f[0], fl[0], name))
			goto next;
		if (tg_base64_decode(&blob, &blob_len, f[2], fl[2]) < 0)
			goto next;
		if (blob_len == key_len && !memcmp(blob, key, key_len)) {
			free(blob);
			if (revoked)
				return TG_ECONFLICT;
			good = 1;
		} else {
			free(blob);
			if (!revoked)
				host_seen = 1;
		}
next:
		line = nl ? nl + 1 : end;
	}
	if (good)
		return 0;
	return host_seen ? TG_ECONFLICT : TG_ENOTFOUND;
}
