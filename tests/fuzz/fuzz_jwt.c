/*
 * Fuzz target for bearer tokens and key sets.  The input is a key set and
 * a token separated by the first newline (no newline: a token only).  The
 * token is verified against the fuzzed key set when it parses, and always
 * against a fixed set of real RSA and EC keys, so the signature paths see
 * fuzzed tokens too; then its claims are checked.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg/base64.h"
#include "tg/common.h"
#include "tg/jwt.h"

#include "../unit/jwt_fixtures.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tg_jwks *fixed_keys(void)
{
	static struct tg_jwks *k;

	if (!k && tg_jwks_parse(&k, fx_jwks, strlen(fx_jwks), NULL))
		abort();
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *in = (const char *)data;
	const char *nl = memchr(in, '\n', size);
	const char *tok = nl ? nl + 1 : in;
	size_t tok_len = nl ? size - (size_t)(nl + 1 - in) : size;
	struct tg_jwks *keys = NULL;
	struct tg_jwt t;
	struct tg_jwt_expect e = { FX_ISS, FX_AUD, TG_JWT_ALL_ALGS, FX_NOW, 60 };
	char detail[128];
	unsigned char *raw = NULL;
	size_t raw_len;

	if (nl && tg_jwks_parse(&keys, in, (size_t)(nl - in), NULL) == 0 &&
	    tg_jwks_count(keys) == 0)
		abort(); /* a parsed set always holds a usable key */
	if (tg_jwt_parse(&t, tok, tok_len, NULL) == 0) {
		enum tg_jwt_reason a = tg_jwks_verify(fixed_keys(), &t);
		enum tg_jwt_reason b = keys ? tg_jwks_verify(keys, &t) : TG_JWT_OK;

		/* A token whose algorithm is refused never verifies. */
		if (!t.alg &&
		    (a != TG_JWT_ALG_NOT_ALLOWED || (keys && b != TG_JWT_ALG_NOT_ALLOWED)))
			abort();
		(void)tg_jwt_check(&t, &e, detail, sizeof(detail));
		(void)tg_jwt_claim_str(&t, "repositoryUuid");
		tg_jwt_release(&t);
	}
	if (tg_base64url_decode(&raw, &raw_len, tok, tok_len) == 0) {
		if (raw_len > tok_len)
			abort();
		free(raw);
	}
	tg_jwks_free(keys);
	return 0;
}
