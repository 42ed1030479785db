/* Pipelines OIDC: tokens and key sets minted by PyJWT (jwt_fixtures.h),
 * every forged variant, the claims with leeway, the rules, and the
 * verifier's key cache over a jwks_file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg/jwt.h"
#include "tg/oidc.h"

#include "jwt_fixtures.h"

static struct tg_jwks *fixture_keys(const char *json)
{
	struct tg_jwks *k = NULL;
	struct tg_err err = { 0, "" };

	assert_int_equal(tg_jwks_parse(&k, json, strlen(json), &err), 0);
	return k;
}

/* Signature and key choice only. */
static enum tg_jwt_reason sig_check(const struct tg_jwks *k, const char *token)
{
	struct tg_jwt t;
	struct tg_err err = { 0, "" };
	enum tg_jwt_reason r;

	if (tg_jwt_parse(&t, token, strlen(token), &err))
		return TG_JWT_MALFORMED;
	r = tg_jwks_verify(k, &t);
	tg_jwt_release(&t);
	return r;
}

static enum tg_jwt_reason claims_check(const char *token, unsigned algs, long long now)
{
	struct tg_jwt t;
	struct tg_err err = { 0, "" };
	struct tg_jwt_expect e = { FX_ISS, FX_AUD, algs, now, 60 };
	char detail[200];
	enum tg_jwt_reason r;

	if (tg_jwt_parse(&t, token, strlen(token), &err))
		return TG_JWT_MALFORMED;
	r = tg_jwt_check(&t, &e, detail, sizeof(detail));
	tg_jwt_release(&t);
	return r;
}

static void test_jwt__key_set_keeps_only_usable_signing_keys(void **state)
{
	struct tg_jwks *k = fixture_keys(fx_jwks);
	struct tg_jwks *none = NULL;
	struct tg_err err = { 0, "" };
	static const char only_bad[] =
		"{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"},"
		"{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
		"{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}";

	(void)state;
	/* rsa-1, ec-1, ec-384; not the HMAC key, the 1024-bit key or the
	 * encryption key. */
	assert_int_equal(tg_jwks_count(k), 3);
	assert_true(tg_jwks_has_kid(k, "rsa-1"));
	assert_true(tg_jwks_has_kid(k, "ec-384"));
	assert_false(tg_jwks_has_kid(k, "hmac"));
	assert_false(tg_jwks_has_kid(k, "rsa-small"));
	assert_false(tg_jwks_has_kid(k, "rsa-enc"));
	tg_jwks_free(k);
	assert_int_equal(tg_jwks_parse(&none, only_bad, strlen(only_bad), &err), TG_EINVALID);
	assert_non_null(strstr(err.msg, "no usable signing key"));
	assert_int_equal(tg_jwks_parse(&none, "[]", 2, &err), TG_EINVALID);
	assert_int_equal(tg_jwks_parse(&none, "{\"keys\":", 8, &err), TG_EINVALID);
	assert_null(none);
}

static void test_jwt__valid_tokens_verify(void **state)
{
	struct tg_jwks *k = fixture_keys(fx_jwks);

	(void)state;
	assert_int_equal(sig_check(k, fx_good_rs256), TG_JWT_OK);
	assert_int_equal(sig_check(k, fx_good_es256), TG_JWT_OK);
	assert_int_equal(sig_check(k, fx_good_es384), TG_JWT_OK);
	/* Without kid, the one RSA key there is. */
	assert_int_equal(sig_check(k, fx_no_kid_rs256), TG_JWT_OK);
	assert_int_equal(claims_check(fx_good_rs256, TG_JWT_RS256, FX_NOW), TG_JWT_OK);
	assert_int_equal(claims_check(fx_good_es256, TG_JWT_ES256, FX_NOW), TG_JWT_OK);
	assert_int_equal(claims_check(fx_aud_list, TG_JWT_RS256, FX_NOW), TG_JWT_OK);
	tg_jwks_free(k);
}

