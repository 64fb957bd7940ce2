#!/usr/bin/python3
"""record-qmp-transcripts: records real QMP sessions with a live guest balloon driver.

Boots the test guest and writes tests/qmp/transcripts/guest-<name>.replies, one QMP connection
per file: '< ' lines from QEMU, '> ' lines to QEMU, exactly as on the wire without the CRLF,
after one '#' line saying where they come from. These are the exchanges that need a guest
driver (balloon progress, BALLOON_CHANGE, guest stats) for the QMP library's replay tests.

Usage: record-qmp-transcripts.py [OUTDIR]   (needs VMBC_GUEST_DIR, like the e2e tests)
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmbcguest  # noqa: E402

MiB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "qmp", "transcripts")


def qemu_version():
    out = subprocess.run([vmbcguest.find_qemu(), "--version"], capture_output=True, text=True)
    m = re.search(r"version (\d+)\.(\d+)", out.stdout)
    return "%s.%s" % (m.group(1), m.group(2)) if m else "?"


def session(guest, outdir, name, what, body):
    """Runs body(client) on a fresh recording connection to the guest's main QMP socket and
    writes the transcript."""
    client = vmbcguest.QMPClient(guest.qmp_path, record=True).connect()
    try:
        body(client)
    finally:
        client.close()
    info = vmbcguest.read_guest_info(vmbcguest.find_guest_dir())
    header = "# recorded from qemu-system-x86_64 %s (Debian), TCG, Linux %s (%s): %s" % (
        qemu_version(), guest.kernel_release, info.get("kernel_package_version", "?"), what)
    path = os.path.join(outdir, "guest-%s.replies" % name)
    with open(path, "w") as f:
        f.write(header + "\n")
        for direction, text in client.transcript:
            f.write("%s %s\n" % (direction, text))
    print("wrote %s (%d messages)" % (path, len(client.transcript)))


def main():
    outdir = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_OUT)
    try:
        vmbcguest.check_available()
    except vmbcguest.GuestUnavailable as exc:
        print("SKIP: %s" % exc)
        return vmbcguest.SKIP
    os.makedirs(outdir, exist_ok=True)
    vmbcguest.exit_on_sigterm()
    workdir = tempfile.mkdtemp(prefix="vmbc-qmp-record-")
    try:
        with vmbcguest.Guest(workdir, mem_mib=512, free_page_reporting=True) as g:
            session(g, outdir, "capabilities", "greeting and capabilities negotiation",
                    lambda c: None)
            session(g, outdir, "query-balloon", "query-balloon with the driver loaded",
                    lambda c: c.command("query-balloon"))

            def inflate(c):
                c.command("balloon", {"value": 256 * MiB})
                # QEMU sends at most one BALLOON_CHANGE a second; the inflation itself takes
                # well under a second under TCG, so keep reading for a while.
                c.drain_events(3.0)
                c.command("query-balloon")

            session(g, outdir, "balloon", "balloon to 256 MiB of 512 MiB, the BALLOON_CHANGE "
                    "events read for 3 s, then query-balloon", inflate)

            def deflate(c):
                c.command("balloon", {"value": 512 * MiB})
                c.drain_events(3.0)
                c.command("query-balloon")

            session(g, outdir, "balloon-deflate", "balloon back to 512 MiB (deflation), events "
                    "read for 3 s, then query-balloon", deflate)

            def stats(c):
                c.command("qom-set", {"path": "/machine/peripheral/balloon0",
                                      "property": "guest-stats-polling-interval", "value": 1})
                time.sleep(2.0)
                c.command("qom-get", {"path": "/machine/peripheral/balloon0",
                                      "property": "guest-stats"})

            session(g, outdir, "stats", "stats polling every 1 s, guest-stats 2 s later",
                    stats)
            session(g, outdir, "memory-size-summary", "query-memory-size-summary, -m 512",
                    lambda c: c.command("query-memory-size-summary"))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
