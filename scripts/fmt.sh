#!/usr/bin/env bash
# fmt.sh apply|check — clang-format every C source and header the project owns.
# `check` lists the files that are not formatted and exits 1 if there are any.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-check}
mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.c' '*.h')
((${#files[@]})) || exit 0
if [[ $mode == apply ]]; then
  clang-format -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  [[ -f $f ]] || continue
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if ((${#bad[@]})); then
  echo "format: not formatted (run 'make fmt'):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
