/*
 * Per-sync leader election, the pure part: given what this replica last
 * observed of every Lease, the local clock and its identity, which Leases
 * to create, acquire, renew or release, and whether a write may go ahead.
 * No I/O: controller/kube.c talks to the API server, controller/elector.c
 * runs the loop.  Time is passed in (monotonic milliseconds), so every rule
 * is tested without clocks.
 *
 * The rules follow client-go's leaderelection package:
 *   - Expiry is judged on the local clock: a Lease is expired when its
 *     record (holder, renewTime, resourceVersion) has not changed for
 *     leaseDurationSeconds since this replica first saw it that way.  The
 *     holder's and our wall clocks are never compared, so skew between
 *     nodes cannot make a live Lease look expired.
 *   - The holder renews every retry period.  A write is allowed only while
 *     the last successful renewal was *sent* less than renew_deadline ago
 *     (lease duration minus renew deadline is the safety margin against
 *     clock rate differences and the time a batch takes) and no renewal
 *     failed since.  When the renew deadline passes, the holder gives up.
 *
 * Spread: the live replicas are the holders of unexpired sync Leases plus
 * the holders of unexpired member Leases (a replica holding no sync takes a
 * member Lease, so it is seen).  With N syncs and R replicas sorted by
 * identity, replica k's fair share is N/R, plus one for the first N%R.  A
 * replica below its share acquires free or expired Leases; one above it
 * releases its extra Leases when another replica is below its share.  A
 * Lease left free or expired for longer than a retry period after expiry is
 * taken by anyone, so a stale view of membership cannot strand a sync.
 */
#ifndef TG_LEASE_H
#define TG_LEASE_H

#include <stddef.h>

/* client-go's defaults. */
#define TG_LEASE_DEFAULT_DURATION_MS 15000
#define TG_LEASE_DEFAULT_RENEW_DEADLINE_MS 10000
#define TG_LEASE_DEFAULT_RETRY_MS 2000

/* DNS subdomain names are at most 253 characters. */
#define TG_LEASE_NAME_MAX 254
#define TG_LEASE_RV_MAX 64
#define TG_LEASE_ADDR_MAX 256

/* Annotations this controller keeps on its Leases. */
#define TG_LEASE_ANNOTATION_SYNC "tyk-gitops.io/sync"
#define TG_LEASE_ANNOTATION_ADDRESS "tyk-gitops.io/holder-address"
/* Label on every Lease it manages: "sync" or "member". */
#define TG_LEASE_LABEL_ROLE "tyk-gitops.io/lease"

struct tg_lease_params {
	long long duration_ms;       /* leaseDurationSeconds written on our Leases */
	long long renew_deadline_ms; /* holder gives up after this long without a renewal */
	long long retry_ms;          /* the loop's period */
};

/* The fields of a coordination.k8s.io/v1 Lease this controller uses. */
struct tg_lease_record {
	char name[TG_LEASE_NAME_MAX];
	char holder[TG_LEASE_NAME_MAX];  /* holderIdentity; "" = free */
	long long duration_s;            /* leaseDurationSeconds; 0 when absent */
	long long acquire_us, renew_us;  /* MicroTime as wall microseconds; 0 when absent */
	long long transitions;           /* leaseTransitions */
	char rv[TG_LEASE_RV_MAX];        /* metadata.resourceVersion */
	char sync[TG_LEASE_NAME_MAX];    /* TG_LEASE_ANNOTATION_SYNC */
	char address[TG_LEASE_ADDR_MAX]; /* TG_LEASE_ANNOTATION_ADDRESS */
	int member;                      /* label role=member */
};

/* What this replica knows of one Lease, across ticks. */
struct tg_lease_view {
	struct tg_lease_record rec;
	int exists;
	long long observed_ms; /* local time the record was first seen as it is */
	/* ours: */
	int held;
	long long renewed_ms; /* local time the last successful renewal was sent */
	int renew_failed;     /* a renewal failed since: no writes */
};

