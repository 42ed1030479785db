/*
 * Leader election loop (see include/tg/elector.h).  Decisions come from
 * lease.c; this file does the I/O through kube.c and publishes the outcome
 * to the daemon under its lock.
 *
 * Requests per retry period: one LIST of this controller's Leases, one
 * PUT per Lease held (the renewals), and, only while this replica holds
 * no sync at all, one PUT of its member Lease.  So a cluster of R replicas
 * and N syncs sends about (N + R) / retry_period requests: no per-Lease
 * GET as client-go's candidates do.
 */
#include "tg/elector.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "tg/catalog.h"
#include "tg/daemon_state.h"
#include "tg/kube.h"
#include "tg/log.h"
#include "tg/report.h"
#include "tg/banned.h"

/* Member Lease slots tried before giving up (a replica holding no sync
 * takes the lowest free one). */
#define MAX_MEMBER_SLOTS 256

struct entry {
	char *sync;
	char name[TG_LEASE_NAME_MAX];
	struct tg_lease_view v;
	int releasing; /* being given back: no new passes; released once none runs */
	int gone;      /* left the configuration */
};

struct tg_elector {
	struct tg_daemon *d;
	struct tg_kube *kube;
	struct tg_lease_params p;
	char *identity, *address, *prefix;
	pthread_t thread;
	int started;
	pthread_cond_t cond;
	/* under d->lock */
	int stop;
	struct entry *e;
	size_t n;
	/* the elector thread only */
	struct tg_lease_view *members;
	size_t n_members;
	char member_name[TG_LEASE_NAME_MAX]; /* ours, while held */
	struct tg_lease_view member;
	int api_down;  /* the last list failed (logged once per outage) */
	int timed_out; /* a request of this tick timed out */
};

static struct entry *find_entry(const struct tg_elector *el, const char *sync)
{
	for (size_t i = 0; i < el->n; i++)
		if (!strcmp(el->e[i].sync, sync))
			return &el->e[i];
	return NULL;
}

static char *default_identity(void)
{
	char host[256] = "";
	unsigned char rnd[4] = { 0 };

	if (gethostname(host, sizeof(host) - 1) != 0 || !host[0])
		snprintf(host, sizeof(host), "tyk-gitops");
	host[sizeof(host) - 1] = '\0';
	/* Unique per process, as client-go's users do (hostname_uuid): a
	 * restarted container must not mistake its predecessor's Lease for its
	 * own while that one may still be writing. */
	if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
		unsigned long long x =
			(unsigned long long)tg_wall_ms() ^ (unsigned long long)getpid();

		memcpy(rnd, &x, sizeof(rnd));
	}
	return tg_xasprintf("%.200s_%02x%02x%02x%02x", host, rnd[0], rnd[1], rnd[2], rnd[3]);
}

int tg_elector_new(struct tg_elector **out, struct tg_daemon *d, const struct tg_config *cfg,
		   struct tg_err *err)
{
	struct tg_elector *el = tg_xcalloc(1, sizeof(*el));
	struct tg_kube_opts ko = { 0 };
	pthread_condattr_t ca;
	int rc;

	*out = NULL;
	ko.api_url = cfg->kube_api;
	ko.token_file = cfg->kube_token_file;
	ko.ca_file = cfg->kube_ca_file;
	ko.namespace = cfg->le_namespace;
	/* A request must not outlast the renew deadline's share of a retry. */
	ko.timeout_ms = (long)cfg->le_retry_ms * 2;
	if ((rc = tg_kube_new(&el->kube, &ko, err)) != 0) {
		free(el);
		return rc;
	}
	el->d = d;
	el->p.duration_ms = cfg->le_duration_ms;
	el->p.renew_deadline_ms = cfg->le_renew_deadline_ms;
	el->p.retry_ms = cfg->le_retry_ms;
	el->identity = cfg->le_identity ? tg_xstrdup(cfg->le_identity) : default_identity();
	el->address = cfg->le_address ? tg_xstrdup(cfg->le_address) : NULL;
	el->prefix = tg_xstrdup(cfg->le_lease_prefix);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&el->cond, &ca);
	pthread_condattr_destroy(&ca);
	*out = el;
	return 0;
}

const char *tg_elector_identity(const struct tg_elector *el)
{
	return el->identity;
}

/* --- reads from other threads (under d->lock) ------------------------------ */

int tg_elector_holds_locked(const struct tg_elector *el, const char *sync)
{
	const struct entry *e = find_entry(el, sync);

	return e && e->v.held && !e->releasing && !e->v.renew_failed;
}

