/*
 * SSH signature verification (OpenSSH PROTOCOL.sshsig) with OpenSSL.
 *
 * The armored blob is untrusted: every length is checked against what is
 * left before it is used, and nothing is trusted until the embedded public
 * key matched one of the configured keys byte for byte and the signature
 * over "SSHSIG" || namespace || reserved || hash_alg || H(message) verified.
 */
#include "tg/sshsig.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "tg/base64.h"
#include "tg/banned.h"

#define ARMOR_BEGIN "-----BEGIN SSH SIGNATURE-----"
#define ARMOR_END "-----END SSH SIGNATURE-----"
#define MAX_ARMORED (64 * 1024)

/* A view into untrusted bytes. */
struct rd {
	const unsigned char *p;
	size_t len;
};

static int rd_u32(struct rd *r, uint32_t *v)
{
	if (r->len < 4)
		return -1;
	*v = ((uint32_t)r->p[0] << 24) | ((uint32_t)r->p[1] << 16) | ((uint32_t)r->p[2] << 8) |
	     (uint32_t)r->p[3];
	r->p += 4;
	r->len -= 4;
	return 0;
}

static int rd_string(struct rd *r, struct rd *s)
{
	uint32_t n;

	if (rd_u32(r, &n) < 0 || n > r->len)
		return -1;
	s->p = r->p;
	s->len = n;
	r->p += n;
	r->len -= n;
	return 0;
}

static int rd_eq(const struct rd *s, const char *lit)
{
	size_t n = strlen(lit);

	return s->len == n && memcmp(s->p, lit, n) == 0;
}

void tg_sshsig_fingerprint(char fpr[64], const unsigned char *blob, size_t blob_len)
{
	unsigned char md[32];
	unsigned char enc[48];
	unsigned int mdlen = 0;
	int n;

	EVP_Digest(blob, blob_len, md, &mdlen, EVP_sha256(), NULL);
	n = EVP_EncodeBlock(enc, md, (int)mdlen);
	while (n > 0 && enc[n - 1] == '=')
		n--;
	snprintf(fpr, 64, "SHA256:%.*s", n, (const char *)enc);
}

/* Checks that blob is a supported public key blob; returns its type. */
static const char *key_type(const unsigned char *blob, size_t len)
{
	struct rd r = { blob, len }, type, a, b;

	if (rd_string(&r, &type) < 0)
		return NULL;
	if (rd_eq(&type, "ssh-ed25519")) {
		if (rd_string(&r, &a) < 0 || a.len != 32 || r.len)
			return NULL;
		return "ssh-ed25519";
	}
	if (rd_eq(&type, "ssh-rsa")) {
		if (rd_string(&r, &a) < 0 || rd_string(&r, &b) < 0 || r.len || !a.len ||
		    b.len < 128 || b.len > 2049)
			return NULL;
		return "ssh-rsa";
	}
	return NULL;
}

