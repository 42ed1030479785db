/*
 * A small Prometheus metrics registry (text exposition format 0.0.4).
 *
 * Families are defined once (name, type, help, label names, histogram
 * buckets); samples are addressed by label values given in the order of the
 * family's label names.  Every call takes the registry's mutex, so the
 * reconcile worker can update while the HTTP thread renders.  Label values
 * are escaped on output; names are the caller's literals and are asserted
 * to be valid.
 */
#ifndef TG_METRICS_H
#define TG_METRICS_H

#include <stddef.h>

#include "tg/buf.h"

enum tg_metric_type { TG_METRIC_COUNTER, TG_METRIC_GAUGE, TG_METRIC_HISTOGRAM };

#define TG_METRICS_MAX_LABELS 4

struct tg_metrics;

struct tg_metrics *tg_metrics_new(void);
void tg_metrics_free(struct tg_metrics *m);

/*
 * Defines a family.  labels is a NULL-terminated list of label names (at
 * most TG_METRICS_MAX_LABELS; may be NULL for none).  buckets are the
 * ascending upper bounds of a histogram (without +Inf); ignored for other
 * types.  Every string is copied.  Defining a name twice is a programming
 * error (assert).
 */
void tg_metrics_define(struct tg_metrics *m, const char *name, enum tg_metric_type type,
		       const char *help, const char *const *labels, const double *buckets,
		       size_t n_buckets);

/*
 * Sample updates.  values holds one value per label name of the family (in
 * the same order); unknown families are a programming error.  A sample
 * that does not exist yet is created at zero first.
 *   add:     counters and gauges, value += v
 *   set:     gauges, value = v
 *   observe: histograms, one observation of v
 */
void tg_metrics_add(struct tg_metrics *m, const char *name, const char *const *values, double v);
void tg_metrics_set(struct tg_metrics *m, const char *name, const char *const *values, double v);
void tg_metrics_observe(struct tg_metrics *m, const char *name, const char *const *values,
			double v);

/*
 * Removes the samples of a family whose label `label` equals value (for
 * info gauges whose labels change, and syncs that were removed).
 */
void tg_metrics_remove(struct tg_metrics *m, const char *name, const char *label,
		       const char *value);

/* Current value of a counter or gauge sample, or of a histogram's count;
 * 0 when absent (for tests and the status API). */
double tg_metrics_get(struct tg_metrics *m, const char *name, const char *const *values);

/*
 * Appends the whole registry in the text format: families in definition
 * order, samples in creation order.  Returns 0, or TG_EINVALID when out
 * would exceed its cap.
 */
int tg_metrics_render(struct tg_metrics *m, struct tg_buf *out);

/* Escapes a label value ('\\', '"', newline) into out. */
int tg_metrics_escape_label(struct tg_buf *out, const char *value);

/* Default latency buckets in seconds (5 ms .. 60 s). */
extern const double tg_metrics_latency_buckets[];
extern const size_t tg_metrics_n_latency_buckets;

#endif
