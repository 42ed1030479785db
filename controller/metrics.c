/*
 * Metrics registry (see include/tg/metrics.h).
 *
 * A registry holds at most a few hundred samples (syncs x kinds x states,
 * gateway endpoints x codes), so lookups are linear scans over small
 * arrays; that keeps the code obvious and the rendering order stable.
 */
#include "tg/metrics.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tg/common.h"
#include "tg/banned.h"

const double tg_metrics_latency_buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
					      1,     2.5,  5,     10,   30,  60 };
const size_t tg_metrics_n_latency_buckets = TG_ARRAY_SIZE(tg_metrics_latency_buckets);

struct sample {
	char *values[TG_METRICS_MAX_LABELS];
	double value;                /* counter/gauge value, or histogram sum */
	unsigned long long count;    /* histogram observations */
	unsigned long long *buckets; /* histogram: per bucket (not cumulative) */
};

struct family {
	char *name, *help;
	enum tg_metric_type type;
	char *labels[TG_METRICS_MAX_LABELS];
	size_t n_labels;
	double *bounds;
	size_t n_bounds;
	struct sample *samples;
	size_t n_samples, alloc;
};

struct tg_metrics {
	pthread_mutex_t lock;
	struct family *families;
	size_t n_families;
};

struct tg_metrics *tg_metrics_new(void)
{
	struct tg_metrics *m = tg_xcalloc(1, sizeof(*m));

	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void sample_release(struct sample *s, size_t n_labels)
{
	for (size_t i = 0; i < n_labels; i++)
		free(s->values[i]);
	free(s->buckets);
}

void tg_metrics_free(struct tg_metrics *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_families; i++) {
		struct family *f = &m->families[i];

		for (size_t j = 0; j < f->n_samples; j++)
			sample_release(&f->samples[j], f->n_labels);
		for (size_t j = 0; j < f->n_labels; j++)
			free(f->labels[j]);
		free(f->samples);
		free(f->bounds);
		free(f->name);
		free(f->help);
	}
	free(m->families);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static int valid_name(const char *s)
{
	if (!s || !*s || (*s >= '0' && *s <= '9'))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
			return 0;
	return 1;
}

static struct family *find_family(struct tg_metrics *m, const char *name)
{
	for (size_t i = 0; i < m->n_families; i++)
		if (!strcmp(m->families[i].name, name))
			return &m->families[i];
	return NULL;
}

void tg_metrics_define(struct tg_metrics *m, const char *name, enum tg_metric_type type,
		       const char *help, const char *const *labels, const double *buckets,
		       size_t n_buckets)
{
	struct family *f;

	assert(valid_name(name));
	pthread_mutex_lock(&m->lock);
	assert(!find_family(m, name));
	m->families = tg_xreallocarray(m->families, m->n_families + 1, sizeof(*m->families));
	f = &m->families[m->n_families++];
	memset(f, 0, sizeof(*f));
	f->name = tg_xstrdup(name);
	f->help = tg_xstrdup(help ? help : "");
	f->type = type;
	for (; labels && labels[f->n_labels]; f->n_labels++) {
		assert(f->n_labels < TG_METRICS_MAX_LABELS && valid_name(labels[f->n_labels]));
		f->labels[f->n_labels] = tg_xstrdup(labels[f->n_labels]);
	}
	if (type == TG_METRIC_HISTOGRAM) {
		f->bounds = tg_xcalloc(n_buckets ? n_buckets : 1, sizeof(*f->bounds));
		for (size_t i = 0; i < n_buckets; i++) {
			assert(i == 0 || buckets[i] > buckets[i - 1]);
			f->bounds[i] = buckets[i];
		}
		f->n_bounds = n_buckets;
	}
	pthread_mutex_unlock(&m->lock);
}

static struct sample *find_sample(struct family *f, const char *const *values, int create)
{
	struct sample *s;

