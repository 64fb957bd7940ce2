"""vmbcguest: boots the vmbc test guest under QEMU for end-to-end tests.

A Guest is one qemu-system-x86_64 process running the kernel and initramfs that build-guest
made, with a virtio-balloon device, a shell on its serial console (a UNIX socket) and two QMP
monitors: qmp.sock (Guest.qmp_path) is left free for the program under test (vmbcd), and a
second one, qmp-test.sock, serves the test's own checks through Guest.qmp(). Python 3 standard
library only.

    with Guest(workdir, mem_mib=512) as g:
        g.run("dd if=/dev/zero of=/mnt/fill/a bs=1M count=200")
        print(g.rss_guest_ram(), g.qmp("query-balloon"))

Where guest RAM is on the host is asked of QEMU itself (HMP gpa2hva on the test's own monitor),
not guessed from the mappings' sizes as vmbcd does: see Guest.guest_ram_hva().

Where the guest lives: VMBC_GUEST_DIR (meson sets it for the e2e suite), or an explicit
guest_dir. QEMU: VMBC_QEMU or qemu-system-x86_64 on PATH. Nothing here touches anything outside
the workdir, and stop() kills QEMU by its PID.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid

SKIP = 77
READY_MARKER = "VMBC-GUEST-READY"

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")

# QEMU 7.2 monitor/misc.c hmp_gpa2hva: "Host virtual address for 0x%x (%s) is %p"
_GPA2HVA = re.compile(r"Host virtual address for (0x[0-9a-fA-F]+) \(([^)]*)\) is "
                      r"(0x[0-9a-fA-F]+)")
_SMAPS_HEAD = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ (\d+)\s*(.*)$")


class GuestUnavailable(Exception):
    """QEMU or a built guest is missing: the caller should skip (exit 77)."""


class GuestError(Exception):
    """The guest misbehaved: it did not boot, a command timed out, QEMU died."""


class CommandFailed(GuestError):
    """A command typed into the guest shell exited non-zero."""

    def __init__(self, cmd, status, output):
        super().__init__("guest command %r exited %d: %s" % (cmd, status, output.strip()[-500:]))
        self.cmd = cmd
        self.status = status
        self.output = output


class QMPError(Exception):
    """QEMU answered a QMP command with an error; .error_class and .desc hold its fields."""

    def __init__(self, command, error):
        self.error_class = error.get("class")
        self.desc = error.get("desc")
        super().__init__("QMP command %r failed: %s: %s" % (command, self.error_class, self.desc))


def find_qemu():
    """Returns the QEMU binary to use, or None."""
    qemu = os.environ.get("VMBC_QEMU")
    if qemu:
        return qemu if os.access(qemu, os.X_OK) else None
    return shutil.which("qemu-system-x86_64")


def read_guest_info(guest_dir):
    """Returns guest-info.txt of a build-guest output directory as a dict ({} when absent)."""
    info = {}
    try:
        with open(os.path.join(guest_dir, "guest-info.txt")) as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    info[key] = value
    except OSError:
        pass
    return info


def find_guest_dir(guest_dir=None):
    """Returns a usable build-guest output directory, or raises GuestUnavailable saying why."""
    guest_dir = guest_dir or os.environ.get("VMBC_GUEST_DIR")
    if not guest_dir:
        raise GuestUnavailable("VMBC_GUEST_DIR is not set and no guest_dir was given")
    info = read_guest_info(guest_dir)
    if info.get("status") != "ok":
        raise GuestUnavailable("no guest built in %s: %s"
                               % (guest_dir, info.get("reason", "guest-info.txt missing")))
    for name in ("vmlinuz", "initramfs.gz"):
        path = os.path.join(guest_dir, name)
        if not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise GuestUnavailable("%s is missing or empty" % path)
    return guest_dir


def check_available(guest_dir=None):
    """Raises GuestUnavailable unless both QEMU and a built guest are there."""
    if find_qemu() is None:
        raise GuestUnavailable("qemu-system-x86_64 not found")
    find_guest_dir(guest_dir)


def exit_on_sigterm():
    """Turns SIGTERM into SystemExit in the main thread, so `with Guest(...)` blocks and
    finally clauses still stop QEMU and remove temp dirs when a test runner gives up on a test."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