static void test_jwt__forged_tokens_are_refused_for_their_reason(void **state)
{
	struct tg_jwks *k = fixture_keys(fx_jwks);

	(void)state;
	assert_int_equal(sig_check(k, fx_none_alg), TG_JWT_ALG_NOT_ALLOWED);
	assert_int_equal(sig_check(k, fx_hs256_pubkey), TG_JWT_ALG_NOT_ALLOWED);
	assert_int_equal(claims_check(fx_none_alg, TG_JWT_ALL_ALGS, FX_NOW),
			 TG_JWT_ALG_NOT_ALLOWED);
	assert_int_equal(claims_check(fx_hs256_pubkey, TG_JWT_ALL_ALGS, FX_NOW),
			 TG_JWT_ALG_NOT_ALLOWED);
	assert_int_equal(sig_check(k, fx_unknown_kid), TG_JWT_UNKNOWN_KID);
	assert_int_equal(sig_check(k, fx_rsa_key_for_ec_kid), TG_JWT_KEY_TYPE);
	assert_int_equal(sig_check(k, fx_es256_with_p384_kid), TG_JWT_KEY_TYPE);
	assert_int_equal(sig_check(k, fx_rs512_on_rs256_key), TG_JWT_KEY_TYPE);
	assert_int_equal(sig_check(k, fx_bad_signature), TG_JWT_BAD_SIGNATURE);
	assert_int_equal(sig_check(k, fx_wrong_signer), TG_JWT_BAD_SIGNATURE);
	/* A valid ES256 token is refused by an issuer pinned to RS256. */
	assert_int_equal(claims_check(fx_good_es256, TG_JWT_RS256, FX_NOW), TG_JWT_ALG_NOT_ALLOWED);
	assert_int_equal(claims_check(fx_wrong_iss, TG_JWT_RS256, FX_NOW), TG_JWT_WRONG_ISSUER);
	assert_int_equal(claims_check(fx_wrong_aud, TG_JWT_RS256, FX_NOW), TG_JWT_WRONG_AUDIENCE);
	assert_int_equal(claims_check(fx_no_exp, TG_JWT_RS256, FX_NOW), TG_JWT_MALFORMED);
	assert_int_equal(sig_check(k, fx_crit), TG_JWT_MALFORMED);
	tg_jwks_free(k);
}

static void test_jwt__times_have_sixty_seconds_of_leeway(void **state)
{
	(void)state;
	assert_int_equal(claims_check(fx_expired, TG_JWT_RS256, FX_NOW), TG_JWT_EXPIRED);
	assert_int_equal(claims_check(fx_expired_in_leeway, TG_JWT_RS256, FX_NOW), TG_JWT_OK);
	assert_int_equal(claims_check(fx_expired_in_leeway, TG_JWT_RS256, FX_NOW + 31),
			 TG_JWT_EXPIRED);
	assert_int_equal(claims_check(fx_not_yet_valid, TG_JWT_RS256, FX_NOW),
			 TG_JWT_NOT_YET_VALID);
	assert_int_equal(claims_check(fx_not_yet_valid, TG_JWT_RS256, FX_NOW + 240), TG_JWT_OK);
	assert_int_equal(claims_check(fx_issued_in_future, TG_JWT_RS256, FX_NOW),
			 TG_JWT_NOT_YET_VALID);
	/* The good token lives an hour. */
	assert_int_equal(claims_check(fx_good_rs256, TG_JWT_RS256, FX_NOW + 3600 + 60), TG_JWT_OK);
	assert_int_equal(claims_check(fx_good_rs256, TG_JWT_RS256, FX_NOW + 3600 + 61),
			 TG_JWT_EXPIRED);
}

static void test_jwt__malformed_tokens_do_not_parse(void **state)
{
	static const char *const bad[] = {
		"",
		"abc",
		"a.b",
		"a.b.c.d",
		"e30.e30.!!",                               /* {} {} with a bad signature */
		"eyJ0eXAiOiJKV1QifQ.e30.AAAA",              /* no alg */
		"bm90IGpzb24.e30.AAAA",                     /* "not json" */
		"WzFd.e30.AAAA",                            /* [1]: not an object */
		"eyJhbGciOiJSUzI1NiJ9.WzFd.AAAA",           /* claims [1] */
		"eyJhbGciOiJSUzI1NiIsImtpZCI6MX0.e30.AAAA", /* kid 1 */
	};
	struct tg_jwt t;
	struct tg_err err = { 0, "" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tg_jwt_parse(&t, bad[i], strlen(bad[i]), &err), TG_EINVALID);
	assert_int_equal(tg_jwt_parse(&t, fx_good_rs256, strlen(fx_good_rs256), &err), 0);
	assert_int_equal(t.alg, TG_JWT_RS256);
	assert_string_equal(t.kid, "rsa-1");
	assert_string_equal(tg_jwt_claim_str(&t, "branchName"), "main");
	assert_null(tg_jwt_claim_str(&t, "exp"));
	tg_jwt_release(&t);
}

static struct tg_oidc_identity identity(const char *repo, const char *ws, const char *env,
					const char *branch)
{
	struct tg_oidc_identity id;

	memset(&id, 0, sizeof(id));
	id.issuer = (char *)FX_ISS;
	id.repository_uuid = (char *)repo;
	id.workspace_uuid = (char *)ws;
	id.deployment_environment_uuid = (char *)env;
	id.branch = (char *)branch;
	return id;
}

