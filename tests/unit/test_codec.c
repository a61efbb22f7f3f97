/*
 * Raft codec: random round trips of every message type (and of full-size messages), the
 * layout pinned by golden bytes, every single-byte corruption and every truncation
 * refused with the documented code, one test per validation rule on frames built by hand
 * (a small writer here that follows codec.h's layout table independently of the encoder),
 * encoder assertions, and clean failure of the buffer and the arena.
 *
 * With ASPEN_CODEC_CORPUS_DIR set, test_fuzz_seeds also writes the fuzzers' seed corpus
 * (tests/fuzz/corpus/raft_msg and raft_entry) into that directory.
 */
#include "test.h"

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/mem.h"
#include "base/rand.h"
#include "raft/codec.h"

#include <stdio.h>
#include <stdlib.h>

#define FRAME_MAX ASPEN_RAFT_MAX_MSG_FRAME_BYTES
#define ARENA_MAX (1u << 20)

/* ---------------------------------------------------------------------------------------
 * Helpers: comparing, generating, writing frames by hand
 * ------------------------------------------------------------------------------------- */

static bool ids_equal(const raft_id *a, uint32_t na, const raft_id *b, uint32_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof(raft_id)) == 0);
}

static bool config_equal(const struct raft_config *a, const struct raft_config *b)
{
    return ids_equal(a->voters, a->n_voters, b->voters, b->n_voters) &&
           ids_equal(a->outgoing, a->n_outgoing, b->outgoing, b->n_outgoing) &&
           ids_equal(a->learners, a->n_learners, b->learners, b->n_learners) &&
           ids_equal(a->learners_next, a->n_learners_next, b->learners_next, b->n_learners_next) &&
           a->auto_leave == b->auto_leave;
}

static bool entry_equal(const struct raft_entry *a, const struct raft_entry *b)
{
    return a->term == b->term && a->index == b->index && a->type == b->type && a->len == b->len &&
           (a->len == 0 || memcmp(a->data, b->data, a->len) == 0);
}

/* Equal in every field that goes on the wire. */
static bool msg_equal(const struct raft_msg *a, const struct raft_msg *b)
{
    if (a->type != b->type || a->flags != b->flags || a->from != b->from || a->to != b->to ||
        a->term != b->term || a->index != b->index || a->log_term != b->log_term ||
        a->commit != b->commit || a->reject_hint != b->reject_hint || a->context != b->context ||
        a->reject != b->reject || a->n_entries != b->n_entries)
        return false;
    for (uint32_t i = 0; i < a->n_entries; i++)
        if (!entry_equal(&a->entries[i], &b->entries[i]))
            return false;
    if (a->type == RAFT_MSG_SNAPSHOT)
        return a->snapshot.index == b->snapshot.index && a->snapshot.term == b->snapshot.term &&
               config_equal(&a->snapshot.config, &b->snapshot.config);
    return true;
}

static bool is_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* Mostly random values, with the edges (0, 1, max) turning up often. */
static uint64_t some_u64(struct rng *r)
{
    switch (rng_below(r, 6)) {
    case 0:
        return 0;
    case 1:
        return 1;
    case 2:
        return UINT64_MAX;
    case 3:
        return rng_below(r, 1000);
    default:
        return rng_next(r);
    }
}

static raft_id some_id(struct rng *r)
{
    uint64_t v = some_u64(r);
    return v ? v : 7;
}

/* A valid configuration: fresh ids from a shuffled universe keep every list distinct. */
static void random_config(struct rng *r, struct raft_config *c, bool full)
{
    raft_id pool[ASPEN_MAX_MEMBERS + 3 * ASPEN_MAX_VOTERS];
    const uint32_t n_pool = (uint32_t)(sizeof(pool) / sizeof(pool[0]));
    uint64_t base = rng_below(r, UINT64_MAX - 1000) + 1;
    for (uint32_t i = 0; i < n_pool; i++)
        pool[i] = base + i;
    for (uint32_t i = n_pool - 1; i > 0; i--) {
        uint32_t j = (uint32_t)rng_below(r, i + 1);
        raft_id t = pool[i];
        pool[i] = pool[j];
        pool[j] = t;
    }
    uint32_t next = 0;
    memset(c, 0, sizeof(*c));
    c->n_voters = full ? ASPEN_MAX_VOTERS : (uint32_t)rng_below(r, ASPEN_MAX_VOTERS + 1);
    for (uint32_t i = 0; i < c->n_voters; i++)
        c->voters[i] = pool[next++];
    bool joint = full || rng_ratio(r, 1, 2);
    if (joint) {
        c->n_outgoing = full ? ASPEN_MAX_VOTERS : 1 + (uint32_t)rng_below(r, ASPEN_MAX_VOTERS);
        for (uint32_t i = 0; i < c->n_outgoing; i++) {
            /* Keep some incoming voters (they overlap in a real joint configuration). */
            bool keep = !full && i < c->n_voters && rng_ratio(r, 1, 2);
            c->outgoing[i] = keep ? c->voters[i] : pool[next++];
        }
        for (uint32_t i = 0; i < c->n_outgoing; i++) {
            raft_id id = c->outgoing[i];
            bool incoming = false;
            for (uint32_t k = 0; k < c->n_voters; k++)
                incoming = incoming || c->voters[k] == id;
            if (!incoming && (full || rng_ratio(r, 1, 2)))
                c->learners_next[c->n_learners_next++] = id;
        }
        c->auto_leave = full || rng_ratio(r, 1, 2);
    }
    c->n_learners = full ? ASPEN_MAX_MEMBERS : (uint32_t)rng_below(r, 12);
    for (uint32_t i = 0; i < c->n_learners; i++)
        c->learners[i] = pool[next++];
}

/* Fills a valid message of the given type. Entries (at most max_entries) go to
 * entries[] with data borrowed from pool (pool_len bytes). */
static void random_msg(struct rng *r, uint8_t type, struct raft_msg *m, struct raft_entry *entries,
                       uint32_t max_entries, const uint8_t *pool, size_t pool_len)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->flags = rng_ratio(r, 1, 4) ? RAFT_MSG_F_TRANSFER : 0;
    m->from = some_id(r);
    m->to = some_id(r);
    m->term = some_u64(r);
    m->index = some_u64(r);
    m->log_term = some_u64(r);
    m->commit = some_u64(r);
    m->reject_hint = some_u64(r);
    m->context = some_u64(r);
    m->reject = rng_ratio(r, 1, 2);
    m->after_persist = rng_ratio(r, 1, 2); /* not on the wire: must decode as false */
    if (type == RAFT_MSG_APPEND && max_entries > 0) {
        uint32_t n = (uint32_t)rng_below(r, max_entries + 1);
        if (m->term == 0)
            m->term = 1 + rng_below(r, 100);
        m->log_term = rng_below(r, m->term + (m->term < UINT64_MAX ? 1 : 0));
        if (m->index > UINT64_MAX - n)
            m->index = UINT64_MAX - n;
        raft_term t = m->log_term ? m->log_term : 1;
        for (uint32_t i = 0; i < n; i++) {
            if (rng_ratio(r, 1, 4) && t < m->term)
                t += rng_below(r, m->term - t) + 1;
            struct raft_entry *e = &entries[i];
            e->term = t;
            e->index = m->index + 1 + i;
            e->type = rng_ratio(r, 1, 8) ? RAFT_ENTRY_CONF : RAFT_ENTRY_NORMAL;
            e->len = (uint32_t)rng_below(r, 65);
            if (e->len > pool_len)
                e->len = (uint32_t)pool_len;
            e->data = e->len ? (uint8_t *)pool + rng_below(r, pool_len - e->len + 1) : NULL;
        }
        m->n_entries = n;
        m->entries = n ? entries : NULL;
    }
    if (type == RAFT_MSG_SNAPSHOT) {
        m->snapshot.index = some_u64(r);
        m->snapshot.term = some_u64(r);
        random_config(r, &m->snapshot.config, rng_ratio(r, 1, 8));
    }
}

