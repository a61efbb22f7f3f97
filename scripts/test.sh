#!/usr/bin/env bash
# test.sh — what `make test` runs:
#   1. format check (clang-format, every tracked C file);
#   2. normal build (build/) and every meson test suite;
#   3. ASan + UBSan build (build-asan/) and the unit, fuzz-replay and simulator suites (the
#      simulator's sweeps run a quarter of their seeds there; canaries run only in step 2),
#      plus the real-process suites tagged integration-asan (cluster, grpc);
#   4. one closing line "N passed, N failed" summing the test cases of all suites.
# Exits non-zero if anything failed, including a build.
set -uo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}
status=0
extra=()

echo "== format check"
if bash scripts/fmt.sh check; then extra+=(format:1:0); else extra+=(format:0:1); status=1; fi

run_build() { # dir setup-args... ; then meson test args come from the caller
  local dir=$1; shift
  if [[ ! -f $dir/build.ninja ]]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; return 1; }
  fi
  ninja -C "$dir" -j "$JOBS"
}

echo "== build (debugoptimized)"
if run_build build; then
  rm -f build/meson-logs/testlog.json
  meson test -C build --num-processes "$JOBS" --print-errorlogs || status=1
else
  extra+=(build:0:1); status=1
fi

echo "== build (ASan + UBSan)"
if run_build build-asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false; then
  rm -f build-asan/meson-logs/testlog.json
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C build-asan --num-processes "$JOBS" --print-errorlogs \
      --suite unit --suite fuzz --suite sim --suite integration-asan || status=1
else
  extra+=(build-asan:0:1); status=1
fi

echo "== summary"
python3 scripts/test-summary.py build/meson-logs/testlog.json build-asan/meson-logs/testlog.json \
  -- "${extra[@]}" || status=1
exit $status