def wait_for(predicate, timeout, interval=0.05):
    """Calls predicate() until it returns a true value and returns that value; None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


class QMPClient:
    """A minimal synchronous QMP client on a UNIX socket.

    connect() reads the greeting and negotiates capabilities. command() sends one command with
    an id and returns its "return" value, raising QMPError on an error reply; events that arrive
    meanwhile are kept in .events (dicts, in order). With record=True every line read or written
    is kept in .transcript as (direction, text): '<' from QEMU, '>' to QEMU, text without CRLF.
    """

    def __init__(self, path, record=False):
        self.path = path
        self.record = record
        self.transcript = []
        self.events = []
        self.greeting = None
        self._sock = None
        self._buf = b""
        self._next_id = 1
        self._id_prefix = "rec-" if record else "t-"

    def connect(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.path)
                break
            except OSError as exc:
                sock.close()
                if time.monotonic() >= deadline:
                    raise GuestError("cannot connect to QMP at %s: %s" % (self.path, exc))
                time.sleep(0.05)
        self._sock = sock
        self.greeting = self._read_message(timeout)
        if "QMP" not in self.greeting:
            raise GuestError("no QMP greeting from %s: %r" % (self.path, self.greeting))
        self.command("qmp_capabilities", timeout=timeout)
        return self

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError("QMP at %s: no answer within %.1f s" % (self.path, timeout))
            self._sock.settimeout(left)
            try:
                chunk = self._sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise GuestError("QMP at %s: connection closed by QEMU" % self.path)
            self._buf += chunk
        line, _, self._buf = self._buf.partition(b"\n")
        return line.rstrip(b"\r").decode()

    def _read_message(self, timeout):
        while True:
            line = self._read_line(timeout)
            if not line.strip():
                continue
            if self.record:
                self.transcript.append(("<", line))
            return json.loads(line)

    def send_raw(self, text):
        """Writes one message exactly as given (no id added); for tests of odd input."""
        if self.record:
            self.transcript.append((">", text))
        self._sock.sendall(text.encode() + b"\r\n")

    def command(self, name, arguments=None, timeout=30.0):
        msg_id = "%s%d" % (self._id_prefix, self._next_id)
        self._next_id += 1
        msg = {"execute": name}
        if arguments is not None:
            msg["arguments"] = arguments
        msg["id"] = msg_id
        self.send_raw(json.dumps(msg))
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(max(deadline - time.monotonic(), 0.001))
            if "event" in reply:
                self.events.append(reply)
                continue
            if reply.get("id") != msg_id:
                continue
            if "error" in reply:
                raise QMPError(name, reply["error"])
            return reply.get("return")

    def wait_event(self, name, timeout):
        """Returns the first kept or newly read event called name (removing it), None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("event") == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            try:
                msg = self._read_message(left)
            except GuestError:
                if time.monotonic() >= deadline:
                    return None
                raise
            if "event" in msg:
                self.events.append(msg)

    def drain_events(self, seconds):
        """Reads for that long and keeps every event that arrives."""
        deadline = time.monotonic() + seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                msg = self._read_message(left)
            except GuestError:
                return
            if "event" in msg:
                self.events.append(msg)


