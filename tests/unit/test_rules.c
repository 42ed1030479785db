/* Unit tests for controller/rules.c: each rule failing and passing, with
 * the exact message and location, host spellings, configuration errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/buf.h"
#include "tg/common.h"
#include "tg/desired.h"
#include "tg/plan.h"
#include "tg/hostclass.h"
#include "tg/rules.h"
#include "tg/yaml.h"

static struct tg_buf config_errors;

static void on_problem(void *ctx, const char *path, const char *msg)
{
	(void)ctx;
	tg_buf_printf(&config_errors, "%s: %s\n", path, msg);
}

/* Rules from the YAML of a `rules:` section; NULL (and config_errors
 * filled) when they do not parse. */
static struct tg_rules *rules_from(const char *yaml)
{
	struct tg_docs docs = { 0 };
	struct tg_problems p;
	struct tg_rules *r = NULL;

	tg_problems_init(&p);
	tg_buf_release(&config_errors);
	tg_buf_init(&config_errors, 0);
	assert_int_equal(tg_yaml_parse(&docs, yaml, strlen(yaml), "rules.yaml", &p), 0);
	assert_int_equal(docs.len, 1);
	tg_rules_parse(&r, docs.items[0].json, on_problem, NULL);
	tg_docs_release(&docs);
	tg_problems_release(&p);
	return r;
}

/* The text of every problem the rules find in one file. */
static char *check(const char *rules_yaml, const char *file, const char *data)
{
	struct tg_load_opts opts = { 0 };
	struct tg_desired *d = NULL;
	struct tg_problems p;
	struct tg_buf text = TG_BUF_INIT;
	struct tg_rules *r = rules_from(rules_yaml);

	assert_non_null(r);
	opts.keep_positions = 1;
	tg_problems_init(&p);
	assert_int_equal(tg_desired_load_buffer(&d, &p, &opts, file, data, strlen(data)), 0);
	assert_int_equal(p.len, 0); /* the object itself is valid */
	tg_rules_check(r, d, &p);
	tg_problems_sort(&p);
	tg_problems_format_text(&p, &text);
	tg_problems_release(&p);
	tg_desired_free(d);
	tg_rules_free(r);
	return tg_buf_detach(&text);
}

static void expect(const char *rules_yaml, const char *file, const char *data, const char *want)
{
	char *got = check(rules_yaml, file, data);

	assert_string_equal(got, want);
	free(got);
}

#define KEYLESS_API                                         \
	"{\n"                                               \
	"  \"api_id\": \"pay\",\n"                          \
	"  \"name\": \"pay\",\n"                            \
	"  \"use_keyless\": true,\n"                        \
	"  \"proxy\": {\n"                                  \
	"    \"listen_path\": \"/pay/\",\n"                 \
	"    \"target_url\": \"https://pay.example.com\"\n" \
	"  }\n"                                             \
	"}\n"

#define KEYED_API                                           \
	"{\n"                                               \
	"  \"api_id\": \"pay\",\n"                          \
	"  \"name\": \"pay\",\n"                            \
	"  \"use_keyless\": false,\n"                       \
	"  \"proxy\": {\n"                                  \
	"    \"listen_path\": \"/pay/\",\n"                 \
	"    \"target_url\": \"https://pay.example.com\"\n" \
	"  }\n"                                             \
	"}\n"

/* --- auth_required ---------------------------------------------------------- */

static void test_rules__auth_required_refuses_a_keyless_classic_api(void **state)
{
	(void)state;
	expect("auth_required: true", "apis/pay.json", KEYLESS_API,
	       "apis/pay.json:4:3: error: auth_required: api 'pay' is keyless (use_keyless is true)\n");
}

static void test_rules__auth_required_passes_a_keyed_api(void **state)
{
	(void)state;
	expect("auth_required: true", "apis/pay.json", KEYED_API, "");
}