int tg_elector_may_write(struct tg_elector *el, const char *sync)
{
	const struct entry *e;
	int ok;

	pthread_mutex_lock(&el->d->lock);
	e = find_entry(el, sync);
	/* A Lease being given back for the spread stays ours, and renewed,
	 * until the pass running now is over: cutting that pass short would
	 * leave its writes unloaded for the next holder to write again. */
	ok = e && tg_lease_may_write(&e->v, &el->p, tg_now_ms());
	pthread_mutex_unlock(&el->d->lock);
	return ok;
}

int tg_elector_holder_address_locked(const struct tg_elector *el, const char *sync, char *addr,
				     size_t size)
{
	const struct entry *e = find_entry(el, sync);

	if (!e || e->v.held || !tg_lease_live(&e->v, tg_now_ms()) || !e->v.rec.address[0])
		return 0;
	snprintf(addr, size, "%s", e->v.rec.address);
	return 1;
}

cJSON *tg_elector_status_json_locked(const struct tg_elector *el, const char *sync)
{
	const struct entry *e = find_entry(el, sync);
	cJSON *o = cJSON_CreateObject();
	int live = e && tg_lease_live(&e->v, tg_now_ms());

	cJSON_AddStringToObject(o, "lease", e ? e->name : "");
	tg_json_add_str_or_null(o, "holder", live ? e->v.rec.holder : NULL);
	/* Applying it now: held, not being given back, renewals going through. */
	cJSON_AddBoolToObject(o, "this_replica", e && tg_elector_holds_locked(el, sync));
	cJSON_AddStringToObject(o, "identity", el->identity);
	tg_json_add_str_or_null(o, "address",
				live && e->v.rec.address[0] ? e->v.rec.address : NULL);
	cJSON_AddNumberToObject(o, "transitions", e ? (double)e->v.rec.transitions : 0);
	tg_json_add_time(o, "renewed_at", e && e->v.rec.renew_us ? e->v.rec.renew_us / 1000 : 0);
	return o;
}

/* --- the loop -------------------------------------------------------------- */

static void count_request(struct tg_elector *el, const char *verb, int rc)
{
	const char *l[] = { verb, rc == 0 ? "ok" : rc == TG_ECONFLICT ? "conflict" : "error" };

	tg_metrics_add(el->d->metrics, TG_M_KUBE, l, 1);
}

static void transition(struct tg_elector *el, const char *sync, const char *event)
{
	const char *l[] = { sync, event };
	const struct entry *e = find_entry(el, sync);

	/* A sync that left the configuration has no series any more. */
	if (e && e->gone)
		return;
	tg_metrics_add(el->d->metrics, TG_M_LEASE_TRANSITIONS, l, 1);
}

/* Under the lock: the entries follow the daemon's syncs (SIGHUP may add or
 * remove some). */
static void refresh_entries(struct tg_elector *el)
{
	struct tg_daemon *d = el->d;

	for (size_t i = 0; i < el->n; i++)
		el->e[i].gone = 1;
	for (size_t i = 0; i < d->n_syncs; i++) {
		const char *name = d->syncs[i]->cfg->name;
		struct entry *e = find_entry(el, name);

		if (e) {
			e->gone = 0;
			continue;
		}
		el->e = tg_xreallocarray(el->e, el->n + 1, sizeof(*el->e));
		e = &el->e[el->n++];
		memset(e, 0, sizeof(*e));
		e->sync = tg_xstrdup(name);
		tg_lease_name(e->name, el->prefix, name);
	}
}

/* Sends the record for action a on v; returns the API's answer. */
static int write_lease(struct tg_elector *el, const struct tg_lease_view *v, const char *name,
		       const char *sync, enum tg_lease_action a, const char *role,
		       struct tg_lease_record *stored, struct tg_err *err)
{
	struct tg_lease_record next;
	int rc;

	tg_lease_next_record(&next, v, a, el->identity, el->address, &el->p, tg_wall_ms() * 1000);
	snprintf(next.name, sizeof(next.name), "%s", name);
	snprintf(next.sync, sizeof(next.sync), "%s", sync ? sync : "");
	rc = tg_kube_write_lease(el->kube, &next, role, stored, err);
	count_request(el, a == TG_LEASE_CREATE ? "create" : "update", rc);
	if (rc == TG_ETIMEOUT)
		el->timed_out = 1;
	return rc;
}

