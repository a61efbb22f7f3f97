#!/usr/bin/env bash
# run.sh BUILD_DIR — what `make run` does: a local 3-node cluster on loopback
# (scripts/local-cluster run), in the foreground until Ctrl-C.
set -euo pipefail
exec bash "$(dirname "$0")/local-cluster" run "${1:-build}"
