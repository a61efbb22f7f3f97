/*
 * Tuple layer: golden encodings from the FoundationDB tuple spec, round trips of random
 * tuples, the order property (comparing values with tuple_cmp agrees with comparing
 * their encodings bytewise) over many close pairs, rejection of malformed input with
 * the documented codes, and clean failure when allocation fails.
 */
#include "test.h"

#include "base/buf.h"
#include "base/mem.h"
#include "base/rand.h"
#include "base/tuple.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_KEY (1u << 20)

/* ---- Helpers ---- */

/* Parses hex digits (spaces ignored) into out; returns the byte count. */
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

static void hex_of(struct slice s, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s.len && at + 4 < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%02x ", s.ptr[i]);
}

static int sign(int c)
{
    return (c > 0) - (c < 0);
}

/* Packs items, expects exactly hex, then unpacks and checks the items compare equal and
 * repack to the same bytes. Reports its own failure. */
static bool packs_to(const struct tuple_item *items, size_t n, const char *hex, int line)
{
    uint8_t want[256];
    size_t want_len = unhex(hex, want, sizeof(want));
    struct buf b, b2;
    buf_init(&b, MAX_KEY);
    buf_init(&b2, MAX_KEY);
    struct arena a;
    arena_init(&a, 4096, MAX_KEY);
    bool ok = false;
    char got_hex[1024];
    int rc = tuple_pack(&b, items, n);
    if (rc) {
        test_fail(__FILE__, line, "pack failed: %s", aspen_err_name(rc));
        goto release;
    }
    if (!slice_eq(buf_slice(&b), slice_make(want, want_len))) {
        hex_of(buf_slice(&b), got_hex, sizeof(got_hex));
        test_fail(__FILE__, line, "packed %s, want %s", got_hex, hex);
        goto release;
    }
    struct tuple_item *got = NULL;
    size_t got_n = 0;
    rc = tuple_unpack(buf_slice(&b), &a, &got, &got_n);
    if (rc) {
        test_fail(__FILE__, line, "unpack failed: %s", aspen_err_name(rc));
        goto release;
    }
    if (got_n != n || tuple_cmp(got, got_n, items, n) != 0) {
        test_fail(__FILE__, line, "unpacked tuple differs");
        goto release;
    }
    rc = tuple_pack(&b2, got, got_n);
    if (rc || !slice_eq(buf_slice(&b2), buf_slice(&b))) {
        test_fail(__FILE__, line, "repack differs");
        goto release;
    }
    ok = true;
release:
    arena_release(&a);
    buf_release(&b2);
    buf_release(&b);
    return ok;
}

#define PACKS_TO(items, n, hex) CHECK(packs_to((items), (n), (hex), __LINE__))
#define PACKS1_TO(item, hex)                                                                       \
    do {                                                                                           \
        struct tuple_item one_ = (item);                                                           \
        PACKS_TO(&one_, 1, hex);                                                                   \
    } while (0)

static struct slice lit(const char *s, size_t len)
{
    return slice_make(s, len);
}

static double f64_bits(uint64_t bits)
{
    double d;
    memcpy(&d, &bits, sizeof(d));
    return d;
}

