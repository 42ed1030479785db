/* Unit tests for controller/scheduler.c (and the pure parts of httpd.c):
 * triggers, coalescing, backoff, jitter, suspend, drift timers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/scheduler.h"

#define MID 0.5 /* rnd giving no jitter */

static void test_sched__startup_pass_is_due_at_once(void **state)
{
	struct tg_sched s;

	(void)state;
	tg_sched_init(&s, 60000, 300000, 0, 1000);
	assert_int_equal(tg_sched_due(&s, 1000), TG_SCHED_PASS);
	assert_int_equal(tg_sched_next(&s, 1000), 1000);
	assert_int_equal(tg_sched_begin(&s, TG_SCHED_PASS, 1000), TG_TRIGGER_STARTUP);
	assert_string_equal(tg_sched_trigger_name(TG_TRIGGER_STARTUP), "startup");
	assert_int_equal(tg_sched_due(&s, 1000), TG_SCHED_NONE); /* running */
	tg_sched_pass_done(&s, 2000, 1, MID, MID);
	assert_int_equal(s.next_poll_ms, 62000);
	assert_int_equal(s.next_drift_ms, 302000);
	assert_int_equal(tg_sched_due(&s, 61999), TG_SCHED_NONE);
	assert_int_equal(tg_sched_next(&s, 3000), 62000);
}

static void test_sched__poll_checks_first_and_passes_only_when_ref_moved(void **state)
{
	struct tg_sched s;

	(void)state;
	tg_sched_init(&s, 1000, 60000, 0, 0);
	tg_sched_begin(&s, TG_SCHED_PASS, 0);
	tg_sched_pass_done(&s, 0, 1, MID, MID);
	assert_int_equal(tg_sched_due(&s, 1000), TG_SCHED_CHECK);
	assert_int_equal(tg_sched_begin(&s, TG_SCHED_CHECK, 1000), 0);
	tg_sched_check_done(&s, 1010, 1, 0, MID); /* unchanged */
	assert_int_equal(tg_sched_due(&s, 1010), TG_SCHED_NONE);
	assert_int_equal(s.next_poll_ms, 2010);
	tg_sched_begin(&s, TG_SCHED_CHECK, 2010);
	tg_sched_check_done(&s, 2020, 1, 1, MID); /* moved */
	assert_int_equal(tg_sched_due(&s, 2020), TG_SCHED_PASS);
	assert_int_equal(tg_sched_begin(&s, TG_SCHED_PASS, 2020), TG_TRIGGER_POLL);
	tg_sched_pass_done(&s, 2500, 1, MID, MID);
	assert_int_equal(s.next_poll_ms, 3500);
}

static void test_sched__drift_pass_is_due_even_when_git_did_not_change(void **state)
{
	struct tg_sched s;

	(void)state;
	tg_sched_init(&s, 1000, 2000, 0, 0);
	tg_sched_begin(&s, TG_SCHED_PASS, 0);
	tg_sched_pass_done(&s, 0, 1, MID, MID);
	tg_sched_begin(&s, TG_SCHED_CHECK, 1000);
	tg_sched_check_done(&s, 1000, 1, 0, MID);
	assert_int_equal(tg_sched_due(&s, 2000), TG_SCHED_PASS);
	assert_int_equal(tg_sched_begin(&s, TG_SCHED_PASS, 2000), TG_TRIGGER_DRIFT);
	assert_string_equal(tg_sched_trigger_name(TG_TRIGGER_DRIFT), "drift");
	tg_sched_pass_done(&s, 2100, 1, MID, MID);
	assert_int_equal(s.next_drift_ms, 4100);
}

