/*
 * The Prometheus registry (src/node/metrics.h): rendered text compared with hand-written
 * exposition, escaping, cumulative buckets, registration rules and limits.
 */
#include "test.h"

#include "node/metrics.h"

#include <math.h>

static const char *render(const struct metrics_registry *r, struct buf *b)
{
    buf_clear(b);
    if (metrics_render(r, b) != 0 || buf_append_u8(b, 0) != 0)
        return "<render failed>";
    return (const char *)b->data;
}

static void test_counter_and_gauges(void)
{
    struct metrics_registry r;
    struct buf b;
    metrics_init(&r);
    buf_init(&b, 1 << 20);
    struct metric_counter *c;
    struct metric_gauge *g1, *g2;
    struct metric_gauge_double *d;
    CHECK_OK(metrics_register_counter(&r, "aspen_raft_proposals_total", "Proposals stepped.", NULL,
                                      0, &c));
    const struct metric_label peer_a[] = {{"peer", "a1b2"}, {"state", "replicate"}};
    const struct metric_label peer_b[] = {{"peer", "c3d4"}, {"state", "probe"}};
    CHECK_OK(metrics_register_gauge(&r, "aspen_peer_match_index", "Match index per peer.", peer_a,
                                    2, &g1));
    CHECK_OK(metrics_register_gauge(&r, "aspen_peer_match_index", "Match index per peer.", peer_b,
                                    2, &g2));
    CHECK_OK(metrics_register_gauge_double(&r, "aspen_ratio", "A ratio.", NULL, 0, &d));
    metrics_counter_inc(c);
    metrics_counter_add(c, 41);
    metrics_gauge_set(g1, 1234);
    metrics_gauge_set(g2, -5);
    metrics_gauge_add(g2, 2);
    metrics_gauge_double_set(d, 0.25);
    const char *want = "# HELP aspen_raft_proposals_total Proposals stepped.\n"
                       "# TYPE aspen_raft_proposals_total counter\n"
                       "aspen_raft_proposals_total 42\n"
                       "# HELP aspen_peer_match_index Match index per peer.\n"
                       "# TYPE aspen_peer_match_index gauge\n"
                       "aspen_peer_match_index{peer=\"a1b2\",state=\"replicate\"} 1234\n"
                       "aspen_peer_match_index{peer=\"c3d4\",state=\"probe\"} -3\n"
                       "# HELP aspen_ratio A ratio.\n"
                       "# TYPE aspen_ratio gauge\n"
                       "aspen_ratio 0.25\n";
    const char *got = render(&r, &b);
    bool ok = strcmp(got, want) == 0;
    if (!ok)
        test_fail(__FILE__, __LINE__, "got:\n%s", got);
    buf_release(&b);
    metrics_release(&r);
}

static void test_double_spellings(void)
{
    struct metrics_registry r;
    struct buf b;
    metrics_init(&r);
    buf_init(&b, 1 << 20);
    struct metric_gauge_double *g[6];
    const char *names[] = {"g_nan", "g_pinf", "g_ninf", "g_small", "g_big", "g_third"};
    for (int i = 0; i < 6; i++)
        CHECK_OK(metrics_register_gauge_double(&r, names[i], "x", NULL, 0, &g[i]));
    metrics_gauge_double_set(g[0], NAN);
    metrics_gauge_double_set(g[1], INFINITY);
    metrics_gauge_double_set(g[2], -INFINITY);
    metrics_gauge_double_set(g[3], 1e-05);
    metrics_gauge_double_set(g[4], 1e21);
    metrics_gauge_double_set(g[5], 1.0 / 3.0);
    const char *got = render(&r, &b);
    bool ok = strstr(got, "\ng_nan NaN\n") && strstr(got, "\ng_pinf +Inf\n") &&
              strstr(got, "\ng_ninf -Inf\n") && strstr(got, "\ng_small 1e-05\n") &&
              strstr(got, "\ng_big 1e+21\n") && strstr(got, "\ng_third 0.3333333333333333\n");
    if (!ok)
        test_fail(__FILE__, __LINE__, "got:\n%s", got);
    buf_release(&b);
    metrics_release(&r);
}

