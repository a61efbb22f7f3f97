/*
 * Lessor (kv/lessor.h): grants, revokes and loads; expiry only while primary; promotion
 * refreshing every TTL; keepalive and time-to-live answers; revoke retries; id picking;
 * TTL clamping; and a randomized run against a brute-force model (an array scanned in
 * full on every call) that checks every answer and the order of expired leases.
 */
#include "test.h"

#include "base/constants.h"
#include "base/rand.h"
#include "kv/lessor.h"

#include <stdio.h>
#include <stdlib.h>

#define MIN_TTL ASPEN_LEASE_MIN_TTL_MS
#define RETRY   ASPEN_LEASE_REVOKE_RETRY_MS

static void test_grant_revoke_lookup(void)
{
    struct lessor l;
    lessor_init(&l);
    CHECK_OK(lessor_on_grant(&l, 7, 2000, 0));
    CHECK_ERR(lessor_on_grant(&l, 7, 2000, 0), ASPEN_E_EXISTS);
    CHECK_ERR(lessor_on_grant(&l, 0, 2000, 0), ASPEN_E_INVALID);
    CHECK_ERR(lessor_on_grant(&l, -3, 2000, 0), ASPEN_E_INVALID);
    CHECK_ERR(lessor_on_grant(&l, 8, MIN_TTL - 1, 0), ASPEN_E_INVALID);
    CHECK_ERR(lessor_on_grant(&l, 8, (int64_t)ASPEN_LEASE_MAX_TTL_MS + 1, 0), ASPEN_E_INVALID);
    CHECK_EQ(lessor_count(&l), 1);
    CHECK_OK(lessor_on_revoke(&l, 7));
    CHECK_ERR(lessor_on_revoke(&l, 7), ASPEN_E_LEASE_NOT_FOUND);
    CHECK_EQ(lessor_count(&l), 0);
    /* Many leases: growth of every structure, and removal from the middle. */
    for (int64_t id = 1; id <= 1000; id++)
        CHECK_OK(lessor_on_grant(&l, id * 3, MIN_TTL + id, 0));
    for (int64_t id = 1; id <= 1000; id += 2)
        CHECK_OK(lessor_on_revoke(&l, id * 3));
    CHECK_EQ(lessor_count(&l), 500);
    lessor_promote(&l, 0);
    for (int64_t id = 1; id <= 1000; id++) {
        int64_t left, ttl;
        int rc = lessor_remaining(&l, id * 3, 0, &left, &ttl);
        if (id % 2) {
            CHECK_ERR(rc, ASPEN_E_LEASE_NOT_FOUND);
        } else {
            CHECK_OK(rc);
            CHECK_EQ(left, MIN_TTL + id);
            CHECK_EQ(ttl, MIN_TTL + id);
        }
    }
    lessor_release(&l);
}

static void test_not_primary(void)
{
    struct lessor l;
    lessor_init(&l);
    CHECK_OK(lessor_on_grant(&l, 1, MIN_TTL, 0));
    int64_t ids[4], ttl, left;
    /* A follower tracks leases but never expires them, however late it is. */
    CHECK_EQ(lessor_expired(&l, INT64_MAX / 2, ids, 4), 0);
    CHECK_ERR(lessor_keepalive(&l, 1, 0, &ttl), ASPEN_E_NOT_LEADER);
    CHECK_ERR(lessor_remaining(&l, 1, 0, &left, NULL), ASPEN_E_NOT_LEADER);
    lessor_promote(&l, 100);
    CHECK(lessor_is_primary(&l));
    CHECK_EQ(lessor_expired(&l, 100 + MIN_TTL - 1, ids, 4), 0);
    CHECK_EQ(lessor_expired(&l, 100 + MIN_TTL, ids, 4), 1);
    CHECK_EQ(ids[0], 1);
    lessor_demote(&l);
    CHECK_EQ(lessor_expired(&l, INT64_MAX / 2, ids, 4), 0);
    lessor_release(&l);
}

/* etcd's rule: a new leader gives every lease its full TTL again, so a lease that had
 * 100 ms left under the old leader does not expire early under the new one. */
