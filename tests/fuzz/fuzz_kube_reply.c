/*
 * Fuzz target for what the Kubernetes API server sends back to leader
 * election: a Lease, a LeaseList and a Status, parsed as kube.c does, then
 * the parsed Leases fed to the decisions of lease.c as observations.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tg/kube.h"
#include "tg/lease.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct tg_lease_params p = { 15000, 10000, 2000 };
	struct tg_lease_record one, *list = NULL;
	struct tg_lease_view views[8];
	enum tg_lease_action actions[8];
	struct tg_err err = { 0, "" };
	char msg[128];
	size_t n = 0;

	tg_kube_status_message(msg, sizeof(msg), (const char *)data, size);
	if (tg_kube_parse_lease(&one, (const char *)data, size, &err) == 0) {
		char *again = tg_kube_render_lease(&one, "ns", "sync");
		struct tg_lease_record back;

		/* What we render from a parsed Lease parses back the same. */
		if (tg_kube_parse_lease(&back, again, strlen(again), &err) != 0 ||
		    strcmp(back.holder, one.holder) || back.renew_us != one.renew_us ||
		    back.transitions != one.transitions)
			abort();
		free(again);
	}
	if (tg_kube_parse_lease_list(&list, &n, (const char *)data, size, &err) == 0) {
		memset(views, 0, sizeof(views));
		for (size_t i = 0; i < n && i < 8; i++) {
			tg_lease_observe(&views[i], &list[i], 1000);
			views[i].held = (i & 1) != 0;
			views[i].renewed_ms = 900;
		}
		tg_lease_plan(actions, views, n < 8 ? n : 8, views, n < 8 ? n : 8, "me", &p, 2000,
			      0);
	}
	free(list);
	return 0;
}
