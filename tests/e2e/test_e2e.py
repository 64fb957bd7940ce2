#!/usr/bin/env python3
"""End-to-end tests: vmbcd with its QMP backend against real QEMU running a real
Linux guest with its real virtio-balloon driver and free page reporting.

Every number vmbcd reports is checked against what the host sees: the smaps Rss
of the host range QEMU itself says holds guest RAM (HMP gpa2hva on the test's own
monitor, see vmbcguest.Guest.guest_ram_mapping), not vmbcd's size heuristic.
Guests use QEMU's default private anonymous RAM, except case b (memfd backend).
Run one case: test_e2e.py CASE. Exit 77 (skip) only when QEMU or the guest cannot exist here.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import vmbcguest
from vmbctest import MIB, PAGE, QMP, QMPError, accepts, pages, wait_for

TICK = "250ms"
RECLAIM_TIMEOUT = "5s"


class World:
    """vmbcd plus real guests in one temp dir; everything stopped by PID at the end."""

    def __init__(self, name):
        self.dir = tempfile.mkdtemp(prefix=f"vmbc-e2e-{name}-")
        self.sock = os.path.join(self.dir, "vmbcd.sock")
        self.conf = os.path.join(self.dir, "vmbc.conf")
        self.log_path = os.path.join(self.dir, "vmbcd.log")
        self.guests = {}
        self.daemon = None
        self.log = None

    # guests ----------------------------------------------------------------------
    def guest(self, name, mem_mib=512, **kw):
        workdir = os.path.join(self.dir, name)
        os.mkdir(workdir)
        extra = ("-name", name) + tuple(kw.pop("extra_args", ()))
        g = vmbcguest.Guest(workdir, mem_mib=mem_mib, extra_args=extra, **kw)
        g.start()
        self.guests[name] = g
        return g

    # vmbcd -----------------------------------------------------------------------
    def start_daemon(self, extra="", smaps_interval="2s"):
        # The escalation (auto by default) may write memory.high of QEMU's cgroup: never the
        # host's. Unless a case builds its own tree, cgroup-root is an empty one here.
        if "cgroup-root" not in extra:
            empty = os.path.join(self.dir, "no-cgroup")
            os.makedirs(empty, exist_ok=True)
            extra = f"cgroup-root = {empty}\n{extra}"
        # Nor does it react to the memory pressure of the machine the tests run on.
        host = "" if "[host]" in extra else "[host]\npressure = off\n"
        with open(self.conf, "w") as f:
            f.write(f"""[daemon]