/* Under the lock: queue the drift pass a new holder starts with. */
static void start_holding(struct tg_elector *el, const char *sync)
{
	struct tg_dsync *s = tg_daemon_find_sync(el->d, sync);

	if (s) {
		/* A sync this replica never ran still has its start-up pass
		 * pending: what runs now is a takeover's drift pass. */
		s->sched.pending &= ~(unsigned)TG_TRIGGER_STARTUP;
		tg_sched_trigger(&s->sched, TG_TRIGGER_DRIFT);
		pthread_cond_broadcast(&el->d->wake);
	}
}

static void act(struct tg_elector *el, size_t i, enum tg_lease_action a, int stopping)
{
	struct tg_daemon *d = el->d;
	struct tg_lease_record stored;
	struct tg_lease_view v;
	struct tg_err err = { 0, "" };
	char name[TG_LEASE_NAME_MAX], *sync;
	long long sent;
	int rc;

	if (a == TG_LEASE_NONE)
		return;
	pthread_mutex_lock(&d->lock);
	if (a == TG_LEASE_RELEASE && !stopping) {
		struct tg_dsync *s = tg_daemon_find_sync(d, el->e[i].sync);

		/* Given back for the spread: no new pass starts from now on, and
		 * the one running (if any) finishes before the release. */
		el->e[i].releasing = 1;
		if (s && s->sched.running)
			a = TG_LEASE_RENEW;
	}
	if (a == TG_LEASE_RELEASE || a == TG_LEASE_LOST)
		el->e[i].v.held = 0; /* no pass starts, no write goes, from now on */
	v = el->e[i].v;
	snprintf(name, sizeof(name), "%s", el->e[i].name);
	sync = tg_xstrdup(el->e[i].sync);
	pthread_mutex_unlock(&d->lock);

	if (a == TG_LEASE_LOST) {
		tg_log_kv(TG_LOG_WARN, "lease lost: no longer applying this sync", "sync", sync,
			  "lease", name, "holder", v.rec.holder, NULL);
		transition(el, sync, "lost");
		goto out;
	}
	if (a == TG_LEASE_RELEASE)
		v.held = 1; /* the record to write is ours */
	sent = tg_now_ms();
	rc = write_lease(el, &v, name, sync, a, "sync", &stored, &err);
	pthread_mutex_lock(&d->lock);
	{
		struct entry *e = &el->e[i];

		switch (a) {
		case TG_LEASE_CREATE:
		case TG_LEASE_ACQUIRE:
			if (rc == 0) {
				tg_lease_observe(&e->v, &stored, tg_now_ms());
				e->v.held = 1;
				e->v.renewed_ms = sent;
				e->v.renew_failed = 0;
				e->releasing = 0;
				start_holding(el, sync);
			}
			break;
		case TG_LEASE_RENEW:
			if (rc == 0) {
				tg_lease_observe(&e->v, &stored, tg_now_ms());
				e->v.renewed_ms = sent;
				e->v.renew_failed = 0;
			} else {
				/* Stop writing now; give up at the renew deadline, or at
				 * once when someone else holds it. */
				e->v.renew_failed = 1;
				if (rc == TG_ECONFLICT || rc == TG_ENOTFOUND)
					e->v.held = 0;
			}
			break;
		case TG_LEASE_RELEASE:
			e->releasing = 0;
			if (rc == 0)
				tg_lease_observe(&e->v, &stored, tg_now_ms());
			break;
		default: break;
		}
	}
	pthread_mutex_unlock(&d->lock);
	if (rc == 0 && (a == TG_LEASE_CREATE || a == TG_LEASE_ACQUIRE)) {
		char t[32];

		snprintf(t, sizeof(t), "%lld", stored.transitions);
		tg_log_kv(TG_LOG_INFO,
			  "lease acquired: applying this sync, starting with a drift pass", "sync",
			  sync, "lease", name, "identity", el->identity, "transitions", t, NULL);
		transition(el, sync, "acquired");
	} else if (a == TG_LEASE_RELEASE) {
		tg_log_kv(TG_LOG_INFO,
			  stopping ? "lease released: shutting down"
				   : "lease released: another replica is below its share",
			  "sync", sync, "lease", name, "error", rc ? err.msg : "", NULL);
		transition(el, sync, "released");
	} else if (rc && a == TG_LEASE_RENEW) {
		tg_log_kv(TG_LOG_WARN, "cannot renew the lease: writes stop until it is renewed",
			  "sync", sync, "lease", name, "error", err.msg, NULL);
		if (rc == TG_ECONFLICT || rc == TG_ENOTFOUND)
			transition(el, sync, "lost");
	} else if (rc && rc != TG_ECONFLICT) {
		tg_log_kv(TG_LOG_WARN, "cannot acquire the lease", "sync", sync, "lease", name,
			  "error", err.msg, NULL);
	}
out:
	free(sync);
}

