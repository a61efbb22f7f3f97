/*
 * metrics.c — the Prometheus registry and text exposition (metrics.h).
 *
 * Families, series, copied strings and histogram buckets all come from one arena bounded
 * by ASPEN_METRICS_ARENA_BYTES, so a registry is freed at once and handles never move.
 * Registration checks everything the exposition format relies on (name grammar, label
 * consistency within a family, distinct series, histogram bounds), so rendering cannot
 * produce text a Prometheus server would reject.
 *
 * Format reference: Prometheus "Exposition formats", text format 0.0.4: `# HELP` escapes
 * backslash and newline; label values escape backslash, double quote and newline; a
 * histogram's buckets are cumulative and end with le="+Inf", whose count equals _count.
 */
#include "node/metrics.h"

#include "base/assert.h"
#include <aspen/error.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum metric_type {
    MT_COUNTER,
    MT_GAUGE,
    MT_GAUGE_DOUBLE,
    MT_HISTOGRAM,
};

struct metric_series {
    struct metric_series *next; /* next series of the family, in registration order */
    const char *label_values[ASPEN_METRICS_MAX_LABELS];
    union {
        struct metric_counter counter;
        struct metric_gauge gauge;
        struct metric_gauge_double gauge_double;
        struct metric_histogram histogram;
    } v;
};

struct metric_family {
    const char *name;
    const char *help;
    enum metric_type type;
    uint32_t label_count;
    const char *label_names[ASPEN_METRICS_MAX_LABELS];
    const double *bounds; /* histograms */
    uint32_t bound_count;
    struct metric_series *first, *last;
};

/* Arena chunk: big enough for a few dozen families and their series per chunk. */
enum { ARENA_CHUNK_BYTES = 64 * 1024 };

void metrics_init(struct metrics_registry *r)
{
    memset(r, 0, sizeof(*r));
    arena_init(&r->arena, ARENA_CHUNK_BYTES, ASPEN_METRICS_ARENA_BYTES);
}

void metrics_release(struct metrics_registry *r)
{
    arena_release(&r->arena);
    memset(r, 0, sizeof(*r));
}

/* ---- Validation ---- */

static bool name_char(char c, bool first, bool colon_ok)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c == ':' && colon_ok) ||
           (!first && c >= '0' && c <= '9');
}

/* Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names: [a-zA-Z_][a-zA-Z0-9_]*. */
static bool valid_name(const char *s, bool is_label)
{
    size_t len = strnlen(s, ASPEN_METRICS_MAX_NAME_BYTES);
    if (len == 0 || len == ASPEN_METRICS_MAX_NAME_BYTES)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (!name_char(s[i], i == 0, !is_label))
            return false;
    }
    return true;
}

static bool same_suffixed(const char *a, const char *b, const char *suffix)
{
    size_t lb = strlen(b);
    return strncmp(a, b, lb) == 0 && strcmp(a + lb, suffix) == 0;
}

/* A histogram `h` also exposes h_bucket, h_sum and h_count: no other family may use
 * those names. */
static bool names_collide(const struct metric_family *f, const char *name, enum metric_type type)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    for (size_t i = 0; i < 3; i++) {
        if (f->type == MT_HISTOGRAM && same_suffixed(name, f->name, suffixes[i]))
            return true;
        if (type == MT_HISTOGRAM && same_suffixed(f->name, name, suffixes[i]))
            return true;
    }
    return false;
}

static int check_request(const char *name, const char *help, enum metric_type type,
                         const struct metric_label *labels, size_t label_count,
                         const double *bounds, size_t bound_count)
{
    if (!name || !help || !valid_name(name, false))
        return ASPEN_E_INVALID;
    if (strnlen(help, ASPEN_METRICS_MAX_HELP_BYTES) == ASPEN_METRICS_MAX_HELP_BYTES)
        return ASPEN_E_INVALID;
    if (label_count > ASPEN_METRICS_MAX_LABELS || (label_count && !labels))
        return ASPEN_E_INVALID;
    for (size_t i = 0; i < label_count; i++) {
        const char *ln = labels[i].name, *lv = labels[i].value;
        if (!ln || !lv || !valid_name(ln, true) || strncmp(ln, "__", 2) == 0)
            return ASPEN_E_INVALID; /* names starting with __ are Prometheus's own */
        if (type == MT_HISTOGRAM && strcmp(ln, "le") == 0)
            return ASPEN_E_INVALID; /* the bucket label */
        if (strnlen(lv, ASPEN_METRICS_MAX_LABEL_VALUE_BYTES) == ASPEN_METRICS_MAX_LABEL_VALUE_BYTES)
            return ASPEN_E_INVALID;
        for (size_t k = 0; k < i; k++) {
            if (strcmp(labels[k].name, ln) == 0)
                return ASPEN_E_INVALID;
        }
    }
    if (type == MT_HISTOGRAM) {
        if (!bounds || bound_count == 0 || bound_count > ASPEN_METRICS_MAX_BUCKETS)
            return ASPEN_E_INVALID;
        for (size_t i = 0; i < bound_count; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && !(bounds[i] > bounds[i - 1])))
                return ASPEN_E_INVALID;
        }
    }
    return 0;
}