	for (size_t i = 0; i < f->n_samples; i++) {
		size_t j;

		for (j = 0; j < f->n_labels; j++)
			if (strcmp(f->samples[i].values[j], values[j] ? values[j] : ""))
				break;
		if (j == f->n_labels)
			return &f->samples[i];
	}
	if (!create)
		return NULL;
	if (f->n_samples == f->alloc) {
		f->alloc = f->alloc ? f->alloc * 2 : 8;
		f->samples = tg_xreallocarray(f->samples, f->alloc, sizeof(*f->samples));
	}
	s = &f->samples[f->n_samples++];
	memset(s, 0, sizeof(*s));
	for (size_t j = 0; j < f->n_labels; j++)
		s->values[j] = tg_xstrdup(values[j] ? values[j] : "");
	if (f->type == TG_METRIC_HISTOGRAM)
		s->buckets = tg_xcalloc(f->n_bounds ? f->n_bounds : 1, sizeof(*s->buckets));
	return s;
}

enum op { OP_ADD, OP_SET, OP_OBSERVE };

static void update(struct tg_metrics *m, const char *name, const char *const *values, double v,
		   enum op op)
{
	struct family *f;
	struct sample *s;

	pthread_mutex_lock(&m->lock);
	f = find_family(m, name);
	assert(f);
	assert(f->n_labels == 0 || values);
	s = find_sample(f, values, 1);
	switch (op) {
	case OP_ADD:
		assert(f->type != TG_METRIC_HISTOGRAM);
		s->value += v;
		break;
	case OP_SET:
		assert(f->type == TG_METRIC_GAUGE);
		s->value = v;
		break;
	case OP_OBSERVE:
		assert(f->type == TG_METRIC_HISTOGRAM);
		s->value += v;
		s->count++;
		for (size_t i = 0; i < f->n_bounds; i++) {
			if (v <= f->bounds[i]) {
				s->buckets[i]++;
				break;
			}
		}
		break;
	}
	pthread_mutex_unlock(&m->lock);
}

void tg_metrics_add(struct tg_metrics *m, const char *name, const char *const *values, double v)
{
	update(m, name, values, v, OP_ADD);
}

void tg_metrics_set(struct tg_metrics *m, const char *name, const char *const *values, double v)
{
	update(m, name, values, v, OP_SET);
}

void tg_metrics_observe(struct tg_metrics *m, const char *name, const char *const *values, double v)
{
	update(m, name, values, v, OP_OBSERVE);
}

void tg_metrics_remove(struct tg_metrics *m, const char *name, const char *label, const char *value)
{
	struct family *f;
	size_t col, i = 0;

	pthread_mutex_lock(&m->lock);
	f = find_family(m, name);
	assert(f);
	for (col = 0; col < f->n_labels; col++)
		if (!strcmp(f->labels[col], label))
			break;
	assert(col < f->n_labels);
	while (i < f->n_samples) {
		if (strcmp(f->samples[i].values[col], value)) {
			i++;
			continue;
		}
		sample_release(&f->samples[i], f->n_labels);
		memmove(&f->samples[i], &f->samples[i + 1],
			(f->n_samples - i - 1) * sizeof(*f->samples));
		f->n_samples--;
	}
	pthread_mutex_unlock(&m->lock);
}

double tg_metrics_get(struct tg_metrics *m, const char *name, const char *const *values)
{
	struct family *f;
	struct sample *s;
	double v = 0;

	pthread_mutex_lock(&m->lock);
	f = find_family(m, name);
	assert(f);
	s = find_sample(f, values, 0);
	if (s)
		v = f->type == TG_METRIC_HISTOGRAM ? (double)s->count : s->value;
	pthread_mutex_unlock(&m->lock);
	return v;
}

int tg_metrics_escape_label(struct tg_buf *out, const char *value)
{
	const char *p = value, *run = value;
	int rc = 0;

	for (; *p && !rc; p++) {
		const char *esc = *p == '\\'   ? "\\\\"
				  : *p == '"'  ? "\\\""
				  : *p == '\n' ? "\\n"
					       : NULL;

		if (!esc)
			continue;
		rc = tg_buf_put(out, run, (size_t)(p - run));
		if (!rc)
			rc = tg_buf_puts(out, esc);
		run = p + 1;
	}
	if (!rc)
		rc = tg_buf_put(out, run, (size_t)(p - run));
	return rc;
}

/* HELP text escapes only backslash and newline. */
static int escape_help(struct tg_buf *out, const char *text)
{
	int rc = 0;

	for (const char *p = text; *p && !rc; p++) {
		if (*p == '\\')
			rc = tg_buf_puts(out, "\\\\");
		else if (*p == '\n')
			rc = tg_buf_puts(out, "\\n");
		else
			rc = tg_buf_put(out, p, 1);
	}
	return rc;
}

/* Go's strconv.ParseFloat reads all of these; integers print without an
 * exponent up to 2^53 so counters stay readable. */
static int put_value(struct tg_buf *out, double v)
{
	if (isnan(v))
		return tg_buf_puts(out, "NaN");
	if (isinf(v))
		return tg_buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return tg_buf_printf(out, "%.0f", v);
	return tg_buf_printf(out, "%.15g", v);
}

/* {a="x",b="y"} with an optional extra le label for buckets. */
static int put_labels(struct tg_buf *out, const struct family *f, const struct sample *s,
		      const char *le)
{
	int rc = 0;

	if (f->n_labels == 0 && !le)
		return 0;
	rc = tg_buf_puts(out, "{");
	for (size_t i = 0; i < f->n_labels && !rc; i++) {
		rc = tg_buf_printf(out, "%s%s=\"", i ? "," : "", f->labels[i]);
		if (!rc)
			rc = tg_metrics_escape_label(out, s->values[i]);
		if (!rc)
			rc = tg_buf_puts(out, "\"");
	}
	if (!rc && le)
		rc = tg_buf_printf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
	if (!rc)
		rc = tg_buf_puts(out, "}");
	return rc;
}

/* One sample line: name+suffix, labels (with le for buckets), value. */
static int put_sample(struct tg_buf *out, const struct family *f, const char *suffix,
		      const struct sample *s, const char *le, double v)
{
	int rc = tg_buf_printf(out, "%s%s", f->name, suffix);

	if (!rc)
		rc = put_labels(out, f, s, le);
	if (!rc)
		rc = tg_buf_puts(out, " ");
	if (!rc)
		rc = put_value(out, v);
	if (!rc)
		rc = tg_buf_puts(out, "\n");
	return rc;
}

static int render_histogram(struct tg_buf *out, const struct family *f, const struct sample *s)
{
	unsigned long long cum = 0;
	char le[64];
	int rc = 0;

	for (size_t i = 0; i <= f->n_bounds && !rc; i++) {
		if (i < f->n_bounds) {
			cum += s->buckets[i];
			snprintf(le, sizeof(le), "%g", f->bounds[i]);
		} else {
			cum = s->count;
			snprintf(le, sizeof(le), "+Inf");
		}
		rc = put_sample(out, f, "_bucket", s, le, (double)cum);
	}
	if (!rc)
		rc = put_sample(out, f, "_sum", s, NULL, s->value);
	if (!rc)
		rc = put_sample(out, f, "_count", s, NULL, (double)s->count);
	return rc;
}

int tg_metrics_render(struct tg_metrics *m, struct tg_buf *out)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	for (size_t i = 0; i < m->n_families && !rc; i++) {
		const struct family *f = &m->families[i];

		rc = tg_buf_printf(out, "# HELP %s ", f->name);
		if (!rc)
			rc = escape_help(out, f->help);
		if (!rc)
			rc = tg_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
		for (size_t j = 0; j < f->n_samples && !rc; j++) {
			const struct sample *s = &f->samples[j];

			if (f->type == TG_METRIC_HISTOGRAM) {
				rc = render_histogram(out, f, s);
				continue;
			}
			rc = put_sample(out, f, "", s, NULL, s->value);
		}
	}
	pthread_mutex_unlock(&m->lock);
	return rc;
}