/* The member views follow the list: the ones gone are dropped. */
static void observe_members(struct tg_elector *el, const struct tg_lease_record *recs, size_t n,
			    long long now)
{
	struct tg_lease_view *next = tg_xcalloc(n ? n : 1, sizeof(*next));
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		if (!recs[i].member)
			continue;
		for (size_t j = 0; j < el->n_members; j++)
			if (!strcmp(el->members[j].rec.name, recs[i].name))
				next[k] = el->members[j];
		tg_lease_observe(&next[k], &recs[i], now);
		k++;
	}
	free(el->members);
	el->members = next;
	el->n_members = k;
}

/* A replica holding no sync keeps a member Lease, so the others count it
 * in the spread and give it its share. */
static void keep_member(struct tg_elector *el, int need, long long now)
{
	struct tg_lease_record stored;
	struct tg_err err = { 0, "" };
	enum tg_lease_action a = TG_LEASE_NONE;
	char name[TG_LEASE_NAME_MAX];
	int rc;

	if (el->member.held) {
		a = need ? TG_LEASE_RENEW : TG_LEASE_RELEASE;
		snprintf(name, sizeof(name), "%s", el->member_name);
	} else if (need) {
		for (int k = 0; k < MAX_MEMBER_SLOTS && a == TG_LEASE_NONE; k++) {
			const struct tg_lease_view *found = NULL;

			snprintf(name, sizeof(name), "%.200s--member-%d", el->prefix, k);
			for (size_t j = 0; j < el->n_members; j++)
				if (!strcmp(el->members[j].rec.name, name))
					found = &el->members[j];
			if (!found) {
				memset(&el->member, 0, sizeof(el->member));
				a = TG_LEASE_CREATE;
			} else if (tg_lease_expired(found, now)) {
				el->member = *found;
				a = TG_LEASE_ACQUIRE;
			}
		}
	}
	if (a == TG_LEASE_NONE)
		return;
	rc = write_lease(el, &el->member, name, NULL, a, "member", &stored, &err);
	if (a == TG_LEASE_RELEASE || (rc && a == TG_LEASE_RENEW)) {
		memset(&el->member, 0, sizeof(el->member));
		el->member_name[0] = '\0';
		return;
	}
	if (rc == 0) {
		tg_lease_observe(&el->member, &stored, now);
		el->member.held = 1;
		snprintf(el->member_name, sizeof(el->member_name), "%s", name);
	}
}

static void tick(struct tg_elector *el, int stopping)
{
	struct tg_daemon *d = el->d;
	struct tg_lease_record *recs = NULL;
	struct tg_lease_view *views;
	enum tg_lease_action *actions;
	struct tg_err err = { 0, "" };
	size_t n_recs = 0, n;
	long long now = tg_now_ms();
	int rc;

	pthread_mutex_lock(&d->lock);
	refresh_entries(el);
	pthread_mutex_unlock(&d->lock);
	/* Syncs that left the configuration: give their Leases back. */
	for (size_t i = 0; i < el->n; i++)
		if (el->e[i].gone && el->e[i].v.held)
			act(el, i, TG_LEASE_RELEASE, 1);
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < el->n;) {
		if (el->e[i].gone) {
			free(el->e[i].sync);
			el->e[i] = el->e[--el->n];
		} else {
			i++;
		}
	}
	pthread_mutex_unlock(&d->lock);

	el->timed_out = 0;
	rc = tg_kube_list_leases(el->kube, TG_LEASE_LABEL_ROLE, &recs, &n_recs, &err);
	count_request(el, "list", rc);
	if (rc == TG_ETIMEOUT)
		el->timed_out = 1;
	now = tg_now_ms();
	if (rc) {
		if (!el->api_down)
			tg_log_kv(TG_LOG_WARN, "cannot list leases; renewing what is held", "error",
				  err.msg, NULL);
		el->api_down = 1;
		/* The API server is unreachable or refusing: the renewals will
		 * most likely fail too, so no write goes ahead until one succeeds. */
		pthread_mutex_lock(&d->lock);
		for (size_t i = 0; i < el->n; i++)
			if (el->e[i].v.held)
				el->e[i].v.renew_failed = 1;
		pthread_mutex_unlock(&d->lock);
	} else {
		if (el->api_down)
			tg_log_kv(TG_LOG_INFO, "the Kubernetes API answers again", NULL);
		el->api_down = 0;
		pthread_mutex_lock(&d->lock);
		for (size_t i = 0; i < el->n; i++) {
			const struct tg_lease_record *r = NULL;

			for (size_t j = 0; j < n_recs && !r; j++)
				if (!recs[j].member && !strcmp(recs[j].name, el->e[i].name))
					r = &recs[j];
			tg_lease_observe(&el->e[i].v, r, now);
		}
		pthread_mutex_unlock(&d->lock);
		observe_members(el, recs, n_recs, now);
	}
	free(recs);

	/* Only this thread changes the entries: read without the lock. */
	n = el->n;
	views = tg_xcalloc(n ? n : 1, sizeof(*views));
	actions = tg_xcalloc(n ? n : 1, sizeof(*actions));
	for (size_t i = 0; i < n; i++)
		views[i] = el->e[i].v;
	tg_lease_plan(actions, views, n, el->members, el->n_members, el->identity, &el->p, now,
		      stopping);
	for (size_t i = 0; i < n; i++) {
		/* A Lease being given back is renewed until its pass ended. */
		if (el->e[i].releasing && actions[i] == TG_LEASE_RENEW)
			actions[i] = TG_LEASE_RELEASE;
		/* After a request timed out, the others would each wait as long:
		 * keep the tick short so the next one comes in time (the renew
		 * deadline, not this loop, decides when a Lease is given up). */
		if (el->timed_out && actions[i] != TG_LEASE_LOST && actions[i] != TG_LEASE_NONE &&
		    !stopping) {
			if (actions[i] == TG_LEASE_RENEW) {
				pthread_mutex_lock(&d->lock);
				el->e[i].v.renew_failed = 1;
				pthread_mutex_unlock(&d->lock);
			}
			continue;
		}
		act(el, i, actions[i], stopping);
	}
	keep_member(el, tg_lease_need_member(views, n, stopping), now);
	free(views);
	free(actions);

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < el->n; i++) {
		const char *l[] = { el->e[i].sync };

		tg_metrics_set(d->metrics, TG_M_LEADER, l,
			       el->e[i].v.held && !el->e[i].releasing ? 1 : 0);
	}
	pthread_mutex_unlock(&d->lock);
}