static void test_oidc__rules_pin_repository_or_workspace_and_match_every_field(void **state)
{
	struct tg_oidc_rule rules[] = {
		/* 0: prod deploys from main, reconcile only */
		{ NULL, (char *)"{7D3C5B2A-1111-4f4f-9a9a-0e0e0e0e0e01}", NULL,
		  (char *)"c3c3c3c3-5555-4e4e-9f9f-0a0a0a0a0a05", (char *)"main",
		  TG_API_RECONCILE },
		/* 1: anything in the workspace may suspend from release branches */
		{ (char *)FX_ISS, NULL, (char *)"{0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f}", NULL,
		  (char *)"release/*", TG_API_SUSPEND | TG_API_RESUME },
		/* 2: never matches: pins nothing */
		{ NULL, NULL, NULL, NULL, NULL, TG_API_RECONCILE | TG_API_SUSPEND | TG_API_RESUME },
	};
	struct tg_oidc_identity id = identity("{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}",
					      "{0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f}",
					      "{c3c3c3c3-5555-4e4e-9f9f-0a0a0a0a0a05}", "main");

	(void)state;
	assert_int_equal(tg_oidc_rules_allow(rules, 3, &id, TG_API_RECONCILE), 0);
	assert_int_equal(tg_oidc_rules_allow(rules, 3, &id, TG_API_SUSPEND), -1);
	id.branch = (char *)"release/2.1";
	assert_int_equal(tg_oidc_rules_allow(rules, 3, &id, TG_API_RECONCILE), -1);
	assert_int_equal(tg_oidc_rules_allow(rules, 3, &id, TG_API_SUSPEND), 1);
	assert_int_equal(tg_oidc_rules_allow(rules, 3, &id, TG_API_RESUME), 1);
	/* Another deployment environment, same repository and branch. */
	id = identity("{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}", NULL, "{other}", "main");
	assert_int_equal(tg_oidc_rules_allow(rules, 3, &id, TG_API_RECONCILE), -1);
	/* No environment claim at all. */
	id = identity("{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}", NULL, NULL, "main");
	assert_int_equal(tg_oidc_rules_allow(rules, 3, &id, TG_API_RECONCILE), -1);
	/* Another issuer's token cannot use a rule naming its issuer. */
	id = identity(NULL, "{0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f}", NULL, "release/1");
	id.issuer = (char *)"https://other.example";
	assert_int_equal(tg_oidc_rules_allow(rules, 3, &id, TG_API_SUSPEND), -1);
	/* An identity with nothing matches nothing, not even rule 2. */
	id = identity(NULL, NULL, NULL, NULL);
	assert_int_equal(tg_oidc_rules_allow(rules, 3, &id, TG_API_RECONCILE), -1);
}

static char *write_file(const char *text)
{
	char *path = strdup("/tmp/tg-jwks-XXXXXX");
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs(text, f);
	fclose(f);
	return path;
}

static struct tg_config *issuer_config(const char *jwks_file, long long min_refresh_ms)
{
	struct tg_config *cfg = tg_config_new();

	cfg->oidc_issuers = calloc(1, sizeof(*cfg->oidc_issuers));
	cfg->n_oidc_issuers = 1;
	cfg->oidc_issuers[0].issuer = strdup(FX_ISS);
	cfg->oidc_issuers[0].audience = strdup(FX_AUD);
	cfg->oidc_issuers[0].jwks_file = strdup(jwks_file);
	cfg->oidc_issuers[0].algorithms = TG_JWT_RS256 | TG_JWT_ES256;
	cfg->oidc_issuers[0].refresh_interval_ms = 3600000;
	cfg->oidc_issuers[0].min_refresh_interval_ms = min_refresh_ms;
	cfg->oidc_issuers[0].leeway_ms = 60000;
	return cfg;
}

static enum tg_jwt_reason verify(struct tg_oidc *o, const char *token, struct tg_oidc_identity *id)
{
	char detail[256];

	return tg_oidc_verify(o, token, strlen(token), FX_NOW, id, detail, sizeof(detail));
}

