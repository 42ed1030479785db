/*
 * Fuzz target for what a webhook delivery puts in front of the parser:
 * the payload (first byte: Cloud or Data Center, the rest the body), then
 * matching it against syncs' repository URLs and refs, the URL reduction
 * on the same bytes, and the signature check on them as a header.
 * Checks invariants, not only that nothing crashes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/webhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s)
{
	for (; s && *s; s++)
		if ((unsigned char)*s < 0x20)
			abort(); /* payload text reaches logs and JSON: never raw controls */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const urls[] = {
		"https://bitbucket.org/acme/gateway-config.git",
		"git@bitbucket.org:acme/gateway-config.git",
		"ssh://git@bitbucket.acme.internal:7999/plat/gateway-config.git",
		"https://bitbucket.acme.internal/scm/plat/gateway-config.git",
		"file:///srv/git/config.git",
	};
	static const char *const secrets[] = { "s1", "It's a Secret to Everybody" };
	struct tg_webhook_push p;
	struct tg_err err = { 0, "" };
	enum tg_webhook_flavor flavor;
	char *text, *key;

	if (size == 0)
		return 0;
	flavor = data[0] & 1 ? TG_WEBHOOK_DC : TG_WEBHOOK_CLOUD;
	if (tg_webhook_parse_push(&p, flavor, (const char *)data + 1, size - 1, &err) == 0) {
		if (!p.full_name || p.n_changes > TG_WEBHOOK_MAX_CHANGES ||
		    p.n_clone_urls > TG_WEBHOOK_MAX_CLONE_URLS)
			abort();
		check_text(p.full_name);
		check_text(p.actor_id);
		check_text(p.actor_name);
		for (size_t i = 0; i < p.n_changes; i++) {
			if (!p.changes[i].name || !*p.changes[i].name)
				abort();
			check_text(p.changes[i].name);
			check_text(p.changes[i].commit);
		}
		for (size_t i = 0; i < TG_ARRAY_SIZE(urls); i++) {
			const struct tg_webhook_change *c;

			(void)tg_webhook_repo_matches(&p, urls[i], NULL);
			(void)tg_webhook_repo_matches(&p, urls[i], "acme/gateway-config");
			c = tg_webhook_ref_change(&p, TG_REF_BRANCH, "main");
			if (c && (c->is_tag || strcmp(c->name, "main")))
				abort();
		}
		tg_webhook_push_release(&p);
	}
	text = tg_xstrndup((const char *)data + 1, size - 1);
	key = tg_webhook_url_key(text);
	if (key) {
		for (const char *c = key; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				abort(); /* keys are lowercase */
		free(key);
	}
	(void)tg_webhook_signature_match(text, data, size, secrets, 2);
	(void)tg_webhook_uuid_eq(text, "{4b0c5c9e-1f1e-4f7a-9f3d-2c3b1a0e9d8c}");
	free(text);
	return 0;
}
