#!/usr/bin/env python3
"""Integration tests: vmbcd with its QMP backend, the control socket and the
vmbc CLI against fake-qemu processes whose guest RAM is real, resident memory.

Run one case: test_vmbcd.py CASE (meson runs each as its own test).
"""
import json
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmbctest import MIB, PAGE, QMP, QMPError, Env, pages, run, wait_for  # noqa: E402


_ram_address = {}  # fake-qemu's Popen -> where it maps its guest RAM


def fake_rss(env, name):
    """(guest, resident) of fake-qemu @name in pages, read by the test from /proc:
    the Rss of the mapping at the address the fake reports for its guest RAM (not
    one found by its size: a sanitizer's or an allocator's own mappings can have
    the same size), and the statm total vmbcd reads. The address is asked once,
    so that measuring later sends the fake nothing."""
    p = env.fakes[name][0]
    if p not in _ram_address:
        _ram_address[p] = env.fake_state(name)["ram-address"]
    guest = None
    in_guest = False
    with open(f"/proc/{p.pid}/smaps") as f:
        for line in f:
            head = line.split(" ", 1)[0]
            if "-" in head and not head.endswith(":"):
                in_guest = int(head.split("-")[0], 16) == _ram_address[p]
            elif in_guest and line.startswith("Rss:"):
                guest = int(line.split()[1]) * 1024 // PAGE
    assert guest is not None, f"no mapping at {_ram_address[p]:#x} in fake-qemu {name}"
    with open(f"/proc/{p.pid}/statm") as f:
        resident = int(f.read().split()[1])
    return guest, resident


def fake_vmm(env, name):
    """What fake-qemu @name holds besides its guest RAM, in pages, measured now."""
    guest, resident = fake_rss(env, name)
    return resident - guest


# What the bounds below allow beyond what the test measured: statm's total can
# lag the process's by a few hundred pages on some kernels (per-CPU or
# per-thread counters folded in batches), and a command vmbcd sends while the
# test reads /proc may hold a few pages of buffers for a moment.
SLACK = pages(2)


def held_vs_measured(env, name, vmm_before):
    """(held, guest, grew): @name's physpages held, its guest RAM's Rss measured
    after it, and how much its VMM grew since the test measured @vmm_before,
    which must be before vmbcd's smaps read that held is relative to (before
    vmbcd started is always). vmbcd reads smaps every smaps-interval and statm
    every tick, so in between whatever the VMM grows lands on held, by design;
    how much depends on the allocator and on a sanitizer's shadow memory, so it
    is measured, not allowed for by a constant."""
    held = env.res(name)["held"]
    guest, resident = fake_rss(env, name)
    return held, guest, max(0, resident - guest - vmm_before)


def assert_held_measured(env, name, vmm_before):
    """held is the guest RAM's Rss plus at most the VMM's measured growth, once
    vmbcd has sampled the guest where it is now (a sample taken while the fake
    was still touching pages holds fewer): the guest must be still."""
    def caught_up():
        held, guest, _ = held_vs_measured(env, name, vmm_before)
        return held >= guest - SLACK

    wait_for("a sample of the guest RAM as it is now", caught_up, timeout=10)
    held, guest, grew = held_vs_measured(env, name, vmm_before)
    assert guest - SLACK <= held <= guest + grew + SLACK, (held, guest, grew)
    return held


def case_charge_uncharge():
    with Env("charge") as env:
        env.start_fake("vm1", 256)
        base_guest = fake_rss(env, "vm1")[0]
        vmm0 = fake_vmm(env, "vm1")
        env.start_daemon()
        env.wait_domain("vm1")
        base = env.res("vm1")["held"]
        env.fake_do("vm1", "x-fake-touch", {"mib": 96, "kind": "anon"})
        # held follows what the host sees resident in the guest-RAM mapping
        wait_for("held to rise by ~96 MiB",
                 lambda: env.res("vm1")["held"] - base >= pages(90), timeout=10)
        assert_held_measured(env, "vm1", vmm0)
        env.fake_do("vm1", "x-fake-free", {"mib": 96, "kind": "anon"})

        def fell_back():
            held, guest, grew = held_vs_measured(env, "vm1", vmm0)
            return guest <= base_guest and held <= guest + grew + SLACK

        wait_for("held to fall back", fell_back, timeout=10)
        r = env.res("vm1")
        assert r["maxheld"] >= base + pages(90), r
        assert r["failcnt"] == 0, r
        # the host beancounter holds the sum of its children
        with env.control() as c:
            bcs = c.execute("query-beancounters")["beancounters"]
        host = bcs[0]
        assert host["name"] == "host" and host["id"] == 0
        assert host["resources"][0]["held"] == sum(
            b["resources"][0]["held"] for b in bcs[1:]), bcs
        # vmmpages: the fake's own memory, apart from guest RAM
        assert env.res("vm1", "vmmpages")["held"] > 0
        env.stop_daemon()


def case_statm_through_io_uring():
    """statm-reads = uring: held follows the guest as with pread, and the path is logged."""
    with Env("uring", extra_daemon="statm-reads = uring\n") as env:
        env.start_fake("vm1", 256)
        vmm0 = fake_vmm(env, "vm1")
        env.start_daemon()
        env.wait_domain("vm1")
        base = env.res("vm1")["held"]
        env.fake_do("vm1", "x-fake-touch", {"mib": 96, "kind": "anon"})
        wait_for("held to rise by ~96 MiB",
                 lambda: env.res("vm1")["held"] - base >= pages(90), timeout=10)
        assert_held_measured(env, "vm1", vmm0)
        env.fake_do("vm1", "x-fake-free", {"mib": 96, "kind": "anon"})
        wait_for("held to fall back",
                 lambda: env.res("vm1")["held"] - base < pages(6), timeout=10)
        log = env.logtext()
        # where io_uring cannot be set up here, the fallback is what is logged
        assert ("statm reads: together through io_uring" in log
                or "statm reads: one pread() per VM (io_uring" in log), log
        env.stop_daemon()


def case_limit_hit_reclaim():
    with Env("limit") as env:
        env.start_fake("vm1", 512, "--cache-mib", "300")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(290))
        with env.control() as c:
            r = c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "192M", "limit": "192M"}, timeout=30)
            assert r["held"] <= pages(192), r
            ev = c.wait_event("VMBC_RECLAIM_DONE", timeout=5)
            assert ev["data"]["domain"] == "vm1"
        d = env.domain("vm1")
        assert d["actual"] <= pages(192), d
        assert env.res("vm1")["failcnt"] == 0
        # the fake's real resident memory agrees: held was at least its guest RAM then
        # (the VMM's growth only adds to it), and the balloon only takes more since
        guest, _ = fake_rss(env, "vm1")
        assert guest <= r["held"] + SLACK, (guest, r)
        env.stop_daemon()


def case_limit_hit_on_growth():
    with Env("growth") as env:
        env.start_fake("vm1", 512, "--cache-mib", "64")
        env.start_daemon()
        env.wait_domain("vm1")
        with env.control() as c:
            c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                    "barrier": "160M", "limit": "200M"})
            # the guest grows past its limit on its own
            env.fake_do("vm1", "x-fake-touch", {"mib": 220, "kind": "cache"})
            ev = c.wait_event("VMBC_LIMIT_HIT", timeout=10)
            assert ev["data"]["domain"] == "vm1" and ev["data"]["target"] <= pages(200)
            c.wait_event("VMBC_RECLAIM_DONE", timeout=10)
        wait_for("held under the limit", lambda: env.res("vm1")["held"] <= pages(200))
        env.stop_daemon()


