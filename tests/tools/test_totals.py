#!/usr/bin/env python3
"""tools/test-totals.py: the totals line, and the guard that every required e2e test ran and
passed (tests/e2e/required-tests.txt). Run against synthetic meson logs in a temp dir."""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOTALS = os.path.join(ROOT, "tools", "test-totals.py")
REQUIRED = os.path.join(ROOT, "tests", "e2e", "required-tests.txt")


def required_names():
    names = []
    with open(REQUIRED) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


def run(tmp, entries, *extra):
    log = os.path.join(tmp, "e2e.json")
    with open(log, "w") as f:
        for e in entries:
            f.write(json.dumps(e) + "\n")
    r = subprocess.run([sys.executable, TOTALS, "--require-suite", "e2e",
                        "--require-tests", f"e2e={REQUIRED}", *extra, log],
                       capture_output=True, text=True)
    return r.returncode, r.stdout


def entry(name, result="OK", stdout=""):
    return {"name": f"vmbc:e2e / {name}", "result": result, "stdout": stdout}


def main():
    names = required_names()
    assert "guest-boot" in names and "qmp-a_charge_uncharge" in names, names
    assert any(n.startswith("libvirt-") for n in names), names
    assert "metrics_prometheus_scrape" in names, names
    with tempfile.TemporaryDirectory(prefix="vmbc-totals-") as tmp:
        # all of them ran and passed
        rc, out = run(tmp, [entry(n) for n in names])
        assert rc == 0, out
        assert out.splitlines()[-1] == f"{len(names)} passed, 0 failed, 0 skipped", out

        # QEMU missing at setup: only the fake-qemu scrape ran; each missing test is named
        rc, out = run(tmp, [entry("metrics_prometheus_scrape")])
        assert rc == 1, out
        for n in names:
            if n != "metrics_prometheus_scrape":
                assert f"e2e test '{n}' did not run" in out, (n, out)
        assert out.splitlines()[-1] == f"1 passed, {len(names) - 1} failed, 0 skipped", out

        # one skipped, one failed
        es = [entry(n) for n in names]
        es[0]["result"] = "SKIP"
        es[1]["result"] = "FAIL"
        rc, out = run(tmp, es)
        assert rc == 1, out
        assert f"e2e test '{names[0]}' was skipped" in out, out
        assert f"e2e test '{names[1]}' did not pass (FAIL)" in out, out
        assert f"== failed: vmbc:e2e / {names[1]} (FAIL)" in out, out

        # a test the list does not know: the list must be kept up to date
        rc, out = run(tmp, [entry(n) for n in names] + [entry("qmp-z_new")])
        assert rc == 1, out
        assert "e2e test 'qmp-z_new' ran but is not listed" in out, out

        # TAP subtests count one by one
        tap = {"name": "vmbc:unit / engine", "result": "FAIL", "protocol": "tap",
               "stdout": "1..3\nok 1 /a\nnot ok 2 /b\nok 3 /c # SKIP no cgroup\n"}
        rc, out = run(tmp, [entry(n) for n in names] + [tap])
        assert rc == 1, out
        assert out.splitlines()[-1] == f"{len(names) + 1} passed, 1 failed, 1 skipped", out

        # checks that are not meson tests
        rc, out = run(tmp, [entry(n) for n in names], "--extra", "fuzz=pass",
                      "--extra", "format=fail")
        assert rc == 1 and "problem: format failed" in out, out
        assert out.splitlines()[-1] == f"{len(names) + 1} passed, 1 failed, 0 skipped", out
    print("PASS")


if __name__ == "__main__":
    main()
