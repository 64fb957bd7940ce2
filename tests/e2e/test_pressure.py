#!/usr/bin/env python3
"""End-to-end tests of the host's pressure controller: vmbcd keeps a real memory cgroup that
holds real QEMU guests under its limit by ballooning, takes from the idle, low-shares guest
first, and gives back when the pressure is gone.

The test makes a cgroup v1 memory cgroup (or a v2 one where the host has the memory controller
on v2) for the guests' QEMU processes, with a limit below what the guests will touch, and
removes it at the end (the processes moved back first), also when the test fails. Without
vmbcd the busy guest's growth would have the kernel OOM-kill a QEMU in it (no swap here).

Run one case: test_pressure.py CASE. Exit 77 (skip) only when QEMU, the guest, or a cgroup
memory controller that this test may use is not there.
"""
import os
import re
import sys
import time

import vmbcguest
from test_e2e import World
from vmbctest import MIB, PAGE, pages, wait_for

V1 = "/sys/fs/cgroup/memory"
V2 = "/sys/fs/cgroup"


class Cgroup:
    """A memory cgroup of the test's own, v1 or v2; close() moves whatever is left in it to
    where the test process is, then removes it."""

    def __init__(self):
        self.home = None
        if os.path.exists(os.path.join(V1, "memory.limit_in_bytes")):
            self.version = 1
            self.path = os.path.join(V1, f"vmbc-e2e-{os.getpid()}")
            for line in open("/proc/self/cgroup"):
                num, ctrls, path = line.rstrip("\n").split(":", 2)
                if "memory" in ctrls.split(","):
                    self.home = os.path.join(V1, path.lstrip("/"))
        elif "memory" in open(os.path.join(V2, "cgroup.controllers")).read().split():
            self.version = 2
            self.path = os.path.join(V2, f"vmbc-e2e-{os.getpid()}")
            for line in open("/proc/self/cgroup"):
                if line.startswith("0::"):
                    self.home = os.path.join(V2, line[3:].strip().lstrip("/"))
        else:
            raise vmbcguest.GuestUnavailable("no cgroup memory controller")
        if self.home is None or not os.access(os.path.dirname(self.path), os.W_OK):
            raise vmbcguest.GuestUnavailable(f"cannot make a cgroup next to {self.path}")
        os.mkdir(self.path)

    def file(self, name):
        return os.path.join(self.path, name)

    def write(self, name, value):
        with open(self.file(name), "w") as f:
            f.write(str(value))

    def read(self, name):
        with open(self.file(name)) as f:
            return f.read()

    def usage(self):
        return int(self.read("memory.usage_in_bytes" if self.version == 1 else "memory.current"))

    def set_limit(self, nbytes):
        self.write("memory.limit_in_bytes" if self.version == 1 else "memory.max", nbytes)

    def oom_kills(self):
        """OOM kills in the cgroup (v1 memory.oom_control's oom_kill, v2 memory.events)."""
        text = self.read("memory.oom_control" if self.version == 1 else "memory.events")
        m = re.search(r"^oom_kill (\d+)", text, re.M)
        return int(m.group(1)) if m else 0

    def enter(self, pid):
        self.write("cgroup.procs", pid)

    def close(self):
        if not os.path.isdir(self.path):
            return
        for pid in self.read("cgroup.procs").split():
            try:
                with open(os.path.join(self.home, "cgroup.procs"), "w") as f:
                    f.write(pid)
            except OSError:
                pass  # it exited meanwhile
        for _ in range(50):
            try:
                os.rmdir(self.path)
                return
            except OSError:
                time.sleep(0.1)
        os.rmdir(self.path)


def host_events(w):
    """The host controller's events from vmbcd's log, in order: (kind, domain, line)."""
    out = []
    for line in w.logtext().splitlines():
        m = re.search(r"host: pressure \(\w+\).*taking \S+ from '([^']+)'", line)
        if m:
            out.append(("take", m.group(1), line))
        m = re.search(r"host: no pressure .*giving \S+ back to '([^']+)'", line)
        if m:
            out.append(("give", m.group(1), line))
    return out


def actual(w, name):
    return w.domain(name)["actual"]