/* Encodes m into a fresh buffer; the caller releases it. */
static int encode(const struct raft_msg *m, struct buf *b)
{
    buf_init(b, FRAME_MAX);
    return raft_msg_encode(m, b);
}

/* Decodes an exactly-sized heap copy of data[0..len) (so ASan sees any over-read) and
 * returns the code; the decoded message is discarded. */
static int decode_copy(const uint8_t *data, size_t len)
{
    uint8_t *copy = mem_alloc(len);
    if (!copy)
        abort();
    if (len)
        memcpy(copy, data, len);
    struct arena a;
    arena_init(&a, 4096, ARENA_MAX);
    struct raft_msg m;
    int rc = raft_msg_decode(copy, len, &m, &a);
    arena_release(&a);
    mem_free(copy);
    return rc;
}

static int decode_entry_copy(const uint8_t *data, size_t len)
{
    uint8_t *copy = mem_alloc(len);
    if (!copy)
        abort();
    if (len)
        memcpy(copy, data, len);
    struct raft_entry e;
    int rc = raft_entry_decode(copy, len, &e);
    mem_free(copy);
    return rc;
}

/* Rewrites frame_len and the CRC of a frame of n bytes, so a test can change a field and
 * reach the checks behind the checksum. */
static void reseal(uint8_t *p, size_t n)
{
    be32_store(p + 4, (uint32_t)n);
    be32_store(p + n - 4, crc32c(p, n - 4));
}

/* ---- A frame writer that follows codec.h's layout table, independent of codec.c ---- */

struct hdr {
    uint8_t type, flags, reject;
    uint64_t from, to, term, index, log_term, commit, reject_hint, context;
    uint32_t n_entries;
};

static void w8(struct buf *b, uint8_t v)
{
    if (buf_append_u8(b, v))
        abort();
}

static void w32(struct buf *b, uint32_t v)
{
    if (buf_append_be32(b, v))
        abort();
}

static void w64(struct buf *b, uint64_t v)
{
    if (buf_append_be64(b, v))
        abort();
}

static void raw_header(struct buf *b, const struct hdr *h)
{
    buf_init(b, 2 * FRAME_MAX);
    w8(b, 0xA5);
    w8(b, 0x52);
    w8(b, 1);
    w8(b, h->type);
    w32(b, 0); /* frame_len, set by raw_seal */
    w8(b, h->flags);
    w8(b, h->reject);
    w64(b, h->from);
    w64(b, h->to);
    w64(b, h->term);
    w64(b, h->index);
    w64(b, h->log_term);
    w64(b, h->commit);
    w64(b, h->reject_hint);
    w64(b, h->context);
    w32(b, h->n_entries);
}

static void raw_entry(struct buf *b, uint64_t term, uint64_t index, uint8_t type, uint32_t len)
{
    w64(b, term);
    w64(b, index);
    w8(b, type);
    w32(b, len);
    for (uint32_t i = 0; i < len; i++)
        w8(b, (uint8_t)i);
}

static void raw_ids(struct buf *b, const raft_id *ids, uint32_t n)
{
    w32(b, n);
    for (uint32_t i = 0; i < n; i++)
        w64(b, ids[i]);
}

static void raw_snapshot(struct buf *b, const struct raft_config *c, uint8_t auto_leave)
{
    w64(b, 100);
    w64(b, 7);
    raw_ids(b, c->voters, c->n_voters);
    raw_ids(b, c->outgoing, c->n_outgoing);
    raw_ids(b, c->learners, c->n_learners);
    raw_ids(b, c->learners_next, c->n_learners_next);
    w8(b, auto_leave);
}

static void raw_seal(struct buf *b)
{
    w32(b, 0);
    reseal(b->data, b->len);
}

/* Seals b, decodes it and releases it; returns the decoder's code. */
static int raw_decode(struct buf *b)
{
    raw_seal(b);
    int rc = decode_copy(b->data, b->len);
    buf_release(b);
    return rc;
}

static const struct hdr append_hdr = {
    .type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 5, .index = 9, .log_term = 4};

/* ---------------------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------------------- */

/* Encodes m, checks the size, decodes, compares, re-encodes the decoded message and
 * compares the bytes. Reports its own failure. */
static bool round_trips(const struct raft_msg *m, int line)
{
    struct buf b, again;
    struct arena a;
    arena_init(&a, 1 << 16, 64u << 20);
    buf_init(&again, FRAME_MAX);
    bool ok = false;
    struct raft_msg d;
    int rc = encode(m, &b);
    if (rc) {
        test_fail(__FILE__, line, "encode: %s", aspen_err_name(rc));
        goto release;
    }
    if (b.len != raft_msg_encoded_size(m)) {
        test_fail(__FILE__, line, "encoded %zu bytes, size said %zu", b.len,
                  raft_msg_encoded_size(m));
        goto release;
    }
    if ((rc = raft_msg_decode(b.data, b.len, &d, &a)) != 0) {
        test_fail(__FILE__, line, "decode (type %u): %s", m->type, aspen_err_name(rc));
        goto release;
    }
    if (!msg_equal(m, &d) || d.after_persist) {
        test_fail(__FILE__, line, "decoded message differs (type %u)", m->type);
        goto release;
    }
    if (m->type != RAFT_MSG_SNAPSHOT && !is_zero(&d.snapshot, sizeof(d.snapshot))) {
        test_fail(__FILE__, line, "snapshot meta not zero on type %u", m->type);
        goto release;
    }
    for (uint32_t i = 0; i < d.n_entries; i++) {
        const uint8_t *p = d.entries[i].data;
        bool inside = d.entries[i].len == 0 ? p == NULL : p > b.data && p < b.data + b.len;
        if (!inside) {
            test_fail(__FILE__, line, "entry %u's data is not borrowed from the input", i);
            goto release;
        }
    }
    if ((rc = raft_msg_encode(&d, &again)) != 0 || !slice_eq(buf_slice(&b), buf_slice(&again))) {
        test_fail(__FILE__, line, "re-encoding differs");
        goto release;
    }
    ok = true;
release:
    buf_release(&b);
    buf_release(&again);
    arena_release(&a);
    return ok;
}

static void test_round_trip_every_type(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    static uint8_t pool[256];
    rng_fill(&r, pool, sizeof(pool));
    static struct raft_entry entries[64];
    struct raft_msg m;
    uint64_t iters = test_iters(300);
    for (uint64_t it = 0; it < iters; it++)
        for (uint8_t type = 0; type < RAFT_MSG_TYPE_COUNT; type++) {
            random_msg(&r, type, &m, entries, 64, pool, sizeof(pool));
            CHECK(raft_msg_validate(&m) == 0);
            CHECK(round_trips(&m, __LINE__));
        }
}

/* Encoding appends: what the buffer held before is kept, and the frame decodes from its
 * offset. */