static void test_sched__triggers_during_a_pass_coalesce_into_one_follow_up(void **state)
{
	struct tg_sched s;
	unsigned served;

	(void)state;
	tg_sched_init(&s, 60000, 0, 0, 0);
	tg_sched_begin(&s, TG_SCHED_PASS, 0);
	tg_sched_trigger(&s, TG_TRIGGER_PIPELINE);
	tg_sched_trigger(&s, TG_TRIGGER_WEBHOOK);
	tg_sched_trigger(&s, TG_TRIGGER_PIPELINE);
	assert_int_equal(tg_sched_due(&s, 10), TG_SCHED_NONE);
	tg_sched_pass_done(&s, 100, 1, MID, MID);
	assert_int_equal(tg_sched_due(&s, 100), TG_SCHED_PASS);
	served = tg_sched_begin(&s, TG_SCHED_PASS, 100);
	assert_int_equal(served, TG_TRIGGER_PIPELINE | TG_TRIGGER_WEBHOOK);
	assert_string_equal(tg_sched_trigger_name(served), "pipeline");
	tg_sched_pass_done(&s, 200, 1, MID, MID);
	/* exactly one follow-up */
	assert_int_equal(tg_sched_due(&s, 200), TG_SCHED_NONE);
	assert_int_equal(s.pending, 0);
}

static void test_sched__failures_back_off_exponentially_capped_and_reset_on_success(void **state)
{
	struct tg_sched s;
	long long now = 0;

	(void)state;
	tg_sched_init(&s, 1000, 0, 10000, 0);
	tg_sched_begin(&s, TG_SCHED_PASS, now);
	tg_sched_pass_done(&s, now, 0, MID, MID);
	assert_int_equal(s.next_poll_ms, 2000);
	/* a failed pass is retried as a full pass, not a check */
	assert_int_equal(tg_sched_due(&s, 2000), TG_SCHED_PASS);
	assert_int_equal(tg_sched_begin(&s, TG_SCHED_PASS, 2000), TG_TRIGGER_RETRY);
	tg_sched_pass_done(&s, 2000, 0, MID, MID);
	assert_int_equal(s.next_poll_ms, 2000 + 4000);
	for (int i = 0; i < 10; i++) {
		now = s.next_poll_ms;
		tg_sched_begin(&s, TG_SCHED_PASS, now);
		tg_sched_pass_done(&s, now, 0, MID, MID);
	}
	assert_int_equal(s.next_poll_ms - now, 10000);
	now = s.next_poll_ms;
	tg_sched_begin(&s, TG_SCHED_PASS, now);
	tg_sched_pass_done(&s, now, 1, MID, MID);
	assert_int_equal(s.failures, 0);
	assert_int_equal(s.next_poll_ms - now, 1000);
	assert_int_equal(tg_sched_due(&s, s.next_poll_ms), TG_SCHED_CHECK);
}

static void test_sched__failed_check_backs_off_too(void **state)
{
	struct tg_sched s;

	(void)state;
	tg_sched_init(&s, 1000, 0, 0, 0);
	tg_sched_begin(&s, TG_SCHED_PASS, 0);
	tg_sched_pass_done(&s, 0, 1, MID, MID);
	tg_sched_begin(&s, TG_SCHED_CHECK, 1000);
	tg_sched_check_done(&s, 1000, 0, 1, MID);
	assert_int_equal(s.failures, 1);
	assert_int_equal(s.next_poll_ms, 3000);
	assert_int_equal(s.pending, 0); /* an error is not a moved ref */
}

static void test_sched__backoff_cap_is_at_least_the_interval(void **state)
{
	(void)state;
	assert_int_equal(tg_sched_backoff(1000, 300000, 0), 1000);
	assert_int_equal(tg_sched_backoff(1000, 300000, 3), 8000);
	assert_int_equal(tg_sched_backoff(1000, 300000, 63), 300000);
	assert_int_equal(tg_sched_backoff(600000, 300000, 5), 600000);
}

static void test_sched__jitter_stays_within_ten_percent(void **state)
{
	(void)state;
	assert_int_equal(tg_sched_jitter(10000, 0.0), 9000);
	assert_int_equal(tg_sched_jitter(10000, 0.5), 10000);
	assert_in_range(tg_sched_jitter(10000, 0.999999), 10999, 11000);
	assert_int_equal(tg_sched_jitter(10000, 7.0), 10000); /* bad rnd: none */
	assert_int_equal(tg_sched_jitter(0, 0.2), 0);
	for (int i = 0; i < 100; i++)
		assert_in_range(tg_sched_jitter(60000, i / 100.0), 54000, 66000);
}