def case_keeps_cgroup_under_limit():
    """Two 512 MiB guests in a cgroup limited below what they touch: 'idle' (shares 500, 300
    MiB it no longer uses still on the host, as without free page reporting) and 'busy'
    (shares 2000), which then writes 320 MiB of random data and keeps rewriting part of it.
    vmbcd keeps the cgroup under its limit by taking from 'idle' first, no QEMU is OOM-killed,
    and once 'busy' stops and frees its memory, 'idle' gets its memory back within seconds."""
    cg = Cgroup()
    try:
        with World("pressure") as w:
            # the guests' QEMU are born in the cgroup: everything they map is charged there
            cg.enter(os.getpid())
            try:
                idle = w.guest("idle", 512, free_page_reporting=False)
                busy = w.guest("busy", 512)
            finally:
                with open(os.path.join(cg.home, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            qemu = {n: g.pid for n, g in w.guests.items()}
            assert set(cg.read("cgroup.procs").split()) == {str(p) for p in qemu.values()}
            idle.fill(300)
            idle.free()
            base = cg.usage()
            limit = base + 200 * MIB
            cg.set_limit(limit)
            print(f"cgroup {cg.path}: usage {base // MIB} MiB, limit {limit // MIB} MiB")
            w.start_daemon(f"""idle-interval = 1s
[domain idle]
shares = 500
[domain busy]
shares = 2000
[host]
cgroup = {cg.path}
interval = 500ms
giveback-delay = 2s
# the host's PSI counts every task on the machine: only a stall this test's cgroup alone
# could cause (its guests at the limit) is to delay the give-back
psi-target = 20
""")
            # both measured by the host (QEMU's dirty-rate sampling), idle as idle
            wait_for("idle memory measured by the host", lambda: all(
                w.domain(n)["idle"]["source"] == "host" for n in qemu), timeout=20)
            info = w.cli("dominfo", "host")
            assert info.returncode == 0, info.stderr
            assert f"from cgroup-v{cg.version}" in info.stdout, info.stdout
            assert cg.path in info.stdout, info.stdout
            dom = w.cli("dominfo", "idle")
            assert "measured by the host" in dom.stdout, dom.stdout
            assert w.domain("idle")["idle"]["fraction"] >= 0.75, w.domain("idle")["idle"]
            full = actual(w, "busy")

            # busy: 320 MiB of random data, 32 MiB at a time (under 100 MiB/s: a workload
            # growing, not a step the size of the margin), then keeps rewriting 32 of it
            for i in range(10):
                busy.run(f"dd if=/dev/urandom of=/mnt/fill/a{i} bs=1M count=32 2>/dev/null",
                         timeout=60)
                time.sleep(0.3)
            busy.run("(while :; do dd if=/dev/urandom of=/mnt/fill/b bs=1M count=32 "
                     "2>/dev/null; done) >/dev/null 2>&1 & echo $! >/tmp/loop")
            time.sleep(3)
            for name, pid in qemu.items():
                assert os.path.exists(f"/proc/{pid}"), f"QEMU of {name} ({pid}) is gone"
            assert cg.oom_kills() == 0, cg.read("memory.oom_control" if cg.version == 1
                                                else "memory.events")
            events = host_events(w)
            print("\n".join(e[2] for e in events))
            takes = [e for e in events if e[0] == "take"]
            assert takes, "the host took nothing"
            # the idle, low-shares guest first, and the busy one not before it gave
            assert takes[0][1] == "idle", takes[0][2]
            taken = full - actual(w, "idle")
            assert taken >= pages(100), f"only {taken} pages taken from idle"
            peak = cg.usage()
            assert peak <= limit, (peak, limit)
            print(f"taken from idle: {taken * PAGE // MIB} MiB; busy's balloon "
                  f"{actual(w, 'busy') * PAGE // MIB} MiB; cgroup {peak // MIB} MiB")

            # busy stops and frees its memory (free page reporting): memory goes back to idle
            busy.run("kill $(cat /tmp/loop); rm -f /mnt/fill/a* /mnt/fill/b")
            t0 = time.monotonic()
            wait_for("idle given back its memory", lambda: actual(w, "idle") >= full - pages(8),
                     timeout=30, interval=0.25)
            given = time.monotonic() - t0
            print(f"given back within {given:.1f} s of the busy guest stopping")
            assert given <= 15, given
            assert any(e[0] == "give" and e[1] == "idle" for e in host_events(w))
            host = w.domain("host")
            assert host["given"] > 0 and host["taken"] > 0, host
            for name, pid in qemu.items():
                assert os.path.exists(f"/proc/{pid}"), f"QEMU of {name} ({pid}) is gone"
            assert cg.oom_kills() == 0
            w.stop_daemon()
    finally:
        cg.close()
    assert not os.path.exists(cg.path)


CASES = {n[len("case_"):]: f for n, f in globals().items() if n.startswith("case_")}

if __name__ == "__main__":
    vmbcguest.exit_on_sigterm()
    try:
        vmbcguest.check_available()
    except vmbcguest.GuestUnavailable as e:
        print(f"SKIP: {e}")
        sys.exit(77)
    name = sys.argv[1]
    try:
        CASES[name]()
    except vmbcguest.GuestUnavailable as e:
        print(f"SKIP: {e}")
        sys.exit(77)
    print(f"PASS: {name}")