static void test_encode_appends(void)
{
    struct raft_msg m = {.type = RAFT_MSG_HEARTBEAT, .from = 3, .to = 4, .term = 9, .commit = 2};
    struct buf b;
    buf_init(&b, FRAME_MAX);
    CHECK_OK(buf_append(&b, "xyz", 3));
    CHECK_OK(raft_msg_encode(&m, &b));
    CHECK_OK(raft_msg_encode(&m, &b));
    size_t size = raft_msg_encoded_size(&m);
    int ok = b.len == 3 + 2 * size && memcmp(b.data, "xyz", 3) == 0 &&
             memcmp(b.data + 3, b.data + 3 + size, size) == 0;
    struct raft_msg d;
    struct arena a;
    arena_init(&a, 4096, ARENA_MAX);
    int rc = raft_msg_decode(b.data + 3, size, &d, &a);
    arena_release(&a);
    buf_release(&b);
    CHECK(ok);
    CHECK_OK(rc);
    CHECK(msg_equal(&m, &d));
}

/* The largest messages the limits allow: 1024 entries carrying exactly
 * ASPEN_RAFT_MAX_BYTES_PER_MSG, one entry of ASPEN_MAX_REQUEST_BYTES, 1024 empty entries,
 * and a snapshot whose configuration lists are all full. */
static void test_round_trip_at_limits(void)
{
    static struct raft_entry entries[ASPEN_RAFT_MAX_ENTRIES_PER_MSG];
    const uint32_t n = ASPEN_RAFT_MAX_ENTRIES_PER_MSG;
    const uint32_t each = (uint32_t)(ASPEN_RAFT_MAX_BYTES_PER_MSG / n);
    uint8_t *data = mem_alloc(ASPEN_MAX_REQUEST_BYTES);
    CHECK(data != NULL);
    for (size_t i = 0; i < ASPEN_MAX_REQUEST_BYTES; i++)
        data[i] = (uint8_t)(i * 31 + 7);
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = UINT64_MAX,
                         .to = 1,
                         .term = UINT64_MAX,
                         .index = UINT64_MAX - n,
                         .log_term = UINT64_MAX - 1,
                         .commit = UINT64_MAX,
                         .n_entries = n,
                         .entries = entries};
    for (uint32_t i = 0; i < n; i++)
        entries[i] = (struct raft_entry){.term = i < n / 2 ? UINT64_MAX - 1 : UINT64_MAX,
                                         .index = m.index + 1 + i,
                                         .len = each,
                                         .data = data + i};
    bool full = round_trips(&m, __LINE__);
    size_t full_size = raft_msg_encoded_size(&m);

    for (uint32_t i = 0; i < n; i++) {
        entries[i].len = 0;
        entries[i].data = NULL;
    }
    bool empty = round_trips(&m, __LINE__);

    m.n_entries = 1;
    m.index = 0;
    m.log_term = 0;
    entries[0] = (struct raft_entry){.term = 1,
                                     .index = 1,
                                     .len = ASPEN_MAX_REQUEST_BYTES,
                                     .type = RAFT_ENTRY_CONF,
                                     .data = data};
    bool one_big = round_trips(&m, __LINE__);
    mem_free(data);
    CHECK(full && empty && one_big);
    CHECK(full_size > ASPEN_RAFT_MAX_BYTES_PER_MSG && full_size <= FRAME_MAX);

    struct raft_msg s = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 3};
    struct rng r;
    rng_seed(&r, test_seed());
    random_config(&r, &s.snapshot.config, true);
    CHECK_EQ(s.snapshot.config.n_learners, ASPEN_MAX_MEMBERS);
    CHECK_EQ(s.snapshot.config.n_learners_next, ASPEN_MAX_VOTERS);
    CHECK(raft_msg_validate(&s) == 0);
    CHECK(round_trips(&s, __LINE__));
}

/* ---------------------------------------------------------------------------------------
 * Golden bytes: the layout is a protocol; changing it must be deliberate (a new version)
 * ------------------------------------------------------------------------------------- */

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = 0;
    int hi = -1;
    for (const char *p = hex; *p; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else
            continue;
        if (hi < 0) {
            hi = d;
        } else {
            if (n == cap)
                abort();
            out[n++] = (uint8_t)(hi << 4 | d);
            hi = -1;
        }
    }
    return n;
}

static void test_golden_append(void)
{
    /* Computed by hand from codec.h's table; the CRC by an independent bitwise CRC-32C. */
    static const char *want_hex = "a5 52 01 00 0000007f 00 00"
                                  "0000000000000001 0000000000000002 0000000000000005"
                                  "0000000000000009 0000000000000004 0000000000000008"
                                  "0000000000000000 0102030405060708 00000002"
                                  "0000000000000004 000000000000000a 00 00000003 616263"
                                  "0000000000000005 000000000000000b 01 00000000"
                                  "3742953b";
    uint8_t want[256];
    size_t want_len = unhex(want_hex, want, sizeof(want));
    struct raft_entry e[2] = {
        {.term = 4, .index = 10, .type = RAFT_ENTRY_NORMAL, .len = 3, .data = (uint8_t *)"abc"},
        {.term = 5, .index = 11, .type = RAFT_ENTRY_CONF},
    };
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 5,
                         .index = 9,
                         .log_term = 4,
                         .commit = 8,
                         .context = 0x0102030405060708u,
                         .n_entries = 2,
                         .entries = e,
                         .after_persist = true};
    struct buf b;
    CHECK_OK(encode(&m, &b));
    bool same = slice_eq(buf_slice(&b), slice_make(want, want_len));
    buf_release(&b);
    CHECK_EQ(want_len, 127);
    CHECK(same);
    CHECK_OK(decode_copy(want, want_len));
}

static void test_golden_entry_record(void)
{
    static const char *want_hex = "a5 45 01 01 0000000000000007 000000000000002a 00000005"
                                  "68656c6c6f 8a8036a5";
    uint8_t want[64];
    size_t want_len = unhex(want_hex, want, sizeof(want));
    struct raft_entry e = {
        .term = 7, .index = 42, .type = RAFT_ENTRY_CONF, .len = 5, .data = (uint8_t *)"hello"};
    struct buf b;
    buf_init(&b, 1024);
    CHECK_OK(raft_entry_encode(&e, &b));
    bool same = slice_eq(buf_slice(&b), slice_make(want, want_len));
    buf_release(&b);
    CHECK(same);
    CHECK_EQ(raft_entry_encoded_size(&e), want_len);
    struct raft_entry d;
    CHECK_OK(raft_entry_decode(want, want_len, &d));
    CHECK(entry_equal(&e, &d));
    CHECK(d.data == want + RAFT_ENTRY_HEADER_BYTES);
}

/* ---------------------------------------------------------------------------------------
 * Damage: corruption and truncation
 * ------------------------------------------------------------------------------------- */

/* What decoding a frame of len bytes must return after byte `at` became `v`. Only the
 * prelude is interpreted before the CRC is checked; everywhere else damage is CORRUPT. */
static int expected_for_damage(const uint8_t *frame, size_t len, size_t at, uint8_t v)
{
    if (at < 2)
        return ASPEN_E_MALFORMED;
    if (at == 2)
        return ASPEN_E_UNSUPPORTED;
    if (at >= 4 && at < 8) {
        uint8_t tmp[4];
        memcpy(tmp, frame + 4, 4);
        tmp[at - 4] = v;
        uint32_t n = be32_load(tmp);
        if (n > FRAME_MAX)
            return ASPEN_E_TOO_LARGE;
        if (n < RAFT_MSG_MIN_FRAME_BYTES)
            return ASPEN_E_MALFORMED;
        return n > len ? ASPEN_E_TRUNCATED : ASPEN_E_MALFORMED;
    }
    return ASPEN_E_CORRUPT;
}

