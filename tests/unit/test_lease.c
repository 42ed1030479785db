/* Unit tests for controller/lease.c (leader election decisions, time
 * injected) and the pure parts of controller/kube.c (Lease JSON, MicroTime). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/kube.h"
#include "tg/lease.h"

static const struct tg_lease_params P = { 15000, 10000, 2000 };

/* A view of a Lease held by holder, first seen at t. */
static void held_by(struct tg_lease_view *v, const char *name, const char *holder, long long t)
{
	struct tg_lease_record r;

	memset(&r, 0, sizeof(r));
	snprintf(r.name, sizeof(r.name), "%s", name);
	snprintf(r.holder, sizeof(r.holder), "%s", holder);
	r.duration_s = 15;
	r.renew_us = 1000000 + t;
	snprintf(r.rv, sizeof(r.rv), "%lld", t + 1);
	tg_lease_observe(v, &r, t);
}

/* v is ours: held, renewed at t. */
static void ours(struct tg_lease_view *v, const char *name, const char *me, long long t)
{
	held_by(v, name, me, t);
	v->held = 1;
	v->renewed_ms = t;
	v->renew_failed = 0;
}

static void test_lease__fair_share_spreads_remainder_over_first_ranks(void **state)
{
	(void)state;
	assert_int_equal(tg_lease_fair_share(9, 3, 0), 3);
	assert_int_equal(tg_lease_fair_share(9, 3, 2), 3);
	assert_int_equal(tg_lease_fair_share(10, 3, 0), 4);
	assert_int_equal(tg_lease_fair_share(10, 3, 1), 3);
	assert_int_equal(tg_lease_fair_share(10, 3, 2), 3);
	assert_int_equal(tg_lease_fair_share(2, 3, 2), 0);
	assert_int_equal(tg_lease_fair_share(5, 0, 0), 5);
	{
		size_t sum = 0;

		for (size_t k = 0; k < 7; k++)
			sum += tg_lease_fair_share(100, 7, k);
		assert_int_equal(sum, 100);
	}
}

static void test_lease__expiry_uses_local_observation_not_remote_clock(void **state)
{
	struct tg_lease_view v;

	(void)state;
	memset(&v, 0, sizeof(v));
	assert_true(tg_lease_expired(&v, 0)); /* does not exist */
	held_by(&v, "l", "other", 1000);
	/* Its renewTime may be years off: only our clock counts. */
	v.rec.renew_us = 1;
	assert_false(tg_lease_expired(&v, 1000));
	assert_false(tg_lease_expired(&v, 15999));
	assert_true(tg_lease_expired(&v, 16000));
	/* The holder renews: a new record resets the observation. */
	held_by(&v, "l", "other", 12000);
	assert_false(tg_lease_expired(&v, 16000));
	assert_true(tg_lease_expired(&v, 27000));
	/* The same record seen again does not. */
	{
		struct tg_lease_record same = v.rec;

		tg_lease_observe(&v, &same, 20000);
		assert_int_equal(v.observed_ms, 12000);
	}
	/* Released: free at once. */
	v.rec.holder[0] = '\0';
	assert_true(tg_lease_expired(&v, 12001));
}

static void test_lease__may_write_only_within_renew_deadline_and_without_failure(void **state)
{
	struct tg_lease_view v;

	(void)state;
	memset(&v, 0, sizeof(v));
	assert_false(tg_lease_may_write(&v, &P, 0));
	ours(&v, "l", "me", 1000);
	assert_true(tg_lease_may_write(&v, &P, 1000));
	assert_true(tg_lease_may_write(&v, &P, 10999));
	/* Safety margin: lease 15 s, but writes stop at the 10 s deadline. */
	assert_false(tg_lease_may_write(&v, &P, 11000));
	v.renewed_ms = 9000;
	assert_true(tg_lease_may_write(&v, &P, 11000));
	/* One failed renewal stops writes at once. */
	v.renew_failed = 1;
	assert_false(tg_lease_may_write(&v, &P, 9001));
}

