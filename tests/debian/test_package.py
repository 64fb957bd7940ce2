#!/usr/bin/env python3
"""The Debian package: `dpkg-buildpackage -us -uc -b` in a copy of the source tree
(in a temporary directory, removed at the end), then the .deb's contents and
control data checked with dpkg-deb -c / -I / -x, its programs run from the
extracted tree, and lintian over the result with no error. The package is never
installed: nothing outside the temporary directory is touched.

Usage: test_package.py SOURCE_ROOT
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

SKIP = 77

# path in the package -> what it is
EXPECTED = {
    "./usr/sbin/vmbcd": "the daemon",
    "./usr/bin/vmbc": "the command line",
    "./lib/systemd/system/vmbcd.service": "the systemd unit",
    "./usr/lib/tmpfiles.d/vmbc.conf": "tmpfiles.d (/run/vmbc/qmp)",
    "./etc/vmbc/vmbc.conf": "the configuration",
    "./usr/share/man/man1/vmbc.1.gz": "vmbc(1)",
    "./usr/share/man/man5/vmbc.conf.5.gz": "vmbc.conf(5)",
    "./usr/share/man/man8/vmbcd.8.gz": "vmbcd(8)",
    "./usr/share/vmbc/prometheus/prometheus-vmbc.yml": "the Prometheus scrape example",
    "./usr/share/vmbc/prometheus/vmbc-alerts.yml": "the Prometheus alerting rules",
    "./usr/share/vmbc/grafana/vmbc-dashboard.json": "the Grafana dashboard",
    "./usr/share/doc/vmbc/copyright": "the copyright file",
}


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def copy_tree(src, dst):
    """The files git knows (tracked, or new and not ignored), else the tree without
    build directories."""
    r = run(["git", "-C", src, "ls-files", "-z", "--cached", "--others", "--exclude-standard"])
    if r.returncode == 0 and r.stdout:
        for rel in filter(None, r.stdout.split("\0")):
            s = os.path.join(src, rel)
            if not os.path.lexists(s):
                continue  # deleted, not yet committed
            d = os.path.join(dst, rel)
            os.makedirs(os.path.dirname(d), exist_ok=True)
            shutil.copy2(s, d, follow_symlinks=False)
        return
    shutil.copytree(src, dst, symlinks=True,
                    ignore=shutil.ignore_patterns("build*", "_build*", ".git", "obj-*"))


def main():
    src = sys.argv[1]
    for tool in ("dpkg-buildpackage", "dpkg-deb", "lintian", "fakeroot"):
        if shutil.which(tool) is None:
            print(f"{tool} not found (tools/bootstrap installs it)")
            return SKIP
    top = tempfile.mkdtemp(prefix="vmbc-deb-")
    try:
        tree = os.path.join(top, "vmbc")
        copy_tree(src, tree)
        env = dict(os.environ)
        # the unit suite runs in tools/test already; here the package is what is tested
        env["DEB_BUILD_OPTIONS"] = "nocheck parallel=2"
        for k in [k for k in env if k.startswith("MESON")]:
            del env[k]
        r = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=tree, env=env)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-6000:] + r.stderr[-4000:])
            raise AssertionError(f"dpkg-buildpackage exited with {r.returncode}")
        debs = [f for f in os.listdir(top) if re.fullmatch(r"vmbc_[^_]+_[a-z0-9]+\.deb", f)]
        assert len(debs) == 1, os.listdir(top)
        deb = os.path.join(top, debs[0])
        changes = [f for f in os.listdir(top) if f.endswith(".changes")]
        assert len(changes) == 1, os.listdir(top)

        # contents
        r = run(["dpkg-deb", "-c", deb])
        assert r.returncode == 0, r.stderr
        listed = {}
        for line in r.stdout.splitlines():
            f = line.split()
            listed[f[5]] = (f[0], f[1])
        for path, what in EXPECTED.items():
            assert path in listed, f"{what} ({path}) missing from {debs[0]}:\n{r.stdout}"
        for exe in ("./usr/sbin/vmbcd", "./usr/bin/vmbc"):
            assert listed[exe][0].startswith("-rwxr-xr-x"), (exe, listed[exe])
        for path, (mode, owner) in listed.items():
            assert owner == "root/root", (path, owner)
        assert not any(p.startswith("./usr/local") for p in listed), sorted(listed)

        # control data: the conffile, the maintainer scripts that enable the unit and
        # create the tmpfiles, and the libraries it needs
        r = run(["dpkg-deb", "-I", deb, "conffiles"])
        assert r.returncode == 0 and r.stdout.split() == ["/etc/vmbc/vmbc.conf"], \
            (r.stdout, r.stderr)
        r = run(["dpkg-deb", "-I", deb, "control"])
        control = r.stdout
        assert re.search(r"^Package: vmbc$", control, re.M), control
        depends = re.search(r"^Depends: (.*)$", control, re.M).group(1)
        for lib in ("libglib2.0-0", "libsoup-3.0-0", "libsystemd0", "libvirt0",
                    "libjson-glib-1.0-0"):
            assert lib in depends, (lib, depends)
        r = run(["dpkg-deb", "-I", deb, "postinst"])
        postinst = r.stdout
        assert "deb-systemd-helper" in postinst and "vmbcd.service" in postinst, postinst
        assert "systemd-tmpfiles" in postinst and "vmbc.conf" in postinst, postinst

        # the files themselves: the unit is a notify service with a watchdog pointing at
        # the packaged vmbcd, and both programs run
        root = os.path.join(top, "root")
        r = run(["dpkg-deb", "-x", deb, root])
        assert r.returncode == 0, r.stderr
        with open(os.path.join(root, "lib/systemd/system/vmbcd.service")) as f:
            unit = f.read()
        assert "\nType=notify\n" in unit and "\nWatchdogSec=" in unit, unit
        assert "\nExecStart=/usr/sbin/vmbcd --foreground\n" in unit, unit
        with open(os.path.join(root, "etc/vmbc/vmbc.conf")) as f:
            assert "[daemon]" in f.read()
        for exe, name in (("usr/sbin/vmbcd", "vmbcd"), ("usr/bin/vmbc", "vmbc")):
            r = run([os.path.join(root, exe), "--version"])
            assert r.returncode == 0 and r.stdout.startswith(name + " "), (exe, r.stdout,
                                                                           r.stderr)
        r = run([os.path.join(root, "usr/sbin/vmbcd"), "--check-config", "--config",
                 os.path.join(root, "etc/vmbc/vmbc.conf")])
        assert r.returncode == 0, (r.stdout, r.stderr)

        # lintian: no error (warnings and notes are printed for whoever reads the log)
        r = run(["lintian", "--tag-display-limit", "0", os.path.join(top, changes[0])])
        print(r.stdout.strip() or "lintian: nothing to say")
        errors = [ln for ln in r.stdout.splitlines() if ln.startswith("E:")]
        assert not errors, "\n".join(errors)
        assert r.returncode in (0, 1), (r.returncode, r.stderr)  # 1: warnings only
        print(f"{debs[0]}: {len(listed)} entries, every expected file present")
        return 0
    finally:
        shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