static void test_sched__suspended_runs_only_explicit_triggers(void **state)
{
	struct tg_sched s;

	(void)state;
	tg_sched_init(&s, 1000, 2000, 0, 0);
	s.suspended = 1;
	assert_int_equal(tg_sched_due(&s, 0), TG_SCHED_NONE); /* start-up waits */
	assert_int_equal(tg_sched_due(&s, 100000), TG_SCHED_NONE);
	assert_true(tg_sched_next(&s, 0) == TG_SCHED_NEVER);
	tg_sched_trigger(&s, TG_TRIGGER_PIPELINE);
	assert_int_equal(tg_sched_due(&s, 5), TG_SCHED_PASS);
	assert_int_equal(tg_sched_begin(&s, TG_SCHED_PASS, 5), TG_TRIGGER_PIPELINE);
	tg_sched_pass_done(&s, 10, 1, MID, MID);
	assert_int_equal(tg_sched_due(&s, 100000), TG_SCHED_NONE);
	/* resume: the held start-up trigger and the resume run as one pass */
	s.suspended = 0;
	tg_sched_trigger(&s, TG_TRIGGER_RESUME);
	assert_int_equal(tg_sched_due(&s, 100000), TG_SCHED_PASS);
	assert_int_equal(tg_sched_begin(&s, TG_SCHED_PASS, 100000),
			 TG_TRIGGER_STARTUP | TG_TRIGGER_RESUME);
}

static void test_sched__zero_intervals_disable_timers(void **state)
{
	struct tg_sched s;

	(void)state;
	tg_sched_init(&s, 0, 0, 0, 0);
	tg_sched_begin(&s, TG_SCHED_PASS, 0);
	tg_sched_pass_done(&s, 0, 1, MID, MID);
	assert_true(tg_sched_next(&s, 0) == TG_SCHED_NEVER);
	assert_int_equal(tg_sched_due(&s, 1000000000LL), TG_SCHED_NONE);
	/* but a failure is still retried */
	tg_sched_trigger(&s, TG_TRIGGER_WEBHOOK);
	tg_sched_begin(&s, TG_SCHED_PASS, 0);
	tg_sched_pass_done(&s, 0, 0, MID, MID);
	assert_int_equal(tg_sched_due(&s, 2000), TG_SCHED_PASS);
}

static void test_sched__failure_keeps_drift_timer_behind_the_backoff(void **state)
{
	struct tg_sched s;

	(void)state;
	tg_sched_init(&s, 1000, 1000, 60000, 0);
	tg_sched_begin(&s, TG_SCHED_PASS, 0);
	for (int i = 0; i < 5; i++)
		s.failures++;
	tg_sched_pass_done(&s, 0, 0, MID, MID);
	assert_true(s.next_drift_ms >= s.next_poll_ms);
	assert_int_equal(tg_sched_due(&s, 1000), TG_SCHED_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sched__startup_pass_is_due_at_once),
		cmocka_unit_test(test_sched__poll_checks_first_and_passes_only_when_ref_moved),
		cmocka_unit_test(test_sched__drift_pass_is_due_even_when_git_did_not_change),
		cmocka_unit_test(test_sched__triggers_during_a_pass_coalesce_into_one_follow_up),
		cmocka_unit_test(
			test_sched__failures_back_off_exponentially_capped_and_reset_on_success),
		cmocka_unit_test(test_sched__failed_check_backs_off_too),
		cmocka_unit_test(test_sched__backoff_cap_is_at_least_the_interval),
		cmocka_unit_test(test_sched__jitter_stays_within_ten_percent),
		cmocka_unit_test(test_sched__suspended_runs_only_explicit_triggers),
		cmocka_unit_test(test_sched__zero_intervals_disable_timers),
		cmocka_unit_test(test_sched__failure_keeps_drift_timer_behind_the_backoff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
