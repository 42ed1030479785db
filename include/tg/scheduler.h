/*
 * When each sync runs (SPEC 4, "Triggers"): pure bookkeeping with time and
 * randomness passed in, so it can be tested without clocks or threads.
 *
 * A sync has a poll timer (interval, +-10% jitter, exponential backoff on
 * failure), a drift timer (drift interval, +-10% jitter) and a set of
 * pending triggers.  The caller asks what is due:
 *   - a pending trigger, a drift timer that expired or a retry after a
 *     failure -> a full pass;
 *   - an expired poll timer -> a cheap remote check first; the caller
 *     reports whether the ref moved (tg_sched_check_done), which queues a
 *     full pass if it did.
 * Triggers that arrive while a pass runs stay pending and become exactly
 * one follow-up pass (coalescing).  A suspended sync runs nothing on its
 * timers; explicit triggers still run (the caller makes those plan-only).
 * An interval of 0 disables that timer.
 */
#ifndef TG_SCHEDULER_H
#define TG_SCHEDULER_H

/* Trigger bits, highest priority first (names feed the audit record). */
enum {
	TG_TRIGGER_PIPELINE = 1 << 0, /* POST /api/v1/syncs/{name}/reconcile */
	TG_TRIGGER_WEBHOOK = 1 << 1,
	TG_TRIGGER_STARTUP = 1 << 2,
	TG_TRIGGER_POLL = 1 << 3, /* the remote check saw the ref move */
	TG_TRIGGER_DRIFT = 1 << 4,
	TG_TRIGGER_RETRY = 1 << 5, /* the last pass failed */
	TG_TRIGGER_RESUME = 1 << 6 /* the sync was resumed */
};

enum tg_sched_action { TG_SCHED_NONE, TG_SCHED_CHECK, TG_SCHED_PASS };

struct tg_sched {
	long long interval_ms;       /* 0: no polling */
	long long drift_interval_ms; /* 0: no drift passes */
	long long backoff_max_ms;    /* cap of the failure backoff (at least interval) */
	long long next_poll_ms;      /* absolute, caller's monotonic clock */
	long long next_drift_ms;
	unsigned failures; /* consecutive failed passes or checks */
	unsigned pending;  /* TG_TRIGGER_* bits */
	int running;
	int suspended;
};

#define TG_SCHED_NEVER 0x7fffffffffffffffLL
#define TG_SCHED_DEFAULT_BACKOFF_MAX_MS (5LL * 60 * 1000)

/* A new sync: a start-up pass is pending; timers start after it. */
void tg_sched_init(struct tg_sched *s, long long interval_ms, long long drift_interval_ms,
		   long long backoff_max_ms, long long now_ms);

/* Adds trigger bits; served by the next pass (one pass for all of them). */
void tg_sched_trigger(struct tg_sched *s, unsigned triggers);

/* What to do at now_ms (TG_SCHED_NONE while running). */
enum tg_sched_action tg_sched_due(const struct tg_sched *s, long long now_ms);

/* When tg_sched_due will next return something other than NONE, assuming
 * no new triggers: now_ms or earlier when already due, TG_SCHED_NEVER when
 * nothing is scheduled. */
long long tg_sched_next(const struct tg_sched *s, long long now_ms);

/*
 * Starts the action tg_sched_due returned.  For a pass, returns the
 * pending triggers it serves (and clears them: anything arriving from now
 * on makes one follow-up pass); for a check, returns 0.
 */
unsigned tg_sched_begin(struct tg_sched *s, enum tg_sched_action action, long long now_ms);

/*
 * Ends a remote check.  ok = the remote answered; changed = the ref points
 * elsewhere than the last applied commit (queues a full pass now).  rnd is
 * a uniform random number in [0, 1) for the jitter.
 */
void tg_sched_check_done(struct tg_sched *s, long long now_ms, int ok, int changed, double rnd);

/* Ends a full pass; ok = nothing needs a retry.  rnd1, rnd2 in [0, 1). */
void tg_sched_pass_done(struct tg_sched *s, long long now_ms, int ok, double rnd1, double rnd2);

/* base +-10%, rnd in [0, 1) (rnd = 0.5 gives base). */
long long tg_sched_jitter(long long base_ms, double rnd);

/* Delay before the next poll after `failures` consecutive failures:
 * interval * 2^failures, capped at max(backoff_max, interval). */
long long tg_sched_backoff(long long interval_ms, long long backoff_max_ms, unsigned failures);

/* Name of the highest-priority trigger in a set ("pipeline", "webhook",
 * "startup", "poll", "drift", "retry", "resume"), "poll" for none. */
const char *tg_sched_trigger_name(unsigned triggers);

#endif