def case_setlimit_reads_held_now():
    """A VM far from every bound is not read every tick (headroom sampling), but a new
    limit is checked against what it holds when the limit is set: a guest that grew since
    its last sample is ballooned by the set-limit itself."""
    with Env("setnow", extra_daemon="growth-ceiling = 1M\n") as env:
        env.start_fake("vm1", 512, "--cache-mib", "16")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(14))
        # unlimited, 1 MiB/s: next read in 5 s; the guest grows meanwhile
        env.fake_do("vm1", "x-fake-touch", {"mib": 200, "kind": "cache"})
        with env.control() as c:
            r = c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"}, timeout=30)
            assert r["held"] <= pages(128), r
            # the reclaim started with the set-limit, not at a later sample: its event came
            # before the answer, which came when the reclaim was done
            hits = [e for e in c.events if e["event"] == "VMBC_LIMIT_HIT"]
            assert hits and hits[0]["data"]["held"] >= pages(200), c.events
        env.stop_daemon()


def case_no_balloon_driver():
    with Env("nodriver") as env:
        env.start_fake("vm1", 512, "--no-balloon-driver", "--anon-mib", "256")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(250))
        with env.control() as c:
            try:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"}, timeout=30)
                raise AssertionError("set-limit succeeded without a balloon driver")
            except QMPError as e:
                assert "balloon driver" in e.desc, e.desc
                assert "held" in e.desc and "limit 128M" in e.desc, e.desc
            ev = c.wait_event("VMBC_RECLAIM_FAILED", timeout=5)
            assert ev["data"]["reason"] == "no-balloon", ev
        d = env.domain("vm1")
        assert d["balloon"] == "no-driver", d
        assert env.res("vm1")["failcnt"] >= 1
        env.stop_daemon()


def case_no_balloon_device():
    with Env("nodevice") as env:
        env.start_fake("vm1", 512, "--no-balloon-device", "--anon-mib", "256")
        env.start_fake("vm2", 256, "--cache-mib", "64")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_domain("vm2")
        env.wait_held("vm1", pages(250))
        wait_for("vm1 reported without a balloon device",
                 lambda: env.domain("vm1")["balloon"] == "no-device")
        with env.control() as c:
            try:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"}, timeout=30)
                raise AssertionError("set-limit succeeded without a balloon device")
            except QMPError as e:
                assert "no balloon device" in e.desc, e.desc
        assert env.res("vm1")["failcnt"] >= 1
        # the other VM is served as before
        with env.control() as c:
            r = c.execute("set-limit", {"domain": "vm2", "resource": "physpages",
                                        "barrier": "200M", "limit": "200M"})
            assert r["limit"] == pages(200)
        env.stop_daemon()


def case_guarantee_floor():
    with Env("guarantee") as env:
        env.start_fake("vm1", 512, "--anon-mib", "300")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(290))
        with env.control() as c:
            c.execute("set-guarantee", {"domain": "vm1", "size": "400M"})
            try:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"}, timeout=30)
                raise AssertionError("set-limit below the guarantee succeeded")
            except QMPError as e:
                assert "guarantee 400M" in e.desc, e.desc
                assert "limit 128M" in e.desc, e.desc
        d = env.domain("vm1")
        # the balloon never went below the guarantee
        assert d["actual"] >= pages(400), d
        assert env.res("vm1", "vmguarpages")["failcnt"] >= 1
        assert env.res("vm1")["failcnt"] >= 1
        env.stop_daemon()


def ubc_rows(text):
    """(uid, resource, held, maxheld, barrier, limit, failcnt) from `vmbc ubc`, checking
    the table is /proc/user_beancounters' (Version 2.5, the uid on a beancounter's first
    row only, the name after failcnt on that row)."""
    return [row[:7] for row in ubc_named_rows(text)]


def ubc_named_rows(text):
    """As ubc_rows, with the beancounter's name last."""
    lines = text.splitlines()
    assert lines[0] == "Version: 2.5", text
    assert lines[1].split() == ["uid", "resource", "held", "maxheld", "barrier", "limit",
                                "failcnt", "name"], text
    rows, uid, name = [], None, None
    for line in lines[2:]:
        cells = line.split()
        if cells[0].endswith(":"):
            uid = int(cells[0][:-1])
            assert len(cells) == 8, text
            name = cells[7]
            cells = cells[1:7]
        assert uid is not None and len(cells) == 6, text
        rows.append((uid, cells[0], *(int(c) for c in cells[1:]), name))
    return rows


def case_cli_setlimit():
    with Env("cli") as env:
        env.start_fake("web1", 512, "--cache-mib", "300")
        env.start_daemon()
        env.wait_domain("web1")
        env.wait_held("web1", pages(290))
        r = env.cli("setlimit", "web1", "physpages", "200M:256M")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        assert env.res("web1")["held"] <= pages(256)
        # answered in the units it was given
        assert re.fullmatch(r"web1 physpages: barrier 200M, limit 256M \(held [0-9.]+[KMG], "
                            r"failcnt \d+\)\n", r.stdout), r.stdout
        # `vmbc list`: sizes people read, the name beside the id
        r = env.cli("list")
        assert r.returncode == 0, r.stderr
        row = [ln.split() for ln in r.stdout.splitlines() if " web1 " in ln]
        assert len(row) == 1 and row[0][1] == "web1", r.stdout
        assert row[0][6] == "256M", r.stdout
        assert all(re.fullmatch(r"[0-9.]+[KMG]", c) for c in (row[0][3], row[0][5])), r.stdout
        # a QEMU of the qmp backend carries no policy: --persist is refused, nothing changes
        r = env.cli("setlimit", "web1", "physpages", "300M", "--persist")
        assert r.returncode == 1 and "only libvirt domains carry one" in r.stderr, \
            (r.returncode, r.stderr)
        assert env.res("web1")["limit"] == pages(256), env.res("web1")
        r = env.cli("setlimit", "web1", "physpages", "12Q")
        assert r.returncode == 2 and "12Q" in r.stderr, (r.returncode, r.stderr)
        r = env.cli("setlimit", "web9", "physpages", "100M")
        assert r.returncode == 1 and "web9" in r.stderr, (r.returncode, r.stderr)
        # the /proc/user_beancounters table, in pages: web1's physpages row has the
        # barrier and limit just set, and the held that query-domain reports; held moves
        # with every tick, so it is compared where query-domain reads the same before and
        # after the CLI
        web1 = env.domain("web1")["id"]
        for _ in range(20):  # bounded
            before = env.res("web1")
            r = env.cli("ubc")
            after = env.res("web1")
            assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
            mine = [row for row in ubc_rows(r.stdout) if row[:2] == (web1, "physpages")]
            assert len(mine) == 1, r.stdout
            _, _, held, maxheld, barrier, limit, failcnt = mine[0]
            assert (barrier, limit) == (pages(200), pages(256)), r.stdout
            assert failcnt == after["failcnt"], (r.stdout, after)
            assert held <= maxheld and maxheld >= pages(290), r.stdout
            if before["held"] == after["held"]:
                assert held == after["held"], (r.stdout, after)
                break
        else:
            raise AssertionError("web1's held never stayed still across `vmbc ubc`")
        r = env.cli("--json", "dominfo", "web1")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["name"] == "web1"
        env.stop_daemon()