enum tg_lease_action {
	TG_LEASE_NONE,    /* standby, or nothing to do */
	TG_LEASE_CREATE,  /* the Lease does not exist: create it holding it */
	TG_LEASE_ACQUIRE, /* free or expired: update it to hold it */
	TG_LEASE_RENEW,   /* ours: bump renewTime */
	TG_LEASE_RELEASE, /* ours, above our share (or shutting down): clear the holder */
	TG_LEASE_LOST     /* we held it but no longer do: stop applying at once */
};

const char *tg_lease_action_name(enum tg_lease_action a);

/*
 * Records an observation of v's Lease at now (rec NULL: it does not
 * exist).  Resets observed_ms when holder, renewTime or resourceVersion
 * changed.  A held view whose Lease names another holder (or vanished) is
 * not changed here; tg_lease_plan reports it LOST.
 */
void tg_lease_observe(struct tg_lease_view *v, const struct tg_lease_record *rec, long long now);

/* Whether v's Lease is free or expired at now, as seen from here. */
int tg_lease_expired(const struct tg_lease_view *v, long long now);

/*
 * The earliest moment after now at which a Lease held by another replica
 * (sync or member) expires as seen from here, or 0 when none will.  The
 * elector wakes then rather than at its next regular tick, so a dead
 * holder's syncs are taken within lease duration + one retry period of its
 * last renewal instead of up to two retry periods later.
 */
long long tg_lease_next_expiry(const struct tg_lease_view *syncs, size_t n,
			       const struct tg_lease_view *members, size_t n_members,
			       long long now);

/* Whether the holder recorded on v is alive at now (holder set, unexpired). */
int tg_lease_live(const struct tg_lease_view *v, long long now);

/* Whether a holder may write now: see the note at the top. */
int tg_lease_may_write(const struct tg_lease_view *v, const struct tg_lease_params *p,
		       long long now);

/*
 * Fair share of replica `rank` (0-based, in identity order) among
 * `replicas` for n syncs: n / replicas, plus one for ranks below
 * n % replicas.  replicas 0 counts as 1.
 */
size_t tg_lease_fair_share(size_t n, size_t replicas, size_t rank);

/*
 * The live replicas seen in views (the holders of live Leases, sync or
 * member) plus me, sorted and without duplicates.  Fills out (caller
 * frees each string and the array) and returns the count; *rank is me's
 * position.
 */
size_t tg_lease_members(char ***out, size_t *rank, const struct tg_lease_view *syncs, size_t n,
			const struct tg_lease_view *members, size_t n_members, const char *me,
			long long now);

/*
 * Decides, for each of the n sync views, what to do at now; fills
 * actions[n].  `members` are the member Lease views (they only count
 * replicas).  stopping: release everything held, acquire nothing.
 * Returns the fair share of me.
 */
size_t tg_lease_plan(enum tg_lease_action *actions, const struct tg_lease_view *syncs, size_t n,
		     const struct tg_lease_view *members, size_t n_members, const char *me,
		     const struct tg_lease_params *p, long long now, int stopping);

/*
 * Whether this replica needs a member Lease: it holds no sync (so no
 * other replica would see it) and is not stopping.
 */
int tg_lease_need_member(const struct tg_lease_view *syncs, size_t n, int stopping);

/*
 * The record to write for action a on v (CREATE, ACQUIRE, RENEW or
 * RELEASE) at wall time now_us, as client-go writes it: acquireTime and
 * leaseTransitions change only when the holder changes; a release clears
 * holderIdentity and shortens leaseDurationSeconds to 1.
 */
void tg_lease_next_record(struct tg_lease_record *out, const struct tg_lease_view *v,
			  enum tg_lease_action a, const char *me, const char *address,
			  const struct tg_lease_params *p, long long now_us);

/*
 * Lease name for a sync: "<prefix>-<sync>" when that is a valid DNS
 * label-ish name (lowercase alphanumerics and '-', at most 63 characters),
 * else "<prefix>-<sanitized>-<8 hex of a hash>" so distinct syncs never
 * share a Lease.  out has TG_LEASE_NAME_MAX bytes.
 */
void tg_lease_name(char out[TG_LEASE_NAME_MAX], const char *prefix, const char *sync);

#endif
