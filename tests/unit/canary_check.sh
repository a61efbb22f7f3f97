#!/usr/bin/env bash
# canary_check.sh BINARY — runs a raft suite built against a canary core (raft/canary.h).
# The run is expected to fail (meson should_fail); this wrapper prints which tests
# caught the canary and rewrites the suite's closing counts so that the expected
# failures are not summed as failed cases (scripts/test-summary.py). Exits with the
# suite's status: nonzero (caught: a failed check or a crash) is what the canary suite
# wants.
set -uo pipefail
out=$("$@" 2>&1)
rc=$?
printf '%s\n' "$out" | grep -E '^FAIL ' | sed 's/^FAIL /caught by: /'
if ((rc > 128)); then
  last=$(printf '%s\n' "$out" | grep -E '^(ok|FAIL) ' | tail -n 1)
  echo "crashed (status $rc) after: ${last:-<start>}"
fi
n=$(printf '%s\n' "$out" | grep -cE '^FAIL ' || true)
echo "canary: $n failing test(s), exit status $rc"
exit $rc
