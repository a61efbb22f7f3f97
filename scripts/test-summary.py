#!/usr/bin/env python3
"""Sum the test cases of every meson test run into one closing line.

Each of our suite binaries ends its output with "<suite>: N passed, N failed". A test
that ended badly without such a line (a crash, a timeout, a sanitizer abort) counts
as one failed case; a passing test without one (a compile-must-fail check) counts as
one passed case; a skipped test (exit 77) counts as neither and is listed as "skip".
Extra "name:passed:failed" items (format check, builds) are added.
Prints a line per suite run and then the closing "N passed, N failed" line; exits 1
if anything failed.
"""
import json
import os
import re
import sys

LINE = re.compile(r"^(?:\S+: )?(\d+) passed, (\d+) failed", re.M)


def main(argv):
    sep = argv.index("--") if "--" in argv else len(argv)
    logs, extras = argv[1:sep], argv[sep + 1:]
    passed = failed = 0
    for path in logs:
        if not os.path.exists(path):
            continue
        build = os.path.basename(os.path.dirname(os.path.dirname(path)))
        with open(path, encoding="utf-8", errors="replace") as f:
            for raw in f:
                t = json.loads(raw)
                ok = t.get("result") in ("OK", "EXPECTEDFAIL")
                if t.get("result") == "SKIP":
                    # Exit 77: the test could not run here (e.g. netem without root). Not
                    # a failure, but shown with the reason the test gave.
                    why = (t.get("stdout") or "").strip().splitlines()
                    print(f"  skip {build}/{t['name']}" + (f": {why[-1]}" if why else ""))
                    continue
                m = LINE.findall(t.get("stdout") or "")
                p, fl = (int(m[-1][0]), int(m[-1][1])) if m else (0, 0)
                if not ok and fl == 0:
                    fl = 1
                if ok and p == 0 and fl == 0:
                    p = 1
                passed += p
                failed += fl
                mark = "ok  " if ok and fl == 0 else "FAIL"
                print(f"  {mark} {build}/{t['name']}: {p} passed, {fl} failed")
    for e in extras:
        name, p, fl = e.rsplit(":", 2)
        passed += int(p)
        failed += int(fl)
        print(f"  {'ok  ' if int(fl) == 0 else 'FAIL'} {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
