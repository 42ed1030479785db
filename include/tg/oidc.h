/*
 * Bitbucket Pipelines OIDC (SPEC 7): verifies a step's identity token
 * against its issuer's keys and decides, from a sync's rules, what the
 * pipeline may do.
 *
 * Keys: each issuer's JSON Web Key Set comes from its discovery document
 * (<issuer>/.well-known/openid-configuration, whose "issuer" must match),
 * a jwks_url or a jwks_file.  One thread of this module fetches them
 * (HTTPS only, system CAs or ca_file), at start, every refresh_interval,
 * and when a token names a kid the set lacks (at most once per
 * min_refresh_interval, so random kids cannot make it hammer the issuer).
 * The threads that verify never do I/O: they read the cached set and, for
 * an unknown kid, wait a few seconds for that one refresh.  A failed fetch
 * keeps the previous keys.
 *
 * Verification order: shape, issuer (by "iss", exact), pinned algorithm,
 * key (kid, type and curve), signature, then aud, exp, nbf and iat with
 * the issuer's leeway.  Claims are trusted only after the signature.
 */
#ifndef TG_OIDC_H
#define TG_OIDC_H

#include <stddef.h>

#include "tg/config.h"
#include "tg/jwt.h"

/* Who the token says the caller is, from verified claims.  Strings are
 * owned (valid UTF-8, no control characters), NULL when absent. */
struct tg_oidc_identity {
	char *issuer;
	char *subject; /* sub: {repo}[:{environment}]:{step} */
	char *repository_uuid;
	char *workspace_uuid;
	char *deployment_environment_uuid;
	char *branch; /* branchName */
	char *pipeline_uuid;
	char *step_uuid;
	char *account_uuid;
};
void tg_oidc_identity_release(struct tg_oidc_identity *id);

struct tg_oidc;

/*
 * A verifier for cfg's issuers (copied), NULL when there is none.  Starts
 * the fetch thread, which fetches every issuer's keys at once.  Call after
 * curl_global_init.  The returned object holds one reference.
 */
struct tg_oidc *tg_oidc_new(const struct tg_config *cfg);
/* References: the daemon swaps verifiers on reload while requests still
 * use the old one.  The last unref stops the thread and frees. */
struct tg_oidc *tg_oidc_ref(struct tg_oidc *o);
void tg_oidc_unref(struct tg_oidc *o);

/*
 * Verifies a bearer token.  now_s is Unix time.  Returns TG_JWT_OK and
 * fills id (release it), or the reason it was refused with a message for
 * the log in detail (size n): never the token.
 */
enum tg_jwt_reason tg_oidc_verify(struct tg_oidc *o, const char *token, size_t len, long long now_s,
				  struct tg_oidc_identity *id, char *detail, size_t n);

/*
 * Index of the first rule that lets id do action (one TG_API_* bit), or
 * -1.  A rule matches when every field it sets matches the identity; a
 * rule pinning neither repository nor workspace never matches.  Pure.
 */
int tg_oidc_rules_allow(const struct tg_oidc_rule *rules, size_t n,
			const struct tg_oidc_identity *id, unsigned action);

#endif
