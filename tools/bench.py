#!/usr/bin/env python3
"""vmbc's benchmarks (run through tools/bench).

scale N: N fake-qemu processes, each a small guest whose RAM is real resident
memory, under one vmbcd (QMP backend, 1 s tick). First a quiet steady state,
then a window in which a tenth of them cross their limit. Reported: vmbcd CPU
(% of one core, µs per VM per tick) in both, vmbcd RSS and bytes per VM, tick
duration p50/p99/max and overruns (vmbcd's per-tick debug line), reaction
latency from the tick whose sample first showed a VM over its limit to the
balloon request (VMBC_LIMIT_HIT's sample-age-us), to fake-qemu receiving it
(fake-qemu --balloon-log) and to held back within the limit (vmbcd's log), the
same from the guest's touch, and the /metrics scrape time.

pressure N: the host's pressure controller at N VMs (tests/bench-host-pressure): an engine
tick calm, under pressure (a take every tick) and giving back, one run of the controller as
the PSI trigger runs it, and one refresh of the host's signals on this machine (the VMs'
cgroup, /proc/meminfo, /proc/vmstat, memory PSI).

idle N: idle memory measured by the host. The QEMU side on a real 1 GiB guest: the CPU one
calc-dirty-rate measure costs QEMU (20 measures back to back against 20 s without), and how
long the commands take. The vmbcd side at N fake-qemu VMs that answer the dirty-rate
commands: vmbcd CPU per tick with idle-interval 1 s (four measures started and four
collected every tick, the most it does) against idle measuring off.

virtio-mem: the same reclaim on the same real guest (768 MiB of base RAM and a virtio-mem
device with 768 MiB plugged, 600 MiB filled and freed) by the balloon alone (QMP `balloon`) and
by virtio-mem alone (`qom-set requested-size`), each asked for 540 MiB and timed until it
says it is done (the balloon's actual, the device's size), with what the host got back of the
guest's RAM then (both backends' RSS); then vmbcd (which uses virtio-mem) lowering the limit
by as much, timed until set-limit answers. Ratio balloon / virtio-mem.

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
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
from vmbctest import QMP, QMPError  # noqa: E402

PAGE = os.sysconf("SC_PAGESIZE")
MIB = 1 << 20
IDLE_S = 15.0  # the steady-state measurement before the window
SCRAPE_S = 10.0  # /metrics scrape interval during the window


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = (len(v) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


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


def raise_nofile(want):
    """Raises this process's descriptor limits (inherited by what it starts) to @want if it can."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for lim in (max(want, hard), hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(lim, soft), max(lim, hard)))
            return
        except (ValueError, OSError):
            continue


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def schedstat_seconds(pid):
    """CPU time of @pid in seconds: every thread it has had, those that exited too (io_uring's
    io-wq workers come and go), from the process's CPU clock; where that cannot be read, the
    sum of /proc/PID/task/*/schedstat (ns) of the threads there now."""
    try:
        # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED), as clock_getcpuclockid() gives it
        return time.clock_gettime(((~pid) << 3) | 2)
    except OSError:
        pass
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except OSError:
            pass
    return total / 1e9


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
# the fakes run in this shell's cgroup: a failed reclaim must not set memory.high on it
escalation = none
{extra}
""")
        self.log = open(self.log_path, "w")
        # only the daemon's own debug lines: one per tick, with its duration
        env = dict(os.environ, G_MESSAGES_DEBUG="vmbcd")
        self.proc = subprocess.Popen([os.path.join(build, "src", "daemon", "vmbcd"), "--foreground",
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


class LogClock:
    """Turns GLib's HH:MM:SS.mmm log stamps (local wall clock) into epoch seconds."""

    def __init__(self, ref):
        lt = time.localtime(ref)
        self.midnight = time.mktime((lt.tm_year, lt.tm_mon, lt.tm_mday, 0, 0, 0, 0, 0, -1))
        self.ref = ref

    def __call__(self, stamp):
        h, m, s = stamp.split(":")
        t = self.midnight + int(h) * 3600 + int(m) * 60 + float(s)
        if t < self.ref - 43200:  # the run went past midnight
            t += 86400
        return t


RX_TICK = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}): tick (\d+): (\d+) VMs in ([0-9.]+) ms")
RX_HIT = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}): '([^']+)' physpages: held \S+ over limit")
RX_DONE = re.compile(r"(\d\d:\d\d:\d\d\.\d{3}): '([^']+)' physpages: held \S+ back within limit")


def statm_path(log_path):
    """How vmbcd said it reads statm (its g_info line at the first tick), or "?"."""
    with open(log_path, errors="replace") as f:
        for line in f:
            m = re.search(r"statm reads: (.*)$", line)
            if m:
                return m.group(1).strip()
    return "?"


def read_log(log_path, clock):
    """Ticks as (number, start epoch s, ms, VMs), limit hits and reclaims done as
    {domain: [epoch s, ...]}, from vmbcd's log (per-tick debug lines and g_info lines)."""
    ticks, hits, dones = [], {}, {}
    with open(log_path, errors="replace") as f:
        for line in f:
            m = RX_TICK.search(line)
            if m:
                ms = float(m.group(4))
                ticks.append((int(m.group(2)), clock(m.group(1)) - ms / 1e3, ms,
                              int(m.group(3))))
                continue
            m = RX_HIT.search(line)
            if m:
                hits.setdefault(m.group(2), []).append(clock(m.group(1)))
                continue
            m = RX_DONE.search(line)
            if m:
                dones.setdefault(m.group(2), []).append(clock(m.group(1)))
    return ticks, hits, dones


