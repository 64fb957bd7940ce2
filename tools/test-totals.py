#!/usr/bin/env python3
"""Sum the results of meson test logs (JSON lines) into one closing line.

TAP tests count each subtest; other tests count once. A suite named with
--require-suite must have run at least one test and skipped none, otherwise
this exits 1 after printing the totals. The last line printed is
'N passed, N failed, N skipped'.
"""
import argparse
import json
import re
import sys


def count_tap(stdout):
    passed = failed = skipped = 0
    for line in stdout.splitlines():
        m = re.match(r"^(not ok|ok)\b(.*)$", line)
        if not m:
            continue
        rest = m.group(2)
        if re.search(r"#\s*SKIP", rest, re.I):
            skipped += 1
        elif m.group(1) == "ok" or re.search(r"#\s*TODO", rest, re.I):
            passed += 1
        else:
            failed += 1
    return passed, failed, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--require-suite", action="append", default=[])
    ap.add_argument("--extra", action="append", default=[],
                    help="NAME=pass|fail: a check that is not a meson test")
    args = ap.parse_args()

    total = {"passed": 0, "failed": 0, "skipped": 0}
    per_suite = {}
    problems = []
    failures = []
    for path in args.logs:
        try:
            with open(path) as f:
                lines = [json.loads(l) for l in f if l.strip()]
        except OSError as e:
            problems.append(f"missing test log {path}: {e.strerror}")
            total["failed"] += 1
            continue
        for t in lines:
            result = t.get("result", "")
            suites = [s.split(":", 1)[-1] for s in t.get("suite", [])]
            if not suites:
                # meson 1.0 logs no suite list: the name reads "project:suite / test"
                m = re.match(r"^[^:]+:([^ ]+) / ", t.get("name", ""))
                if m:
                    suites = [m.group(1)]
            stdout = t.get("stdout", "") or ""
            if result == "SKIP":
                p, fl, s = 0, 0, 1
            elif t.get("protocol") == "tap" or re.search(r"^1\.\.\d+", stdout, re.M):
                p, fl, s = count_tap(stdout)
                if result not in ("OK", "EXPECTEDFAIL") and fl == 0:
                    fl = 1  # crashed or timed out between subtests
                if p + fl + s == 0:
                    fl = 1 if result != "OK" else 0
                    p = 1 if result == "OK" else 0
            elif result in ("OK", "EXPECTEDFAIL"):
                p, fl, s = 1, 0, 0
            else:
                p, fl, s = 0, 1, 0
            if fl:
                failures.append((t.get("name", "?"), result, stdout,
                                 t.get("stderr", "") or ""))
            total["passed"] += p
            total["failed"] += fl
            total["skipped"] += s
            for suite in suites:
                st = per_suite.setdefault(suite, {"tests": 0, "skip": 0, "passed": 0,
                                                  "failed": 0, "skipped": 0})
                st["tests"] += 1
                st["skip"] += 1 if result == "SKIP" else 0
                st["passed"] += p
                st["failed"] += fl
                st["skipped"] += s
    for extra in args.extra:
        name, _, res = extra.partition("=")
        if res == "pass":
            total["passed"] += 1
        else:
            total["failed"] += 1
            problems.append(f"{name} failed")

    for suite in args.require_suite:
        st = per_suite.get(suite)
        if st is None or st["tests"] == 0:
            problems.append(f"suite '{suite}' ran no test")
        elif st["skip"] or st["skipped"]:
            problems.append(f"suite '{suite}' skipped tests: it must run here")

    # The run's log may be cut to its tail: name each failure and show the
    # end of what it printed, right above the totals.
    for name, result, out, err in failures:
        print(f"== failed: {name} ({result})")
        tail = (out + err).rstrip().splitlines()[-25:]
        for line in tail:
            print(f"   | {line[:200]}")
    for suite, st in sorted(per_suite.items()):
        print(f"suite {suite}: {st['tests']} tests, {st['passed']} passed, "
              f"{st['failed']} failed, {st['skipped']} skipped")
    for p in problems:
        print(f"problem: {p}")
    print(f"{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped")
    return 1 if problems or total["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