/* 0 when an existing family matches the request's shape, ASPEN_E_INVALID otherwise. */
static int check_family(const struct metric_family *f, const char *help, enum metric_type type,
                        const struct metric_label *labels, size_t label_count, const double *bounds,
                        size_t bound_count)
{
    if (f->type != type || strcmp(f->help, help) != 0 || f->label_count != label_count)
        return ASPEN_E_INVALID;
    for (size_t i = 0; i < label_count; i++) {
        if (strcmp(f->label_names[i], labels[i].name) != 0)
            return ASPEN_E_INVALID;
    }
    if (type == MT_HISTOGRAM) {
        if (f->bound_count != bound_count)
            return ASPEN_E_INVALID;
        for (size_t i = 0; i < bound_count; i++) {
            if (f->bounds[i] != bounds[i])
                return ASPEN_E_INVALID;
        }
    }
    return 0;
}

static bool series_matches(const struct metric_family *f, const struct metric_series *s,
                           const struct metric_label *labels)
{
    for (uint32_t i = 0; i < f->label_count; i++) {
        if (strcmp(s->label_values[i], labels[i].value) != 0)
            return false;
    }
    return true;
}

/* ---- Registration ---- */

static const char *copy_string(struct arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = arena_alloc(a, n, 1);
    if (p)
        memcpy(p, s, n);
    return p;
}

static struct metric_family *family_new(struct metrics_registry *r, const char *name,
                                        const char *help, enum metric_type type,
                                        const struct metric_label *labels, size_t label_count,
                                        const double *bounds, size_t bound_count)
{
    struct metric_family *f = arena_alloc(&r->arena, sizeof(*f), _Alignof(struct metric_family));
    if (!f)
        return NULL;
    memset(f, 0, sizeof(*f));
    f->type = type;
    f->label_count = (uint32_t)label_count;
    f->name = copy_string(&r->arena, name);
    f->help = copy_string(&r->arena, help);
    if (!f->name || !f->help)
        return NULL;
    for (size_t i = 0; i < label_count; i++) {
        f->label_names[i] = copy_string(&r->arena, labels[i].name);
        if (!f->label_names[i])
            return NULL;
    }
    if (type == MT_HISTOGRAM) {
        double *b = arena_alloc(&r->arena, bound_count * sizeof(double), _Alignof(double));
        if (!b)
            return NULL;
        memcpy(b, bounds, bound_count * sizeof(double));
        f->bounds = b;
        f->bound_count = (uint32_t)bound_count;
    }
    return f;
}

static int register_series(struct metrics_registry *r, const char *name, const char *help,
                           enum metric_type type, const struct metric_label *labels,
                           size_t label_count, const double *bounds, size_t bound_count,
                           struct metric_series **out)
{
    int rc = check_request(name, help, type, labels, label_count, bounds, bound_count);
    if (rc != 0)
        return rc;
    struct metric_family *f = NULL;
    for (uint32_t i = 0; i < r->family_count; i++) {
        if (strcmp(r->families[i]->name, name) == 0) {
            f = r->families[i];
            break;
        }
        if (names_collide(r->families[i], name, type))
            return ASPEN_E_INVALID;
    }
    if (f) {
        rc = check_family(f, help, type, labels, label_count, bounds, bound_count);
        if (rc != 0)
            return rc;
        for (struct metric_series *s = f->first; s; s = s->next) {
            if (series_matches(f, s, labels))
                return ASPEN_E_EXISTS;
        }
    } else if (r->family_count == ASPEN_METRICS_MAX_FAMILIES) {
        return ASPEN_E_FULL;
    }
    if (r->series_count == ASPEN_METRICS_MAX_SERIES)
        return ASPEN_E_FULL;

