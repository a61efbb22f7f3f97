/*
 * Tuple encoding, decoding and ordering (base/tuple.h).
 *
 * Packing writes each item as a type code followed by a payload whose bytes sort like
 * the value: strings escape 0x00 as 0x00 0xFF and end with 0x00 (so a prefix sorts
 * first), integers store a minimal big-endian magnitude with the length in the type
 * code (negatives as the one's complement, so larger magnitudes sort lower), floats
 * flip bits so that IEEE values sort as unsigned integers.
 *
 * Unpacking walks the input with a bounds-checked reader. Because items are stored in
 * one arena array per tuple level, each level is read twice: a first pass validates
 * and counts the items, then the array is allocated and a second pass fills it. Nested
 * levels are therefore re-validated by each enclosing level's first pass; with
 * ASPEN_TUPLE_MAX_DEPTH levels that bounds the work at (ASPEN_TUPLE_MAX_DEPTH + 2) reads of each
 * byte, a fair price for needing no growable arrays and no malloc.
 *
 * Comparison is deliberately written from the values, independently of the encoding,
 * so the property tests can check one against the other.
 */
#include "base/tuple.h"

#include "base/assert.h"

#include <math.h>

#define CODE_NULL     0x00
#define CODE_BYTES    0x01
#define CODE_STRING   0x02
#define CODE_NESTED   0x05
#define CODE_NEG_BIG  0x0b
#define CODE_INT_MIN  0x0c
#define CODE_INT_ZERO 0x14
#define CODE_INT_MAX  0x1c
#define CODE_POS_BIG  0x1d
#define CODE_F32      0x20
#define CODE_F64      0x21
#define CODE_FALSE    0x26
#define CODE_TRUE     0x27
#define CODE_UUID     0x30
#define ESCAPE_BYTE   0xff /* follows 0x00 inside strings and nested tuples */
#define F32_SIGN      UINT32_C(0x80000000)
#define F64_SIGN      UINT64_C(0x8000000000000000)
#define F32_MANTISSA  UINT32_C(0x007fffff)
#define F64_MANTISSA  UINT64_C(0x000fffffffffffff)

/* ---- Integers ---- */

struct tuple_int tuple_int_from_i64(int64_t v)
{
    /* Negate in unsigned arithmetic: -INT64_MIN does not fit int64_t. */
    if (v < 0)
        return (struct tuple_int){.negative = true, .magnitude = 0 - (uint64_t)v};
    return (struct tuple_int){.negative = false, .magnitude = (uint64_t)v};
}

struct tuple_int tuple_int_from_u64(uint64_t v)
{
    return (struct tuple_int){.negative = false, .magnitude = v};
}

int tuple_int_to_i64(struct tuple_int v, int64_t *out)
{
    if (v.negative && v.magnitude != 0) {
        if (v.magnitude > (uint64_t)INT64_MAX + 1)
            return ASPEN_E_OVERFLOW;
        /* magnitude - 1 fits int64_t, so this avoids negating INT64_MIN. */
        *out = -(int64_t)(v.magnitude - 1) - 1;
        return 0;
    }
    if (v.magnitude > (uint64_t)INT64_MAX)
        return ASPEN_E_OVERFLOW;
    *out = (int64_t)v.magnitude;
    return 0;
}

int tuple_int_to_u64(struct tuple_int v, uint64_t *out)
{
    if (v.negative && v.magnitude != 0)
        return ASPEN_E_OVERFLOW;
    *out = v.magnitude;
    return 0;
}

/* ---- Constructors ---- */

struct tuple_item tuple_null(void)
{
    return (struct tuple_item){.type = TUPLE_NULL};
}

struct tuple_item tuple_bytes(struct slice s)
{
    return (struct tuple_item){.type = TUPLE_BYTES, .u.bytes = s};
}

struct tuple_item tuple_string(struct slice s)
{
    return (struct tuple_item){.type = TUPLE_STRING, .u.bytes = s};
}

struct tuple_item tuple_i64(int64_t v)
{
    return (struct tuple_item){.type = TUPLE_INT, .u.integer = tuple_int_from_i64(v)};
}

struct tuple_item tuple_u64(uint64_t v)
{
    return (struct tuple_item){.type = TUPLE_INT, .u.integer = tuple_int_from_u64(v)};
}

