#!/usr/bin/env python3
"""The systemd unit as installed: `meson install` into a temporary DESTDIR, then
`systemd-analyze verify` of vmbcd.service in that root (its ExecStart, its
man pages, the units it names), the settings that make vmbcd a notify
service with a watchdog, and a system call filter that lets io_uring through. Nothing outside the temporary directory is touched.

Usage: test_unit_file.py MESON BUILDDIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def syscalls(analyze, group, seen=None):
    """The system calls of a SystemCallFilter group, the groups it names expanded."""
    seen = set() if seen is None else seen
    if group in seen:
        return set()
    seen.add(group)
    r = subprocess.run([analyze, "syscall-filter", group], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    names = set()
    for line in r.stdout.splitlines()[1:]:
        item = line.strip()
        if item.startswith("@"):
            names |= syscalls(analyze, item, seen)
        elif item and not item.startswith("#"):
            names.add(item)
    return names


def check_io_uring_allowed(analyze, settings):
    """vmbcd reads a tick's statm through io_uring: the unit's SystemCallFilter must let it
    (it falls back to pread() where it cannot, but should not have to here)."""
    allowed, denied = set(), set()
    for value in settings.get("SystemCallFilter", []):
        names = set()
        for item in value.lstrip("~").split():
            names |= syscalls(analyze, item) if item.startswith("@") else {item.split(":")[0]}
        (denied if value.startswith("~") else allowed).update(names)
    for call in ("io_uring_setup", "io_uring_enter"):
        assert not allowed or call in allowed, f"SystemCallFilter does not allow {call}"
        assert call not in denied, f"SystemCallFilter denies {call}"
    print("SystemCallFilter allows io_uring_setup and io_uring_enter")


def main():
    meson, builddir = sys.argv[1], sys.argv[2]
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("systemd-analyze not found")
        return SKIP
    root = tempfile.mkdtemp(prefix="vmbc-unit-")
    try:
        r = subprocess.run([meson, "install", "-C", builddir, "--destdir", root,
                            "--no-rebuild", "--quiet"], capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        units = [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs
                 if f == "vmbcd.service"]
        assert len(units) == 1, units
        unit = units[0]
        with open(unit) as f:
            text = f.read()
        settings = {}
        for line in text.splitlines():
            m = re.match(r"^([A-Za-z]+)=(.*)$", line)
            if m:
                settings.setdefault(m.group(1), []).append(m.group(2))
        assert settings.get("Type") == ["notify"], settings.get("Type")
        assert settings.get("NotifyAccess") == ["main"], settings.get("NotifyAccess")
        assert re.fullmatch(r"\d+s", settings.get("WatchdogSec", [""])[0]), settings
        assert settings.get("Restart") == ["on-failure"], settings.get("Restart")
        check_io_uring_allowed(analyze, settings)
        exec_start = settings["ExecStart"][0].split()[0]
        binary = root + exec_start
        assert os.access(binary, os.X_OK), f"ExecStart {exec_start} not installed"

        # systemd-analyze in the DESTDIR root: the units vmbcd.service names come from
        # this system's own (copied, never changed), /bin/kill for ExecReload too
        os.makedirs(os.path.join(root, "usr/lib/systemd"), exist_ok=True)
        shutil.copytree("/usr/lib/systemd/system", os.path.join(root, "usr/lib/systemd/system"),
                        symlinks=True, dirs_exist_ok=True)
        os.makedirs(os.path.join(root, "usr/bin"), exist_ok=True)
        shutil.copy2(shutil.which("kill") or "/usr/bin/kill", os.path.join(root, "usr/bin/kill"))
        if not os.path.lexists(os.path.join(root, "bin")):
            os.symlink("usr/bin", os.path.join(root, "bin"))
        mans = [d for d, _, fs in os.walk(root) if d.endswith("/man1") and "vmbc.1" in fs]
        env = dict(os.environ)
        if mans:  # Documentation= is checked against the installed pages
            env["MANPATH"] = os.path.dirname(mans[0])
        else:
            print("man pages not built: Documentation= not checked")
        r = subprocess.run([analyze, "verify", f"--root={root}",
                            f"--man={'yes' if mans else 'no'}", "vmbcd.service"],
                           capture_output=True, text=True, env=env)
        out = (r.stdout + r.stderr).strip()
        print(f"systemd-analyze verify: exit {r.returncode}{': ' + out if out else ''}")
        # a setting systemd ignores is only a message: any message fails the test
        assert r.returncode == 0 and out == "", out
        print(f"{unit[len(root):]}: verified (Type=notify, WatchdogSec={settings['WatchdogSec'][0]})")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