    /* Allocate everything before linking anything, so a failure registers nothing (the
     * arena space it used is only returned by metrics_release). */
    bool is_new = f == NULL;
    if (is_new) {
        f = family_new(r, name, help, type, labels, label_count, bounds, bound_count);
        if (!f)
            return ASPEN_E_NOMEM;
    }
    struct metric_series *s = arena_alloc(&r->arena, sizeof(*s), _Alignof(struct metric_series));
    if (!s)
        return ASPEN_E_NOMEM;
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < label_count; i++) {
        s->label_values[i] = copy_string(&r->arena, labels[i].value);
        if (!s->label_values[i])
            return ASPEN_E_NOMEM;
    }
    if (type == MT_HISTOGRAM) {
        size_t n = (bound_count + 1) * sizeof(uint64_t);
        uint64_t *counts = arena_alloc(&r->arena, n, _Alignof(uint64_t));
        if (!counts)
            return ASPEN_E_NOMEM;
        memset(counts, 0, n);
        s->v.histogram.bounds = f->bounds;
        s->v.histogram.bucket_count = counts;
        s->v.histogram.n = f->bound_count;
    }

    if (is_new)
        r->families[r->family_count++] = f;
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    r->series_count++;
    *out = s;
    return 0;
}

int metrics_register_counter(struct metrics_registry *r, const char *name, const char *help,
                             const struct metric_label *labels, size_t label_count,
                             struct metric_counter **out)
{
    struct metric_series *s;
    int rc = register_series(r, name, help, MT_COUNTER, labels, label_count, NULL, 0, &s);
    if (rc == 0)
        *out = &s->v.counter;
    return rc;
}

int metrics_register_gauge(struct metrics_registry *r, const char *name, const char *help,
                           const struct metric_label *labels, size_t label_count,
                           struct metric_gauge **out)
{
    struct metric_series *s;
    int rc = register_series(r, name, help, MT_GAUGE, labels, label_count, NULL, 0, &s);
    if (rc == 0)
        *out = &s->v.gauge;
    return rc;
}

int metrics_register_gauge_double(struct metrics_registry *r, const char *name, const char *help,
                                  const struct metric_label *labels, size_t label_count,
                                  struct metric_gauge_double **out)
{
    struct metric_series *s;
    int rc = register_series(r, name, help, MT_GAUGE_DOUBLE, labels, label_count, NULL, 0, &s);
    if (rc == 0)
        *out = &s->v.gauge_double;
    return rc;
}

int metrics_register_histogram(struct metrics_registry *r, const char *name, const char *help,
                               const struct metric_label *labels, size_t label_count,
                               const double *bounds, size_t bound_count,
                               struct metric_histogram **out)
{
    struct metric_series *s;
    int rc =
        register_series(r, name, help, MT_HISTOGRAM, labels, label_count, bounds, bound_count, &s);
    if (rc == 0)
        *out = &s->v.histogram;
    return rc;
}

static double round_significant(double v, int digits)
{
    char text[64];
    snprintf(text, sizeof(text), "%.*g", digits, v);
    return strtod(text, NULL);
}

size_t metrics_buckets_exponential(double start, double factor, size_t count, double *out)
{
    ASPEN_ASSERT(start > 0 && factor > 1 && count <= ASPEN_METRICS_MAX_BUCKETS);
    double v = start;
    for (size_t i = 0; i < count; i++, v *= factor)
        out[i] = round_significant(v, 6);
    return count;
}

/* ---- Rendering ---- */

/* The shortest decimal that reads back as v; Prometheus's spellings of the specials. */
static int append_double(struct buf *out, double v)
{
    if (isnan(v))
        return buf_printf(out, "NaN");
    if (isinf(v))
        return buf_printf(out, "%s", v > 0 ? "+Inf" : "-Inf");
    char text[40];
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(text, sizeof(text), "%.*g", digits, v);
        if (strtod(text, NULL) == v)
            break;
    }
    return buf_printf(out, "%s", text);
}