def case_setlimit_default():
    """`vmbc setlimit DOM RES default` forgets what was set at run time: vmbc.conf's limits
    apply again (a lower one reclaims, as setlimit does), the state file no longer has it and
    a restart keeps it so; for the host, without [host] limits, the budget it measures."""
    with Env("default") as env:
        cg = os.path.join(env.dir, "vms")
        os.makedirs(cg)
        for name, mib in (("memory.usage_in_bytes", 400), ("memory.limit_in_bytes", 2048)):
            with open(os.path.join(cg, name), "w") as f:
                f.write(f"{mib * MIB}\n")
        env.write_config(extra=f"""[domain vm1]
barrier = 200M
limit = 240M
guarantee = 64M
[host]
cgroup = {cg}
pressure = off
""")
        env.start_fake("vm1", 512, "--cache-mib", "100")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(95))
        assert (env.res("vm1")["barrier"], env.res("vm1")["limit"]) == (pages(200), pages(240))
        wait_for("the host's budget measured", lambda:
                 env.domain("host")["budget-source"] == "cgroup-v1", timeout=5)
        measured_limit = env.res("host")["limit"]
        assert measured_limit < 2048 * MIB // PAGE, measured_limit
        # set at run time: they win over the file, and are saved
        for args in (("vm1", "physpages", "400M:450M"), ("vm1", "vmguarpages", "128M"),
                     ("host", "physpages", "3G")):
            r = env.cli("setlimit", *args)
            assert r.returncode == 0, (args, r.returncode, r.stdout, r.stderr)
        assert env.res("vm1")["limit"] == pages(450)
        assert env.res("host")["limit"] == pages(3072)
        wait_for("the host's budget set by hand", lambda:
                 env.domain("host")["budget-source"] == "config", timeout=5)
        wait_for("the runtime limits saved", lambda: all(
            k in saved_domains(env).get(d, {})
            for d, k in (("vm1", "physpages"), ("vm1", "vmguarpages"), ("host", "physpages"))))
        # bad input: nothing changes
        r = env.cli("setlimit", "vm1", "physpages", "default", "--persist")
        assert r.returncode == 2 and "nothing to keep" in r.stderr, (r.returncode, r.stderr)
        r = env.cli("setlimit", "host", "vmmpages", "default")
        assert r.returncode == 1 and "only physpages" in r.stderr, (r.returncode, r.stderr)
        assert env.res("vm1")["limit"] == pages(450)
        # back to vmbc.conf's: a lower limit than held now, so the answer waits for it
        env.fake_do("vm1", "x-fake-touch", {"mib": 200, "kind": "cache"})
        wait_for("vm1 over vmbc.conf's limit", lambda: env.res("vm1")["held"] > pages(250),
                 timeout=10)
        r = env.cli("setlimit", "vm1", "physpages", "default")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        assert re.fullmatch(r"vm1 physpages: barrier 200M, limit 240M \(held [0-9.]+[KMG], "
                            r"failcnt \d+\), from vmbc.conf\n", r.stdout), r.stdout
        assert env.res("vm1")["held"] <= pages(240), env.res("vm1")
        r = env.cli("setlimit", "vm1", "vmguarpages", "default")
        assert r.returncode == 0 and "barrier 64M" in r.stdout, (r.stdout, r.stderr)
        # the host: [host] sets no limit, so its own budget again
        r = env.cli("setlimit", "host", "physpages", "default")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        assert r.stdout.endswith("from the host's budget (cgroup-v1)\n"), r.stdout
        assert env.domain("host")["budget-source"] == "cgroup-v1"
        assert env.res("host")["limit"] < pages(3072), env.res("host")
        wait_for("the runtime limits forgotten in the state file", lambda: not any(
            k in saved_domains(env).get(d, {})
            for d, k in (("vm1", "physpages"), ("vm1", "vmguarpages"), ("host", "physpages"))))
        # and a restart keeps them forgotten
        env.stop_daemon()
        env.start_daemon()
        env.wait_domain("vm1")
        assert (env.res("vm1")["barrier"], env.res("vm1")["limit"]) == (pages(200), pages(240))
        assert env.res("vm1", "vmguarpages")["barrier"] == pages(64)
        wait_for("the host's budget measured", lambda:
                 env.domain("host")["budget-source"] == "cgroup-v1", timeout=5)
        env.stop_daemon()


def case_peer_without_rights():
    with Env("rights", world_readable=True) as env:
        env.start_fake("vm1", 256)
        env.start_daemon()
        env.wait_domain("vm1")
        nobody = pwd.getpwnam("nobody")
        # queries are open, changes are not
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setgroups([])
                os.setgid(nobody.pw_gid)
                os.setuid(nobody.pw_uid)
                with QMP(env.sock) as c:
                    c.execute("query-beancounters")
                    try:
                        c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                                "barrier": "100M", "limit": "100M"})
                    except QMPError as e:
                        if "permission denied" in e.desc:
                            code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
        assert env.res("vm1")["limit"] == 9223372036854775807
        env.stop_daemon()


def case_state_survives_kill9():
    with Env("state") as env:
        env.start_fake("vm1", 512, "--cache-mib", "300")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(290))
        with env.control() as c:
            c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                    "barrier": "240M", "limit": "240M"}, timeout=30)
            c.execute("set-guarantee", {"domain": "vm1", "size": "100M"})
        actual_before = env.fake_state("vm1")["actual"]
        env.stop_daemon(signal.SIGKILL)
        env.start_daemon()
        env.wait_domain("vm1")
        r = env.res("vm1")
        assert r["barrier"] == pages(240) and r["limit"] == pages(240), r
        assert env.res("vm1", "vmguarpages")["barrier"] == pages(100)
        time.sleep(1.0)
        # re-adopted as it was: the balloon did not move
        assert env.fake_state("vm1")["actual"] == actual_before
        env.stop_daemon()


def case_counters_survive_restart():
    with Env("counters") as env:
        env.start_fake("vm1", 512, "--no-balloon-driver", "--anon-mib", "200")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(195))
        with env.control() as c:
            try:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"}, timeout=30)
            except QMPError:
                pass
        env.fake_do("vm1", "x-fake-free", {"mib": 150, "kind": "anon"})
        wait_for("held under the limit", lambda: env.res("vm1")["held"] <= pages(128))
        before = env.res("vm1")
        assert before["failcnt"] >= 1 and before["maxheld"] >= pages(195), before
        env.stop_daemon()
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", 1)
        after = env.res("vm1")
        # a daemon restart is not a new beancounter: maxheld and failcnt carry on
        assert after["failcnt"] == before["failcnt"], (before, after)
        assert after["maxheld"] == before["maxheld"], (before, after)
        assert after["held"] < after["maxheld"]
        env.stop_daemon()


def saved_domains(env):
    """The domains of vmbcd's state file as it is on disk now ({} before the first save)."""
    try:
        with open(os.path.join(env.state_dir, "state.json")) as f:
            return json.load(f)["domains"]
    except FileNotFoundError:
        return {}


def inflate_for_limit(env, name="vm1"):
    """A limit that vmbcd enforces with the balloon of @name, settled, and the
    state file that says so on disk (written soon after, with no clean exit).
    Returns the balloon's size in bytes."""
    with env.control() as c:
        c.execute("set-limit", {"domain": name, "resource": "physpages",
                                "barrier": "192M", "limit": "192M"}, timeout=30)
    wait_for("the balloon to settle", lambda: (lambda st: st["balloon"] ==
                                               st["balloon-target"])(env.fake_state(name)))
    actual = env.fake_state(name)["actual"]
    assert actual <= 192 * MIB, actual
    d = env.domain(name)
    assert d["balloon-owner"] == "vmbcd", d
    assert d["balloon-set"]["reason"] == "limit" and d["balloon-set"]["limit"] == pages(192), d
    assert d["balloon-set"]["before"] == pages(env.fakes[name][2]), d
    wait_for("the balloon's target in the state file",
             lambda: saved_domains(env).get(name, {}).get("balloon-set", {}).get("target")
             == env.domain(name)["target"], timeout=5)
    return actual