static void test_every_byte_corruption_is_refused(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    static uint8_t pool[64];
    rng_fill(&r, pool, sizeof(pool));
    static struct raft_entry entries[4];
    static const uint8_t types[] = {RAFT_MSG_APPEND, RAFT_MSG_SNAPSHOT, RAFT_MSG_VOTE};
    for (size_t t = 0; t < sizeof(types); t++) {
        struct raft_msg m;
        random_msg(&r, types[t], &m, entries, 4, pool, sizeof(pool));
        struct buf b;
        CHECK_OK(encode(&m, &b));
        uint8_t *copy = mem_alloc(b.len);
        CHECK(copy != NULL);
        bool ok = true;
        for (size_t at = 0; at < b.len && ok; at++)
            for (unsigned x = 1; x < 256 && ok; x++) {
                memcpy(copy, b.data, b.len);
                copy[at] ^= (uint8_t)x;
                int want = expected_for_damage(b.data, b.len, at, copy[at]);
                int got = decode_copy(copy, b.len);
                if (got != want) {
                    test_fail(__FILE__, __LINE__, "type %u byte %zu ^ %02x: got %s, want %s",
                              types[t], at, x, aspen_err_name(got), aspen_err_name(want));
                    ok = false;
                }
            }
        mem_free(copy);
        buf_release(&b);
        CHECK(ok);
    }
}

static void test_every_truncation_is_refused(void)
{
    struct rng r;
    rng_seed(&r, test_seed() + 1);
    static uint8_t pool[64];
    rng_fill(&r, pool, sizeof(pool));
    static struct raft_entry entries[4];
    for (uint8_t type = 0; type < RAFT_MSG_TYPE_COUNT; type++) {
        struct raft_msg m;
        random_msg(&r, type, &m, entries, 4, pool, sizeof(pool));
        struct buf b;
        CHECK_OK(encode(&m, &b));
        size_t len = b.len;
        int first_bad = 0;
        size_t bad_at = 0;
        for (size_t cut = 0; cut < len; cut++) {
            int rc = decode_copy(b.data, cut);
            if (rc != ASPEN_E_TRUNCATED && !first_bad) {
                first_bad = rc ? rc : 1;
                bad_at = cut;
            }
        }
        buf_release(&b);
        CHECK_MSG(!first_bad, "type %u cut at %zu: %s", type, bad_at, aspen_err_name(first_bad));
    }
}

static void test_prelude(void)
{
    struct raft_msg m = {.type = RAFT_MSG_VOTE, .from = 1, .to = 2, .term = 3};
    struct buf b;
    CHECK_OK(encode(&m, &b));
    uint8_t f[RAFT_MSG_MIN_FRAME_BYTES];
    CHECK_EQ(b.len, sizeof(f));
    memcpy(f, b.data, sizeof(f));
    buf_release(&b);

    size_t n = 0;
    CHECK_OK(raft_msg_frame_len(f, RAFT_MSG_PRELUDE_BYTES, &n));
    CHECK_EQ(n, sizeof(f));
    CHECK_ERR(raft_msg_frame_len(f, RAFT_MSG_PRELUDE_BYTES - 1, &n), ASPEN_E_TRUNCATED);

    uint8_t g[sizeof(f)];
    memcpy(g, f, sizeof(f));
    g[0] = 0xA6;
    CHECK_ERR(decode_copy(g, sizeof(g)), ASPEN_E_MALFORMED); /* bad magic */
    memcpy(g, f, sizeof(f));
    g[1] = RAFT_CODEC_MAGIC_ENTRY; /* an entry record is not a message */
    CHECK_ERR(decode_copy(g, sizeof(g)), ASPEN_E_MALFORMED);
    for (unsigned v = 0; v < 256; v++) {
        if (v == RAFT_CODEC_VERSION)
            continue;
        memcpy(g, f, sizeof(f));
        g[2] = (uint8_t)v;
        reseal(g, sizeof(g)); /* a well-formed frame of another version */
        CHECK_ERR(decode_copy(g, sizeof(g)), ASPEN_E_UNSUPPORTED);
    }

    /* frame_len beyond the limit is refused from the prelude alone, before buffering. */
    memcpy(g, f, sizeof(f));
    be32_store(g + 4, (uint32_t)FRAME_MAX + 1);
    CHECK_ERR(raft_msg_frame_len(g, RAFT_MSG_PRELUDE_BYTES, &n), ASPEN_E_TOO_LARGE);
    CHECK_ERR(decode_copy(g, sizeof(g)), ASPEN_E_TOO_LARGE);
    be32_store(g + 4, UINT32_MAX);
    CHECK_ERR(decode_copy(g, sizeof(g)), ASPEN_E_TOO_LARGE);
    be32_store(g + 4, (uint32_t)FRAME_MAX);
    CHECK_ERR(raft_msg_frame_len(g, RAFT_MSG_PRELUDE_BYTES, &n), 0);
    CHECK_ERR(decode_copy(g, sizeof(g)), ASPEN_E_TRUNCATED);
    be32_store(g + 4, RAFT_MSG_MIN_FRAME_BYTES - 1);
    CHECK_ERR(raft_msg_frame_len(g, RAFT_MSG_PRELUDE_BYTES, &n), ASPEN_E_MALFORMED);
    CHECK_ERR(decode_copy(g, sizeof(g)), ASPEN_E_MALFORMED);
}

static void test_trailing_bytes(void)
{
    struct raft_msg m = {.type = RAFT_MSG_VOTE, .from = 1, .to = 2, .term = 3};
    struct buf b;
    CHECK_OK(encode(&m, &b));
    int after_crc = buf_append_u8(&b, 0) ? -1 : decode_copy(b.data, b.len);
    buf_release(&b);
    CHECK_ERR(after_crc, ASPEN_E_MALFORMED);

    /* Extra bytes inside the checksummed frame, between the body and the CRC. */
    struct hdr h = {.type = RAFT_MSG_VOTE, .from = 1, .to = 2, .term = 3};
    raw_header(&b, &h);
    w8(&b, 0);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    h.type = RAFT_MSG_SNAPSHOT;
    raw_header(&b, &h);
    struct raft_config c = {.n_voters = 1, .voters = {1}};
    raw_snapshot(&b, &c, 0);
    w8(&b, 0);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
}

static void test_checksum_mismatch(void)
{
    struct raft_msg m = {.type = RAFT_MSG_VOTE, .from = 1, .to = 2, .term = 3};
    struct buf b;
    CHECK_OK(encode(&m, &b));
    b.data[b.len - 1] ^= 1; /* the CRC itself */
    int in_crc = decode_copy(b.data, b.len);
    b.data[b.len - 1] ^= 1;
    b.data[30] ^= 0x80; /* term */
    int in_term = decode_copy(b.data, b.len);
    buf_release(&b);
    CHECK_ERR(in_crc, ASPEN_E_CORRUPT);
    CHECK_ERR(in_term, ASPEN_E_CORRUPT);
}

/* ---------------------------------------------------------------------------------------
 * Validation rules, one frame each (valid except for the rule under test)
 * ------------------------------------------------------------------------------------- */

static void test_raw_writer_matches_encoder(void)
{
    /* The hand writer must produce valid frames, or the rule tests below prove nothing. */
    struct buf b;
    struct hdr h = append_hdr;
    h.n_entries = 2;
    raw_header(&b, &h);
    raw_entry(&b, 4, 10, RAFT_ENTRY_NORMAL, 3);
    raw_entry(&b, 5, 11, RAFT_ENTRY_CONF, 0);
    CHECK_OK(raw_decode(&b));
    for (uint8_t type = 0; type < RAFT_MSG_TYPE_COUNT; type++) {
        h = (struct hdr){.type = type, .from = 1, .to = 2};
        raw_header(&b, &h);
        if (type == RAFT_MSG_SNAPSHOT) {
            struct raft_config c = {0};
            raw_snapshot(&b, &c, 0);
        }
        CHECK_OK(raw_decode(&b));
    }
}

