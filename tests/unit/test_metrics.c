/* Unit tests for controller/metrics.c: registry, rendering, escaping, histograms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tg/buf.h"
#include "tg/metrics.h"

static char *render(struct tg_metrics *m)
{
	struct tg_buf out = TG_BUF_INIT;

	assert_int_equal(tg_metrics_render(m, &out), 0);
	return tg_buf_detach(&out);
}

static void test_metrics__counter_renders_help_type_and_samples_in_order(void **state)
{
	static const char *const labels[] = { "sync", "result", NULL };
	struct tg_metrics *m = tg_metrics_new();
	const char *a[] = { "prod", "success" }, *b[] = { "prod", "error" };
	char *text;

	(void)state;
	tg_metrics_define(m, "tyk_gitops_reconcile_total", TG_METRIC_COUNTER, "Passes.", labels,
			  NULL, 0);
	tg_metrics_add(m, "tyk_gitops_reconcile_total", a, 1);
	tg_metrics_add(m, "tyk_gitops_reconcile_total", b, 1);
	tg_metrics_add(m, "tyk_gitops_reconcile_total", a, 2);
	text = render(m);
	assert_string_equal(text, "# HELP tyk_gitops_reconcile_total Passes.\n"
				  "# TYPE tyk_gitops_reconcile_total counter\n"
				  "tyk_gitops_reconcile_total{sync=\"prod\",result=\"success\"} 3\n"
				  "tyk_gitops_reconcile_total{sync=\"prod\",result=\"error\"} 1\n");
	assert_true(tg_metrics_get(m, "tyk_gitops_reconcile_total", a) == 3.0);
	free(text);
	tg_metrics_free(m);
}

static void test_metrics__family_without_samples_renders_only_help_and_type(void **state)
{
	static const char *const labels[] = { "result", NULL };
	struct tg_metrics *m = tg_metrics_new();
	char *text;

	(void)state;
	tg_metrics_define(m, "x_total", TG_METRIC_COUNTER, "Later.", labels, NULL, 0);
	text = render(m);
	assert_string_equal(text, "# HELP x_total Later.\n# TYPE x_total counter\n");
	free(text);
	tg_metrics_free(m);
}

static void test_metrics__label_values_are_escaped(void **state)
{
	static const char *const labels[] = { "commit", NULL };
	struct tg_metrics *m = tg_metrics_new();
	const char *v[] = { "a\\b\"c\nd" };
	char *text;

	(void)state;
	tg_metrics_define(m, "g", TG_METRIC_GAUGE, "Help with \\ and\nnewline.", labels, NULL, 0);
	tg_metrics_set(m, "g", v, 1);
	text = render(m);
	assert_string_equal(text, "# HELP g Help with \\\\ and\\nnewline.\n"
				  "# TYPE g gauge\n"
				  "g{commit=\"a\\\\b\\\"c\\nd\"} 1\n");
	free(text);
	tg_metrics_free(m);
}

static void test_metrics__escape_label_leaves_plain_text_alone(void **state)
{
	struct tg_buf out = TG_BUF_INIT;

	(void)state;
	assert_int_equal(tg_metrics_escape_label(&out, "/tyk/apis/{id}"), 0);
	assert_string_equal(tg_buf_cstr(&out), "/tyk/apis/{id}");
	tg_buf_clear(&out);
	assert_int_equal(tg_metrics_escape_label(&out, ""), 0);
	assert_string_equal(tg_buf_cstr(&out), "");
	tg_buf_release(&out);
}

static void test_metrics__histogram_buckets_are_cumulative_with_inf_sum_count(void **state)
{
	static const char *const labels[] = { "sync", NULL };
	static const double buckets[] = { 0.1, 1, 10 };
	struct tg_metrics *m = tg_metrics_new();
	const char *v[] = { "s" };
	char *text;

	(void)state;
	tg_metrics_define(m, "d_seconds", TG_METRIC_HISTOGRAM, "D.", labels, buckets, 3);
	tg_metrics_observe(m, "d_seconds", v, 0.05);
	tg_metrics_observe(m, "d_seconds", v, 0.1); /* le is inclusive */
	tg_metrics_observe(m, "d_seconds", v, 5);
	tg_metrics_observe(m, "d_seconds", v, 100); /* only +Inf */
	text = render(m);
	assert_string_equal(text, "# HELP d_seconds D.\n"
				  "# TYPE d_seconds histogram\n"
				  "d_seconds_bucket{sync=\"s\",le=\"0.1\"} 2\n"
				  "d_seconds_bucket{sync=\"s\",le=\"1\"} 2\n"
				  "d_seconds_bucket{sync=\"s\",le=\"10\"} 3\n"
				  "d_seconds_bucket{sync=\"s\",le=\"+Inf\"} 4\n"
				  "d_seconds_sum{sync=\"s\"} 105.15\n"
				  "d_seconds_count{sync=\"s\"} 4\n");
	assert_true(tg_metrics_get(m, "d_seconds", v) == 4.0);
	free(text);
	tg_metrics_free(m);
}