static void test_escaping(void)
{
    struct metrics_registry r;
    struct buf b;
    metrics_init(&r);
    buf_init(&b, 1 << 20);
    struct metric_counter *c;
    const struct metric_label l[] = {{"path", "C:\\dir \"quoted\"\nnext"}};
    CHECK_OK(metrics_register_counter(
        &r, "esc_total", "Help with \\ backslash,\nnewline and \"quotes\".", l, 1, &c));
    const char *want = "# HELP esc_total Help with \\\\ backslash,\\nnewline and \"quotes\".\n"
                       "# TYPE esc_total counter\n"
                       "esc_total{path=\"C:\\\\dir \\\"quoted\\\"\\nnext\"} 0\n";
    const char *got = render(&r, &b);
    bool ok = strcmp(got, want) == 0;
    if (!ok)
        test_fail(__FILE__, __LINE__, "got:\n%s", got);
    buf_release(&b);
    metrics_release(&r);
}

static void test_histogram(void)
{
    struct metrics_registry r;
    struct buf b;
    metrics_init(&r);
    buf_init(&b, 1 << 20);
    struct metric_histogram *h, *h2;
    const double bounds[] = {0.001, 0.01, 0.1};
    const struct metric_label disk[] = {{"disk", "wal"}};
    const struct metric_label disk2[] = {{"disk", "db"}};
    CHECK_OK(metrics_register_histogram(&r, "aspen_fsync_seconds", "Latency of fsync.", disk, 1,
                                        bounds, 3, &h));
    CHECK_OK(metrics_register_histogram(&r, "aspen_fsync_seconds", "Latency of fsync.", disk2, 1,
                                        bounds, 3, &h2));
    uint64_t calls = mem_alloc_calls();
    metrics_histogram_observe(h, 0.0005);
    metrics_histogram_observe(h, 0.001); /* a bound belongs to its own bucket (le) */
    metrics_histogram_observe(h, 0.05);
    metrics_histogram_observe(h, 0.5);
    metrics_histogram_observe(h, 2);
    CHECK_EQ_U64(mem_alloc_calls(), calls); /* observing allocates nothing */
    const char *want = "# HELP aspen_fsync_seconds Latency of fsync.\n"
                       "# TYPE aspen_fsync_seconds histogram\n"
                       "aspen_fsync_seconds_bucket{disk=\"wal\",le=\"0.001\"} 2\n"
                       "aspen_fsync_seconds_bucket{disk=\"wal\",le=\"0.01\"} 2\n"
                       "aspen_fsync_seconds_bucket{disk=\"wal\",le=\"0.1\"} 3\n"
                       "aspen_fsync_seconds_bucket{disk=\"wal\",le=\"+Inf\"} 5\n"
                       "aspen_fsync_seconds_sum{disk=\"wal\"} 2.5515\n"
                       "aspen_fsync_seconds_count{disk=\"wal\"} 5\n"
                       "aspen_fsync_seconds_bucket{disk=\"db\",le=\"0.001\"} 0\n"
                       "aspen_fsync_seconds_bucket{disk=\"db\",le=\"0.01\"} 0\n"
                       "aspen_fsync_seconds_bucket{disk=\"db\",le=\"0.1\"} 0\n"
                       "aspen_fsync_seconds_bucket{disk=\"db\",le=\"+Inf\"} 0\n"
                       "aspen_fsync_seconds_sum{disk=\"db\"} 0\n"
                       "aspen_fsync_seconds_count{disk=\"db\"} 0\n";
    const char *got = render(&r, &b);
    bool ok = strcmp(got, want) == 0;
    if (!ok)
        test_fail(__FILE__, __LINE__, "got:\n%s", got);
    buf_release(&b);
    metrics_release(&r);
}

static void test_histogram_without_labels(void)
{
    struct metrics_registry r;
    struct buf b;
    metrics_init(&r);
    buf_init(&b, 1 << 20);
    struct metric_histogram *h;
    const double bounds[] = {1};
    CHECK_OK(metrics_register_histogram(&r, "h", "H.", NULL, 0, bounds, 1, &h));
    metrics_histogram_observe(h, NAN); /* above every bound, as client libraries do */
    const char *want = "# HELP h H.\n# TYPE h histogram\n"
                       "h_bucket{le=\"1\"} 0\nh_bucket{le=\"+Inf\"} 1\nh_sum NaN\nh_count 1\n";
    const char *got = render(&r, &b);
    bool ok = strcmp(got, want) == 0;
    if (!ok)
        test_fail(__FILE__, __LINE__, "got:\n%s", got);
    buf_release(&b);
    metrics_release(&r);
}