static void test_unknown_message_type(void)
{
    struct buf b;
    static const uint8_t bad[] = {RAFT_MSG_TYPE_COUNT, RAFT_MSG_TYPE_COUNT + 1, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(bad); i++) {
        struct hdr h = {.type = bad[i], .from = 1, .to = 2};
        raw_header(&b, &h);
        CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    }
}

static void test_header_fields(void)
{
    struct buf b;
    struct hdr h = {.type = RAFT_MSG_VOTE, .from = 1, .to = 2, .term = 3};
    h.flags = RAFT_MSG_F_TRANSFER;
    raw_header(&b, &h);
    CHECK_OK(raw_decode(&b));
    for (unsigned bit = 1; bit < 8; bit++) {
        h.flags = (uint8_t)(1u << bit);
        raw_header(&b, &h);
        CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED); /* unknown flag */
    }
    h.flags = 0;
    h.reject = 1;
    raw_header(&b, &h);
    CHECK_OK(raw_decode(&b));
    h.reject = 2;
    raw_header(&b, &h);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    h.reject = 0xff;
    raw_header(&b, &h);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    h.reject = 0;
    h.from = 0;
    raw_header(&b, &h);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    h.from = 1;
    h.to = 0;
    raw_header(&b, &h);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
}

static void test_n_entries_limit(void)
{
    struct buf b;
    struct hdr h = append_hdr;
    /* The limit itself is fine... */
    h.n_entries = ASPEN_RAFT_MAX_ENTRIES_PER_MSG;
    raw_header(&b, &h);
    for (uint32_t i = 0; i < h.n_entries; i++)
        raw_entry(&b, 5, h.index + 1 + i, RAFT_ENTRY_NORMAL, 0);
    CHECK_OK(raw_decode(&b));
    /* ...one more, all present and otherwise valid, is refused... */
    h.n_entries = ASPEN_RAFT_MAX_ENTRIES_PER_MSG + 1;
    raw_header(&b, &h);
    for (uint32_t i = 0; i < h.n_entries; i++)
        raw_entry(&b, 5, h.index + 1 + i, RAFT_ENTRY_NORMAL, 0);
    CHECK_ERR(raw_decode(&b), ASPEN_E_TOO_LARGE);
    /* ...and a huge count with nothing behind it is refused before anything else. */
    h.n_entries = UINT32_MAX;
    raw_header(&b, &h);
    CHECK_ERR(raw_decode(&b), ASPEN_E_TOO_LARGE);
    h.type = RAFT_MSG_VOTE;
    raw_header(&b, &h);
    CHECK_ERR(raw_decode(&b), ASPEN_E_TOO_LARGE);
}

static void test_counts_beyond_the_frame(void)
{
    struct buf b;
    struct hdr h = append_hdr;
    h.n_entries = 2;
    raw_header(&b, &h);
    raw_entry(&b, 5, 10, RAFT_ENTRY_NORMAL, 3); /* the second entry is missing */
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    h.n_entries = 1;
    raw_header(&b, &h);
    w64(&b, 5);
    w64(&b, 10);
    w8(&b, 0);
    w32(&b, 100); /* claims 100 bytes, has 3 */
    w8(&b, 1);
    w8(&b, 2);
    w8(&b, 3);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    h.n_entries = 1;
    raw_header(&b, &h);
    w64(&b, 5); /* an entry header cut short */
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    /* A snapshot list count with fewer ids behind it. */
    h = (struct hdr){.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
    raw_header(&b, &h);
    w64(&b, 1);
    w64(&b, 1);
    w32(&b, 3);
    w64(&b, 1);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    raw_header(&b, &h); /* SNAPSHOT without its meta */
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
}

static void test_entries_only_on_append(void)
{
    struct buf b;
    for (uint8_t type = 1; type < RAFT_MSG_TYPE_COUNT; type++) {
        struct hdr h = append_hdr;
        h.type = type;
        h.n_entries = 1;
        raw_header(&b, &h);
        raw_entry(&b, 5, 10, RAFT_ENTRY_NORMAL, 1);
        if (type == RAFT_MSG_SNAPSHOT) {
            struct raft_config c = {0};
            raw_snapshot(&b, &c, 0);
        }
        CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    }
}

static void test_entry_indexes_consecutive(void)
{
    struct buf b;
    struct hdr h = append_hdr; /* index 9: entries must be 10, 11, ... */
    h.n_entries = 2;
    static const uint64_t bad[][2] = {{11, 12}, {9, 10}, {10, 12}, {10, 10}, {0, 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_header(&b, &h);
        raw_entry(&b, 5, bad[i][0], RAFT_ENTRY_NORMAL, 1);
        raw_entry(&b, 5, bad[i][1], RAFT_ENTRY_NORMAL, 1);
        CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    }
    /* An index that would wrap past the last possible entry. */
    h.n_entries = 1;
    h.index = UINT64_MAX;
    raw_header(&b, &h);
    raw_entry(&b, 5, 0, RAFT_ENTRY_NORMAL, 0);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    h.index = UINT64_MAX - 1;
    raw_header(&b, &h);
    raw_entry(&b, 5, UINT64_MAX, RAFT_ENTRY_NORMAL, 0);
    CHECK_OK(raw_decode(&b));
}

static void test_entry_terms(void)
{
    struct buf b;
    struct hdr h = append_hdr; /* term 5, log_term 4 */
    h.n_entries = 2;
    static const uint64_t bad[][2] = {{3, 5}, {5, 4}, {5, 6}, {6, 6}, {0, 5}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        raw_header(&b, &h);
        raw_entry(&b, bad[i][0], 10, RAFT_ENTRY_NORMAL, 0);
        raw_entry(&b, bad[i][1], 11, RAFT_ENTRY_NORMAL, 0);
        CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    }
    raw_header(&b, &h);
    raw_entry(&b, 4, 10, RAFT_ENTRY_NORMAL, 0);
    raw_entry(&b, 5, 11, RAFT_ENTRY_NORMAL, 0);
    CHECK_OK(raw_decode(&b));
    /* With no previous entry (log_term 0), term 0 is still refused. */
    h.log_term = 0;
    h.index = 0;
    h.n_entries = 1;
    raw_header(&b, &h);
    raw_entry(&b, 0, 1, RAFT_ENTRY_NORMAL, 0);
    CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
}

static void test_entry_type(void)
{
    struct buf b;
    struct hdr h = append_hdr;
    h.n_entries = 1;
    static const uint8_t bad[] = {2, 3, 0x80, 0xff};
    for (size_t i = 0; i < sizeof(bad); i++) {
        raw_header(&b, &h);
        raw_entry(&b, 5, 10, bad[i], 2);
        CHECK_ERR(raw_decode(&b), ASPEN_E_MALFORMED);
    }
}

static void test_entry_len_limit(void)
{
    struct buf b;
    struct hdr h = append_hdr;
    h.n_entries = 1;
    raw_header(&b, &h);
    raw_entry(&b, 5, 10, RAFT_ENTRY_NORMAL, ASPEN_MAX_REQUEST_BYTES);
    CHECK_OK(raw_decode(&b));
    raw_header(&b, &h);
    raw_entry(&b, 5, 10, RAFT_ENTRY_NORMAL, ASPEN_MAX_REQUEST_BYTES + 1);
    CHECK_ERR(raw_decode(&b), ASPEN_E_TOO_LARGE);
    raw_header(&b, &h);
    w64(&b, 5);
    w64(&b, 10);
    w8(&b, 0);
    w32(&b, UINT32_MAX); /* and no data at all */
    CHECK_ERR(raw_decode(&b), ASPEN_E_TOO_LARGE);
}

/* A message whose every part is within its own limit but whose total is not. */
static void test_frame_size_limit(void)
{
    struct buf b;
    struct hdr h = append_hdr;
    h.n_entries = 3;
    raw_header(&b, &h);
    for (uint32_t i = 0; i < 3; i++)
        raw_entry(&b, 5, 10 + i, RAFT_ENTRY_NORMAL, ASPEN_MAX_REQUEST_BYTES);
    raw_seal(&b);
    CHECK(b.len > FRAME_MAX);
    size_t n;
    CHECK_ERR(raft_msg_frame_len(b.data, b.len, &n), ASPEN_E_TOO_LARGE);
    int rc = decode_copy(b.data, b.len);
    buf_release(&b);
    CHECK_ERR(rc, ASPEN_E_TOO_LARGE);

    /* The same rule on the encoding side, where raft_msg_validate reports it. */
    uint8_t *data = mem_alloc(ASPEN_MAX_REQUEST_BYTES);
    CHECK(data != NULL);
    struct raft_entry e[3];
    for (uint32_t i = 0; i < 3; i++)
        e[i] = (struct raft_entry){
            .term = 5, .index = 10 + i, .len = ASPEN_MAX_REQUEST_BYTES, .data = data};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 5,
                         .index = 9,
                         .n_entries = 3,
                         .entries = e};
    rc = raft_msg_validate(&m);
    mem_free(data);
    CHECK_ERR(rc, ASPEN_E_TOO_LARGE);
}

static int decode_config(const struct raft_config *c, uint8_t auto_leave)
{
    struct buf b;
    struct hdr h = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2, .term = 7};
    raw_header(&b, &h);
    raw_snapshot(&b, c, auto_leave);
    return raw_decode(&b);
}

