/*
 * Per-sync leader election decisions (see include/tg/lease.h).  Pure: no
 * clocks, no I/O, no allocation except the member list.
 */
#include "tg/lease.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/banned.h"

const char *tg_lease_action_name(enum tg_lease_action a)
{
	static const char *const names[] = {
		"none", "create", "acquire", "renew", "release", "lost"
	};

	return names[a];
}

void tg_lease_observe(struct tg_lease_view *v, const struct tg_lease_record *rec, long long now)
{
	if (!rec) {
		if (v->exists) {
			v->exists = 0;
			v->observed_ms = now;
		}
		v->rec.holder[0] = '\0';
		v->rec.rv[0] = '\0';
		return;
	}
	if (!v->exists || strcmp(v->rec.holder, rec->holder) || v->rec.renew_us != rec->renew_us ||
	    strcmp(v->rec.rv, rec->rv))
		v->observed_ms = now;
	v->rec = *rec;
	v->exists = 1;
}

static long long duration_ms_of(const struct tg_lease_view *v)
{
	/* A Lease without a duration (written by hand) expires at once. */
	return v->rec.duration_s > 0 ? v->rec.duration_s * 1000 : 0;
}

int tg_lease_expired(const struct tg_lease_view *v, long long now)
{
	if (!v->exists || !v->rec.holder[0])
		return 1;
	return now >= v->observed_ms + duration_ms_of(v);
}

static long long earliest_expiry(long long best, const struct tg_lease_view *v, size_t n,
				 long long now)
{
	for (size_t i = 0; i < n; i++) {
		long long at = v[i].observed_ms + duration_ms_of(&v[i]);

		if (v[i].held || !v[i].exists || !v[i].rec.holder[0] || at <= now)
			continue;
		if (!best || at < best)
			best = at;
	}
	return best;
}

long long tg_lease_next_expiry(const struct tg_lease_view *syncs, size_t n,
			       const struct tg_lease_view *members, size_t n_members, long long now)
{
	return earliest_expiry(earliest_expiry(0, syncs, n, now), members, n_members, now);
}

int tg_lease_live(const struct tg_lease_view *v, long long now)
{
	return !tg_lease_expired(v, now);
}

/* Left free or expired for longer than a retry period past its expiry:
 * whoever sees it takes it, whatever its share says. */
static int abandoned(const struct tg_lease_view *v, const struct tg_lease_params *p, long long now)
{
	if (!v->exists)
		return 0;
	if (!v->rec.holder[0])
		return now >= v->observed_ms + p->retry_ms;
	return now >= v->observed_ms + duration_ms_of(v) + p->retry_ms;
}

static int holds(const struct tg_lease_view *v, const char *me, const struct tg_lease_params *p,
		 long long now)
{
	return v->held && v->exists && !strcmp(v->rec.holder, me) &&
	       now - v->renewed_ms < p->renew_deadline_ms;
}

int tg_lease_may_write(const struct tg_lease_view *v, const struct tg_lease_params *p,
		       long long now)
{
	return v->held && v->exists && !v->renew_failed &&
	       now - v->renewed_ms < p->renew_deadline_ms;
}

size_t tg_lease_fair_share(size_t n, size_t replicas, size_t rank)
{
	if (replicas == 0)
		replicas = 1;
	return n / replicas + (rank < n % replicas ? 1 : 0);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void add_member(char ***list, size_t *n, const char *id)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*list)[i], id))
			return;
	*list = tg_xreallocarray(*list, *n + 1, sizeof(**list));
	(*list)[(*n)++] = tg_xstrdup(id);
}

size_t tg_lease_members(char ***out, size_t *rank, const struct tg_lease_view *syncs, size_t n,
			const struct tg_lease_view *members, size_t n_members, const char *me,
			long long now)
{
	char **list = NULL;
	size_t len = 0;

	add_member(&list, &len, me);
	for (size_t i = 0; i < n; i++)
		if (tg_lease_live(&syncs[i], now))
			add_member(&list, &len, syncs[i].rec.holder);
	for (size_t i = 0; i < n_members; i++)
		if (tg_lease_live(&members[i], now))
			add_member(&list, &len, members[i].rec.holder);
	qsort(list, len, sizeof(*list), cmp_str);
	for (size_t i = 0; i < len; i++)
		if (!strcmp(list[i], me))
			*rank = i;
	*out = list;
	return len;
}

static void free_members(char **list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(list[i]);
	free(list);
}

/* How many live sync Leases id holds. */
static size_t live_count(const struct tg_lease_view *syncs, size_t n, const char *id, long long now)
{
	size_t c = 0;

	for (size_t i = 0; i < n; i++)
		if (tg_lease_live(&syncs[i], now) && !strcmp(syncs[i].rec.holder, id))
			c++;
	return c;
}

