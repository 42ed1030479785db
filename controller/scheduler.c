/*
 * Per-sync scheduling (see include/tg/scheduler.h).  Pure: no clock, no
 * randomness, no locking; the daemon holds its lock around every call.
 */
#include "tg/scheduler.h"

#include <assert.h>

#include "tg/banned.h"

long long tg_sched_jitter(long long base_ms, double rnd)
{
	double delta;

	if (base_ms <= 0)
		return 0;
	if (rnd < 0 || rnd >= 1)
		rnd = 0.5;
	delta = (rnd * 2.0 - 1.0) * 0.1 * (double)base_ms;
	return base_ms + (long long)delta;
}

long long tg_sched_backoff(long long interval_ms, long long backoff_max_ms, unsigned failures)
{
	long long cap = backoff_max_ms > interval_ms ? backoff_max_ms : interval_ms;
	long long d = interval_ms;

	for (unsigned i = 0; i < failures && d < cap; i++)
		d *= 2;
	return d < cap ? d : cap;
}

void tg_sched_init(struct tg_sched *s, long long interval_ms, long long drift_interval_ms,
		   long long backoff_max_ms, long long now_ms)
{
	s->interval_ms = interval_ms > 0 ? interval_ms : 0;
	s->drift_interval_ms = drift_interval_ms > 0 ? drift_interval_ms : 0;
	s->backoff_max_ms = backoff_max_ms > 0 ? backoff_max_ms : TG_SCHED_DEFAULT_BACKOFF_MAX_MS;
	s->next_poll_ms = s->interval_ms ? now_ms + s->interval_ms : TG_SCHED_NEVER;
	s->next_drift_ms = s->drift_interval_ms ? now_ms + s->drift_interval_ms : TG_SCHED_NEVER;
	s->failures = 0;
	s->pending = TG_TRIGGER_STARTUP;
	s->running = 0;
	s->suspended = 0;
}

void tg_sched_trigger(struct tg_sched *s, unsigned triggers)
{
	s->pending |= triggers;
}

/* Triggers that run even while suspended: someone asked explicitly. */
#define EXPLICIT (TG_TRIGGER_PIPELINE | TG_TRIGGER_WEBHOOK)

static unsigned runnable(const struct tg_sched *s)
{
	return s->suspended ? s->pending & EXPLICIT : s->pending;
}

enum tg_sched_action tg_sched_due(const struct tg_sched *s, long long now_ms)
{
	if (s->running)
		return TG_SCHED_NONE;
	if (runnable(s))
		return TG_SCHED_PASS;
	if (s->suspended)
		return TG_SCHED_NONE;
	if (now_ms >= s->next_drift_ms)
		return TG_SCHED_PASS;
	if (now_ms >= s->next_poll_ms)
		return s->failures ? TG_SCHED_PASS : TG_SCHED_CHECK;
	return TG_SCHED_NONE;
}

long long tg_sched_next(const struct tg_sched *s, long long now_ms)
{
	long long t;

	if (s->running)
		return TG_SCHED_NEVER; /* the end of the pass re-plans */
	if (runnable(s))
		return now_ms;
	if (s->suspended)
		return TG_SCHED_NEVER;
	t = s->next_poll_ms < s->next_drift_ms ? s->next_poll_ms : s->next_drift_ms;
	return t;
}

unsigned tg_sched_begin(struct tg_sched *s, enum tg_sched_action action, long long now_ms)
{
	unsigned served = 0;

	assert(!s->running && action != TG_SCHED_NONE);
	s->running = 1;
	if (action == TG_SCHED_CHECK)
		return 0;
	served = runnable(s);
	if (!served)
		served = now_ms >= s->next_drift_ms ? TG_TRIGGER_DRIFT : TG_TRIGGER_RETRY;
	s->pending &= ~served;
	return served;
}

void tg_sched_check_done(struct tg_sched *s, long long now_ms, int ok, int changed, double rnd)
{
	assert(s->running);
	s->running = 0;
	if (ok && changed) {
		/* The pass follows at once; its end sets the timers. */
		s->pending |= TG_TRIGGER_POLL;
		return;
	}
	if (ok)
		s->failures = 0;
	else
		s->failures++;
	if (s->interval_ms)
		s->next_poll_ms =
			now_ms + tg_sched_jitter(tg_sched_backoff(s->interval_ms, s->backoff_max_ms,
								  s->failures),
						 rnd);
}

void tg_sched_pass_done(struct tg_sched *s, long long now_ms, int ok, double rnd1, double rnd2)
{
	assert(s->running);
	s->running = 0;
	if (ok)
		s->failures = 0;
	else if (s->failures < 64)
		s->failures++;
	if (s->interval_ms)
		s->next_poll_ms =
			now_ms + tg_sched_jitter(tg_sched_backoff(s->interval_ms, s->backoff_max_ms,
								  s->failures),
						 rnd1);
	else if (!ok)
		/* No poll timer: the retry still needs one. */
		s->next_poll_ms = now_ms + tg_sched_jitter(tg_sched_backoff(1000, s->backoff_max_ms,
									    s->failures),
							   rnd1);
	else
		s->next_poll_ms = TG_SCHED_NEVER;
	/* A full pass compares with the gateway too, so it resets the drift
	 * timer; after a failure the drift timer must not bypass the backoff. */
	if (s->drift_interval_ms) {
		long long d = now_ms + tg_sched_jitter(s->drift_interval_ms, rnd2);

		s->next_drift_ms = !ok && d < s->next_poll_ms ? s->next_poll_ms : d;
	}
}

const char *tg_sched_trigger_name(unsigned triggers)
{
	static const char *const names[] = { "pipeline", "webhook", "startup", "poll",
					     "drift",    "retry",   "resume" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (triggers & (1u << i))
			return names[i];
	return "poll";
}