/* Only this thread changes the views: read without the lock. */
static long long next_expiry(const struct tg_elector *el)
{
	struct tg_lease_view *views = tg_xcalloc(el->n ? el->n : 1, sizeof(*views));
	long long at;

	for (size_t i = 0; i < el->n; i++)
		views[i] = el->e[i].v;
	at = tg_lease_next_expiry(views, el->n, el->members, el->n_members, tg_now_ms());
	free(views);
	return at;
}

static void *elector_main(void *arg)
{
	struct tg_elector *el = arg;
	struct tg_daemon *d = el->d;

	pthread_mutex_lock(&d->lock);
	while (!el->stop) {
		long long next = tg_now_ms() + el->p.retry_ms, expiry;
		struct timespec ts;

		pthread_mutex_unlock(&d->lock);
		tick(el, 0);
		expiry = next_expiry(el);
		pthread_mutex_lock(&d->lock);
		/* Past a holder's expiry by a hair, so the Lease reads expired. */
		if (expiry && expiry + 1 < next)
			next = expiry + 1;
		tg_timespec_at(&ts, next);
		while (!el->stop && tg_now_ms() < next)
			pthread_cond_timedwait(&el->cond, &d->lock, &ts);
	}
	pthread_mutex_unlock(&d->lock);
	tick(el, 1);
	return NULL;
}

int tg_elector_start(struct tg_elector *el, struct tg_err *err)
{
	char ms[32];

	if (pthread_create(&el->thread, NULL, elector_main, el))
		return tg_err_set(err, TG_ERROR, "cannot start the leader election thread");
	el->started = 1;
	snprintf(ms, sizeof(ms), "%lld", el->p.duration_ms);
	tg_log_kv(TG_LOG_INFO, "leader election on", "identity", el->identity, "namespace",
		  tg_kube_namespace(el->kube), "lease_duration_ms", ms, "address",
		  el->address ? el->address : "", NULL);
	return 0;
}

void tg_elector_stop(struct tg_elector *el)
{
	if (!el)
		return;
	if (el->started) {
		pthread_mutex_lock(&el->d->lock);
		el->stop = 1;
		pthread_cond_broadcast(&el->cond);
		pthread_mutex_unlock(&el->d->lock);
		pthread_join(el->thread, NULL);
	}
	for (size_t i = 0; i < el->n; i++)
		free(el->e[i].sync);
	free(el->e);
	free(el->members);
	pthread_cond_destroy(&el->cond);
	tg_kube_free(el->kube);
	free(el->identity);
	free(el->address);
	free(el->prefix);
	free(el);
}
