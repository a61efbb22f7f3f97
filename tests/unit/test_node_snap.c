/*
 * Tests of the snapshot-transfer protocol's frames (node/snap.h): every frame type round
 * trips, and every damaged frame is refused (truncation, extra bytes, unknown type, a
 * body where none belongs, a positive code, an oversized chunk). The transfers themselves
 * run end to end in tests/integration/cluster_test.py (scenario_snapshot).
 */
#include "base/buf.h"
#include "base/constants.h"
#include "node/snap.h"
#include "raft/codec.h"
#include "test.h"

#include <aspen/error.h>
#include <string.h>

static const uint8_t body_bytes[] = "chunk or message bytes";

static struct snap_frame frame_of(uint8_t type)
{
    struct snap_frame f = {.type = type, .id = 0x0102030405060708u};
    if (type == SNAP_CHUNK || type == SNAP_ACK)
        f.seq = 77;
    if (type == SNAP_ABORT || type == SNAP_RESULT)
        f.code = ASPEN_E_TIMEOUT;
    if (type == SNAP_CHUNK || type == SNAP_DONE)
        f.body = slice_make(body_bytes, sizeof(body_bytes));
    return f;
}

static void test_round_trip(void)
{
    for (uint8_t type = SNAP_CHUNK; type <= SNAP_RESULT; type++) {
        struct snap_frame f = frame_of(type);
        struct buf b;
        buf_init(&b, 1 << 16);
        CHECK_OK(snap_frame_encode(&f, &b));
        struct snap_frame got;
        CHECK_OK(snap_frame_decode(buf_slice(&b), &got));
        CHECK_EQ(got.type, type);
        CHECK_EQ_U64(got.id, f.id);
        CHECK_EQ(got.seq, f.seq);
        CHECK_EQ(got.code, f.code);
        CHECK_EQ(got.body.len, f.body.len);
        if (f.body.len)
            CHECK_MEM_EQ(got.body.ptr, f.body.ptr, f.body.len);
        /* Success codes travel too. */
        if (type == SNAP_RESULT) {
            f.code = 0;
            buf_clear(&b);
            CHECK_OK(snap_frame_encode(&f, &b));
            CHECK_OK(snap_frame_decode(buf_slice(&b), &got));
            CHECK_EQ(got.code, 0);
        }
        buf_release(&b);
    }
}

static void test_damage_refused(void)
{
    for (uint8_t type = SNAP_CHUNK; type <= SNAP_RESULT; type++) {
        struct snap_frame f = frame_of(type);
        struct buf b;
        buf_init(&b, 1 << 16);
        CHECK_OK(snap_frame_encode(&f, &b));
        struct snap_frame got;
        /* Every truncation: frames with a body stay valid only while the body is
         * non-empty; the others must be whole. */
        size_t min_len = b.len - f.body.len + (f.body.len ? 1 : 0);
        for (size_t len = 0; len < b.len; len++) {
            int rc = snap_frame_decode(slice_make(b.data, len), &got);
            if (len >= min_len)
                CHECK_OK(rc);
            else
                CHECK_ERR(rc, ASPEN_E_MALFORMED);
        }
        /* A byte more: a longer body, or refused where there is none. */
        CHECK_OK(buf_append_u8(&b, 0));
        int rc = snap_frame_decode(buf_slice(&b), &got);
        if (f.body.len)
            CHECK_OK(rc);
        else
            CHECK_ERR(rc, ASPEN_E_MALFORMED);
        buf_release(&b);
    }
    /* Unknown types. */
    uint8_t raw[16] = {0};
    for (unsigned t = 0; t < 256; t++) {
        if (t >= SNAP_CHUNK && t <= SNAP_RESULT)
            continue;
        raw[0] = (uint8_t)t;
        struct snap_frame got;
        CHECK_ERR(snap_frame_decode(slice_make(raw, sizeof(raw)), &got), ASPEN_E_MALFORMED);
    }
    /* A code above INT32_MAX (it would read as positive). */
    uint8_t res[SNAP_FRAME_HEADER_BYTES + 4] = {SNAP_RESULT};
    be32_store(res + SNAP_FRAME_HEADER_BYTES, 0x80000000u);
    struct snap_frame got;
    CHECK_ERR(snap_frame_decode(slice_make(res, sizeof(res)), &got), ASPEN_E_MALFORMED);
    /* Encoding refuses a positive code and an unknown type. */
    struct buf b;
    buf_init(&b, 64);
    struct snap_frame bad = frame_of(SNAP_RESULT);
    bad.code = 5;
    CHECK_ERR(snap_frame_encode(&bad, &b), ASPEN_E_INVALID);
    bad = frame_of(SNAP_ACK);
    bad.type = 9;
    CHECK_ERR(snap_frame_encode(&bad, &b), ASPEN_E_INVALID);
    buf_release(&b);
}

static void test_oversized_chunk(void)
{
    size_t body = ASPEN_SNAPSHOT_CHUNK_MAX_BYTES + 1;
    uint8_t *raw = mem_calloc(1, SNAP_FRAME_HEADER_BYTES + 4 + body);
    CHECK(raw != NULL);
    raw[0] = SNAP_CHUNK;
    struct snap_frame got;
    CHECK_ERR(snap_frame_decode(slice_make(raw, SNAP_FRAME_HEADER_BYTES + 4 + body), &got),
              ASPEN_E_MALFORMED);
    CHECK_OK(snap_frame_decode(slice_make(raw, SNAP_FRAME_HEADER_BYTES + 4 + body - 1), &got));
    mem_free(raw);
}

static void test_meta_equal(void)
{
    struct raft_snapshot_meta a = {.index = 10, .term = 2};
    a.config.n_voters = 2;
    a.config.voters[0] = 1;
    a.config.voters[1] = 2;
    struct raft_snapshot_meta b = a;
    b.config.voters[2] = 99; /* past the count: not part of the configuration */
    CHECK(snap_meta_equal(&a, &b));
    b = a;
    b.term = 3;
    CHECK(!snap_meta_equal(&a, &b));
    b = a;
    b.config.n_learners = 1;
    b.config.learners[0] = 3;
    CHECK(!snap_meta_equal(&a, &b));
    b = a;
    b.index = 11;
    CHECK(!snap_meta_equal(&a, &b));
}

static const struct test_case tests[] = {
    TEST(test_round_trip),
    TEST(test_damage_refused),
    TEST(test_oversized_chunk),
    TEST(test_meta_equal),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("node_snap", tests);
}
