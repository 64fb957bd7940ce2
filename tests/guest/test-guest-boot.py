#!/usr/bin/python3
"""test-guest-boot: the e2e guest and its harness work on this machine.

Boots the test guest under QEMU (TCG) and checks, with real numbers, what the e2e tests rely on:
guest memory use shows up in the host RSS of the guest-RAM mapping, free page reporting gives
it back after an rm, query-balloon answers and an inflation reaches its target. Exits 77 when
QEMU or a built guest is missing (VMBC_GUEST_DIR, set by meson).
"""

import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vmbcguest  # noqa: E402

MiB = 1 << 20
FILL_MIB = 200


def settle_rss(guest, seconds=2.0, timeout=20.0):
    """Waits until the guest-RAM RSS stops changing (boot-time frees are still being reported
    for a while) and returns it."""
    last = guest.rss_guest_ram()
    stable_since = time.monotonic()
    deadline = stable_since + timeout
    while time.monotonic() < deadline:
        time.sleep(0.25)
        cur = guest.rss_guest_ram()
        if abs(cur - last) > 2 * MiB:
            stable_since = time.monotonic()
        last = cur
        if time.monotonic() - stable_since >= seconds:
            break
    return last


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok - " + what)


def main():
    try:
        vmbcguest.check_available()
    except vmbcguest.GuestUnavailable as exc:
        print("SKIP: %s" % exc)
        return vmbcguest.SKIP

    vmbcguest.exit_on_sigterm()
    workdir = tempfile.mkdtemp(prefix="vmbc-guest-boot-")
    try:
        with vmbcguest.Guest(workdir, mem_mib=512, free_page_reporting=True) as g:
            print("# booted %s in %.2f s" % (g.kernel_release, g.boot_seconds))
            check(g.alive(), "QEMU runs (pid %d)" % g.pid)
            with open(g.pidfile) as f:
                check(int(f.read()) == g.pid, "pidfile holds the QEMU pid")

            dmesg = g.run("dmesg")
            check("Free page reporting enabled" in dmesg, "guest enabled free page reporting")
            mods = g.run("cat /proc/modules")
            check("virtio_balloon" in mods, "virtio_balloon is loaded")

            mapping = g.guest_ram_mapping()
            check(mapping["size_kib"] == 512 * 1024, "guest-RAM mapping is 512 MiB")

            base = settle_rss(g)
            print("# guest-RAM RSS at rest: %.1f MiB" % (base / MiB))

            g.fill(FILL_MIB)
            used = g.run("du -m /mnt/fill/a").split()[0]
            check(int(used) == FILL_MIB, "guest tmpfs holds %s MiB" % used)
            filled = g.rss_guest_ram()
            rise = filled - base
            print("# after filling %d MiB: %.1f MiB (+%.1f)" % (FILL_MIB, filled / MiB, rise / MiB))
            check(rise >= 0.8 * FILL_MIB * MiB, "RSS rose by at least 80%% of the fill "
                  "(%.1f MiB)" % (rise / MiB))
            check(rise <= FILL_MIB * MiB + 40 * MiB, "RSS rose by not much more than the fill")

            t0 = time.monotonic()
            g.free()
            back = vmbcguest.wait_for(
                lambda: g.rss_guest_ram() <= base + 0.2 * FILL_MIB * MiB, 10.0, 0.1)
            took = time.monotonic() - t0
            after = g.rss_guest_ram()
            print("# after rm: %.1f MiB, %.2f s" % (after / MiB, took))
            check(back, "free page reporting returned the fill within 10 s "
                  "(RSS %.1f MiB, base %.1f MiB)" % (after / MiB, base / MiB))

            info = g.qmp("query-balloon")
            check(info == {"actual": 512 * MiB}, "query-balloon says actual 512 MiB (%r)" % info)
            target = 256 * MiB
            g.set_balloon(target)
            took = g.wait_balloon(target, timeout=60)
            check(took is not None, "balloon reached actual = 256 MiB (in %s s)" % took)
            check(g.balloon_actual() == target, "query-balloon actual is exactly 256 MiB")
            total = g.meminfo()["MemTotal"]
            check(total * 1024 < 512 * MiB - 250 * MiB,
                  "guest MemTotal shrank by the balloon (%d kB)" % total)
            ev = g.qmp_client().wait_event("BALLOON_CHANGE", 5)
            check(ev is not None and isinstance(ev["data"]["actual"], int),
                  "BALLOON_CHANGE event seen (%r)" % (ev and ev["data"]))

            g.set_balloon(512 * MiB)
            check(g.wait_balloon(512 * MiB, timeout=60) is not None, "balloon deflated again")
        check(g.proc.returncode is not None, "QEMU is gone after stop()")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