static const char oas_keyless[] = "openapi: 3.0.3\n"
				  "info: {title: t, version: '1'}\n"
				  "paths: {}\n"
				  "x-tyk-api-gateway:\n"
				  "  info: {id: oas1, name: o, state: {active: true}}\n"
				  "  upstream: {url: 'https://up.example.com'}\n"
				  "  server:\n"
				  "    listenPath: {value: /o/}\n"
				  "    authentication: {enabled: false}\n";

static const char oas_no_security[] = "openapi: 3.0.3\n"
				      "info: {title: t, version: '1'}\n"
				      "paths: {}\n"
				      "x-tyk-api-gateway:\n"
				      "  info: {id: oas1, name: o, state: {active: true}}\n"
				      "  upstream: {url: 'https://up.example.com'}\n"
				      "  server:\n"
				      "    listenPath: {value: /o/}\n"
				      "    authentication: {enabled: true}\n";

static const char oas_keyed[] = "openapi: 3.0.3\n"
				"info: {title: t, version: '1'}\n"
				"paths: {}\n"
				"security: [{key: []}]\n"
				"x-tyk-api-gateway:\n"
				"  info: {id: oas1, name: o, state: {active: true}}\n"
				"  upstream: {url: 'https://up.example.com'}\n"
				"  server:\n"
				"    listenPath: {value: /o/}\n"
				"    authentication: {enabled: true}\n";

static void test_rules__auth_required_refuses_keyless_oas(void **state)
{
	(void)state;
	expect("auth_required: {level: error}", "apis/o.yaml", oas_keyless,
	       "apis/o.yaml:9:22: error: auth_required: api 'oas1' is keyless "
	       "(x-tyk-api-gateway.server.authentication.enabled is not true)\n");
	expect("auth_required: {level: warn}", "apis/o.yaml", oas_no_security,
	       "apis/o.yaml:1:1: warning: auth_required: api 'oas1' has no security requirement "
	       "(security is missing or empty)\n");
	expect("auth_required: true", "apis/o.yaml", oas_keyed, "");
}

static void test_rules__except_matches_file_or_id(void **state)
{
	(void)state;
	expect("auth_required: {except: ['apis/*']}", "apis/pay.json", KEYLESS_API, "");
	expect("auth_required: {except: [pa?]}", "apis/pay.json", KEYLESS_API, "");
	expect("auth_required: {except: ['apis/public/*']}", "apis/pay.json", KEYLESS_API,
	       "apis/pay.json:4:3: error: auth_required: api 'pay' is keyless (use_keyless is true)\n");
}

/* --- policy_limits ---------------------------------------------------------- */

static void test_rules__policy_limits_needs_a_rate_limit(void **state)
{
	(void)state;
	expect("policy_limits: true", "policies/p.yaml", "id: p1\nrate: 0\nper: 60\n",
	       "policies/p.yaml:2:1: error: policy_limits: policy 'p1' has no rate limit "
	       "(rate and per must be positive)\n");
	expect("policy_limits: true", "policies/p.yaml", "id: p1\nrate: 10\n",
	       "policies/p.yaml:1:1: error: policy_limits: policy 'p1' has no rate limit "
	       "(rate and per must be positive)\n");
	expect("policy_limits: true", "policies/p.yaml", "id: p1\nrate: 10\nper: 1\n", "");
}

static void test_rules__policy_limits_enforces_maxima(void **state)
{
	const char *r = "policy_limits: {max_requests_per_second: 100, require_quota: true, "
			"max_quota: 1000}";

	(void)state;
	expect(r, "policies/p.yaml", "id: p1\nrate: 6001\nper: 60\nquota_max: 5000\n",
	       "policies/p.yaml:2:1: error: policy_limits: policy 'p1' allows 100.017 requests per "
	       "second in policy, more than max_requests_per_second 100\n"
	       "policies/p.yaml:4:1: error: policy_limits: policy 'p1' has quota_max 5000 in policy, "
	       "more than max_quota 1000\n");
	expect(r, "policies/p.yaml", "id: p1\nrate: 10\nper: 1\nquota_max: -1\n",
	       "policies/p.yaml:4:1: error: policy_limits: policy 'p1' has no quota "
	       "(quota_max must be positive)\n");
	expect(r, "policies/p.yaml",
	       "id: p1\nrate: 10\nper: 1\nquota_max: 10\naccess_rights:\n  a:\n    api_id: a\n"
	       "    limit: {rate: 500, per: 1}\n",
	       "policies/p.yaml:8:13: error: policy_limits: policy 'p1' allows 500 requests per "
	       "second in access_rights.a.limit, more than max_requests_per_second 100\n");
	expect(r, "policies/p.yaml", "id: p1\nrate: 6000\nper: 60\nquota_max: 1000\n", "");
}