backends = qmp
qmp-sockets = {self.dir}/*/qmp.sock
control-socket = {self.sock}
state-dir = {self.dir}/state
metrics-listen = off
tick = {TICK}
reclaim-timeout = {RECLAIM_TIMEOUT}
rescan-interval = 250ms
smaps-interval = {smaps_interval}
stats-interval = 1
{extra}
{host}""")
        self.log = open(self.log_path, "a")
        self.daemon = subprocess.Popen([os.environ["VMBCD"], "--foreground", "--config",
                                        self.conf], stdout=self.log, stderr=subprocess.STDOUT)
        # the file appears at bind(), connections are taken from listen() on
        wait_for("the control socket", lambda: self.daemon.poll() is not None or
                 accepts(self.sock), timeout=20)
        assert self.daemon.poll() is None, self.logtext()
        for name in self.guests:
            self.wait_domain(name)
            # the first host-side sample has arrived
            wait_for(f"{name} sampled", lambda: self.res(name)["held"] > 0, timeout=10)

    def stop_daemon(self):
        self.daemon.send_signal(signal.SIGTERM)
        rc = self.daemon.wait(timeout=30)
        self.daemon = None
        self.log.close()
        assert rc == 0, f"vmbcd exited {rc}\n{self.logtext()}"

    def kill_daemon(self):
        """A crash: SIGKILL, nothing saved on the way out."""
        self.daemon.send_signal(signal.SIGKILL)
        self.daemon.wait(timeout=30)
        self.daemon = None
        self.log.close()
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def logtext(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def control(self):
        return QMP(self.sock, timeout=120)

    def domain(self, name):
        with self.control() as c:
            return c.execute("query-domain", {"domain": name})

    def res(self, name, resource="physpages"):
        return next(r for r in self.domain(name)["resources"] if r["resource"] == resource)

    def wait_domain(self, name, timeout=20):
        def present():
            with self.control() as c:
                return any(d["name"] == name for d in c.execute("query-domains")["domains"])
        wait_for(f"domain {name}", present, timeout)

    def cli(self, *args, timeout=120):
        return subprocess.run([os.environ["VMBC_CLI"], "-c", self.sock, *args],
                              capture_output=True, text=True, timeout=timeout)

    def host_held(self, name):
        """What the host holds of the guest's RAM, in pages: the smaps Rss of the range
        QEMU answers for gpa2hva (the test's oracle, independent of vmbcd's own search)."""
        return self.guests[name].rss_guest_ram() // PAGE

    def close(self):
        if self.daemon is not None:
            self.daemon.kill()
            self.daemon.wait()
        if self.log is not None and not self.log.closed:
            self.log.close()
        for g in self.guests.values():
            g.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            sys.stderr.write(f"--- vmbcd log ---\n{self.logtext()[-20000:]}\n")
        self.close()
        return False


def close_to(reported, host, what):
    """vmbcd samples statm every tick and re-derives the split every smaps interval: allow
    the drift of one interval (a few MiB) plus 5%."""
    tol = pages(16) + host // 20
    assert abs(reported - host) <= tol, f"{what}: vmbcd {reported} pages, host {host} pages"


def qemu_fpr(g):
    """free-page-reporting of the balloon device, read by the test from QEMU itself."""
    return g.qmp("qom-get", {"path": "/machine/peripheral/balloon0",
                             "property": "free-page-reporting"})


def settle_held(w, name, pred, what, timeout=20):
    return wait_for(what, lambda: pred(w.res(name)["held"]), timeout=timeout, interval=0.25)


def case_a_charge_uncharge():
    with World("a") as w:
        w.guest("ga", 1024)
        w.start_daemon()
        # the guest's balloon has free page reporting on (QEMU says so) and vmbcd knows it:
        # true, not null ("unknown") nor false
        assert qemu_fpr(w.guests["ga"]) is True
        d = w.domain("ga")
        assert d["free-page-reporting"] is True, d
        base = w.res("ga")["held"]
        close_to(base, w.host_held("ga"), "held at start")
        w.guests["ga"].fill(300)
        settle_held(w, "ga", lambda h: h - base >= pages(240), "held to rise by ~300 MiB")
        time.sleep(2.5)  # one smaps interval: the split is re-derived
        close_to(w.res("ga")["held"], w.host_held("ga"), "held after the fill")
        peak = w.res("ga")["held"]
        w.guests["ga"].free()
        t0 = time.monotonic()
        settle_held(w, "ga", lambda h: h <= base + pages(40), "held to fall back", timeout=10)
        print(f"uncharged after {time.monotonic() - t0:.1f}s")
        r = w.res("ga")
        assert r["maxheld"] >= peak - pages(2) and r["maxheld"] >= base + pages(240), r
        assert r["failcnt"] == 0, r
        w.stop_daemon()


def case_b_no_fpr_balloon():
    with World("b") as w:
        # guest RAM from a memfd backend here (the other cases keep QEMU's default anonymous
        # RAM): vmbcd must charge and reclaim a named shared mapping as well
        w.guest("gb", 1024, free_page_reporting=False, memory_backend="memfd")
        w.start_daemon()
        # free page reporting is off (QEMU says so) and vmbcd knows it: false, not null
        assert qemu_fpr(w.guests["gb"]) is False
        d = w.domain("gb")
        assert d["free-page-reporting"] is False, d
        base = w.res("gb")["held"]
        w.guests["gb"].fill(400)
        w.guests["gb"].free()
        time.sleep(5)
        held = w.res("gb")["held"]
        # nothing reported the pages free: they stay charged
        assert held >= base + pages(350), (base, held)
        close_to(held, w.host_held("gb"), "held without free page reporting")
        with w.control() as c:
            r = c.execute("set-limit", {"domain": "gb", "resource": "physpages",
                                        "barrier": "256M", "limit": "256M"})
            assert r["held"] <= pages(256), r
        time.sleep(2.5)
        held = w.res("gb")["held"]
        assert held <= pages(256), held
        assert w.host_held("gb") <= pages(256) + pages(8), w.host_held("gb")
        d = w.domain("gb")
        assert d["actual"] <= pages(256), d
        assert w.res("gb")["failcnt"] == 0
        w.stop_daemon()


def case_c_unreclaimable():
    """A limit that cannot be met: 300 MiB pinned in tmpfs and a guarantee (400M) above
    the limit (256M). The balloon goes to the guarantee and no further; what it took
    did not lower held (free page reporting had already taken the free pages off the
    host), so the failure is counted, the balloon is given back to where it was (less
    what lowered held), the escalation runs (memory-high, written in a tree under the
    test's cgroup-root, never the host's), and the retries give back again rather than
    ratchet the guest down. Not the guest's kernel under test: the guarantee leaves it
    room for its tmpfs."""
    from test_vmbcd import fake_cgroup
    with World("c") as w:
        g = w.guest("gc", 512)
        cg_root = os.path.join(w.dir, "cgroup")
        high = fake_cgroup(cg_root, g.proc.pid, "max", hybrid=True)
        w.start_daemon(f"cgroup-root = {cg_root}\nescalation = memory-high")
        g.fill(300)
        settle_held(w, "gc", lambda h: h >= pages(300), "held over 300 MiB")
        with w.control() as c:
            c.execute("set-guarantee", {"domain": "gc", "size": "400M"})
            try:
                c.execute("set-limit", {"domain": "gc", "resource": "physpages",
                                        "barrier": "256M", "limit": "256M"})
                raise AssertionError("set-limit succeeded below the guarantee")
            except QMPError as e:
                assert "limit 256M" in e.desc and "guarantee 400M" in e.desc, e.desc
            ev = c.wait_event("VMBC_RECLAIM_FAILED", timeout=30)
            assert ev["data"]["domain"] == "gc" and ev["data"]["reason"] == "guarantee", ev
            print("event:", ev["data"]["message"])
            assert "gave" in ev["data"]["message"], ev
            if high is not None:
                c.wait_event("VMBC_ESCALATED", timeout=10)
            def given_back():
                d = w.domain("gc")
                return d["actual"] if d["actual"] == d["target"] else None

            # most of what the balloon took is let out again (what it kept lowered held)
            back = wait_for("the balloon given back", given_back, timeout=10, interval=0.25)
            assert back >= pages(440), back
            f1 = w.res("gc")["failcnt"]
            assert f1 >= 1
            # the retries: each fails, counts, and gives back again: no ratchet
            for _ in range(2):
                ev = c.wait_event("VMBC_RECLAIM_FAILED", timeout=30)
                print("retry:", ev["data"]["message"])
                assert ev["data"]["reason"] == "guarantee", ev
                again = wait_for("the balloon given back again", given_back, timeout=10,
                                 interval=0.25)
                assert again >= back - pages(8), (again, back)
        assert w.res("gc")["failcnt"] >= f1 + 2
        # QEMU itself says where the balloon is
        assert g.balloon_actual() >= (back - pages(8)) * PAGE, g.balloon_actual()
        assert w.domain("gc")["actual"] >= pages(400)
        if high is not None:
            with open(high) as f:
                assert f.read().strip() != "max"
        assert w.daemon.poll() is None
        w.guests["gc"].free()
        with w.control() as c:
            c.execute("set-guarantee", {"domain": "gc", "size": "0"})
        settle_held(w, "gc", lambda h: h <= pages(256), "held under the limit", timeout=30)
        w.stop_daemon()


def case_h_limit_held():
    """A guest with free page reporting that holds more than its limit, in memory it can
    give: 250 MiB it uses in tmpfs and 250 MiB it freed in holes too small for free page
    reporting to hand back. With a limit of 512M, held is at or under the limit within
    reclaim-timeout, what the host holds agrees, and nothing failed."""
    with World("h") as w:
        g = w.guest("gh", 1024)
        w.start_daemon()
        g.run("mkdir -p /mnt/fill/a /mnt/fill/b; i=0; while [ $i -lt 250 ]; do "
              "dd if=/dev/zero of=/mnt/fill/a/$i bs=64k count=16 2>/dev/null; "
              "dd if=/dev/zero of=/mnt/fill/b/$i bs=64k count=16 2>/dev/null; "
              "i=$((i+1)); done; rm -rf /mnt/fill/b", timeout=300)
        settle_held(w, "gh", lambda h: h >= pages(560), "held over 560 MiB")
        time.sleep(3)  # free page reporting had its chance: the holes stay on the host
        assert w.res("gh")["held"] > pages(512), w.res("gh")
        with w.control() as c:
            t0 = time.monotonic()
            r = c.execute("set-limit", {"domain": "gh", "resource": "physpages",
                                        "barrier": "512M", "limit": "512M"})
            took = time.monotonic() - t0
            print(f"held {r['held'] * PAGE // MIB} MiB after {took:.1f}s")
            assert r["held"] <= pages(512), r
        assert took <= 5.0, took
        assert w.host_held("gh") <= pages(512) + pages(8), w.host_held("gh")
        # the balloon was sent to the limit (less the margin) and gets there
        assert w.domain("gh")["target"] <= pages(512), w.domain("gh")
        wait_for("the balloon at the limit", lambda: w.domain("gh")["actual"] <= pages(512),
                 timeout=5, interval=0.25)
        assert w.res("gh")["failcnt"] == 0
        # the guest lives on, its files intact
        assert "250" in g.run("ls /mnt/fill/a | wc -l")
        w.stop_daemon()


def case_d_setlimit_sync():
    with World("d") as w:
        w.guest("gd", 1024, free_page_reporting=False)
        w.start_daemon()
        w.guests["gd"].fill(300)
        w.guests["gd"].free()
        r = w.cli("setlimit", "gd", "physpages", "300M")
        assert r.returncode == 0, (r.stdout, r.stderr)
        assert w.res("gd")["held"] <= pages(300)
        # what an operator reads: the units given back, sizes people read, names
        assert re.fullmatch(r"gd physpages: barrier 300M, limit 300M \(held [0-9.]+[KMG], "
                            r"failcnt \d+\)\n", r.stdout), r.stdout
        r = w.cli("list")
        assert r.returncode == 0, r.stderr
        row = [ln.split() for ln in r.stdout.splitlines()[1:] if ln.split()[1:2] == ["gd"]]
        assert len(row) == 1 and row[0][6] == "300M", r.stdout
        assert re.fullmatch(r"[0-9.]+[KMG]", row[0][5]), r.stdout
        r = w.cli("ubc")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "Version: 2.5" and lines[1].split()[-1] == "name", r.stdout
        mine = [ln.split() for ln in lines[2:] if ln.split()[0].endswith(":") and
                ln.split()[-1] == "gd"]
        assert len(mine) == 1 and mine[0][0] == f"{w.domain('gd')['id']}:", r.stdout
        assert mine[0][1] == "physpages" and int(mine[0][5]) == pages(300), r.stdout
        # the guarantee blocks: a precise error naming it
        r = w.cli("setlimit", "gd", "physpages", "unlimited")
        assert r.returncode == 0, r.stderr
        w.guests["gd"].fill(300)
        r = w.cli("guarantee", "gd", "500M")
        assert r.returncode == 0, r.stderr
        r = w.cli("setlimit", "gd", "physpages", "256M")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "guarantee 500M" in r.stderr, r.stderr
        assert w.domain("gd")["actual"] >= pages(500)
        w.stop_daemon()


def case_e_no_balloon_driver():
    with World("e") as w:
        w.guest("ge", 512, balloon_driver=False)
        w.start_daemon()
        w.guests["ge"].fill(200)
        with w.control() as c:
            try:
                c.execute("set-limit", {"domain": "ge", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"})
                raise AssertionError("set-limit succeeded without a balloon driver")
            except QMPError as e:
                assert "balloon driver" in e.desc, e.desc
        d = w.domain("ge")
        assert d["balloon"] == "no-driver", d
        assert w.res("ge")["failcnt"] >= 1
        r = w.cli("dominfo", "ge")
        assert r.returncode == 0 and "no-driver" in r.stdout, r.stdout
        # the default escalation (auto) could not hold it on this host either: it says why
        # (no cgroup v2 memory.high for its QEMU here: cgroup-root is an empty tree)
        wait_for("the reason nothing holds it", lambda: "nothing holds it" in w.logtext(),
                 timeout=10)
        assert "memory.high" in w.logtext().split("nothing holds it")[1], w.logtext()
        assert w.daemon.poll() is None
        w.stop_daemon()


def case_k_no_driver_paused():
    """A real guest without a balloon driver over its limit, with escalation = pause:
    the reclaim fails, QEMU pauses the guest (its own query-status says so), and its
    host memory is held: the guest-RAM mapping's Rss does not grow while it is paused."""
    with World("k") as w:
        g = w.guest("gk", 512, balloon_driver=False)
        w.start_daemon(extra="escalation = pause")
        g.fill(200)
        with w.control() as c:
            try:
                c.execute("set-limit", {"domain": "gk", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"})
                raise AssertionError("set-limit succeeded without a balloon driver")
            except QMPError as e:
                assert "balloon driver" in e.desc, e.desc
        wait_for("QEMU to pause the guest",
                 lambda: g.qmp("query-status")["status"] == "paused", timeout=20)
        assert w.res("gk")["failcnt"] >= 1
        rss0 = g.rss_guest_ram()
        time.sleep(3)
        rss1 = g.rss_guest_ram()
        assert g.qmp("query-status")["status"] == "paused"
        assert rss1 <= rss0 + MIB, (rss0, rss1)
        print(f"paused; guest RAM resident {rss0 // MIB} MiB, then {rss1 // MIB} MiB")
        w.stop_daemon()


def case_f_deflate_on_pressure():
    with World("f") as w:
        w.guest("gf", 1024)
        w.start_daemon()
        with w.control() as c:
            c.execute("set-limit", {"domain": "gf", "resource": "physpages",
                                    "barrier": "900M", "limit": "900M"})
            c.execute("reclaim", {"domain": "gf", "size": "700M"})
        small = w.domain("gf")["actual"]
        assert small <= pages(330), small
        # the guest now needs memory: it fills most of what it has left
        avail_kib = w.guests["gf"].meminfo()["MemAvailable"]
        w.guests["gf"].fill(max(avail_kib // 1024 - 30, 50))
        wait_for("the balloon to deflate", lambda: w.domain("gf")["actual"] > small + pages(100),
                 timeout=30, interval=0.25)
        grown = w.domain("gf")["actual"]
        assert grown <= pages(900), grown
        w.stop_daemon()


def case_g_two_guests():
    with World("g") as w:
        w.guest("g1", 512, free_page_reporting=False)
        w.guest("g2", 512)
        w.start_daemon()
        w.guests["g1"].fill(350)
        w.guests["g1"].free()
        w.guests["g2"].fill(64)
        with w.control() as c:
            for name in ("g1", "g2"):
                c.execute("set-limit", {"domain": name, "resource": "physpages",
                                        "barrier": "256M", "limit": "256M"})
        # The contract is on what the host holds. The first balloon step may stop a little
        # above the limit when the guest's word paces it (a gentler first step), so the
        # balloon's size is not what is checked.
        wait_for("g1 to be held within its limit",
                 lambda: w.res("g1")["held"] <= pages(256) and
                 w.domain("g1")["reclaims"]["done"] >= 1, timeout=30, interval=0.25)
        assert w.host_held("g1") <= pages(256) + pages(8), w.host_held("g1")
        d1, d2 = w.domain("g1"), w.domain("g2")
        assert d1["actual"] < pages(512), d1
        # the other guest was left alone
        assert d2["actual"] == pages(512), d2
        assert d2["reclaims"]["started"] == 0, d2
        assert d1["reclaims"]["done"] >= 1, d1
        w.stop_daemon()


def case_i_restart_gives_back():
    """vmbcd inflated a 1 GiB guest's balloon for a limit and was killed (kill -9);
    the restarted vmbcd knows the balloon for its own, so removing the limit gives
    the guest its memory back, and a fast 600 MiB write then succeeds in a guest
    that lives on (it used to end in "System is deadlocked on memory")."""
    with World("i") as w:
        g = w.guest("gh", 1024, free_page_reporting=False)
        w.start_daemon()
        # freed in the guest but still resident on the host: held over the limit
        g.fill(500)
        g.free()
        r = w.cli("setlimit", "gh", "physpages", "400M")
        assert r.returncode == 0, (r.stdout, r.stderr)
        d = wait_for("the balloon where vmbcd sent it",
                     lambda: (lambda d: d if d["target"] >= 0 and
                              abs(d["actual"] - d["target"]) <= pages(1) else None)(
                                  w.domain("gh")), timeout=30, interval=0.25)
        # how far depends on what the guest said it can spare; well below its size, anyway
        assert d["actual"] <= pages(1024 - 128), d
        assert d["balloon-owner"] == "vmbcd", d
        assert d["balloon-set"]["reason"] == "limit", d
        ident = d["id"]

        def saved():
            try:
                with open(os.path.join(w.dir, "state", "state.json")) as f:
                    return json.load(f)["domains"].get("gh", {})
            except FileNotFoundError:
                return {}

        # vmbcd may still move it (a deflate step after the reclaim, up to the limit): kill it
        # once what it set has stayed put and is in the state file. A kill within the second
        # after a change can leave the file a step behind, and the balloon is then not known
        # as vmbcd's (vmbcd(8), "What survives a restart").
        def settled():
            d0 = w.domain("gh")
            if d0["target"] < 0 or abs(d0["actual"] - d0["target"]) > pages(1) or \
                    saved().get("balloon-set", {}).get("target") != d0["target"]:
                return None
            time.sleep(1.5)
            d1 = w.domain("gh")
            ok = d1["target"] == d0["target"] and d1["actual"] == d0["actual"] and \
                saved().get("balloon-set", {}).get("target") == d1["target"]
            return d1 if ok else None

        d = wait_for("vmbcd's balloon settled and in the state file", settled, timeout=20,
                     interval=0.25)
        assert d["actual"] <= pages(1024 - 128), d
        small = g.balloon_actual()
        assert small <= (1024 - 128) * MIB, small
        w.kill_daemon()
        w.start_daemon()
        d = wait_for("the balloon vmbcd's again",
                     lambda: (lambda d: d if d["balloon-owner"] == "vmbcd" else None)(
                         w.domain("gh")), timeout=10, interval=0.25)
        assert d["id"] == ident, (ident, d)
        assert g.balloon_actual() == small  # adoption moved nothing
        r = w.cli("setlimit", "gh", "physpages", "unlimited")
        assert r.returncode == 0, (r.stdout, r.stderr)
        took = g.wait_balloon(1024 * MIB, timeout=30)
        assert took is not None, f"balloon still at {g.balloon_actual() >> 20} MiB"
        print(f"balloon back at 1024 MiB {took:.1f}s after the limit was removed")
        g.fill(600)
        assert "alive" in g.run("echo alive"), g.console_tail(2000)
        assert "Kernel panic" not in g.console_tail(20000), g.console_tail(2000)
        assert g.alive()
        g.free()


# held against the guest-RAM mapping's Rss (case h): the relative bound, and an absolute floor
# for values where 3 % is less than the floor (a guest holding under ~33 MiB; never seen with
# this 1 GiB guest, which holds 100+ MiB after boot). The floor is one MiB: the sampler re-reads
# the mapping once statm moves by 256 KiB, and each of the harness's smaps reads (~10 ms of
# Python) sees a guest that moves meanwhile.
FIDELITY_REL = 0.03
FIDELITY_FLOOR = pages(1)


def fidelity_sample(w, name):
    """held, and the guest mapping's Rss before and after the query that read it: (lo, hi,
    held). The answer carries the sample of vmbcd's last tick, which may be up to a tick old,
    so the Rss readings start more than a tick (plus the tick's own run) before the query and
    go on every 50 ms until it: the sample behind held was taken between the first reading
    and the last, and the guest's Rss then lay between their minimum and maximum, as long as
    it moves one way within the bracket (a fill or a free, not both in half a second)."""
    rss = [w.host_held(name)]
    until = time.monotonic() + 0.5  # the tick is 250 ms
    while time.monotonic() < until:
        time.sleep(0.05)
        rss.append(w.host_held(name))
    held = w.res(name)["held"]
    rss.append(w.host_held(name))
    return min(rss), max(rss), held


def case_j_fidelity():
    """held within 3 % of the guest-RAM mapping's Rss at every sample, with the default
    smaps-interval (5 min: the point is fidelity without frequent smaps reads): adopted as
    QEMU starts (its own memory grows most while the guest boots), through a 700 MiB fill and
    its free with free page reporting, and for 60 s after."""
    with World("j") as w:
        # vmbcd first, so that it adopts QEMU as it starts and splits with smaps before the
        # guest boots: TCG's code buffer and QEMU's heap grow by tens of MiB meanwhile, which
        # the statm estimate alone charged to the guest until the next smaps read
        # every VM sampled every tick (growth-ceiling 0): each sample's fidelity is what is
        # checked here, against a bracket of one tick; how seldom a VM far from its bounds is
        # sampled is test-schedule.c's
        w.start_daemon(smaps_interval="5m", extra="growth-ceiling = 0\n")
        g = w.guest("gh", 1024)
        w.wait_domain("gh")
        wait_for("gh sampled", lambda: w.res("gh")["held"] > 0, timeout=10)
        assert w.domain("gh")["free-page-reporting"] is True
        w.host_held("gh")  # asks QEMU where guest RAM is once, before the thread shares it
        bad = []
        worst = [0.0]
        samples = []
        phase = ["adopted"]
        stop = threading.Event()

        def watch():
            while not stop.is_set():
                lo, hi, held = fidelity_sample(w, "gh")
                samples.append((phase[0], lo, hi, held))
                low = lo * (1 - FIDELITY_REL) - FIDELITY_FLOOR
                high = hi * (1 + FIDELITY_REL) + FIDELITY_FLOOR
                off = max(lo - held, held - hi, 0) / max(lo, 1)
                worst[0] = max(worst[0], off)
                if not low <= held <= high:
                    bad.append(f"{phase[0]}: held {held} pages, the guest mapping's Rss "
                               f"{lo}..{hi} ({100 * off:.1f} % out)")

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        try:
            time.sleep(5)
            phase[0] = "filling"
            g.fill(700)
            phase[0] = "filled"
            time.sleep(3)
            phase[0] = "freeing"
            g.free()
            t_free = time.monotonic()
            phase[0] = "freed"
            while time.monotonic() - t_free < 60:
                time.sleep(1)
                assert t.is_alive(), "the sampling thread died"
        finally:
            stop.set()
            t.join(timeout=30)
        print(f"{len(samples)} samples; held out of the guest mapping's Rss bracket by at "
              f"most {100 * worst[0]:.2f} %")
        for ph in ("adopted", "filled", "freed"):
            last = [x for x in samples if x[0] == ph][-1:]
            for _, lo, hi, held in last:
                print(f"  last '{ph}' sample: held {held}, Rss {lo}..{hi} pages")
        assert len(samples) >= 60, len(samples)
        # the guest really gave the 700 MiB back: the bound was kept at the small values
        assert samples[-1][2] <= pages(400), samples[-1]
        assert not bad, "\n".join(bad[:20])
        w.stop_daemon()


CASES = {n[len("case_"):]: f for n, f in globals().items() if n.startswith("case_")}

if __name__ == "__main__":
    vmbcguest.exit_on_sigterm()
    try:
        vmbcguest.check_available()
    except vmbcguest.GuestUnavailable as e:
        print(f"SKIP: {e}")
        sys.exit(77)
    name = sys.argv[1]
    CASES[name]()
    print(f"PASS: {name}")
