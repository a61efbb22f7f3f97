#!/usr/bin/env bash
# bench.sh BUILD_DIR — what `make bench` runs: the micro-benchmarks, storage + KV on one
# node (issue 4) and, if etcd is installed, etcd's own figure on this machine, with the
# machine they ran on. The etcd side-by-side matrix over the network (issue 7) is added here.
# Environment: ASPEN_BENCH_KV_ARGS (extra bench_kv options, e.g. "--dir /mnt/nvme"),
# ASPEN_BENCH_ETCD_LOADS (etcdctl check perf workloads, default "s xl"; empty skips etcd).
set -euo pipefail
build=${1:-build}
shift || true
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "disk:    $(df -T /tmp | awk 'NR==2 {print $2 " (" $1 ") for /tmp"}')"
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
echo
echo "== storage + KV state machine, one node in process, fsync on (issue 4)"
# shellcheck disable=SC2086 # word splitting of the extra options is wanted
"$build/bench/bench_kv" ${ASPEN_BENCH_KV_ARGS:-}

# etcd's figure from the same machine: end-to-end gRPC over loopback through etcd's WAL
# and bbolt, NOT like for like with bench_kv's in-process number. Optional: only when
# Debian's etcd-server and etcd-client are installed. Loopback only, throwaway data dir.
etcd_loads=${ASPEN_BENCH_ETCD_LOADS-s xl}
if [ -n "$etcd_loads" ] && command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
    echo
    echo "== etcd $(etcd --version | awk '/etcd Version/ {print $3}'): etcdctl check perf," \
        "end-to-end gRPC over loopback (not like for like with bench_kv)"
    etcd_dir=$(mktemp -d /tmp/aspen-bench-etcd-XXXXXX)
    etcd --name bench --data-dir "$etcd_dir/data" \
        --listen-client-urls http://127.0.0.1:23790 --advertise-client-urls http://127.0.0.1:23790 \
        --listen-peer-urls http://127.0.0.1:23800 --initial-advertise-peer-urls http://127.0.0.1:23800 \
        --initial-cluster bench=http://127.0.0.1:23800 >"$etcd_dir/etcd.log" 2>&1 &
    etcd_pid=$!
    stop_etcd() {
        kill "$etcd_pid" 2>/dev/null || true
        wait "$etcd_pid" 2>/dev/null || true
        rm -rf "$etcd_dir"
    }
    trap stop_etcd EXIT
    export ETCDCTL_API=3
    for _ in $(seq 50); do
        etcdctl --endpoints=127.0.0.1:23790 endpoint health >/dev/null 2>&1 && break
        sleep 0.2
    done
    for load in $etcd_loads; do
        echo "-- etcdctl check perf --load=$load"
        # check perf exits non-zero when a criterion fails (e.g. throughput below the
        # workload's rate): that is a result to record, not an error of this script.
        etcdctl --endpoints=127.0.0.1:23790 check perf --load="$load" 2>&1 |
            grep -v '^ *[0-9]* / [0-9]* ' | tr '\r' '\n' | grep -E 'PASS|FAIL|writes/s|took' || true
    done
    stop_etcd
    trap - EXIT
fi
