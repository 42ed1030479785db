/*
 * JSON Web Tokens and key sets (see include/tg/jwt.h).
 *
 * Every byte of a token is attacker-controlled until its signature
 * checks, so parsing is strict (canonical base64url, objects where objects
 * belong, bounded sizes) and the algorithm is never taken from the token
 * alone: it must be one of the pinned set and match the key's type and
 * curve.
 */
#include "tg/jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "tg/base64.h"
#include "tg/banned.h"

#define KID_MAX 256
#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 16384

static const struct {
	const char *name;
	unsigned bit;
} algs[] = {
	{ "RS256", TG_JWT_RS256 }, { "RS384", TG_JWT_RS384 }, { "RS512", TG_JWT_RS512 },
	{ "ES256", TG_JWT_ES256 }, { "ES384", TG_JWT_ES384 },
};

unsigned tg_jwt_alg_from_name(const char *name)
{
	for (size_t i = 0; name && i < TG_ARRAY_SIZE(algs); i++)
		if (!strcmp(name, algs[i].name))
			return algs[i].bit;
	return 0;
}

const char *tg_jwt_alg_name(unsigned alg)
{
	for (size_t i = 0; i < TG_ARRAY_SIZE(algs); i++)
		if (alg == algs[i].bit)
			return algs[i].name;
	return "?";
}

const char *tg_jwt_reason_name(enum tg_jwt_reason r)
{
	static const char *const names[] = {
		"ok",          "malformed",     "alg_not_allowed",  "wrong_issuer",
		"unknown_kid", "key_type",      "bad_signature",    "wrong_audience",
		"expired",     "not_yet_valid", "jwks_unavailable",
	};

	return (size_t)r < TG_ARRAY_SIZE(names) ? names[r] : "malformed";
}

/* --- tokens ---------------------------------------------------------------- */

void tg_jwt_release(struct tg_jwt *t)
{
	if (!t)
		return;
	free(t->kid);
	cJSON_Delete(t->header);
	cJSON_Delete(t->claims);
	free(t->signing_input);
	free(t->sig);
	memset(t, 0, sizeof(*t));
}

static cJSON *decode_object(const char *s, size_t len)
{
	unsigned char *raw = NULL;
	size_t n;
	cJSON *o;

	if (tg_base64url_decode(&raw, &n, s, len))
		return NULL;
	/* A NUL inside would end cJSON's view of the text early. */
	o = memchr(raw, '\0', n) ? NULL : cJSON_ParseWithLength((const char *)raw, n);
	free(raw);
	if (o && !cJSON_IsObject(o)) {
		cJSON_Delete(o);
		o = NULL;
	}
	return o;
}

int tg_jwt_parse(struct tg_jwt *t, const char *token, size_t len, struct tg_err *err)
{
	const char *dot1, *dot2;
	const cJSON *alg, *kid;

	memset(t, 0, sizeof(*t));
	if (len == 0 || len > TG_JWT_MAX_LEN)
		return tg_err_set(err, TG_EINVALID, "token is empty or over %zu bytes",
				  TG_JWT_MAX_LEN);
	dot1 = memchr(token, '.', len);
	dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
	if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
		return tg_err_set(err, TG_EINVALID, "token is not three dot-separated parts");
	t->header = decode_object(token, (size_t)(dot1 - token));
	if (!t->header) {
		tg_jwt_release(t);
		return tg_err_set(err, TG_EINVALID, "token header is not base64url-encoded JSON");
	}
	alg = cJSON_GetObjectItemCaseSensitive(t->header, "alg");
	if (!cJSON_IsString(alg)) {
		tg_jwt_release(t);
		return tg_err_set(err, TG_EINVALID, "token header has no alg");
	}
	snprintf(t->alg_name, sizeof(t->alg_name), "%s", alg->valuestring);
	t->alg = tg_jwt_alg_from_name(alg->valuestring);
	/* crit names extensions the verifier must understand; it knows none. */
	if (cJSON_GetObjectItemCaseSensitive(t->header, "crit")) {
		tg_jwt_release(t);
		return tg_err_set(err, TG_EINVALID, "token header has crit extensions");
	}
	kid = cJSON_GetObjectItemCaseSensitive(t->header, "kid");
	if (kid) {
		if (!cJSON_IsString(kid) || strlen(kid->valuestring) > KID_MAX) {
			tg_jwt_release(t);
			return tg_err_set(err, TG_EINVALID,
					  "token header kid is not a short string");
		}
		t->kid = tg_xstrdup(kid->valuestring);
	}
	t->claims = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1));
	if (!t->claims) {
		tg_jwt_release(t);
		return tg_err_set(err, TG_EINVALID, "token payload is not base64url-encoded JSON");
	}
	/* An empty signature parses ("alg": "none" tokens have one), so that
	 * such a token is refused for its algorithm, which says more. */
	if (tg_base64url_decode(&t->sig, &t->sig_len, dot2 + 1, len - (size_t)(dot2 + 1 - token))) {
		tg_jwt_release(t);
		return tg_err_set(err, TG_EINVALID, "token signature is not base64url");
	}
	t->signing_input_len = (size_t)(dot2 - token);
	t->signing_input = tg_xstrndup(token, t->signing_input_len);
	return 0;
}