def case_balloon_readopted_after_kill9():
    """vmbcd inflated a balloon for a limit and was killed: the restarted vmbcd
    knows the balloon for its own, and removing the limit gives the guest back
    all of its memory, as it would have without the restart."""
    with Env("readopt") as env:
        env.start_fake("vm1", 512, "--cache-mib", "300")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(290))
        actual = inflate_for_limit(env)
        before = env.domain("vm1")
        env.stop_daemon(signal.SIGKILL)
        env.start_daemon()
        env.wait_domain("vm1")
        d = wait_for("the balloon re-adopted", lambda: (lambda d: d if d["balloon-owner"] ==
                                                        "vmbcd" else None)(env.domain("vm1")))
        assert d["target"] == before["target"] and d["balloon-set"] == before["balloon-set"], \
            (before, d)
        assert env.fake_state("vm1")["actual"] == actual  # adoption moved nothing
        assert "as vmbcd set it (for limit): vmbcd's again" in env.logtext(), env.logtext()
        if env.cli_bin:
            r = env.cli("dominfo", "vm1")
            assert r.returncode == 0, r.stderr
            assert "Balloon owner:" in r.stdout and "vmbcd (set to" in r.stdout, r.stdout
        with env.control() as c:
            c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                    "barrier": "unlimited", "limit": "unlimited"}, timeout=30)
        wait_for("the guest back at its full size",
                 lambda: env.fake_state("vm1")["actual"] == 512 * MIB, timeout=10)
        wait_for("nobody's balloon", lambda: env.domain("vm1")["balloon-owner"] == "none")
        wait_for("the claim gone from the state file",
                 lambda: "balloon-set" not in saved_domains(env)["vm1"], timeout=5)
        env.stop_daemon()


def case_balloon_set_by_hand_left_alone():
    """Between two runs of vmbcd somebody sets the balloon by hand (as virsh
    setmem or QMP balloon would): the restarted vmbcd leaves it as it is, and
    says whose it is."""
    with Env("byhand") as env:
        env.start_fake("vm1", 512, "--cache-mib", "300")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(290))
        inflate_for_limit(env)
        env.stop_daemon(signal.SIGKILL)
        env.fake_do("vm1", "balloon", {"value": 400 * MIB})
        wait_for("the hand-set size", lambda: env.fake_state("vm1")["actual"] == 400 * MIB)
        env.start_daemon()
        env.wait_domain("vm1")
        d = wait_for("the balloon's actual size", lambda: (lambda d: d if d["actual"] >= 0
                                                           else None)(env.domain("vm1")))
        assert d["balloon-owner"] == "other" and d["balloon-set"] is None, d
        assert "somebody else set it since, it is left alone" in env.logtext(), env.logtext()
        if env.cli_bin:
            r = env.cli("dominfo", "vm1")
            assert r.returncode == 0 and "other (not set by vmbcd" in r.stdout, r.stdout
        wait_for("the claim gone from the state file",
                 lambda: "balloon-set" not in saved_domains(env)["vm1"], timeout=5)
        with env.control() as c:
            c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                    "barrier": "unlimited", "limit": "unlimited"}, timeout=30)
        time.sleep(1.5)
        st = env.fake_state("vm1")
        # nobody asked the balloon to move (the fake's target is the balloon's own size)
        assert st["actual"] == 400 * MIB and st["balloon-target"] == 112 * MIB, st
        assert env.domain("vm1")["balloon-owner"] == "other"
        env.stop_daemon()


def case_ids_and_balloon_driver_kept():
    """Beancounter ids and a balloon driver found missing survive a kill -9:
    VMs adopted in another order keep their ids, a new VM gets one no saved VM
    has, and a guest without a balloon driver is known as such at once."""
    with Env("ids") as env:
        env.start_fake("vm2", 256, "--cache-mib", "16")
        env.start_daemon()
        env.wait_domain("vm2")
        env.start_fake("vm1", 512, "--no-balloon-driver", "--anon-mib", "200")
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(195))
        with env.control() as c:
            try:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"}, timeout=30)
                raise AssertionError("set-limit succeeded without a balloon driver")
            except QMPError as e:
                assert "balloon driver" in e.desc, e.desc
        ids = {n: env.domain(n)["id"] for n in ("vm1", "vm2")}
        assert ids["vm2"] < ids["vm1"], ids  # adopted first
        assert env.domain("vm1")["balloon"] == "no-driver"
        wait_for("ids and the driver state in the state file",
                 lambda: (lambda s: s.get("vm1", {}).get("id") == ids["vm1"] and
                          s.get("vm2", {}).get("id") == ids["vm2"] and
                          s["vm1"].get("balloon") == "no-driver")(saved_domains(env)),
                 timeout=5)
        env.stop_daemon(signal.SIGKILL)
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_domain("vm2")
        # as soon as it is adopted, before any balloon request
        assert env.domain("vm1")["balloon"] == "no-driver", env.domain("vm1")
        assert {n: env.domain(n)["id"] for n in ("vm1", "vm2")} == ids
        if env.cli_bin:
            # `vmbc ubc` names each beancounter beside its id, the same ids as before
            r = env.cli("ubc")
            assert r.returncode == 0, r.stderr
            named = {row[0]: row[7] for row in ubc_named_rows(r.stdout)}
            assert named == {0: "host", ids["vm1"]: "vm1", ids["vm2"]: "vm2"}, r.stdout
        env.start_fake("vm3", 256, "--cache-mib", "16")
        env.wait_domain("vm3")
        assert env.domain("vm3")["id"] > max(ids.values()), env.domain("vm3")
        # the limit is still refused for the same reason
        with env.control() as c:
            try:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "100M", "limit": "100M"}, timeout=30)
                raise AssertionError("set-limit succeeded without a balloon driver")
            except QMPError as e:
                assert "balloon driver" in e.desc, e.desc
        env.stop_daemon()