static void test_exponential_buckets(void)
{
    double b[ASPEN_METRICS_MAX_BUCKETS];
    CHECK_EQ(metrics_buckets_exponential(0.0001, 2, 14, b), 14);
    CHECK(b[0] == 0.0001);
    CHECK(b[1] == 0.0002);
    CHECK(b[13] == 0.8192);
    CHECK_EQ(metrics_buckets_exponential(0.0001, 10, 5, b), 5);
    CHECK(b[1] == 0.001 && b[2] == 0.01 && b[3] == 0.1 && b[4] == 1);

    struct metrics_registry r;
    struct buf out;
    metrics_init(&r);
    buf_init(&out, 1 << 20);
    struct metric_histogram *h;
    CHECK_OK(metrics_register_histogram(&r, "x_seconds", "X.", NULL, 0, b, 5, &h));
    const char *got = render(&r, &out);
    bool ok =
        strstr(got, "x_seconds_bucket{le=\"0.0001\"} 0\nx_seconds_bucket{le=\"0.001\"} 0\n") &&
        strstr(got, "x_seconds_bucket{le=\"1\"} 0\n");
    if (!ok)
        test_fail(__FILE__, __LINE__, "got:\n%s", got);
    buf_release(&out);
    metrics_release(&r);
}

static void test_invalid_registrations(void)
{
    struct metrics_registry r;
    metrics_init(&r);
    struct metric_counter *c;
    struct metric_histogram *h;
    const double good[] = {1, 2};
    const double unsorted[] = {2, 1};
    const double dup[] = {1, 1};
    const double nan_bound[] = {1, NAN};
    const double inf_bound[] = {1, INFINITY};
    const struct metric_label reserved[] = {{"__name", "x"}};
    const struct metric_label dash[] = {{"a-b", "x"}};
    const struct metric_label twice[] = {{"a", "x"}, {"a", "y"}};
    const struct metric_label le[] = {{"le", "1"}};
    const struct metric_label five[] = {{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}, {"e", "5"}};
    const struct metric_label colon[] = {{"a:b", "x"}};

    CHECK_ERR(metrics_register_counter(&r, "", "h", NULL, 0, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "1abc", "h", NULL, 0, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "a-b", "h", NULL, 0, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "a b", "h", NULL, 0, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "x", "h", reserved, 1, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "x", "h", dash, 1, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "x", "h", colon, 1, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "x", "h", twice, 2, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "x", "h", five, 5, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_histogram(&r, "h", "h", le, 1, good, 2, &h), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_histogram(&r, "h", "h", NULL, 0, unsorted, 2, &h), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_histogram(&r, "h", "h", NULL, 0, dup, 2, &h), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_histogram(&r, "h", "h", NULL, 0, nan_bound, 2, &h), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_histogram(&r, "h", "h", NULL, 0, inf_bound, 2, &h), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_histogram(&r, "h", "h", NULL, 0, good, 0, &h), ASPEN_E_INVALID);
    char long_name[ASPEN_METRICS_MAX_NAME_BYTES + 1];
    memset(long_name, 'a', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    CHECK_ERR(metrics_register_counter(&r, long_name, "h", NULL, 0, &c), ASPEN_E_INVALID);
    long_name[ASPEN_METRICS_MAX_NAME_BYTES - 1] = '\0'; /* the longest allowed */
    CHECK_OK(metrics_register_counter(&r, long_name, "h", NULL, 0, &c));
    CHECK_OK(
        metrics_register_counter(&r, "ns:sub_total", "colons are in the grammar", NULL, 0, &c));
    CHECK_EQ(r.family_count, 2);
    CHECK_EQ(r.series_count, 2);
    metrics_release(&r);
}

static void test_family_rules(void)
{
    struct metrics_registry r;
    metrics_init(&r);
    struct metric_counter *c;
    struct metric_gauge *g;
    struct metric_histogram *h;
    const double b1[] = {1, 2};
    const double b2[] = {1, 3};
    const struct metric_label a[] = {{"peer", "a"}};
    const struct metric_label other_name[] = {{"node", "b"}};
    CHECK_OK(metrics_register_counter(&r, "c_total", "C.", a, 1, &c));
    CHECK_ERR(metrics_register_counter(&r, "c_total", "C.", a, 1, &c), ASPEN_E_EXISTS);
    CHECK_ERR(metrics_register_gauge(&r, "c_total", "C.", a, 1, &g), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "c_total", "Other help.", a, 1, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "c_total", "C.", other_name, 1, &c), ASPEN_E_INVALID);
    CHECK_ERR(metrics_register_counter(&r, "c_total", "C.", NULL, 0, &c), ASPEN_E_INVALID);
    CHECK_OK(metrics_register_histogram(&r, "lat", "L.", a, 1, b1, 2, &h));
    CHECK_ERR(metrics_register_histogram(&r, "lat", "L.", other_name, 1, b1, 2, &h),
              ASPEN_E_INVALID);
    const struct metric_label b[] = {{"peer", "b"}};
    CHECK_ERR(metrics_register_histogram(&r, "lat", "L.", b, 1, b2, 2, &h), ASPEN_E_INVALID);
    /* A histogram's _count/_sum/_bucket names are taken, both ways round. */
    CHECK_ERR(metrics_register_counter(&r, "lat_count", "X.", NULL, 0, &c), ASPEN_E_INVALID);
    CHECK_OK(metrics_register_counter(&r, "y_sum", "Y.", NULL, 0, &c));
    CHECK_ERR(metrics_register_histogram(&r, "y", "X.", NULL, 0, b1, 2, &h), ASPEN_E_INVALID);
    CHECK_OK(metrics_register_histogram(&r, "c", "X.", NULL, 0, b1, 2, &h)); /* c_total is fine */
    CHECK_EQ(r.family_count, 4);
    CHECK_EQ(r.series_count, 4);
    metrics_release(&r);
}

static void test_limits(void)
{
    struct metrics_registry r;
    metrics_init(&r);
    struct metric_counter *c;
    char name[32], value[32];
    int rc = 0;
    for (int i = 0; i < ASPEN_METRICS_MAX_FAMILIES && rc == 0; i++) {
        snprintf(name, sizeof(name), "f%d", i);
        rc = metrics_register_counter(&r, name, "F.", NULL, 0, &c);
    }
    CHECK_OK(rc);
    CHECK_ERR(metrics_register_counter(&r, "one_more", "F.", NULL, 0, &c), ASPEN_E_FULL);
    /* A new family is refused even though series remain. */
    const struct metric_label l0[] = {{"k", "v"}};
    CHECK_ERR(metrics_register_counter(&r, "f_labelled", "F.", l0, 1, &c), ASPEN_E_FULL);
    CHECK_EQ(r.series_count, ASPEN_METRICS_MAX_FAMILIES);
    metrics_release(&r);

    metrics_init(&r);
    rc = 0;
    for (int i = 0; rc == 0; i++) {
        snprintf(value, sizeof(value), "v%d", i);
        const struct metric_label l[] = {{"k", value}};
        rc = metrics_register_counter(&r, "many_total", "M.", l, 1, &c);
    }
    CHECK_ERR(rc, ASPEN_E_FULL);
    CHECK_EQ(r.series_count, ASPEN_METRICS_MAX_SERIES);
    metrics_release(&r);
}

static void test_render_too_large_leaves_buffer(void)
{
    struct metrics_registry r;
    struct buf b;
    metrics_init(&r);
    buf_init(&b, 64);
    struct metric_counter *c;
    CHECK_OK(metrics_register_counter(&r, "a_rather_long_metric_name_total", "Some help text.",
                                      NULL, 0, &c));
    CHECK_OK(buf_append(&b, "prefix", 6));
    CHECK_ERR(metrics_render(&r, &b), ASPEN_E_TOO_LARGE);
    CHECK_EQ(b.len, 6);
    buf_release(&b);
    metrics_release(&r);
}

static void test_registration_out_of_memory(void)
{
    /* Every allocation failure during registration is reported and registers nothing. */
    for (uint64_t n = 1; n < 10; n++) {
        struct metrics_registry r;
        metrics_init(&r);
        struct metric_histogram *h;
        const double b[] = {1};
        const struct metric_label l[] = {{"k", "v"}};
        mem_fail_at(n, 1);
        int rc = metrics_register_histogram(&r, "h", "H.", l, 1, b, 1, &h);
        mem_fail_at(0, 0);
        CHECK(rc == 0 || rc == ASPEN_E_NOMEM);
        if (rc == ASPEN_E_NOMEM) {
            CHECK_EQ(r.family_count, 0);
            CHECK_EQ(r.series_count, 0);
        }
        metrics_release(&r);
    }
}

static const struct test_case tests[] = {
    TEST(test_counter_and_gauges),
    TEST(test_double_spellings),
    TEST(test_escaping),
    TEST(test_histogram),
    TEST(test_histogram_without_labels),
    TEST(test_exponential_buckets),
    TEST(test_invalid_registrations),
    TEST(test_family_rules),
    TEST(test_limits),
    TEST(test_render_too_large_leaves_buffer),
    TEST(test_registration_out_of_memory),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("node_metrics", tests);
}
