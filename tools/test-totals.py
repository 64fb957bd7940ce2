#!/usr/bin/env python3
"""Sum the results of meson test logs (JSON lines) into one closing line.

TAP tests count each subtest; other tests count once. A suite named with
--require-suite must have run at least one test and skipped none. With
--require-tests SUITE=FILE, every test FILE names (one a line, # comments)
must have run in SUITE and passed, and SUITE must have run no test that FILE
does not name. Otherwise this exits 1 after printing the totals, naming each
test that is missing. The last line printed is 'N passed, N failed, N skipped'.
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


def read_required(path):
    """The test names a required-tests file lists, in order."""
    names = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


def test_name(entry):
    """The bare test name of a meson log entry ("vmbc:e2e / qmp-a" in meson 1.0 logs)."""
    name = entry.get("name", "")
    m = re.match(r"^[^:/ ]+:[^ ]+ / (.+)$", name)
    return m.group(1) if m else name


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--require-suite", action="append", default=[])
    ap.add_argument("--extra", action="append", default=[],
                    help="NAME=pass|fail: a check that is not a meson test")
    ap.add_argument("--require-tests", action="append", default=[], metavar="SUITE=FILE",
                    help="every test FILE lists must run in SUITE and pass")
    args = ap.parse_args()

    total = {"passed": 0, "failed": 0, "skipped": 0}
    per_suite = {}
    results = {}  # suite -> {test name: result}
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
                results.setdefault(suite, {})[test_name(t)] = (result, fl)
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

    for spec in args.require_tests:
        suite, _, path = spec.partition("=")
        try:
            required = read_required(path)
        except OSError as e:
            problems.append(f"cannot read the required {suite} tests from {path}: {e.strerror}")
            continue
        ran = results.get(suite, {})
        for name in required:
            if name not in ran:
                problems.append(f"{suite} test '{name}' did not run: not registered at meson "
                                f"setup (QEMU, the guest, libvirtd or Prometheus missing?) "
                                f"or not run; {path} requires it")
                total["failed"] += 1
            elif ran[name][0] == "SKIP":
                problems.append(f"{suite} test '{name}' was skipped: it must run here")
            elif ran[name][0] not in ("OK", "EXPECTEDFAIL") or ran[name][1]:
                problems.append(f"{suite} test '{name}' did not pass ({ran[name][0]})")
        for name in sorted(set(ran) - set(required)):
            problems.append(f"{suite} test '{name}' ran but is not listed in {path}")

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