static void test_config_list_limits(void)
{
    struct raft_config c = {0};
    raft_id big[ASPEN_MAX_MEMBERS + 1];
    for (uint32_t i = 0; i <= ASPEN_MAX_MEMBERS; i++)
        big[i] = 1000 + i;
    /* Each list at its limit is fine. */
    c.n_voters = ASPEN_MAX_VOTERS;
    memcpy(c.voters, big, sizeof(c.voters));
    CHECK_OK(decode_config(&c, 0));
    c = (struct raft_config){.n_learners = ASPEN_MAX_MEMBERS};
    memcpy(c.learners, big, sizeof(c.learners));
    CHECK_OK(decode_config(&c, 0));
    /* One more id in any list, all ids present and distinct, is refused. The writer reads
     * the ids from the struct, so the oversize lists are written field by field. */
    for (int list = 0; list < 4; list++) {
        struct buf b;
        struct hdr h = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
        raw_header(&b, &h);
        w64(&b, 1);
        w64(&b, 1);
        for (int l = 0; l < 4; l++) {
            uint32_t n = 0;
            if (l == list)
                n = (l == 2 ? ASPEN_MAX_MEMBERS : ASPEN_MAX_VOTERS) + 1;
            raw_ids(&b, big, n);
        }
        w8(&b, 0);
        CHECK_ERR(raw_decode(&b), ASPEN_E_TOO_LARGE);
        /* A huge count with nothing behind it: refused before any id is read. */
        raw_header(&b, &h);
        w64(&b, 1);
        w64(&b, 1);
        for (int l = 0; l < list; l++)
            w32(&b, 0);
        w32(&b, UINT32_MAX);
        CHECK_ERR(raw_decode(&b), ASPEN_E_TOO_LARGE);
    }
}

static void test_config_rules(void)
{
    struct raft_config ok = {.n_voters = 3,
                             .voters = {1, 2, 4},
                             .n_outgoing = 3,
                             .outgoing = {1, 2, 3},
                             .n_learners = 2,
                             .learners = {5, 6},
                             .n_learners_next = 1,
                             .learners_next = {3},
                             .auto_leave = true};
    CHECK_OK(decode_config(&ok, 1));
    struct raft_config c;

    c = ok; /* duplicate within each list, and a zero id in each */
    c.voters[1] = 1;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);
    c = ok;
    c.outgoing[2] = 2;
    c.n_learners_next = 0;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);
    c = ok;
    c.learners[1] = 5;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);
    c = ok;
    c.n_learners_next = 2;
    c.learners_next[1] = 3;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);
    c = ok;
    c.voters[2] = 0;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);
    c = ok;
    c.learners[0] = 0;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);

    c = ok; /* a learner that is also a voter, incoming or outgoing */
    c.learners[0] = 4;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);
    c = ok;
    c.learners[0] = 3;
    c.n_learners_next = 0;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);

    c = ok; /* learners_next must be outgoing and not incoming */
    c.learners_next[0] = 7;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);
    c = ok;
    c.learners_next[0] = 1;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);

    c = ok; /* outside a joint configuration: nothing to demote, nothing to leave */
    c.n_outgoing = 0;
    c.n_learners_next = 0;
    CHECK_ERR(decode_config(&c, 1), ASPEN_E_MALFORMED);
    CHECK_OK(decode_config(&c, 0));
    c.n_learners_next = 1;
    c.learners_next[0] = 3;
    CHECK_ERR(decode_config(&c, 0), ASPEN_E_MALFORMED);

    CHECK_ERR(decode_config(&ok, 2), ASPEN_E_MALFORMED); /* auto_leave not 0/1 */
    CHECK_ERR(decode_config(&ok, 0xff), ASPEN_E_MALFORMED);
}

/* ---------------------------------------------------------------------------------------
 * The encoding side: assertions, validate, buffer and arena failures
 * ------------------------------------------------------------------------------------- */

static void encode_msg(void *arg)
{
    struct buf b;
    buf_init(&b, FRAME_MAX);
    raft_msg_encode(arg, &b);
    buf_release(&b);
}

static void encode_entry(void *arg)
{
    struct buf b;
    buf_init(&b, FRAME_MAX);
    raft_entry_encode(arg, &b);
    buf_release(&b);
}

