/*
 * BLAKE3: our wrapper over the official C code must reproduce the official test vectors
 * (hash, keyed hash, derive-key, extended output, seek) and agree with the reference
 * tool b3sum on random files, including multi-megabyte ones that take the SIMD paths.
 */
#include "test.h"

#include "base/hash.h"
#include "base/mem.h"
#include "base/rand.h"

#include "blake3_vectors.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define EXT_BYTES 131

static int hex_decode(const char *hex, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return 0;
}

static uint8_t *vector_input(size_t len)
{
    uint8_t *in = mem_alloc(len);
    for (size_t i = 0; in && i < len; i++)
        in[i] = (uint8_t)(i % 251);
    return in;
}

static void test_official_vectors(void)
{
    for (size_t v = 0; v < sizeof(b3_vectors) / sizeof(b3_vectors[0]); v++) {
        const struct b3_vector *tv = &b3_vectors[v];
        uint8_t *in = vector_input(tv->input_len);
        uint8_t want[EXT_BYTES], got[EXT_BYTES];
        struct hash_state s;
        int bad = in == NULL;

        hex_decode(tv->hash, want, EXT_BYTES);
        hash_init(&s);
        hash_update(&s, in, tv->input_len);
        hash_final(&s, got, EXT_BYTES);
        bad |= memcmp(got, want, EXT_BYTES) != 0;
        hash_bytes(in, tv->input_len, got);
        bad |= memcmp(got, want, HASH_BYTES) != 0;

        hex_decode(tv->keyed_hash, want, EXT_BYTES);
        hash_init_keyed(&s, (const uint8_t *)B3V_KEY);
        hash_update(&s, in, tv->input_len);
        hash_final(&s, got, EXT_BYTES);
        bad |= memcmp(got, want, EXT_BYTES) != 0;
        hash_keyed((const uint8_t *)B3V_KEY, in, tv->input_len, got);
        bad |= memcmp(got, want, HASH_BYTES) != 0;

        hex_decode(tv->derive_key, want, EXT_BYTES);
        hash_derive_key(B3V_CONTEXT, in, tv->input_len, got, EXT_BYTES);
        bad |= memcmp(got, want, EXT_BYTES) != 0;

        mem_free(in);
        CHECK_MSG(!bad, "vector with input_len %zu does not match", tv->input_len);
    }
}

static void test_incremental_and_seek(void)
{
    const struct b3_vector *tv = &b3_vectors[sizeof(b3_vectors) / sizeof(b3_vectors[0]) - 1];
    uint8_t *in = vector_input(tv->input_len);
    CHECK(in != NULL);
    uint8_t want[EXT_BYTES], got[EXT_BYTES];
    hex_decode(tv->hash, want, EXT_BYTES);

    /* Feed the input in irregular pieces: chunk and SIMD-batch boundaries fall inside. */
    struct rng r;
    rng_seed(&r, test_seed());
    struct hash_state s;
    hash_init(&s);
    for (size_t off = 0; off < tv->input_len;) {
        size_t n = 1 + (size_t)rng_below(&r, 5000);
        if (n > tv->input_len - off)
            n = tv->input_len - off;
        hash_update(&s, in + off, n);
        off += n;
    }
    hash_final(&s, got, EXT_BYTES);
    int same = memcmp(got, want, EXT_BYTES) == 0;
    hash_final_seek(&s, 32, got, EXT_BYTES - 32);
    int seek_same = memcmp(got, want + 32, EXT_BYTES - 32) == 0;
    mem_free(in);
    CHECK(same);
    CHECK(seek_same);
}

static void test_hex(void)
{
    uint8_t b[] = {0x00, 0x0f, 0xa5, 0xff};
    char out[9];
    hash_to_hex(b, sizeof(b), out);
    CHECK_STR_EQ(out, "000fa5ff");
}

/* Runs cmd and reads the first line of its output into out (hex digest). */
static int run_b3sum(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char *line = fgets(out, (int)cap, p);
    int status = pclose(p);
    if (!line || status != 0)
        return -1;
    out[strcspn(out, " \n")] = '\0';
    return 0;
}

static void test_matches_b3sum(void)
{
    static const size_t sizes[] = {0,
                                   1,
                                   63,
                                   64,
                                   65,
                                   1023,
                                   1024,
                                   1025,
                                   4096 * 3 + 7,
                                   65536 + 3,
                                   (1u << 20) + 7,
                                   5u * (1u << 20) + 11};
    char dir[] = "/tmp/aspen-b3-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[64], keypath[64], cmd[512], ref[512], ours[512];
    snprintf(path, sizeof(path), "%s/data", dir);
    snprintf(keypath, sizeof(keypath), "%s/key", dir);
    struct rng r;
    rng_seed(&r, test_seed());
    uint8_t key[HASH_KEY_BYTES];
    rng_fill(&r, key, sizeof(key));
    FILE *kf = fopen(keypath, "wb");
    CHECK(kf && fwrite(key, 1, sizeof(key), kf) == sizeof(key));
    fclose(kf);

    int failures = 0;
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        size_t n = sizes[i];
        uint8_t *data = mem_alloc(n);
        rng_fill(&r, data, n);
        FILE *f = fopen(path, "wb");
        size_t written = f ? fwrite(data, 1, n, f) : 0;
        if (f)
            fclose(f);
        uint8_t h[64];

        hash_bytes(data, n, h);
        hash_to_hex(h, HASH_BYTES, ours);
        snprintf(cmd, sizeof(cmd), "b3sum --no-names '%s'", path);
        int ok = written == n && run_b3sum(cmd, ref, sizeof(ref)) == 0 && !strcmp(ref, ours);

        hash_keyed(key, data, n, h);
        hash_to_hex(h, HASH_BYTES, ours);
        snprintf(cmd, sizeof(cmd), "b3sum --keyed --no-names '%s' < '%s'", path, keypath);
        ok = ok && run_b3sum(cmd, ref, sizeof(ref)) == 0 && !strcmp(ref, ours);

        hash_derive_key("aspen test context", data, n, h, 64);
        hash_to_hex(h, 64, ours);
        snprintf(cmd, sizeof(cmd),
                 "b3sum --derive-key 'aspen test context' --length 64 --no-names '%s'", path);
        ok = ok && run_b3sum(cmd, ref, sizeof(ref)) == 0 && !strcmp(ref, ours);

        mem_free(data);
        if (!ok) {
            test_fail(__FILE__, __LINE__, "b3sum disagrees for a %zu-byte file", n);
            failures++;
        }
    }
    unlink(path);
    unlink(keypath);
    rmdir(dir);
    CHECK(failures == 0);
}

static const struct test_case tests[] = {
    TEST(test_official_vectors),
    TEST(test_incremental_and_seek),
    TEST(test_hex),
    TEST(test_matches_b3sum),
};

int main(int argc, char **argv)
{
    return TEST_MAIN("hash", tests);
}
