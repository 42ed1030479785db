/*
 * Fuzz target for the guardrail rules: the input is an object file from a
 * repository (the first byte picks its name, so classic APIs, Tyk OAS APIs
 * and policies are all reached), checked against every rule with all their
 * options; the input is also classified as an upstream host, the one part
 * of the rules that reads a URL written by anyone.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tg/desired.h"
#include "tg/hostclass.h"
#include "tg/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rules_json[] =
	"{\"auth_required\":{\"except\":[\"apis/public/*\"]},"
	"\"policy_limits\":{\"max_requests_per_second\":100,\"require_quota\":true,\"max_quota\":10},"
	"\"upstream_allow\":{\"hosts\":[\"*.example.com\",\"10.0.0.0/8\",\"fd00::/8\"],"
	"\"schemes\":[\"https\"]},"
	"\"path_ownership\":{\"owners\":[{\"files\":\"apis/teams/*\",\"listen_paths\":[\"/t/\"],"
	"\"domains\":[\"t.example.com\"]}],\"policy_files\":[\"policies/platform/*\"]},"
	"\"required_fields\":{\"apis\":[\"tags\",\"config_data.owner\"],\"oas\":[\"info.description\"],"
	"\"policies\":[\"tags.0\"]},"
	"\"max_changes\":{\"max\":1}}";

static void ignore(void *ctx, const char *path, const char *msg)
{
	(void)ctx;
	(void)path;
	(void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const files[] = { "apis/a.json", "apis/a.yaml", "apis/teams/b.json",
					     "policies/p.json", "policies/platform/p.yaml" };
	static struct tg_rules *rules;
	struct tg_load_opts opts = { 0 };
	struct tg_desired *d = NULL;
	struct tg_problems problems;
	char host[TG_HOST_MAX], canon[TG_HOST_MAX];

	if (!rules) {
		cJSON *v = cJSON_Parse(rules_json);

		if (tg_rules_parse(&rules, v, ignore, NULL))
			abort(); /* the fixed rules above must parse */
		cJSON_Delete(v);
	}
	if (size < 1)
		return 0;
	if (size - 1 < sizeof(host)) {
		memcpy(host, data + 1, size - 1);
		host[size - 1] = '\0';
		tg_host_class(host, canon);
	}
	opts.keep_positions = 1;
	tg_problems_init(&problems);
	if (!tg_desired_load_buffer(&d, &problems, &opts, files[data[0] % 5],
				    (const char *)data + 1, size - 1)) {
		tg_rules_check(rules, d, &problems);
		tg_desired_free(d);
	}
	tg_problems_release(&problems);
	return 0;
}
