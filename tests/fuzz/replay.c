/*
 * Replay driver for fuzz targets in builds without libFuzzer.
 *
 * Every fuzz target defines LLVMFuzzerTestOneInput. With -Dfuzz=true (clang) it links
 * against libFuzzer for coverage-guided runs (`make fuzz`); otherwise it links with this
 * driver, which `make test` runs under ASan/UBSan: every file of the seed corpus, then a
 * bounded number of inputs derived from it by seeded mutation (bit flips, byte changes,
 * truncation, insertion, splicing two entries) plus purely random ones. Every input is
 * passed in an exactly-sized heap block so ASan sees any over-read. The corpus is read
 * in sorted order and the seed comes from the test harness (ASPEN_TEST_SEED, or
 * "random"), so the same seed replays the same inputs on any filesystem.
 *
 * usage: replay CORPUS_DIR [ITERATIONS]
 */
#include "base/mem.h"
#include "base/rand.h"
#include "test.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT   4096
#define REPLAY_MAX_ENTRIES 1024

struct entry {
    uint8_t *data;
    size_t len;
};

static size_t load_corpus(const char *dir, struct entry *out, size_t max)
{
    struct dirent **names = NULL;
    int count = scandir(dir, &names, NULL, alphasort);
    if (count < 0) {
        fprintf(stderr, "replay: cannot open corpus '%s'\n", dir);
        exit(2);
    }
    size_t n = 0;
    for (int i = 0; i < count; i++) {
        const char *name = names[i]->d_name;
        char path[4096];
        FILE *f = NULL;
        if (name[0] != '.' && n < max) {
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            f = fopen(path, "rb");
        }
        if (f) {
            uint8_t tmp[REPLAY_MAX_INPUT];
            size_t len = fread(tmp, 1, sizeof(tmp), f);
            int longer = fgetc(f) != EOF;
            fclose(f);
            if (longer)
                fprintf(stderr, "replay: '%s' is cut at %d bytes\n", path, REPLAY_MAX_INPUT);
            out[n].data = mem_alloc(len);
            if (!out[n].data) {
                fprintf(stderr, "replay: out of memory\n");
                exit(2);
            }
            memcpy(out[n].data, tmp, len);
            out[n].len = len;
            n++;
        }
        free(names[i]); /* allocated by scandir with malloc */
    }
    free(names);
    return n;
}

/* Builds one mutated input in buf from the corpus and returns its length. */
static size_t mutate(struct rng *r, const struct entry *corpus, size_t n, uint8_t *buf)
{
    if (n == 0 || rng_ratio(r, 1, 8)) {
        size_t len = (size_t)rng_below(r, 64);
        rng_fill(r, buf, len);
        return len;
    }
    const struct entry *e = &corpus[rng_below(r, n)];
    size_t len = e->len;
    memcpy(buf, e->data, len);
    unsigned rounds = 1 + (unsigned)rng_below(r, 4);
    for (unsigned i = 0; i < rounds; i++) {
        switch (rng_below(r, 6)) {
        case 0: /* flip a bit */
            if (len)
                buf[rng_below(r, len)] ^= (uint8_t)(1u << rng_below(r, 8));
            break;
        case 1: /* set a byte to an interesting value */
            if (len) {
                static const uint8_t vals[] = {0x00, 0x01, 0x02, 0x05, 0x0b, 0x0c, 0x13, 0x14,
                                               0x15, 0x1c, 0x1d, 0x21, 0x26, 0x27, 0x30, 0xff};
                buf[rng_below(r, len)] = vals[rng_below(r, sizeof(vals))];
            }
            break;
        case 2: /* truncate */
            len = (size_t)rng_below(r, len + 1);
            break;
        case 3: /* insert a random byte */
            if (len < REPLAY_MAX_INPUT) {
                size_t at = (size_t)rng_below(r, len + 1);
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)rng_next(r);
                len++;
            }
            break;
        case 4: { /* splice: append the tail of another entry */
            const struct entry *o = &corpus[rng_below(r, n)];
            size_t from = (size_t)rng_below(r, o->len + 1);
            size_t take = o->len - from;
            if (take > REPLAY_MAX_INPUT - len)
                take = REPLAY_MAX_INPUT - len;
            memcpy(buf + len, o->data + from, take);
            len += take;
            break;
        }
        default: /* delete a byte */
            if (len) {
                size_t at = (size_t)rng_below(r, len);
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
            }
            break;
        }
    }
    return len;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR [ITERATIONS]\n", argv[0]);
        return 2;
    }
    uint64_t iterations = test_iters(argc > 2 ? strtoull(argv[2], NULL, 0) : 100000);
    uint64_t seed = test_seed();

    static struct entry corpus[REPLAY_MAX_ENTRIES];
    size_t n = load_corpus(argv[1], corpus, REPLAY_MAX_ENTRIES);
    for (size_t i = 0; i < n; i++)
        LLVMFuzzerTestOneInput(corpus[i].data, corpus[i].len);

    /* The input goes in an exactly-sized heap copy so ASan catches any over-read. */
    static uint8_t scratch[REPLAY_MAX_INPUT * 2];
    struct rng r;
    rng_seed(&r, seed);
    for (uint64_t i = 0; i < iterations; i++) {
        size_t len = mutate(&r, corpus, n, scratch);
        uint8_t *copy = mem_alloc(len);
        if (!copy)
            return 2;
        memcpy(copy, scratch, len);
        LLVMFuzzerTestOneInput(copy, len);
        mem_free(copy);
    }
    for (size_t i = 0; i < n; i++)
        mem_free(corpus[i].data);
    printf("replayed %zu corpus entries and %" PRIu64 " mutations (seed %" PRIu64 ")\n", n,
           iterations, seed);
    printf("%s: 1 passed, 0 failed\n", argc > 3 ? argv[3] : "fuzz");
    return 0;
}
