#!/usr/bin/env python3
"""End-to-end tests of the libvirt backend on guest RAM other than one anonymous mapping.

vmbcd reads a domain's memory backends from its live XML and finds each one among its QEMU's
mappings by kind and size; it resizes a <memory model='virtio-mem'> device through libvirt
(virDomainUpdateDeviceFlags of <requested>). The oracle here shares none of that: it asks QEMU
itself where each backend is (HMP gpa2hva through virsh qemu-monitor-command, which marks the
test domain "custom-monitor" in libvirtd's log), and sums what /proc/PID/smaps says of the
mappings in those ranges (test_memkinds.py's helpers).

Cases: virtio_mem (a domain with a NUMA cell of 384 MiB and a virtio-mem device with 640 MiB
plugged, held to a limit by unplugging, within 3 % of both backends' summed Rss).
Run one case: test_libvirt_memkinds.py CASE. Exit 0 pass, 1 fail, 77 skip.
"""
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))

import test_libvirt_e2e as lve  # noqa: E402
import vmbcguest  # noqa: E402
from test_memkinds import assert_within, backend_ranges, resident_pages, smaps_of  # noqa: E402
from vmbctest import MIB, PAGE, pages, wait_for  # noqa: E402


class VmemDomain(lve.DomainGuest):
    """The test guest with one NUMA cell of mem_mib and a virtio-mem device of vmem_mib with
    plugged_mib plugged at boot; the kernel onlines hot-plugged memory movable."""

    def __init__(self, lv, name, workdir, mem_mib=384, vmem_mib=1024, plugged_mib=640, **kw):
        super().__init__(lv, name, workdir, mem_mib=mem_mib, **kw)
        self.vmem_mib = vmem_mib
        self.plugged_mib = plugged_mib

    def domain_xml(self):
        balloon = ("<memballoon model='virtio' freePageReporting='%s'><stats period='1'/>"
                   "</memballoon>" % ("on" if self.free_page_reporting else "off"))
        return f"""<domain type='qemu'>
  <name>{self.name}</name>
  <maxMemory slots='2' unit='MiB'>2048</maxMemory>
  <memory unit='MiB'>{self.mem_mib + self.vmem_mib}</memory>
  <vcpu>1</vcpu>
  <cpu><numa><cell id='0' cpus='0' memory='{self.mem_mib}' unit='MiB'/></numa></cpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{os.path.join(self.workdir, "vmlinuz")}</kernel>
    <initrd>{os.path.join(self.workdir, "initramfs.gz")}</initrd>
    <cmdline>console=ttyS0 panic=-1 memhp_default_state=online_movable</cmdline></os>
  <on_reboot>destroy</on_reboot>
  <devices>
    <emulator>{vmbcguest.find_qemu()}</emulator>
    <serial type='unix'><source mode='bind' path='{self.serial_path}'/><target port='0'/></serial>
    {balloon}
    <memory model='virtio-mem'>
      <target><size unit='MiB'>{self.vmem_mib}</size><node>0</node>
        <block unit='KiB'>2048</block><requested unit='MiB'>{self.plugged_mib}</requested></target>
    </memory>
  </devices>
</domain>
"""

    def qmp_passthrough(self, command):
        """One QMP command passed to QEMU by libvirtd (for the oracle alone)."""
        out = self.lv.virsh("qemu-monitor-command", self.name,
                            json.dumps({"execute": command})).stdout
        return json.loads(out)["return"]

    def vmem_dev(self):
        return next(d["data"] for d in self.qmp_passthrough("query-memory-devices")
                    if d["type"] == "virtio-mem")

    def balloon_actual(self):
        return self.balloon_actual_kib() * 1024