def read_balloon_log(path):
    """{domain: [epoch s, ...]}: when each fake-qemu received a balloon command."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) != 4:
                    continue
                name = os.path.basename(parts[2]).rsplit(".sock", 1)[0]
                out.setdefault(name, []).append(int(parts[1]) / 1e6)
    except FileNotFoundError:
        pass
    return out


class EventReader(threading.Thread):
    """Collects vmbcd's control-socket events in the background:
    {event name: {domain: [(epoch s, data), ...]}}."""

    def __init__(self, sock_path):
        super().__init__(daemon=True)
        self.qmp = QMP(sock_path, timeout=60)
        self.qmp.sock.settimeout(0.2)
        self.events = {}
        self.stopping = False
        self.start()

    def run(self):
        while not self.stopping:
            try:
                msg = self.qmp.read()
            except (socket.timeout, TimeoutError):
                continue
            except (OSError, EOFError, ValueError):
                return
            if "event" not in msg:
                continue
            ts = msg["timestamp"]["seconds"] + msg["timestamp"]["microseconds"] / 1e6
            dom = msg.get("data", {}).get("domain")
            self.events.setdefault(msg["event"], {}).setdefault(dom, []).append(
                (ts, msg.get("data", {})))

    def stop(self):
        self.stopping = True
        self.join(5)
        self.qmp.close()


def first_after(times, t):
    for x in times or ():
        if x >= t:
            return x
    return None


def scrape(port, timeout=60):
    """(ms, page) of one GET /metrics; (inf, b"") when it did not finish within @timeout s."""
    t = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            page = r.read()
    except (OSError, TimeoutError) as e:
        log(f"/metrics scrape failed after {time.monotonic() - t:.1f} s: {e}")
        return float("inf"), b""
    return (time.monotonic() - t) * 1e3, page


def start_perf(build, daemon, n, phase):
    """With VMBC_BENCH_PERF=idle or =window: a call-graph profile of vmbcd over that phase."""
    if os.environ.get("VMBC_BENCH_PERF") != phase:
        return None
    out = os.path.join(build, f"perf-{n}-{phase}.data")
    log(f"scale {n}: profiling the {phase} phase into {out} "
        f"(perf report -i {out} --comm vmbcd)")
    freq = os.environ.get("VMBC_BENCH_PERF_FREQ", "199")
    # The whole machine, vmbcd picked out at report time: a per-process recording (-p) counts
    # nothing on some kernels and hypervisors, and the kernel's share of vmbcd's reads (statm)
    # is what the profile is for. The software clock counts where hardware counters do not.
    return subprocess.Popen(["perf", "record", "-q", "-a", "-e", "cpu-clock", "-F", freq,
                             "-g", "-o", out],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_perf(perf):
    if perf is not None:
        perf.send_signal(signal.SIGINT)
        perf.wait(120)


def daemon_extra(opts):
    """The [daemon] keys every scale benchmark sets: the tick, the rescan, the growth ceiling,
    how statm is read."""
    extra = f"tick = {opts.tick}\nrescan-interval = 2s\n"
    if opts.ceiling is not None:
        extra += f"growth-ceiling = {opts.ceiling}\n"
    if opts.statm is not None:
        extra += f"statm-reads = {opts.statm}\n"
    return extra


def parse_duration(text):
    m = re.fullmatch(r"([0-9.]+)(ms|s)", text)
    if not m:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration like 1s or 100ms")
    return float(m.group(1)) / (1000.0 if m.group(2) == "ms" else 1.0)


def run_guarded(fn, *args):
    """Runs one benchmark; an Abort (the machine cannot take more) is said and ends the run."""
    try:
        return fn(*args)
    except Abort as e:
        log(f"tools/bench: aborted: {e}")
        log("tools/bench: every process it started was stopped; fewer VMs, a larger "
            "--max-load or a quieter machine may do")
        sys.exit(3)


class Abort(Exception):
    """The machine cannot take more: the benchmark stops cleanly and says why."""


def psi_some_avg10():
    """The machine's memory stall now (/proc/pressure/memory, some avg10, %); 0 without PSI."""
    try:
        with open("/proc/pressure/memory") as f:
            for line in f:
                if line.startswith("some"):
                    return float(line.split()[1].split("=")[1])
    except OSError:
        pass
    return 0.0


def procs_running():
    """Processes runnable now (/proc/stat), this one included."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("procs_running"):
                return int(line.split()[1])
    return 0


def load_guard(what, opts, need_bytes=0):
    """Waits (up to opts.load_wait s) for the 1-minute load average to fall to opts.max_load;
    raises Abort when it does not, or when MemAvailable is below @need_bytes plus a reserve
    of a tenth of the machine's RAM."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    reserve = total / 10
    if mem_available() < need_bytes + reserve:
        raise Abort(f"{what}: only {mem_available() / MIB:.0f} MiB available, "
                    f"{(need_bytes + reserve) / MIB:.0f} MiB needed (with a reserve of a tenth "
                    f"of RAM): not starting more")
    # the load average follows a burst a minute late: the processes runnable now say it at once
    busy = 4 * (os.cpu_count() or 1)
    deadline = time.monotonic() + opts.load_wait
    while os.getloadavg()[0] > opts.max_load or procs_running() > busy:
        if time.monotonic() > deadline:
            raise Abort(f"{what}: load average {os.getloadavg()[0]:.0f} (limit "
                        f"{opts.max_load:.0f}), {procs_running()} processes runnable (limit "
                        f"{busy}), for {opts.load_wait:.0f} s: not starting more")
        time.sleep(0.2)


def start_fakes(fake_bin, qdir, n, mem_mib, base_mib, balloon_log, fakes, opts,
                scripts=None, started=None):
    """Starts @n fake-qemu in batches of opts.batch, each batch listening before the next
    starts, with the machine's load and memory checked between batches (load_guard). With
    @started (a list), the wall-clock time each fake's socket appeared is appended to it, in
    order: its script's clock started no later."""
    per_fake = (0.7 + base_mib) * MIB
    for b0 in range(0, n, opts.batch):
        b1 = min(b0 + opts.batch, n)
        load_guard(f"starting fakes {b0}-{b1 - 1} of {n}", opts, (n - b0) * per_fake)
        for i in range(b0, b1):
            path = os.path.join(qdir, f"vm{i:05d}.sock")
            cmd = [fake_bin, "--qmp", path, "--mem-mib", str(mem_mib),
                   "--cache-mib", str(base_mib), "--die-with-parent",
                   "--balloon-log", balloon_log]
            if scripts is not None and scripts[i] is not None:
                cmd += ["--script", scripts[i]]
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            fakes.append((p, path))
        deadline = time.monotonic() + 60
        for p, path in fakes[b0:b1]:
            while not os.path.exists(path):
                if p.poll() is not None:
                    raise Abort(f"fake-qemu {path} exited with {p.returncode} at start")
                if time.monotonic() > deadline:
                    raise Abort(f"fakes {b0}-{b1 - 1}: not all listening after 60 s")
                time.sleep(0.01)
            if started is not None:
                started.append(time.time())


