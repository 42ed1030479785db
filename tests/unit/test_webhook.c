/* Bitbucket webhooks: real-shaped Cloud and Data Center payloads, matching
 * repositories in every URL form, refs, signatures, secret rotation and
 * replayed deliveries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tg/webhook.h"

/* Bitbucket Cloud repo:push, as Atlassian documents it ("Event payloads"),
 * with the links and commit lists trimmed: a branch update, a new tag
 * and a deleted branch in one push. */
static const char cloud_push[] =
	"{\"push\":{\"changes\":["
	"{\"old\":{\"type\":\"branch\",\"name\":\"main\",\"target\":{\"type\":\"commit\","
	"\"hash\":\"1e65c05c1d5171631d92438a13901ca7dae9618c\"},\"links\":{\"html\":{\"href\":"
	"\"https://bitbucket.org/acme/gateway-config/branch/main\"}}},"
	"\"new\":{\"type\":\"branch\",\"name\":\"main\",\"default_merge_strategy\":\"merge_commit\","
	"\"target\":{\"type\":\"commit\",\"hash\":\"709d658dc5b6d6afcd46049c2f332ee3f515a67d\","
	"\"date\":\"2026-01-01T10:00:00+00:00\",\"author\":{\"type\":\"author\",\"raw\":\"Ada Tester "
	"<ada@example.com>\"},\"message\":\"Add echo API\\n\",\"summary\":{\"raw\":\"Add echo API\\n\","
	"\"markup\":\"markdown\",\"html\":\"<p>Add echo API</p>\",\"type\":\"rendered\"},"
	"\"parents\":[{\"type\":\"commit\",\"hash\":\"1e65c05c1d5171631d92438a13901ca7dae9618c\"}]}},"
	"\"created\":false,\"forced\":false,\"closed\":false,\"truncated\":false,"
	"\"commits\":[{\"type\":\"commit\",\"hash\":\"709d658dc5b6d6afcd46049c2f332ee3f515a67d\","
	"\"message\":\"Add echo API\\n\"}]},"
	"{\"old\":null,\"new\":{\"type\":\"tag\",\"name\":\"v1.4.0\",\"target\":{\"type\":\"commit\","
	"\"hash\":\"709d658dc5b6d6afcd46049c2f332ee3f515a67d\"}},\"created\":true,\"forced\":false,"
	"\"closed\":false},"
	"{\"old\":{\"type\":\"branch\",\"name\":\"feature/old\",\"target\":{\"type\":\"commit\","
	"\"hash\":\"aaaa658dc5b6d6afcd46049c2f332ee3f515a67d\"}},\"new\":null,\"created\":false,"
	"\"forced\":false,\"closed\":true}]},"
	"\"repository\":{\"type\":\"repository\",\"full_name\":\"acme/gateway-config\","
	"\"name\":\"gateway-config\",\"uuid\":\"{4b0c5c9e-1f1e-4f7a-9f3d-2c3b1a0e9d8c}\","
	"\"is_private\":true,\"scm\":\"git\",\"links\":{\"self\":{\"href\":"
	"\"https://api.bitbucket.org/2.0/repositories/acme/gateway-config\"},\"html\":{\"href\":"
	"\"https://bitbucket.org/acme/gateway-config\"},\"avatar\":{\"href\":"
	"\"https://bytebucket.org/ravatar/%7B4b0c5c9e%7D?ts=default\"}},"
	"\"workspace\":{\"type\":\"workspace\",\"slug\":\"acme\",\"name\":\"Acme\","
	"\"uuid\":\"{0f8e7a2c-54d2-4c55-8c4a-1a2b3c4d5e6f}\"},"
	"\"project\":{\"type\":\"project\",\"key\":\"PLAT\",\"name\":\"Platform\"}},"
	"\"actor\":{\"type\":\"user\",\"display_name\":\"Ada Tester\","
	"\"uuid\":\"{d2a6f0b8-7e4c-4d0a-9b1e-5f6a7b8c9d0e}\",\"account_id\":\"557058:0d6b1c2e\","
	"\"nickname\":\"ada\"}}";