/* Escapes backslash and newline, and for label values (quoted) also the double quote. */
static int append_escaped(struct buf *out, const char *s, bool quote)
{
    int rc = 0;
    size_t start = 0, i = 0;
    for (; rc == 0 && s[i]; i++) {
        const char *esc = s[i] == '\\'             ? "\\\\"
                          : s[i] == '\n'           ? "\\n"
                          : (quote && s[i] == '"') ? "\\\""
                                                   : NULL;
        if (!esc)
            continue;
        rc = buf_append(out, s + start, i - start);
        if (rc == 0)
            rc = buf_append(out, esc, 2);
        start = i + 1;
    }
    return rc ? rc : buf_append(out, s + start, i - start);
}

/* `name{a="x",b="y"}` (or just `name`), with an optional extra le label and suffix. */
static int append_series_name(struct buf *out, const struct metric_family *f,
                              const struct metric_series *s, const char *suffix, const double *le)
{
    int rc = buf_printf(out, "%s%s", f->name, suffix);
    bool has_le = le != NULL;
    if (rc != 0 || (f->label_count == 0 && !has_le))
        return rc;
    rc = buf_append_u8(out, '{');
    for (uint32_t i = 0; rc == 0 && i < f->label_count; i++) {
        rc = buf_printf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
        if (rc == 0)
            rc = append_escaped(out, s->label_values[i], true);
        if (rc == 0)
            rc = buf_append_u8(out, '"');
    }
    if (rc == 0 && has_le) {
        rc = buf_printf(out, "%sle=\"", f->label_count ? "," : "");
        if (rc == 0)
            rc = append_double(out, *le);
        if (rc == 0)
            rc = buf_append_u8(out, '"');
    }
    return rc ? rc : buf_append_u8(out, '}');
}

static int render_histogram(struct buf *out, const struct metric_family *f,
                            const struct metric_series *s)
{
    const struct metric_histogram *h = &s->v.histogram;
    static const double inf = INFINITY; /* the last bucket's le, printed "+Inf" */
    uint64_t cumulative = 0;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i <= h->n; i++) {
        cumulative += h->bucket_count[i];
        rc = append_series_name(out, f, s, "_bucket", i < h->n ? &h->bounds[i] : &inf);
        if (rc == 0)
            rc = buf_printf(out, " %" PRIu64 "\n", cumulative);
    }
    if (rc == 0)
        rc = append_series_name(out, f, s, "_sum", NULL);
    if (rc == 0)
        rc = buf_append_u8(out, ' ');
    if (rc == 0)
        rc = append_double(out, h->sum);
    if (rc == 0)
        rc = buf_append_u8(out, '\n');
    if (rc == 0)
        rc = append_series_name(out, f, s, "_count", NULL);
    if (rc == 0)
        rc = buf_printf(out, " %" PRIu64 "\n", h->count);
    return rc;
}

static int render_family(struct buf *out, const struct metric_family *f)
{
    static const char *const type_names[] = {
        [MT_COUNTER] = "counter",
        [MT_GAUGE] = "gauge",
        [MT_GAUGE_DOUBLE] = "gauge",
        [MT_HISTOGRAM] = "histogram",
    };
    int rc = buf_printf(out, "# HELP %s ", f->name);
    if (rc == 0)
        rc = append_escaped(out, f->help, false);
    if (rc == 0)
        rc = buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
    for (const struct metric_series *s = f->first; rc == 0 && s; s = s->next) {
        if (f->type == MT_HISTOGRAM) {
            rc = render_histogram(out, f, s);
            continue;
        }
        rc = append_series_name(out, f, s, "", NULL);
        if (rc != 0)
            break;
        switch (f->type) {
        case MT_COUNTER:
            rc = buf_printf(out, " %" PRIu64 "\n", s->v.counter.value);
            break;
        case MT_GAUGE:
            rc = buf_printf(out, " %" PRId64 "\n", s->v.gauge.value);
            break;
        case MT_GAUGE_DOUBLE:
            rc = buf_append_u8(out, ' ');
            if (rc == 0)
                rc = append_double(out, s->v.gauge_double.value);
            if (rc == 0)
                rc = buf_append_u8(out, '\n');
            break;
        case MT_HISTOGRAM:
            ASPEN_UNREACHABLE();
        }
    }
    return rc;
}

int metrics_render(const struct metrics_registry *r, struct buf *out)
{
    size_t before = out->len;
    int rc = 0;
    for (uint32_t i = 0; rc == 0 && i < r->family_count; i++)
        rc = render_family(out, r->families[i]);
    if (rc != 0)
        out->len = before;
    return rc;
}