def case_check_config():
    with Env("checkconf") as env:
        example = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data",
                               "vmbc.conf")
        r = subprocess.run([env.vmbcd_bin, "--check-config", "--config", example],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0 and "configuration OK" in r.stdout, (r.stdout, r.stderr)
        with open(env.conf, "w") as f:
            f.write("[defaults]\nbarrier = 2G\nlimit = 1G\n")
        r = subprocess.run([env.vmbcd_bin, "--check-config", "--config", env.conf],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 1 and f"{env.conf}:2: key 'barrier' in [defaults]" in r.stderr, (
            r.stdout, r.stderr)


def case_bad_config():
    with Env("badconf") as env:
        cases = [
            ("[daemon]\nfrobnicate = 1\n", "key 'frobnicate' in [daemon]"),
            ("[defaults]\nlimit = 12Q\n", "invalid size '12Q'"),
            ("[domain web1]\nbarrier = 2G\nlimit = 1G\n", "barrier 2G is above limit 1G"),
            ("[daemon]\ntick = 10ms\n", "out of range"),
            ("[wat]\n", "unknown group"),
            ("[domain web1]\ntrust-guest = maybe\n", "'maybe' is not a boolean"),
            # the host's pressure controller
            ("[host]\npsi-window = 100ms\n", "key 'psi-window' in [host]: '100ms' is out of range"),
            ("[host]\npsi-target = 0\n", "key 'psi-target' in [host]: '0' is not a number"),
            ("[host]\ncgroup = ../etc\n", "key 'cgroup' in [host]: '../etc' is neither auto"),
            ("[host]\npressure = proc/pressure\n", "key 'pressure' in [host]"),
            ("[host]\nreserve = 100%\n", "key 'reserve' in [host]: '100%' leaves the VMs"),
            ("[host]\nidle-assumed = 1.5\n", "key 'idle-assumed' in [host]"),
            ("[host]\nstep = 0\n", "key 'step' in [host]: must be more than 0"),
            ("[host]\ngiveback-delay = soon\n", "key 'giveback-delay' in [host]"),
            ("[host]\nhysteresis = 5\n", "key 'hysteresis' in [host]: unknown key"),
            ("[daemon]\nidle-interval = 2h\n", "key 'idle-interval' in [daemon]"),
            ("[daemon]\nidle-interval = never\n", "key 'idle-interval' in [daemon]"),
        ]
        for text, needle in cases:
            with open(env.conf, "w") as f:
                f.write(text)
            log_before = len(env.logtext())
            rc = env.start_daemon(expect_fail=True)
            out = env.logtext()[log_before:]
            assert rc == 1, (text, rc, out)
            assert needle in out, (needle, out)
            assert f"{env.conf}:" in out, out
        # the line of the key, not of its group
        with open(env.conf, "w") as f:
            f.write("[host]\ncgroup = auto\n\nstep = 0\n")
        rc = env.start_daemon(expect_fail=True)
        assert rc == 1 and f"{env.conf}:4: key 'step' in [host]" in env.logtext(), env.logtext()


def case_control_bad_input():
    with Env("badinput") as env:
        env.start_fake("vm1", 256)
        env.start_daemon()
        env.wait_domain("vm1")
        with env.control() as c:
            for args, needle in [
                ({"domain": "nope"}, "no domain named 'nope'"),
                ({}, "'domain'"),
                ({"domain": 5}, "'domain'"),
            ]:
                try:
                    c.execute("query-domain", args)
                    raise AssertionError(f"accepted {args}")
                except QMPError as e:
                    assert needle in e.desc, e.desc
            for args, needle in [
                ({"domain": "vm1", "resource": "kmem", "barrier": 1}, "unknown resource"),
                ({"domain": "vm1", "resource": "physpages", "barrier": "1Q"}, "'1Q'"),
                ({"domain": "vm1", "resource": "physpages", "barrier": -4}, "negative"),
                ({"domain": "vm1", "resource": "physpages", "barrier": "2G", "limit": "1G"},
                 "above limit"),
            ]:
                try:
                    c.execute("set-limit", args)
                    raise AssertionError(f"accepted {args}")
                except QMPError as e:
                    assert needle in e.desc, e.desc
            try:
                c.execute("frobnicate")
                raise AssertionError("unknown command accepted")
            except QMPError as e:
                assert e.klass == "CommandNotFound", e
        # garbage and an oversized message: an error or a closed connection, not a hang
        with env.control() as c:
            c.send_raw(b'{"execute": 42}\r\n')
            reply = c.read()
            assert "error" in reply, reply
            c.execute("query-version")
        with env.control() as c:
            c.sock.settimeout(10)
            try:
                c.send_raw(b'{"execute": "query-version", "arguments": {"x": "' +
                           b"a" * (2 * MIB) + b'"}}\r\n')
                reply = c.read()
                assert "error" in reply, reply
            except (EOFError, ConnectionResetError, BrokenPipeError):
                pass
        # a client that connects and says nothing does not stop the others
        idle = socket.socket(socket.AF_UNIX)
        idle.connect(env.sock)
        with env.control() as c:
            assert c.execute("query-version")["page-size"] == PAGE
        idle.close()
        env.stop_daemon()


def case_qemu_dies_mid_command():
    with Env("dies") as env:
        env.start_fake("vm1", 512, "--cache-mib", "300", "--exit-mid-command", "balloon")
        env.start_fake("vm2", 256, "--cache-mib", "64")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_domain("vm2")
        env.wait_held("vm1", pages(290))
        with env.control() as c:
            try:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"}, timeout=30)
                raise AssertionError("set-limit succeeded on a QEMU that died")
            except QMPError as e:
                assert "vm1" in e.desc, e.desc
        env.wait_domain_gone("vm1")
        assert env.res("vm2")["held"] > 0
        env.stop_daemon()


def case_qemu_garbage():
    with Env("garbage") as env:
        env.start_fake("vm1", 256, "--garbage", "4")
        env.start_fake("vm2", 256, "--cache-mib", "32")
        env.start_daemon()
        env.wait_domain("vm2")
        # vm1 talks garbage after a few commands: dropped with a warning, vm2 served
        wait_for("a warning naming vm1", lambda: "vm1" in env.logtext(), timeout=15)
        time.sleep(1)
        assert env.res("vm2")["held"] > 0
        env.stop_daemon()


def case_vm_vanishes():
    with Env("vanish") as env:
        env.start_fake("vm1", 256, "--cache-mib", "32")
        env.start_fake("vm2", 256, "--cache-mib", "32")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_domain("vm2")
        env.wait_held("vm2", pages(30))
        with env.control() as c:
            env.kill_fake("vm1", signal.SIGKILL)
            c.wait_event("VMBC_DOMAIN_REMOVED", timeout=10,
                         pred=lambda e: e["data"]["domain"] == "vm1")
        env.wait_domain_gone("vm1")
        assert env.res("vm2")["held"] > 0
        # a VM that appears later is picked up
        env.start_fake("vm3", 256)
        env.wait_domain("vm3")
        env.stop_daemon()


def case_vms_end_together():
    """Thirty VMs end at once: vmbcd drops them all, keeps answering, and saves
    its state once they are gone (their counters forgotten, their limits kept)."""
    n = 30
    with Env("endall") as env:
        names = [f"vm{i}" for i in range(n)]
        for name in names:
            env.start_fake(name, 128, "--no-balloon-driver", "--anon-mib", "8")
        env.start_fake("stays", 128, "--no-balloon-driver", "--anon-mib", "8")
        env.start_daemon()
        for name in names + ["stays"]:
            env.wait_domain(name)
            env.wait_held(name, pages(8))
        with env.control() as c:
            c.execute("set-limit", {"domain": "vm0", "resource": "physpages",
                                    "barrier": "100M", "limit": "100M"}, timeout=30)
        state_file = os.path.join(env.state_dir, "state.json")

        def saved():
            with open(state_file) as f:
                return json.load(f)["domains"]

        # a stop saves every VM's counters; the restarted daemon carries them on
        env.stop_daemon()
        assert all(saved().get(name, {}).get("counters") for name in names), saved()
        env.start_daemon()
        for name in names + ["stays"]:
            env.wait_domain(name)
        # end them all at once, well before the periodic save (30 s)
        for name in names:
            env.kill_fake(name, signal.SIGKILL)
        for name in names:
            env.wait_domain_gone(name)
        assert env.res("stays")["held"] >= pages(8)
        # within a moment the file says so: no counters for the VMs that ended
        wait_for("the state saved after the VMs ended",
                 lambda: not any(saved().get(name, {}).get("counters") for name in names),
                 timeout=10)
        doms = saved()
        assert doms["vm0"]["physpages"]["limit"] == pages(100), doms.get("vm0")
        env.stop_daemon()


def fake_cgroup(root, pid, value, hybrid=False):
    """Builds under @root (vmbcd's cgroup-root) the cgroup v2 directory of @pid as
    vmbcd finds it: "0::/path" of /proc/PID/cgroup below the root, or below
    root/unified for a hybrid host (whose root has no cgroup.controllers). Returns
    its memory.high, holding @value, or None when @pid has no cgroup v2 entry."""
    with open(f"/proc/{pid}/cgroup") as f:
        path = next((line[3:].strip() for line in f if line.startswith("0::/")), None)
    if path is None:
        return None
    top = os.path.join(root, "unified") if hybrid else root
    cgroup = os.path.normpath(top + path)
    os.makedirs(cgroup, exist_ok=True)
    if not hybrid:
        with open(os.path.join(root, "cgroup.controllers"), "w") as f:
            f.write("cpu memory pids\n")
    high = os.path.join(cgroup, "memory.high")
    with open(high, "w") as f:
        f.write(value)
    return high


def case_memory_high_restored():
    """A VM whose memory.high vmbcd set before a restart: the restarted vmbcd
    says so, raises it with the limit (the limit plus what the VMM holds, in
    bytes; never lowered), says so when the file is not there, and forgets the
    mark when the VM ends. A bad mark in the state file is named and ignored.
    memory.high is a file in a tree under the test's cgroup-root, never the host's."""
    with Env("mhigh") as env:
        cg_root = os.path.join(env.dir, "cgroup")
        env.write_config(extra=f"cgroup-root = {cg_root}")
        env.start_fake("vm1", 256, "--anon-mib", "8")
        # as the vmbcd before the restart left it: the old limit (100M) plus a VMM
        old = str(pages(100) * PAGE + 4 * MIB)
        high = fake_cgroup(cg_root, env.fakes["vm1"][0].pid, old, hybrid=True)
        os.makedirs(env.state_dir)
        state_file = os.path.join(env.state_dir, "state.json")
        with open(state_file, "w") as f:
            json.dump({"version": 1, "page-size": PAGE, "domains": {
                "vm1": {"physpages": {"barrier": pages(100), "limit": pages(100)},
                        "counters": {}, "memory-high-set": True},
                "vm2": {"counters": {}, "memory-high-set": "yes"}}}, f)
        env.start_daemon()
        env.wait_domain("vm1")
        assert "ignoring bad memory-high-set of 'vm2'" in env.logtext(), env.logtext()
        d = env.domain("vm1")
        assert d["memory-high-set"] is True, d
        if env.cli_bin:
            r = env.cli("dominfo", "vm1")
            assert r.returncode == 0 and "set by vmbcd" in r.stdout, r.stdout

        def set_limit(size):
            with env.control() as c:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": size, "limit": size})

        def read(path):
            with open(path) as f:
                return f.read()

        def vmm():
            return env.res("vm1", "vmmpages")["held"]

        failed = "the limit was raised but memory.high, which vmbcd set, was not"
        if high is not None:
            # adoption leaves it as it is
            assert read(high) == old, read(high)
            # the VMM's part measured (smaps), so that it shows in the value
            wait_for("vm1's vmmpages held", lambda: vmm() > 0, timeout=10)
            # the limit raised: the new limit plus what the VMM holds, in bytes
            v0 = vmm()
            set_limit("200M")
            v1 = vmm()
            want = {str((pages(200) + v) * PAGE) for v in (v0, v1)}
            assert read(high) in want, (read(high), want)
            assert f"{high} set to {read(high)}" in env.logtext(), env.logtext()
            assert env.domain("vm1")["memory-high-set"] is True
            raised = read(high)
            # a lower limit never lowers it
            set_limit("150M")
            assert read(high) == raised, (read(high), raised)
            # no memory.high in the cgroup: the raise fails loudly, naming the file and
            # the VM; nothing is created, and the mark stays for the next try
            os.unlink(high)
            set_limit("220M")
            wait_for("the failed raise to be logged", lambda: failed in env.logtext(),
                     timeout=10)
            why = env.logtext().split(failed)[1].splitlines()[0]
            assert "VM 'vm1'" in why and "memory.high" in why and "does not exist" in why, why
            assert not os.path.exists(high)
            assert env.domain("vm1")["memory-high-set"] is True
            final_limit = pages(220)
        else:
            # a host with no cgroup v2 at all: the raise fails, and says why
            set_limit("200M")
            wait_for("the failed raise to be logged", lambda: failed in env.logtext(),
                     timeout=10)
            assert "memory.high" in env.logtext().split("was not: ")[1], env.logtext()
            assert env.domain("vm1")["memory-high-set"] is True
            final_limit = pages(200)
        env.kill_fake("vm1", signal.SIGKILL)
        env.wait_domain_gone("vm1")

        def saved():
            with open(state_file) as f:
                return json.load(f)["domains"]

        wait_for("vm1's mark forgotten with it",
                 lambda: "memory-high-set" not in saved().get("vm1", {}), timeout=10)
        assert saved()["vm1"]["physpages"]["limit"] == final_limit, saved()
        env.stop_daemon()
    if high is None:
        print("SKIP: /proc/PID/cgroup has no cgroup v2 (0::) line on this host: "
              "memory.high values not checked")
        sys.exit(77)


def case_out_of_descriptors():
    """vmbcd started with room for a few VMs only: it adopts what fits and says
    once, naming the limit, what to raise; the other VMs are named with the error."""
    n = 40
    with Env("nofile") as env:
        for i in range(n):
            env.start_fake(f"vm{i:02d}", 128, "--anon-mib", "4")
        env.start_daemon(nofile=40)
        wait_for("the warning", lambda: "out of file descriptors" in env.logtext(), timeout=20)
        time.sleep(3)  # a rescan or two later: still said once
        log = env.logtext()
        assert log.count("out of file descriptors (limit 40") == 1, log
        adopted = log.count("' adopted: pid")
        assert 1 <= adopted < n, log
        assert "Too many open files" in log, log
        env.stop_daemon()


def case_sighup_reload():
    with Env("reload") as env:
        env.start_fake("vm1", 512, "--cache-mib", "100")
        env.start_daemon()
        env.wait_domain("vm1")
        before = env.res("vm1")
        env.write_config("[defaults]\nlimit = 400M\n")
        env.daemon.send_signal(signal.SIGHUP)
        wait_for("the new default limit", lambda: env.res("vm1")["limit"] == pages(400))
        after = env.res("vm1")
        assert after["maxheld"] >= before["maxheld"], (before, after)
        # a broken file keeps the running configuration
        with open(env.conf, "a") as f:
            f.write("[daemon]\nbogus = 1\n")
        env.daemon.send_signal(signal.SIGHUP)
        wait_for("the reload failure logged", lambda: "reload failed" in env.logtext())
        assert env.res("vm1")["limit"] == pages(400)
        env.stop_daemon()


def case_sigterm_leaves_balloons():
    with Env("sigterm") as env:
        env.start_fake("vm1", 512, "--cache-mib", "300")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(290))
        with env.control() as c:
            c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                    "barrier": "200M", "limit": "200M"}, timeout=30)
        # the balloon finishes the move it was asked for
        wait_for("the balloon to settle", lambda: (lambda st: st["balloon"] ==
                                                   st["balloon-target"])(env.fake_state("vm1")))
        before = env.fake_state("vm1")
        assert before["actual"] <= 200 * MIB, before
        env.stop_daemon()
        time.sleep(0.5)
        after = env.fake_state("vm1")
        # nothing was asked of the balloon on the way out
        assert after["actual"] == before["actual"], (before, after)
        assert after["balloon-target"] == before["balloon-target"], (before, after)
        assert not os.path.exists(env.sock)