struct tuple_item tuple_integer(bool negative, uint64_t magnitude)
{
    struct tuple_int v = {.negative = negative && magnitude != 0, .magnitude = magnitude};
    return (struct tuple_item){.type = TUPLE_INT, .u.integer = v};
}

struct tuple_item tuple_f32(float v)
{
    return (struct tuple_item){.type = TUPLE_F32, .u.f32 = v};
}

struct tuple_item tuple_f64(double v)
{
    return (struct tuple_item){.type = TUPLE_F64, .u.f64 = v};
}

struct tuple_item tuple_bool(bool v)
{
    return (struct tuple_item){.type = TUPLE_BOOL, .u.boolean = v};
}

struct tuple_item tuple_uuid(const uint8_t uuid[16])
{
    struct tuple_item it = {.type = TUPLE_UUID};
    memcpy(it.u.uuid, uuid, 16);
    return it;
}

struct tuple_item tuple_nested(const struct tuple_item *items, size_t n)
{
    return (struct tuple_item){.type = TUPLE_NESTED, .u.nested = {.items = items, .n = n}};
}

/* ---- UTF-8 validation ---- */

/* Incremental validator, fed one byte at a time so the decoder can check unescaped
 * bytes without first copying them. Accepts exactly well-formed UTF-8 (RFC 3629):
 * no overlong forms, no surrogates (U+D800..U+DFFF), nothing above U+10FFFF. The
 * ranges are those of the Unicode standard's table of well-formed byte sequences. */
struct utf8_state {
    unsigned need; /* continuation bytes still expected */
    uint8_t lo;    /* allowed range of the next continuation byte */
    uint8_t hi;
};

static bool utf8_step(struct utf8_state *u, uint8_t b)
{
    if (u->need > 0) {
        if (b < u->lo || b > u->hi)
            return false;
        u->need--;
        u->lo = 0x80;
        u->hi = 0xbf;
        return true;
    }
    u->lo = 0x80;
    u->hi = 0xbf;
    if (b < 0x80)
        return true;
    if (b >= 0xc2 && b <= 0xdf) {
        u->need = 1;
    } else if (b == 0xe0) {
        u->need = 2;
        u->lo = 0xa0; /* below: overlong */
    } else if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) {
        u->need = 2;
    } else if (b == 0xed) {
        u->need = 2;
        u->hi = 0x9f; /* above: surrogates */
    } else if (b == 0xf0) {
        u->need = 3;
        u->lo = 0x90; /* below: overlong */
    } else if (b >= 0xf1 && b <= 0xf3) {
        u->need = 3;
    } else if (b == 0xf4) {
        u->need = 3;
        u->hi = 0x8f; /* above: beyond U+10FFFF */
    } else {
        return false; /* 0x80..0xc1 as a lead byte, or 0xf5..0xff */
    }
    return true;
}

static bool utf8_valid(struct slice s)
{
    struct utf8_state u = {0};
    for (size_t i = 0; i < s.len; i++)
        if (!utf8_step(&u, s.ptr[i]))
            return false;
    return u.need == 0;
}

/* ---- Packing ---- */

/* Appends s with every 0x00 escaped, then the terminator. Copies the runs between
 * zeros in one append each. */
static int pack_escaped(struct buf *out, struct slice s)
{
    size_t start = 0;
    static const uint8_t escaped_zero[2] = {0x00, ESCAPE_BYTE};
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] != 0x00)
            continue;
        int rc = buf_append(out, s.ptr + start, i - start);
        if (rc == 0)
            rc = buf_append(out, escaped_zero, sizeof(escaped_zero));
        if (rc)
            return rc;
        start = i + 1;
    }
    int rc = buf_append(out, s.len ? s.ptr + start : NULL, s.len - start);
    if (rc)
        return rc;
    return buf_append_u8(out, 0x00);
}