def case_virtio_mem():
    """A domain with 384 MiB in its NUMA cell and a virtio-mem device with 640 MiB plugged holds
    about 650 MiB (300 MiB in tmpfs, 300 MiB it freed; free page reporting off, so the host
    keeps them). vmbcd finds both backends from the XML (held within 3 % of their summed Rss);
    a limit of 560M is reached by unplugging virtio-mem blocks through libvirt, the balloon
    holding less than a block; raising the limit plugs the blocks back."""
    with lve.World("vmem") as w:
        w.lv.start()
        g = VmemDomain(w.lv, "gv", w.gdir, free_page_reporting=False)
        w.guests.append(g)
        g.start()
        assert "virtio_mem" in g.run("cat /proc/modules")
        wait_for("virtio-mem plugged", lambda: g.vmem_dev()["size"] == 640 * MIB, timeout=30)
        dev = g.vmem_dev()
        block = dev["block-size"]
        ranges = backend_ranges(g, [("ram-node0", 0, 384 * MIB),
                                    ("memvirtiomem0", dev["memaddr"], dev["max-size"])])
        oracle = lambda: resident_pages(smaps_of(g.pid, ranges)["all"])  # noqa: E731
        w.start_daemon()
        w.wait_domain("gv")
        w.wait_sampled("gv")
        d = w.domain("gv")
        ram = d["guest-ram"]
        assert ram["size"] == pages(384 + 1024), ram
        # the most the guest sees: its cell and what the device had, not the device's size
        assert d["max"] == pages(384 + 640), d["max"]
        assert "guest RAM is 2 memory backends" in w.logtext(), w.logtext()[-3000:]
        # the guest sized its tmpfs at boot, before virtio-mem was plugged
        g.run("mount -o remount,size=900M /mnt/fill")
        g.fill(300, "a")
        g.fill(300, "b")
        g.free("b")
        per = smaps_of(g.pid, ranges)
        print("  ram-node0: Rss %d MiB, memvirtiomem0: Rss %d MiB"
              % (per["ram-node0"].get("Rss", 0) // 1024,
                 per["memvirtiomem0"].get("Rss", 0) // 1024))
        before = assert_within(w, "gv", oracle, "filled, before the limit")
        assert before > pages(560), before
        t0 = time.monotonic()
        r = lve.set_limit(w, "gv", "560M")
        took = time.monotonic() - t0
        print(f"set-limit 560M: held {r['held'] * PAGE // MIB} MiB after {took:.1f} s")
        assert r["held"] <= pages(560), r
        # by unplugging: the device gave up blocks, the balloon holds less than one
        wait_for("virtio-mem at its request",
                 lambda: g.vmem_dev()["size"] == g.vmem_dev()["requested-size"], timeout=30)
        dev = g.vmem_dev()
        in_balloon = 384 * MIB - g.balloon_actual()
        print(f"virtio-mem {dev['size'] // MIB} MiB (requested {dev['requested-size'] // MIB}),"
              f" balloon {in_balloon / MIB:.1f} MiB")
        assert dev["size"] <= 640 * MIB - 256 * MIB, dev
        assert dev["size"] % block == 0, dev
        assert 0 <= in_balloon < block, in_balloon
        assert w.res("gv")["failcnt"] == 0, w.res("gv")
        held = assert_within(w, "gv", oracle, "held to the limit by unplugging")
        assert held <= pages(560), held
        # QEMU sends the device's size at most once a second: vmbcd hears it after the guest
        wait_for("vmbcd sees the device's size",
                 lambda: w.domain("gv")["virtio-mem"]["size"] == dev["size"] // PAGE, timeout=5)
        # the guest's size in vmbcd is the balloon's plus the device's, whichever source spoke
        # last (libvirt's balloon.current, polled every second here, also counts virtio-mem)
        seen = 384 * MIB - in_balloon + dev["size"]
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            actual = w.domain("gv")["actual"] * PAGE
            assert abs(actual - seen) < block, (actual // MIB, seen // MIB)
            time.sleep(0.2)
        assert "300" in g.run("du -m /mnt/fill/a")
        # no limit: what vmbcd took is plugged back
        lve.set_limit(w, "gv", "unlimited")
        wait_for("virtio-mem plugged back", lambda: g.vmem_dev()["size"] == 640 * MIB,
                 timeout=30)
        wait_for("the balloon empty", lambda: g.balloon_actual() == 384 * MIB, timeout=10)


CASES = {"virtio_mem": case_virtio_mem}

if __name__ == "__main__":
    lve.CASES = CASES
    sys.exit(lve.main())
