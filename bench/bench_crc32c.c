/*
 * CRC-32C throughput micro-benchmark: checksums buffers of several sizes with each
 * implementation this CPU can run (the SSE4.2 instruction and the portable
 * slicing-by-8) and prints GB/s (10^9 bytes per second). Raft frames and log records are
 * checksummed whole, so this is the per-byte cost every message and entry pays.
 *
 * usage: bench_crc32c [--seconds S]
 */
#include "base/clock.h"
#include "base/crc32c.h"
#include "base/mem.h"
#include "base/rand.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint32_t (*crc_fn)(uint32_t crc, const void *data, size_t len);

int main(int argc, char **argv)
{
    double seconds = 0.3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
        } else {
            fprintf(stderr, "usage: %s [--seconds S]\n", argv[0]);
            return 2;
        }
    }
    if (!(seconds >= 0.01 && seconds <= 3600)) {
        fprintf(stderr, "bench_crc32c: --seconds must be between 0.01 and 3600\n");
        return 2;
    }
    static const size_t sizes[] = {64, 4096, 1024 * 1024};
    const size_t n_sizes = sizeof(sizes) / sizeof(sizes[0]);
    uint8_t *data = mem_alloc(sizes[n_sizes - 1]);
    if (!data) {
        fprintf(stderr, "bench_crc32c: out of memory\n");
        return 1;
    }
    struct rng r;
    rng_seed(&r, 1);
    rng_fill(&r, data, sizes[n_sizes - 1]);
    const struct aspen_clock *c = clock_system();
    const uint64_t budget_ns = (uint64_t)(seconds * 1e9);

    const struct {
        const char *name;
        crc_fn fn;
    } impls[] = {{"sse4.2", crc32c_extend_hw}, {"portable", crc32c_extend_portable}};
    printf("%-10s %-10s %10s\n", "impl", "size", "GB/s");
    uint32_t sink = 0;
    for (size_t f = 0; f < 2; f++) {
        if (impls[f].fn == crc32c_extend_hw && !crc32c_hw_available())
            continue;
        for (size_t s = 0; s < n_sizes; s++) {
            size_t n = sizes[s];
            uint64_t iters = 0, start = clock_monotonic_ns(c), now = start;
            while (now - start < budget_ns || iters < 3) {
                for (int k = 0; k < 64; k++, iters++)
                    sink ^= impls[f].fn(sink, data, n);
                now = clock_monotonic_ns(c);
            }
            double gbps = (double)iters * (double)n / ((double)(now - start) / 1e9) / 1e9;
            printf("%-10s %-10zu %10.2f\n", impls[f].name, n, gbps);
        }
    }
    mem_free(data);
    return sink == 1 && argc > 99; /* keep the checksums observable to the optimizer */
}