/* Bitbucket Data Center repo:refs_changed (8.x shape: with links). */
static const char dc_push[] =
	"{\"eventKey\":\"repo:refs_changed\",\"date\":\"2026-01-01T10:00:00+0000\","
	"\"actor\":{\"name\":\"jdoe\",\"emailAddress\":\"jdoe@example.com\",\"id\":500,"
	"\"displayName\":\"Jane Doe\",\"active\":true,\"slug\":\"jdoe\",\"type\":\"NORMAL\"},"
	"\"repository\":{\"slug\":\"gateway-config\",\"id\":656,\"name\":\"gateway-config\","
	"\"hierarchyId\":\"e3c939f9ef4a7fae272e\",\"scmId\":\"git\",\"state\":\"AVAILABLE\","
	"\"statusMessage\":\"Available\",\"forkable\":true,\"project\":{\"key\":\"PLAT\",\"id\":389,"
	"\"name\":\"Platform\",\"public\":false,\"type\":\"NORMAL\"},\"public\":false,"
	"\"links\":{\"clone\":[{\"href\":\"ssh://git@bitbucket.acme.internal:7999/plat/gateway-config.git\","
	"\"name\":\"ssh\"},{\"href\":\"https://bitbucket.acme.internal/scm/plat/gateway-config.git\","
	"\"name\":\"http\"}],\"self\":[{\"href\":"
	"\"https://bitbucket.acme.internal/projects/PLAT/repos/gateway-config/browse\"}]}},"
	"\"changes\":[{\"ref\":{\"id\":\"refs/heads/main\",\"displayId\":\"main\",\"type\":\"BRANCH\"},"
	"\"refId\":\"refs/heads/main\",\"fromHash\":\"f09c8889a2d234985734958795a31589cd91ffda\","
	"\"toHash\":\"22671f0349857934857983457983475ec39f196b\",\"type\":\"UPDATE\"},"
	"{\"ref\":{\"id\":\"refs/tags/v2.0.0\",\"displayId\":\"v2.0.0\",\"type\":\"TAG\"},"
	"\"refId\":\"refs/tags/v2.0.0\",\"fromHash\":\"0000000000000000000000000000000000000000\","
	"\"toHash\":\"22671f0349857934857983457983475ec39f196b\",\"type\":\"ADD\"},"
	"{\"ref\":{\"id\":\"refs/heads/old\",\"displayId\":\"old\",\"type\":\"BRANCH\"},"
	"\"refId\":\"refs/heads/old\",\"fromHash\":\"f09c8889a2d234985734958795a31589cd91ffda\","
	"\"toHash\":\"0000000000000000000000000000000000000000\",\"type\":\"DELETE\"}]}";

/* Bitbucket Server 5.x-7.x: no links in the repository. */
static const char dc_push_no_links[] =
	"{\"eventKey\":\"repo:refs_changed\",\"date\":\"2017-09-19T09:45:32+1000\","
	"\"actor\":{\"name\":\"admin\",\"emailAddress\":\"admin@example.com\",\"id\":1,"
	"\"displayName\":\"Administrator\",\"active\":true,\"slug\":\"admin\",\"type\":\"NORMAL\"},"
	"\"repository\":{\"slug\":\"repository\",\"id\":84,\"name\":\"repository\",\"scmId\":\"git\","
	"\"state\":\"AVAILABLE\",\"statusMessage\":\"Available\",\"forkable\":true,"
	"\"project\":{\"key\":\"PROJ\",\"id\":84,\"name\":\"project\",\"public\":false,"
	"\"type\":\"NORMAL\"},\"public\":false},"
	"\"changes\":[{\"ref\":{\"id\":\"refs/heads/master\",\"displayId\":\"master\","
	"\"type\":\"BRANCH\"},\"refId\":\"refs/heads/master\","
	"\"fromHash\":\"ecddabb624f6f5ba43816f5926e580a5f680a932\","
	"\"toHash\":\"178864a7d521b6f5e720b386b2c2b0ef8563e0dc\",\"type\":\"UPDATE\"}]}";

static void test_webhook__event_keys(void **state)
{
	enum tg_webhook_flavor f = TG_WEBHOOK_DC;

	(void)state;
	assert_int_equal(tg_webhook_event_kind("repo:push", &f), TG_WEBHOOK_PUSH);
	assert_int_equal(f, TG_WEBHOOK_CLOUD);
	assert_int_equal(tg_webhook_event_kind("repo:refs_changed", &f), TG_WEBHOOK_PUSH);
	assert_int_equal(f, TG_WEBHOOK_DC);
	assert_int_equal(tg_webhook_event_kind("diagnostics:ping", &f), TG_WEBHOOK_PING);
	assert_int_equal(tg_webhook_event_kind("pullrequest:fulfilled", &f), TG_WEBHOOK_OTHER);
	assert_int_equal(tg_webhook_event_kind("pr:merged", &f), TG_WEBHOOK_OTHER);
	assert_int_equal(tg_webhook_event_kind(NULL, &f), TG_WEBHOOK_OTHER);
}