size_t tg_lease_plan(enum tg_lease_action *actions, const struct tg_lease_view *syncs, size_t n,
		     const struct tg_lease_view *members, size_t n_members, const char *me,
		     const struct tg_lease_params *p, long long now, int stopping)
{
	char **names = NULL;
	size_t rank = 0, n_names, share, held = 0, deficit = 0, start;

	n_names = tg_lease_members(&names, &rank, syncs, n, members, n_members, me, now);
	share = tg_lease_fair_share(n, n_names, rank);
	/* What the others lack: only then does our surplus go back. */
	for (size_t k = 0; k < n_names; k++) {
		size_t want = tg_lease_fair_share(n, n_names, k), have;

		if (k == rank)
			continue;
		have = live_count(syncs, n, names[k], now);
		if (have < want)
			deficit += want - have;
	}
	for (size_t i = 0; i < n; i++) {
		const struct tg_lease_view *v = &syncs[i];

		actions[i] = TG_LEASE_NONE;
		if (!v->held)
			continue;
		if (stopping)
			actions[i] = TG_LEASE_RELEASE;
		else if (!holds(v, me, p, now))
			actions[i] = TG_LEASE_LOST;
		else {
			actions[i] = TG_LEASE_RENEW;
			held++;
		}
	}
	if (stopping)
		goto out;
	/* Surplus: give back the last ones, as many as others lack. */
	for (size_t i = n; i-- > 0 && held > share && deficit > 0;) {
		if (actions[i] != TG_LEASE_RENEW)
			continue;
		actions[i] = TG_LEASE_RELEASE;
		held--;
		deficit--;
	}
	/* Acquire up to our share, starting at an offset of our own so
	 * replicas below their share do not all race for the same Lease. */
	start = n ? (rank * n / (n_names ? n_names : 1)) % n : 0;
	for (size_t k = 0; k < n; k++) {
		size_t i = (start + k) % n;
		const struct tg_lease_view *v = &syncs[i];

		if (v->held)
			continue;
		if (!v->exists) {
			if (held < share) {
				actions[i] = TG_LEASE_CREATE;
				held++;
			}
			continue;
		}
		if (!tg_lease_expired(v, now))
			continue;
		if (held < share || abandoned(v, p, now)) {
			actions[i] = TG_LEASE_ACQUIRE;
			held++;
		}
	}
out:
	free_members(names, n_names);
	return share;
}

int tg_lease_need_member(const struct tg_lease_view *syncs, size_t n, int stopping)
{
	if (stopping)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (syncs[i].held)
			return 0;
	return 1;
}

void tg_lease_next_record(struct tg_lease_record *out, const struct tg_lease_view *v,
			  enum tg_lease_action a, const char *me, const char *address,
			  const struct tg_lease_params *p, long long now_us)
{
	int same_holder = v->exists && !strcmp(v->rec.holder, me);

	*out = v->rec;
	if (!v->exists) {
		out->rv[0] = '\0';
		out->transitions = 0;
	}
	switch (a) {
	case TG_LEASE_CREATE:
	case TG_LEASE_ACQUIRE:
		snprintf(out->holder, sizeof(out->holder), "%s", me);
		out->duration_s = (p->duration_ms + 999) / 1000;
		out->renew_us = now_us;
		if (!same_holder) {
			out->acquire_us = now_us;
			if (v->exists)
				out->transitions = v->rec.transitions + 1;
		}
		break;
	case TG_LEASE_RENEW:
		out->duration_s = (p->duration_ms + 999) / 1000;
		out->renew_us = now_us;
		break;
	case TG_LEASE_RELEASE:
		/* client-go's ReleaseOnCancel: a free Lease others take at once. */
		out->holder[0] = '\0';
		out->duration_s = 1;
		out->acquire_us = out->renew_us = now_us;
		break;
	case TG_LEASE_NONE:
	case TG_LEASE_LOST: assert(!"no record to write"); break;
	}
	if (a == TG_LEASE_RELEASE)
		out->address[0] = '\0';
	else
		snprintf(out->address, sizeof(out->address), "%s", address ? address : "");
}

static int dns_label_ok(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max || s[0] == '-' || s[len - 1] == '-')
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
			return 0;
	return 1;
}

void tg_lease_name(char out[TG_LEASE_NAME_MAX], const char *prefix, const char *sync)
{
	size_t room = 200, o = 0;
	unsigned h = 2166136261u; /* FNV-1a */
	char clean[201];

	if (dns_label_ok(sync, 63) && strlen(prefix) + 1 + strlen(sync) < TG_LEASE_NAME_MAX) {
		snprintf(out, TG_LEASE_NAME_MAX, "%.189s-%.63s", prefix, sync);
		return;
	}
	for (const char *c = sync; *c; c++) {
		h ^= (unsigned char)*c;
		h *= 16777619u;
	}
	for (const char *c = sync; *c && o < room; c++) {
		char ch = *c;

		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')))
			ch = '-';
		if (ch == '-' && (o == 0 || clean[o - 1] == '-'))
			continue;
		clean[o++] = ch;
	}
	while (o > 0 && clean[o - 1] == '-')
		o--;
	clean[o] = '\0';
	snprintf(out, TG_LEASE_NAME_MAX, "%.40s-%s%s%08x", prefix, clean, o ? "-" : "", h);
}