/* --- upstream_allow --------------------------------------------------------- */

static void test_rules__host_classes_see_through_spellings(void **state)
{
	static const struct {
		const char *host, *cls, *canon;
	} cases[] = {
		{ "169.254.169.254", "link-local", "169.254.169.254" },
		{ "2852039166", "link-local", "169.254.169.254" },
		{ "0xA9FEA9FE", "link-local", "169.254.169.254" },
		{ "0251.0376.0251.0376", "link-local", "169.254.169.254" },
		{ "169.254.43518", "link-local", "169.254.169.254" },
		{ "::ffff:169.254.169.254", "link-local", "::ffff:169.254.169.254" },
		{ "::ffff:a9fe:a9fe", "link-local", "::ffff:169.254.169.254" },
		{ "64:ff9b::a9fe:a9fe", "link-local", "64:ff9b::a9fe:a9fe" },
		{ "2002:a9fe:a9fe::1", "link-local", "2002:a9fe:a9fe::1" },
		{ "fe80::1%eth0", "link-local", "fe80::1" },
		{ "metadata.google.internal", "link-local", "metadata.google.internal" },
		{ "METADATA.google.internal.", "link-local", "metadata.google.internal" },
		{ "127.0.0.1", "loopback", "127.0.0.1" },
		{ "127.1", "loopback", "127.0.0.1" },
		{ "0", "loopback", "0.0.0.0" },
		{ "0x7f000001", "loopback", "127.0.0.1" },
		{ "::1", "loopback", "::1" },
		{ "::ffff:127.0.0.1", "loopback", "::ffff:127.0.0.1" },
		{ "localhost", "loopback", "localhost" },
		{ "api.localhost", "loopback", "api.localhost" },
		{ "10.1.2.3", "private", "10.1.2.3" },
		{ "172.31.255.255", "private", "172.31.255.255" },
		{ "192.168.0.1", "private", "192.168.0.1" },
		{ "100.100.100.200", "private", "100.100.100.200" },
		{ "fd00:ec2::254", "private", "fd00:ec2::254" },
		{ "224.0.0.1", "reserved", "224.0.0.1" },
		{ "255.255.255.255", "reserved", "255.255.255.255" },
		{ "::", "reserved", "::" },
		{ "8.8.8.8", "public", "8.8.8.8" },
		{ "172.32.0.1", "public", "172.32.0.1" },
		{ "2001:4860::8888", "public", "2001:4860::8888" },
		{ "Pay.Example.COM", "name", "pay.example.com" },
		{ "1password.com", "name", "1password.com" },
	};
	static const char *const invalid[] = { "999.1.1.1", "1.2.3.4.5", "a..b", "-a.com",
					       "a b",       "a/b",       "",     "[::1]",
					       "a@b",       "::ffff:zz" };
	char canon[TG_HOST_MAX];

	(void)state;
	for (size_t i = 0; i < TG_ARRAY_SIZE(cases); i++) {
		const char *c = tg_host_class(cases[i].host, canon);

		if (!c || strcmp(c, cases[i].cls) || strcmp(canon, cases[i].canon))
			fail_msg("host '%s': got %s (%s), want %s (%s)", cases[i].host,
				 c ? c : "NULL", c ? canon : "", cases[i].cls, cases[i].canon);
	}
	for (size_t i = 0; i < TG_ARRAY_SIZE(invalid); i++)
		if (tg_host_class(invalid[i], canon))
			fail_msg("host '%s' should be invalid", invalid[i]);
}