def stop_fleet(events, daemon, fakes, work):
    """The end of a run over fake-qemu processes: the event follower and vmbcd stopped, every
    fake stopped by its PID (killed after 30 s), the temporary directory removed unless
    VMBC_BENCH_KEEP asks to keep it."""
    if events is not None:
        events.stop()
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
    if os.environ.get("VMBC_BENCH_KEEP"):
        log(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


def scale(build, n, window, opts):
    work = tempfile.mkdtemp(prefix=f"vmbc-bench-{n}-")
    qdir = os.path.join(work, "qmp")
    os.mkdir(qdir)
    balloon_log = os.path.join(work, "balloon.log")
    port = free_port()
    fakes = []
    daemon = None
    events = None
    fake_bin = os.path.join(build, "tests", "fake-qemu", "fake-qemu")
    # Small guests under vmbcd's default margins (4 MiB) and steps (2 MiB): 64 MiB of RAM,
    # 1 MiB of it resident (page cache) at start, a 16 MiB limit. An offender touches 16 MiB
    # of page cache (17 MiB held): over its limit until vmbcd's balloon takes the cache back.
    # A fake costs about 0.7 MiB besides its resident guest RAM; where N of them would not fit
    # in half of the available memory they start with nothing resident.
    mem_mib, base_mib, limit_mib, touch_mib = 64, 1, 16, 16
    if n * (0.7 + base_mib) * MIB > mem_available() / 2:
        base_mib, touch_mib = 0, 17
    raise_nofile(2 * n + 1024)
    try:
        daemon = Daemon(build, work, f"{qdir}/*.sock", port,
                        daemon_extra(opts) + f"[defaults]\nlimit = {limit_mib}M\n")
        time.sleep(1.5)
        rss0 = proc_rss_bytes(daemon.proc.pid)
        # connected while vmbcd is idle: a daemon busy with thousands of VMs may be slow to
        # greet a new client
        events = EventReader(daemon.sock)
        log(f"scale {n}: vmbcd RSS {rss0 / MIB:.1f} MiB with no VM; starting {n} fake-qemu "
            f"({mem_mib} MiB guests, {base_mib} MiB resident)")
        t0 = time.monotonic()
        start_fakes(fake_bin, qdir, n, mem_mib, base_mib, balloon_log, fakes, opts)
        log(f"scale {n}: started in {time.monotonic() - t0:.0f} s")
        # adopted: every VM known to vmbcd and sampled (its per-tick line counts them)
        deadline = time.monotonic() + 120 + n * 0.03
        clock = LogClock(time.time())
        while True:
            ticks = read_log(daemon.log_path, clock)[0]
            if ticks and ticks[-1][3] >= n:
                break
            if daemon.proc.poll() is not None:
                raise RuntimeError("vmbcd exited:\n" + open(daemon.log_path).read()[-4000:])
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {ticks[-1][3] if ticks else 0} of {n} VMs adopted")
            load_guard(f"adopting {n} VMs", opts)
            time.sleep(1)
        log(f"scale {n}: all adopted after {time.monotonic() - t0:.0f} s; settling")
        time.sleep(5)
        # the steady state: nothing happens, nobody scrapes
        idle_tick = read_log(daemon.log_path, clock)[0][-1][0]
        perf = start_perf(build, daemon, n, "idle")
        cpu0 = schedstat_seconds(daemon.proc.pid)
        i0 = time.monotonic()
        time.sleep(IDLE_S)
        idle_cpu = schedstat_seconds(daemon.proc.pid) - cpu0
        stop_perf(perf)
        idle_s = time.monotonic() - i0
        idle_ticks = [t for t in read_log(daemon.log_path, clock)[0] if t[0] > idle_tick]

        # the measured window
        start_tick = read_log(daemon.log_path, clock)[0][-1][0]
        perf = start_perf(build, daemon, n, "window")
        cpu0 = schedstat_seconds(daemon.proc.pid)
        w0 = time.monotonic()
        offenders = list(range(0, n, 10))
        touched = {}
        step = window * 0.6 / max(len(offenders), 1)
        scrape_ms = []
        next_scrape = w0 + 1  # then every SCRAPE_S, as Prometheus would
        for k, i in enumerate(offenders):
            while time.monotonic() < w0 + k * step:
                time.sleep(0.002)
            with QMP(fakes[i][1], timeout=30) as q:
                t = time.time()
                q.execute("x-fake-touch", {"mib": touch_mib, "kind": "cache"})
                touched[f"vm{i:05d}"] = t
            if time.monotonic() >= next_scrape:
                scrape_ms.append(scrape(port)[0])
                next_scrape = time.monotonic() + SCRAPE_S
        while time.monotonic() < w0 + window:
            if time.monotonic() >= next_scrape:
                scrape_ms.append(scrape(port)[0])
                next_scrape = time.monotonic() + SCRAPE_S
            time.sleep(0.05)
        elapsed = time.monotonic() - w0
        cpu = schedstat_seconds(daemon.proc.pid) - cpu0
        rss = proc_rss_bytes(daemon.proc.pid)
        stop_perf(perf)
        page = b""
        for _ in range(5):
            ms, got = scrape(port)
            scrape_ms.append(ms)
            page = got or page

        events.stop()
        seen, events = events.events, None
        ticks, hits, dones = read_log(daemon.log_path, clock)
        # where vmbcd says how old the sample was when it sent the balloon request, the
        # sample's time is exact (the start of its tick): use it
        sample_at, request = {}, []
        for d, evs in seen.get("VMBC_LIMIT_HIT", {}).items():
            sample_at[d] = [ts - e["sample-age-us"] / 1e6 for ts, e in evs
                            if "sample-age-us" in e]
            if d in touched:
                request += [e["sample-age-us"] / 1e3 for ts, e in evs[:1] if "sample-age-us" in e]
        ballooned = read_balloon_log(balloon_log)
        ticks = [t for t in ticks if t[0] > start_tick]
        tick_ms = [t[2] for t in ticks]
        overruns = sum(1 for t in tick_ms if t > opts.tick_s * 1000.0)
        starts = [t[1] for t in ticks]
        sent, back, touch_sent, touch_back = [], [], [], []
        n_hit = n_done = 0
        for d, t_touch in touched.items():
            t_hit = first_after(hits.get(d), t_touch - 0.002)
            if t_hit is None:
                continue
            n_hit += 1
            # the tick whose sample first showed the VM over its limit: the last to start
            # before the limit hit was logged (a VM is sampled at, or a little after, the
            # start of its tick, so these latencies are upper bounds)
            t_tick = first_after(sample_at.get(d), t_hit - 1.0)
            if t_tick is None or t_tick > t_hit + 0.002:
                t_tick = max((s for s in starts if s <= t_hit + 0.001), default=None)
            t_bal = first_after(ballooned.get(d), t_hit - 0.002)
            t_done = first_after(dones.get(d), t_hit)
            if t_tick is not None and t_bal is not None:
                sent.append((t_bal - t_tick) * 1e3)
            if t_bal is not None:
                touch_sent.append((t_bal - t_touch) * 1e3)
            if t_done is not None:
                n_done += 1
                touch_back.append((t_done - t_touch) * 1e3)
                if t_tick is not None:
                    back.append((t_done - t_tick) * 1e3)
        res = {
            "n": n,
            "tick_s": opts.tick_s,
            "ceiling": opts.ceiling,
            "statm": statm_path(daemon.log_path),
            "threads": len(os.listdir(f"/proc/{daemon.proc.pid}/task")),
            "guest_mib": mem_mib,
            "base_mib": base_mib,
            "window_s": elapsed,
            "ticks": len(ticks),
            "idle_cpu_pct": idle_cpu / idle_s * 100.0,
            "idle_ticks": len(idle_ticks),
            "idle_us_per_vm_tick": idle_cpu * 1e6 / max(n * max(len(idle_ticks), 1), 1),
            "cpu_pct": cpu / elapsed * 100.0,
            "cpu_us_per_vm_tick": cpu * 1e6 / max(n * max(len(ticks), 1), 1),
            "rss_mib": rss / MIB,
            "rss_per_vm_bytes": (rss - rss0) / n,
            "tick_p50_ms": pct(tick_ms, 50),
            "tick_p99_ms": pct(tick_ms, 99),
            "tick_max_ms": max(tick_ms) if tick_ms else float("nan"),
            "overruns": overruns,
            "offenders": len(offenders),
            "limit_hits": n_hit,
            "reclaims_done": n_done,
            "request_p50_ms": pct(request, 50),
            "request_p99_ms": pct(request, 99),
            "sent_p50_ms": pct(sent, 50),
            "sent_p99_ms": pct(sent, 99),
            "back_p50_ms": pct(back, 50),
            "back_p99_ms": pct(back, 99),
            "touch_sent_p50_ms": pct(touch_sent, 50),
            "touch_sent_p99_ms": pct(touch_sent, 99),
            "touch_back_p50_ms": pct(touch_back, 50),
            "touch_back_p99_ms": pct(touch_back, 99),
            "scrape_p50_ms": pct(scrape_ms, 50),
            "scrape_max_ms": max(scrape_ms) if scrape_ms else float("nan"),
            "page_bytes": len(page),
        }
        log(f"scale {n}: {json.dumps(res)}")
        return res
    finally:
        stop_fleet(events, daemon, fakes, work)


def size_mib(text):
    """A vmbc.conf size a second ("2M", "2M/s", "1G") in MiB."""
    m = re.fullmatch(r"([0-9.]+)([KMGT]?)(/s)?", text)
    if not m:
        raise SystemExit(f"tools/bench: '{text}' is not a size a second like 2M")
    return float(m.group(1)) * {"K": 1 / 1024, "": 1 / MIB, "M": 1, "G": 1024,
                                "T": 1 << 20}[m.group(2)]


def growth(build, n, opts):
    """N fakes that each grow, one MiB at a time, at the growth ceiling from far below their
    limit to past it: how far past it is each one when vmbcd first sees it over?"""
    if opts.ceiling is None:
        raise SystemExit("tools/bench growth: give the rate with --ceiling SIZE")
    rate = size_mib(opts.ceiling)
    work = tempfile.mkdtemp(prefix=f"vmbc-bench-growth-{n}-")
    qdir = os.path.join(work, "qmp")
    os.mkdir(qdir)
    balloon_log = os.path.join(work, "balloon.log")
    port = free_port()
    fakes, daemon, events = [], None, None
    fake_bin = os.path.join(build, "tests", "fake-qemu", "fake-qemu")
    # 12 MiB at the peak: 1000 fakes fit in 13 GiB (at a 16 MiB limit, 20 GiB on a 24 GiB
    # machine without swap went with stalls of every process, vmbcd and the fakes, of up to 16 s)
    mem_mib, base_mib, limit_mib, past_mib = 64, 1, 8, 4
    steps = limit_mib - base_mib + past_mib
    # every fake starts growing 20-30 s after it started (adopted by then), at the ceiling
    scripts, last_at, t0s = [], 0.0, []
    rng = __import__("random").Random(13)
    for i in range(n):
        path = os.path.join(work, f"vm{i:05d}.script")
        t0 = 20.0 + rng.uniform(0, 10)
        t0s.append(t0)
        with open(path, "w") as f:
            for k in range(1, steps + 1):
                f.write(f"at {t0 + k / rate:.3f} touch cache 1\n")
        last_at = max(last_at, t0 + steps / rate)
        scripts.append(path)
    raise_nofile(2 * n + 1024)
    try:
        daemon = Daemon(build, work, f"{qdir}/*.sock", port,
                        daemon_extra(opts) + f"[defaults]\nlimit = {limit_mib}M\n")
        time.sleep(1.5)
        events = EventReader(daemon.sock)
        log(f"growth {n}: {n} fakes growing at {rate:g} MiB/s from {base_mib} MiB past a "
            f"{limit_mib} MiB limit, tick {opts.tick}")
        clock = LogClock(time.time())
        started = []
        # each fake grows to limit + past before its balloon takes it back
        load_guard(f"growth {n}", opts, n * (0.7 + limit_mib + past_mib) * MIB)
        start_fakes(fake_bin, qdir, n, mem_mib, base_mib, balloon_log, fakes, opts, scripts,
                    started)
        # the scripts count from each fake's start: the last batch's end is the last start
        cpu0 = schedstat_seconds(daemon.proc.pid)
        w0 = time.monotonic()
        psi_max = 0.0
        while time.monotonic() < w0 + last_at + 10:
            if daemon.proc.poll() is not None:
                raise RuntimeError("vmbcd exited:\n" + open(daemon.log_path).read()[-4000:])
            load_guard(f"growth {n}", opts)
            psi_max = max(psi_max, psi_some_avg10())
            time.sleep(1)
        cpu = schedstat_seconds(daemon.proc.pid) - cpu0
        elapsed = time.monotonic() - w0
        events.stop()
        seen, events = events.events, None
        over, late = [], []
        for d, evs in seen.get("VMBC_LIMIT_HIT", {}).items():
            if evs:
                ts, e = evs[0]
                over.append((e["held"] - e["limit"]) * PAGE / MIB)
                # the sample that saw it, against the step that took it over its limit as
                # scripted (its clock started by the time its socket was seen): how late
                i = int(d[2:]) if d and d.startswith("vm") and d[2:].isdigit() else -1
                if 0 <= i < len(started) and "sample-age-us" in e:
                    crossed = started[i] + t0s[i] + (limit_mib - base_mib + 1) / rate
                    late.append(ts - e["sample-age-us"] / 1e6 - crossed)
        ticks = read_log(daemon.log_path, clock)[0]
        gaps = [(b[1] - a[1]) * 1e3 for a, b in zip(ticks, ticks[1:])]
        tick_ms = [t[2] for t in ticks]
        bound = rate * opts.tick_s + 1.0  # a tick's growth at the ceiling, and one step
        res = {
            "n": n, "tick_s": opts.tick_s, "ceiling": opts.ceiling, "rate_mib_s": rate,
            "crossed": len(over), "over_p50_mib": pct(over, 50), "over_p99_mib": pct(over, 99),
            "over_max_mib": max(over) if over else float("nan"), "bound_mib": bound,
            "beyond_bound": sum(1 for o in over if o > bound + 1e-9),
            "cpu_pct": cpu / elapsed * 100.0,
            "seen_after_cross_p50_s": pct(late, 50), "seen_after_cross_p99_s": pct(late, 99),
            "seen_after_cross_max_s": max(late) if late else float("nan"),
            "tick_gap_p99_ms": pct(gaps, 99), "tick_gap_max_ms": max(gaps) if gaps else 0.0,
            "tick_p99_ms": pct(tick_ms, 99), "tick_max_ms": max(tick_ms) if tick_ms else 0.0,
            "psi_some_avg10_max": psi_max,
        }
        log(f"growth {n}: {json.dumps(res)}")
        return res
    finally:
        stop_fleet(events, daemon, fakes, work)


def libvirt_bench(build, n, opts, other=None):
    """N real domains (256 MiB TCG guests, balloon stats every second) under a private
    session libvirtd: the CPU of libvirtd alone over a quiet window, then of vmbcd (libvirt
    backend, its defaults) and libvirtd together over the same window; per domain per tick.
    With @other (another vmbcd binary, an older build), the same again with it, on the same
    domains and the same libvirtd, one after the other."""
    sys.path.insert(0, os.path.join(ROOT, "tests", "libvirt"))
    import test_libvirt_e2e as lve  # noqa: E402
    os.environ.setdefault("VMBC_GUEST_DIR", os.path.join(build, "tests", "guest"))
    work = tempfile.mkdtemp(prefix=f"vmbc-bench-lv-{n}-")
    os.chmod(work, 0o755)
    lv = lve.Libvirtd(os.path.join(work, "lv"))
    gdir = os.path.join(work, "guests")
    os.mkdir(gdir)
    user = lve.pwd.getpwnam(lve.UNPRIV)
    os.chown(gdir, user.pw_uid, user.pw_gid)
    daemon, log_f = None, None
    window = opts.lv_window
    rows = []

    def stop_daemon():
        nonlocal daemon, log_f
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        daemon = None
        if log_f is not None:
            log_f.close()
            log_f = None

    try:
        lv.start()
        for i in range(n):
            load_guard(f"starting domain {i} of {n}", opts, 400 * MIB)
            lve.DomainGuest(lv, f"bench{i:02d}", gdir, mem_mib=256).start(boot=False)
        log(f"libvirt {n}: {n} domains started; letting them boot")
        time.sleep(20 + 2 * n)
        lpid = lv.proc.pid
        alone_window = min(window, 60.0)
        c0 = schedstat_seconds(lpid)
        time.sleep(alone_window)
        alone = schedstat_seconds(lpid) - c0
        for k, binary in enumerate([os.path.join(build, "src", "daemon", "vmbcd")] +
                                   ([other] if other else [])):
            conf = os.path.join(work, f"vmbc-{k}.conf")
            with open(conf, "w") as f:
                f.write(f"""[daemon]
backends = libvirt
libvirt-uri = {lv.uri}
control-socket = {work}/vmbcd-{k}.sock
state-dir = {work}/state-{k}
metrics-listen = off
tick = {opts.tick}
escalation = none
""")
            # no debug log: a line a tick is work a production vmbcd does not do
            env = dict(os.environ, XDG_RUNTIME_DIR=lv.run_dir)
            env.pop("G_MESSAGES_DEBUG", None)
            log_path = os.path.join(work, f"vmbcd-{k}.log")
            sock = f"{work}/vmbcd-{k}.sock"
            log_f = open(log_path, "w")
            daemon = subprocess.Popen([binary, "--foreground", "--config", conf], env=env,
                                      stdout=log_f, stderr=subprocess.STDOUT)
            deadline = time.monotonic() + 120
            while True:
                adopted = 0
                if os.path.exists(sock):
                    try:
                        with QMP(sock, timeout=10) as c:
                            adopted = len(c.execute("query-domains")["domains"])
                    except (OSError, EOFError, ValueError, QMPError):
                        adopted = 0
                if adopted >= n:
                    break
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("vmbcd did not adopt every domain:\n" +
                                       open(log_path).read()[-3000:])
                time.sleep(0.5)
            # the first minutes after adoption (every domain's first stats, its idle measures
            # backing off as they agree), then the steady state: two phases, two rows
            phases = [("first", opts.lv_settle), ("steady", window)]
            for phase, seconds in phases:
                c0, d0 = schedstat_seconds(lpid), schedstat_seconds(daemon.pid)
                t0 = time.monotonic()
                time.sleep(seconds)
                served = schedstat_seconds(lpid) - c0
                ours = schedstat_seconds(daemon.pid) - d0
                elapsed = time.monotonic() - t0
                ticks = elapsed / opts.tick_s
                per = lambda cpu: cpu * 1e3 / (n * ticks)  # noqa: E731 - ms per domain per tick
                extra = served - alone * elapsed / alone_window
                res = {"n": n, "tick_s": opts.tick_s, "window_s": elapsed, "phase": phase,
                       "vmbcd": "this build" if k == 0 else binary,
                       "libvirtd_alone_pct": alone / alone_window * 100.0,
                       "libvirtd_pct": served / elapsed * 100.0,
                       "vmbcd_pct": ours / elapsed * 100.0,
                       "libvirtd_extra_ms": per(extra), "libvirtd_ms": per(served),
                       "vmbcd_ms": per(ours), "sum_ms": per(ours + extra)}
                log(f"libvirt {n}: {json.dumps(res)}")
                rows.append(res)
            stop_daemon()
        return rows
    finally:
        stop_daemon()
        lv.close()
        if os.environ.get("VMBC_BENCH_KEEP"):
            log(f"kept {work}")
        else:
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


def pressure(build, n):
    out = subprocess.run([os.path.join(build, "tests", "bench-host-pressure"), str(n), "20000"],
                         capture_output=True, text=True, check=True).stdout
    res = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        try:
            res[key] = float(value)
        except ValueError:
            res[key] = value
    log(f"pressure {n}: {json.dumps(res)}")
    return res


METRICS_RENDER_RE = re.compile(r"(\d+) bytes,\s+([\d.]+) ms best,\s+([\d.]+) ms median")
METRICS_SCRAPE_RE = re.compile(
    r"first byte ([\d.]+) ms, last ([\d.]+) ms median \(max ([\d.]+)\); "
    r"main thread CPU ([\d.]+) ms median; RSS ([\d.]+) MiB \(([-+\d.]+) MiB over the scrapes\), "
    r"peak ([-+\d.]+) MiB")


def metrics_bench(build, n):
    """The /metrics page of @n VMs in one process (tests/metrics/bench-metrics --http): its
    render time, and scrapes over loopback from a client thread."""
    out = subprocess.run([os.path.join(build, "tests", "metrics", "bench-metrics"), "--http",
                          str(n)], capture_output=True, text=True, check=True).stdout
    rm, sm = METRICS_RENDER_RE.search(out), METRICS_SCRAPE_RE.search(out)
    if rm is None or sm is None:
        raise RuntimeError(f"bench-metrics said:\n{out}")
    res = {"vms": n, "bytes": int(rm[1]), "render_best_ms": float(rm[2]),
           "render_ms": float(rm[3]), "first_byte_ms": float(sm[1]), "scrape_ms": float(sm[2]),
           "scrape_max_ms": float(sm[3]), "cpu_ms": float(sm[4]), "rss_mib": float(sm[5]),
           "rss_growth_mib": float(sm[6]), "peak_mib": float(sm[7])}
    log(f"metrics {n}: {json.dumps(res)}")
    return res


def markdown_metrics(ms):
    if not ms:
        return []
    lines = ["", "| VMs | page | render p50 (best) | scrape: first byte, last byte p50 (max) "
             "| main thread CPU per scrape | resident memory: peak over the scrapes, after |",
             "|---:|---:|---:|---:|---:|---:|"]
    for r in ms:
        lines.append(
            f"| {r['vms']} | {r['bytes'] / MIB:.1f} MiB | {r['render_ms']:.1f} ms "
            f"({r['render_best_ms']:.1f}) | {r['first_byte_ms']:.1f}, {r['scrape_ms']:.1f} ms "
            f"({r['scrape_max_ms']:.1f}) | {r['cpu_ms']:.1f} ms | {r['peak_mib']:+.1f} MiB, "
            f"{r['rss_growth_mib']:+.1f} MiB |")
    return lines


def idle_qemu(build):
    """CPU a calc-dirty-rate measure costs a real QEMU (1 GiB guest, TCG)."""
    import vmbcguest
    os.environ.setdefault("VMBC_GUEST_DIR", os.path.join(build, "tests", "guest"))
    work = tempfile.mkdtemp(prefix="vmbc-bench-idle-")
    gdir = os.path.join(work, "g")
    os.mkdir(gdir)
    guest = vmbcguest.Guest(gdir, mem_mib=1024, extra_args=("-name", "bench"))
    rounds = 20
    try:
        guest.start()
        guest.fill(300)
        time.sleep(2)
        c0 = schedstat_seconds(guest.pid)
        time.sleep(rounds)
        quiet = schedstat_seconds(guest.pid) - c0
        calc_ms, query_ms = [], []
        c0 = schedstat_seconds(guest.pid)
        t0 = time.monotonic()
        for _ in range(rounds):
            t = time.monotonic()
            guest.qmp("calc-dirty-rate", {"calc-time": 1})
            calc_ms.append((time.monotonic() - t) * 1e3)
            while True:
                t = time.monotonic()
                r = guest.qmp("query-dirty-rate")
                query_ms.append((time.monotonic() - t) * 1e3)
                if r["status"] == "measured":
                    break
                time.sleep(0.02)
        busy = schedstat_seconds(guest.pid) - c0
        elapsed = time.monotonic() - t0
        # QEMU's CPU per second without measures, scaled to the measuring span
        extra = busy - quiet * elapsed / rounds
        res = {"qemu_cpu_quiet_s": quiet / rounds, "qemu_cpu_per_measure_ms": extra / rounds * 1e3,
               "calc_p50_ms": statistics.median(calc_ms), "query_p50_ms": statistics.median(query_ms),
               "measure_s": elapsed / rounds}
        log(f"idle (QEMU): {json.dumps(res)}")
        return res
    finally:
        guest.stop()
        shutil.rmtree(work, ignore_errors=True)


def idle_daemon(build, n):
    """vmbcd CPU per tick with idle measuring at its busiest against off, at N fake VMs."""
    work = tempfile.mkdtemp(prefix=f"vmbc-bench-idle-{n}-")
    qdir = os.path.join(work, "qmp")
    os.mkdir(qdir)
    fake_bin = os.path.join(build, "tests", "fake-qemu", "fake-qemu")
    fakes = []
    raise_nofile(2 * n + 1024)
    res = {"n": n}
    try:
        for i in range(n):
            path = os.path.join(qdir, f"vm{i:05d}.sock")
            fakes.append(subprocess.Popen(
                [fake_bin, "--qmp", path, "--mem-mib", "64", "--cache-mib", "0",
                 "--die-with-parent", "--dirty-mib-s", str(i % 50)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for phase, interval in (("off", "0"), ("on", "1s")):
            sub = os.path.join(work, phase)
            os.mkdir(sub)
            daemon = Daemon(build, sub, f"{qdir}/*.sock", free_port(),
                            f"tick = 1s\nrescan-interval = 2s\nidle-interval = {interval}\n"
                            "[host]\npressure = off\n")
            try:
                clock = LogClock(time.time())
                deadline = time.monotonic() + 120 + n * 0.03
                while True:
                    ticks = read_log(daemon.log_path, clock)[0]
                    if ticks and ticks[-1][3] >= n:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{phase}: only {ticks[-1][3] if ticks else 0} of {n}"
                                           " VMs adopted")
                    time.sleep(1)
                time.sleep(5)
                first = read_log(daemon.log_path, clock)[0][-1][0]
                cpu0 = schedstat_seconds(daemon.proc.pid)
                t0 = time.monotonic()
                time.sleep(IDLE_S)
                cpu = schedstat_seconds(daemon.proc.pid) - cpu0
                elapsed = time.monotonic() - t0
                ticks = [t for t in read_log(daemon.log_path, clock)[0] if t[0] > first]
                res[f"{phase}_cpu_pct"] = 100 * cpu / elapsed
                res[f"{phase}_us_per_tick"] = cpu / max(len(ticks), 1) * 1e6
                res[f"{phase}_tick_p50_ms"] = pct([t[2] for t in ticks], 50)
                if phase == "on":
                    with QMP(daemon.sock, timeout=60) as c:
                        doms = c.execute("query-domains")["domains"]
                    res["measured"] = sum(1 for d in doms if d["idle"]["source"] == "host")
            finally:
                daemon.stop()
        log(f"idle {n} (vmbcd): {json.dumps(res)}")
        return res
    finally:
        for p in fakes:
            if p.poll() is None:
                p.terminate()
        for p in fakes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(work, ignore_errors=True)


def smaps_rss(pid, ranges):
    """Summed Rss (bytes) of the mappings of @pid that start in one of @ranges [(lo, hi)]."""
    total = 0
    cur = False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                start = int(m.group(1), 16)
                cur = any(lo <= start < hi for lo, hi in ranges)
            elif cur and line.startswith("Rss:"):
                total += int(line.split()[1]) * 1024
    return total


def virtio_mem_bench(build, rounds):
    import vmbcguest
    os.environ.setdefault("VMBC_GUEST_DIR", os.path.join(build, "tests", "guest"))
    work = tempfile.mkdtemp(prefix="vmbc-bench-vmem-")
    os.chmod(work, 0o755)
    gdir = os.path.join(work, "g")
    os.mkdir(gdir)
    # each is asked for 540 MiB of the guest and timed until it says it is done (the balloon's
    # actual, the device's size, vmbcd's answer to set-limit); what the host got back then is
    # reported beside it
    base, plugged, ask = 768, 768, 540
    res = {"balloon": [], "virtio_mem": [], "vmbcd": [], "balloon_back": [],
           "virtio_mem_back": [], "vmbcd_back": []}
    guest = vmbcguest.Guest(
        gdir, mem_mib=base, free_page_reporting=False, mem_opts=",maxmem=4G,slots=2",
        extra_append="memhp_default_state=online_movable",
        extra_args=("-name", "bench", "-object", "memory-backend-ram,id=vmem0,size=1G",
                    "-device", f"virtio-mem-pci,id=vm0,memdev=vmem0,requested-size={plugged}M"))
    daemon = None

    def vmem():
        return next(d["data"] for d in guest.qmp("query-memory-devices")
                    if d["type"] == "virtio-mem")

    def set_requested(mib):
        guest.qmp("qom-set", {"path": "/machine/peripheral/vm0", "property": "requested-size",
                              "value": mib * MIB})

    try:
        guest.start()
        vmbcguest.wait_for(lambda: vmem()["size"] == plugged * MIB, 60)
        guest.run("mount -o remount,size=1400M /mnt/fill")
        first, _ = guest.gpa2hva(0)
        dev = vmem()
        vfirst, _ = guest.gpa2hva(dev["memaddr"])
        ranges = [(first, first + base * MIB), (vfirst, vfirst + dev["max-size"])]

        def load():
            # full size again, then 600 MiB touched and freed: resident on the host, free in
            # the guest (no free page reporting), so either can take it
            set_requested(plugged)
            guest.set_balloon(base * MIB)
            vmbcguest.wait_for(lambda: vmem()["size"] == plugged * MIB, 60)
            guest.wait_balloon(base * MIB, timeout=60)
            guest.fill(600)
            guest.free()
            time.sleep(1)
            return smaps_rss(guest.pid, ranges)

        def timed(start, done, before):
            """Seconds from start() until done(), and the MiB the host gave back by then."""
            t0 = time.monotonic()
            start()
            while time.monotonic() - t0 < 60:
                if done():
                    dt = time.monotonic() - t0
                    return dt, (before - smaps_rss(guest.pid, ranges)) / MIB
                time.sleep(0.005)
            return float("nan"), (before - smaps_rss(guest.pid, ranges)) / MIB

        for r in range(rounds):
            before = load()
            dt, back = timed(lambda: guest.set_balloon((base - ask) * MIB),
                             lambda: guest.balloon_actual() <= (base - ask) * MIB, before)
            res["balloon"].append(dt)
            res["balloon_back"].append(back)
            log(f"virtio-mem round {r}: balloon alone {dt * 1e3:.0f} ms, {back:.0f} MiB back")
            before = load()
            dt, back = timed(lambda: set_requested(plugged - ask),
                             lambda: vmem()["size"] <= (plugged - ask) * MIB, before)
            res["virtio_mem"].append(dt)
            res["virtio_mem_back"].append(back)
            log(f"virtio-mem round {r}: virtio-mem alone {dt * 1e3:.0f} ms, {back:.0f} MiB back")
        port = free_port()
        daemon = Daemon(build, work, f"{gdir}/qmp.sock", port,
                        "tick = 1s\nreclaim-timeout = 20s\n")
        for r in range(rounds):
            with QMP(daemon.sock, timeout=60) as c:
                c.execute("set-limit", {"domain": "bench", "resource": "physpages",
                                        "barrier": "unlimited", "limit": "unlimited"})
            before = load()
            time.sleep(2)
            with QMP(daemon.sock) as c:
                d = c.execute("query-domain", {"domain": "bench"})
            held = next(x["held"] for x in d["resources"] if x["resource"] == "physpages")
            limit = held * PAGE // MIB - ask

            def lower():
                # answered once held is within the limit (or the reclaim failed)
                with QMP(daemon.sock, timeout=60) as c:
                    c.execute("set-limit", {"domain": "bench", "resource": "physpages",
                                            "barrier": f"{limit}M", "limit": f"{limit}M"})
            dt, back = timed(lower, lambda: True, before)
            res["vmbcd"].append(dt)
            res["vmbcd_back"].append(back)
            log(f"virtio-mem round {r}: vmbcd {dt * 1e3:.0f} ms, {back:.0f} MiB back")
        out = {}
        for k in ("balloon", "virtio_mem", "vmbcd"):
            out[k + "_p50_ms"] = statistics.median(res[k]) * 1e3
            out[k + "_all_ms"] = [round(x * 1e3) if x == x else None for x in res[k]]
            out[k + "_back_mib"] = [round(x) for x in res[k + "_back"]]
        out["ratio"] = out["balloon_p50_ms"] / out["virtio_mem_p50_ms"]
        out["ask_mib"] = ask
        log(f"virtio-mem: {json.dumps(out)}")
        return out
    finally:
        if daemon is not None:
            daemon.stop()
        guest.stop()
        shutil.rmtree(work, ignore_errors=True)


def markdown_pressure(pr, iq, idd):
    lines = []
    for r in pr:
        lines += [
            f"| pressure controller, {int(r['vms'])} VMs | µs |", "|---|---:|",
            f"| engine tick, host calm (every VM's policies and the controller) "
            f"| {r['engine-tick-calm-us']:.1f} |",
            f"| engine tick, a take every tick | {r['engine-tick-pressured-us']:.1f} |",
            f"| engine tick, giving back | {r['engine-tick-giving-back-us']:.1f} |",
            f"| the controller alone, as the PSI trigger runs it (scan + take) "
            f"| {r['controller-take-us']:.1f} |",
            f"| refresh of the host's signals ({r['refresh-cgroup']}, {r['refresh-psi']}, "
            f"meminfo, vmstat) | {r['refresh-us']:.1f} |", ""]
    if iq:
        lines += [
            "| idle measure on a real QEMU (1 GiB TCG guest, 300 MiB used) | |", "|---|---:|",
            f"| QEMU CPU per calc-dirty-rate measure (1 s, 512 pages/GiB) "
            f"| {iq['qemu_cpu_per_measure_ms']:.1f} ms |",
            f"| QEMU CPU per second without measures (TCG guest idling) "
            f"| {iq['qemu_cpu_quiet_s'] * 1e3:.0f} ms |",
            f"| calc-dirty-rate / query-dirty-rate round trip p50 "
            f"| {iq['calc_p50_ms']:.2f} / {iq['query_p50_ms']:.2f} ms |",
            f"| one measure, start to result | {iq['measure_s']:.2f} s |", ""]
    for r in idd:
        lines += [
            f"| vmbcd, {r['n']} VMs, 1 s tick | CPU | per tick | tick p50 |",
            "|---|---:|---:|---:|",
            f"| idle measuring off | {r['off_cpu_pct']:.2f} % | {r['off_us_per_tick']:.0f} µs "
            f"| {r['off_tick_p50_ms']:.2f} ms |",
            f"| idle-interval 1 s (4 measures started, 4 collected a tick) "
            f"| {r['on_cpu_pct']:.2f} % | {r['on_us_per_tick']:.0f} µs "
            f"| {r['on_tick_p50_ms']:.2f} ms |",
            f"| VMs measured by the host after the window | {r['measured']} | | |", ""]
    return lines


def markdown(scales, rg, argv, pr=(), iq=None, idd=(), grows=(), lvs=(), vm=None, ms=()):
    lines = [f"Machine: {machine()}.", "",
             f"Command: `tools/bench {' '.join(argv)}`", ""]
    if scales:
        lines += [
            "| VMs | vmbcd CPU, steady state (µs / VM / tick) "
            "| vmbcd CPU, under load (µs / VM / tick) | vmbcd RSS | bytes / VM "
            "| tick p50 / p99 / max | overruns | /metrics scrape p50 (max), page |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in scales:
            lines.append(
                f"| {r['n']} | {r['idle_cpu_pct']:.2f} % ({r['idle_us_per_vm_tick']:.1f}) "
                f"| {r['cpu_pct']:.2f} % ({r['cpu_us_per_vm_tick']:.1f}) "
                f"| {r['rss_mib']:.1f} MiB | {r['rss_per_vm_bytes']:.0f} "
                f"| {r['tick_p50_ms']:.1f} / {r['tick_p99_ms']:.1f} / {r['tick_max_ms']:.1f} ms "
                f"| {r['overruns']} of {r['ticks']} "
                f"| {r['scrape_p50_ms']:.1f} ms ({r['scrape_max_ms']:.1f}), "
                f"{r['page_bytes'] / MIB:.1f} MiB |")
        lines += [
            "",
            "| VMs | over limit / crossed | sample → balloon request (vmbcd) p50 / p99 "
            "| sample → balloon received (QEMU) p50 / p99 "
            "| sample → held ≤ limit p50 / p99 | touch → balloon received p50 / p99 "
            "| touch → held ≤ limit p50 / p99 |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in scales:
            lines.append(
                f"| {r['n']} | {r['limit_hits']} / {r['offenders']} "
                f"({r['reclaims_done']} back) "
                f"| {r['request_p50_ms']:.1f} / {r['request_p99_ms']:.1f} ms "
                f"| {r['sent_p50_ms']:.1f} / {r['sent_p99_ms']:.1f} ms "
                f"| {r['back_p50_ms']:.0f} / {r['back_p99_ms']:.0f} ms "
                f"| {r['touch_sent_p50_ms']:.0f} / {r['touch_sent_p99_ms']:.0f} ms "
                f"| {r['touch_back_p50_ms']:.0f} / {r['touch_back_p99_ms']:.0f} ms |")
        lines += ["", f"Tick {scales[0]['tick_s'] * 1000:.0f} ms, growth-ceiling "
                  f"{scales[0]['ceiling'] or 'at its default'}. Guests: " + ", ".join(
            f"N={r['n']}: {r['guest_mib']} MiB, {r['base_mib']} MiB resident at start"
            for r in scales) + f"; window {scales[0]['window_s']:.0f} s.", ""]
        lines += [f"statm reads (vmbcd's log), N={r['n']}: {r['statm']}; vmbcd's threads "
                  f"after the window: {r['threads']}." for r in scales] + [""]
    if grows:
        lines += [
            "| VMs | tick | growth (ceiling) | crossed | over the limit when first seen p50 / p99 "
            "/ max | the guarantee (a tick at the ceiling + one 1 MiB step) | beyond it "
            "| vmbcd CPU | sample that saw it, after the scripted crossing p50 / p99 / max "
            "| vmbcd's tick p99 / max, gap between ticks p99 / max "
            "| the machine's memory stall (PSI some avg10) max |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in grows:
            lines.append(
                f"| {r['n']} | {r['tick_s'] * 1000:.0f} ms | {r['rate_mib_s']:g} MiB/s "
                f"| {r['crossed']} | {r['over_p50_mib']:.2f} / {r['over_p99_mib']:.2f} / "
                f"{r['over_max_mib']:.2f} MiB | {r['bound_mib']:.2f} MiB | {r['beyond_bound']} "
                f"| {r['cpu_pct']:.2f} % | {r['seen_after_cross_p50_s']:.2f} / "
                f"{r['seen_after_cross_p99_s']:.2f} / {r['seen_after_cross_max_s']:.2f} s "
                f"| {r['tick_p99_ms']:.1f} / {r['tick_max_ms']:.1f} ms, "
                f"{r['tick_gap_p99_ms']:.0f} / {r['tick_gap_max_ms']:.0f} ms "
                f"| {r['psi_some_avg10_max']:.1f} % |")
        lines.append("")
    if lvs:
        lines += [
            "| domains | vmbcd | tick | window | libvirtd alone | libvirtd serving vmbcd | vmbcd "
            "| libvirtd's extra, ms / domain / tick | vmbcd, ms / domain / tick "
            "| vmbcd + libvirtd's extra, ms / domain / tick |",
            "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in lvs:
            what = ("the first %.0f s after adoption" if r["phase"] == "first"
                    else "%.0f s, steady state") % r["window_s"]
            lines.append(
                f"| {r['n']} | {r['vmbcd']} | {r['tick_s'] * 1000:.0f} ms | {what} "
                f"| {r['libvirtd_alone_pct']:.2f} % "
                f"| {r['libvirtd_pct']:.2f} % | {r['vmbcd_pct']:.2f} % "
                f"| {r['libvirtd_extra_ms']:.4f} | {r['vmbcd_ms']:.4f} | {r['sum_ms']:.4f} |")
        lines.append("")
    if rg:
        lines += [
            "| real guest (1 GiB, 600 MiB to give back) | p50 | rounds |",
            "|---|---:|---|",
            f"| balloon alone (the physical limit) | {rg['phys_p50_ms']:.0f} ms "
            f"| {rg['phys_all_ms']} |",
            f"| vmbcd: limit lowered → held ≤ limit | {rg['ours_p50_ms']:.0f} ms "
            f"| {rg['ours_all_ms']} |",
            f"| ratio | **{rg['ratio']:.2f}** | |", ""]
    lines += markdown_pressure(pr, iq, idd)
    lines += markdown_metrics(ms)
    if vm:
        lines += [
            f"| real guest (768 MiB + 768 MiB virtio-mem), {vm['ask_mib']} MiB taken "
            "| p50 | rounds | MiB the host got back |",
            "|---|---:|---|---|",
            f"| balloon alone (QMP `balloon`) | {vm['balloon_p50_ms']:.0f} ms "
            f"| {vm['balloon_all_ms']} | {vm['balloon_back_mib']} |",
            f"| virtio-mem alone (`requested-size`) | {vm['virtio_mem_p50_ms']:.0f} ms "
            f"| {vm['virtio_mem_all_ms']} | {vm['virtio_mem_back_mib']} |",
            f"| vmbcd (virtio-mem): limit lowered by as much | {vm['vmbcd_p50_ms']:.0f} ms "
            f"| {vm['vmbcd_all_ms']} | {vm['vmbcd_back_mib']} |",
            f"| ratio balloon / virtio-mem | **{vm['ratio']:.1f}** | |", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--window", type=float, default=40.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tick", default="1s", help="vmbcd's tick (scale, growth)")
    ap.add_argument("--lv-window", type=float, default=480.0,
                    help="libvirt: the steady-state window (two cycles of idle measures "
                    "backed off to 240 s)")
    ap.add_argument("--lv-settle", type=float, default=300.0,
                    help="libvirt: the first phase after adoption, measured apart (the "
                    "idle measures back off 30 + 60 + 120 s)")
    ap.add_argument("--vmbcd", default=None,
                    help="libvirt: another vmbcd binary (an older build) measured after this "
                    "build's on the same domains")
    ap.add_argument("--ceiling", default=None,
                    help="vmbcd's growth-ceiling (scale, growth); vmbcd's default if not given")
    ap.add_argument("--statm", default=None, choices=["uring", "pread"],
                    help="vmbcd's statm-reads (scale, growth); vmbcd's default if not given")
    ap.add_argument("--batch", type=int, default=250, help="fakes started at once")
    ap.add_argument("--max-load", type=float, default=8.0 * (os.cpu_count() or 1),
                    help="the 1-minute load average above which no more fakes start")
    ap.add_argument("--load-wait", type=float, default=300.0,
                    help="how long to wait for the load to fall before aborting")
    ap.add_argument("what", nargs="*")
    args = ap.parse_args()
    args.tick_s = parse_duration(args.tick)
    argv = args.what or ["scale", "100", "1000", "5000", "real-guest"]
    raise_nofile(4096)
    # SIGTERM/SIGINT unwind through the cleanup that stops every process started here
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    scales, grows, lvs, rg, vm = [], [], [], None, None
    pr, iq, idd, ms = [], None, [], []
    i = 0
    while i < len(argv):
        if argv[i] == "scale":
            i += 1
            while i < len(argv) and argv[i].isdigit():
                scales.append(run_guarded(scale, args.build, int(argv[i]), args.window,
                                          args))
                i += 1
        elif argv[i] == "growth":
            i += 1
            while i < len(argv) and argv[i].isdigit():
                grows.append(run_guarded(growth, args.build, int(argv[i]), args))
                i += 1
        elif argv[i] == "libvirt":
            i += 1
            while i < len(argv) and argv[i].isdigit():
                lvs += run_guarded(libvirt_bench, args.build, int(argv[i]), args,
                                   args.vmbcd)
                i += 1
        elif argv[i] == "real-guest":
            rg = real_guest(args.build, args.rounds)
            i += 1
        elif argv[i] == "virtio-mem":
            vm = virtio_mem_bench(args.build, args.rounds)
            i += 1
        elif argv[i] == "pressure":
            i += 1
            while i < len(argv) and argv[i].isdigit():
                pr.append(pressure(args.build, int(argv[i])))
                i += 1
        elif argv[i] == "metrics":
            i += 1
            while i < len(argv) and argv[i].isdigit():
                ms.append(metrics_bench(args.build, int(argv[i])))
                i += 1
        elif argv[i] == "idle":
            i += 1
            iq = idle_qemu(args.build)
            while i < len(argv) and argv[i].isdigit():
                idd.append(idle_daemon(args.build, int(argv[i])))
                i += 1
        else:
            sys.exit(f"tools/bench: unknown benchmark '{argv[i]}' "
                     "(scale N..., growth N..., libvirt N..., real-guest, virtio-mem, "
                     "pressure N..., idle N..., metrics N...)")
    opts = [a for a in sys.argv[1:] if a not in args.what and a != "--build" and a != args.build]
    md = markdown(scales, rg, opts + argv, pr, iq, idd, grows, lvs, vm, ms)
    out = os.path.join(args.build, "results.md")
    with open(out, "w") as f:
        f.write(md + "\n")
    print(md)
    log(f"written to {out}")


if __name__ == "__main__":
    main()