int tg_sshsig_parse_pubkey(unsigned char **blob, size_t *blob_len, const char *line,
			   size_t line_len, struct tg_err *err)
{
	const char *p = line, *end = line + line_len, *t, *b64;
	unsigned char *raw = NULL;
	size_t raw_len = 0, tlen;
	const char *type;

	*blob = NULL;
	*blob_len = 0;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	t = p;
	while (p < end && *p != ' ' && *p != '\t')
		p++;
	tlen = (size_t)(p - t);
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	b64 = p;
	while (p < end && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
		p++;
	if (!tlen || p == b64 || tg_base64_decode(&raw, &raw_len, b64, (size_t)(p - b64)) < 0)
		return tg_err_set(err, TG_EINVALID,
				  "invalid public key: expected 'TYPE BASE64 [COMMENT]'");
	type = key_type(raw, raw_len);
	if (!type || strlen(type) != tlen || memcmp(type, t, tlen) != 0) {
		free(raw);
		return tg_err_set(
			err, TG_EINVALID,
			"invalid public key '%.*s': only ssh-ed25519 and ssh-rsa are supported",
			(int)(tlen > 40 ? 40 : tlen), t);
	}
	*blob = raw;
	*blob_len = raw_len;
	return 0;
}

static EVP_PKEY *rsa_key(const unsigned char *blob, size_t len)
{
	struct rd r = { blob, len }, type, e, n;
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *bn_e = NULL, *bn_n = NULL;

	if (rd_string(&r, &type) < 0 || rd_string(&r, &e) < 0 || rd_string(&r, &n) < 0)
		goto out;
	bn_e = BN_bin2bn(e.p, (int)e.len, NULL);
	bn_n = BN_bin2bn(n.p, (int)n.len, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!bn_e || !bn_n || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
		goto out;
	params = OSSL_PARAM_BLD_to_param(bld);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		pkey = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_e);
	BN_free(bn_n);
	return pkey;
}

/* Verifies sig (the SSH signature blob) over data with the key blob. */
static int check_signature(const unsigned char *key, size_t key_len, const struct rd *sig,
			   const unsigned char *data, size_t data_len, struct tg_err *err)
{
	struct rd r = *sig, sigtype, sigbytes, kr = { key, key_len }, ktype, pk;
	EVP_MD_CTX *md = NULL;
	EVP_PKEY *pkey = NULL;
	const EVP_MD *alg = NULL;
	unsigned char *padded = NULL;
	const unsigned char *s;
	size_t slen;
	int rc = TG_EINVALID;

	if (rd_string(&r, &sigtype) < 0 || rd_string(&r, &sigbytes) < 0 || r.len ||
	    rd_string(&kr, &ktype) < 0) {
		tg_err_set(err, TG_EINVALID, "malformed ssh signature: bad signature blob");
		goto out;
	}
	s = sigbytes.p;
	slen = sigbytes.len;
	if (rd_eq(&ktype, "ssh-ed25519")) {
		if (!rd_eq(&sigtype, "ssh-ed25519") || slen != 64 || rd_string(&kr, &pk) < 0) {
			tg_err_set(err, TG_EINVALID,
				   "malformed ssh signature: bad ed25519 signature");
			goto out;
		}
		pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pk.p, pk.len);
	} else if (rd_eq(&ktype, "ssh-rsa")) {
		size_t klen;

		if (rd_eq(&sigtype, "rsa-sha2-512"))
			alg = EVP_sha512();
		else if (rd_eq(&sigtype, "rsa-sha2-256"))
			alg = EVP_sha256();
		else {
			tg_err_set(
				err, TG_EINVALID,
				"ssh signature uses '%.*s': only rsa-sha2-512 and rsa-sha2-256 are accepted for rsa keys",
				(int)(sigtype.len > 32 ? 32 : sigtype.len),
				(const char *)sigtype.p);
			goto out;
		}
		pkey = rsa_key(key, key_len);
		klen = pkey ? (size_t)EVP_PKEY_get_size(pkey) : 0;
		if (pkey && (slen > klen || slen == 0)) {
			tg_err_set(err, TG_EINVALID,
				   "malformed ssh signature: bad rsa signature length");
			goto out;
		}
		/* OpenSSH may drop leading zero bytes; OpenSSL wants full length. */
		if (pkey && slen < klen) {
			padded = tg_xcalloc(1, klen);
			memcpy(padded + (klen - slen), s, slen);
			s = padded;
			slen = klen;
		}
	}
	if (!pkey) {
		tg_err_set(err, TG_EINVALID, "unsupported or invalid key in ssh signature");
		goto out;
	}
	md = EVP_MD_CTX_new();
	if (!md || EVP_DigestVerifyInit(md, NULL, alg, NULL, pkey) != 1 ||
	    EVP_DigestVerify(md, s, slen, data, data_len) != 1) {
		tg_err_set(err, TG_EINVALID,
			   "ssh signature does not verify: content or signature was altered");
		goto out;
	}
	rc = 0;
out:
	free(padded);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	return rc;
}

static void put_string(unsigned char **p, const void *s, size_t n)
{
	(*p)[0] = (unsigned char)(n >> 24);
	(*p)[1] = (unsigned char)(n >> 16);
	(*p)[2] = (unsigned char)(n >> 8);
	(*p)[3] = (unsigned char)n;
	if (n)
		memcpy(*p + 4, s, n);
	*p += 4 + n;
}