static int pack_int(struct buf *out, struct tuple_int v)
{
    if (v.magnitude == 0)
        return v.negative ? ASPEN_E_INVALID : buf_append_u8(out, CODE_INT_ZERO);
    unsigned n = 8;
    while (n > 1 && (v.magnitude >> (8 * (n - 1))) == 0)
        n--;
    uint8_t full[8];
    /* A negative value stores the one's complement of its magnitude, so that a larger
     * magnitude (a smaller number) of the same length sorts lower; a longer magnitude
     * gets a lower type code. */
    be64_store(full, v.negative ? ~v.magnitude : v.magnitude);
    uint8_t enc[9];
    enc[0] = (uint8_t)(v.negative ? CODE_INT_ZERO - n : CODE_INT_ZERO + n);
    memcpy(enc + 1, full + 8 - n, n);
    return buf_append(out, enc, 1 + n);
}

/* IEEE values sort as unsigned integers once positives have their sign bit set and
 * negatives have every bit flipped (larger magnitudes then sort lower). */
static uint32_t f32_key(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return (bits & F32_SIGN) ? ~bits : bits ^ F32_SIGN;
}

static float f32_from_key(uint32_t key)
{
    uint32_t bits = (key & F32_SIGN) ? key ^ F32_SIGN : ~key;
    float v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static uint64_t f64_key(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return (bits & F64_SIGN) ? ~bits : bits ^ F64_SIGN;
}

static double f64_from_key(uint64_t key)
{
    uint64_t bits = (key & F64_SIGN) ? key ^ F64_SIGN : ~key;
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static int pack_items(struct buf *out, const struct tuple_item *items, size_t n, unsigned depth);

static int pack_item(struct buf *out, const struct tuple_item *it, unsigned depth)
{
    uint8_t enc[17];
    switch (it->type) {
    case TUPLE_NULL:
        /* Inside a nested tuple a bare 0x00 would read as the terminator. */
        if (depth > 0) {
            enc[0] = CODE_NULL;
            enc[1] = ESCAPE_BYTE;
            return buf_append(out, enc, 2);
        }
        return buf_append_u8(out, CODE_NULL);
    case TUPLE_BYTES:
    case TUPLE_STRING: {
        struct slice s = it->u.bytes;
        if (s.ptr == NULL && s.len != 0)
            return ASPEN_E_INVALID;
        if (it->type == TUPLE_STRING && !utf8_valid(s))
            return ASPEN_E_INVALID;
        int rc = buf_append_u8(out, it->type == TUPLE_BYTES ? CODE_BYTES : CODE_STRING);
        return rc ? rc : pack_escaped(out, s);
    }
    case TUPLE_NESTED: {
        const struct tuple_view *v = &it->u.nested;
        if (depth + 1 > ASPEN_TUPLE_MAX_DEPTH)
            return ASPEN_E_TOO_LARGE;
        if (v->items == NULL && v->n != 0)
            return ASPEN_E_INVALID;
        int rc = buf_append_u8(out, CODE_NESTED);
        if (rc == 0)
            rc = pack_items(out, v->items, v->n, depth + 1);
        return rc ? rc : buf_append_u8(out, 0x00);
    }
    case TUPLE_INT:
        return pack_int(out, it->u.integer);
    case TUPLE_F32:
        enc[0] = CODE_F32;
        be32_store(enc + 1, f32_key(it->u.f32));
        return buf_append(out, enc, 5);
    case TUPLE_F64:
        enc[0] = CODE_F64;
        be64_store(enc + 1, f64_key(it->u.f64));
        return buf_append(out, enc, 9);
    case TUPLE_BOOL:
        return buf_append_u8(out, it->u.boolean ? CODE_TRUE : CODE_FALSE);
    case TUPLE_UUID:
        enc[0] = CODE_UUID;
        memcpy(enc + 1, it->u.uuid, 16);
        return buf_append(out, enc, 17);
    }
    return ASPEN_E_INVALID; /* not a tuple_type: caller passed garbage */
}

/* depth: nesting level of the tuple these items belong to (0 for the top level). */
static int pack_items(struct buf *out, const struct tuple_item *items, size_t n, unsigned depth)
{
    for (size_t i = 0; i < n; i++) {
        int rc = pack_item(out, &items[i], depth);
        if (rc)
            return rc;
    }
    return 0;
}

int tuple_pack(struct buf *out, const struct tuple_item *items, size_t n)
{
    if (items == NULL && n != 0)
        return ASPEN_E_INVALID;
    size_t old_len = out->len;
    int rc = pack_items(out, items, n, 0);
    if (rc)
        out->len = old_len;
    return rc;
}

/* ---- Unpacking ---- */

/* Allocates from the arena, telling the arena's own limit (TOO_LARGE: the input asks
 * for more than the caller allowed) apart from memory running out (NOMEM). */
static int arena_get(struct arena *a, size_t size, size_t align, void **out)
{
    if (size == 0) {
        *out = NULL;
        return 0;
    }
    void *p = arena_alloc(a, size, align);
    if (p == NULL) {
        bool over = a->used_bytes > a->limit_bytes || size > a->limit_bytes - a->used_bytes;
        return over ? ASPEN_E_TOO_LARGE : ASPEN_E_NOMEM;
    }
    *out = p;
    return 0;
}

/* Reads an escaped string up to and including its terminator. With dest NULL it only
 * validates and measures; otherwise dest must hold the length a measuring call
 * returned for the same input. */
static int read_escaped(struct reader *r, bool utf8, uint8_t *dest, size_t *len_out)
{
    struct utf8_state u = {0};
    size_t len = 0;
    while (r->left > 0) { /* every iteration consumes at least one byte */
        uint8_t b = 0;
        (void)reader_u8(r, &b);
        if (b == 0x00) {
            if (r->left == 0 || r->ptr[0] != ESCAPE_BYTE) {
                if (utf8 && u.need != 0)
                    return ASPEN_E_MALFORMED; /* string ends inside a character */
                *len_out = len;
                return 0;
            }
            (void)reader_u8(r, &b); /* the escape byte */
            b = 0x00;
        }
        if (utf8 && !utf8_step(&u, b))
            return ASPEN_E_MALFORMED;
        if (dest)
            dest[len] = b;
        len++;
    }
    return ASPEN_E_TRUNCATED;
}

static int read_string(struct reader *r, struct arena *a, bool utf8, struct slice *out)
{
    struct reader start = *r;
    size_t len = 0;
    int rc = read_escaped(r, utf8, NULL, &len);
    if (rc || out == NULL)
        return rc;
    uint8_t *dest = NULL;
    rc = arena_get(a, len, 1, (void **)&dest);
    if (rc)
        return rc;
    *r = start;
    rc = read_escaped(r, utf8, dest, &len);
    ASPEN_ASSERT(rc == 0); /* same bytes as the measuring pass */
    *out = slice_make(dest, len);
    return 0;
}

static int read_int(struct reader *r, uint8_t code, struct tuple_int *out)
{
    if (code == CODE_INT_ZERO) {
        *out = (struct tuple_int){.negative = false, .magnitude = 0};
        return 0;
    }
    bool negative = code < CODE_INT_ZERO;
    unsigned n = negative ? (unsigned)(CODE_INT_ZERO - code) : (unsigned)(code - CODE_INT_ZERO);
    struct slice b;
    int rc = reader_bytes(r, n, &b);
    if (rc)
        return rc;
    /* The magnitude's leading byte is non-zero (0xff once complemented) in the minimal
     * encoding; anything else has a shorter twin and would break canonical form. */
    if (b.ptr[0] == (negative ? 0xff : 0x00))
        return ASPEN_E_MALFORMED;
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | b.ptr[i];
    if (negative)
        v = ~v & (n == 8 ? UINT64_MAX : (UINT64_C(1) << (8 * n)) - 1);
    *out = (struct tuple_int){.negative = negative, .magnitude = v};
    return 0;
}

static int read_seq(struct reader *r, struct arena *a, unsigned depth, struct tuple_item *items,
                    size_t *n_out);

/* Reads the tuple's items into a fresh arena array (out != NULL), or just validates
 * them (out == NULL). depth is the nesting level of the tuple being read. */
static int read_tuple(struct reader *r, struct arena *a, unsigned depth, struct tuple_view *out)
{
    struct reader start = *r;
    size_t n = 0;
    int rc = read_seq(r, a, depth, NULL, &n);
    if (rc || out == NULL)
        return rc;
    if (n > SIZE_MAX / sizeof(struct tuple_item))
        return ASPEN_E_TOO_LARGE;
    struct tuple_item *items = NULL;
    rc = arena_get(a, n * sizeof(struct tuple_item), _Alignof(struct tuple_item), (void **)&items);
    if (rc)
        return rc;
    *r = start;
    size_t filled = 0;
    rc = read_seq(r, a, depth, items, &filled);
    if (rc)
        return rc; /* only allocation can fail here: the input was validated above */
    ASPEN_ASSERT(filled == n);
    *out = (struct tuple_view){.items = items, .n = n};
    return 0;
}

/* Reads one item (never a null inside a nested tuple: read_seq handles those). */
static int read_item(struct reader *r, struct arena *a, unsigned depth, struct tuple_item *out)
{
    uint8_t code = 0;
    int rc = reader_u8(r, &code);
    if (rc)
        return rc;
    struct tuple_item it = {.type = TUPLE_NULL};
    struct slice b;
    switch (code) {
    case CODE_NULL:
        break;
    case CODE_BYTES:
    case CODE_STRING:
        it.type = code == CODE_BYTES ? TUPLE_BYTES : TUPLE_STRING;
        rc = read_string(r, a, code == CODE_STRING, out ? &it.u.bytes : NULL);
        break;
    case CODE_NESTED:
        if (depth + 1 > ASPEN_TUPLE_MAX_DEPTH)
            return ASPEN_E_TOO_LARGE;
        it.type = TUPLE_NESTED;
        rc = read_tuple(r, a, depth + 1, out ? &it.u.nested : NULL);
        break;
    case CODE_NEG_BIG:
    case CODE_POS_BIG:
        return ASPEN_E_UNSUPPORTED;
    case CODE_F32:
        it.type = TUPLE_F32;
        rc = reader_bytes(r, 4, &b);
        if (rc == 0)
            it.u.f32 = f32_from_key(be32_load(b.ptr));
        break;
    case CODE_F64:
        it.type = TUPLE_F64;
        rc = reader_bytes(r, 8, &b);
        if (rc == 0)
            it.u.f64 = f64_from_key(be64_load(b.ptr));
        break;
    case CODE_FALSE:
    case CODE_TRUE:
        it.type = TUPLE_BOOL;
        it.u.boolean = code == CODE_TRUE;
        break;
    case CODE_UUID:
        it.type = TUPLE_UUID;
        rc = reader_bytes(r, 16, &b);
        if (rc == 0)
            memcpy(it.u.uuid, b.ptr, 16);
        break;
    default:
        if (code < CODE_INT_MIN || code > CODE_INT_MAX)
            return ASPEN_E_MALFORMED;
        it.type = TUPLE_INT;
        rc = read_int(r, code, &it.u.integer);
        break;
    }
    if (rc == 0 && out)
        *out = it;
    return rc;
}

/* Reads the items of a tuple at nesting level depth: to the end of the input at level
 * 0, to the unescaped 0x00 terminator (consumed) below it. items NULL: validate and
 * count only; otherwise items has room for the count a validating call returned. */
static int read_seq(struct reader *r, struct arena *a, unsigned depth, struct tuple_item *items,
                    size_t *n_out)
{
    size_t n = 0;
    while (r->left > 0) { /* every iteration consumes at least one byte */
        struct tuple_item *slot = items ? &items[n] : NULL;
        if (depth > 0 && r->ptr[0] == 0x00) {
            if (r->left < 2 || r->ptr[1] != ESCAPE_BYTE) {
                r->ptr++; /* the terminator */
                r->left--;
                *n_out = n;
                return 0;
            }
            r->ptr += 2; /* 0x00 0xff: a null inside a nested tuple */
            r->left -= 2;
            if (slot)
                *slot = tuple_null();
        } else {
            int rc = read_item(r, a, depth, slot);
            if (rc)
                return rc;
        }
        n++;
    }
    if (depth > 0)
        return ASPEN_E_TRUNCATED; /* nested tuple without its terminator */
    *n_out = n;
    return 0;
}

int tuple_unpack(struct slice in, struct arena *a, struct tuple_item **items_out, size_t *n_out)
{
    if (in.ptr == NULL && in.len != 0)
        return ASPEN_E_INVALID;
    struct reader r = reader_make(in);
    struct tuple_view v = {0};
    int rc = read_tuple(&r, a, 0, &v);
    if (rc)
        return rc;
    ASPEN_ASSERT(r.left == 0);
    *items_out = (struct tuple_item *)v.items; /* ours: allocated from the arena above */
    *n_out = v.n;
    return 0;
}

/* ---- Ordering ---- */

static int cmp_u64(uint64_t a, uint64_t b)
{
    return (a > b) - (a < b);
}

static int int_cmp(struct tuple_int a, struct tuple_int b)
{
    bool a_neg = a.negative && a.magnitude != 0;
    bool b_neg = b.negative && b.magnitude != 0;
    if (a_neg != b_neg)
        return a_neg ? -1 : 1;
    int c = cmp_u64(a.magnitude, b.magnitude);
    return a_neg ? -c : c;
}

/* Total order on doubles from their values: the sign splits the line (-0.0 < +0.0);
 * within a sign, ordinary values compare numerically, NaN lies beyond infinity, and
 * NaNs compare by payload, larger payloads further from zero. */
static int f64_cmp(double a, double b)
{
    bool a_neg = signbit(a) != 0, b_neg = signbit(b) != 0;
    if (a_neg != b_neg)
        return a_neg ? -1 : 1;
    int c;
    if (isnan(a) && isnan(b)) {
        uint64_t pa, pb;
        memcpy(&pa, &a, sizeof(pa));
        memcpy(&pb, &b, sizeof(pb));
        c = cmp_u64(pa & F64_MANTISSA, pb & F64_MANTISSA);
        return a_neg ? -c : c;
    }
    if (isnan(a))
        return a_neg ? -1 : 1;
    if (isnan(b))
        return b_neg ? 1 : -1;
    return (a > b) - (a < b);
}

/* Not (double)a vs (double)b: widening quiets a signalling NaN on x86, which would make
 * two distinct float NaNs compare equal. */
static int f32_cmp(float a, float b)
{
    bool a_neg = signbit(a) != 0, b_neg = signbit(b) != 0;
    if (a_neg != b_neg)
        return a_neg ? -1 : 1;
    int c;
    if (isnan(a) && isnan(b)) {
        uint32_t pa, pb;
        memcpy(&pa, &a, sizeof(pa));
        memcpy(&pb, &b, sizeof(pb));
        c = cmp_u64(pa & F32_MANTISSA, pb & F32_MANTISSA);
        return a_neg ? -c : c;
    }
    if (isnan(a))
        return a_neg ? -1 : 1;
    if (isnan(b))
        return b_neg ? 1 : -1;
    return (a > b) - (a < b);
}

static int seq_cmp(const struct tuple_item *a, size_t na, const struct tuple_item *b, size_t nb,
                   unsigned depth);

static int item_cmp(const struct tuple_item *a, const struct tuple_item *b, unsigned depth)
{
    if (a->type != b->type)
        return a->type < b->type ? -1 : 1; /* enum values are the type codes */
    switch (a->type) {
    case TUPLE_NULL:
        return 0;
    case TUPLE_BYTES:
    case TUPLE_STRING:
        return slice_cmp(a->u.bytes, b->u.bytes);
    case TUPLE_NESTED:
        ASPEN_ASSERT(depth < ASPEN_TUPLE_MAX_DEPTH);
        return seq_cmp(a->u.nested.items, a->u.nested.n, b->u.nested.items, b->u.nested.n,
                       depth + 1);
    case TUPLE_INT:
        return int_cmp(a->u.integer, b->u.integer);
    case TUPLE_F32:
        return f32_cmp(a->u.f32, b->u.f32);
    case TUPLE_F64:
        return f64_cmp(a->u.f64, b->u.f64);
    case TUPLE_BOOL:
        return (int)a->u.boolean - (int)b->u.boolean;
    case TUPLE_UUID:
        return memcmp(a->u.uuid, b->u.uuid, 16);
    }
    ASPEN_UNREACHABLE();
}

static int seq_cmp(const struct tuple_item *a, size_t na, const struct tuple_item *b, size_t nb,
                   unsigned depth)
{
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        int c = item_cmp(&a[i], &b[i], depth);
        if (c)
            return c;
    }
    return (na > nb) - (na < nb);
}

int tuple_item_cmp(const struct tuple_item *a, const struct tuple_item *b)
{
    return item_cmp(a, b, 0);
}

int tuple_cmp(const struct tuple_item *a, size_t na, const struct tuple_item *b, size_t nb)
{
    return seq_cmp(a, na, b, nb, 0);
}
