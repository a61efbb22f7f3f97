/*
 * metrics.h — a small Prometheus metrics registry and its text exposition (format 0.0.4).
 *
 * Families (a name, a help sentence, a type) hold series (one value per fixed set of
 * label values). Everything is registered at start-up, from a bounded budget
 * (ASPEN_METRICS_MAX_* in constants.h), and each registration hands back a handle whose
 * updates are plain stores: the node's loop is single-threaded, and a histogram
 * observation is a bucket search and three additions, with no allocation.
 *
 *     struct metric_histogram *fsync;
 *     double b[16];
 *     size_t n = metrics_buckets_exponential(0.0001, 2, 14, b);
 *     metrics_register_histogram(&reg, "aspen_disk_fsync_seconds",
 *                                "Latency of fsync calls.", NULL, 0, b, n, &fsync);
 *     ...
 *     metrics_histogram_observe(fsync, seconds);
 *
 * metrics_render writes every family as `# HELP`, `# TYPE` and its samples; histograms as
 * cumulative `_bucket{le="..."}` lines ending with `+Inf`, then `_sum` and `_count`.
 */
#ifndef ASPEN_NODE_METRICS_H
#define ASPEN_NODE_METRICS_H

#include "base/buf.h"
#include "base/constants.h"
#include "base/mem.h"

#include <stddef.h>
#include <stdint.h>

/* The Content-Type of metrics_render's output. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- Handles: updated in place by the owner of the registry's thread ---- */

struct metric_counter {
    uint64_t value; /* only ever grows */
};

struct metric_gauge {
    int64_t value;
};

struct metric_gauge_double {
    double value;
};

struct metric_histogram {
    const double *bounds;   /* the family's upper bounds, increasing; owned by the registry */
    uint64_t *bucket_count; /* bucket_count[i]: observations in (bounds[i-1], bounds[i]]; the
                               last, [n], those above every bound; owned by the registry */
    uint32_t n;             /* number of bounds */
    uint64_t count;
    double sum;
};

static inline void metrics_counter_add(struct metric_counter *c, uint64_t n)
{
    c->value += n;
}

static inline void metrics_counter_inc(struct metric_counter *c)
{
    c->value++;
}

static inline void metrics_gauge_set(struct metric_gauge *g, int64_t v)
{
    g->value = v;
}

static inline void metrics_gauge_add(struct metric_gauge *g, int64_t delta)
{
    g->value += delta;
}

static inline void metrics_gauge_double_set(struct metric_gauge_double *g, double v)
{
    g->value = v;
}

/* Counts v in the first bucket whose bound is >= v (a NaN lands above every bound, as in
 * Prometheus's client libraries). No allocation; at most ASPEN_METRICS_MAX_BUCKETS
 * comparisons. */
static inline void metrics_histogram_observe(struct metric_histogram *h, double v)
{
    uint32_t i = 0;
    while (i < h->n && !(v <= h->bounds[i]))
        i++;
    h->bucket_count[i]++;
    h->count++;
    h->sum += v;
}

/* ---- The registry ---- */

struct metric_family;

struct metric_label {
    const char *name;  /* [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", not "le" */
    const char *value; /* any UTF-8 without NUL, up to ASPEN_METRICS_MAX_LABEL_VALUE_BYTES */
};

struct metrics_registry {
    struct arena arena; /* owns families, series, copied strings and buckets */
    struct metric_family *families[ASPEN_METRICS_MAX_FAMILIES]; /* registration order */
    uint32_t family_count;
    uint32_t series_count;
};

/* Allocates nothing until the first registration. */
void metrics_init(struct metrics_registry *r);

/* Frees everything; every handle becomes invalid. */
void metrics_release(struct metrics_registry *r);

/* Registers one series: the family `name` (created on first use, with `help`) and the
 * label values given (labels[0..label_count), copied; may be NULL when label_count is 0).
 * A family's later series must repeat its type, help, label names in order and, for
 * histograms, bounds. On success *out points to the series' value, valid until
 * metrics_release.
 *
 * Errors: ASPEN_E_INVALID (a name outside Prometheus's grammar [a-zA-Z_:][a-zA-Z0-9_:]*, a
 * bad label name, more than ASPEN_METRICS_MAX_LABELS labels, a string too long, a
 * mismatch with the family's earlier series, bad bounds), ASPEN_E_EXISTS (this series is
 * already registered), ASPEN_E_FULL (ASPEN_METRICS_MAX_FAMILIES or _SERIES reached),
 * ASPEN_E_NOMEM. On error nothing is registered. */
int metrics_register_counter(struct metrics_registry *r, const char *name, const char *help,
                             const struct metric_label *labels, size_t label_count,
                             struct metric_counter **out);
int metrics_register_gauge(struct metrics_registry *r, const char *name, const char *help,
                           const struct metric_label *labels, size_t label_count,
                           struct metric_gauge **out);
int metrics_register_gauge_double(struct metrics_registry *r, const char *name, const char *help,
                                  const struct metric_label *labels, size_t label_count,
                                  struct metric_gauge_double **out);

/* bounds[0..bound_count): finite and strictly increasing, 1..ASPEN_METRICS_MAX_BUCKETS of
 * them (copied; the +Inf bucket is implicit). */
int metrics_register_histogram(struct metrics_registry *r, const char *name, const char *help,
                               const struct metric_label *labels, size_t label_count,
                               const double *bounds, size_t bound_count,
                               struct metric_histogram **out);

/* Fills out[0..count) with start * factor^i, each rounded to 6 significant digits so the
 * bounds print as written (0.0001, 0.0002, 0.0004, ...). Returns count. start > 0,
 * factor > 1, count <= ASPEN_METRICS_MAX_BUCKETS (asserted). */
size_t metrics_buckets_exponential(double start, double factor, size_t count, double *out);

/* Appends the text exposition of every family, in registration order (series in
 * registration order within a family). 0, ASPEN_E_TOO_LARGE or ASPEN_E_NOMEM; on error
 * out is as it was before the call. */
int metrics_render(const struct metrics_registry *r, struct buf *out);

#endif