static void test_webhook__cloud_push_parses(void **state)
{
	struct tg_webhook_push p;
	struct tg_err err = { 0, "" };

	(void)state;
	assert_int_equal(
		tg_webhook_parse_push(&p, TG_WEBHOOK_CLOUD, cloud_push, strlen(cloud_push), &err),
		0);
	assert_string_equal(p.full_name, "acme/gateway-config");
	assert_string_equal(p.uuid, "{4b0c5c9e-1f1e-4f7a-9f3d-2c3b1a0e9d8c}");
	assert_string_equal(p.html_host, "bitbucket.org");
	assert_string_equal(p.actor_id, "{d2a6f0b8-7e4c-4d0a-9b1e-5f6a7b8c9d0e}");
	assert_string_equal(p.actor_name, "Ada Tester");
	assert_int_equal(p.n_changes, 3);
	assert_false(p.changes[0].is_tag);
	assert_string_equal(p.changes[0].name, "main");
	assert_string_equal(p.changes[0].commit, "709d658dc5b6d6afcd46049c2f332ee3f515a67d");
	assert_true(p.changes[1].is_tag);
	assert_string_equal(p.changes[1].name, "v1.4.0");
	assert_string_equal(p.changes[2].name, "feature/old");
	assert_null(p.changes[2].commit); /* deleted */
	tg_webhook_push_release(&p);
}

static void test_webhook__data_center_push_parses(void **state)
{
	struct tg_webhook_push p;
	struct tg_err err = { 0, "" };

	(void)state;
	assert_int_equal(tg_webhook_parse_push(&p, TG_WEBHOOK_DC, dc_push, strlen(dc_push), &err),
			 0);
	assert_string_equal(p.full_name, "PLAT/gateway-config");
	assert_null(p.uuid);
	assert_int_equal(p.n_clone_urls, 2);
	assert_string_equal(p.actor_id, "jdoe");
	assert_string_equal(p.actor_name, "Jane Doe");
	assert_int_equal(p.n_changes, 3);
	assert_string_equal(p.changes[0].name, "main");
	assert_string_equal(p.changes[0].commit, "22671f0349857934857983457983475ec39f196b");
	assert_true(p.changes[1].is_tag);
	assert_string_equal(p.changes[1].name, "v2.0.0");
	assert_string_equal(p.changes[2].name, "old");
	assert_null(p.changes[2].commit);
	tg_webhook_push_release(&p);
}

static void test_webhook__malformed_payloads_are_refused(void **state)
{
	static const char *const cloud_bad[] = {
		"",
		"not json",
		"[]",
		"{}",
		"{\"repository\":{}}",
		"{\"repository\":{\"full_name\":\"a/b\"}}", /* no push.changes */
		"{\"repository\":{\"full_name\":\"a/b\"},\"push\":{\"changes\":{}}}",
		"{\"repository\":{\"full_name\":7},\"push\":{\"changes\":[]}}",
	};
	static const char *const dc_bad[] = {
		"{\"repository\":{\"slug\":\"r\"},\"changes\":[]}", /* no project key */
		"{\"repository\":{\"slug\":\"r\",\"project\":{\"key\":\"P\"}}}", /* no changes */
	};
	static const char nul[] =
		"{\"repository\":{\"full_name\":\"a/b\"},\"push\":{\"changes\":[]}}\0x";
	struct tg_webhook_push p;
	struct tg_err err = { 0, "" };

	(void)state;
	for (size_t i = 0; i < sizeof(cloud_bad) / sizeof(cloud_bad[0]); i++)
		assert_int_equal(tg_webhook_parse_push(&p, TG_WEBHOOK_CLOUD, cloud_bad[i],
						       strlen(cloud_bad[i]), &err),
				 TG_EINVALID);
	for (size_t i = 0; i < sizeof(dc_bad) / sizeof(dc_bad[0]); i++)
		assert_int_equal(tg_webhook_parse_push(&p, TG_WEBHOOK_DC, dc_bad[i],
						       strlen(dc_bad[i]), &err),
				 TG_EINVALID);
	assert_int_equal(tg_webhook_parse_push(&p, TG_WEBHOOK_CLOUD, nul, sizeof(nul) - 1, &err),
			 TG_EINVALID);
	/* An empty push is valid and changes nothing. */
	assert_int_equal(tg_webhook_parse_push(&p, TG_WEBHOOK_CLOUD, nul, strlen(nul), &err), 0);
	assert_int_equal(p.n_changes, 0);
	tg_webhook_push_release(&p);
}

