#!/usr/bin/env bash
# determinism.sh SIM ARGS... — runs the simulator twice in two processes and requires
# byte-identical output (each seed's line carries the digest of its whole event trace).
# Two processes, not one: address-space randomization then differs between the runs, so
# any ordering that depends on pointer values shows up as a different digest.
set -euo pipefail
sim=$1
shift
# Only the per-seed lines: the summary line reports wall time.
a=$("$sim" "$@" | grep '^seed=')
b=$("$sim" "$@" | grep '^seed=')
if [[ "$a" != "$b" ]]; then
  echo "determinism: two runs of the same seeds differ:"
  diff <(echo "$a") <(echo "$b") | head -20
  echo "determinism: 0 passed, 1 failed"
  exit 1
fi
n=$(grep -c '^seed=' <<<"$a" || true)
echo "determinism: $n seeds replayed identically"
echo "determinism: 1 passed, 0 failed"
