/*
 * BLAKE3 throughput micro-benchmark: hashes buffers of several sizes through our wrapper
 * (the official C implementation with run-time SIMD dispatch) and prints GB/s (10^9
 * bytes per second) per size. Small sizes show per-call overhead, large ones the SIMD
 * kernels' bandwidth. Each size runs for about --seconds (default 0.5) after a warm-up.
 *
 * usage: bench_blake3 [--seconds S] [--json]
 */
#include "base/clock.h"
#include "base/hash.h"
#include "base/mem.h"
#include "base/rand.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    double seconds = 0.5;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json"))
            json = 1;
        else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = strtod(argv[++i], NULL);
        else {
            fprintf(stderr, "usage: %s [--seconds S] [--json]\n", argv[0]);
            return 2;
        }
    }
    if (!(seconds >= 0.01 && seconds <= 3600)) {
        fprintf(stderr, "bench_blake3: --seconds must be between 0.01 and 3600\n");
        return 2;
    }
    static const size_t sizes[] = {64, 1024, 16 * 1024, 1024 * 1024, 64 * 1024 * 1024};
    const size_t n_sizes = sizeof(sizes) / sizeof(sizes[0]);
    const size_t max = sizes[n_sizes - 1];
    uint8_t *data = mem_alloc(max);
    if (!data) {
        fprintf(stderr, "bench_blake3: cannot allocate %zu bytes\n", max);
        return 1;
    }
    struct rng r;
    rng_seed(&r, 1);
    rng_fill(&r, data, max);
    const struct aspen_clock *c = clock_system();
    const uint64_t budget_ns = (uint64_t)(seconds * 1e9);

    if (json)
        printf("{\"bench\":\"blake3\",\"results\":[");
    else
        printf("%-12s %14s %10s\n", "size", "hashes", "GB/s");
    uint8_t out[HASH_BYTES];
    uint8_t sink = 0;
    for (size_t s = 0; s < n_sizes; s++) {
        size_t n = sizes[s];
        hash_bytes(data, n, out); /* warm-up: caches, dispatch, page faults */
        uint64_t iters = 0, start = clock_monotonic_ns(c), now = start;
        while (now - start < budget_ns || iters < 3) {
            for (int k = 0; k < 16 && (n < 65536 || k == 0); k++, iters++) {
                hash_bytes(data, n, out);
                sink ^= out[0];
            }
            now = clock_monotonic_ns(c);
        }
        double secs = (double)(now - start) / 1e9;
        double gbps = (double)iters * (double)n / secs / 1e9;
        if (json)
            printf("%s{\"size_bytes\":%zu,\"hashes\":%" PRIu64 ",\"gb_per_s\":%.3f}", s ? "," : "",
                   n, iters, gbps);
        else
            printf("%-12zu %14" PRIu64 " %10.2f\n", n, iters, gbps);
    }
    if (json)
        printf("]}\n");
    mem_free(data);
    return sink == 0xff && argc > 99; /* keep the hashing observable to the optimizer */
}