static void test_promote_refreshes(void)
{
    struct lessor l;
    lessor_init(&l);
    lessor_promote(&l, 0);
    CHECK_OK(lessor_on_grant(&l, 1, 5000, 0));
    int64_t ids[2], left;
    CHECK_OK(lessor_remaining(&l, 1, 4900, &left, NULL));
    CHECK_EQ(left, 100);
    lessor_demote(&l);
    lessor_promote(&l, 10000);
    CHECK_OK(lessor_remaining(&l, 1, 10000, &left, NULL));
    CHECK_EQ(left, 5000);
    CHECK_EQ(lessor_expired(&l, 14999, ids, 2), 0);
    CHECK_EQ(lessor_expired(&l, 15000, ids, 2), 1);
    lessor_release(&l);
}

static void test_keepalive_and_revoking(void)
{
    struct lessor l;
    lessor_init(&l);
    lessor_promote(&l, 0);
    CHECK_OK(lessor_on_grant(&l, 1, 2000, 0));
    CHECK_OK(lessor_on_grant(&l, 2, 3000, 0));
    int64_t ttl, ids[4], left;
    CHECK_OK(lessor_keepalive(&l, 1, 1500, &ttl));
    CHECK_EQ(ttl, 2000);
    CHECK_ERR(lessor_keepalive(&l, 9, 1500, &ttl), ASPEN_E_LEASE_NOT_FOUND);
    /* Lease 2 expires at 3000, lease 1 (kept alive) at 3500. */
    CHECK_EQ(lessor_expired(&l, 3000, ids, 4), 1);
    CHECK_EQ(ids[0], 2);
    /* Revoking: no keepalive, nothing left, not reported again before the retry time. */
    CHECK_ERR(lessor_keepalive(&l, 2, 3001, &ttl), ASPEN_E_LEASE_NOT_FOUND);
    CHECK_OK(lessor_remaining(&l, 2, 3001, &left, NULL));
    CHECK_EQ(left, 0);
    CHECK_EQ(lessor_expired(&l, 3000 + RETRY - 1, ids, 4), 1);
    CHECK_EQ(ids[0], 1);
    /* The revoke of 2 was lost: reported again at its retry time, then every RETRY. */
    CHECK_EQ(lessor_expired(&l, 3000 + RETRY, ids, 4), 1);
    CHECK_EQ(ids[0], 2);
    CHECK_EQ(lessor_expired(&l, 3000 + 2 * RETRY - 1, ids, 4), 1);
    CHECK_EQ(ids[0], 1);
    /* A past-expiry lease not yet reported cannot be kept alive either. */
    CHECK_OK(lessor_on_grant(&l, 3, 1000, 20000));
    CHECK_ERR(lessor_keepalive(&l, 3, 21000, &ttl), ASPEN_E_LEASE_NOT_FOUND);
    CHECK_OK(lessor_on_revoke(&l, 2));
    CHECK_OK(lessor_on_revoke(&l, 1));
    CHECK_EQ(lessor_expired(&l, 100000, ids, 4), 1);
    CHECK_EQ(ids[0], 3);
    lessor_release(&l);
}

static void test_expired_max_and_order(void)
{
    struct lessor l;
    lessor_init(&l);
    lessor_promote(&l, 0);
    for (int64_t id = 1; id <= 10; id++)
        CHECK_OK(lessor_on_grant(&l, id, MIN_TTL + (11 - id) * 10, 0));
    int64_t ids[10];
    CHECK_EQ(lessor_expired(&l, MIN_TTL + 1000, ids, 3), 3);
    CHECK_EQ(ids[0], 10);
    CHECK_EQ(ids[1], 9);
    CHECK_EQ(ids[2], 8);
    CHECK_EQ(lessor_expired(&l, MIN_TTL + 1000, ids, 10), 7);
    CHECK_EQ(ids[6], 1);
    lessor_release(&l);
}

