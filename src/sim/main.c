/*
 * aspen-sim: runs the deterministic cluster simulator over one seed or a sweep of seeds.
 *
 *   aspen-sim --seed N [--trace]          replay one seed (one line per event with --trace)
 *   aspen-sim --seeds A..B                every seed in [A, B]
 *   aspen-sim --sweep COUNT [--start S]   COUNT seeds from S (default 1)
 *   aspen-sim --soak --minutes M          fresh random seeds until M minutes of wall time
 *   --nodes N            fix the founding cluster size (else drawn from {1,3,5,7})
 *   --safety-ms MS       fix the safety phase length (else drawn per seed)
 *   --lease-reads        enable lease reads (those seeds draw no pauses or clock drift)
 *   --sm kv|model       the replicated state machine: the real KV (src/kv on the memory
 *                        backend; the default) or the register model
 *   --expect-violation   succeed iff some seed breaks an invariant (stops at the first;
 *                        the canary suite uses this to prove the simulator catches bugs)
 *   --twice              run each seed twice and require identical trace digests
 *   --quiet              no line per seed, only violations and the summary
 *   --known A,B,...      seeds with a known core bug (docs/FINDINGS.md): their violation is
 *                        reported but not counted; if one passes, that fails the sweep
 *                        (the bug is fixed, or the seed changed meaning: update the list)
 *
 * The summary line ends with "sim: N passed, N failed" so scripts/test-summary.py counts
 * seeds like test cases. Exit status: 0 when every seed passed (or, with
 * --expect-violation, when a violation was found), 1 otherwise, 2 on usage errors.
 */
#include "base/mem.h"
#include "base/rand.h"
#include "sim/kvsm.h"
#include "sim/model.h"
#include "sim/sim.h"

#include <aspen/error.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double wall_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

#define MAX_KNOWN 32

static bool is_known(const uint64_t *known, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        if (known[i] == seed)
            return true;
    return false;
}