static char *api_with_target(const char *target)
{
	return tg_xasprintf(
		"{\n  \"api_id\": \"a\",\n  \"proxy\": {\n    \"listen_path\": \"/a/\",\n"
		"    \"target_url\": \"%s\"\n  }\n}\n",
		target);
}

static void expect_target(const char *rules, const char *target, const char *msg)
{
	char *api = api_with_target(target), *want = NULL;

	if (msg[0])
		want = tg_xasprintf("apis/a.json:5:5: error: upstream_allow: api 'a': %s\n", msg);
	expect(rules, "apis/a.json", api, want ? want : "");
	free(want);
	free(api);
}

static void test_rules__upstream_allow_blocks_metadata_loopback_private(void **state)
{
	const char *r = "upstream_allow: true";

	(void)state;
	expect_target(r, "http://169.254.169.254/latest/meta-data",
		      "upstream host '169.254.169.254' is link-local (cloud metadata lives there); "
		      "only an exact entry in hosts allows it");
	expect_target(r, "http://2852039166/",
		      "upstream host '2852039166' (169.254.169.254) is link-local (cloud metadata "
		      "lives there); only an exact entry in hosts allows it");
	expect_target(r, "http://[::ffff:a9fe:a9fe]:80/",
		      "upstream host '::ffff:a9fe:a9fe' (::ffff:169.254.169.254) is link-local "
		      "(cloud metadata lives there); only an exact entry in hosts allows it");
	/* userinfo that looks like a host, percent escapes, backslashes */
	expect_target(
		r, "http://good.example.com@127.0.0.1/",
		"upstream host '127.0.0.1' is loopback; set allow_loopback or list it in hosts");
	expect_target(
		r, "http://%31%32%37.0.0.1/",
		"upstream host '127.0.0.1' is loopback; set allow_loopback or list it in hosts");
	expect_target(
		r, "http://127.0.0.1\\\\@good.example.com/",
		"upstream host '127.0.0.1' is loopback; set allow_loopback or list it in hosts");
	expect_target(r, "http://10.0.0.7:8080",
		      "upstream host '10.0.0.7' is a private address; set allow_private or list it "
		      "in hosts");
	expect_target(r, "ftp://files.example.com/",
		      "upstream scheme 'ftp' is not allowed (allowed: http, https)");
	expect_target(r, "files.example.com/", "upstream url has no scheme");
	expect_target(r, "http:///x", "upstream url has no valid host");
	expect_target(r, "https://pay.example.com:8443/v1", "");
}

static void test_rules__upstream_allow_lists_hosts_and_ranges(void **state)
{
	const char *r = "upstream_allow: {hosts: ['*.svc.cluster.local', 10.20.0.0/16, "
			"169.254.169.254], schemes: [https]}";

	(void)state;
	expect_target(r, "https://pay.svc.cluster.local", "");
	expect_target(r, "https://10.20.3.4", "");
	expect_target(r, "https://[::ffff:10.20.3.4]", "");
	expect_target(r, "https://169.254.169.254", ""); /* listed exactly */
	expect_target(
		r, "https://10.21.0.1",
		"upstream host '10.21.0.1' is a private address; set allow_private or list it "
		"in hosts");
	expect_target(r, "https://evil.example.com",
		      "upstream host 'evil.example.com' is not in hosts");
	expect_target(r, "http://pay.svc.cluster.local",
		      "upstream scheme 'http' is not allowed (allowed: https)");
	/* a wildcard never lets in what is blocked by class */
	expect_target(
		"upstream_allow: {hosts: ['*']}", "http://127.0.0.1",
		"upstream host '127.0.0.1' is loopback; set allow_loopback or list it in hosts");
	expect_target("upstream_allow: {allow_loopback: true, allow_private: true}",
		      "http://127.0.0.1:9000", "");
	expect_target("upstream_allow: {allow_loopback: true, allow_private: true}",
		      "http://192.168.1.1", "");
}

