/*
 * The daemon's leader election loop (leader_election.enabled): one thread
 * that lists this controller's Leases every retry period, and creates,
 * acquires, renews and releases them as controller/lease.c decides,
 * through controller/kube.c.
 *
 * Why a thread of its own, with its own curl handle, when the worker owns
 * every other handle: a renewal must never wait behind a long pass (a
 * slow gateway, a large clone), or the Lease would lapse while the pass
 * still writes.  The elector touches nothing but the Kubernetes API and
 * its own table; the worker and the HTTP handlers read that table under
 * the daemon's lock through the functions below.
 *
 * What a held Lease means to the rest of the daemon: the worker runs a
 * sync's passes only while this replica holds its Lease (acquiring it
 * queues a drift pass first), and every write batch of a pass asks
 * tg_elector_may_write first.  A Lease given back for the spread is
 * released only once the sync's running pass is over (that pass may still
 * write: the Lease is renewed until then); a Lease lost (renewals failing,
 * someone else on it) stops writes at the next batch.
 */
#ifndef TG_ELECTOR_H
#define TG_ELECTOR_H

#include <cjson/cJSON.h>

#include "tg/config.h"
#include "tg/lease.h"

struct tg_daemon;
struct tg_elector;

/*
 * Reads the leader_election settings of cfg and prepares the API client
 * (in-cluster defaults, see kube.h).  Nothing is sent yet.  Returns 0 or
 * TG_EINVALID with err set (not in a cluster and no --kube-api, no
 * namespace).
 */
int tg_elector_new(struct tg_elector **out, struct tg_daemon *d, const struct tg_config *cfg,
		   struct tg_err *err);

/* Starts the thread.  Call once the daemon's syncs are in place. */
int tg_elector_start(struct tg_elector *el, struct tg_err *err);

/*
 * Stops the thread after releasing every Lease this replica holds (so the
 * other replicas take them over at once).  Call after the worker stopped:
 * no pass may be writing.  Then frees el.  NULL is a no-op.
 */
void tg_elector_stop(struct tg_elector *el);

/* This replica's identity (holderIdentity on its Leases). */
const char *tg_elector_identity(const struct tg_elector *el);

/* Under the daemon's lock: whether this replica holds the sync's Lease and
 * may start passes for it. */
int tg_elector_holds_locked(const struct tg_elector *el, const char *sync);

/* Takes the daemon's lock: whether a write for sync may go ahead now. */
int tg_elector_may_write(struct tg_elector *el, const char *sync);

/*
 * Under the daemon's lock: where to hand a request for sync that this
 * replica does not hold: copies the holder's advertised URL into addr
 * (size bytes) and returns 1; 0 when this replica holds it, nobody does,
 * or the holder advertised no address.
 */
int tg_elector_holder_address_locked(const struct tg_elector *el, const char *sync, char *addr,
				     size_t size);

/* Under the daemon's lock: {"holder", "this_replica", "address",
 * "transitions", "renewed_at"} for the status API. */
cJSON *tg_elector_status_json_locked(const struct tg_elector *el, const char *sync);

#endif