static void test_webhook__url_forms_reduce_to_one_key(void **state)
{
	static const char *const same[] = {
		"https://bitbucket.org/acme/gateway-config.git",
		"https://bitbucket.org/acme/gateway-config",
		"https://x-token-auth:secret@bitbucket.org/acme/gateway-config.git",
		"https://Ada@BitBucket.org:443/Acme/Gateway-Config.git/",
		"ssh://git@bitbucket.org/acme/gateway-config.git",
		"ssh://git@bitbucket.org:22/acme/gateway-config.git",
		"git@bitbucket.org:acme/gateway-config.git",
		"bitbucket.org:acme/gateway-config",
	};
	char *k;

	(void)state;
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		k = tg_webhook_url_key(same[i]);
		assert_non_null(k);
		assert_string_equal(k, "bitbucket.org/acme/gateway-config");
		free(k);
	}
	k = tg_webhook_url_key("ssh://git@bitbucket.acme.internal:7999/plat/gateway-config.git");
	assert_string_equal(k, "bitbucket.acme.internal:7999/plat/gateway-config");
	free(k);
	k = tg_webhook_url_key("http://[::1]:8080/scm/plat/x.git");
	assert_string_equal(k, "[::1]:8080/scm/plat/x");
	free(k);
	assert_null(tg_webhook_url_key("file:///srv/git/config.git"));
	assert_null(tg_webhook_url_key("/srv/git/config.git"));
	assert_null(tg_webhook_url_key("./config"));
	assert_null(tg_webhook_url_key(""));
	assert_null(tg_webhook_url_key(NULL));
}

static void test_webhook__repositories_match_in_every_form(void **state)
{
	struct tg_webhook_push c, d, old;
	struct tg_err err = { 0, "" };

	(void)state;
	assert_int_equal(
		tg_webhook_parse_push(&c, TG_WEBHOOK_CLOUD, cloud_push, strlen(cloud_push), &err),
		0);
	assert_int_equal(tg_webhook_parse_push(&d, TG_WEBHOOK_DC, dc_push, strlen(dc_push), &err),
			 0);
	assert_int_equal(tg_webhook_parse_push(&old, TG_WEBHOOK_DC, dc_push_no_links,
					       strlen(dc_push_no_links), &err),
			 0);
	/* Cloud: the full name on bitbucket.org, any URL form. */
	assert_true(
		tg_webhook_repo_matches(&c, "https://bitbucket.org/acme/gateway-config.git", NULL));
	assert_true(tg_webhook_repo_matches(&c, "git@bitbucket.org:ACME/gateway-config.git", NULL));
	assert_false(tg_webhook_repo_matches(&c, "https://bitbucket.org/acme/other.git", NULL));
	assert_false(tg_webhook_repo_matches(&c, "https://mirror.example/acme/gateway-config.git",
					     NULL));
	assert_false(tg_webhook_repo_matches(&c, "file:///tmp/acme/gateway-config", NULL));
	/* Explicit: the full name or the uuid, with or without braces. */
	assert_true(tg_webhook_repo_matches(&c, "file:///tmp/x.git", "Acme/Gateway-Config"));
	assert_true(tg_webhook_repo_matches(&c, "file:///tmp/x.git",
					    "4B0C5C9E-1F1E-4F7A-9F3D-2C3B1A0E9D8C"));
	assert_true(tg_webhook_repo_matches(&c, NULL, "{4b0c5c9e-1f1e-4f7a-9f3d-2c3b1a0e9d8c}"));
	assert_false(tg_webhook_repo_matches(&c, "https://bitbucket.org/acme/gateway-config.git",
					     "acme/other")); /* explicit decides alone */
	/* Data Center: a clone link, http or ssh. */
	assert_true(tg_webhook_repo_matches(
		&d, "https://bitbucket.acme.internal/scm/PLAT/gateway-config.git", NULL));
	assert_true(tg_webhook_repo_matches(
		&d, "https://ci:pw@bitbucket.acme.internal/scm/plat/gateway-config", NULL));
	assert_true(tg_webhook_repo_matches(
		&d, "ssh://git@bitbucket.acme.internal:7999/plat/gateway-config.git", NULL));
	assert_false(tg_webhook_repo_matches(
		&d, "ssh://git@bitbucket.acme.internal/plat/gateway-config.git", NULL));
	assert_false(tg_webhook_repo_matches(
		&d, "https://other.internal/scm/plat/gateway-config.git", NULL));
	assert_true(tg_webhook_repo_matches(&d, "file:///x", "plat/gateway-config"));
	/* Older payloads without links: project/slug at the end of the path. */
	assert_true(
		tg_webhook_repo_matches(&old, "https://git.example/scm/proj/repository.git", NULL));
	assert_false(tg_webhook_repo_matches(&old, "https://git.example/scm/proj/other.git", NULL));
	tg_webhook_push_release(&c);
	tg_webhook_push_release(&d);
	tg_webhook_push_release(&old);
}