static void test_rules__upstream_allow_checks_load_balanced_targets(void **state)
{
	const char *api =
		"{\n  \"api_id\": \"a\",\n  \"proxy\": {\n    \"listen_path\": \"/a/\",\n"
		"    \"target_url\": \"https://a.example.com\",\n"
		"    \"targets\": [\"https://b.example.com\", \"http://10.0.0.1\"]\n  }\n}\n";

	(void)state;
	expect("upstream_allow: true", "apis/a.json", api,
	       "apis/a.json:6:42: error: upstream_allow: api 'a': upstream host '10.0.0.1' is a "
	       "private address; set allow_private or list it in hosts\n");
}

/* --- path_ownership --------------------------------------------------------- */

static const char ownership[] =
	"path_ownership:\n"
	"  owners:\n"
	"    - {files: 'apis/teams/payments/*', listen_paths: [/payments/], domains: [pay.example.com]}\n"
	"    - {files: 'apis/teams/search/*', listen_paths: [/search/, /find/]}\n"
	"  policy_files: ['policies/platform/*']\n";

static char *api_at(const char *listen, const char *domain)
{
	return tg_xasprintf("{\n  \"api_id\": \"a\",\n  \"domain\": \"%s\",\n  \"proxy\": {\n"
			    "    \"listen_path\": \"%s\",\n"
			    "    \"target_url\": \"https://a.example.com\"\n  }\n}\n",
			    domain, listen);
}

static void test_rules__path_ownership_keeps_teams_to_their_prefixes(void **state)
{
	char *a;

	(void)state;
	a = api_at("/orders/", "pay.example.com");
	expect(ownership, "apis/teams/payments/a.json", a,
	       "apis/teams/payments/a.json:5:5: error: path_ownership: api 'a': listen path "
	       "'/orders/' is outside /payments/, which files 'apis/teams/payments/*' may use\n");
	free(a);
	a = api_at("/payments/v2", "evil.example.com");
	expect(ownership, "apis/teams/payments/a.json", a,
	       "apis/teams/payments/a.json:3:3: error: path_ownership: api 'a': domain "
	       "'evil.example.com' is not one that files 'apis/teams/payments/*' may use "
	       "(pay.example.com)\n");
	free(a);
	a = api_at("/payments", "");
	expect(ownership, "apis/teams/search/a.json", a,
	       "apis/teams/search/a.json:5:5: error: path_ownership: api 'a': listen path "
	       "'/payments' is outside /search/, /find/, which files 'apis/teams/search/*' may "
	       "use\n");
	expect(ownership, "apis/misc/a.json", a,
	       "apis/misc/a.json:5:5: error: path_ownership: api 'a': listen path '/payments' "
	       "belongs to files 'apis/teams/payments/*'\n");
	free(a);
	a = api_at("/find/x", "");
	expect(ownership, "apis/teams/search/a.json", a, "");
	free(a);
	a = api_at("/payments/v2", "pay.example.com");
	expect(ownership, "apis/teams/payments/a.json", a, "");
	free(a);
	a = api_at("/other/", "");
	expect(ownership, "apis/misc/a.json", a, "");
	free(a);
}

static void test_rules__path_ownership_limits_who_defines_policies(void **state)
{
	(void)state;
	expect(ownership, "policies/team/p.yaml", "id: p1\n",
	       "policies/team/p.yaml:1:1: error: path_ownership: policy 'p1' is defined outside "
	       "the files that may define policies (policies/platform/*)\n");
	expect(ownership, "policies/platform/p.yaml", "id: p1\n", "");
}

/* --- required_fields -------------------------------------------------------- */

