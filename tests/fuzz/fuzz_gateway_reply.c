/*
 * Fuzz target for what the gateway sends back: a list reply is parsed and
 * handed to the planner (ids, markers, semantic diff, hashing) exactly as a
 * reconcile pass does.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tg/common.h"
#include "tg/diff.h"
#include "tg/marker.h"
#include "tg/plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	cJSON *reply = cJSON_ParseWithLength((const char *)data, size);
	cJSON *actual[TG_KIND_COUNT];
	struct tg_desired d;
	struct tg_object obj;
	struct tg_plan plan;
	struct tg_plan_opts opts = { 0 };
	const cJSON *item;

	if (!reply)
		return 0;
	memset(&d, 0, sizeof(d));
	memset(&obj, 0, sizeof(obj));
	obj.kind = TG_KIND_API;
	obj.id = (char *)"a";
	obj.file = (char *)"apis/a.json";
	obj.body = cJSON_Parse(
		"{\"api_id\":\"a\",\"proxy\":{\"listen_path\":\"/a/\"},\"tags\":[\"x\"]}");
	d.objects = &obj;
	d.len = 1;
	opts.sync_name = "fuzz";
	opts.prune = 1;
	for (int k = 0; k < TG_KIND_COUNT; k++)
		actual[k] = cJSON_IsArray(reply) ? reply : NULL;
	tg_plan_build(&plan, &d, actual, &opts);
	tg_plan_release(&plan);
	cJSON_ArrayForEach(item, reply)
	{
		struct tg_marker m;
		char hash[65];

		tg_marker_read(&m, TG_KIND_POLICY, item);
		tg_marker_release(&m);
		tg_diff_hash(hash, TG_KIND_OAS_API, item);
	}
	cJSON_Delete(obj.body);
	cJSON_Delete(reply);
	return 0;
}