const char *tg_jwt_claim_str(const struct tg_jwt *t, const char *name)
{
	const cJSON *v = t->claims ? cJSON_GetObjectItemCaseSensitive(t->claims, name) : NULL;

	return v && cJSON_IsString(v) ? v->valuestring : NULL;
}

static int audience_ok(const cJSON *aud, const char *want)
{
	const cJSON *a;

	if (cJSON_IsString(aud))
		return !strcmp(aud->valuestring, want);
	if (!cJSON_IsArray(aud))
		return 0;
	cJSON_ArrayForEach(a, aud) if (cJSON_IsString(a) && !strcmp(a->valuestring, want)) return 1;
	return 0;
}

static void say(char *detail, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(char *detail, size_t n, const char *fmt, ...)
{
	va_list ap;

	if (!detail || !n)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, n, fmt, ap);
	va_end(ap);
}

enum tg_jwt_reason tg_jwt_check(const struct tg_jwt *t, const struct tg_jwt_expect *e, char *detail,
				size_t n)
{
	const cJSON *exp, *nbf, *iat;
	const char *iss = tg_jwt_claim_str(t, "iss");

	say(detail, n, "ok");
	if (!t->alg || !(t->alg & e->algorithms)) {
		say(detail, n, "algorithm '%s' is not allowed for this issuer", t->alg_name);
		return TG_JWT_ALG_NOT_ALLOWED;
	}
	if (!iss || !e->issuer || strcmp(iss, e->issuer)) {
		say(detail, n, "iss is not '%s'", e->issuer ? e->issuer : "");
		return TG_JWT_WRONG_ISSUER;
	}
	if (!e->audience ||
	    !audience_ok(cJSON_GetObjectItemCaseSensitive(t->claims, "aud"), e->audience)) {
		say(detail, n, "aud does not name '%s'", e->audience ? e->audience : "");
		return TG_JWT_WRONG_AUDIENCE;
	}
	exp = cJSON_GetObjectItemCaseSensitive(t->claims, "exp");
	if (!cJSON_IsNumber(exp)) {
		say(detail, n, "the token has no exp claim");
		return TG_JWT_MALFORMED;
	}
	/* Doubles: the comparisons hold for any NumericDate, fractional too. */
	if ((double)e->now_s > exp->valuedouble + (double)e->leeway_s) {
		say(detail, n, "expired %.0f s ago", (double)e->now_s - exp->valuedouble);
		return TG_JWT_EXPIRED;
	}
	nbf = cJSON_GetObjectItemCaseSensitive(t->claims, "nbf");
	if (nbf && (!cJSON_IsNumber(nbf) || nbf->valuedouble > (double)(e->now_s + e->leeway_s))) {
		say(detail, n, "not valid before its nbf");
		return TG_JWT_NOT_YET_VALID;
	}
	iat = cJSON_GetObjectItemCaseSensitive(t->claims, "iat");
	if (iat && (!cJSON_IsNumber(iat) || iat->valuedouble > (double)(e->now_s + e->leeway_s))) {
		say(detail, n, "issued in the future (iat)");
		return TG_JWT_NOT_YET_VALID;
	}
	return TG_JWT_OK;
}

/* --- key sets --------------------------------------------------------------- */

enum key_type { KEY_RSA, KEY_EC256, KEY_EC384 };

struct jwk {
	char *kid;
	enum key_type type;
	unsigned alg; /* the key's own "alg", 0 when it has none */
	EVP_PKEY *pkey;
};

struct tg_jwks {
	struct jwk *keys;
	size_t n;
};

void tg_jwks_free(struct tg_jwks *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++) {
		free(k->keys[i].kid);
		EVP_PKEY_free(k->keys[i].pkey);
	}
	free(k->keys);
	free(k);
}

size_t tg_jwks_count(const struct tg_jwks *k)
{
	return k ? k->n : 0;
}

int tg_jwks_has_kid(const struct tg_jwks *k, const char *kid)
{
	for (size_t i = 0; k && kid && i < k->n; i++)
		if (k->keys[i].kid && !strcmp(k->keys[i].kid, kid))
			return 1;
	return 0;
}