static void test_rules__required_fields(void **state)
{
	const char *r = "required_fields: {apis: [tags, config_data.owner], policies: [tags], "
			"oas: [info.description]}";
	const char *api =
		"{\n  \"api_id\": \"a\",\n  \"tags\": [],\n  \"config_data\": {\"owner\": \"\"},\n"
		"  \"proxy\": {\"listen_path\": \"/a/\"}\n}\n";
	const char *good = "{\n  \"api_id\": \"a\",\n  \"tags\": [\"x\"],\n"
			   "  \"config_data\": {\"owner\": \"team-a\"},\n"
			   "  \"proxy\": {\"listen_path\": \"/a/\"}\n}\n";

	(void)state;
	expect(r, "apis/a.json", api,
	       "apis/a.json:3:3: error: required_fields: api 'a' is missing required field 'tags'\n"
	       "apis/a.json:4:19: error: required_fields: api 'a' is missing required field "
	       "'config_data.owner'\n");
	expect(r, "apis/a.json", good, "");
	expect(r, "policies/p.yaml", "id: p1\nname: x\n",
	       "policies/p.yaml:1:1: error: required_fields: policy 'p1' is missing required "
	       "field 'tags'\n");
	expect(r, "apis/o.yaml", oas_keyed,
	       "apis/o.yaml:2:1: error: required_fields: api 'oas1' is missing required field "
	       "'info.description'\n");
}

/* --- max_changes ------------------------------------------------------------ */

static void test_rules__max_changes_needs_force(void **state)
{
	struct tg_rules *r = rules_from("max_changes: {max: 2}");
	struct tg_plan_item items[5];
	struct tg_plan plan = { items, 5, 5, { 0 }, 0 };
	struct tg_problems p;
	struct tg_buf text = TG_BUF_INIT;
	static const enum tg_action actions[] = { TG_ACTION_CREATE, TG_ACTION_UPDATE,
						  TG_ACTION_DELETE, TG_ACTION_NONE,
						  TG_ACTION_CONFLICT };

	(void)state;
	assert_non_null(r);
	memset(items, 0, sizeof(items));
	for (size_t i = 0; i < 5; i++)
		items[i].action = actions[i];
	tg_problems_init(&p);
	tg_rules_check_plan(r, &plan, 0, &p);
	tg_rules_check_plan(r, &plan, 1, &p);
	items[0].warn_only = 1; /* drift left under warn is not a change */
	tg_rules_check_plan(r, &plan, 0, &p);
	tg_problems_format_text(&p, &text);
	assert_string_equal(
		tg_buf_cstr(&text),
		"error: max_changes: plan changes 3 objects, more than max 2; use --force to apply\n"
		"warning: max_changes: plan changes 3 objects, more than max 2; applied with --force\n");
	assert_int_equal(p.errors, 1);
	tg_buf_release(&text);
	tg_problems_release(&p);
	tg_rules_free(r);
}

/* --- configuration and reporting ------------------------------------------- */

static void test_rules__configuration_errors_name_the_key(void **state)
{
	static const struct {
		const char *yaml, *err;
	} cases[] = {
		{ "auth_requird: true", "auth_requird: unknown rule 'auth_requird' (known: "
					"auth_required, policy_limits, upstream_allow, "
					"path_ownership, required_fields, max_changes)\n" },
		{ "auth_required: {level: fatal}", "auth_required.level: 'level' must be 'error' "
						   "or 'warn'\n" },
		{ "upstream_allow: {hosts: [10.0.0.0/33]}",
		  "upstream_allow.hosts: '10.0.0.0/33' is neither a host glob nor a CIDR range\n" },
		{ "max_changes: {level: warn}", "max_changes: 'max_changes' needs max\n" },
		{ "max_changes: true", "max_changes: 'max_changes' needs a mapping with max\n" },
		{ "policy_limits: {max_rps: 3}",
		  "policy_limits.max_rps: unknown key 'max_rps' in rule 'policy_limits'\n" },
		{ "path_ownership: {owners: [{files: 'a/*'}]}",
		  "path_ownership.owners.0: 'owners' entries need 'listen_paths'\n" },
		{ "auth_required: {except: [1]}",
		  "auth_required.except: 'except' must be a list of non-empty strings\n" },
		{ "[1]", ": 'rules' must be a mapping of rule names\n" },
	};

	(void)state;
	for (size_t i = 0; i < TG_ARRAY_SIZE(cases); i++) {
		struct tg_rules *r = rules_from(cases[i].yaml);

		assert_null(r);
		assert_string_equal(tg_buf_cstr(&config_errors), cases[i].err);
	}
	{
		struct tg_rules *r = rules_from("auth_required: {enabled: false}");

		assert_non_null(r);
		assert_int_equal(r->set[TG_RULE_AUTH_REQUIRED].enabled, 0);
		tg_rules_free(r);
	}
}

