/*
 * Tuple layer: typed values packed into byte strings whose bytewise order is the values'
 * order (FoundationDB's tuple encoding).
 *
 * Keys in Aspen are raw bytes compared with memcmp. Applications want keys made of
 * integers, strings, UUIDs and so on, ordered naturally (-5 before 3, "ab" before "b").
 * The tuple layer bridges the two: tuple_pack turns a sequence of typed items into bytes
 * so that comparing packed keys bytewise gives the same answer as comparing the tuples
 * item by item (tuple_cmp). We follow FoundationDB's published type codes and layout so
 * that keys stay readable by FDB-compatible tooling; the code is our own.
 *
 * Supported types and their codes (order across types is by code):
 *   0x00 null, 0x01 byte string, 0x02 UTF-8 string, 0x05 nested tuple,
 *   0x0c..0x1c integers of up to 8 magnitude bytes (0x14 is zero),
 *   0x20 float, 0x21 double, 0x26 false, 0x27 true, 0x30 UUID (16 bytes).
 * Arbitrary-precision integers (0x0b, 0x1d) decode to ASPEN_E_UNSUPPORTED; every other
 * code is ASPEN_E_MALFORMED.
 *
 * The encoding is canonical: tuple_unpack accepts exactly the byte strings tuple_pack
 * can produce (minimal-length integers, valid UTF-8), so pack(unpack(x)) == x whenever
 * unpack succeeds, and two equal tuples always have the same key.
 *
 * Error convention for decoding: input that ends inside an item (missing bytes of a
 * fixed-size item, a string or nested tuple without its terminator) is
 * ASPEN_E_TRUNCATED; input with bytes that no encoder would write (unknown type code,
 * non-minimal integer, invalid UTF-8, trailing garbage after a nested terminator that
 * is not a valid item) is ASPEN_E_MALFORMED.
 */
#ifndef ASPEN_BASE_TUPLE_H
#define ASPEN_BASE_TUPLE_H

#include "base/buf.h"
#include "base/constants.h"
#include "base/mem.h"
#include "base/slice.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The type of an item. The values are the FDB type codes (integers use the code of
 * zero), so ordering types by this value orders them as their encodings do. */
enum tuple_type {
    TUPLE_NULL = 0x00,
    TUPLE_BYTES = 0x01,
    TUPLE_STRING = 0x02,
    TUPLE_NESTED = 0x05,
    TUPLE_INT = 0x14,
    TUPLE_F32 = 0x20,
    TUPLE_F64 = 0x21,
    TUPLE_BOOL = 0x26,
    TUPLE_UUID = 0x30,
};

/* An integer in -(2^64-1) .. 2^64-1: a sign and a magnitude, because neither int64_t
 * nor uint64_t covers the range the encoding supports. Zero is {false, 0}; {true, 0}
 * is not a valid value (tuple_pack rejects it). */
struct tuple_int {
    bool negative;
    uint64_t magnitude;
};

struct tuple_item;

/* A borrowed sequence of items: a whole tuple or a nested one. items may be NULL when
 * n == 0. */
struct tuple_view {
    const struct tuple_item *items;
    size_t n;
};

struct tuple_item {
    enum tuple_type type;
    union {
        struct slice bytes; /* TUPLE_BYTES, TUPLE_STRING (UTF-8); borrowed */
        struct tuple_int integer;
        float f32;
        double f64;
        bool boolean;
        uint8_t uuid[16];
        struct tuple_view nested; /* borrowed */
    } u;
};

/* ---- Integers ---- */

struct tuple_int tuple_int_from_i64(int64_t v);
struct tuple_int tuple_int_from_u64(uint64_t v);

/* Store v in *out, or return ASPEN_E_OVERFLOW (leaving *out alone) when it does not
 * fit the target type. */
int tuple_int_to_i64(struct tuple_int v, int64_t *out);
int tuple_int_to_u64(struct tuple_int v, uint64_t *out);

/* ---- Item constructors (pure; nothing is copied: slices and views stay borrowed) ---- */

struct tuple_item tuple_null(void);
struct tuple_item tuple_bytes(struct slice s);
/* s must be valid UTF-8 for tuple_pack to accept it. */
struct tuple_item tuple_string(struct slice s);
struct tuple_item tuple_i64(int64_t v);
struct tuple_item tuple_u64(uint64_t v);
/* -magnitude when negative, else +magnitude; a negative zero becomes plain zero. */
struct tuple_item tuple_integer(bool negative, uint64_t magnitude);
struct tuple_item tuple_f32(float v);
struct tuple_item tuple_f64(double v);
struct tuple_item tuple_bool(bool v);
struct tuple_item tuple_uuid(const uint8_t uuid[16]);
struct tuple_item tuple_nested(const struct tuple_item *items, size_t n);

/* ---- Encoding ---- */

/* Appends the encoding of the n items to out. items may be NULL when n == 0.
 * Errors: ASPEN_E_INVALID (unknown type, invalid UTF-8 in a string, negative zero, a
 * NULL pointer with a non-zero length), ASPEN_E_TOO_LARGE (nesting deeper than
 * ASPEN_TUPLE_MAX_DEPTH, or out would exceed its maximum), ASPEN_E_NOMEM. On error out is
 * restored to its previous length. */
int tuple_pack(struct buf *out, const struct tuple_item *items, size_t n);

/* Decodes all of in (which must hold exactly one packed tuple: trailing bytes that do
 * not form items are an error). On success *items_out points to *n_out items (NULL when
 * n is 0); the items, their strings (unescaped) and nested arrays all live in arena a,
 * so they stay valid until a is reset or released and never borrow from in. The arena's
 * limit bounds how much a hostile input can make us allocate.
 * Errors: ASPEN_E_TRUNCATED, ASPEN_E_MALFORMED, ASPEN_E_UNSUPPORTED (big integers),
 * ASPEN_E_TOO_LARGE (nesting deeper than ASPEN_TUPLE_MAX_DEPTH, or the arena's limit would
 * be exceeded), ASPEN_E_NOMEM. On error the outputs are untouched; anything already
 * allocated from a stays there until the caller resets it. */
int tuple_unpack(struct slice in, struct arena *a, struct tuple_item **items_out, size_t *n_out);

/* ---- Ordering ---- */

/* Compares two items by value: by type first (in type-code order; false < true), then
 * integers numerically, floats and doubles by the total order
 * -NaN < -inf < ... < -0.0 < +0.0 < ... < +inf < +NaN (NaNs with different payloads
 * are different values), byte and UTF-8 strings bytewise with a prefix first, UUIDs
 * bytewise, nested tuples item by item with a prefix first. This is computed from the
 * values, not from their encodings; for valid items it agrees with comparing
 * tuple_pack outputs bytewise. Returns <0, 0 or >0.
 * Precondition: nesting is at most ASPEN_TUPLE_MAX_DEPTH (asserted). */
int tuple_item_cmp(const struct tuple_item *a, const struct tuple_item *b);

/* Compares two tuples item by item; a proper prefix sorts first. */
int tuple_cmp(const struct tuple_item *a, size_t na, const struct tuple_item *b, size_t nb);

#endif