static unsigned char *member_b64(const cJSON *key, const char *name, size_t *len)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(key, name);
	unsigned char *out = NULL;

	if (!cJSON_IsString(v) ||
	    tg_base64url_decode(&out, len, v->valuestring, strlen(v->valuestring)))
		return NULL;
	return out;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld, int check)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = NULL, *cctx = NULL;
	EVP_PKEY *pkey = NULL;

	if (!params)
		goto out;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
		pkey = NULL;
		goto out;
	}
	/* An EC point off the curve is not a key.  RSA moduli are checked by
	 * the caller (size, odd): OpenSSL's full RSA check runs primality
	 * tests, milliseconds per key for no gain in a verifier. */
	if (check) {
		cctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
		if (!cctx || EVP_PKEY_public_check(cctx) != 1) {
			EVP_PKEY_free(pkey);
			pkey = NULL;
		}
	}
out:
	EVP_PKEY_CTX_free(cctx);
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

static EVP_PKEY *rsa_key(const cJSON *key)
{
	unsigned char *n = NULL, *e = NULL;
	size_t nlen = 0, elen = 0;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	n = member_b64(key, "n", &nlen);
	e = member_b64(key, "e", &elen);
	if (!n || !e || nlen < RSA_MIN_BITS / 8 || nlen > RSA_MAX_BITS / 8 + 1 || elen == 0 ||
	    elen > 8)
		goto out;
	bn = BN_bin2bn(n, (int)nlen, NULL);
	be = BN_bin2bn(e, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!bn || !be || !bld || BN_num_bits(bn) < RSA_MIN_BITS ||
	    BN_num_bits(bn) > RSA_MAX_BITS || !BN_is_odd(bn) || !BN_is_odd(be) ||
	    BN_num_bits(be) < 2 || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		goto out;
	pkey = from_params("RSA", bld, 0);
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn);
	BN_free(be);
	free(n);
	free(e);
	return pkey;
}

static EVP_PKEY *ec_key(const cJSON *key, enum key_type *type)
{
	const cJSON *crv = cJSON_GetObjectItemCaseSensitive(key, "crv");
	unsigned char *x = NULL, *y = NULL, pub[1 + 2 * 48];
	size_t xlen = 0, ylen = 0, coord;
	const char *group;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	if (!cJSON_IsString(crv))
		return NULL;
	if (!strcmp(crv->valuestring, "P-256")) {
		group = "prime256v1";
		coord = 32;
		*type = KEY_EC256;
	} else if (!strcmp(crv->valuestring, "P-384")) {
		group = "secp384r1";
		coord = 48;
		*type = KEY_EC384;
	} else {
		return NULL;
	}
	x = member_b64(key, "x", &xlen);
	y = member_b64(key, "y", &ylen);
	if (!x || !y || xlen != coord || ylen != coord)
		goto out;
	pub[0] = 0x04; /* uncompressed point */
	memcpy(pub + 1, x, coord);
	memcpy(pub + 1 + coord, y, coord);
	bld = OSSL_PARAM_BLD_new();
	if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, 1 + 2 * coord))
		goto out;
	pkey = from_params("EC", bld, 1);
out:
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pkey;
}

int tg_jwks_parse(struct tg_jwks **out, const char *json, size_t len, struct tg_err *err)
{
	cJSON *doc = NULL;
	const cJSON *keys, *key;
	struct tg_jwks *k = NULL;
	size_t skipped = 0;
	int rc;

	*out = NULL;
	if (len > TG_JWKS_MAX_LEN)
		return tg_err_set(err, TG_EINVALID, "key set is over %zu bytes", TG_JWKS_MAX_LEN);
	doc = cJSON_ParseWithLength(json, len);
	keys = cJSON_GetObjectItemCaseSensitive(doc, "keys");
	if (!cJSON_IsObject(doc) || !cJSON_IsArray(keys)) {
		rc = tg_err_set(err, TG_EINVALID, "key set is not a JSON object with a keys list");
		goto out;
	}
	k = tg_xcalloc(1, sizeof(*k));
	k->keys = tg_xcalloc(TG_JWKS_MAX_KEYS, sizeof(*k->keys));
	cJSON_ArrayForEach(key, keys)
	{
		const cJSON *kty = cJSON_GetObjectItemCaseSensitive(key, "kty");
		const cJSON *use = cJSON_GetObjectItemCaseSensitive(key, "use");
		const cJSON *alg = cJSON_GetObjectItemCaseSensitive(key, "alg");
		const cJSON *kid = cJSON_GetObjectItemCaseSensitive(key, "kid");
		struct jwk *j;
		enum key_type type = KEY_RSA;
		EVP_PKEY *pkey = NULL;
		unsigned a = 0;

		if (k->n == TG_JWKS_MAX_KEYS || !cJSON_IsObject(key) || !cJSON_IsString(kty) ||
		    (use && (!cJSON_IsString(use) || strcmp(use->valuestring, "sig"))) ||
		    (kid && (!cJSON_IsString(kid) || strlen(kid->valuestring) > KID_MAX))) {
			skipped++;
			continue;
		}
		if (alg) {
			/* A key marked for an algorithm this verifier refuses
			 * (HS256 on an "oct" key, RSA-OAEP) is not a signing key
			 * it can use. */
			a = cJSON_IsString(alg) ? tg_jwt_alg_from_name(alg->valuestring) : 0;
			if (!a) {
				skipped++;
				continue;
			}
		}
		if (!strcmp(kty->valuestring, "RSA"))
			pkey = rsa_key(key);
		else if (!strcmp(kty->valuestring, "EC"))
			pkey = ec_key(key, &type);
		if (!pkey) {
			skipped++;
			continue;
		}
		j = &k->keys[k->n++];
		j->kid = kid ? tg_xstrdup(kid->valuestring) : NULL;
		j->type = type;
		j->alg = a;
		j->pkey = pkey;
	}
	if (k->n == 0) {
		rc = tg_err_set(err, TG_EINVALID, "key set has no usable signing key (%zu skipped)",
				skipped);
		goto out;
	}
	*out = k;
	k = NULL;
	rc = 0;
out:
	tg_jwks_free(k);
	cJSON_Delete(doc);
	return rc;
}