static void test_rules__violations_are_problems_with_a_rule(void **state)
{
	struct tg_problems p;
	struct tg_buf json = TG_BUF_INIT, names = TG_BUF_INIT;

	(void)state;
	tg_problems_init(&p);
	tg_problems_add(&p, TG_SEV_ERROR, "apis/a.json", 1, 2, "api_id", "missing api id");
	assert_int_equal(tg_problems_rule_errors(&p, &names), 0);
	tg_problems_add_rule(&p, TG_SEV_WARNING, "apis/a.json", 3, 4, "tags", "required_fields",
			     "missing");
	assert_int_equal(tg_problems_rule_errors(&p, &names), 0);
	tg_problems_add_rule(&p, TG_SEV_ERROR, "apis/a.json", 5, 6, "use_keyless", "auth_required",
			     "keyless");
	tg_problems_add_rule(&p, TG_SEV_ERROR, "apis/b.json", 5, 6, "use_keyless", "auth_required",
			     "keyless");
	assert_int_equal(tg_problems_rule_errors(&p, &names), 1);
	assert_string_equal(tg_buf_cstr(&names), "auth_required");
	tg_problems_format_json(&p, &json);
	assert_non_null(strstr(tg_buf_cstr(&json),
			       "{\"severity\":\"error\",\"file\":\"apis/a.json\",\"line\":5,"
			       "\"column\":6,\"field\":\"use_keyless\",\"message\":\"keyless\","
			       "\"rule\":\"auth_required\"}"));
	assert_null(strstr(tg_buf_cstr(&json), "\"missing api id\",\"rule\""));
	tg_buf_release(&json);
	tg_buf_release(&names);
	tg_problems_release(&p);
}

static int teardown(void **state)
{
	(void)state;
	tg_buf_release(&config_errors);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules__auth_required_refuses_a_keyless_classic_api),
		cmocka_unit_test(test_rules__auth_required_passes_a_keyed_api),
		cmocka_unit_test(test_rules__auth_required_refuses_keyless_oas),
		cmocka_unit_test(test_rules__except_matches_file_or_id),
		cmocka_unit_test(test_rules__policy_limits_needs_a_rate_limit),
		cmocka_unit_test(test_rules__policy_limits_enforces_maxima),
		cmocka_unit_test(test_rules__host_classes_see_through_spellings),
		cmocka_unit_test(test_rules__upstream_allow_blocks_metadata_loopback_private),
		cmocka_unit_test(test_rules__upstream_allow_lists_hosts_and_ranges),
		cmocka_unit_test(test_rules__upstream_allow_checks_load_balanced_targets),
		cmocka_unit_test(test_rules__path_ownership_keeps_teams_to_their_prefixes),
		cmocka_unit_test(test_rules__path_ownership_limits_who_defines_policies),
		cmocka_unit_test(test_rules__required_fields),
		cmocka_unit_test(test_rules__max_changes_needs_force),
		cmocka_unit_test(test_rules__configuration_errors_name_the_key),
		cmocka_unit_test(test_rules__violations_are_problems_with_a_rule),
	};

	return cmocka_run_group_tests(tests, NULL, teardown);
}