static void test_lease__single_replica_creates_every_lease(void **state)
{
	struct tg_lease_view v[3];
	enum tg_lease_action a[3];

	(void)state;
	memset(v, 0, sizeof(v));
	assert_int_equal(tg_lease_plan(a, v, 3, NULL, 0, "me", &P, 0, 0), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(a[i], TG_LEASE_CREATE);
}

static void test_lease__holder_renews_and_standby_waits(void **state)
{
	struct tg_lease_view v[2];
	enum tg_lease_action a[2];

	(void)state;
	memset(v, 0, sizeof(v));
	ours(&v[0], "a", "me", 0);
	held_by(&v[1], "b", "other", 0);
	assert_int_equal(tg_lease_plan(a, v, 2, NULL, 0, "me", &P, 2000, 0), 1);
	assert_int_equal(a[0], TG_LEASE_RENEW);
	assert_int_equal(a[1], TG_LEASE_NONE);
}

static void test_lease__expired_lease_of_dead_holder_is_taken(void **state)
{
	struct tg_lease_view v[2];
	enum tg_lease_action a[2];

	(void)state;
	memset(v, 0, sizeof(v));
	ours(&v[0], "a", "me", 0);
	held_by(&v[1], "b", "dead", 0);
	v[0].renewed_ms = 14000;
	tg_lease_plan(a, v, 2, NULL, 0, "me", &P, 14000, 0);
	assert_int_equal(a[1], TG_LEASE_NONE);
	/* At 15 s "dead" no longer counts: our share is both. */
	tg_lease_plan(a, v, 2, NULL, 0, "me", &P, 15000, 0);
	assert_int_equal(a[0], TG_LEASE_RENEW);
	assert_int_equal(a[1], TG_LEASE_ACQUIRE);
}

static void test_lease__wakes_at_the_first_expiry_of_another_holder(void **state)
{
	struct tg_lease_view v[3], m[1];

	(void)state;
	memset(v, 0, sizeof(v));
	memset(m, 0, sizeof(m));
	ours(&v[0], "a", "me", 0);      /* ours: never a reason to wake */
	held_by(&v[1], "b", "x", 3000); /* expires at 18 s */
	held_by(&v[2], "c", "", 0);     /* free: nothing to wait for */
	held_by(&m[0], "m", "y", 1000); /* a member Lease: expires at 16 s */
	assert_int_equal(tg_lease_next_expiry(v, 3, m, 1, 5000), 16000);
	assert_int_equal(tg_lease_next_expiry(v, 3, NULL, 0, 5000), 18000);
	/* Past both: nothing left to wait for, the regular tick decides. */
	assert_int_equal(tg_lease_next_expiry(v, 3, m, 1, 18000), 0);
	/* A renewal seen later moves the moment. */
	held_by(&v[1], "b", "x", 9000);
	assert_int_equal(tg_lease_next_expiry(v, 3, NULL, 0, 10000), 24000);
}

static void test_lease__holder_that_cannot_renew_gives_up_at_deadline(void **state)
{
	struct tg_lease_view v[1];
	enum tg_lease_action a[1];

	(void)state;
	memset(v, 0, sizeof(v));
	ours(&v[0], "a", "me", 0);
	v[0].renew_failed = 1;
	tg_lease_plan(a, v, 1, NULL, 0, "me", &P, 9999, 0);
	assert_int_equal(a[0], TG_LEASE_RENEW); /* still trying */
	tg_lease_plan(a, v, 1, NULL, 0, "me", &P, 10000, 0);
	assert_int_equal(a[0], TG_LEASE_LOST);
}

static void test_lease__someone_else_on_our_lease_means_lost(void **state)
{
	struct tg_lease_view v[1];
	enum tg_lease_action a[1];

	(void)state;
	memset(v, 0, sizeof(v));
	ours(&v[0], "a", "me", 0);
	held_by(&v[0], "a", "usurper", 1000);
	tg_lease_plan(a, v, 1, NULL, 0, "me", &P, 1000, 0);
	assert_int_equal(a[0], TG_LEASE_LOST);
}

static void test_lease__surplus_released_only_when_others_lack(void **state)
{
	struct tg_lease_view v[4], m[1];
	enum tg_lease_action a[4];
	size_t rel = 0;

	(void)state;
	memset(v, 0, sizeof(v));
	memset(m, 0, sizeof(m));
	for (int i = 0; i < 4; i++) {
		char n[16];

		snprintf(n, sizeof(n), "s%d", i);
		ours(&v[i], n, "a", 0);
	}
	/* Alone: keeps all four. */
	tg_lease_plan(a, v, 4, m, 0, "a", &P, 1000, 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(a[i], TG_LEASE_RENEW);
	/* "b" joins with a member Lease: a gives two back, the last ones. */
	held_by(&m[0], "tg--member-0", "b", 1000);
	assert_int_equal(tg_lease_plan(a, v, 4, m, 1, "a", &P, 1000, 0), 2);
	for (int i = 0; i < 4; i++)
		rel += a[i] == TG_LEASE_RELEASE;
	assert_int_equal(rel, 2);
	assert_int_equal(a[3], TG_LEASE_RELEASE);
	assert_int_equal(a[2], TG_LEASE_RELEASE);
	/* b sees two free Leases and its share is two. */
	{
		struct tg_lease_view bv[4];

		memset(bv, 0, sizeof(bv));
		held_by(&bv[0], "s0", "a", 2000);
		held_by(&bv[1], "s1", "a", 2000);
		held_by(&bv[2], "s2", "", 2000);
		held_by(&bv[3], "s3", "", 2000);
		assert_int_equal(tg_lease_plan(a, bv, 4, NULL, 0, "b", &P, 2000, 0), 2);
		assert_int_equal(a[0], TG_LEASE_NONE);
		assert_int_equal(a[1], TG_LEASE_NONE);
		assert_int_equal(a[2], TG_LEASE_ACQUIRE);
		assert_int_equal(a[3], TG_LEASE_ACQUIRE);
	}
}

static void test_lease__no_release_when_others_are_at_their_share(void **state)
{
	struct tg_lease_view v[3];
	enum tg_lease_action a[3];

	(void)state;
	memset(v, 0, sizeof(v));
	/* 3 syncs, 2 replicas: a (rank 0) 2, b 1. */
	ours(&v[0], "s0", "a", 0);
	ours(&v[1], "s1", "a", 0);
	held_by(&v[2], "s2", "b", 0);
	assert_int_equal(tg_lease_plan(a, v, 3, NULL, 0, "a", &P, 1000, 0), 2);
	assert_int_equal(a[0], TG_LEASE_RENEW);
	assert_int_equal(a[1], TG_LEASE_RENEW);
	/* b would hold 2 as rank 1 of 2 with 3 syncs? no: 3/2 = 1 (+1 for rank 0). */
	memset(v, 0, sizeof(v));
	held_by(&v[0], "s0", "a", 0);
	held_by(&v[1], "s1", "a", 0);
	ours(&v[2], "s2", "b", 0);
	assert_int_equal(tg_lease_plan(a, v, 3, NULL, 0, "b", &P, 1000, 0), 1);
	assert_int_equal(a[2], TG_LEASE_RENEW);
}

static void test_lease__abandoned_lease_is_taken_above_share(void **state)
{
	struct tg_lease_view v[2];
	enum tg_lease_action a[2];

	(void)state;
	memset(v, 0, sizeof(v));
	/* 2 syncs, "a" and "b" live: our share is 1 and we hold it. */
	ours(&v[0], "s0", "b", 0);
	held_by(&v[1], "s1", "", 0); /* released; its taker "a" never came */
	{
		struct tg_lease_view m[1];

		memset(m, 0, sizeof(m));
		held_by(&m[0], "tg--member-0", "a", 0);
		v[0].renewed_ms = 1000;
		tg_lease_plan(a, v, 2, m, 1, "b", &P, 1000, 0);
		assert_int_equal(a[1], TG_LEASE_NONE);
		v[0].renewed_ms = 2000;
		tg_lease_plan(a, v, 2, m, 1, "b", &P, 2000, 0);
		assert_int_equal(a[1], TG_LEASE_ACQUIRE);
	}
}

static void test_lease__stopping_releases_everything_and_takes_nothing(void **state)
{
	struct tg_lease_view v[3];
	enum tg_lease_action a[3];

	(void)state;
	memset(v, 0, sizeof(v));
	ours(&v[0], "s0", "me", 0);
	held_by(&v[2], "s2", "", 0);
	tg_lease_plan(a, v, 3, NULL, 0, "me", &P, 5000, 1);
	assert_int_equal(a[0], TG_LEASE_RELEASE);
	assert_int_equal(a[1], TG_LEASE_NONE);
	assert_int_equal(a[2], TG_LEASE_NONE);
	assert_false(tg_lease_need_member(v, 3, 1));
}

static void test_lease__member_needed_only_while_holding_nothing(void **state)
{
	struct tg_lease_view v[2];

	(void)state;
	memset(v, 0, sizeof(v));
	assert_true(tg_lease_need_member(v, 2, 0));
	ours(&v[1], "s1", "me", 0);
	assert_false(tg_lease_need_member(v, 2, 0));
}

static void test_lease__members_are_sorted_live_holders_plus_me(void **state)
{
	struct tg_lease_view v[3], m[2];
	char **names;
	size_t n, rank = 99;

	(void)state;
	memset(v, 0, sizeof(v));
	memset(m, 0, sizeof(m));
	held_by(&v[0], "s0", "zed", 0);
	held_by(&v[1], "s1", "alpha", 0);
	held_by(&v[2], "s2", "zed", 0);
	held_by(&m[0], "m0", "bob", 0);
	held_by(&m[1], "m1", "gone", -20000); /* expired */
	n = tg_lease_members(&names, &rank, v, 3, m, 2, "me", 1000);
	assert_int_equal(n, 4);
	assert_string_equal(names[0], "alpha");
	assert_string_equal(names[1], "bob");
	assert_string_equal(names[2], "me");
	assert_string_equal(names[3], "zed");
	assert_int_equal(rank, 2);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void test_lease__replicas_converge_to_even_spread(void **state)
{
	/* Simulates R replicas sharing one API: each tick every replica
	 * observes the store, plans, and writes win in order (optimistic
	 * concurrency: a write on a record that changed since it was read
	 * loses).  They join one after the other: the first takes all, the
	 * later ones get their share from the spread. */
	enum { N = 9, R = 3 };
	const char *ids[R] = { "r0", "r1", "r2" };
	const int join[R] = { 0, 5, 12 };
	struct tg_lease_record store[N];
	int exists[N] = { 0 };
	struct tg_lease_view views[R][N];
	long long t = 0;

	(void)state;
	memset(store, 0, sizeof(store));
	memset(views, 0, sizeof(views));
	for (int tick = 0; tick < 40; tick++, t += 2000) {
		for (int r = 0; r < R; r++) {
			enum tg_lease_action a[N];
			struct tg_lease_view m[R];
			size_t nm = 0;

			/* Replicas holding nothing announce themselves. */
			if (tick < join[r])
				continue;
			memset(m, 0, sizeof(m));
			for (int o = 0; o < R; o++)
				if (o != r && tick >= join[o] &&
				    tg_lease_need_member(views[o], N, 0))
					held_by(&m[nm++], "member", ids[o], t);
			for (int i = 0; i < N; i++)
				tg_lease_observe(&views[r][i], exists[i] ? &store[i] : NULL, t);
			tg_lease_plan(a, views[r], N, m, nm, ids[r], &P, t, 0);
			for (int i = 0; i < N; i++) {
				struct tg_lease_record next;

				if (a[i] == TG_LEASE_NONE)
					continue;
				if (a[i] == TG_LEASE_LOST) {
					views[r][i].held = 0;
					continue;
				}
				if (strcmp(views[r][i].rec.rv, exists[i] ? store[i].rv : ""))
					continue; /* conflict */
				tg_lease_next_record(&next, &views[r][i], a[i], ids[r], NULL, &P,
						     t * 1000);
				snprintf(next.name, sizeof(next.name), "s%d", i);
				snprintf(next.rv, sizeof(next.rv), "%d-%d", tick, r);
				store[i] = next;
				exists[i] = 1;
				tg_lease_observe(&views[r][i], &next, t);
				views[r][i].held = a[i] != TG_LEASE_RELEASE;
				if (tick < join[1])
					assert_string_equal(store[i].holder, "r0");
				if (a[i] != TG_LEASE_RELEASE)
					views[r][i].renewed_ms = t;
			}
		}
	}
	for (int r = 0; r < R; r++) {
		int held = 0;

		for (int i = 0; i < N; i++)
			held += exists[i] && !strcmp(store[i].holder, ids[r]);
		assert_int_equal(held, 3);
	}
	/* At most one holder per Lease, and every Lease held. */
	for (int i = 0; i < N; i++) {
		int holders = 0;

		for (int r = 0; r < R; r++)
			holders += views[r][i].held;
		assert_int_equal(holders, 1);
	}
}

static void test_lease__next_record_follows_client_go(void **state)
{
	struct tg_lease_view v;
	struct tg_lease_record r;

	(void)state;
	memset(&v, 0, sizeof(v));
	tg_lease_next_record(&r, &v, TG_LEASE_CREATE, "me", "http://10.0.0.1:9180", &P, 5000000);
	assert_string_equal(r.holder, "me");
	assert_int_equal(r.duration_s, 15);
	assert_int_equal(r.acquire_us, 5000000);
	assert_int_equal(r.renew_us, 5000000);
	assert_int_equal(r.transitions, 0);
	assert_string_equal(r.address, "http://10.0.0.1:9180");
	/* Taken over from another holder: one more transition. */
	held_by(&v, "l", "other", 0);
	v.rec.transitions = 4;
	v.rec.acquire_us = 77;
	tg_lease_next_record(&r, &v, TG_LEASE_ACQUIRE, "me", NULL, &P, 9000000);
	assert_int_equal(r.transitions, 5);
	assert_int_equal(r.acquire_us, 9000000);
	assert_string_equal(r.rv, v.rec.rv);
	/* Renewed: acquireTime and transitions stay. */
	held_by(&v, "l", "me", 1);
	v.rec.transitions = 5;
	v.rec.acquire_us = 9000000;
	tg_lease_next_record(&r, &v, TG_LEASE_RENEW, "me", NULL, &P, 11000000);
	assert_int_equal(r.transitions, 5);
	assert_int_equal(r.acquire_us, 9000000);
	assert_int_equal(r.renew_us, 11000000);
	/* Released: holder cleared, 1 s, address gone. */
	snprintf(v.rec.address, sizeof(v.rec.address), "x");
	tg_lease_next_record(&r, &v, TG_LEASE_RELEASE, "me", "x", &P, 12000000);
	assert_string_equal(r.holder, "");
	assert_int_equal(r.duration_s, 1);
	assert_string_equal(r.address, "");
	assert_int_equal(r.transitions, 5);
}

static void test_lease__names_are_valid_and_distinct(void **state)
{
	char a[TG_LEASE_NAME_MAX], b[TG_LEASE_NAME_MAX];

	(void)state;
	tg_lease_name(a, "tyk-gitops", "prod");
	assert_string_equal(a, "tyk-gitops-prod");
	tg_lease_name(a, "tyk-gitops", "Team_A/prod");
	tg_lease_name(b, "tyk-gitops", "team-a-prod");
	assert_string_not_equal(a, b);
	assert_int_equal(strncmp(a, "tyk-gitops-team-a-prod-", 23), 0);
	tg_lease_name(b, "tyk-gitops", "Team_A.prod");
	assert_string_not_equal(a, b);
	for (const char *c = a; *c; c++)
		assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-');
	tg_lease_name(a, "p", "___");
	assert_int_equal(strncmp(a, "p-", 2), 0);
	assert_int_not_equal(a[2], '-');
}

/* --- kube.c, pure ------------------------------------------------------------ */

static void test_kube__parses_time_formats(void **state)
{
	long long us;
	char out[40];

	(void)state;
	assert_int_equal(tg_kube_parse_time(&us, "1970-01-01T00:00:01.000001Z"), 0);
	assert_int_equal(us, 1000001);
	assert_int_equal(tg_kube_parse_time(&us, "2024-02-29T12:00:00Z"), 0);
	tg_kube_format_time(out, us);
	assert_string_equal(out, "2024-02-29T12:00:00.000000Z");
	assert_int_equal(tg_kube_parse_time(&us, "2024-02-29T13:00:00.5+01:00"), 0);
	tg_kube_format_time(out, us);
	assert_string_equal(out, "2024-02-29T12:00:00.500000Z");
	assert_int_not_equal(tg_kube_parse_time(&us, "2024-02-29 12:00:00Z"), 0);
	assert_int_not_equal(tg_kube_parse_time(&us, "2024-02-29T12:00:00"), 0);
	assert_int_not_equal(tg_kube_parse_time(&us, "2024-02-29T12:00:00.Z"), 0);
	assert_int_not_equal(tg_kube_parse_time(&us, "2024-13-01T12:00:00Z"), 0);
	assert_int_not_equal(tg_kube_parse_time(&us, "2024-02-29T12:00:00Zjunk"), 0);
}

static const char lease_json[] =
	"{\"kind\":\"Lease\",\"apiVersion\":\"coordination.k8s.io/v1\",\"metadata\":{"
	"\"name\":\"tyk-gitops-prod\",\"namespace\":\"ns\",\"resourceVersion\":\"123\","
	"\"labels\":{\"tyk-gitops.io/lease\":\"sync\"},"
	"\"annotations\":{\"tyk-gitops.io/sync\":\"prod\","
	"\"tyk-gitops.io/holder-address\":\"http://10.1.2.3:9180\"}},"
	"\"spec\":{\"holderIdentity\":\"pod-a_1234\",\"leaseDurationSeconds\":15,"
	"\"acquireTime\":\"2025-01-01T00:00:00.000000Z\","
	"\"renewTime\":\"2025-01-01T00:00:10.250000Z\",\"leaseTransitions\":3}}";

static void test_kube__parses_a_lease(void **state)
{
	struct tg_lease_record r;
	struct tg_err err = { 0, "" };

	(void)state;
	assert_int_equal(tg_kube_parse_lease(&r, lease_json, strlen(lease_json), &err), 0);
	assert_string_equal(r.name, "tyk-gitops-prod");
	assert_string_equal(r.rv, "123");
	assert_string_equal(r.holder, "pod-a_1234");
	assert_string_equal(r.sync, "prod");
	assert_string_equal(r.address, "http://10.1.2.3:9180");
	assert_int_equal(r.duration_s, 15);
	assert_int_equal(r.transitions, 3);
	assert_int_equal(r.renew_us - r.acquire_us, 10250000);
	assert_false(r.member);
}

static void test_kube__rejects_what_is_not_a_lease(void **state)
{
	struct tg_lease_record r;
	struct tg_err err = { 0, "" };
	static const char *const bad[] = {
		"",
		"[]",
		"{\"metadata\":{}}",
		"{\"metadata\":{\"name\":\"x\"}}",
		"{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},\"spec\":[]}",
		"{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},"
		"\"spec\":{\"leaseDurationSeconds\":-1}}",
		"{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},"
		"\"spec\":{\"leaseDurationSeconds\":1.5}}",
		"{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},"
		"\"spec\":{\"renewTime\":\"yesterday\"}}",
		"{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"},"
		"\"spec\":{\"holderIdentity\":7}}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = tg_kube_parse_lease(&r, bad[i], strlen(bad[i]), &err);

		if (i == 8) /* a non-string holder is no holder */
			assert_int_equal(rc, 0);
		else
			assert_int_equal(rc, TG_EINVALID);
	}
	/* A Lease without spec (made by hand) is free. */
	assert_int_equal(
		tg_kube_parse_lease(&r, "{\"metadata\":{\"name\":\"x\",\"resourceVersion\":\"1\"}}",
				    52, &err),
		0);
	assert_string_equal(r.holder, "");
}

static void test_kube__parses_a_list_and_skips_bad_items(void **state)
{
	struct tg_lease_record *r = NULL;
	struct tg_err err = { 0, "" };
	size_t n = 0;
	char *json = NULL;
	size_t len;

	(void)state;
	len = strlen(lease_json) * 2 + 200;
	json = malloc(len);
	snprintf(json, len,
		 "{\"kind\":\"LeaseList\",\"items\":[%s,{\"metadata\":7},"
		 "{\"metadata\":{\"name\":\"m\",\"resourceVersion\":\"9\",\"labels\":"
		 "{\"tyk-gitops.io/lease\":\"member\"}},\"spec\":{\"holderIdentity\":\"b\"}}]}",
		 lease_json);
	assert_int_equal(tg_kube_parse_lease_list(&r, &n, json, strlen(json), &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].name, "tyk-gitops-prod");
	assert_true(r[1].member);
	assert_string_equal(r[1].holder, "b");
	free(r);
	assert_int_equal(tg_kube_parse_lease_list(&r, &n, "{\"items\":{}}", 12, &err), TG_EINVALID);
	assert_int_equal(tg_kube_parse_lease_list(&r, &n, "{\"items\":null}", 14, &err), 0);
	assert_int_equal(n, 0);
	free(r);
	free(json);
}

static void test_kube__render_round_trips(void **state)
{
	struct tg_lease_record a, b;
	struct tg_err err = { 0, "" };
	char *json;

	(void)state;
	memset(&a, 0, sizeof(a));
	snprintf(a.name, sizeof(a.name), "tyk-gitops-prod");
	snprintf(a.holder, sizeof(a.holder), "pod\"x");
	snprintf(a.sync, sizeof(a.sync), "prod");
	snprintf(a.address, sizeof(a.address), "http://h:1");
	a.duration_s = 15;
	a.acquire_us = 1700000000123456LL;
	a.renew_us = 1700000005000001LL;
	a.transitions = 2;
	json = tg_kube_render_lease(&a, "ns", "sync");
	/* A create carries no resourceVersion; the server assigns one. */
	assert_null(strstr(json, "resourceVersion"));
	assert_non_null(strstr(json, "\"namespace\":\"ns\""));
	assert_int_equal(tg_kube_parse_lease(&b, json, strlen(json), &err), TG_EINVALID);
	free(json);
	snprintf(a.rv, sizeof(a.rv), "42");
	json = tg_kube_render_lease(&a, "ns", "member");
	assert_int_equal(tg_kube_parse_lease(&b, json, strlen(json), &err), 0);
	assert_string_equal(b.holder, "pod\"x");
	assert_int_equal(b.acquire_us, a.acquire_us);
	assert_int_equal(b.renew_us, a.renew_us);
	assert_int_equal(b.transitions, 2);
	assert_string_equal(b.rv, "42");
	assert_true(b.member);
	free(json);
}

static void test_kube__status_message(void **state)
{
	char msg[64];
	const char *j = "{\"kind\":\"Status\",\"message\":\"leases \\\"x\\\" already exists\"}";

	(void)state;
	tg_kube_status_message(msg, sizeof(msg), j, strlen(j));
	assert_string_equal(msg, "leases \"x\" already exists");
	tg_kube_status_message(msg, sizeof(msg), "nope", 4);
	assert_string_equal(msg, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lease__fair_share_spreads_remainder_over_first_ranks),
		cmocka_unit_test(test_lease__expiry_uses_local_observation_not_remote_clock),
		cmocka_unit_test(
			test_lease__may_write_only_within_renew_deadline_and_without_failure),
		cmocka_unit_test(test_lease__single_replica_creates_every_lease),
		cmocka_unit_test(test_lease__holder_renews_and_standby_waits),
		cmocka_unit_test(test_lease__expired_lease_of_dead_holder_is_taken),
		cmocka_unit_test(test_lease__holder_that_cannot_renew_gives_up_at_deadline),
		cmocka_unit_test(test_lease__wakes_at_the_first_expiry_of_another_holder),
		cmocka_unit_test(test_lease__someone_else_on_our_lease_means_lost),
		cmocka_unit_test(test_lease__surplus_released_only_when_others_lack),
		cmocka_unit_test(test_lease__no_release_when_others_are_at_their_share),
		cmocka_unit_test(test_lease__abandoned_lease_is_taken_above_share),
		cmocka_unit_test(test_lease__stopping_releases_everything_and_takes_nothing),
		cmocka_unit_test(test_lease__member_needed_only_while_holding_nothing),
		cmocka_unit_test(test_lease__members_are_sorted_live_holders_plus_me),
		cmocka_unit_test(test_lease__replicas_converge_to_even_spread),
		cmocka_unit_test(test_lease__next_record_follows_client_go),
		cmocka_unit_test(test_lease__names_are_valid_and_distinct),
		cmocka_unit_test(test_kube__parses_time_formats),
		cmocka_unit_test(test_kube__parses_a_lease),
		cmocka_unit_test(test_kube__rejects_what_is_not_a_lease),
		cmocka_unit_test(test_kube__parses_a_list_and_skips_bad_items),
		cmocka_unit_test(test_kube__render_round_trips),
		cmocka_unit_test(test_kube__status_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
