"""Harness for vmbc's integration tests: vmbcd, the vmbc CLI and fake-qemu.

Everything runs in a temporary directory that is removed at the end; every
process started here is stopped by its PID. Standard library only.
"""
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

SKIP = 77
PAGE = os.sysconf("SC_PAGESIZE")
MIB = 1 << 20


def pages(mib):
    return mib * MIB // PAGE


def wait_for(what, pred, timeout=10.0, interval=0.05):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what} (last: {last!r})")


def accepts(path):
    """True once a UNIX stream socket at @path takes connections."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


class QMPError(Exception):
    def __init__(self, klass, desc):
        super().__init__(f"{klass}: {desc}")
        self.klass = klass
        self.desc = desc


class QMP:
    """A small synchronous QMP client (the tests' own, independent of qmp/)."""

    def __init__(self, path, timeout=30.0, negotiate=True):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events = []
        self.next_id = 0
        self.greeting = self.read()
        if negotiate:
            self.execute("qmp_capabilities")

    def close(self):
        self.sock.close()

    def read(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def send_raw(self, data):
        self.sock.sendall(data)

    def execute(self, command, args=None, timeout=None):
        self.next_id += 1
        msg = {"execute": command, "id": self.next_id}
        if args is not None:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\r\n")
        old = self.sock.gettimeout()
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while True:
                reply = self.read()
                if "event" in reply:
                    self.events.append(reply)
                    continue
                if reply.get("id") != self.next_id:
                    continue
                if "error" in reply:
                    raise QMPError(reply["error"]["class"], reply["error"]["desc"])
                return reply["return"]
        finally:
            self.sock.settimeout(old)

    def wait_event(self, name, timeout=10.0, pred=None):
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev["event"] == name and (pred is None or pred(ev)):
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                names = [e["event"] for e in self.events]
                raise AssertionError(f"no event {name} within {timeout}s (seen: {names})")
            self.sock.settimeout(left)
            try:
                msg = self.read()
            except socket.timeout:
                continue
            if "event" in msg:
                self.events.append(msg)


class Env:
    """One test's world: a temp dir, vmbcd, fake QEMUs."""

    def __init__(self, name, tick="100ms", reclaim_timeout="1500ms", extra_daemon="",
                 extra="", world_readable=False):
        self.vmbcd_bin = os.environ["VMBCD"]
        self.cli_bin = os.environ.get("VMBC_CLI")
        self.fake_bin = os.environ["FAKE_QEMU"]
        self.dir = tempfile.mkdtemp(prefix=f"vmbc-it-{name}-")
        if world_readable:
            os.chmod(self.dir, 0o755)
        self.qmp_dir = os.path.join(self.dir, "qmp")
        os.mkdir(self.qmp_dir)
        os.chmod(self.qmp_dir, 0o755)
        self.sock = os.path.join(self.dir, "vmbcd.sock")
        self.state_dir = os.path.join(self.dir, "state")
        self.conf = os.path.join(self.dir, "vmbc.conf")
        self.log_path = os.path.join(self.dir, "vmbcd.log")
        self.tick = tick
        self.reclaim_timeout = reclaim_timeout
        self.extra_daemon = extra_daemon
        self.extra = extra
        self.daemon = None
        self.fakes = {}
        self.write_config()

    def write_config(self, extra=None):
        if extra is not None:
            self.extra = extra
        # The escalation (auto by default) may write memory.high of the fake's cgroup: never
        # the host's. Unless a case builds its own tree, cgroup-root is an empty one here.
        cgroup = ""
        if "cgroup-root" not in self.extra + self.extra_daemon:
            empty = os.path.join(self.dir, "no-cgroup")
            os.makedirs(empty, exist_ok=True)
            cgroup = f"cgroup-root = {empty}"
        # Nor does vmbcd react to the memory pressure of the machine the tests run on,
        # unless a case asks for it: its own [host] group, or none of this.
        host = ""
        if "[host]" not in self.extra + self.extra_daemon:
            host = "[host]\npressure = off\n"
        with open(self.conf, "w") as f:
            f.write(f"""[daemon]
backends = qmp
qmp-sockets = {self.qmp_dir}/*.sock
control-socket = {self.sock}
state-dir = {self.state_dir}
metrics-listen = off
tick = {self.tick}
reclaim-timeout = {self.reclaim_timeout}
rescan-interval = 200ms
smaps-interval = 1s
stats-interval = 1
{cgroup}
{self.extra_daemon}
{self.extra}
{host}""")

    # vmbcd ---------------------------------------------------------------
    def start_daemon(self, expect_fail=False, nofile=None, env=None):
        """nofile: the open-file limit (soft and hard) vmbcd starts with; env: variables
        added to vmbcd's environment."""
        self.log = open(self.log_path, "a")

        def limit():
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

        self.daemon = subprocess.Popen([self.vmbcd_bin, "--foreground", "--config", self.conf],
                                       stdout=self.log, stderr=subprocess.STDOUT,
                                       preexec_fn=limit if nofile is not None else None,
                                       env={**os.environ, **env} if env else None)
        if expect_fail:
            rc = self.daemon.wait(timeout=20)
            self.daemon = None
            return rc
        # the file appears at bind(), connections are taken from listen() on
        wait_for("the control socket", lambda: self.daemon.poll() is not None or
                 accepts(self.sock), timeout=20)
        if self.daemon.poll() is not None:
            raise AssertionError(f"vmbcd exited with {self.daemon.returncode}:\n{self.logtext()}")
        return None

    def stop_daemon(self, sig=signal.SIGTERM, check=True):
        if self.daemon is None:
            return None
        self.daemon.send_signal(sig)
        rc = self.daemon.wait(timeout=30)
        self.daemon = None
        self.log.close()
        if check and sig == signal.SIGTERM and rc != 0:
            raise AssertionError(f"vmbcd exited with {rc} on SIGTERM:\n{self.logtext()}")
        if sig == signal.SIGKILL and os.path.exists(self.sock):
            os.unlink(self.sock)  # a crash leaves it; the next start replaces it anyway
        return rc

    def logtext(self):
        try:
            with open(self.log_path) as f:
                return f.read()
        except OSError:
            return ""

    def control(self):
        return QMP(self.sock)

    def domain(self, name):
        with self.control() as c:
            return c.execute("query-domain", {"domain": name})

    def res(self, name, resource="physpages"):
        d = self.domain(name)
        return next(r for r in d["resources"] if r["resource"] == resource)

    def wait_domain(self, name, timeout=15.0):
        def present():
            with self.control() as c:
                doms = c.execute("query-domains")["domains"]
            return next((d for d in doms if d["name"] == name), None)
        return wait_for(f"domain {name} in vmbcd", present, timeout)

    def wait_domain_gone(self, name, timeout=15.0):
        def gone():
            with self.control() as c:
                doms = c.execute("query-domains")["domains"]
            return all(d["name"] != name for d in doms)
        return wait_for(f"domain {name} to go away", gone, timeout)

    def wait_held(self, name, min_pages, timeout=15.0):
        """Waits until vmbcd has sampled at least @min_pages held for @name."""
        return wait_for(f"{name} held >= {min_pages} pages",
                        lambda: self.res(name)["held"] >= min_pages, timeout)

    # the CLI -------------------------------------------------------------
    def cli(self, *args, user=None, timeout=60):
        if self.cli_bin is None:
            raise AssertionError("VMBC_CLI is not set")
        return subprocess.run([self.cli_bin, "-c", self.sock, *args], capture_output=True,
                              text=True, timeout=timeout, user=user)

    # fake QEMU -----------------------------------------------------------
    def start_fake(self, name, mem_mib=256, *opts):
        path = os.path.join(self.qmp_dir, f"{name}.sock")
        # a harness that dies (a crash, a timeout's SIGKILL) takes its fakes with it
        p = subprocess.Popen([self.fake_bin, "--qmp", path, "--mem-mib", str(mem_mib),
                              "--die-with-parent", *opts],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = p.stdout.readline()
        if "ready" not in line:
            p.kill()
            p.wait()
            raise AssertionError(f"fake-qemu {name} did not start: {line!r}")
        self.fakes[name] = (p, path, mem_mib)
        return p

    def fake(self, name):
        return QMP(self.fakes[name][1])

    def fake_state(self, name):
        with self.fake(name) as q:
            return q.execute("x-fake-state")

    def fake_do(self, name, command, args=None):
        with self.fake(name) as q:
            return q.execute(command, args)

    def kill_fake(self, name, sig=signal.SIGTERM):
        p = self.fakes.pop(name)[0]
        if p.poll() is None:
            p.send_signal(sig)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()

    # cleanup -------------------------------------------------------------
    def close(self):
        if self.daemon is not None:
            self.daemon.kill()
            self.daemon.wait()
            self.log.close()
        for name in list(self.fakes):
            self.kill_fake(name, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            sys.stderr.write(f"--- vmbcd log ---\n{self.logtext()}\n")
        self.close()
        return False


QMP.__enter__ = lambda self: self
QMP.__exit__ = lambda self, *exc: self.close()


def run(cases):
    """Runs the case named in argv[1]: exit 0 pass, 1 fail, 77 skip."""
    for var in ("VMBCD", "FAKE_QEMU"):
        if not os.environ.get(var) or not os.path.exists(os.environ[var]):
            print(f"SKIP: {var} not built")
            return SKIP
    name = sys.argv[1]
    fn = cases[name]
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    fn()
    print(f"PASS: {name}")
    return 0
