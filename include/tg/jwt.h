/*
 * JSON Web Tokens as OpenID Connect issuers sign them (RFC 7515, 7517,
 * 7518, 7519): the compact form, a JSON Web Key Set, signature
 * verification with OpenSSL, and the registered claims.  Pure: no I/O, the
 * time is passed in.  Only what an issuer of CI identity tokens uses is
 * accepted: RS256/384/512 and ES256/384.  "none", the HMAC algorithms and
 * anything else are refused, whatever the key set holds, because a
 * verifier that lets the token pick the algorithm can be fooled into
 * checking an HMAC keyed with a public key.
 */
#ifndef TG_JWT_H
#define TG_JWT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/common.h"

/* Algorithms, as bits so that an issuer can pin a set. */
enum {
	TG_JWT_RS256 = 1 << 0,
	TG_JWT_RS384 = 1 << 1,
	TG_JWT_RS512 = 1 << 2,
	TG_JWT_ES256 = 1 << 3,
	TG_JWT_ES384 = 1 << 4
};
#define TG_JWT_ALL_ALGS (TG_JWT_RS256 | TG_JWT_RS384 | TG_JWT_RS512 | TG_JWT_ES256 | TG_JWT_ES384)

/* "RS256" -> TG_JWT_RS256; 0 for "none", "HS256" and every unknown name. */
unsigned tg_jwt_alg_from_name(const char *name);
/* The name of one bit, "?" for anything else. */
const char *tg_jwt_alg_name(unsigned alg);

/* Why a token was refused; the names are metric labels. */
enum tg_jwt_reason {
	TG_JWT_OK,
	TG_JWT_MALFORMED,       /* not a compact JWS, bad base64url or JSON, crit, no exp */
	TG_JWT_ALG_NOT_ALLOWED, /* none, HS*, or an algorithm the issuer is not pinned to */
	TG_JWT_WRONG_ISSUER,    /* iss is not a configured issuer */
	TG_JWT_UNKNOWN_KID,     /* no key with that kid (after a refresh) */
	TG_JWT_KEY_TYPE,        /* the key named is not usable with the algorithm */
	TG_JWT_BAD_SIGNATURE,
	TG_JWT_WRONG_AUDIENCE,
	TG_JWT_EXPIRED,
	TG_JWT_NOT_YET_VALID,   /* nbf, or iat in the future */
	TG_JWT_JWKS_UNAVAILABLE /* the issuer's keys could not be fetched yet */
};
const char *tg_jwt_reason_name(enum tg_jwt_reason r);

/* Caps: a Bitbucket step token is about 1.5 KiB. */
#define TG_JWT_MAX_LEN ((size_t)16 * 1024)
#define TG_JWKS_MAX_LEN ((size_t)256 * 1024)
#define TG_JWKS_MAX_KEYS 64

/* A parsed, not yet verified, token. */
struct tg_jwt {
	unsigned alg;      /* one TG_JWT_* bit, 0 when the header names another */
	char alg_name[16]; /* as the header says, cut to fit, for messages */
	char *kid;         /* NULL when absent */
	cJSON *header, *claims;
	char *signing_input; /* "header.payload", the bytes that are signed */
	size_t signing_input_len;
	unsigned char *sig;
	size_t sig_len;
};

/*
 * Parses the compact serialisation (three base64url parts).  Checks the
 * shape only: nothing in it is trusted before tg_jwks_verify.  t is
 * released on failure too.  Errors: TG_EINVALID with the reason in err.
 */
int tg_jwt_parse(struct tg_jwt *t, const char *token, size_t len, struct tg_err *err);
void tg_jwt_release(struct tg_jwt *t);

/* A string claim, or NULL when absent or not a string. */
const char *tg_jwt_claim_str(const struct tg_jwt *t, const char *name);

struct tg_jwt_expect {
	const char *issuer;   /* exact "iss" */
	const char *audience; /* must be "aud" or one of its entries */
	unsigned algorithms;  /* pinned set */
	long long now_s;      /* Unix time */
	long long leeway_s;   /* clock skew allowed on exp, nbf and iat */
};

/*
 * Checks the algorithm pin and the registered claims (iss, aud, exp
 * required; nbf and iat when present).  Does not look at the signature.
 * detail (size n, may be NULL) says what was wrong for the log.
 */
enum tg_jwt_reason tg_jwt_check(const struct tg_jwt *t, const struct tg_jwt_expect *e, char *detail,
				size_t n);

/* A JSON Web Key Set: the RSA (2048 bits or more) and EC (P-256, P-384)
 * signing keys of one issuer.  Immutable once parsed; safe to share
 * between threads. */
struct tg_jwks;

/*
 * Parses a key set ({"keys": [...]}).  Keys of another type (oct, OKP),
 * for encryption ("use": "enc") or otherwise unusable are skipped, not an
 * error; a set with no usable key is.  Errors: TG_EINVALID.
 */
int tg_jwks_parse(struct tg_jwks **out, const char *json, size_t len, struct tg_err *err);
void tg_jwks_free(struct tg_jwks *k);
size_t tg_jwks_count(const struct tg_jwks *k);
/* Whether a key with this kid is in the set. */
int tg_jwks_has_kid(const struct tg_jwks *k, const char *kid);

/*
 * Picks the key the token names (by kid; without kid, the one key usable
 * with its algorithm) and checks the signature: TG_JWT_OK,
 * TG_JWT_UNKNOWN_KID, TG_JWT_KEY_TYPE (kid found, but an RSA key for ES256,
 * a P-384 key for ES256, or a key whose "alg" says otherwise),
 * TG_JWT_ALG_NOT_ALLOWED (alg 0) or TG_JWT_BAD_SIGNATURE.
 */
enum tg_jwt_reason tg_jwks_verify(const struct tg_jwks *k, const struct tg_jwt *t);

#endif
