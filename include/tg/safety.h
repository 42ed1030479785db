/*
 * The pass-safety rules, as pure functions of the plan, what the gateway
 * accepted so far, and the gateway's lists (the reconcile pass applies
 * them between its stages):
 *   - a policy is written only when every API it references exists (on the
 *     gateway before the pass, unless a create of it failed, or written in
 *     this pass);
 *   - an API is deleted only when no policy left on the gateway after the
 *     pass references it;
 *   - when a pass deletes the last policies, the tombstone policy is
 *     written (see TG_TOMBSTONE_POLICY_ID);
 *   - a plan deleting more than max_delete objects is refused.
 * written[i] is 1 when the gateway accepted the write of plan item i.
 */
#ifndef TG_SAFETY_H
#define TG_SAFETY_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tg/plan.h"

/* A sorted set of ids; the strings are borrowed. */
struct tg_idset {
	const char **ids;
	size_t len, alloc;
	int sealed;
};
void tg_idset_add(struct tg_idset *s, const char *id);
/* Sorts; call once after the last add and before tg_idset_has. */
void tg_idset_seal(struct tg_idset *s);
int tg_idset_has(const struct tg_idset *s, const char *id);
void tg_idset_release(struct tg_idset *s);

/* Every API id on the gateway, classic and OAS (unsealed). */
void tg_safety_gateway_apis(struct tg_idset *out, cJSON *const actual[TG_KIND_COUNT]);

/* APIs that exist after the API writes: on the gateway before, or created
 * now (sealed). */
void tg_safety_available_apis(struct tg_idset *out, const struct tg_plan *plan, const int *written,
			      cJSON *const actual[TG_KIND_COUNT]);

/* 1 when every API policy references is in apis; else 0 with *missing set
 * to the first that is not (pointing into policy). */
int tg_safety_policy_refs_ok(const cJSON *policy, const struct tg_idset *apis,
			     const char **missing);

/*
 * APIs still referenced once the policy writes and deletes are done: by
 * policies written in this pass, and by policies on the gateway that were
 * neither deleted nor replaced (sealed).  Built once per pass, so checking
 * each API delete is a lookup.  Borrowed strings point into the plan and
 * the lists.
 */
void tg_safety_referenced_apis(struct tg_idset *out, const struct tg_plan *plan, const int *written,
			       cJSON *const actual[TG_KIND_COUNT]);

/* Policies the gateway holds after the pass's policy writes and deletes. */
size_t tg_safety_policies_left(const struct tg_plan *plan, const int *written,
			       cJSON *const actual[TG_KIND_COUNT]);

/* The most deletes a plan may make: max_delete when >= 0, else the larger
 * of 10 and a quarter of the objects the sync owns. */
long long tg_safety_max_deletes(long long max_delete, size_t owned);

#endif