static void test_encode_asserts_validity(void)
{
    struct raft_entry e[2] = {{.term = 5, .index = 10}, {.term = 5, .index = 11}};
    const struct raft_msg good = {.type = RAFT_MSG_APPEND,
                                  .from = 1,
                                  .to = 2,
                                  .term = 5,
                                  .index = 9,
                                  .log_term = 4,
                                  .n_entries = 2,
                                  .entries = e};
    CHECK_OK(raft_msg_validate(&good));
    CHECK(!test_dies(encode_msg, (void *)&good));

    struct raft_msg m = good;
    m.from = 0;
    CHECK_ERR(raft_msg_validate(&m), ASPEN_E_MALFORMED);
    CHECK(test_dies(encode_msg, &m));
    m = good;
    m.type = RAFT_MSG_TYPE_COUNT;
    CHECK(test_dies(encode_msg, &m));
    m = good;
    m.type = RAFT_MSG_HEARTBEAT;
    CHECK_ERR(raft_msg_validate(&m), ASPEN_E_MALFORMED);
    CHECK(test_dies(encode_msg, &m));
    m = good;
    m.index = 10;
    CHECK(test_dies(encode_msg, &m));
    m = good;
    m.flags = 0x80;
    CHECK(test_dies(encode_msg, &m));
    m = good;
    m.n_entries = ASPEN_RAFT_MAX_ENTRIES_PER_MSG + 1;
    CHECK_ERR(raft_msg_validate(&m), ASPEN_E_TOO_LARGE);
    CHECK(test_dies(encode_msg, &m));
    m = good;
    m.entries = NULL;
    CHECK_ERR(raft_msg_validate(&m), ASPEN_E_INVALID);
    CHECK(test_dies(encode_msg, &m));
    m = good;
    e[0].len = 1; /* data NULL */
    CHECK_ERR(raft_msg_validate(&m), ASPEN_E_INVALID);
    CHECK(test_dies(encode_msg, &m));
    e[0].len = 0;
    e[1].type = 9;
    CHECK(test_dies(encode_msg, &m));
    e[1].type = RAFT_ENTRY_NORMAL;

    struct raft_msg s = {.type = RAFT_MSG_SNAPSHOT, .from = 1, .to = 2};
    s.snapshot.config = (struct raft_config){.n_voters = 2, .voters = {3, 3}};
    CHECK_ERR(raft_msg_validate(&s), ASPEN_E_MALFORMED);
    CHECK(test_dies(encode_msg, &s));
    s.snapshot.config = (struct raft_config){.n_voters = ASPEN_MAX_VOTERS + 1};
    CHECK(test_dies(encode_msg, &s));

    struct raft_entry r = {.term = 1, .index = 1};
    CHECK(!test_dies(encode_entry, &r));
    r.term = 0;
    CHECK(test_dies(encode_entry, &r));
    r = (struct raft_entry){.term = 1, .index = 0};
    CHECK(test_dies(encode_entry, &r));
    r = (struct raft_entry){.term = 1, .index = 1, .type = 2};
    CHECK(test_dies(encode_entry, &r));
    r = (struct raft_entry){.term = 1, .index = 1, .len = 1};
    CHECK(test_dies(encode_entry, &r));
    r = (struct raft_entry){.term = 1, .index = 1, .len = ASPEN_MAX_REQUEST_BYTES + 1};
    CHECK(test_dies(encode_entry, &r));
}

static void test_encode_buffer_failures(void)
{
    struct raft_entry e = {.term = 5, .index = 10, .len = 3, .data = (uint8_t *)"abc"};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 5,
                         .index = 9,
                         .n_entries = 1,
                         .entries = &e};
    size_t size = raft_msg_encoded_size(&m);
    struct buf b;
    buf_init(&b, size + 2);
    CHECK_OK(buf_append(&b, "xy", 2));
    CHECK_OK(raft_msg_encode(&m, &b)); /* exactly fits */
    buf_release(&b);
    buf_init(&b, size + 1);
    CHECK_OK(buf_append(&b, "xy", 2));
    int too_large = raft_msg_encode(&m, &b);
    bool unchanged = b.len == 2 && memcmp(b.data, "xy", 2) == 0;
    buf_release(&b);
    CHECK_ERR(too_large, ASPEN_E_TOO_LARGE);
    CHECK(unchanged);

    buf_init(&b, FRAME_MAX);
    mem_fail_at(1, 0);
    int nomem = raft_msg_encode(&m, &b);
    mem_fail_at(0, 0);
    CHECK_ERR(nomem, ASPEN_E_NOMEM);
    CHECK(b.len == 0);
    mem_fail_at(1, 0);
    nomem = raft_entry_encode(&e, &b);
    mem_fail_at(0, 0);
    CHECK_ERR(nomem, ASPEN_E_NOMEM);
    CHECK(b.len == 0);
    buf_release(&b);
    buf_init(&b, raft_entry_encoded_size(&e) - 1);
    CHECK_ERR(raft_entry_encode(&e, &b), ASPEN_E_TOO_LARGE);
    buf_release(&b);
}

static void test_decode_arena_failures(void)
{
    struct raft_entry e[4];
    for (uint32_t i = 0; i < 4; i++)
        e[i] = (struct raft_entry){.term = 5, .index = 10 + i};
    struct raft_msg m = {.type = RAFT_MSG_APPEND,
                         .from = 1,
                         .to = 2,
                         .term = 5,
                         .index = 9,
                         .n_entries = 4,
                         .entries = e};
    struct buf b;
    CHECK_OK(encode(&m, &b));
    struct raft_msg d;
    struct arena a;

    arena_init(&a, 4096, 4 * sizeof(struct raft_entry) - 1); /* too small for the array */
    int over = raft_msg_decode(b.data, b.len, &d, &a);
    bool zeroed = is_zero(&d, sizeof(d));
    arena_release(&a);
    CHECK_ERR(over, ASPEN_E_TOO_LARGE);
    CHECK(zeroed);

    arena_init(&a, 4096, ARENA_MAX);
    mem_fail_at(1, 0);
    int nomem = raft_msg_decode(b.data, b.len, &d, &a);
    mem_fail_at(0, 0);
    zeroed = is_zero(&d, sizeof(d));
    /* A frame that fails validation takes nothing from the arena. */
    b.data[RAFT_MSG_HEADER_BYTES + 8 + 7] = 99; /* the first entry's index */
    reseal(b.data, b.len);
    int bad = raft_msg_decode(b.data, b.len, &d, &a);
    size_t used = a.used_bytes;
    arena_release(&a);
    buf_release(&b);
    CHECK_ERR(nomem, ASPEN_E_NOMEM);
    CHECK(zeroed);
    CHECK_ERR(bad, ASPEN_E_MALFORMED);
    CHECK_EQ(used, 0);
}

/* ---------------------------------------------------------------------------------------
 * Entry records
 * ------------------------------------------------------------------------------------- */

static void test_entry_record_round_trip(void)
{
    struct rng r;
    rng_seed(&r, test_seed());
    static uint8_t pool[512];
    rng_fill(&r, pool, sizeof(pool));
    struct buf b;
    buf_init(&b, 1 << 20);
    for (uint64_t it = 0; it < test_iters(2000); it++) {
        struct raft_entry e = {.term = some_id(&r),
                               .index = some_id(&r),
                               .type = rng_ratio(&r, 1, 2) ? RAFT_ENTRY_CONF : RAFT_ENTRY_NORMAL,
                               .len = (uint32_t)rng_below(&r, sizeof(pool) + 1)};
        e.data = e.len ? pool + rng_below(&r, sizeof(pool) - e.len + 1) : NULL;
        buf_clear(&b);
        CHECK_OK(raft_entry_encode(&e, &b));
        CHECK_EQ(b.len, raft_entry_encoded_size(&e));
        struct raft_entry d;
        CHECK_OK(raft_entry_decode(b.data, b.len, &d));
        CHECK(entry_equal(&e, &d));
        CHECK(d.len == 0 ? d.data == NULL : d.data == b.data + RAFT_ENTRY_HEADER_BYTES);
    }
    buf_release(&b);
}