int tg_sshsig_verify(const char *armored, size_t armored_len, const void *msg, size_t msg_len,
		     const char *namespace_, const char *const *trusted_keys, size_t n_trusted_keys,
		     char fpr[64], struct tg_err *err)
{
	const char *b, *e;
	unsigned char *raw = NULL, *data = NULL, *q, *kblob = NULL;
	unsigned char h[EVP_MAX_MD_SIZE];
	unsigned int hlen = 0;
	size_t raw_len = 0, kblob_len = 0, i, data_len;
	struct rd r, pub, ns, reserved, halg, sig;
	uint32_t version;
	const EVP_MD *md;
	int trusted = 0, rc = TG_EINVALID;

	if (armored_len > MAX_ARMORED) {
		tg_err_set(err, TG_EINVALID, "malformed ssh signature: too large");
		goto out;
	}
	b = memmem(armored, armored_len, ARMOR_BEGIN, strlen(ARMOR_BEGIN));
	if (!b) {
		tg_err_set(err, TG_EINVALID, "not an ssh signature (missing '" ARMOR_BEGIN "')");
		goto out;
	}
	b += strlen(ARMOR_BEGIN);
	e = memmem(b, armored_len - (size_t)(b - armored), ARMOR_END, strlen(ARMOR_END));
	if (!e || tg_base64_decode(&raw, &raw_len, b, (size_t)(e - b)) < 0) {
		tg_err_set(err, TG_EINVALID, "malformed ssh signature: bad armor");
		goto out;
	}
	r.p = raw;
	r.len = raw_len;
	if (r.len < 6 || memcmp(r.p, "SSHSIG", 6) != 0) {
		tg_err_set(err, TG_EINVALID, "malformed ssh signature: bad magic");
		goto out;
	}
	r.p += 6;
	r.len -= 6;
	if (rd_u32(&r, &version) < 0 || version != 1) {
		tg_err_set(err, TG_EINVALID, "malformed ssh signature: unsupported version");
		goto out;
	}
	if (rd_string(&r, &pub) < 0 || rd_string(&r, &ns) < 0 || rd_string(&r, &reserved) < 0 ||
	    rd_string(&r, &halg) < 0 || rd_string(&r, &sig) < 0 || r.len) {
		tg_err_set(err, TG_EINVALID, "malformed ssh signature: truncated or trailing data");
		goto out;
	}
	if (!rd_eq(&ns, namespace_)) {
		tg_err_set(err, TG_EINVALID, "ssh signature namespace is '%.*s', expected '%s'",
			   (int)(ns.len > 32 ? 32 : ns.len), (const char *)ns.p, namespace_);
		goto out;
	}
	if (rd_eq(&halg, "sha512"))
		md = EVP_sha512();
	else if (rd_eq(&halg, "sha256"))
		md = EVP_sha256();
	else {
		tg_err_set(err, TG_EINVALID, "ssh signature uses an unsupported hash algorithm");
		goto out;
	}
	for (i = 0; i < n_trusted_keys && !trusted; i++) {
		if (tg_sshsig_parse_pubkey(&kblob, &kblob_len, trusted_keys[i],
					   strlen(trusted_keys[i]), NULL) == 0 &&
		    kblob_len == pub.len && CRYPTO_memcmp(kblob, pub.p, pub.len) == 0)
			trusted = 1;
		free(kblob);
		kblob = NULL;
	}
	if (!trusted) {
		char f[64];

		tg_sshsig_fingerprint(f, pub.p, pub.len);
		tg_err_set(err, TG_EINVALID, "signing key %s is not a trusted key", f);
		goto out;
	}
	if (!EVP_Digest(msg, msg_len, h, &hlen, md, NULL)) {
		tg_err_set(err, TG_ERROR, "cannot hash signed data");
		goto out;
	}
	/* Lengths are bounded by MAX_ARMORED, so this cannot overflow. */
	data_len = 6 + 4 + ns.len + 4 + reserved.len + 4 + halg.len + 4 + hlen;
	data = tg_xmalloc(data_len);
	memcpy(data, "SSHSIG", 6);
	q = data + 6;
	put_string(&q, ns.p, ns.len);
	put_string(&q, reserved.p, reserved.len);
	put_string(&q, halg.p, halg.len);
	put_string(&q, h, hlen);
	rc = check_signature(pub.p, pub.len, &sig, data, data_len, err);
	if (rc == 0 && fpr)
		tg_sshsig_fingerprint(fpr, pub.p, pub.len);
out:
	free(data);
	free(raw);
	return rc;
}