static void test_oidc__verifier_fills_identity_and_refuses_forgeries(void **state)
{
	char *path = write_file(fx_jwks);
	struct tg_config *cfg = issuer_config(path, 100);
	struct tg_oidc *o = tg_oidc_new(cfg);
	struct tg_oidc_identity id;

	(void)state;
	assert_non_null(o);
	assert_int_equal(verify(o, fx_good_rs256, &id), TG_JWT_OK);
	assert_string_equal(id.repository_uuid, "{7d3c5b2a-1111-4f4f-9a9a-0e0e0e0e0e01}");
	assert_string_equal(id.branch, "main");
	assert_string_equal(id.step_uuid, "{e1e1e1e1-2222-4b4b-8c8c-0d0d0d0d0d02}");
	assert_string_equal(id.pipeline_uuid, "{b2b2b2b2-4444-4d4d-8e8e-0b0b0b0b0b04}");
	assert_string_equal(id.deployment_environment_uuid,
			    "{c3c3c3c3-5555-4e4e-9f9f-0a0a0a0a0a05}");
	tg_oidc_identity_release(&id);
	assert_int_equal(verify(o, fx_good_es256, &id), TG_JWT_OK);
	tg_oidc_identity_release(&id);
	/* Pinned to RS256 and ES256: ES384 is refused although the key is there. */
	assert_int_equal(verify(o, fx_good_es384, &id), TG_JWT_ALG_NOT_ALLOWED);
	assert_int_equal(verify(o, fx_none_alg, &id), TG_JWT_ALG_NOT_ALLOWED);
	assert_int_equal(verify(o, fx_hs256_pubkey, &id), TG_JWT_ALG_NOT_ALLOWED);
	assert_int_equal(verify(o, fx_wrong_iss, &id), TG_JWT_WRONG_ISSUER);
	assert_int_equal(verify(o, fx_wrong_aud, &id), TG_JWT_WRONG_AUDIENCE);
	assert_int_equal(verify(o, fx_expired, &id), TG_JWT_EXPIRED);
	assert_int_equal(verify(o, fx_not_yet_valid, &id), TG_JWT_NOT_YET_VALID);
	assert_int_equal(verify(o, fx_bad_signature, &id), TG_JWT_BAD_SIGNATURE);
	assert_int_equal(verify(o, fx_rsa_key_for_ec_kid, &id), TG_JWT_KEY_TYPE);
	assert_int_equal(verify(o, "junk", &id), TG_JWT_MALFORMED);
	assert_null(id.repository_uuid);
	tg_oidc_unref(o);
	tg_config_free(cfg);
	unlink(path);
	free(path);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void test_oidc__unknown_kid_refreshes_the_key_set_once_per_interval(void **state)
{
	char *path = write_file(fx_jwks);
	struct tg_config *cfg = issuer_config(path, 400);
	struct tg_oidc *o = tg_oidc_new(cfg);
	struct tg_oidc_identity id;
	FILE *f;

	(void)state;
	assert_int_equal(verify(o, fx_good_rs256, &id), TG_JWT_OK);
	tg_oidc_identity_release(&id);
	/* The issuer rotates in a new key (rsa-2). */
	f = fopen(path, "w");
	fputs(fx_jwks_b, f);
	fclose(f);
	/* Just after a fetch: the rate limit holds the refresh back. */
	assert_int_equal(verify(o, fx_new_key, &id), TG_JWT_UNKNOWN_KID);
	sleep_ms(450);
	/* Now the unknown kid makes one refresh, and the token verifies. */
	assert_int_equal(verify(o, fx_new_key, &id), TG_JWT_OK);
	tg_oidc_identity_release(&id);
	/* The EC keys left the set with the rotation. */
	assert_int_equal(verify(o, fx_good_es256, &id), TG_JWT_UNKNOWN_KID);
	tg_oidc_unref(o);
	tg_config_free(cfg);
	unlink(path);
	free(path);
}

static void test_oidc__no_key_set_is_unavailable_not_a_crash(void **state)
{
	struct tg_config *cfg = issuer_config("/nonexistent/jwks.json", 100);
	struct tg_oidc *o = tg_oidc_new(cfg);
	struct tg_oidc_identity id;

	(void)state;
	assert_int_equal(verify(o, fx_good_rs256, &id), TG_JWT_JWKS_UNAVAILABLE);
	/* References: the verifier outlives a swap while a request uses it. */
	assert_ptr_equal(tg_oidc_ref(o), o);
	tg_oidc_unref(o);
	tg_oidc_unref(o);
	tg_config_free(cfg);
	/* No issuers, no verifier (and no thread). */
	cfg = tg_config_new();
	assert_null(tg_oidc_new(cfg));
	tg_config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_jwt__key_set_keeps_only_usable_signing_keys),
		cmocka_unit_test(test_jwt__valid_tokens_verify),
		cmocka_unit_test(test_jwt__forged_tokens_are_refused_for_their_reason),
		cmocka_unit_test(test_jwt__times_have_sixty_seconds_of_leeway),
		cmocka_unit_test(test_jwt__malformed_tokens_do_not_parse),
		cmocka_unit_test(
			test_oidc__rules_pin_repository_or_workspace_and_match_every_field),
		cmocka_unit_test(test_oidc__verifier_fills_identity_and_refuses_forgeries),
		cmocka_unit_test(test_oidc__unknown_kid_refreshes_the_key_set_once_per_interval),
		cmocka_unit_test(test_oidc__no_key_set_is_unavailable_not_a_crash),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
