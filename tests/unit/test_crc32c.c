/*
 * CRC-32C: the published check values (the "123456789" check from the CRC catalogue and
 * the iSCSI vectors of RFC 3720 appendix B.4), agreement of the portable and SSE4.2
 * implementations on every length 0..1024 at every start alignment, and extend ==
 * one-shot for every split point. The two implementations share no code, so agreement on
 * random input is strong evidence that both are right.
 */
#include "test.h"

#include "base/crc32c.h"
#include "base/rand.h"

#include <stdio.h>

typedef uint32_t (*crc_fn)(uint32_t crc, const void *data, size_t len);

/* Every implementation this machine can run: the dispatched one, the portable one and,
 * when the CPU has it, the hardware one. */
static size_t implementations(crc_fn out[3])
{
    size_t n = 0;
    out[n++] = crc32c_extend;
    out[n++] = crc32c_extend_portable;
    if (crc32c_hw_available())
        out[n++] = crc32c_extend_hw;
    return n;
}

static void test_known_vectors(void)
{
    uint8_t zeros[32], ones[32], up[32], down[32];
    for (int i = 0; i < 32; i++) {
        zeros[i] = 0;
        ones[i] = 0xff;
        up[i] = (uint8_t)i;
        down[i] = (uint8_t)(31 - i);
    }
    crc_fn fns[3];
    size_t n = implementations(fns);
    for (size_t f = 0; f < n; f++) {
        CHECK_EQ_U64(fns[f](0, "123456789", 9), 0xE3069283u);
        CHECK_EQ_U64(fns[f](0, zeros, 32), 0x8A9136AAu);
        CHECK_EQ_U64(fns[f](0, ones, 32), 0x62A8AB43u);
        CHECK_EQ_U64(fns[f](0, up, 32), 0x46DD794Eu);
        CHECK_EQ_U64(fns[f](0, down, 32), 0x113FDB5Cu);
        CHECK_EQ_U64(fns[f](0, NULL, 0), 0);
        CHECK_EQ_U64(fns[f](0x12345678u, NULL, 0), 0x12345678u); /* empty extend: no change */
    }
    CHECK_EQ_U64(crc32c("a", 1), 0xC1D04330u);
    printf("  (hardware path %s)\n", crc32c_hw_available() ? "tested" : "not available");
}

/* The hardware path aligns to 8 bytes before its wide loop and the portable path works
 * in 8-byte steps, so every length and every start offset modulo 8 exercises all of the
 * head, body and tail combinations of both. */
static void test_hw_and_portable_agree(void)
{
    if (!crc32c_hw_available())
        return;
    struct rng r;
    rng_seed(&r, test_seed());
    static uint8_t data[1024 + 16];
    rng_fill(&r, data, sizeof(data));
    for (size_t len = 0; len <= 1024; len++)
        for (size_t off = 0; off < 8; off++) {
            uint32_t init = (uint32_t)rng_next(&r);
            uint32_t hw = crc32c_extend_hw(init, data + off, len);
            uint32_t sw = crc32c_extend_portable(init, data + off, len);
            CHECK_MSG(hw == sw, "len %zu offset %zu: hw %08x sw %08x", len, off, hw, sw);
        }
    /* One large input for the long loops. */
    static uint8_t big[1 << 20];
    rng_fill(&r, big, sizeof(big));
    CHECK_EQ_U64(crc32c_extend_hw(0, big + 3, sizeof(big) - 3),
                 crc32c_extend_portable(0, big + 3, sizeof(big) - 3));
}

static void test_extend_equals_one_shot(void)
{
    struct rng r;
    rng_seed(&r, test_seed() ^ 1);
    uint8_t data[300];
    rng_fill(&r, data, sizeof(data));
    crc_fn fns[3];
    size_t n = implementations(fns);
    for (size_t f = 0; f < n; f++) {
        uint32_t whole = fns[f](0, data, sizeof(data));
        for (size_t cut = 0; cut <= sizeof(data); cut++) {
            uint32_t part = fns[f](fns[f](0, data, cut), data + cut, sizeof(data) - cut);
            CHECK_MSG(part == whole, "impl %zu cut %zu", f, cut);
        }
        /* Many random pieces, including empty ones. */
        for (int round = 0; round < 100; round++) {
            uint32_t c = 0;
            size_t at = 0;
            while (at < sizeof(data)) {
                size_t take = (size_t)rng_below(&r, 20);
                if (take > sizeof(data) - at)
                    take = sizeof(data) - at;
                c = fns[f](c, data + at, take);
                at += take;
            }
            CHECK_EQ_U64(c, whole);
        }
    }
}

/* A single flipped bit anywhere changes the checksum (CRCs detect every 1-bit error). */
static void test_detects_bit_flips(void)
{
    uint8_t data[64];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 7);
    uint32_t good = crc32c(data, sizeof(data));
    for (size_t bit = 0; bit < sizeof(data) * 8; bit++) {
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint32_t bad = crc32c(data, sizeof(data));
        data[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CHECK_MSG(bad != good, "bit %zu undetected", bit);
    }
}

static const struct test_case tests[] = {
    TEST(test_known_vectors),
    TEST(test_hw_and_portable_agree),
    TEST(test_extend_equals_one_shot),
    TEST(test_detects_bit_flips),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("crc32c", tests);
}