def case_lying_stats():
    with Env("lying") as env:
        env.start_fake("vm1", 512, "--lying-stats", "--anon-mib", "64")
        vmm0 = fake_vmm(env, "vm1")
        env.start_daemon()
        env.wait_domain("vm1")
        wait_for("the guest's stats", lambda: env.domain("vm1")["stats"]["last-update"] > 0,
                 timeout=10)
        # held comes from the host, whatever the guest claims
        assert_held_measured(env, "vm1", vmm0)
        env.stop_daemon()


def case_idle_measured_by_host():
    """Each VM's idle memory is measured from the host with QEMU's calc-dirty-rate where
    QEMU has it, and said so (query-domain, dominfo); a QEMU without it falls back to the
    guest's word, never below idle-assumed."""
    with Env("idle") as env:
        env.write_config(extra="idle-interval = 1s")
        env.start_fake("quiet", 256, "--anon-mib", "100", "--dirty-mib-s", "0")
        env.start_fake("writer", 256, "--anon-mib", "100", "--dirty-mib-s", "400")
        env.start_fake("old", 256, "--anon-mib", "100")
        env.start_daemon()
        for name in ("quiet", "writer", "old"):
            env.wait_domain(name)
        wait_for("dirty rates measured", lambda: all(
            env.domain(n)["idle"]["source"] == "host" for n in ("quiet", "writer")),
            timeout=15)
        quiet, writer, old = (env.domain(n)["idle"] for n in ("quiet", "writer", "old"))
        assert quiet["fraction"] == 1.0 and quiet["dirty-rate"] == 0, quiet
        assert writer["fraction"] == 0.0 and writer["dirty-rate"] == 400 * MIB, writer
        assert old["source"] in ("guest", "none") and old["fraction"] >= 0.5, old
        out = env.cli("dominfo", "writer").stdout
        assert "Idle memory:" in out and "measured by the host" in out, out
        out = env.cli("dominfo", "old").stdout
        assert "Idle memory:" in out and "measured by the host" not in out, out
        assert "cannot measure its dirty rate" in env.logtext()
        env.stop_daemon()


