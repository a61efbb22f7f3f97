#!/bin/sh
# banned_check.sh BANNED_H FN CC... — compile a call to FN with banned.h force-included,
# as the build does. Banned functions must be refused with a "poisoned" diagnostic;
# the control function (snprintf) must compile. CC is the compiler command, which may be
# several words ("ccache gcc"). Exit 0 when the outcome is right.
banned=$1 fn=$2
shift 2
out=$(printf 'void f(void);\nvoid f(void) { (void)%s; }\n' "$fn" |
  "$@" -std=c17 -fsyntax-only -D_GNU_SOURCE -include "$banned" -x c - 2>&1)
rc=$?
case $fn in
snprintf) [ $rc -eq 0 ] || { echo "control '$fn' failed to compile: $out"; exit 1; } ;;
*) [ $rc -ne 0 ] && echo "$out" | grep -q poisoned || { echo "'$fn' was not refused: $out"; exit 1; } ;;
esac
echo "banned-$fn: 1 passed, 0 failed"
