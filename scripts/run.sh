#!/usr/bin/env bash
# run.sh BUILD_DIR — what `make run` does.
#
# Target (issue 5): start a local 3-node Aspen cluster on loopback (client ports 12379,
# 22379, 32379) and print how to reach it with etcdctl and aspen-cli. aspen-node does not
# exist yet, so for now this reports what was built and what is to come, and succeeds.
set -euo pipefail
build=${1:-build}
cat <<MSG
Aspen is built in $build/ (base library and test suites).

The node runtime (aspen-node) is not written yet; once it is, 'make run' will start
three nodes on 127.0.0.1 (client ports 12379, 22379, 32379) and keep them running
until Ctrl-C. Meanwhile:
  make test    run every suite (format, unit, fuzz replay; ASan + UBSan)
  make bench   run the micro-benchmarks (BLAKE3 throughput)
  make fuzz    run the libFuzzer targets for FUZZ_SECONDS each (default 60)
MSG
