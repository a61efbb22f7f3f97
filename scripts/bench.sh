#!/usr/bin/env bash
# bench.sh BUILD_DIR — what `make bench` runs. For now: the base micro-benchmarks, with
# the machine they ran on. The etcd side-by-side matrix (issue 7) is added here.
set -euo pipefail
build=${1:-build}
shift || true
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
echo "== BLAKE3 (official C implementation, SIMD dispatch)"
"$build/bench/bench_blake3" "$@"
echo
echo "== raft core alone (3 nodes in one thread, zero-cost network and storage)"
"$build/bench/bench_raft" --seconds 2 --batch 256
"$build/bench/bench_raft" --seconds 2 --batch 16
"$build/bench/bench_raft" --seconds 2 --batch 1
echo
echo "== CRC-32C (SSE4.2 and portable slicing-by-8)"
"$build/bench/bench_crc32c"
