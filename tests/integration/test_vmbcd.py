#!/usr/bin/env python3
"""Integration tests: vmbcd with its QMP backend, the control socket and the
vmbc CLI against fake-qemu processes whose guest RAM is real, resident memory.

Run one case: test_vmbcd.py CASE (meson runs each as its own test).
"""
import json
import os
import pwd
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vmbctest import MIB, PAGE, QMP, QMPError, Env, pages, run, wait_for  # noqa: E402


def near(a, b, tol):
    return abs(a - b) <= tol


def case_charge_uncharge():
    with Env("charge") as env:
        env.start_fake("vm1", 256)
        env.start_daemon()
        env.wait_domain("vm1")
        base = env.res("vm1")["held"]
        env.fake_do("vm1", "x-fake-touch", {"mib": 96, "kind": "anon"})
        # held follows what the host sees resident in the guest-RAM mapping
        wait_for("held to rise by ~96 MiB",
                 lambda: env.res("vm1")["held"] - base >= pages(90), timeout=10)
        held = env.res("vm1")["held"]
        rss_pages = env.guest_rss("vm1") // PAGE
        assert near(held, rss_pages, pages(8)), (held, rss_pages)
        env.fake_do("vm1", "x-fake-free", {"mib": 96, "kind": "anon"})
        wait_for("held to fall back", lambda: env.res("vm1")["held"] <= base + pages(8),
                 timeout=10)
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
        # the fake's real resident memory agrees
        assert env.guest_rss("vm1") <= 192 * MIB + 4 * MIB
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


def case_cli_setlimit():
    with Env("cli") as env:
        env.start_fake("web1", 512, "--cache-mib", "300")
        env.start_daemon()
        env.wait_domain("web1")
        env.wait_held("web1", pages(290))
        r = env.cli("setlimit", "web1", "physpages", "200M:256M")
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        assert env.res("web1")["held"] <= pages(256)
        r = env.cli("setlimit", "web1", "physpages", "12Q")
        assert r.returncode == 2 and "12Q" in r.stderr, (r.returncode, r.stderr)
        r = env.cli("setlimit", "web9", "physpages", "100M")
        assert r.returncode == 1 and "web9" in r.stderr, (r.returncode, r.stderr)
        r = env.cli("ubc")
        assert r.returncode == 0 and "Version: 2.5" in r.stdout, r.stdout
        assert "web1" in r.stdout or "physpages" in r.stdout
        r = env.cli("--json", "dominfo", "web1")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["name"] == "web1"
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


def cgroup_memory_high(pid):
    """The memory.high file of @pid's cgroup v2, found as vmbcd finds it, or None."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::/"):
                root = "/sys/fs/cgroup"
                if (os.path.isdir("/sys/fs/cgroup/unified") and
                        not os.path.exists("/sys/fs/cgroup/cgroup.controllers")):
                    root = "/sys/fs/cgroup/unified"
                path = os.path.join(root + line[3:].strip(), "memory.high")
                return path if os.path.exists(path) else None
    return None


def case_memory_high_restored():
    """A VM whose memory.high vmbcd set before a restart: the restarted vmbcd
    says so, tries to raise it with the limit, and forgets it when the VM ends.
    A bad mark in the state file is named and ignored."""
    with Env("mhigh") as env:
        env.start_fake("vm1", 256, "--anon-mib", "8")
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
        if cgroup_memory_high(env.fakes["vm1"][0].pid) is None:
            # raising the limit tries to raise memory.high too; here there is none to write
            with env.control() as c:
                c.execute("set-limit", {"domain": "vm1", "resource": "physpages",
                                        "barrier": "200M", "limit": "200M"})
            wait_for("the failed raise to be logged",
                     lambda: "the limit was raised but memory.high, which vmbcd set, was not"
                     in env.logtext(), timeout=10)
            assert "memory.high" in env.logtext().split("was not: ")[1], env.logtext()
            assert env.domain("vm1")["memory-high-set"] is True
        else:
            print("memory.high not raised: this process has a real cgroup to leave alone")
        env.kill_fake("vm1", signal.SIGKILL)
        env.wait_domain_gone("vm1")

        def saved():
            with open(state_file) as f:
                return json.load(f)["domains"]

        wait_for("vm1's mark forgotten with it",
                 lambda: "memory-high-set" not in saved().get("vm1", {}), timeout=10)
        assert saved()["vm1"]["physpages"]["limit"] in (pages(100), pages(200)), saved()
        env.stop_daemon()


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
        env.start_daemon()
        env.wait_domain("vm1")
        time.sleep(2)
        held = env.res("vm1")["held"]
        # held comes from the host, whatever the guest claims
        assert near(held, env.guest_rss("vm1") // PAGE, pages(8)), held
        env.stop_daemon()


CASES = {name[len("case_"):]: fn for name, fn in globals().items() if name.startswith("case_")}

if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--list":
        print("\n".join(CASES))
        sys.exit(0)
    sys.exit(run(CASES))
