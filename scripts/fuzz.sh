#!/usr/bin/env bash
# fuzz.sh SECONDS — build the libFuzzer targets with clang + ASan/UBSan in build-fuzz/
# and run each for SECONDS, growing a working corpus in tests/fuzz/corpus-out/<name>
# (ignored by git) from the committed seeds. Crashes are written as crash-* files.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
if [[ ! -f build-fuzz/build.ninja ]]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dbuildtype=debugoptimized \
    -Db_sanitize=address,undefined -Db_lundef=false
fi
ninja -C build-fuzz -j "${JOBS:-2}"
shopt -s nullglob
for exe in build-fuzz/tests/fuzz/fuzz_*; do
  [[ -x $exe && -f $exe ]] || continue
  name=${exe##*/fuzz_}
  out=tests/fuzz/corpus-out/$name
  mkdir -p "$out"
  echo "== fuzz $name for ${secs}s"
  "$exe" -max_total_time="$secs" -print_final_stats=1 "$out" "tests/fuzz/corpus/$name"
done