def case_idle_measures_back_off():
    """A VM whose idle share and held hold still is measured by the host 2, 4, then 8 times
    less often; a measure that finds the share moved, or held moving, brings it back to
    every idle-interval."""
    with Env("idleback") as env:
        env.write_config(extra="idle-interval = 1s")
        env.start_fake("quiet", 512, "--anon-mib", "100", "--dirty-mib-s", "0")
        env.start_daemon()
        env.wait_domain("quiet")

        def idle():
            return env.domain("quiet")["idle"]

        wait_for("the measures to settle", lambda: idle()["spacing"] == 8, timeout=30)
        # measured every 8 s now, not every second: the measure grows old between
        ages = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 9:
            ages.append(idle()["age-ms"])
            time.sleep(0.25)
        assert max(ages) > 4000 and min(ages) >= 0, ages
        out = env.cli("dominfo", "quiet").stdout
        assert "every 8 idle-intervals" in out, out
        # the guest starts writing: the next measure finds it busy, and every second again
        env.fake_do("quiet", "x-fake-set", {"dirty-mib-s": 400})
        wait_for("the busy measure", lambda: idle()["dirty-rate"] == 400 * MIB, timeout=15)
        first = idle()
        assert first["spacing"] == 1 and first["fraction"] == 0.0, first
        # once settled again, held growing by more than a sixteenth: every second at once
        wait_for("the measures to settle again", lambda: idle()["spacing"] > 1, timeout=15)
        held0 = env.res("quiet")["held"]
        env.fake_do("quiet", "x-fake-touch", {"mib": 64, "kind": "anon"})
        wait_for("held to grow", lambda: env.res("quiet")["held"] > held0 + pages(40),
                 timeout=10)
        assert idle()["spacing"] == 1, idle()
        env.stop_daemon()


def case_host_pressure_cgroup():
    """The root's budget from the VMs' cgroup (a v1 tree of plain files here): over it,
    vmbcd takes from the VM whose memory the host measured idle, says why, and gives back
    once the cgroup has room again and giveback-delay passed."""
    with Env("hostpressure") as env:
        cg = os.path.join(env.dir, "vms")
        os.makedirs(cg)

        def cgroup(usage_mib, limit_mib):
            for name, v in (("memory.usage_in_bytes", usage_mib),
                            ("memory.limit_in_bytes", limit_mib)):
                with open(os.path.join(cg, name), "w") as f:
                    f.write(f"{v * MIB}\n")

        cgroup(400, 2048)
        env.write_config(extra=f"""idle-interval = 1s
[host]
cgroup = {cg}
pressure = off
interval = 250ms
giveback-delay = 1s
""")
        env.start_fake("quiet", 512, "--anon-mib", "100", "--dirty-mib-s", "0")
        env.start_fake("writer", 512, "--anon-mib", "100", "--dirty-mib-s", "400")
        env.start_daemon()
        for name in ("quiet", "writer"):
            env.wait_domain(name)
        wait_for("dirty rates measured", lambda: all(
            env.domain(n)["idle"]["source"] == "host" for n in ("quiet", "writer")),
            timeout=15)
        host = env.domain("host")
        assert host["budget-source"] == "cgroup-v1" and host["cgroup"] == cg, host
        assert host["pressure"] == "none" and host["taken"] == 0, host
        full = env.domain("quiet")["actual"]
        # the cgroup's limit drops under what it charges: the budget with it
        cgroup(400, 300)
        wait_for("the host to take", lambda: env.domain("host")["taken"] > 0, timeout=10)
        wait_for("quiet's balloon to inflate", lambda: env.domain("quiet")["actual"] < full,
                 timeout=10)
        assert env.domain("writer")["actual"] == full, env.domain("writer")
        takes = [l for l in env.logtext().splitlines() if "host: pressure" in l]
        assert "from 'quiet'" in takes[0] and "100% idle by host" in takes[0], takes[0]
        out = env.cli("dominfo", "host").stdout
        assert "from cgroup-v1" in out and cg in out, out
        # room again: back to where it was, after giveback-delay
        cgroup(250, 2048)
        wait_for("quiet given back", lambda: env.domain("quiet")["actual"] >= full,
                 timeout=15)
        assert env.domain("host")["given"] > 0
        assert any("giving" in l and "back to 'quiet'" in l
                   for l in env.logtext().splitlines())
        env.stop_daemon()


def case_balloon_stall():
    """A balloon that moves, but slower than balloon-stall-rate: the limit reclaim
    fails as stalled long before reclaim-timeout, the stall is counted, and with
    the default escalation (auto) on a process without a cgroup v2 memory.high
    (cgroup-root points at an empty tree) the failure names why nothing holds it."""
    with Env("stall", reclaim_timeout="30s") as env:
        cg_root = os.path.join(env.dir, "cgroup")
        os.makedirs(cg_root)
        env.write_config(extra=f"balloon-stall-rate = 8M\ncgroup-root = {cg_root}")
        env.start_fake("vm1", 512, "--cache-mib", "300", "--slow-inflate", "1")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(290))
        with env.control() as c:
            t0 = time.monotonic()
            try:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"}, timeout=40)
                raise AssertionError("set-limit succeeded with a balloon at 1 MiB/s")
            except QMPError as e:
                took = time.monotonic() - t0
                assert "stalled" in e.desc, e.desc
            ev = c.wait_event("VMBC_RECLAIM_FAILED", timeout=10,
                              pred=lambda e: e["data"]["domain"] == "vm1")
        print(f"failed after {took:.1f} s: {ev['data']['message']}")
        # failed by the stall, not by reclaim-timeout (30 s)
        assert took < 20, took
        assert "stalled" in ev["data"]["message"], ev
        assert "nothing holds it" in ev["data"]["message"], ev
        assert "memory.high" in ev["data"]["message"], ev
        d = env.domain("vm1")
        assert d["reclaims"]["stalls"] >= 1, d
        assert env.res("vm1")["failcnt"] >= 1
        env.stop_daemon()


