#!/usr/bin/env python3
"""vmbc's benchmarks (run through tools/bench).

scale N: N fake-qemu processes, each a small guest whose RAM is real resident
memory, under one vmbcd (QMP backend, 1 s tick). A tenth of them are made to
cross their limit while vmbcd is measured for a window. Reported: vmbcd CPU (%
of one core, and µs per VM per tick), vmbcd RSS and bytes per VM, tick duration
p50/p99 and overruns (from vmbcd's own per-tick log), reaction latency (the
guest touching memory → vmbcd's limit-hit event, which is sent in the same tick
as the balloon command → held back under the limit) and the /metrics scrape
time.

real-guest: a real Linux guest under QEMU holding memory its balloon can take.
The physical limit is the balloon alone: QMP `balloon` straight to the target,
timed until the guest-RAM mapping's RSS is there. Then the same with vmbcd: the
limit lowered below held, timed until the RSS is under the limit. Ratio.
"""
import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
from vmbctest import QMP  # noqa: E402

PAGE = os.sysconf("SC_PAGESIZE")
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def proc_cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    return (f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Linux {platform.release()}, "
            f"{time.strftime('%Y-%m-%d')}")


class Daemon:
    def __init__(self, build, work, qmp_glob, metrics_port, extra=""):
        self.sock = os.path.join(work, "vmbcd.sock")
        self.conf = os.path.join(work, "vmbc.conf")
        self.log_path = os.path.join(work, "vmbcd.log")
        with open(self.conf, "w") as f:
            f.write(f"""[daemon]
backends = qmp
qmp-sockets = {qmp_glob}
control-socket = {self.sock}
state-dir = {work}/state
metrics-listen = 127.0.0.1:{metrics_port}
{extra}
""")
        self.log = open(self.log_path, "w")
        # only the daemon's own debug lines: one per tick, with its duration
        env = dict(os.environ)
        env.setdefault("G_MESSAGES_DEBUG", "vmbcd")
        self.proc = subprocess.Popen([os.path.join(build, "vmbcd"), "--foreground",
                                      "--config", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 30
        while not os.path.exists(self.sock):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("vmbcd did not start:\n" + open(self.log_path).read())
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def tick_durations(log_path, since_tick=0):
    """(tick number, ms, VMs) from vmbcd's per-tick debug lines."""
    out = []
    rx = re.compile(r"tick (\d+): (\d+) VMs in ([0-9.]+) ms")
    with open(log_path, errors="replace") as f:
        for line in f:
            m = rx.search(line)
            if m and int(m.group(1)) > since_tick:
                out.append((int(m.group(1)), float(m.group(3)), int(m.group(2))))
    return out


def scale(build, n, window):
    work = tempfile.mkdtemp(prefix=f"vmbc-bench-{n}-")
    qdir = os.path.join(work, "qmp")
    os.mkdir(qdir)
    port = free_port()
    fakes = []
    daemon = None
    fake_bin = os.path.join(build, "tests", "fake-qemu", "fake-qemu")
    # small guests so that thousands fit: 8 MiB of RAM, 1 MiB in use, a 4 MiB limit that the
    # offenders cross by touching 4 MiB more (page cache, which the balloon can take)
    mem_mib, base_mib, limit_mib, touch_mib = 8, 1, 4, 4
    try:
        daemon = Daemon(build, work, f"{qdir}/*.sock", port,
                        f"tick = 1s\nmargin = 512K\n[defaults]\nlimit = {limit_mib}M\n")
        time.sleep(1.5)
        rss0 = proc_rss_bytes(daemon.proc.pid)
        log(f"scale {n}: starting {n} fake-qemu ({mem_mib} MiB guests, {base_mib} MiB used)")
        t0 = time.monotonic()
        for i in range(n):
            path = os.path.join(qdir, f"vm{i:05d}.sock")
            p = subprocess.Popen([fake_bin, "--qmp", path, "--mem-mib", str(mem_mib),
                                  "--cache-mib", str(base_mib), "--die-with-parent",
                                  "--tick-ms", "200"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            fakes.append((p, path))
        # adopted: every VM known to vmbcd and sampled
        deadline = time.monotonic() + 300 + n * 0.05
        while True:
            with QMP(daemon.sock, timeout=120) as c:
                doms = c.execute("query-domains")["domains"]
            if len(doms) >= n:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {len(doms)} of {n} VMs adopted")
            time.sleep(1)
        log(f"scale {n}: all adopted after {time.monotonic() - t0:.0f} s; settling")
        time.sleep(5)

        # a quiet window: every VM sampled every tick, nothing over its limit
        q_tick = tick_durations(daemon.log_path)
        q_start = q_tick[-1][0] if q_tick else 0
        cpu_q0 = proc_cpu_seconds(daemon.proc.pid)
        q0 = time.monotonic()
        time.sleep(window / 2)
        quiet_s = time.monotonic() - q0
        cpu_quiet = proc_cpu_seconds(daemon.proc.pid) - cpu_q0
        quiet_ticks = [t for t in tick_durations(daemon.log_path) if t[0] > q_start]
        rss_quiet = proc_rss_bytes(daemon.proc.pid)

        # the measured window
        ev = QMP(daemon.sock, timeout=30)
        start_tick = len(tick_durations(daemon.log_path)) and \
            tick_durations(daemon.log_path)[-1][0]
        cpu0 = proc_cpu_seconds(daemon.proc.pid)
        w0 = time.monotonic()
        offenders = list(range(0, n, 10))
        touched = {}
        step = window * 0.6 / max(len(offenders), 1)
        scrape_ms = []
        next_scrape = w0 + 1
        for k, i in enumerate(offenders):
            while time.monotonic() < w0 + k * step:
                time.sleep(0.005)
            with QMP(fakes[i][1], timeout=30) as q:
                touched[f"vm{i:05d}"] = time.time()
                q.execute("x-fake-touch", {"mib": touch_mib, "kind": "cache"})
            if time.monotonic() >= next_scrape:
                t = time.monotonic()
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                    r.read()
                scrape_ms.append((time.monotonic() - t) * 1e3)
                next_scrape = time.monotonic() + 2
        # collect events until the window ends
        hits, dones = {}, {}
        end = w0 + window
        while time.monotonic() < end:
            ev.sock.settimeout(max(end - time.monotonic(), 0.01))
            try:
                msg = ev.read()
            except (socket.timeout, TimeoutError):
                break
            if "event" not in msg:
                continue
            ts = msg["timestamp"]["seconds"] + msg["timestamp"]["microseconds"] / 1e6
            dom = msg["data"]["domain"]
            if msg["event"] == "VMBC_LIMIT_HIT" and dom not in hits:
                hits[dom] = ts
            elif msg["event"] == "VMBC_RECLAIM_DONE" and dom not in dones:
                dones[dom] = ts
        ev.close()
        for _ in range(5):
            t = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
                page = r.read()
            scrape_ms.append((time.monotonic() - t) * 1e3)
        elapsed = time.monotonic() - w0
        cpu = proc_cpu_seconds(daemon.proc.pid) - cpu0
        rss = proc_rss_bytes(daemon.proc.pid)
        ticks = [t for t in tick_durations(daemon.log_path) if t[0] > start_tick]
        tick_ms = [t[1] for t in ticks]
        overruns = sum(1 for t in tick_ms if t > 1000.0)
        react = [(hits[d] - touched[d]) * 1e3 for d in touched if d in hits]
        settle = [(dones[d] - hits[d]) * 1e3 for d in hits if d in dones and d in touched]
        qt = [t[1] for t in quiet_ticks]
        res = {
            "n": n,
            "quiet_cpu_pct": cpu_quiet / quiet_s * 100.0,
            "quiet_cpu_us_per_vm_tick": cpu_quiet * 1e6 / max(n * max(len(qt), 1), 1),
            "quiet_tick_p50_ms": pct(qt, 50),
            "quiet_tick_p99_ms": pct(qt, 99),
            "quiet_rss_mib": rss_quiet / MIB,
            "window_s": elapsed,
            "ticks": len(ticks),
            "cpu_pct": cpu / elapsed * 100.0,
            "cpu_us_per_vm_tick": cpu * 1e6 / max(n * max(len(ticks), 1), 1),
            "rss_mib": rss / MIB,
            "rss_per_vm_bytes": (rss - rss0) / n,
            "tick_p50_ms": pct(tick_ms, 50),
            "tick_p99_ms": pct(tick_ms, 99),
            "tick_max_ms": max(tick_ms) if tick_ms else float("nan"),
            "overruns": overruns,
            "offenders": len(offenders),
            "limit_hits": len([d for d in touched if d in hits]),
            "react_p50_ms": pct(react, 50),
            "react_p99_ms": pct(react, 99),
            "settle_p50_ms": pct(settle, 50),
            "settle_p99_ms": pct(settle, 99),
            "scrape_p50_ms": pct(scrape_ms, 50),
            "scrape_max_ms": max(scrape_ms) if scrape_ms else float("nan"),
            "page_bytes": len(page),
        }
        log(f"scale {n}: {json.dumps(res)}")
        return res
    finally:
        if daemon is not None:
            daemon.stop()
        for p, _ in fakes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p, _ in fakes:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


def wait_rss_below(guest, limit_bytes, t0, timeout):
    """Seconds from @t0 until the guest-RAM mapping's RSS is at most @limit_bytes."""
    while time.monotonic() - t0 < timeout:
        if guest.rss_guest_ram() <= limit_bytes:
            return time.monotonic() - t0
        time.sleep(0.005)
    return float("nan")


def real_guest(build, rounds):
    import vmbcguest
    os.environ.setdefault("VMBC_GUEST_DIR", os.path.join(build, "tests", "guest"))
    work = tempfile.mkdtemp(prefix="vmbc-bench-guest-")
    os.chmod(work, 0o755)
    gdir = os.path.join(work, "g")
    os.mkdir(gdir)
    limit_mib = 256
    phys, ours = [], []
    guest = vmbcguest.Guest(gdir, mem_mib=1024, free_page_reporting=False,
                            extra_args=("-name", "bench"))
    daemon = None
    try:
        guest.start()

        def load():
            # 600 MiB touched and given back: resident on the host (no free page reporting),
            # free in the guest, so the balloon can take it
            guest.balloon_actual()
            guest.set_balloon(1024 * MIB)
            guest.wait_balloon(1024 * MIB, timeout=60)
            guest.fill(600)
            guest.free()
            time.sleep(1)

        for r in range(rounds):
            load()
            target = (limit_mib - 5) * MIB
            t0 = time.monotonic()
            guest.set_balloon(target)
            dt = wait_rss_below(guest, limit_mib * MIB, t0, 60)
            phys.append(dt)
            log(f"real-guest round {r}: balloon alone {dt * 1e3:.0f} ms")
        # the same with vmbcd enforcing a limit
        port = free_port()
        daemon = Daemon(build, work, f"{gdir}/qmp.sock", port,
                        "tick = 1s\nreclaim-timeout = 20s\n")
        for r in range(rounds):
            with QMP(daemon.sock, timeout=60) as c:
                c.execute("set-limit", {"domain": "bench", "resource": "physpages",
                                        "barrier": "unlimited", "limit": "unlimited"})
            load()
            deadline = time.monotonic() + 30
            while True:
                with QMP(daemon.sock) as c:
                    d = c.execute("query-domain", {"domain": "bench"})
                held = next(x["held"] for x in d["resources"] if x["resource"] == "physpages")
                if held * PAGE > 500 * MIB or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            t0 = time.monotonic()
            with QMP(daemon.sock, timeout=60) as c:
                c.execute("set-limit", {"domain": "bench", "resource": "physpages",
                                        "barrier": f"{limit_mib}M", "limit": f"{limit_mib}M"})
            dt = wait_rss_below(guest, limit_mib * MIB, t0, 60)
            ours.append(dt)
            log(f"real-guest round {r}: vmbcd {dt * 1e3:.0f} ms")
        res = {
            "phys_p50_ms": statistics.median(phys) * 1e3,
            "ours_p50_ms": statistics.median(ours) * 1e3,
            "phys_all_ms": [round(x * 1e3) for x in phys],
            "ours_all_ms": [round(x * 1e3) for x in ours],
        }
        res["ratio"] = res["ours_p50_ms"] / res["phys_p50_ms"]
        log(f"real-guest: {json.dumps(res)}")
        return res
    finally:
        if daemon is not None:
            daemon.stop()
        guest.stop()
        shutil.rmtree(work, ignore_errors=True)


def markdown(scales, rg, argv):
    lines = [f"Machine: {machine()}.", "",
             f"Command: `tools/bench {' '.join(argv)}`", ""]
    if scales:
        lines += [
            "Steady state (every VM sampled every tick, none over its limit):", "",
            "| VMs | vmbcd CPU (% of a core) | CPU µs / VM / tick | tick p50 | tick p99 "
            "| vmbcd RSS | bytes / VM |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in scales:
            lines.append(
                f"| {r['n']} | {r['quiet_cpu_pct']:.2f} % | {r['quiet_cpu_us_per_vm_tick']:.1f} "
                f"| {r['quiet_tick_p50_ms']:.2f} ms | {r['quiet_tick_p99_ms']:.2f} ms "
                f"| {r['quiet_rss_mib']:.1f} MiB | {r['rss_per_vm_bytes']:.0f} |")
        lines += [
            "", "Under load (a tenth of the VMs cross their limit during the window, "
            "/metrics scraped every 2 s):", "",
            "| VMs | vmbcd CPU (% of a core) | CPU µs / VM / tick | vmbcd RSS "
            "| tick p50 | tick p99 | overruns | reaction p50 / p99 (touch → balloon sent) "
            "| back under limit p50 / p99 | /metrics scrape p50 (max) | page |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in scales:
            lines.append(
                f"| {r['n']} | {r['cpu_pct']:.2f} % | {r['cpu_us_per_vm_tick']:.1f} "
                f"| {r['rss_mib']:.1f} MiB "
                f"| {r['tick_p50_ms']:.2f} ms | {r['tick_p99_ms']:.2f} ms | {r['overruns']} "
                f"| {r['react_p50_ms']:.0f} / {r['react_p99_ms']:.0f} ms "
                f"| {r['settle_p50_ms']:.0f} / {r['settle_p99_ms']:.0f} ms "
                f"| {r['scrape_p50_ms']:.1f} ms ({r['scrape_max_ms']:.1f}) "
                f"| {r['page_bytes'] / MIB:.1f} MiB |")
        lines += ["", "Limit hits seen / VMs made to cross: " + ", ".join(
            f"N={r['n']}: {r['limit_hits']}/{r['offenders']} over {r['ticks']} ticks"
            for r in scales), ""]
    if rg:
        lines += [
            "| real guest (1 GiB, 600 MiB to give back) | p50 | rounds |",
            "|---|---:|---|",
            f"| balloon alone (the physical limit) | {rg['phys_p50_ms']:.0f} ms "
            f"| {rg['phys_all_ms']} |",
            f"| vmbcd: limit lowered → held ≤ limit | {rg['ours_p50_ms']:.0f} ms "
            f"| {rg['ours_all_ms']} |",
            f"| ratio | **{rg['ratio']:.2f}** | |", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--window", type=float, default=40.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("what", nargs="*")
    args = ap.parse_args()
    argv = args.what or ["scale", "100", "1000", "5000", "real-guest"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    scales, rg = [], None
    i = 0
    while i < len(argv):
        if argv[i] == "scale":
            i += 1
            while i < len(argv) and argv[i].isdigit():
                scales.append(scale(args.build, int(argv[i]), args.window))
                i += 1
        elif argv[i] == "real-guest":
            rg = real_guest(args.build, args.rounds)
            i += 1
        else:
            sys.exit(f"tools/bench: unknown benchmark '{argv[i]}' (scale N..., real-guest)")
    md = markdown(scales, rg, argv)
    out = os.path.join(args.build, "results.md")
    with open(out, "w") as f:
        f.write(md + "\n")
    print(md)
    log(f"written to {out}")


if __name__ == "__main__":
    main()