/* Parses "A,B,C" into known[]. */
static int parse_known(const char *v, uint64_t *known, size_t *n)
{
    char item[32];
    while (*v) {
        size_t len = strcspn(v, ",");
        if (len == 0 || len >= sizeof(item) || *n == MAX_KNOWN)
            return -1;
        memcpy(item, v, len);
        item[len] = '\0';
        if (parse_u64(item, &known[*n]))
            return -1;
        (*n)++;
        v += len;
        if (*v == ',')
            v++;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: aspen-sim (--seed N [--trace] | --seeds A..B | --sweep COUNT "
                    "[--start S] | --soak --minutes M)\n"
                    "                 [--sm kv|model] [--nodes N] [--safety-ms MS] [--lease-reads] "
                    "[--expect-violation] [--twice] [--quiet] [--known A,B,...]\n");
}

int main(int argc, char **argv)
{
    uint64_t first = 1, count = 0, minutes = 0;
    bool have_range = false, soak = false, expect = false, twice = false, quiet = false;
    struct sim_options opt = {.out = stdout, .sm_ops = &kvsm_ops};
    uint64_t known[MAX_KNOWN];
    size_t n_known = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t n;
        if (!strcmp(a, "--seed") && v && !parse_u64(v, &n)) {
            first = n;
            count = 1;
            have_range = true;
            i++;
        } else if (!strcmp(a, "--seeds") && v) {
            const char *dots = strstr(v, "..");
            char lo[32];
            uint64_t hi;
            if (!dots || (size_t)(dots - v) >= sizeof(lo)) {
                fprintf(stderr, "aspen-sim: bad range '%s'\n", v);
                return 2;
            }
            memcpy(lo, v, (size_t)(dots - v));
            lo[dots - v] = '\0';
            if (parse_u64(lo, &first) || parse_u64(dots + 2, &hi) || hi < first) {
                fprintf(stderr, "aspen-sim: bad range '%s'\n", v);
                return 2;
            }
            count = hi - first + 1;
            have_range = true;
            i++;
        } else if (!strcmp(a, "--sweep") && v && !parse_u64(v, &n)) {
            count = n;
            have_range = true;
            i++;
        } else if (!strcmp(a, "--start") && v && !parse_u64(v, &n)) {
            first = n;
            i++;
        } else if (!strcmp(a, "--minutes") && v && !parse_u64(v, &n)) {
            minutes = n;
            i++;
        } else if (!strcmp(a, "--nodes") && v && !parse_u64(v, &n) && n >= 1 && n <= 7) {
            opt.nodes = (uint32_t)n;
            i++;
        } else if (!strcmp(a, "--safety-ms") && v && !parse_u64(v, &n) && n > 0) {
            opt.safety_ns = n * 1000000u;
            i++;
        } else if (!strcmp(a, "--known") && v && !parse_known(v, known, &n_known)) {
            i++;
        } else if (!strcmp(a, "--soak")) {
            soak = true;
        } else if (!strcmp(a, "--trace")) {
            opt.trace = true;
        } else if (!strcmp(a, "--lease-reads")) {
            opt.lease_reads = true;
        } else if (!strcmp(a, "--sm") && v && (!strcmp(v, "kv") || !strcmp(v, "model"))) {
            opt.sm_ops = !strcmp(v, "kv") ? &kvsm_ops : &model_sm_ops;
            i++;
        } else if (!strcmp(a, "--expect-violation")) {
            expect = true;
        } else if (!strcmp(a, "--twice")) {
            twice = true;
        } else if (!strcmp(a, "--quiet")) {
            quiet = true;
        } else {
            fprintf(stderr, "aspen-sim: unknown or incomplete option '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (soak) {
        if (!minutes) {
            fprintf(stderr, "aspen-sim: --soak needs --minutes M\n");
            return 2;
        }
        if (!have_range) {
            int rc = rng_os_seed(&first);
            if (rc) {
                fprintf(stderr, "aspen-sim: cannot draw a seed: %s\n", aspen_strerror(rc));
                return 1;
            }
            first >>= 16; /* short enough to type back in */
        }
        count = UINT64_MAX - first;
    } else if (!have_range) {
        usage();
        return 2;
    }

    double start = wall_seconds();
    uint64_t seeds = 0, violations = 0, errors = 0, events = 0, virtual_ns = 0, caught = 0;
    uint64_t known_hit = 0, known_fixed = 0;
    bool found = false;
    for (uint64_t k = 0; k < count; k++) {
        if (soak && wall_seconds() - start >= (double)minutes * 60)
            break;
        uint64_t seed = first + k;
        struct sim_result res;
        int rc = sim_run(seed, &opt, &res);
        seeds++;
        events += res.events;
        virtual_ns += res.virtual_ns;
        if (rc) {
            errors++;
            continue;
        }
        if (twice && !res.violation) {
            struct sim_result again;
            struct sim_options o2 = opt;
            o2.trace = false;
            rc = sim_run(seed, &o2, &again);
            if (rc || again.digest != res.digest || again.events != res.events) {
                printf("seed=%" PRIu64 " NONDETERMINISTIC: digest %016" PRIx64 " then %016" PRIx64
                       ", events %" PRIu64 " then %" PRIu64 "\n",
                       seed, res.digest, again.digest, res.events, again.events);
                errors++;
                continue;
            }
        }
        bool listed = is_known(known, n_known, seed);
        if (listed && !expect) {
            if (res.violation) {
                known_hit++;
                printf("seed=%" PRIu64 " known core bug (docs/FINDINGS.md): %s\n", seed,
                       res.invariant);
            } else {
                known_fixed++;
                printf("seed=%" PRIu64 " is listed as a known core bug but passed: fixed, or "
                       "the seed changed meaning; update --known and docs/FINDINGS.md\n",
                       seed);
            }
        } else if (res.violation) {
            violations++;
            if (expect) {
                found = true;
                caught = seed;
                break;
            }
        } else if (!quiet) {
            printf("seed=%" PRIu64 " ok nodes=%u+%u clients=%u committed=%" PRIu64 " term=%" PRIu64
                   " ops=%" PRIu64 "/%" PRIu64 "/%" PRIu64 " crashes=%" PRIu64
                   " partitions=%" PRIu64 " conf=%" PRIu64 " snapshots=%" PRIu64 " events=%" PRIu64
                   " virtual=%.1fs"
                   " digest=%016" PRIx64 "\n",
                   seed, res.nodes, res.slots - res.nodes, res.clients, res.committed, res.max_term,
                   res.ops_ok, res.ops_unknown, res.ops_failed, res.crashes, res.partitions,
                   res.conf_changes, res.snapshots, res.events, (double)res.virtual_ns / 1e9,
                   res.digest);
        }
        fflush(stdout);
    }
    double wall = wall_seconds() - start;
    printf("sweep: seeds=%" PRIu64 " violations=%" PRIu64 " known=%" PRIu64 " errors=%" PRIu64
           " events=%" PRIu64 " virtual=%.0fs wall=%.1fs (%.1f seeds/s)\n",
           seeds, violations, known_hit, errors, events, (double)virtual_ns / 1e9, wall,
           wall > 0 ? (double)seeds / wall : 0.0);
    /* Every run frees everything it allocated: a leak is a simulator bug. */
    if (mem_outstanding() != 0) {
        printf("LEAK: %" PRId64 " allocations still live after the sweep\n", mem_outstanding());
        errors++;
    }
    if (expect) {
        if (found)
            printf("caught: seed=%" PRIu64 " (after %" PRIu64 " seeds)\nsim: 1 passed, 0 failed\n",
                   caught, seeds);
        else
            printf("NOT CAUGHT: no violation in %" PRIu64 " seeds\nsim: 0 passed, 1 failed\n",
                   seeds);
        return found && !errors ? 0 : 1;
    }
    uint64_t failed = violations + errors + known_fixed;
    printf("sim: %" PRIu64 " passed, %" PRIu64 " failed\n", seeds - failed, failed);
    return failed ? 1 : 0;
}