static void test_load(void)
{
    struct lessor l;
    lessor_init(&l);
    CHECK_OK(lessor_on_grant(&l, 99, MIN_TTL, 0));
    struct kv_lease leases[3] = {{1, 2000, 0}, {2, 3000, 0}, {5, 4000, 0}};
    lessor_promote(&l, 0);
    CHECK_OK(lessor_load(&l, leases, 3, 10));
    CHECK_EQ(lessor_count(&l), 3);
    int64_t left;
    CHECK_ERR(lessor_remaining(&l, 99, 10, &left, NULL), ASPEN_E_LEASE_NOT_FOUND);
    CHECK_OK(lessor_remaining(&l, 5, 10, &left, NULL));
    CHECK_EQ(left, 4000);
    struct kv_lease dup[2] = {{1, 2000, 0}, {1, 3000, 0}};
    CHECK_ERR(lessor_load(&l, dup, 2, 0), ASPEN_E_INVALID);
    CHECK_EQ(lessor_count(&l), 0);
    struct kv_lease bad_ttl[1] = {{1, 1, 0}};
    CHECK_ERR(lessor_load(&l, bad_ttl, 1, 0), ASPEN_E_INVALID);
    CHECK(lessor_is_primary(&l));
    lessor_release(&l);
}

static void test_pick_id_and_clamp(void)
{
    struct lessor l;
    lessor_init(&l);
    CHECK_OK(lessor_on_grant(&l, 5, MIN_TTL, 0));
    CHECK_OK(lessor_on_grant(&l, 6, MIN_TTL, 0));
    CHECK_EQ(lessor_pick_id(&l, 5), 7);
    CHECK_EQ(lessor_pick_id(&l, 8), 8);
    CHECK_EQ(lessor_pick_id(&l, 0), 1);
    /* The sign bit is dropped; INT64_MAX wraps to 1 past the top. */
    CHECK_EQ(lessor_pick_id(&l, UINT64_MAX), INT64_MAX);
    CHECK_OK(lessor_on_grant(&l, INT64_MAX, MIN_TTL, 0));
    CHECK_EQ(lessor_pick_id(&l, UINT64_MAX), 1);
    CHECK_EQ(lessor_clamp_ttl(-5), MIN_TTL);
    CHECK_EQ(lessor_clamp_ttl(0), MIN_TTL);
    CHECK_EQ(lessor_clamp_ttl(MIN_TTL + 1), MIN_TTL + 1);
    CHECK_EQ(lessor_clamp_ttl(INT64_MAX), (int64_t)ASPEN_LEASE_MAX_TTL_MS);
    lessor_release(&l);
}

/* ---------------------------------------------------------------------------------------
 * Randomized comparison with a brute-force model
 * ------------------------------------------------------------------------------------- */

#define MODEL_MAX 200

struct model_lease {
    int64_t id, ttl, deadline;
    bool revoking;
};

struct model {
    struct model_lease l[MODEL_MAX];
    size_t n;
    bool primary;
};

static struct model_lease *model_find(struct model *m, int64_t id)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->l[i].id == id)
            return &m->l[i];
    return NULL;
}

