/*
 * gRPC's pure pieces (src/rpc/grpc_frame.h): status names, the length-prefixed message
 * parser, grpc-timeout and the grpc-message percent-encoding.
 *
 * The parser is fed the same streams whole, byte by byte, split at every position and in
 * random chunks: the messages and the verdict must not depend on the cuts. Each refusal
 * (compressed, bad flag, over the limit by one byte, out of memory) is checked with what
 * it leaves buffered; a length at the limit must pass.
 */
#include "test.h"

#include "base/assert.h"
#include "base/buf.h"
#include "base/mem.h"
#include "base/rand.h"
#include "rpc/grpc_frame.h"

#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------
 * Status codes
 * ------------------------------------------------------------------------------------- */

static void test_status_names(void)
{
    CHECK_STR_EQ(grpc_status_name(GRPC_STATUS_OK), "OK");
    CHECK_STR_EQ(grpc_status_name(GRPC_STATUS_CANCELLED), "CANCELLED");
    CHECK_STR_EQ(grpc_status_name(GRPC_STATUS_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    CHECK_STR_EQ(grpc_status_name(GRPC_STATUS_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    CHECK_STR_EQ(grpc_status_name(GRPC_STATUS_UNIMPLEMENTED), "UNIMPLEMENTED");
    CHECK_STR_EQ(grpc_status_name(GRPC_STATUS_INTERNAL), "INTERNAL");
    CHECK_STR_EQ(grpc_status_name(GRPC_STATUS_UNAUTHENTICATED), "UNAUTHENTICATED");
    CHECK_EQ(GRPC_STATUS_UNAUTHENTICATED, 16);
    CHECK_EQ(GRPC_STATUS_COUNT, 17);
    for (int i = 0; i < GRPC_STATUS_COUNT; i++)
        CHECK(grpc_status_name(i) != NULL);
    CHECK(grpc_status_name(-1) == NULL);
    CHECK(grpc_status_name(17) == NULL);
}

/* ---------------------------------------------------------------------------------------
 * Parser
 * ------------------------------------------------------------------------------------- */

/* Appends one framed message of len bytes, byte i = seed + i. */
static void put_message(struct buf *b, size_t len, uint8_t seed)
{
    uint8_t prefix[GRPC_FRAME_PREFIX_BYTES];
    grpc_frame_prefix(prefix, (uint32_t)len);
    ASPEN_ASSERT(buf_append(b, prefix, sizeof(prefix)) == 0);
    for (size_t i = 0; i < len; i++)
        ASPEN_ASSERT(buf_append_u8(b, (uint8_t)(seed + i)) == 0);
}

struct outcome {
    size_t n_messages;
    size_t lens[16];
    uint8_t first[16], last[16];
    enum grpc_frame_result last_result;
    int error_status;
    bool is_idle;
};

/* Feeds in[0..len) in chunks whose ends are cuts[] (ascending, < len), then the rest. */
static void run_cuts(size_t max, const uint8_t *in, size_t len, const size_t *cuts, size_t n_cuts,
                     struct outcome *o)
{
    memset(o, 0, sizeof(*o));
    struct grpc_frame_parser p;
    grpc_frame_parser_init(&p, max);
    size_t start = 0;
    for (size_t k = 0; k <= n_cuts && o->last_result != GRPC_FRAME_ERROR; k++) {
        size_t end = k < n_cuts ? cuts[k] : len;
        /* Every chunk is its own heap copy, so ASan sees any read past it. */
        uint8_t *chunk = mem_alloc(end - start + 1);
        memcpy(chunk, in + start, end - start);
        size_t at = 0;
        do {
            size_t used = 0;
            struct slice msg;
            enum grpc_frame_result r =
                grpc_frame_parser_feed(&p, chunk + at, end - start - at, &used, &msg);
            at += used;
            o->last_result = r;
            if (r == GRPC_FRAME_MESSAGE && o->n_messages < 16) {
                o->lens[o->n_messages] = msg.len;
                o->first[o->n_messages] = msg.len ? msg.ptr[0] : 0;
                o->last[o->n_messages] = msg.len ? msg.ptr[msg.len - 1] : 0;
                o->n_messages++;
            }
            if (r != GRPC_FRAME_MESSAGE)
                break;
        } while (at < end - start);
        mem_free(chunk);
        start = end;
    }
    /* A message completing exactly at the end leaves the parser idle. */
    o->error_status = p.error_status;
    o->is_idle = grpc_frame_parser_is_idle(&p);
    grpc_frame_parser_release(&p);
}

static bool outcome_eq(const struct outcome *a, const struct outcome *b)
{
    if (a->n_messages != b->n_messages || a->error_status != b->error_status ||
        a->is_idle != b->is_idle ||
        (a->last_result == GRPC_FRAME_ERROR) != (b->last_result == GRPC_FRAME_ERROR))
        return false;
    for (size_t i = 0; i < a->n_messages && i < 16; i++) {
        if (a->lens[i] != b->lens[i] || a->first[i] != b->first[i] || a->last[i] != b->last[i])
            return false;
    }
    return true;
}

/* Whole, byte by byte, every single split, and random chunkings must agree with whole. */
static bool all_cuts_agree(size_t max, const uint8_t *in, size_t len, struct outcome *whole)
{
    run_cuts(max, in, len, NULL, 0, whole);
    struct outcome o;
    size_t *cuts = mem_alloc((len + 1) * sizeof(size_t));
    for (size_t i = 0; i + 1 < len; i++)
        cuts[i] = i + 1;
    run_cuts(max, in, len, cuts, len ? len - 1 : 0, &o);
    bool ok = outcome_eq(whole, &o);
    /* Every split of short streams; long ones sampled (and near each message edge). */
    size_t step = len < 4096 ? 1 : 97;
    for (size_t at = 1; ok && at < len; at += step) {
        size_t one = at;
        run_cuts(max, in, len, &one, 1, &o);
        ok = outcome_eq(whole, &o);
    }
    struct rng r;
    rng_seed(&r, test_seed());
    for (int round = 0; ok && round < 50; round++) {
        size_t n = 0, pos = 0;
        while (len && n < len) {
            pos += 1 + (size_t)rng_below(&r, 1 + (uint64_t)len / 4);
            if (pos >= len)
                break;
            cuts[n++] = pos;
        }
        run_cuts(max, in, len, cuts, n, &o);
        ok = outcome_eq(whole, &o);
    }
    mem_free(cuts);
    return ok;
}

static void test_parse_messages(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    static const size_t sizes[] = {0, 1, 5, 0, 300, 70000, 2, 0};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        put_message(&b, sizes[i], (uint8_t)(i * 31));
    struct outcome whole;
    CHECK(all_cuts_agree(100000, b.data, b.len, &whole));
    CHECK_EQ(whole.n_messages, 8);
    CHECK(whole.is_idle);
    CHECK_EQ(whole.error_status, 0);
    for (size_t i = 0; i < 8; i++) {
        CHECK_EQ(whole.lens[i], sizes[i]);
        if (sizes[i]) {
            CHECK_EQ(whole.first[i], (uint8_t)(i * 31));
            CHECK_EQ(whole.last[i], (uint8_t)(i * 31 + sizes[i] - 1));
        }
    }
    /* Cut short: a partial prefix, then a partial body. */
    struct outcome o;
    run_cuts(100000, b.data, 3, NULL, 0, &o);
    CHECK_EQ(o.n_messages, 0);
    CHECK(!o.is_idle);
    CHECK_EQ(o.last_result, GRPC_FRAME_MORE);
    run_cuts(100000, b.data, 5 + 5 + 1 + 5 + 3, NULL, 0, &o);
    CHECK_EQ(o.n_messages, 2);
    CHECK(!o.is_idle);
    buf_release(&b);
}

static void test_parse_zero_copy_and_buffered(void)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    put_message(&b, 10, 7);
    struct grpc_frame_parser p;
    grpc_frame_parser_init(&p, 100);
    size_t used;
    struct slice msg;
    /* Whole within the input: the message points into it. */
    CHECK_EQ(grpc_frame_parser_feed(&p, b.data, b.len, &used, &msg), GRPC_FRAME_MESSAGE);
    CHECK_EQ(used, 15);
    CHECK(msg.ptr == b.data + 5);
    CHECK(grpc_frame_parser_is_idle(&p));
    CHECK_EQ(grpc_frame_parser_buffered(&p), 0);
    /* In pieces: the parser holds the bytes and counts them. */
    CHECK_EQ(grpc_frame_parser_feed(&p, b.data, 7, &used, &msg), GRPC_FRAME_MORE);
    CHECK_EQ(used, 7);
    CHECK(!grpc_frame_parser_is_idle(&p));
    CHECK_EQ(grpc_frame_parser_buffered(&p), 7);
    CHECK_EQ(grpc_frame_parser_feed(&p, b.data + 7, 8, &used, &msg), GRPC_FRAME_MESSAGE);
    CHECK_EQ(used, 8);
    CHECK_EQ(msg.len, 10);
    CHECK_MEM_EQ(msg.ptr, b.data + 5, 10);
    /* An empty feed after a message is harmless. */
    CHECK_EQ(grpc_frame_parser_feed(&p, NULL, 0, &used, &msg), GRPC_FRAME_MORE);
    CHECK_EQ(used, 0);
    grpc_frame_parser_release(&p);
    buf_release(&b);
}

static void test_parse_big_buffer_freed(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    put_message(&b, 200000, 1);
    struct grpc_frame_parser p;
    grpc_frame_parser_init(&p, 1 << 20);
    size_t used;
    struct slice msg;
    CHECK_EQ(grpc_frame_parser_feed(&p, b.data, 1000, &used, &msg), GRPC_FRAME_MORE);
    CHECK_EQ(grpc_frame_parser_feed(&p, b.data + 1000, b.len - 1000, &used, &msg),
             GRPC_FRAME_MESSAGE);
    CHECK_EQ(msg.len, 200000);
    CHECK(p.body.cap >= 200000);
    /* The next feed forgets the big buffer. */
    CHECK_EQ(grpc_frame_parser_feed(&p, b.data, 2, &used, &msg), GRPC_FRAME_MORE);
    CHECK(p.body.cap <= 64 * 1024);
    grpc_frame_parser_release(&p);
    buf_release(&b);
}

static void test_parse_errors(void)
{
    struct grpc_frame_parser p;
    size_t used;
    struct slice msg;
    /* Compressed: UNIMPLEMENTED, from the prefix alone. */
    uint8_t compressed[8] = {1, 0, 0, 0, 3, 'a', 'b', 'c'};
    grpc_frame_parser_init(&p, 100);
    CHECK_EQ(grpc_frame_parser_feed(&p, compressed, 8, &used, &msg), GRPC_FRAME_ERROR);
    CHECK_EQ(p.error_status, GRPC_STATUS_UNIMPLEMENTED);
    CHECK(strstr(p.error_text, "compressed") != NULL);
    /* Final: nothing more is taken. */
    CHECK_EQ(grpc_frame_parser_feed(&p, compressed + 5, 3, &used, &msg), GRPC_FRAME_ERROR);
    CHECK_EQ(used, 0);
    CHECK(!grpc_frame_parser_is_idle(&p));
    grpc_frame_parser_release(&p);
    /* Any other flag: INTERNAL. */
    uint8_t flag2[5] = {2, 0, 0, 0, 0};
    grpc_frame_parser_init(&p, 100);
    CHECK_EQ(grpc_frame_parser_feed(&p, flag2, 5, &used, &msg), GRPC_FRAME_ERROR);
    CHECK_EQ(p.error_status, GRPC_STATUS_INTERNAL);
    grpc_frame_parser_release(&p);
    /* The limit: max passes, max + 1 is refused from the prefix, before any body byte. */
    struct buf b;
    buf_init(&b, 1 << 16);
    put_message(&b, 1000, 0);
    grpc_frame_parser_init(&p, 1000);
    CHECK_EQ(grpc_frame_parser_feed(&p, b.data, b.len, &used, &msg), GRPC_FRAME_MESSAGE);
    CHECK_EQ(msg.len, 1000);
    grpc_frame_parser_release(&p);
    grpc_frame_parser_init(&p, 999);
    CHECK_EQ(grpc_frame_parser_feed(&p, b.data, 5, &used, &msg), GRPC_FRAME_ERROR);
    CHECK_EQ(p.error_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    CHECK(strstr(p.error_text, "1000 vs. 999") != NULL);
    CHECK(p.body.cap == 0);
    grpc_frame_parser_release(&p);
    /* The largest length a prefix can say. */
    uint8_t huge[5] = {0, 0xff, 0xff, 0xff, 0xff};
    grpc_frame_parser_init(&p, 4u << 20);
    CHECK_EQ(grpc_frame_parser_feed(&p, huge, 5, &used, &msg), GRPC_FRAME_ERROR);
    CHECK_EQ(p.error_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    grpc_frame_parser_release(&p);
    /* Out of memory while buffering a message that came in pieces. */
    grpc_frame_parser_init(&p, 1000);
    CHECK_EQ(grpc_frame_parser_feed(&p, b.data, 10, &used, &msg), GRPC_FRAME_MORE);
    mem_fail_at(1, 1);
    enum grpc_frame_result r = grpc_frame_parser_feed(&p, b.data + 10, 100, &used, &msg);
    mem_fail_at(0, 0);
    CHECK_EQ(r, GRPC_FRAME_ERROR);
    CHECK_EQ(p.error_status, GRPC_STATUS_RESOURCE_EXHAUSTED);
    grpc_frame_parser_release(&p);
    /* Errors do not depend on the cuts either: a good message, then a compressed one. */
    buf_clear(&b);
    put_message(&b, 3, 9);
    ASPEN_ASSERT(buf_append(&b, compressed, sizeof(compressed)) == 0);
    struct outcome whole;
    CHECK(all_cuts_agree(100, b.data, b.len, &whole));
    CHECK_EQ(whole.n_messages, 1);
    CHECK_EQ(whole.error_status, GRPC_STATUS_UNIMPLEMENTED);
    buf_release(&b);
}

/* ---------------------------------------------------------------------------------------
 * grpc-timeout
 * ------------------------------------------------------------------------------------- */

static bool timeout_is(const char *text, int want_rc, uint64_t want_ms)
{
    uint64_t ms = 12345;
    int rc = grpc_timeout_parse(slice_str(text), &ms);
    if (rc != want_rc) {
        fprintf(stderr, "timeout '%s': rc %d, want %d\n", text, rc, want_rc);
        return false;
    }
    if (rc == 0 && ms != want_ms) {
        fprintf(stderr, "timeout '%s': %llu ms, want %llu\n", text, (unsigned long long)ms,
                (unsigned long long)want_ms);
        return false;
    }
    return true;
}

static void test_timeout(void)
{
    CHECK(timeout_is("1H", 0, 3600000));
    CHECK(timeout_is("2M", 0, 120000));
    CHECK(timeout_is("3S", 0, 3000));
    CHECK(timeout_is("250m", 0, 250));
    CHECK(timeout_is("1u", 0, 1));
    CHECK(timeout_is("1000u", 0, 1));
    CHECK(timeout_is("1001u", 0, 2));
    CHECK(timeout_is("1n", 0, 1));
    CHECK(timeout_is("0n", 0, 0));
    CHECK(timeout_is("0S", 0, 0));
    CHECK(timeout_is("00000005S", 0, 5000));
    CHECK(timeout_is("99999999H", 0, UINT64_C(99999999) * 3600000));
    CHECK(timeout_is("999999999n", ASPEN_E_MALFORMED, 0)); /* nine digits */
    CHECK(timeout_is("", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is("S", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is("10", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is("1x", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is("1s", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is("-1S", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is("+1S", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is(" 1S", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is("1S ", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is("1.5S", ASPEN_E_MALFORMED, 0));
    CHECK(timeout_is("1SS", ASPEN_E_MALFORMED, 0));
}

/* ---------------------------------------------------------------------------------------
 * grpc-message
 * ------------------------------------------------------------------------------------- */

static bool encodes_to(const char *text, size_t len, const char *want)
{
    struct buf b;
    buf_init(&b, 1024);
    int rc = grpc_message_encode(slice_make(text, len), &b);
    bool ok = rc == 0 && slice_eq(buf_slice(&b), slice_str(want));
    if (!ok)
        fprintf(stderr, "encode: got '%.*s', want '%s'\n", (int)b.len, (const char *)b.data, want);
    buf_release(&b);
    return ok;
}

static void test_message_encoding(void)
{
    CHECK(encodes_to("hello world", 11, "hello world"));
    CHECK(encodes_to("a%b", 3, "a%25b"));
    CHECK(encodes_to("line\nbreak", 10, "line%0Abreak"));
    CHECK(encodes_to("caf\xc3\xa9", 5, "caf%C3%A9"));
    CHECK(encodes_to("\x7f~ !", 4, "%7F~ !"));
    CHECK(encodes_to("\0", 1, "%00"));
    /* Every byte value survives encode then decode, and the encoding is printable. */
    uint8_t all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    struct buf b;
    buf_init(&b, 1024);
    CHECK_OK(grpc_message_encode(slice_make(all, 256), &b));
    for (size_t i = 0; i < b.len; i++)
        CHECK(b.data[i] >= 0x20 && b.data[i] <= 0x7e);
    uint8_t back[1024];
    CHECK_EQ(grpc_message_decode(buf_slice(&b), back), 256);
    CHECK_MEM_EQ(back, all, 256);
    /* A full buffer leaves it as it was. */
    struct buf small;
    buf_init(&small, 4);
    CHECK_OK(buf_append(&small, "ab", 2));
    CHECK_ERR(grpc_message_encode(slice_str("%%"), &small), ASPEN_E_TOO_LARGE);
    CHECK_EQ(small.len, 2);
    buf_release(&small);
    buf_release(&b);
    /* Decoding keeps malformed escapes as they are. */
    static const struct {
        const char *in, *out;
    } dec[] = {
        {"%41", "A"},   {"%e9x", "\xe9x"}, {"50%", "50%"},     {"%4", "%4"},
        {"%zz", "%zz"}, {"%%41", "%A"},    {"plain", "plain"}, {"", ""},
    };
    for (size_t i = 0; i < sizeof(dec) / sizeof(dec[0]); i++) {
        uint8_t out[32];
        size_t n = grpc_message_decode(slice_str(dec[i].in), out);
        CHECK_MSG(slice_eq(slice_make(out, n), slice_str(dec[i].out)), "decode '%s'", dec[i].in);
    }
}

static const struct test_case tests[] = {
    TEST(test_status_names),
    TEST(test_parse_messages),
    TEST(test_parse_zero_copy_and_buffered),
    TEST(test_parse_big_buffer_freed),
    TEST(test_parse_errors),
    TEST(test_timeout),
    TEST(test_message_encoding),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("rpc_frame", tests);
}