static int key_fits(const struct jwk *j, unsigned alg)
{
	if (j->alg && j->alg != alg)
		return 0;
	switch (alg) {
	case TG_JWT_RS256:
	case TG_JWT_RS384:
	case TG_JWT_RS512: return j->type == KEY_RSA;
	case TG_JWT_ES256: return j->type == KEY_EC256;
	case TG_JWT_ES384: return j->type == KEY_EC384;
	default: return 0;
	}
}

static const EVP_MD *digest_of(unsigned alg)
{
	switch (alg) {
	case TG_JWT_RS384:
	case TG_JWT_ES384: return EVP_sha384();
	case TG_JWT_RS512: return EVP_sha512();
	default: return EVP_sha256();
	}
}

/* JOSE carries ECDSA signatures as R || S; OpenSSL wants DER. */
static unsigned char *ecdsa_der(const unsigned char *sig, size_t len, size_t coord, int *der_len)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;

	*der_len = 0;
	if (len != 2 * coord)
		return NULL;
	r = BN_bin2bn(sig, (int)coord, NULL);
	s = BN_bin2bn(sig + coord, (int)coord, NULL);
	es = ECDSA_SIG_new();
	if (!r || !s || !es || !ECDSA_SIG_set0(es, r, s)) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	*der_len = i2d_ECDSA_SIG(es, &der);
	ECDSA_SIG_free(es);
	if (*der_len <= 0) {
		OPENSSL_free(der);
		return NULL;
	}
	return der;
}

static int signature_ok(const struct jwk *j, const struct tg_jwt *t)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char *der = NULL;
	const unsigned char *sig = t->sig;
	size_t sig_len = t->sig_len;
	int ok = 0, der_len;

	if (!ctx || !t->sig_len) {
		EVP_MD_CTX_free(ctx);
		return 0;
	}
	if (j->type != KEY_RSA) {
		der = ecdsa_der(t->sig, t->sig_len, j->type == KEY_EC256 ? 32 : 48, &der_len);
		if (!der)
			goto out;
		sig = der;
		sig_len = (size_t)der_len;
	}
	ok = EVP_DigestVerifyInit(ctx, NULL, digest_of(t->alg), NULL, j->pkey) == 1 &&
	     EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)t->signing_input,
			      t->signing_input_len) == 1;
out:
	OPENSSL_free(der);
	EVP_MD_CTX_free(ctx);
	return ok;
}

enum tg_jwt_reason tg_jwks_verify(const struct tg_jwks *k, const struct tg_jwt *t)
{
	const struct jwk *pick = NULL;
	size_t fitting = 0, named = 0;

	if (!t->alg)
		return TG_JWT_ALG_NOT_ALLOWED;
	for (size_t i = 0; k && i < k->n; i++) {
		const struct jwk *j = &k->keys[i];

		if (t->kid && (!j->kid || strcmp(j->kid, t->kid)))
			continue;
		named++;
		if (key_fits(j, t->alg)) {
			fitting++;
			if (!pick)
				pick = j;
		}
	}
	if (t->kid) {
		if (!named)
			return TG_JWT_UNKNOWN_KID;
		if (!pick)
			return TG_JWT_KEY_TYPE;
	} else if (fitting != 1) {
		/* Without kid only an unambiguous key will do. */
		return named && !fitting ? TG_JWT_KEY_TYPE : TG_JWT_UNKNOWN_KID;
	}
	return signature_ok(pick, t) ? TG_JWT_OK : TG_JWT_BAD_SIGNATURE;
}