static void test_webhook__refs_match_the_followed_branch_or_tag(void **state)
{
	struct tg_webhook_push c;
	struct tg_err err = { 0, "" };
	const struct tg_webhook_change *ch;

	(void)state;
	assert_int_equal(
		tg_webhook_parse_push(&c, TG_WEBHOOK_CLOUD, cloud_push, strlen(cloud_push), &err),
		0);
	ch = tg_webhook_ref_change(&c, TG_REF_BRANCH, "main");
	assert_non_null(ch);
	assert_string_equal(ch->commit, "709d658dc5b6d6afcd46049c2f332ee3f515a67d");
	assert_non_null(tg_webhook_ref_change(&c, TG_REF_TAG, "v1.4.0"));
	assert_null(tg_webhook_ref_change(&c, TG_REF_BRANCH, "v1.4.0")); /* a tag, not a branch */
	assert_null(tg_webhook_ref_change(&c, TG_REF_TAG, "main"));
	assert_null(tg_webhook_ref_change(&c, TG_REF_BRANCH, "Main"));
	assert_non_null(
		tg_webhook_ref_change(&c, TG_REF_BRANCH, "feature/old")); /* deleted: still news */
	assert_null(tg_webhook_ref_change(&c, TG_REF_COMMIT,
					  "709d658dc5b6d6afcd46049c2f332ee3f515a67d"));
	tg_webhook_push_release(&c);
}

static void test_webhook__signature_is_hmac_sha256_of_the_raw_body(void **state)
{
	/* GitHub's published test vector for the same scheme. */
	static const char body[] = "Hello, World!";
	static const char *const secrets[] = { "wrong", "It's a Secret to Everybody" };
	static const char good[] =
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
	static const char upper[] =
		"SHA256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17";

	(void)state;
	assert_int_equal(tg_webhook_signature_match(good, body, strlen(body), secrets, 2), 1);
	assert_int_equal(tg_webhook_signature_match(upper, body, strlen(body), secrets, 2), 1);
	assert_int_equal(tg_webhook_signature_match(good, body, strlen(body), secrets, 1), -1);
	assert_int_equal(tg_webhook_signature_match(good, "Hello, World?", 13, secrets, 2), -1);
	assert_int_equal(tg_webhook_signature_match(NULL, body, strlen(body), secrets, 2), -1);
	assert_int_equal(tg_webhook_signature_match("sha1=757107ea0eb2509fc211221cce984b8a37570b6d",
						    body, strlen(body), secrets, 2),
			 -1);
	assert_int_equal(
		tg_webhook_signature_match("sha256=757107ea", body, strlen(body), secrets, 2), -1);
	assert_int_equal(
		tg_webhook_signature_match(
			"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g",
			body, strlen(body), secrets, 2),
		-1);
	assert_int_equal(
		tg_webhook_signature_match(
			"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17 ",
			body, strlen(body), secrets, 2),
		-1);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	fputs(text, f);
	fclose(f);
}