static void run_model(uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    struct lessor l;
    lessor_init(&l);
    static struct model m;
    memset(&m, 0, sizeof(m));
    int64_t now = 1000;
    for (int step = 0; step < 3000; step++) {
        now += (int64_t)rng_below(&r, 400);
        /* Ids from a small range so collisions and revokes of absent ids happen. */
        int64_t id = (int64_t)rng_range(&r, 1, 300);
        struct model_lease *ml = model_find(&m, id);
        int rc;
        switch (rng_below(&r, 8)) {
        case 0:
        case 1: {
            int64_t ttl = (int64_t)rng_range(&r, MIN_TTL, MIN_TTL + 5000);
            rc = lessor_on_grant(&l, id, ttl, now);
            if (ml) {
                CHECK_ERR(rc, ASPEN_E_EXISTS);
            } else if (m.n == MODEL_MAX) {
                CHECK_OK(rc);
                CHECK_OK(lessor_on_revoke(&l, id)); /* the model is full: undo */
            } else {
                CHECK_OK(rc);
                m.l[m.n++] =
                    (struct model_lease){id, ttl, m.primary ? now + ttl : INT64_MAX, false};
            }
            break;
        }
        case 2:
            rc = lessor_on_revoke(&l, id);
            if (!ml) {
                CHECK_ERR(rc, ASPEN_E_LEASE_NOT_FOUND);
            } else {
                CHECK_OK(rc);
                *ml = m.l[--m.n];
            }
            break;
        case 3: {
            int64_t ttl = 0;
            rc = lessor_keepalive(&l, id, now, &ttl);
            if (!m.primary) {
                CHECK_ERR(rc, ASPEN_E_NOT_LEADER);
            } else if (!ml || ml->revoking || ml->deadline <= now) {
                CHECK_ERR(rc, ASPEN_E_LEASE_NOT_FOUND);
            } else {
                CHECK_OK(rc);
                CHECK_EQ(ttl, ml->ttl);
                ml->deadline = now + ml->ttl;
            }
            break;
        }
        case 4: {
            int64_t left = -1;
            rc = lessor_remaining(&l, id, now, &left, NULL);
            if (!m.primary) {
                CHECK_ERR(rc, ASPEN_E_NOT_LEADER);
            } else if (!ml) {
                CHECK_ERR(rc, ASPEN_E_LEASE_NOT_FOUND);
            } else {
                CHECK_OK(rc);
                int64_t want = ml->revoking ? 0 : ml->deadline - now;
                CHECK_EQ(left, want > 0 ? want : 0);
            }
            break;
        }
        case 5:
        case 6: {
            int64_t ids[MODEL_MAX];
            size_t max = (size_t)rng_range(&r, 1, MODEL_MAX);
            size_t k = lessor_expired(&l, now, ids, max);
            size_t due = 0;
            for (size_t i = 0; m.primary && i < m.n; i++)
                due += m.l[i].deadline <= now;
            CHECK_EQ(k, due < max ? due : max);
            /* Earliest first: deadlines non-decreasing, and no due lease left behind
             * has an earlier deadline than the last one returned. */
            int64_t prev = INT64_MIN;
            for (size_t i = 0; i < k; i++) {
                struct model_lease *e = model_find(&m, ids[i]);
                CHECK_MSG(e != NULL, "seed %" PRIu64 ": expired unknown lease", seed);
                CHECK(e->deadline <= now);
                CHECK(e->deadline >= prev);
                prev = e->deadline;
                e->deadline = INT64_MIN; /* mark as returned for the check below */
            }
            for (size_t i = 0; i < m.n; i++) {
                if (m.l[i].deadline == INT64_MIN) {
                    m.l[i].revoking = true;
                    m.l[i].deadline = now + RETRY;
                } else if (k == max && m.l[i].deadline <= now) {
                    CHECK(m.l[i].deadline >= prev);
                }
            }
            break;
        }
        case 7:
            if (rng_ratio(&r, 1, 4)) {
                if (m.primary) {
                    lessor_demote(&l);
                    m.primary = false;
                    for (size_t i = 0; i < m.n; i++)
                        m.l[i] = (struct model_lease){m.l[i].id, m.l[i].ttl, INT64_MAX, false};
                } else {
                    lessor_promote(&l, now);
                    m.primary = true;
                    for (size_t i = 0; i < m.n; i++)
                        m.l[i] =
                            (struct model_lease){m.l[i].id, m.l[i].ttl, now + m.l[i].ttl, false};
                }
            } else {
                int64_t pick = lessor_pick_id(&l, rng_next(&r));
                CHECK(pick > 0);
                CHECK(model_find(&m, pick) == NULL);
            }
            break;
        }
        CHECK_EQ(lessor_count(&l), m.n);
    }
    lessor_release(&l);
}

static void test_random_vs_model(void)
{
    uint64_t base = test_seed();
    uint64_t n = test_iters(40);
    for (uint64_t i = 0; i < n && !test_failed(); i++) {
        run_model(base + i);
        if (test_failed())
            fprintf(stderr, "lessor model failed with seed %" PRIu64 "\n", base + i);
    }
}

static const struct test_case tests[] = {
    TEST(test_grant_revoke_lookup),   TEST(test_not_primary),
    TEST(test_promote_refreshes),     TEST(test_keepalive_and_revoking),
    TEST(test_expired_max_and_order), TEST(test_load),
    TEST(test_pick_id_and_clamp),     TEST(test_random_vs_model),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("lessor", tests);
}