static void test_metrics__histogram_without_labels_has_only_le(void **state)
{
	static const double buckets[] = { 1 };
	struct tg_metrics *m = tg_metrics_new();
	char *text;

	(void)state;
	tg_metrics_define(m, "h", TG_METRIC_HISTOGRAM, "H.", NULL, buckets, 1);
	tg_metrics_observe(m, "h", NULL, 0.5);
	text = render(m);
	assert_non_null(strstr(
		text, "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n"));
	free(text);
	tg_metrics_free(m);
}

static void test_metrics__gauge_set_replaces_and_remove_drops_matching_samples(void **state)
{
	static const char *const labels[] = { "sync", "commit", NULL };
	struct tg_metrics *m = tg_metrics_new();
	const char *a1[] = { "a", "111" }, *a2[] = { "a", "222" }, *b[] = { "b", "333" };
	char *text;

	(void)state;
	tg_metrics_define(m, "info", TG_METRIC_GAUGE, "I.", labels, NULL, 0);
	tg_metrics_set(m, "info", a1, 1);
	tg_metrics_set(m, "info", b, 1);
	tg_metrics_set(m, "info", b, 1);
	tg_metrics_remove(m, "info", "sync", "a");
	tg_metrics_set(m, "info", a2, 1);
	text = render(m);
	assert_string_equal(text, "# HELP info I.\n# TYPE info gauge\n"
				  "info{sync=\"b\",commit=\"333\"} 1\n"
				  "info{sync=\"a\",commit=\"222\"} 1\n");
	assert_true(tg_metrics_get(m, "info", a1) == 0.0);
	free(text);
	tg_metrics_free(m);
}

static void test_metrics__values_render_as_integers_floats_and_specials(void **state)
{
	struct tg_metrics *m = tg_metrics_new();
	char *text;

	(void)state;
	tg_metrics_define(m, "a", TG_METRIC_GAUGE, "A.", NULL, NULL, 0);
	tg_metrics_define(m, "b", TG_METRIC_GAUGE, "B.", NULL, NULL, 0);
	tg_metrics_define(m, "c", TG_METRIC_GAUGE, "C.", NULL, NULL, 0);
	tg_metrics_set(m, "a", NULL, 1712345678.25);
	tg_metrics_set(m, "b", NULL, -3);
	tg_metrics_set(m, "c", NULL, 1.0 / 0.0);
	text = render(m);
	assert_non_null(strstr(text, "\na 1712345678.25\n"));
	assert_non_null(strstr(text, "\nb -3\n"));
	assert_non_null(strstr(text, "\nc +Inf\n"));
	free(text);
	tg_metrics_free(m);
}

static void test_metrics__render_fails_cleanly_at_the_buffer_cap(void **state)
{
	static const char *const labels[] = { "n", NULL };
	struct tg_metrics *m = tg_metrics_new();
	struct tg_buf out;
	char n[16];

	(void)state;
	tg_metrics_define(m, "many", TG_METRIC_COUNTER, "Many.", labels, NULL, 0);
	for (int i = 0; i < 100; i++) {
		const char *v[] = { n };

		snprintf(n, sizeof(n), "%d", i);
		tg_metrics_add(m, "many", v, 1);
	}
	tg_buf_init(&out, 256);
	assert_int_not_equal(tg_metrics_render(m, &out), 0);
	assert_true(out.len <= 256);
	tg_buf_release(&out);
	tg_metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_metrics__counter_renders_help_type_and_samples_in_order),
		cmocka_unit_test(test_metrics__family_without_samples_renders_only_help_and_type),
		cmocka_unit_test(test_metrics__label_values_are_escaped),
		cmocka_unit_test(test_metrics__escape_label_leaves_plain_text_alone),
		cmocka_unit_test(test_metrics__histogram_buckets_are_cumulative_with_inf_sum_count),
		cmocka_unit_test(test_metrics__histogram_without_labels_has_only_le),
		cmocka_unit_test(
			test_metrics__gauge_set_replaces_and_remove_drops_matching_samples),
		cmocka_unit_test(test_metrics__values_render_as_integers_floats_and_specials),
		cmocka_unit_test(test_metrics__render_fails_cleanly_at_the_buffer_cap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