static void test_entry_record_damage(void)
{
    struct raft_entry e = {.term = 3,
                           .index = 77,
                           .type = RAFT_ENTRY_NORMAL,
                           .len = 10,
                           .data = (uint8_t *)"0123456789"};
    struct buf b;
    buf_init(&b, 1024);
    CHECK_OK(raft_entry_encode(&e, &b));
    uint8_t f[64];
    size_t n = b.len;
    memcpy(f, b.data, n);
    buf_release(&b);

    uint8_t g[64];
    bool ok = true;
    for (size_t at = 0; at < n && ok; at++)
        for (unsigned x = 1; x < 256 && ok; x++) {
            memcpy(g, f, n);
            g[at] ^= (uint8_t)x;
            int want = ASPEN_E_CORRUPT;
            if (at < 2)
                want = ASPEN_E_MALFORMED;
            else if (at == 2)
                want = ASPEN_E_UNSUPPORTED;
            else if (at >= 20 && at < 24) {
                uint32_t len = be32_load(g + 20);
                want = len > ASPEN_MAX_REQUEST_BYTES         ? ASPEN_E_TOO_LARGE
                       : len + RAFT_ENTRY_OVERHEAD_BYTES > n ? ASPEN_E_TRUNCATED
                                                             : ASPEN_E_MALFORMED;
            }
            int got = decode_entry_copy(g, n);
            if (got != want) {
                test_fail(__FILE__, __LINE__, "byte %zu ^ %02x: got %s, want %s", at, x,
                          aspen_err_name(got), aspen_err_name(want));
                ok = false;
            }
        }
    CHECK(ok);
    for (size_t cut = 0; cut < n; cut++)
        CHECK_ERR(decode_entry_copy(f, cut), ASPEN_E_TRUNCATED);
    memcpy(g, f, n);
    g[n] = 0;
    CHECK_ERR(decode_entry_copy(g, n + 1), ASPEN_E_MALFORMED); /* trailing byte */

    /* Rules behind the checksum. */
    static const struct {
        size_t at;
        uint8_t v;
    } rules[] = {{3, 2}, {3, 0xff}, {11, 0}, {19, 0}};
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        memcpy(g, f, n);
        g[rules[i].at] = rules[i].v; /* type; term 0 (its low byte); index 0 */
        if (rules[i].at == 11)
            memset(g + 4, 0, 8);
        if (rules[i].at == 19)
            memset(g + 12, 0, 8);
        be32_store(g + n - 4, crc32c(g, n - 4));
        CHECK_ERR(decode_entry_copy(g, n), ASPEN_E_MALFORMED);
    }
    memcpy(g, f, n); /* a message frame is not an entry record */
    g[1] = RAFT_CODEC_MAGIC_MSG;
    CHECK_ERR(decode_entry_copy(g, n), ASPEN_E_MALFORMED);
}

/* ---------------------------------------------------------------------------------------
 * Fuzzer seeds
 * ------------------------------------------------------------------------------------- */

static bool write_file(const char *dir, const char *sub, const char *name, const uint8_t *data,
                       size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        return false;
    bool ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

/* One valid frame of every type (small enough for the replay driver's 4 KiB inputs),
 * checked to decode; written out as the seed corpus when ASPEN_CODEC_CORPUS_DIR names a
 * directory with raft_msg/ and raft_entry/ inside. */
static void test_fuzz_seeds(void)
{
    const char *dir = getenv("ASPEN_CODEC_CORPUS_DIR");
    static const char *names[RAFT_MSG_TYPE_COUNT] = {
        "append",    "append-resp",    "vote",     "vote-resp",   "prevote",    "prevote-resp",
        "heartbeat", "heartbeat-resp", "snapshot", "timeout-now", "read-index", "read-index-resp"};
    struct rng r;
    rng_seed(&r, 0x5eed); /* fixed: the corpus must not depend on ASPEN_TEST_SEED */
    static uint8_t pool[64];
    rng_fill(&r, pool, sizeof(pool));
    static struct raft_entry entries[8];
    for (uint8_t type = 0; type < RAFT_MSG_TYPE_COUNT; type++) {
        struct raft_msg m;
        random_msg(&r, type, &m, entries, 8, pool, sizeof(pool));
        if (type == RAFT_MSG_APPEND && m.n_entries < 2) {
            m.n_entries = 2;
            m.entries = entries;
            m.index = 9;
            m.log_term = 4;
            m.term = 5;
            entries[0] = (struct raft_entry){.term = 4, .index = 10, .len = 3, .data = pool};
            entries[1] = (struct raft_entry){.term = 5, .index = 11, .type = RAFT_ENTRY_CONF};
        }
        struct buf b;
        CHECK_OK(encode(&m, &b));
        int rc = decode_copy(b.data, b.len);
        bool written = !dir || write_file(dir, "raft_msg", names[type], b.data, b.len);
        buf_release(&b);
        CHECK_OK(rc);
        CHECK(written);
    }
    struct raft_entry e = {.term = 2, .index = 5, .len = 11, .data = (uint8_t *)"hello world"};
    struct buf b;
    buf_init(&b, 1024);
    CHECK_OK(raft_entry_encode(&e, &b));
    bool written = !dir || write_file(dir, "raft_entry", "normal", b.data, b.len);
    buf_clear(&b);
    e = (struct raft_entry){.term = 9, .index = 1, .type = RAFT_ENTRY_CONF};
    CHECK_OK(raft_entry_encode(&e, &b));
    written = written && (!dir || write_file(dir, "raft_entry", "conf-empty", b.data, b.len));
    buf_release(&b);
    CHECK(written);
}

/* Snapshot meta records round-trip for random configurations, and every truncation or
 * extension of one is refused. */
static void test_snapshot_meta_round_trip(void)
{
    struct rng r;
    rng_seed(&r, 77);
    for (int iter = 0; iter < 200; iter++) {
        struct raft_snapshot_meta m = {.index = some_u64(&r), .term = some_u64(&r)};
        random_config(&r, &m.config, iter == 0);
        struct buf b;
        buf_init(&b, 1 << 20);
        CHECK_EQ(raft_snapshot_meta_encode(&m, &b), 0);
        CHECK_EQ(b.len, raft_snapshot_meta_encoded_size(&m));
        struct raft_snapshot_meta d;
        CHECK_EQ(raft_snapshot_meta_decode(b.data, b.len, &d), 0);
        CHECK(memcmp(&d, &m, sizeof(m)) == 0);
        for (size_t cut = 0; cut < b.len; cut += 1 + b.len / 16)
            CHECK(raft_snapshot_meta_decode(b.data, cut, &d) != 0);
        CHECK_EQ(buf_append_u8(&b, 0), 0);
        CHECK_EQ(raft_snapshot_meta_decode(b.data, b.len, &d), ASPEN_E_MALFORMED);
        buf_release(&b);
    }
}

static const struct test_case tests[] = {
    TEST(test_round_trip_every_type),
    TEST(test_snapshot_meta_round_trip),
    TEST(test_encode_appends),
    TEST(test_round_trip_at_limits),
    TEST(test_golden_append),
    TEST(test_golden_entry_record),
    TEST(test_every_byte_corruption_is_refused),
    TEST(test_every_truncation_is_refused),
    TEST(test_prelude),
    TEST(test_trailing_bytes),
    TEST(test_checksum_mismatch),
    TEST(test_raw_writer_matches_encoder),
    TEST(test_unknown_message_type),
    TEST(test_header_fields),
    TEST(test_n_entries_limit),
    TEST(test_counts_beyond_the_frame),
    TEST(test_entries_only_on_append),
    TEST(test_entry_indexes_consecutive),
    TEST(test_entry_terms),
    TEST(test_entry_type),
    TEST(test_entry_len_limit),
    TEST(test_frame_size_limit),
    TEST(test_config_list_limits),
    TEST(test_config_rules),
    TEST(test_encode_asserts_validity),
    TEST(test_encode_buffer_failures),
    TEST(test_decode_arena_failures),
    TEST(test_entry_record_round_trip),
    TEST(test_entry_record_damage),
    TEST(test_fuzz_seeds),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("codec", tests);
}