static float f32_bits(uint32_t bits)
{
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

/* Decodes hex with a fresh arena and returns tuple_unpack's code. */
static int unpack_hex(const char *hex)
{
    uint8_t in[256];
    size_t len = unhex(hex, in, sizeof(in));
    struct arena a;
    arena_init(&a, 4096, MAX_KEY);
    struct tuple_item *items = NULL;
    size_t n = 0;
    int rc = tuple_unpack(slice_make(in, len), &a, &items, &n);
    arena_release(&a);
    return rc;
}

/* ---- Golden vectors ---- */

/* Each vector below follows from the spec (type code, escaping, minimal big-endian
 * magnitude, one's complement for negatives, float bit flips); the FDB documentation
 * lists several of them verbatim. Note -5551212 = -0x54b46c, so its bytes are
 * ~54 ~b4 ~6c = ab 4b 93 (FDB's docs print it as b'\x11\xabK\x93'). */
static void test_golden_scalars(void)
{
    PACKS_TO(NULL, 0, "");
    PACKS1_TO(tuple_null(), "00");
    PACKS1_TO(tuple_bytes(lit("foo\0bar", 7)), "01 66 6f 6f 00 ff 62 61 72 00");
    PACKS1_TO(tuple_bytes(lit("", 0)), "01 00");
    PACKS1_TO(tuple_bytes(lit("\xff", 1)), "01 ff 00");
    PACKS1_TO(tuple_string(lit("F\xc3\x94O\0bar", 8)), "02 46 c3 94 4f 00 ff 62 61 72 00");
    PACKS1_TO(tuple_string(lit("", 0)), "02 00");
    PACKS1_TO(tuple_i64(0), "14");
    PACKS1_TO(tuple_i64(-5551212), "11 ab 4b 93");
    PACKS1_TO(tuple_i64(1), "15 01");
    PACKS1_TO(tuple_i64(255), "15 ff");
    PACKS1_TO(tuple_i64(256), "16 01 00");
    PACKS1_TO(tuple_i64(-1), "13 fe");
    PACKS1_TO(tuple_i64(-255), "13 00");
    PACKS1_TO(tuple_i64(-256), "12 fe ff");
    PACKS1_TO(tuple_i64(INT64_C(1) << 32), "19 01 00 00 00 00");
    PACKS1_TO(tuple_i64(-(INT64_C(1) << 32)), "0f fe ff ff ff ff");
    PACKS1_TO(tuple_i64(INT64_MAX), "1c 7f ff ff ff ff ff ff ff");
    PACKS1_TO(tuple_i64(INT64_MIN), "0c 7f ff ff ff ff ff ff ff");
    PACKS1_TO(tuple_u64(UINT64_MAX), "1c ff ff ff ff ff ff ff ff");
    PACKS1_TO(tuple_integer(true, UINT64_MAX), "0c 00 00 00 00 00 00 00 00");
    PACKS1_TO(tuple_integer(true, 0), "14"); /* negative zero is zero */
    PACKS1_TO(tuple_f64(3.14), "21 c0 09 1e b8 51 eb 85 1f");
    PACKS1_TO(tuple_f64(-42.0), "21 3f ba ff ff ff ff ff ff");
    PACKS1_TO(tuple_f64(0.0), "21 80 00 00 00 00 00 00 00");
    PACKS1_TO(tuple_f64(-0.0), "21 7f ff ff ff ff ff ff ff");
    PACKS1_TO(tuple_f64(INFINITY), "21 ff f0 00 00 00 00 00 00");
    PACKS1_TO(tuple_f64(-INFINITY), "21 00 0f ff ff ff ff ff ff");
    PACKS1_TO(tuple_f64(f64_bits(UINT64_C(0x7ff8000000000000))), "21 ff f8 00 00 00 00 00 00");
    PACKS1_TO(tuple_f64(f64_bits(UINT64_C(0x0000000000000001))), "21 80 00 00 00 00 00 00 01");
    PACKS1_TO(tuple_f32(1.0f), "20 bf 80 00 00");
    PACKS1_TO(tuple_f32(-1.0f), "20 40 7f ff ff");
    PACKS1_TO(tuple_f32(f32_bits(0xffc00000u)), "20 00 3f ff ff"); /* -NaN */
    PACKS1_TO(tuple_bool(true), "27");
    PACKS1_TO(tuple_bool(false), "26");
    static const uint8_t uuid[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
    PACKS1_TO(tuple_uuid(uuid), "30 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f");
}

static void test_golden_nested(void)
{
    struct tuple_item inner[3] = {tuple_bytes(lit("foo\0bar", 7)), tuple_null(),
                                  tuple_nested(NULL, 0)};
    PACKS1_TO(tuple_nested(inner, 3), "05 01 66 6f 6f 00 ff 62 61 72 00 00 ff 05 00 00");
    struct tuple_item null1 = tuple_null();
    PACKS1_TO(tuple_nested(&null1, 1), "05 00 ff 00");
    struct tuple_item empty = tuple_nested(NULL, 0);
    PACKS1_TO(tuple_nested(&empty, 1), "05 05 00 00");
    struct tuple_item top[3] = {tuple_null(), tuple_nested(&null1, 1), tuple_null()};
    PACKS_TO(top, 3, "00 05 00 ff 00 00");
    struct tuple_item mixed[3] = {tuple_string(lit("a", 1)), tuple_i64(-1), tuple_bool(true)};
    PACKS_TO(mixed, 3, "02 61 00 13 fe 27");
}

static void test_int_accessors(void)
{
    int64_t i = 0;
    uint64_t u = 0;
    CHECK_OK(tuple_int_to_i64(tuple_int_from_i64(INT64_MIN), &i));
    CHECK(i == INT64_MIN);
    CHECK_OK(tuple_int_to_i64(tuple_int_from_i64(INT64_MAX), &i));
    CHECK(i == INT64_MAX);
    CHECK_OK(tuple_int_to_i64(tuple_int_from_i64(-1), &i));
    CHECK(i == -1);
    CHECK_ERR(tuple_int_to_i64(tuple_int_from_u64((uint64_t)INT64_MAX + 1), &i), ASPEN_E_OVERFLOW);
    struct tuple_int below_min = {.negative = true, .magnitude = (uint64_t)INT64_MAX + 2};
    CHECK_ERR(tuple_int_to_i64(below_min, &i), ASPEN_E_OVERFLOW);
    CHECK(i == -1); /* untouched on error */
    CHECK_OK(tuple_int_to_u64(tuple_int_from_u64(UINT64_MAX), &u));
    CHECK(u == UINT64_MAX);
    CHECK_ERR(tuple_int_to_u64(tuple_int_from_i64(-1), &u), ASPEN_E_OVERFLOW);
    struct tuple_int neg_zero = {.negative = true, .magnitude = 0};
    CHECK_OK(tuple_int_to_u64(neg_zero, &u));
    CHECK(u == 0);
    CHECK(!tuple_int_from_i64(0).negative);
}

/* ---- Random tuples ---- */

struct gen {
    struct rng r;
    struct arena *a;
};

static void *gen_alloc(struct gen *g, size_t size)
{
    void *p = arena_alloc(g->a, size ? size : 1, 16);
    if (!p)
        abort(); /* the test arena is sized for the generator */
    return p;
}

static const uint64_t edge_magnitudes[] = {0,
                                           1,
                                           2,
                                           127,
                                           128,
                                           254,
                                           255,
                                           256,
                                           257,
                                           65535,
                                           65536,
                                           UINT32_MAX,
                                           (uint64_t)UINT32_MAX + 1,
                                           (uint64_t)INT64_MAX - 1,
                                           (uint64_t)INT64_MAX,
                                           (uint64_t)INT64_MAX + 1,
                                           (uint64_t)INT64_MAX + 2,
                                           UINT64_MAX - 1,
                                           UINT64_MAX};

static const uint64_t edge_f64[] = {
    0,                            /* +0 */
    UINT64_C(0x8000000000000000), /* -0 */
    UINT64_C(0x0000000000000001), /* smallest subnormal */
    UINT64_C(0x8000000000000001),
    UINT64_C(0x000fffffffffffff), /* largest subnormal */
    UINT64_C(0x0010000000000000), /* smallest normal */
    UINT64_C(0x3ff0000000000000), /* 1.0 */
    UINT64_C(0xbff0000000000000), /* -1.0 */
    UINT64_C(0x7fefffffffffffff), /* DBL_MAX */
    UINT64_C(0x7ff0000000000000), /* +inf */
    UINT64_C(0xfff0000000000000), /* -inf */
    UINT64_C(0x7ff0000000000001), /* signalling NaN */
    UINT64_C(0x7ff8000000000000), /* quiet NaN */
    UINT64_C(0x7fffffffffffffff),
    UINT64_C(0xfff8000000000000), /* -NaN */
    UINT64_C(0xfff0000000000001),
    UINT64_C(0xffffffffffffffff),
};

static const uint32_t edge_f32[] = {
    0,           0x80000000u, 0x00000001u, 0x80000001u, 0x007fffffu, 0x3f800000u,
    0xbf800000u, 0x7f7fffffu, 0x7f800000u, 0xff800000u, 0x7f800001u, 0x7fc00000u,
    0x7fffffffu, 0xffc00000u, 0xff800001u, 0xffffffffu,
};

static struct tuple_int gen_int(struct gen *g)
{
    uint64_t m;
    if (rng_ratio(&g->r, 1, 2))
        m = edge_magnitudes[rng_below(&g->r, sizeof(edge_magnitudes) / sizeof(uint64_t))];
    else
        m = rng_next(&g->r) >> rng_below(&g->r, 64);
    return tuple_integer(rng_ratio(&g->r, 1, 2), m).u.integer;
}

static uint8_t gen_byte(struct gen *g)
{
    static const uint8_t interesting[] = {0x00, 0x00, 0xff, 0xff, 0x01, 0xfe, 'a', 'b'};
    if (rng_ratio(&g->r, 3, 4))
        return interesting[rng_below(&g->r, sizeof(interesting))];
    return (uint8_t)rng_next(&g->r);
}

/* Appends the UTF-8 encoding of a random scalar value (biased towards small and
 * boundary code points, including U+0000) to p; returns its length. */
static size_t gen_char(struct gen *g, uint8_t *p)
{
    static const uint32_t edges[] = {0x0,    0x1,     'a',      0x7f,   0x80,
                                     0x7ff,  0x800,   0xd7ff,   0xe000, 0xfffd,
                                     0xffff, 0x10000, 0x10ffff, 0xd4,   0x10fffe};
    uint32_t cp;
    switch (rng_below(&g->r, 4)) {
    case 0:
        cp = edges[rng_below(&g->r, sizeof(edges) / sizeof(edges[0]))];
        break;
    case 1:
        cp = (uint32_t)rng_below(&g->r, 0x80);
        break;
    default:
        cp = (uint32_t)rng_below(&g->r, 0x110000);
        if (cp >= 0xd800 && cp <= 0xdfff)
            cp -= 0x800;
        break;
    }
    if (cp < 0x80) {
        p[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        p[0] = (uint8_t)(0xc0 | cp >> 6);
        p[1] = (uint8_t)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        p[0] = (uint8_t)(0xe0 | cp >> 12);
        p[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
        p[2] = (uint8_t)(0x80 | (cp & 0x3f));
        return 3;
    }
    p[0] = (uint8_t)(0xf0 | cp >> 18);
    p[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3f));
    p[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3f));
    p[3] = (uint8_t)(0x80 | (cp & 0x3f));
    return 4;
}

#define GEN_MAX_STR   12 /* bytes, or characters for strings */
#define GEN_MAX_ITEMS 4
#define GEN_MAX_DEPTH 3

static struct slice gen_bytes(struct gen *g, bool utf8)
{
    size_t chars = (size_t)rng_below(&g->r, GEN_MAX_STR + 1);
    uint8_t *p = gen_alloc(g, chars * 4);
    size_t len = 0;
    for (size_t i = 0; i < chars; i++) {
        if (utf8)
            len += gen_char(g, p + len);
        else
            p[len++] = gen_byte(g);
    }
    return slice_make(p, len);
}

static struct tuple_item gen_item(struct gen *g, unsigned depth);

static struct tuple_view gen_tuple(struct gen *g, unsigned depth)
{
    size_t n = (size_t)rng_below(&g->r, GEN_MAX_ITEMS + 1);
    struct tuple_item *items = gen_alloc(g, n * sizeof(*items));
    for (size_t i = 0; i < n; i++)
        items[i] = gen_item(g, depth);
    return (struct tuple_view){.items = items, .n = n};
}

static struct tuple_item gen_item(struct gen *g, unsigned depth)
{
    struct tuple_item it = {.type = TUPLE_NULL};
    uint64_t bits;
    switch (rng_below(&g->r, depth < GEN_MAX_DEPTH ? 10 : 9)) {
    case 0:
        return tuple_null();
    case 1:
        return tuple_bytes(gen_bytes(g, false));
    case 2:
        return tuple_string(gen_bytes(g, true));
    case 3:
    case 4:
        it.type = TUPLE_INT;
        it.u.integer = gen_int(g);
        return it;
    case 5:
        bits = rng_ratio(&g->r, 1, 2) ? edge_f32[rng_below(&g->r, sizeof(edge_f32) / 4)]
                                      : rng_next(&g->r);
        return tuple_f32(f32_bits((uint32_t)bits));
    case 6:
        bits = rng_ratio(&g->r, 1, 2) ? edge_f64[rng_below(&g->r, sizeof(edge_f64) / 8)]
                                      : rng_next(&g->r);
        return tuple_f64(f64_bits(bits));
    case 7:
        return tuple_bool(rng_ratio(&g->r, 1, 2));
    case 8:
        it.type = TUPLE_UUID;
        for (int i = 0; i < 16; i++)
            it.u.uuid[i] = gen_byte(g);
        return it;
    default:
        it.type = TUPLE_NESTED;
        it.u.nested = gen_tuple(g, depth + 1);
        return it;
    }
}

/* One step up or down from v, staying within +-(2^64-1). */
static struct tuple_int int_step(struct tuple_int v, bool up)
{
    bool neg = v.negative && v.magnitude != 0;
    if (v.magnitude == 0)
        return (struct tuple_int){.negative = !up, .magnitude = 1};
    if (neg == up) /* towards zero */
        return tuple_integer(neg, v.magnitude - 1).u.integer;
    if (v.magnitude == UINT64_MAX)
        return v;
    return (struct tuple_int){.negative = neg, .magnitude = v.magnitude + 1};
}

/* A copy of s changed a little: a byte or character added or removed at the end, or
 * the last byte nudged (strings only change at character boundaries). */
static struct slice tweak_bytes(struct gen *g, struct slice s, bool utf8)
{
    uint8_t *p = gen_alloc(g, s.len + 4);
    if (s.len)
        memcpy(p, s.ptr, s.len);
    size_t len = s.len;
    switch (rng_below(&g->r, 3)) {
    case 0: /* extend */
        if (utf8)
            len += gen_char(g, p + len);
        else
            p[len++] = gen_byte(g);
        break;
    case 1: /* shorten */
        if (len)
            len--;
        while (utf8 && len && (p[len] & 0xc0) == 0x80)
            len--;
        break;
    default: /* nudge the last byte (ASCII only for strings) */
        if (len && (!utf8 || (p[len - 1] > 0 && p[len - 1] < 0x7f)))
            p[len - 1] = (uint8_t)(p[len - 1] + (rng_ratio(&g->r, 1, 2) ? 1 : -1));
        break;
    }
    return slice_make(p, len);
}

static struct tuple_view tweak_tuple(struct gen *g, struct tuple_view t, unsigned depth);

/* A value close to it: same type with a neighbouring value most of the time. */
static struct tuple_item tweak_item(struct gen *g, const struct tuple_item *it, unsigned depth)
{
    struct tuple_item out = *it;
    uint32_t b32;
    uint64_t b64;
    if (rng_ratio(&g->r, 1, 8))
        return gen_item(g, depth);
    switch (it->type) {
    case TUPLE_NULL:
        return gen_item(g, depth);
    case TUPLE_BYTES:
    case TUPLE_STRING:
        out.u.bytes = tweak_bytes(g, it->u.bytes, it->type == TUPLE_STRING);
        break;
    case TUPLE_NESTED:
        out.u.nested = tweak_tuple(g, it->u.nested, depth + 1);
        break;
    case TUPLE_INT:
        if (rng_ratio(&g->r, 1, 4))
            out.u.integer =
                tuple_integer(!it->u.integer.negative, it->u.integer.magnitude).u.integer;
        else
            out.u.integer = int_step(it->u.integer, rng_ratio(&g->r, 1, 2));
        break;
    case TUPLE_F32:
        memcpy(&b32, &it->u.f32, 4);
        b32 = rng_ratio(&g->r, 1, 4) ? b32 ^ 0x80000000u
                                     : b32 + (rng_ratio(&g->r, 1, 2) ? 1u : UINT32_MAX);
        memcpy(&out.u.f32, &b32, 4);
        break;
    case TUPLE_F64:
        memcpy(&b64, &it->u.f64, 8);
        b64 = rng_ratio(&g->r, 1, 4) ? b64 ^ UINT64_C(0x8000000000000000)
                                     : b64 + (rng_ratio(&g->r, 1, 2) ? 1u : UINT64_MAX);
        memcpy(&out.u.f64, &b64, 8);
        break;
    case TUPLE_BOOL:
        out.u.boolean = !it->u.boolean;
        break;
    case TUPLE_UUID:
        out.u.uuid[rng_below(&g->r, 16)] ^= (uint8_t)(1u << rng_below(&g->r, 8));
        break;
    }
    return out;
}

/* A tuple close to t: a shared prefix, then one item tweaked, dropped or added. */
static struct tuple_view tweak_tuple(struct gen *g, struct tuple_view t, unsigned depth)
{
    struct tuple_item *items = gen_alloc(g, (t.n + 1) * sizeof(*items));
    size_t n = t.n;
    for (size_t i = 0; i < n; i++)
        items[i] = t.items[i];
    switch (rng_below(&g->r, 4)) {
    case 0: /* truncate */
        n = (size_t)rng_below(&g->r, n + 1);
        break;
    case 1: /* append */
        items[n++] = gen_item(g, depth);
        break;
    default: /* change one item, maybe everything after it too */
        if (n) {
            size_t at = (size_t)rng_below(&g->r, n);
            items[at] = tweak_item(g, &items[at], depth);
            if (rng_ratio(&g->r, 1, 4))
                for (size_t i = at + 1; i < n; i++)
                    items[i] = gen_item(g, depth);
        }
        break;
    }
    return (struct tuple_view){.items = items, .n = n};
}

/* ---- Round trip ---- */

static void test_round_trip_random(void)
{
    struct gen g;
    rng_seed(&g.r, test_seed());
    struct arena ga, da;
    arena_init(&ga, 1 << 16, 64u << 20);
    arena_init(&da, 1 << 12, 64u << 20);
    g.a = &ga;
    struct buf b1, b2;
    buf_init(&b1, MAX_KEY);
    buf_init(&b2, MAX_KEY);
    uint64_t iters = test_iters(20000);
    bool ok = true;
    for (uint64_t i = 0; i < iters && ok; i++) {
        arena_reset(&ga);
        arena_reset(&da);
        buf_clear(&b1);
        buf_clear(&b2);
        struct tuple_view t = gen_tuple(&g, 0);
        struct tuple_item *got = NULL;
        size_t n = 0;
        ok = tuple_pack(&b1, t.items, t.n) == 0 &&
             tuple_unpack(buf_slice(&b1), &da, &got, &n) == 0 &&
             tuple_cmp(got, n, t.items, t.n) == 0 && tuple_cmp(t.items, t.n, got, n) == 0 &&
             tuple_pack(&b2, got, n) == 0 && slice_eq(buf_slice(&b1), buf_slice(&b2));
        if (!ok) {
            char hex[2048];
            hex_of(buf_slice(&b1), hex, sizeof(hex));
            test_fail(__FILE__, __LINE__, "round trip failed at iteration %" PRIu64 ": %s", i, hex);
        }
    }
    buf_release(&b2);
    buf_release(&b1);
    arena_release(&da);
    arena_release(&ga);
}

/* ---- Order property ---- */

/* For >= 100,000 pairs, mostly close to each other (one derived from the other by a
 * small change), the sign of tuple_cmp equals the sign of comparing the encodings. */
static void test_order_matches_encoding(void)
{
    struct gen g;
    rng_seed(&g.r, test_seed() ^ 0x0de5);
    struct arena ga;
    arena_init(&ga, 1 << 16, 64u << 20);
    g.a = &ga;
    struct buf ba, bb;
    buf_init(&ba, MAX_KEY);
    buf_init(&bb, MAX_KEY);
    uint64_t iters = test_iters(150000);
    uint64_t equal = 0, less = 0;
    bool ok = true;
    for (uint64_t i = 0; i < iters && ok; i++) {
        arena_reset(&ga);
        buf_clear(&ba);
        buf_clear(&bb);
        struct tuple_view a = gen_tuple(&g, 0);
        struct tuple_view b = rng_ratio(&g.r, 1, 5) ? gen_tuple(&g, 0) : tweak_tuple(&g, a, 0);
        if (rng_ratio(&g.r, 1, 20))
            b = a;
        if (tuple_pack(&ba, a.items, a.n) || tuple_pack(&bb, b.items, b.n)) {
            test_fail(__FILE__, __LINE__, "pack failed at iteration %" PRIu64, i);
            break;
        }
        int want = sign(slice_cmp(buf_slice(&ba), buf_slice(&bb)));
        int got = sign(tuple_cmp(a.items, a.n, b.items, b.n));
        int back = sign(tuple_cmp(b.items, b.n, a.items, a.n));
        equal += want == 0;
        less += want < 0;
        if (got != want || back != -want) {
            char ha[1024], hb[1024];
            hex_of(buf_slice(&ba), ha, sizeof(ha));
            hex_of(buf_slice(&bb), hb, sizeof(hb));
            test_fail(__FILE__, __LINE__,
                      "iteration %" PRIu64 ": tuple_cmp %d/%d, bytes %d\n  a = %s\n  b = %s", i,
                      got, back, want, ha, hb);
            ok = false;
        }
    }
    buf_release(&bb);
    buf_release(&ba);
    arena_release(&ga);
    CHECK(ok);
    /* The generator must exercise all three outcomes, equal pairs included. */
    CHECK(equal > iters / 50 && less > iters / 5 && iters - equal - less > iters / 5);
}

/* Hand-picked neighbours across the whole order, each strictly below the next. */
static void test_order_ladder(void)
{
    struct tuple_item null1 = tuple_null();
    struct tuple_item zero = tuple_i64(0);
    static const uint8_t uuid_lo[16] = {0}, uuid_hi[16] = {[15] = 1};
    const struct tuple_item ladder[] = {
        tuple_null(),
        tuple_bytes(lit("", 0)),
        tuple_bytes(lit("\0", 1)),
        tuple_bytes(lit("\0\0", 2)),
        tuple_bytes(lit("\0\xff", 2)),
        tuple_bytes(lit("\x01", 1)),
        tuple_bytes(lit("\xff", 1)),
        tuple_string(lit("", 0)),
        tuple_string(lit("\0", 1)),
        tuple_string(lit("a", 1)),
        tuple_string(lit("\xc3\x94", 2)),
        tuple_string(lit("\xf4\x8f\xbf\xbf", 4)),
        tuple_nested(NULL, 0),
        tuple_nested(&null1, 1),
        tuple_nested(&zero, 1),
        tuple_integer(true, UINT64_MAX),
        tuple_integer(true, UINT64_MAX - 1),
        tuple_i64(INT64_MIN),
        tuple_i64(INT64_MIN + 1),
        tuple_i64(-257),
        tuple_i64(-256),
        tuple_i64(-255),
        tuple_i64(-1),
        tuple_i64(0),
        tuple_i64(1),
        tuple_i64(255),
        tuple_i64(256),
        tuple_i64(INT64_MAX),
        tuple_u64((uint64_t)INT64_MAX + 1),
        tuple_u64(UINT64_MAX),
        tuple_f32(f32_bits(0xffc00000u)),
        tuple_f32(-INFINITY),
        tuple_f32(-1.0f),
        tuple_f32(-0.0f),
        tuple_f32(0.0f),
        tuple_f32(f32_bits(1)),
        tuple_f32(INFINITY),
        tuple_f32(f32_bits(0x7f800001u)),
        tuple_f32(f32_bits(0x7fc00000u)),
        tuple_f64(f64_bits(UINT64_C(0xfff8000000000000))),
        tuple_f64(f64_bits(UINT64_C(0xfff0000000000001))),
        tuple_f64(-INFINITY),
        tuple_f64(-1e300),
        tuple_f64(-0.0),
        tuple_f64(0.0),
        tuple_f64(f64_bits(1)),
        tuple_f64(1e300),
        tuple_f64(INFINITY),
        tuple_f64(f64_bits(UINT64_C(0x7ff0000000000001))),
        tuple_f64(f64_bits(UINT64_C(0x7ff8000000000000))),
        tuple_bool(false),
        tuple_bool(true),
        tuple_uuid(uuid_lo),
        tuple_uuid(uuid_hi),
    };
    size_t n = sizeof(ladder) / sizeof(ladder[0]);
    struct buf lo, hi;
    buf_init(&lo, MAX_KEY);
    buf_init(&hi, MAX_KEY);
    size_t bad = n;
    for (size_t i = 0; i + 1 < n && bad == n; i++) {
        buf_clear(&lo);
        buf_clear(&hi);
        if (tuple_item_cmp(&ladder[i], &ladder[i + 1]) >= 0 ||
            tuple_item_cmp(&ladder[i + 1], &ladder[i]) <= 0 ||
            tuple_item_cmp(&ladder[i], &ladder[i]) != 0 || tuple_pack(&lo, &ladder[i], 1) ||
            tuple_pack(&hi, &ladder[i + 1], 1) || slice_cmp(buf_slice(&lo), buf_slice(&hi)) >= 0)
            bad = i;
    }
    buf_release(&hi);
    buf_release(&lo);
    CHECK_MSG(bad == n, "ladder out of order between steps %zu and %zu", bad, bad + 1);
}

/* ---- Malformed input ---- */

static void test_malformed(void)
{
    static const struct {
        const char *hex;
        int err;
    } cases[] = {
        /* unknown type codes */
        {"03", ASPEN_E_MALFORMED},
        {"04 00", ASPEN_E_MALFORMED},
        {"06", ASPEN_E_MALFORMED},
        {"0a", ASPEN_E_MALFORMED},
        {"1e", ASPEN_E_MALFORMED},
        {"22", ASPEN_E_MALFORMED},
        {"25", ASPEN_E_MALFORMED},
        {"28", ASPEN_E_MALFORMED},
        {"31", ASPEN_E_MALFORMED},
        {"32 00 00 00 00 00 00 00 00 00 00 00 00", ASPEN_E_MALFORMED}, /* versionstamp */
        {"ff", ASPEN_E_MALFORMED},
        {"00 ff", ASPEN_E_MALFORMED}, /* escaped null only exists inside nested tuples */
        {"14 03", ASPEN_E_MALFORMED}, /* trailing garbage */
        /* arbitrary-precision integers */
        {"1d 09 01 00 00 00 00 00 00 00 00", ASPEN_E_UNSUPPORTED},
        {"0b f6 fe ff ff ff ff ff ff ff ff", ASPEN_E_UNSUPPORTED},
        {"05 1d 09 01 00 00 00 00 00 00 00 00 00", ASPEN_E_UNSUPPORTED},
        /* non-minimal integers */
        {"15 00", ASPEN_E_MALFORMED},
        {"16 00 ff", ASPEN_E_MALFORMED},
        {"1c 00 ff ff ff ff ff ff ff", ASPEN_E_MALFORMED},
        {"13 ff", ASPEN_E_MALFORMED}, /* -0 */
        {"12 ff 00", ASPEN_E_MALFORMED},
        {"0c ff 00 00 00 00 00 00 00", ASPEN_E_MALFORMED},
        /* missing bytes and terminators */
        {"01", ASPEN_E_TRUNCATED},
        {"01 61", ASPEN_E_TRUNCATED},
        {"01 61 00 ff", ASPEN_E_TRUNCATED},
        {"02 61", ASPEN_E_TRUNCATED},
        {"05", ASPEN_E_TRUNCATED},
        {"05 00 ff", ASPEN_E_TRUNCATED},
        {"05 01 61 00", ASPEN_E_TRUNCATED},
        {"05 05 00", ASPEN_E_TRUNCATED},
        {"15", ASPEN_E_TRUNCATED},
        {"16 01", ASPEN_E_TRUNCATED},
        {"0c 00 00 00 00 00 00 00", ASPEN_E_TRUNCATED},
        {"20 00 00 00", ASPEN_E_TRUNCATED},
        {"21 80 00 00 00 00 00 00", ASPEN_E_TRUNCATED},
        {"30 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e", ASPEN_E_TRUNCATED},
        /* invalid UTF-8 */
        {"02 80 00", ASPEN_E_MALFORMED},             /* lone continuation byte */
        {"02 c0 80 00", ASPEN_E_MALFORMED},          /* overlong U+0000 */
        {"02 c1 bf 00", ASPEN_E_MALFORMED},          /* overlong U+007F */
        {"02 e0 9f bf 00", ASPEN_E_MALFORMED},       /* overlong U+07FF */
        {"02 f0 8f bf bf 00", ASPEN_E_MALFORMED},    /* overlong U+FFFF */
        {"02 ed a0 80 00", ASPEN_E_MALFORMED},       /* surrogate U+D800 */
        {"02 ed bf bf 00", ASPEN_E_MALFORMED},       /* surrogate U+DFFF */
        {"02 f4 90 80 80 00", ASPEN_E_MALFORMED},    /* U+110000 */
        {"02 f5 80 80 80 00", ASPEN_E_MALFORMED},    /* lead byte past U+10FFFF */
        {"02 fe 00", ASPEN_E_MALFORMED},             /* never valid */
        {"02 ff 00", ASPEN_E_MALFORMED},             /* never valid */
        {"02 c3 00", ASPEN_E_MALFORMED},             /* string ends mid-character */
        {"02 c3 00 ff 94 00", ASPEN_E_MALFORMED},    /* escaped NUL is not a continuation */
        {"02 61 e2 82 00", ASPEN_E_MALFORMED},       /* truncated 3-byte character */
        {"05 02 ed a0 80 00 00", ASPEN_E_MALFORMED}, /* inside a nested tuple */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = unpack_hex(cases[i].hex);
        CHECK_MSG(rc == cases[i].err, "unpack(%s) = %s, want %s", cases[i].hex, aspen_err_name(rc),
                  aspen_err_name(cases[i].err));
    }
    /* Boundary characters that are valid. */
    static const char *const valid[] = {
        "02 7f 00",          "02 c2 80 00",       "02 df bf 00",    "02 e0 a0 80 00",
        "02 ed 9f bf 00",    "02 ee 80 80 00",    "02 ef bf bf 00", "02 f0 90 80 80 00",
        "02 f4 8f bf bf 00", "02 00 ff 00 ff 00", "01 00 ff ff 00", "05 00 ff 00 ff 00",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        CHECK_MSG(unpack_hex(valid[i]) == 0, "unpack(%s) failed", valid[i]);
}

/* Every proper prefix of a valid encoding either is itself a valid encoding (it ended
 * on an item boundary, and then re-encodes to exactly itself) or is TRUNCATED. */
static void test_truncated_everywhere(void)
{
    struct gen g;
    rng_seed(&g.r, test_seed() ^ 0x7a1c);
    struct arena ga, da;
    arena_init(&ga, 1 << 16, 64u << 20);
    arena_init(&da, 1 << 12, 64u << 20);
    g.a = &ga;
    struct buf b, re;
    buf_init(&b, MAX_KEY);
    buf_init(&re, MAX_KEY);
    uint64_t truncated = 0, bad_iter = UINT64_MAX;
    size_t bad_len = 0;
    int bad_rc = 0;
    for (uint64_t i = 0; i < test_iters(2000) && bad_iter == UINT64_MAX; i++) {
        arena_reset(&ga);
        buf_clear(&b);
        struct tuple_view t = gen_tuple(&g, 0);
        if (tuple_pack(&b, t.items, t.n))
            abort();
        for (size_t len = 0; len < b.len; len++) {
            arena_reset(&da);
            buf_clear(&re);
            struct tuple_item *items = NULL;
            size_t n = 0;
            int rc = tuple_unpack(slice_make(b.data, len), &da, &items, &n);
            bool fine =
                rc == ASPEN_E_TRUNCATED || (rc == 0 && tuple_pack(&re, items, n) == 0 &&
                                            slice_eq(buf_slice(&re), slice_make(b.data, len)));
            truncated += rc == ASPEN_E_TRUNCATED;
            if (!fine) {
                bad_iter = i;
                bad_len = len;
                bad_rc = rc;
                break;
            }
        }
    }
    buf_release(&re);
    buf_release(&b);
    arena_release(&da);
    arena_release(&ga);
    CHECK_MSG(bad_iter == UINT64_MAX, "iteration %" PRIu64 ": prefix of %zu bytes gave %s",
              bad_iter, bad_len, aspen_err_name(bad_rc));
    CHECK(truncated > 1000);
}

/* Builds a chain of depth nested tuples (the innermost empty) in chain[]. */
static void make_chain(struct tuple_item *chain, unsigned depth)
{
    chain[depth] = tuple_null(); /* unused sentinel slot */
    for (unsigned i = depth; i-- > 0;)
        chain[i] = tuple_nested(i + 1 < depth ? &chain[i + 1] : NULL, i + 1 < depth ? 1 : 0);
}

static void test_depth_limit(void)
{
    struct tuple_item chain[ASPEN_TUPLE_MAX_DEPTH + 2];
    struct buf b;
    buf_init(&b, MAX_KEY);
    make_chain(chain, ASPEN_TUPLE_MAX_DEPTH);
    int ok_rc = tuple_pack(&b, chain, 1);
    size_t ok_len = b.len;
    buf_clear(&b);
    make_chain(chain, ASPEN_TUPLE_MAX_DEPTH + 1);
    int deep_rc = tuple_pack(&b, chain, 1);
    size_t deep_len = b.len;
    buf_release(&b);
    CHECK_OK(ok_rc);
    CHECK_EQ(ok_len, 2 * ASPEN_TUPLE_MAX_DEPTH);
    CHECK_ERR(deep_rc, ASPEN_E_TOO_LARGE);
    CHECK_EQ(deep_len, 0);

    /* The same bound when decoding: 05^d 00^d is d nested empty tuples. */
    uint8_t in[2 * (ASPEN_TUPLE_MAX_DEPTH + 1)];
    struct arena a;
    arena_init(&a, 4096, MAX_KEY);
    struct tuple_item *items = NULL;
    size_t n = 0;
    for (unsigned d = ASPEN_TUPLE_MAX_DEPTH; d <= ASPEN_TUPLE_MAX_DEPTH + 1; d++) {
        memset(in, 0x05, d);
        memset(in + d, 0x00, d);
        int rc = tuple_unpack(slice_make(in, 2 * d), &a, &items, &n);
        if (rc != (d > ASPEN_TUPLE_MAX_DEPTH ? ASPEN_E_TOO_LARGE : 0)) {
            arena_release(&a);
            CHECK_MSG(false, "depth %u: %s", d, aspen_err_name(rc));
        }
    }
    /* Far too deep and unterminated: still the depth error, no deep recursion. */
    uint8_t deep[4096];
    memset(deep, 0x05, sizeof(deep));
    int rc = tuple_unpack(slice_make(deep, sizeof(deep)), &a, &items, &n);
    arena_release(&a);
    CHECK_ERR(rc, ASPEN_E_TOO_LARGE);
}

static void test_pack_rejects_invalid(void)
{
    struct buf b;
    buf_init(&b, MAX_KEY);
    CHECK_OK(buf_append(&b, "k", 1));
    struct tuple_item bad_utf8[2] = {tuple_i64(1), tuple_string(lit("\xed\xa0\x80", 3))};
    struct tuple_item cut_utf8 = tuple_string(lit("a\xc3", 2));
    struct tuple_item neg_zero = {.type = TUPLE_INT, .u.integer = {.negative = true}};
    struct tuple_item bad_type = {.type = (enum tuple_type)3};
    struct tuple_item null_bytes = tuple_bytes(slice_make(NULL, 3));
    struct tuple_item null_nested = tuple_nested(NULL, 2);
    struct tuple_item nested_bad = tuple_nested(&neg_zero, 1);
    int rc[8];
    rc[0] = tuple_pack(&b, bad_utf8, 2);
    rc[1] = tuple_pack(&b, &cut_utf8, 1);
    rc[2] = tuple_pack(&b, &neg_zero, 1);
    rc[3] = tuple_pack(&b, &bad_type, 1);
    rc[4] = tuple_pack(&b, &null_bytes, 1);
    rc[5] = tuple_pack(&b, &null_nested, 1);
    rc[6] = tuple_pack(&b, &nested_bad, 1);
    rc[7] = tuple_pack(&b, NULL, 1);
    size_t len = b.len;
    buf_release(&b);
    for (int i = 0; i < 8; i++)
        CHECK_MSG(rc[i] == ASPEN_E_INVALID, "case %d: %s", i, aspen_err_name(rc[i]));
    CHECK_EQ(len, 1); /* every failure restored the buffer */
}

static void test_pack_respects_buf_max(void)
{
    struct buf b;
    buf_init(&b, 8);
    struct tuple_item items[2] = {tuple_i64(7), tuple_bytes(lit("abcdefgh", 8))};
    int rc = tuple_pack(&b, items, 2);
    size_t len = b.len;
    int rc_fit = tuple_pack(&b, items, 1);
    size_t len_fit = b.len;
    buf_release(&b);
    CHECK_ERR(rc, ASPEN_E_TOO_LARGE);
    CHECK_EQ(len, 0);
    CHECK_OK(rc_fit);
    CHECK_EQ(len_fit, 2);
}

static void test_unpack_respects_arena_limit(void)
{
    uint8_t in[64];
    size_t len = unhex("01 61 62 63 64 65 66 67 68 00 15 01 15 02", in, sizeof(in));
    struct arena a;
    arena_init(&a, 64, 16); /* room for less than the three items */
    struct tuple_item *items = NULL;
    size_t n = 0;
    int rc = tuple_unpack(slice_make(in, len), &a, &items, &n);
    arena_release(&a);
    CHECK_ERR(rc, ASPEN_E_TOO_LARGE);
    CHECK(items == NULL);
}

/* Decoded strings are unescaped copies in the arena, not views of the input. */
static void test_unpack_copies_strings(void)
{
    uint8_t in[32];
    size_t len = unhex("01 61 00 ff 62 00 05 02 63 00 00 ff 00", in, sizeof(in));
    struct arena a;
    arena_init(&a, 4096, MAX_KEY);
    struct tuple_item *items = NULL;
    size_t n = 0;
    int rc = tuple_unpack(slice_make(in, len), &a, &items, &n);
    memset(in, 0xee, sizeof(in));
    bool ok = rc == 0 && n == 2 && items[0].type == TUPLE_BYTES &&
              slice_eq(items[0].u.bytes, lit("a\0b", 3)) && items[1].type == TUPLE_NESTED &&
              items[1].u.nested.n == 2 && items[1].u.nested.items[0].type == TUPLE_STRING &&
              slice_eq(items[1].u.nested.items[0].u.bytes, lit("c", 1)) &&
              items[1].u.nested.items[1].type == TUPLE_NULL;
    arena_release(&a);
    CHECK_OK(rc);
    CHECK(ok);
}

/* ---- Allocation failure ---- */

static void build_big_tuple(struct tuple_item *items, struct tuple_item *inner, uint8_t *blob,
                            size_t blob_len)
{
    for (size_t i = 0; i < blob_len; i++)
        blob[i] = (uint8_t)(i % 7 == 0 ? 0 : i);
    inner[0] = tuple_bytes(slice_make(blob, 300));
    inner[1] = tuple_null();
    inner[2] = tuple_string(lit("nested", 6));
    items[0] = tuple_bytes(slice_make(blob, blob_len));
    items[1] = tuple_nested(inner, 3);
    items[2] = tuple_i64(-123456789);
    items[3] = tuple_f64(2.5);
}

static void test_pack_alloc_failure(void)
{
    static uint8_t blob[3000];
    struct tuple_item items[4], inner[3];
    build_big_tuple(items, inner, blob, sizeof(blob));
    for (int sticky = 1; sticky >= 0; sticky--) {
        unsigned failures = 0;
        for (uint64_t k = 1; k < 100; k++) {
            struct buf b;
            buf_init(&b, MAX_KEY);
            mem_fail_at(k, sticky);
            int rc = tuple_pack(&b, items, 4);
            mem_fail_at(0, 0);
            size_t len = b.len;
            buf_release(&b);
            if (rc == 0)
                break;
            CHECK_ERR(rc, ASPEN_E_NOMEM);
            CHECK_EQ(len, 0);
            failures++;
        }
        CHECK(failures >= 3); /* the buffer grew several times */
    }
}

static void test_unpack_alloc_failure(void)
{
    static uint8_t blob[3000];
    struct tuple_item items[4], inner[3];
    build_big_tuple(items, inner, blob, sizeof(blob));
    struct buf b;
    buf_init(&b, MAX_KEY);
    CHECK_OK(tuple_pack(&b, items, 4));
    unsigned failures = 0;
    bool done = false;
    for (uint64_t k = 1; k < 100 && !done; k++) {
        struct arena a;
        arena_init(&a, 128, MAX_KEY); /* small chunks: many allocations */
        struct tuple_item *got = NULL;
        size_t n = 99;
        mem_fail_at(k, 1);
        int rc = tuple_unpack(buf_slice(&b), &a, &got, &n);
        mem_fail_at(0, 0);
        bool same = rc == 0 && tuple_cmp(got, n, items, 4) == 0;
        arena_release(&a);
        if (rc == 0) {
            done = true;
            CHECK(same);
        } else {
            CHECK_MSG(rc == ASPEN_E_NOMEM, "k=%" PRIu64 ": %s", k, aspen_err_name(rc));
            CHECK(got == NULL && n == 99); /* outputs untouched */
            failures++;
        }
    }
    buf_release(&b);
    CHECK(done);
    CHECK(failures >= 3);
}

static const struct test_case tests[] = {
    TEST(test_golden_scalars),
    TEST(test_golden_nested),
    TEST(test_int_accessors),
    TEST(test_round_trip_random),
    TEST(test_order_matches_encoding),
    TEST(test_order_ladder),
    TEST(test_malformed),
    TEST(test_truncated_everywhere),
    TEST(test_depth_limit),
    TEST(test_pack_rejects_invalid),
    TEST(test_pack_respects_buf_max),
    TEST(test_unpack_respects_arena_limit),
    TEST(test_unpack_copies_strings),
    TEST(test_pack_alloc_failure),
    TEST(test_unpack_alloc_failure),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("tuple", tests);
}