class Guest:
    """One QEMU running the test guest.

    workdir: an existing directory for sockets, pidfile and logs (console.log, qemu.log); the
    caller owns and removes it. mem_mib: guest RAM (-m). free_page_reporting: the balloon
    device's free-page-reporting property. balloon: add the virtio-balloon-pci device (id
    balloon0) at all. balloon_driver: False boots with vmbc.noballoon=1, so the guest never
    loads virtio_balloon (a guest without a balloon driver). accel: 'tcg' (KVM guests hang on
    these machines) or 'kvm'. memory_backend: None for QEMU's default guest RAM (one private
    anonymous mapping, the common production case), or 'memfd' to back all of guest RAM with
    a named memory-backend-memfd (a shared mapping smaps names "/memfd:memory-backend-memfd").
    mem_opts: appended to -m (",maxmem=2G,slots=2" for DIMMs and virtio-mem); with extra_args
    that add backends, NUMA nodes or memory devices, guest_ram_mapping() (which knows only the
    main RAM) is not the whole of guest RAM: such tests measure the ranges they made.
    """

    MEMFD_BACKEND_ID = "vmbc-ram-memfd"

    def __init__(self, workdir, mem_mib=512, free_page_reporting=True, balloon=True,
                 accel="tcg", balloon_driver=True, guest_dir=None, boot_timeout=120.0,
                 extra_args=(), extra_append="", memory_backend=None, mem_opts=""):
        if memory_backend not in (None, "memfd"):
            raise ValueError("memory_backend: None or 'memfd', not %r" % (memory_backend,))
        self.workdir = os.path.abspath(workdir)
        self.mem_mib = mem_mib
        self.mem_opts = mem_opts
        self.memory_backend = memory_backend
        self.free_page_reporting = free_page_reporting
        self.balloon = balloon
        self.accel = accel
        self.balloon_driver = balloon_driver
        self.guest_dir = guest_dir
        self.boot_timeout = boot_timeout
        self.extra_args = list(extra_args)
        self.extra_append = extra_append
        self.qmp_path = os.path.join(self.workdir, "qmp.sock")
        self.test_qmp_path = os.path.join(self.workdir, "qmp-test.sock")
        self.serial_path = os.path.join(self.workdir, "serial.sock")
        self.pidfile = os.path.join(self.workdir, "qemu.pid")
        self.console_log = os.path.join(self.workdir, "console.log")
        self.qemu_log = os.path.join(self.workdir, "qemu.log")
        self.proc = None
        self.pid = None
        self.boot_seconds = None
        self.kernel_release = None
        self._serial = None
        self._reader = None
        self._out = bytearray()
        self._cond = threading.Condition()
        self._serial_closed = False
        self._qmp = None
        self._ram_hva = None  # (hva, region name), asked of QEMU once per process

    # -- life cycle ------------------------------------------------------------------------

    def command_line(self):
        """The QEMU command line start() runs."""
        qemu = find_qemu()
        if qemu is None:
            raise GuestUnavailable("qemu-system-x86_64 not found")
        gdir = find_guest_dir(self.guest_dir)
        append = "console=ttyS0 panic=-1"
        if not self.balloon_driver:
            append += " vmbc.noballoon=1"
        if self.extra_append:
            append += " " + self.extra_append
        args = [
            qemu, "-accel", self.accel, "-m", "%dM%s" % (self.mem_mib, self.mem_opts),
            "-nographic", "-nodefaults", "-no-reboot",
            "-kernel", os.path.join(gdir, "vmlinuz"),
            "-initrd", os.path.join(gdir, "initramfs.gz"),
            "-append", append,
            # wait=on: QEMU starts the guest only once start() is connected, so no console
            # output is lost; the logfile keeps all of it for post-mortems.
            "-chardev", "socket,id=serial0,path=%s,server=on,wait=on,logfile=%s"
            % (self.serial_path, self.console_log),
            "-serial", "chardev:serial0",
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
            "-chardev", "socket,id=qmptest,path=%s,server=on,wait=off" % self.test_qmp_path,
            "-mon", "chardev=qmptest,mode=control",
            "-pidfile", self.pidfile,
        ]
        if self.memory_backend == "memfd":
            args += ["-object", "memory-backend-memfd,id=%s,size=%dM"
                     % (self.MEMFD_BACKEND_ID, self.mem_mib),
                     "-machine", "memory-backend=%s" % self.MEMFD_BACKEND_ID]
        if self.balloon:
            args += ["-device", "virtio-balloon-pci,id=balloon0,free-page-reporting=%s"
                     % ("on" if self.free_page_reporting else "off")]
        return args + self.extra_args

    def start(self):
        """Starts QEMU and waits for the guest's ready marker; returns self.

        Raises GuestUnavailable when QEMU or the guest is missing, GuestError when the guest
        does not come up within boot_timeout (QEMU is then stopped)."""
        args = self.command_line()
        for path in (self.qmp_path, self.test_qmp_path, self.serial_path, self.pidfile):
            if os.path.exists(path):
                os.unlink(path)
        t0 = time.monotonic()
        with open(self.qemu_log, "wb") as log:
            # Same process group as the test: a test runner that kills the test's group on a
            # timeout takes QEMU with it.
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        self._ram_hva = None
        try:
            self._connect_serial(t0 + self.boot_timeout)
            self._reader = threading.Thread(target=self._read_serial, daemon=True)
            self._reader.start()
            m = self._wait_output(re.compile(rb"%s ([^\r\n]*)\r?\n" % READY_MARKER.encode()), 0,
                                  t0 + self.boot_timeout)
            if m is None:
                raise GuestError("guest not ready within %.0f s; console tail: %r"
                                 % (self.boot_timeout, self.console_tail()))
            self.kernel_release = m.group(1).decode(errors="replace").strip()
            self.boot_seconds = time.monotonic() - t0
            failed = re.findall(rb"VMBC-GUEST-MODULE-FAILED (\S+)", bytes(self._out))
            if failed:
                raise GuestError("guest failed to load modules: %s"
                                 % b" ".join(failed).decode())
            # The shell is up once it answers.
            self.run("true", timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    def _connect_serial(self, deadline):
        while True:
            if self.proc.poll() is not None:
                raise GuestError("QEMU exited with %d: %s"
                                 % (self.proc.returncode, self._qemu_log_tail()))
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(self.serial_path)
                self._serial = sock
                return
            except OSError:
                sock.close()
            if time.monotonic() >= deadline:
                raise GuestError("no serial socket at %s" % self.serial_path)
            time.sleep(0.02)

    def _read_serial(self):
        while True:
            try:
                chunk = self._serial.recv(65536)
            except OSError:
                chunk = b""
            with self._cond:
                if not chunk:
                    self._serial_closed = True
                    self._cond.notify_all()
                    return
                self._out += chunk
                self._cond.notify_all()

    def _wait_output(self, regex, start, deadline):
        with self._cond:
            while True:
                m = regex.search(self._out, start)
                if m is not None:
                    return m
                left = deadline - time.monotonic()
                if left <= 0 or self._serial_closed:
                    return None
                self._cond.wait(min(left, 0.5))

    def _qemu_log_tail(self):
        try:
            with open(self.qemu_log, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def console_tail(self, n=2000):
        """The last n characters the console printed (escape sequences removed)."""
        with self._cond:
            text = bytes(self._out[-n:]).decode(errors="replace")
        return _ANSI.sub("", text)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10.0):
        """Quits QEMU (QMP quit, then SIGTERM, then SIGKILL, all by PID) and closes sockets."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.qmp("quit", timeout=3)
            except Exception:
                pass
            try:
                self.proc.wait(timeout / 2)
            except subprocess.TimeoutExpired:
                pass
            if self.proc.poll() is None:
                os.kill(self.pid, signal.SIGTERM)
                try:
                    self.proc.wait(timeout / 2)
                except subprocess.TimeoutExpired:
                    os.kill(self.pid, signal.SIGKILL)
                    self.proc.wait()
        if self._qmp is not None:
            self._qmp.close()
            self._qmp = None
        if self._serial is not None:
            try:
                self._serial.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._serial.close()
            self._serial = None
        if self._reader is not None:
            self._reader.join(5)
            self._reader = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- the serial shell -------------------------------------------------------------------

    def run_status(self, cmd, timeout=60.0):
        """Types one line into the guest shell; returns (exit status, output).

        The command runs with stdin from /dev/null so it cannot eat later input. Output has
        CRLF turned into LF and terminal escapes removed. Raises GuestError on timeout."""
        if "\n" in cmd:
            raise ValueError("one line at a time: %r" % cmd)
        if not self.alive() or self._serial is None:
            raise GuestError("guest is not running")
        tok = uuid.uuid4().hex[:12]
        # The typed line (echoed back) holds the markers split by "", the output does not.
        # A subshell at OOM score 0: the console shell itself is exempt (see build-guest).
        line = ("echo VMBC-B\"\"%s; ( echo 0 >/proc/self/oom_score_adj; %s ) </dev/null; "
                "echo VMBC-E\"\"%s $?\n" % (tok, cmd, tok))
        with self._cond:
            start = len(self._out)
        self._serial.sendall(line.encode())
        end = self._wait_output(re.compile(rb"VMBC-E%s (\d+)\r?\n" % tok.encode()), start,
                                time.monotonic() + timeout)
        if end is None:
            raise GuestError("guest command %r: no end marker within %.1f s; console tail: %r"
                             % (cmd, timeout, self.console_tail(500)))
        with self._cond:
            out = bytes(self._out[start:end.start()])
        beg = re.search(rb"VMBC-B%s\r?\n" % tok.encode(), out)
        if beg is not None:
            out = out[beg.end():]
        text = _ANSI.sub("", out.decode(errors="replace")).replace("\r\n", "\n").replace("\r", "")
        return int(end.group(1)), text

    def run(self, cmd, timeout=60.0, check=True):
        """Like run_status but returns the output only; raises CommandFailed on a non-zero exit
        unless check is False."""
        status, out = self.run_status(cmd, timeout)
        if check and status != 0:
            raise CommandFailed(cmd, status, out)
        return out

    def fill(self, mib, name="a"):
        """Writes mib MiB of zeroes into /mnt/fill/NAME (guest tmpfs, i.e. guest RAM)."""
        self.run("dd if=/dev/zero of=/mnt/fill/%s bs=1M count=%d 2>/dev/null" % (name, mib),
                 timeout=120 + mib)

    def free(self, name="a"):
        self.run("rm -f /mnt/fill/%s" % name)

    def meminfo(self):
        """The guest's /proc/meminfo as a dict of kB values."""
        out = self.run("cat /proc/meminfo")
        info = {}
        for line in out.splitlines():
            m = re.match(r"(\S+):\s+(\d+)", line)
            if m:
                info[m.group(1)] = int(m.group(2))
        return info

    def vmstat(self):
        """The guest's /proc/vmstat as a dict."""
        out = self.run("cat /proc/vmstat")
        return {k: int(v) for k, v in (l.split() for l in out.splitlines() if len(l.split()) == 2)
                if v.isdigit()}

    # -- QMP --------------------------------------------------------------------------------

    def qmp(self, cmd, args=None, timeout=30.0):
        """Runs one QMP command on the test's own monitor and returns its "return" value.

        Raises QMPError when QEMU answers with an error. Events are kept in qmp_events()."""
        if self._qmp is None:
            self._qmp = QMPClient(self.test_qmp_path).connect(timeout)
        return self._qmp.command(cmd, args, timeout)

    def qmp_client(self):
        """The test monitor's QMPClient (connected), for wait_event() and friends."""
        if self._qmp is None:
            self._qmp = QMPClient(self.test_qmp_path).connect()
        return self._qmp

    def balloon_actual(self):
        """query-balloon's actual, in bytes."""
        return self.qmp("query-balloon")["actual"]

    def set_balloon(self, target_bytes):
        """Asks for a logical guest size of target_bytes (the QMP balloon command)."""
        self.qmp("balloon", {"value": int(target_bytes)})

    def wait_balloon(self, target_bytes, timeout=60.0, slack=0):
        """Polls query-balloon until actual is within slack of target_bytes; returns the seconds
        it took, None on timeout."""
        t0 = time.monotonic()
        ok = wait_for(lambda: abs(self.balloon_actual() - target_bytes) <= slack, timeout, 0.02)
        return (time.monotonic() - t0) if ok else None

    # -- host side --------------------------------------------------------------------------
    #
    # The test's oracle for "guest RAM resident on the host" must not share the heuristic of
    # the code under test (vmbcd picks the rw anonymous mapping whose size is the RAM size).
    # So the harness asks QEMU where guest RAM is (HMP gpa2hva on the test's own monitor),
    # checks that the whole of [0, RAM size) is one contiguous host range in one RAM region,
    # and sums the smaps Rss of every mapping inside that range (the kernel may split a VMA).

    def hmp(self, command_line, timeout=30.0):
        """Runs one human monitor command on the test's own monitor; returns its text."""
        return self.qmp("human-monitor-command", {"command-line": command_line},
                        timeout=timeout)

    def gpa2hva(self, gpa):
        """Where QEMU has guest-physical address gpa in its own address space: returns
        (host virtual address, name of QEMU's memory region). Raises GuestError when QEMU's
        answer does not say that (no RAM there, or text this harness cannot parse)."""
        out = self.hmp("gpa2hva 0x%x" % gpa)
        m = _GPA2HVA.search(out or "")
        if m is None or int(m.group(1), 16) != gpa:
            raise GuestError("QEMU %s: cannot parse HMP 'gpa2hva 0x%x': %r"
                             % (self.pid, gpa, out))
        return int(m.group(3), 16), m.group(2)

    def guest_ram_hva(self):
        """(hva, region): where QEMU itself says guest RAM [0, mem_mib MiB) is mapped in its
        process, asked once per QEMU process and cached. The first and the last byte of guest
        RAM must be in the same region and exactly mem_mib MiB apart on the host (the machine
        maps RAM below 4 GiB in one piece for the sizes these tests use); GuestError if not."""
        if self._ram_hva is None:
            size = self.mem_mib << 20
            first, region = self.gpa2hva(0)
            last, last_region = self.gpa2hva(size - 1)
            if last_region != region or last - first != size - 1:
                raise GuestError("QEMU %s: guest RAM is not one range: gpa 0 -> %#x (%s), "
                                 "gpa %#x -> %#x (%s)" % (self.pid, first, region, size - 1,
                                                          last, last_region))
            if first % os.sysconf("SC_PAGE_SIZE"):
                raise GuestError("QEMU %s: guest RAM at %#x is not page aligned"
                                 % (self.pid, first))
            self._ram_hva = (first, region)
        return self._ram_hva

    def guest_ram_mapping(self):
        """What /proc/PID/smaps says about the host range that holds guest RAM (see
        guest_ram_hva()), as a dict: 'hva', 'region', 'range' ("lo-hi" in hex), 'size_kib'
        (how much of the range the mappings cover: all of it, or GuestError), 'mappings' (the
        smaps entries: 'range', 'perms', 'inode', 'path' and their kB fields as ints), 'paths'
        (their path columns) and every kB field ('Rss', 'Anonymous', 'Swap', ...) summed.

        Raises GuestError if a mapping reaches outside the range (its Rss could not be split
        between guest RAM and the rest), if a part of the range is not mapped, if a mapping is
        not readable and writable, or if smaps contradicts the backend the test chose (the
        default is private anonymous memory without a path; memfd must be "/memfd:...")."""
        hva, region = self.guest_ram_hva()
        lo, hi = hva, hva + (self.mem_mib << 20)
        inside = []
        cur = None
        with open("/proc/%d/smaps" % self.pid) as f:
            for line in f:
                head = _SMAPS_HEAD.match(line)
                if head:
                    start, end = int(head.group(1), 16), int(head.group(2), 16)
                    cur = None
                    if start < hi and end > lo:
                        cur = {"range": "%s-%s" % (head.group(1), head.group(2)),
                               "start": start, "end": end, "perms": head.group(3),
                               "inode": int(head.group(4)), "path": head.group(5)}
                        inside.append(cur)
                    continue
                if cur is None:
                    continue
                key, _, value = line.partition(":")
                value = value.strip()
                if key == "VmFlags":
                    cur["VmFlags"] = value
                elif value.endswith(" kB"):
                    cur[key] = int(value[:-3])
        where = "QEMU %d, guest RAM %#x-%#x (%s)" % (self.pid, lo, hi, region)
        covered = 0
        for m in inside:
            if m["start"] < lo or m["end"] > hi:
                raise GuestError("%s: mapping %s %s %r reaches outside guest RAM"
                                 % (where, m["range"], m["perms"], m["path"]))
            if not m["perms"].startswith("rw"):
                raise GuestError("%s: mapping %s is %s" % (where, m["range"], m["perms"]))
            if self.memory_backend == "memfd":
                if not m["path"].startswith("/memfd:"):
                    raise GuestError("%s: mapping %s is %r, not the memfd backend"
                                     % (where, m["range"], m["path"]))
            elif m["path"] != "" or m["perms"] != "rw-p":
                raise GuestError("%s: mapping %s %s %r is not private anonymous memory"
                                 % (where, m["range"], m["perms"], m["path"]))
            covered += m["end"] - m["start"]
        if covered != hi - lo:
            raise GuestError("%s: smaps maps only %d of its %d KiB"
                             % (where, covered // 1024, (hi - lo) // 1024))
        result = {"hva": hva, "region": region, "range": "%x-%x" % (lo, hi),
                  "size_kib": covered // 1024, "mappings": inside,
                  "paths": sorted({m["path"] for m in inside})}
        for m in inside:
            for key, value in m.items():
                if isinstance(value, int) and key not in ("start", "end", "inode",
                                                          "KernelPageSize", "MMUPageSize"):
                    result[key] = result.get(key, 0) + value
        return result

    def rss_guest_ram(self):
        """Host RSS of guest RAM in bytes: the smaps Rss of the range QEMU says holds it."""
        return self.guest_ram_mapping()["Rss"] * 1024

    def rss_total(self):
        """Host RSS of the whole QEMU process in bytes (from /proc/PID/statm)."""
        with open("/proc/%d/statm" % self.pid) as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