def case_under_reporting_held_to_limit():
    """A guest that keeps reporting, on time, 0 available and 0 free while its
    300 MiB are reclaimable cache: its word counts for nothing against a limit,
    with or without trust-guest (the host sees it hold far less than it claims
    to use). Within reclaim-timeout held is at or under the limit, no failure."""
    with Env("underrep", reclaim_timeout="10s") as env:
        env.write_config(extra="[domain vm1]\ntrust-guest = true\n")
        env.start_fake("vm1", 512, "--cache-mib", "300", "--under-reporting")
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(290))
        assert env.domain("vm1")["trust-guest"] is True
        wait_for("fresh stats saying nothing is available",
                 lambda: (lambda s: s["available"] == 0 and s["free"] == 0 and
                          s["last-update"] >= time.time() - 3)(env.domain("vm1")["stats"]),
                 timeout=10)
        with env.control() as c:
            t0 = time.monotonic()
            r = c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "100M", "limit": "100M"}, timeout=30)
            took = time.monotonic() - t0
            assert r["held"] <= pages(100), r
            c.wait_event("VMBC_RECLAIM_DONE", timeout=5)
        assert took <= 10.0, took
        assert env.res("vm1")["failcnt"] == 0
        assert env.domain("vm1")["actual"] <= pages(100)
        # the fake's own resident memory agrees
        guest, _ = fake_rss(env, "vm1")
        assert guest <= pages(100) + SLACK, guest
        # and it kept reporting nothing available throughout
        assert env.domain("vm1")["stats"]["available"] == 0
        env.stop_daemon()


def case_limit_fails_gives_back():
    """A guarantee above the limit, 300 MiB of anon memory: the balloon goes to the
    guarantee and held does not come down. The failure is counted, the balloon is
    given back to where it was (and stays there across the retries: no ratchet),
    the event says what was kept and given back, and the escalation (memory-high,
    in a tree under the test's cgroup-root) is applied."""
    with Env("giveback") as env:
        cg_root = os.path.join(env.dir, "cgroup")
        env.write_config(extra=f"cgroup-root = {cg_root}\nescalation = memory-high")
        env.start_fake("vm1", 512, "--anon-mib", "300")
        high = fake_cgroup(cg_root, env.fakes["vm1"][0].pid, "max", hybrid=True)
        env.start_daemon()
        env.wait_domain("vm1")
        env.wait_held("vm1", pages(290))
        with env.control() as c:
            c.execute("set-guarantee", {"domain": "vm1", "size": "400M"})
            try:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "128M", "limit": "128M"}, timeout=30)
                raise AssertionError("set-limit below the guarantee succeeded")
            except QMPError as e:
                assert "guarantee 400M" in e.desc, e.desc
            ev = c.wait_event("VMBC_RECLAIM_FAILED", timeout=10)
            msg = ev["data"]["message"]
            assert "kept 0" in msg and "gave 112M back" in msg and "back to 512M" in msg, msg
            if high is not None:
                c.wait_event("VMBC_ESCALATED", timeout=5)
            # the retries: each goes to the guarantee again and gives it all back
            lowest = pages(512)
            while env.res("vm1")["failcnt"] < 3:
                lowest = min(lowest, env.domain("vm1")["actual"])
                time.sleep(0.1)
            for _ in range(2):
                ev = c.wait_event("VMBC_RECLAIM_FAILED", timeout=10)
                assert "back to 512M" in ev["data"]["message"], ev
        assert lowest >= pages(400), lowest
        wait_for("the balloon given back", lambda: env.fake_state("vm1")["actual"] == 512 * MIB,
                 timeout=10)
        assert env.res("vm1")["held"] > pages(128)
        if high is not None:
            with open(high) as f:
                assert f.read() != "max"
        env.stop_daemon()


class NotifySocket:
    """The service manager's end of sd_notify: a datagram socket in the test's dir."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.messages = []  # (monotonic time, {key: value})

    def close(self):
        self.sock.close()

    def read(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        msg = dict(line.split("=", 1) for line in data.splitlines() if "=" in line)
        self.messages.append((time.monotonic(), msg))
        return msg

    def wait(self, what, pred, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.read(max(deadline - time.monotonic(), 0.01))
            if msg is not None and pred(msg):
                return msg
        raise AssertionError(f"no {what} within {timeout}s: {self.messages[-10:]}")


def case_sd_notify():
    """Type=notify: READY=1 only once the VMs that ran at start are adopted (one of them
    answers its monitor late), STATUS= with the VMs, those over their limit and those
    failing, WATCHDOG=1 from the main loop as often as $WATCHDOG_USEC asks, and none
    while vmbcd is stopped."""
    with Env("notify") as env:
        env.start_fake("vm1", 512, "--no-balloon-driver", "--anon-mib", "200")
        slow = env.start_fake("vm2", 256, "--cache-mib", "16")
        notify = NotifySocket(os.path.join(env.dir, "notify.sock"))
        try:
            # vm2's QEMU does not answer (yet): its socket accepts, no greeting comes
            os.kill(slow.pid, signal.SIGSTOP)
            env.start_daemon(env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "600000"})
            started = time.monotonic()
            msg = notify.read(1.5)
            while msg is not None and "READY" not in msg:
                msg = notify.read(max(started + 1.5 - time.monotonic(), 0.01))
            assert msg is None, f"READY before vm2 was adopted: {notify.messages}"
            os.kill(slow.pid, signal.SIGCONT)
            ready = notify.wait("READY=1", lambda m: m.get("READY") == "1")
            # what READY promises: both adopted, with their saved and configured limits
            with env.control() as c:
                names = {d["name"] for d in c.execute("query-domains")["domains"]}
            assert names == {"vm1", "vm2"}, names
            assert re.fullmatch(r"2 VMs, \d+ over limit, \d+ failing", ready.get("STATUS", "")), \
                ready
            # vm1 has no balloon driver: a limit under what it holds fails and stays over
            env.wait_held("vm1", pages(195))
            with env.control() as c:
                try:
                    c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                            "barrier": "128M", "limit": "128M"}, timeout=30)
                    raise AssertionError("set-limit succeeded without a balloon driver")
                except QMPError as e:
                    assert "balloon driver" in e.desc, e.desc
            notify.wait("STATUS with vm1 over its limit and failing",
                        lambda m: m.get("STATUS") == "2 VMs, 1 over limit, 1 failing",
                        timeout=10)
            # the watchdog: every 0.3 s while the main loop runs
            t0 = time.monotonic()
            while time.monotonic() - t0 < 2.0:
                notify.read(0.1)
            fed = [t for t, m in notify.messages if m.get("WATCHDOG") == "1" and t >= t0]
            assert len(fed) >= 4, notify.messages[-20:]
            gaps = [b - a for a, b in zip(fed, fed[1:])]
            assert max(gaps) < 0.6, gaps
            # a main loop that does not run feeds nothing
            os.kill(env.daemon.pid, signal.SIGSTOP)
            t1 = time.monotonic()
            while time.monotonic() - t1 < 1.5:
                notify.read(0.1)
            os.kill(env.daemon.pid, signal.SIGCONT)
            starved = [t for t, m in notify.messages
                       if m.get("WATCHDOG") == "1" and t1 + 0.1 < t < t1 + 1.5]
            assert not starved, starved
            notify.wait("WATCHDOG=1 again", lambda m: m.get("WATCHDOG") == "1", timeout=3)
            env.stop_daemon()
            notify.wait("STOPPING=1", lambda m: m.get("STOPPING") == "1", timeout=1)
        finally:
            try:
                os.kill(slow.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            notify.close()


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(CASES))
        sys.exit(0)
    sys.exit(run(CASES))