static void test_webhook__secrets_rotate_with_an_overlap(void **state)
{
	static const char body[] = "Hello, World!";
	static const char sig_everybody[] =
		"sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
	char path[] = "/tmp/tg-hook-secret-XXXXXX";
	struct tg_webhook_keys *k = tg_webhook_keys_new();
	struct tg_err err = { 0, "" };
	int fd = mkstemp(path), prev = 0;

	(void)state;
	close(fd);
	/* Missing, then empty: errors, not "bad signature". */
	unlink(path);
	assert_int_equal(
		tg_webhook_keys_check(k, path, 1000, 0, sig_everybody, body, 13, &prev, &err),
		TG_ENOTFOUND);
	write_text(path, "\n\n");
	assert_int_equal(
		tg_webhook_keys_check(k, path, 1000, 0, sig_everybody, body, 13, &prev, &err),
		TG_EINVALID);
	assert_null(strstr(err.msg, "Secret"));
	/* One secret per line; a staged second secret is accepted too. */
	write_text(path, "first-secret\r\nIt's a Secret to Everybody\n");
	assert_int_equal(
		tg_webhook_keys_check(k, path, 1000, 10, sig_everybody, body, 13, &prev, &err), 0);
	assert_false(prev);
	/* Rotated: the old file's secrets stay valid for the overlap only. */
	write_text(path, "a brand new secret, longer than before\n");
	assert_int_equal(
		tg_webhook_keys_check(k, path, 1000, 100, sig_everybody, body, 13, &prev, &err), 0);
	assert_true(prev);
	assert_int_equal(
		tg_webhook_keys_check(k, path, 1000, 1099, sig_everybody, body, 13, &prev, &err),
		0);
	assert_int_equal(
		tg_webhook_keys_check(k, path, 1000, 1100, sig_everybody, body, 13, &prev, &err),
		TG_EAUTH);
	assert_int_equal(
		tg_webhook_keys_check(k, path, 1000, 50, sig_everybody, body, 13, &prev, &err),
		TG_EAUTH); /* forgotten, not merely expired */
	/* Rewriting the same secrets is not a rotation. */
	write_text(path, "It's a Secret to Everybody\n");
	assert_int_equal(
		tg_webhook_keys_check(k, path, 0, 2000, sig_everybody, body, 13, &prev, &err), 0);
	write_text(path, "It's a Secret to Everybody\n\n");
	assert_int_equal(
		tg_webhook_keys_check(k, path, 0, 3000, sig_everybody, body, 13, &prev, &err), 0);
	assert_false(prev);
	tg_webhook_keys_free(k);
	unlink(path);
}

static void test_webhook__deliveries_are_served_once_in_bounded_memory(void **state)
{
	struct tg_webhook_seen *s = tg_webhook_seen_new(2);

	(void)state;
	assert_false(tg_webhook_seen_check(s, "d1"));
	assert_true(tg_webhook_seen_check(s, "d1"));
	assert_false(tg_webhook_seen_check(s, "d2"));
	assert_false(tg_webhook_seen_check(s, "d3")); /* evicts d1 */
	assert_true(tg_webhook_seen_check(s, "d3"));
	assert_true(tg_webhook_seen_check(s, "d2"));
	assert_false(tg_webhook_seen_check(s, "d1"));
	tg_webhook_seen_free(s);
}

static void test_webhook__uuids_compare_without_braces_or_case(void **state)
{
	(void)state;
	assert_true(tg_webhook_uuid_eq("{AbC}", "abc"));
	assert_true(tg_webhook_uuid_eq("abc", "{ABC}"));
	assert_false(tg_webhook_uuid_eq("{abc}", "{abcd}"));
	assert_false(tg_webhook_uuid_eq("{}", "{}"));
	assert_false(tg_webhook_uuid_eq(NULL, "abc"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_webhook__event_keys),
		cmocka_unit_test(test_webhook__cloud_push_parses),
		cmocka_unit_test(test_webhook__data_center_push_parses),
		cmocka_unit_test(test_webhook__malformed_payloads_are_refused),
		cmocka_unit_test(test_webhook__url_forms_reduce_to_one_key),
		cmocka_unit_test(test_webhook__repositories_match_in_every_form),
		cmocka_unit_test(test_webhook__refs_match_the_followed_branch_or_tag),
		cmocka_unit_test(test_webhook__signature_is_hmac_sha256_of_the_raw_body),
		cmocka_unit_test(test_webhook__secrets_rotate_with_an_overlap),
		cmocka_unit_test(test_webhook__deliveries_are_served_once_in_bounded_memory),
		cmocka_unit_test(test_webhook__uuids_compare_without_braces_or_case),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
