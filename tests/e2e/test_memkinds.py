#!/usr/bin/env python3
"""End-to-end tests: every kind of guest RAM QEMU can give a guest, charged by vmbcd.

vmbcd asks QEMU where guest RAM is (its memory backends, where the guest sees them and where
QEMU maps them). The oracle here does not share that code: each case knows the backends it put
on QEMU's command line and where the machine puts them in guest-physical memory (NUMA nodes one
after the other from 0, memory devices where query-memory-devices says), asks QEMU's test
monitor where each one's first and last byte are on the host (HMP gpa2hva), and sums what
/proc/PID/smaps says of the mappings in those ranges: Rss, Pss, and the hugetlb pages that Rss
does not count.

Cases: numa_dimm (two NUMA nodes and a DIMM), hugetlb (all guest RAM in hugetlb pages),
virtio_mem (a guest held to a limit by unplugging virtio-mem blocks), ksm (two identical
guests, KSM on: each pays about half of what they share).
Run one case: test_memkinds.py CASE. Exit 77 (skip) only when QEMU or the guest cannot exist
here, or when the host cannot reserve the huge pages case hugetlb needs.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import vmbcguest  # noqa: E402
from test_e2e import World  # noqa: E402
from vmbctest import MIB, PAGE, pages, wait_for  # noqa: E402

SKIP = 77
REL = 0.03  # held within 3 % of what the host holds
FLOOR = pages(1)
_HEAD = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) ")


def backend_ranges(g, layout):
    """[(name, lo, hi)]: where QEMU maps each (name, guest-physical start, size) of layout on
    the host, asked on the test's own monitor at the first and the last byte; the two must be
    one region of that name, size - 1 apart."""
    out = []
    for name, gpa, size in layout:
        first, region = g.gpa2hva(gpa)
        last, last_region = g.gpa2hva(gpa + size - 1)
        assert region == name and last_region == name, (name, region, last_region)
        assert last - first == size - 1, (name, hex(first), hex(last))
        out.append((name, first, first + size))
    return out


def smaps_of(pid, ranges):
    """What smaps says of the mappings inside ranges, per range name and summed ('all'): kB
    fields Rss, Pss, Private_Hugetlb, Shared_Hugetlb. A mapping that reaches out of a range
    it starts in fails the test (its pages could not be split)."""
    res = {name: {} for name, _, _ in ranges}
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = _HEAD.match(line)
            if m:
                start, end = int(m.group(1), 16), int(m.group(2), 16)
                cur = None
                for name, lo, hi in ranges:
                    if lo <= start < hi:
                        assert end <= hi, f"mapping {m.group(0)} reaches out of {name}"
                        cur = res[name]
                continue
            if cur is None:
                continue
            key, _, value = line.partition(":")
            if key in ("Rss", "Pss", "Private_Hugetlb", "Shared_Hugetlb"):
                cur[key] = cur.get(key, 0) + int(value.split()[0])
    res["all"] = {k: sum(r.get(k, 0) for n, r in res.items()) for k in
                  ("Rss", "Pss", "Private_Hugetlb", "Shared_Hugetlb")}
    return res


def resident_pages(s):
    """Guest RAM the host holds, in pages: Rss plus hugetlb pages."""
    return (s["Rss"] + s["Private_Hugetlb"] + s["Shared_Hugetlb"]) * 1024 // PAGE


def held_bracket(w, name, oracle):
    """(lo, hi, held): oracle() (pages) read for more than a tick before the query of held and
    once after it, so that the sample behind held was taken within the bracket."""
    vals = [oracle()]
    until = time.monotonic() + 0.5
    while time.monotonic() < until:
        time.sleep(0.05)
        vals.append(oracle())
    held = w.res(name)["held"]
    vals.append(oracle())
    return min(vals), max(vals), held


def assert_within(w, name, oracle, what, timeout=20):
    """held within REL (floor FLOOR) of oracle's bracket, waiting up to timeout for it."""
    last = [None]

    def ok():
        lo, hi, held = held_bracket(w, name, oracle)
        last[0] = (lo, hi, held)
        return lo * (1 - REL) - FLOOR <= held <= hi * (1 + REL) + FLOOR

    if not vmbcguest.wait_for(ok, timeout, 0.25):
        lo, hi, held = last[0]
        raise AssertionError(f"{what}: held {held} pages, the host holds {lo}..{hi} pages")
    lo, hi, held = last[0]
    print(f"{what}: held {held} pages, host {lo}..{hi} pages "
          f"({100 * (held - (lo + hi) / 2) / max(hi, 1):+.2f} %)")
    return held


def case_numa_dimm():
    """Two NUMA nodes (256 MiB each, separate backends) and a 256 MiB memfd DIMM: the guest
    fills 600 MiB, which lands in all three; held is their summed Rss, not one of them."""
    numa = ["-object", "memory-backend-ram,id=m0,size=256M",
            "-object", "memory-backend-ram,id=m1,size=256M",
            "-numa", "node,nodeid=0,memdev=m0", "-numa", "node,nodeid=1,memdev=m1",
            "-object", "memory-backend-memfd,id=d0,size=256M",
            "-device", "pc-dimm,id=dimm0,memdev=d0,node=1"]
    with World("numa") as w:
        g = w.guest("gn", 512, mem_opts=",maxmem=1G,slots=2", extra_args=numa,
                    extra_append="memhp_default_state=online")
        dimm = [d["data"] for d in g.qmp("query-memory-devices") if d["type"] == "dimm"][0]
        ranges = backend_ranges(g, [("m0", 0, 256 * MIB), ("m1", 256 * MIB, 256 * MIB),
                                    ("d0", dimm["addr"], 256 * MIB)])
        total = g.meminfo()["MemTotal"]
        assert total > 600 * 1024, f"the guest sees {total} kB: the DIMM is not online"
        w.start_daemon()
        ram = w.domain("gn")["guest-ram"]
        assert ram["size"] == pages(768), ram
        assert ram["hugetlb-size"] == 0 and ram["balloon-reclaimable"] == pages(768), ram
        g.fill(600)
        per = smaps_of(g.pid, ranges)
        for n in ("m0", "m1", "d0"):
            print(f"  {n}: Rss {per[n].get('Rss', 0) // 1024} MiB")
        # the fill is everywhere: a vmbcd that charged one backend would be far off
        assert all(per[n].get("Rss", 0) >= 64 * 1024 for n in ("m1", "d0")), per
        assert_within(w, "gn", lambda: resident_pages(smaps_of(g.pid, ranges)["all"]),
                      "filled, all three backends")
        filled = resident_pages(smaps_of(g.pid, ranges)["all"])
        g.free()
        # free page reporting gives most of it back, from whichever backend held it
        wait_for("the guest's free pages reported",
                 lambda: resident_pages(smaps_of(g.pid, ranges)["all"]) < filled - pages(300),
                 timeout=60)
        assert_within(w, "gn", lambda: resident_pages(smaps_of(g.pid, ranges)["all"]),
                      "freed (free page reporting)", timeout=30)
        w.stop_daemon()


def hugepages_path(size_kb=2048):
    return f"/sys/kernel/mm/hugepages/hugepages-{size_kb}kB/nr_hugepages"


def case_hugetlb():
    """All guest RAM in 2 MiB hugetlb pages (memory-backend-memfd hugetlb=on): the test
    reserves the pages and gives the setting back after. Rss does not count them; held does,
    and the VM says its RAM is hugetlb-backed, which no balloon can reclaim."""
    path = hugepages_path()
    if not os.path.exists(path) or os.geteuid() != 0:
        print(f"SKIP: cannot reserve huge pages here ({path})")
        sys.exit(SKIP)
    with open(path) as f:
        old = f.read().strip()
    need = int(old) + 256 // 2 + 8
    try:
        with open(path, "w") as f:
            f.write(str(need))
        with open(path) as f:
            got = int(f.read())
        if got < need:
            print(f"SKIP: the host reserved {got} of {need} huge pages")
            sys.exit(SKIP)
        hp = ["-object", "memory-backend-memfd,id=hp0,size=256M,hugetlb=on,hugetlbsize=2M",
              "-machine", "memory-backend=hp0"]
        with World("huge") as w:
            g = w.guest("gt", 256, extra_args=hp)
            ranges = backend_ranges(g, [("hp0", 0, 256 * MIB)])
            w.start_daemon()
            ram = w.domain("gt")["guest-ram"]
            assert ram["size"] == pages(256) and ram["hugetlb-size"] == pages(256), ram
            assert ram["balloon-reclaimable"] == 0, ram
            g.fill(100)
            s = smaps_of(g.pid, ranges)["all"]
            assert s["Rss"] < 4 * 1024 and s["Shared_Hugetlb"] + s["Private_Hugetlb"] >= \
                100 * 1024, s
            held = assert_within(w, "gt", lambda: resident_pages(smaps_of(g.pid, ranges)["all"]),
                                 "hugetlb guest filled")
            ram = w.domain("gt")["guest-ram"]
            assert ram["hugetlb-held"] >= pages(100) and ram["hugetlb-held"] <= held, ram
            out = w.cli("dominfo", "gt")
            assert out.returncode == 0 and "not balloon-reclaimable" in out.stdout, out
            print(out.stdout)
            w.stop_daemon()
    finally:
        with open(path, "w") as f:
            f.write(old)
        with open(path) as f:
            assert f.read().strip() == old, "nr_hugepages not restored"


def vmem_dev(g, dev_id="vm0"):
    """query-memory-devices' virtio-mem device dev_id, asked on the test's own monitor."""
    return next(d["data"] for d in g.qmp("query-memory-devices")
                if d["type"] == "virtio-mem" and d["data"]["id"] == dev_id)


def case_virtio_mem():
    """A guest with 384 MiB of base RAM and a virtio-mem device with 640 MiB plugged (the
    guest loads virtio_mem and onlines it movable) holds about 650 MiB: 300 MiB in tmpfs and
    300 MiB it freed (free page reporting off, so the host keeps them). A limit of 560M is reached by
    unplugging virtio-mem blocks, the balloon holding less than a block; held is then within
    3 % of the summed Rss of both RAM backends; raising the limit plugs the blocks back."""
    vmem = ["-object", "memory-backend-ram,id=vmem0,size=1G",
            "-device", "virtio-mem-pci,id=vm0,memdev=vmem0,requested-size=640M"]
    with World("vmem") as w:
        # without free page reporting, what the guest frees stays on the host until reclaimed
        g = w.guest("gv", 384, mem_opts=",maxmem=2G,slots=2", extra_args=vmem,
                    extra_append="memhp_default_state=online_movable",
                    free_page_reporting=False)
        assert "virtio_mem" in g.run("cat /proc/modules")
        wait_for("virtio-mem plugged", lambda: vmem_dev(g)["size"] == 640 * MIB, timeout=30)
        dev = vmem_dev(g)
        block = dev["block-size"]
        ranges = backend_ranges(g, [("pc.ram", 0, 384 * MIB),
                                    ("vmem0", dev["memaddr"], dev["max-size"])])
        oracle = lambda: resident_pages(smaps_of(g.pid, ranges)["all"])  # noqa: E731
        w.start_daemon()
        ram = w.domain("gv")["guest-ram"]
        assert ram["size"] == pages(384 + 1024), ram
        # the guest sized its tmpfs at boot, before virtio-mem was plugged
        g.run("mount -o remount,size=900M /mnt/fill")
        g.fill(300, "a")
        g.fill(300, "b")
        g.free("b")
        before = assert_within(w, "gv", oracle, "filled, before the limit")
        assert before > pages(560), before
        with w.control() as c:
            t0 = time.monotonic()
            r = c.execute("set-limit", {"domain": "gv", "resource": "physpages",
                                        "barrier": "560M", "limit": "560M"})
            took = time.monotonic() - t0
        print(f"set-limit 560M: held {r['held'] * PAGE // MIB} MiB after {took:.1f} s")
        assert r["held"] <= pages(560), r
        # by unplugging: the device gave up blocks, the balloon holds less than one
        wait_for("virtio-mem at its request",
                 lambda: vmem_dev(g)["size"] == vmem_dev(g)["requested-size"], timeout=30)
        dev = vmem_dev(g)
        # QEMU's balloon counts base RAM (and DIMMs), not virtio-mem
        in_balloon = 384 * MIB - g.balloon_actual()
        print(f"virtio-mem {dev['size'] // MIB} MiB (requested {dev['requested-size'] // MIB}),"
              f" balloon {in_balloon / MIB:.1f} MiB")
        assert dev["size"] <= 640 * MIB - 256 * MIB, dev
        assert dev["size"] % block == 0, dev
        assert 0 <= in_balloon < block, in_balloon
        assert w.res("gv")["failcnt"] == 0, w.res("gv")
        held = assert_within(w, "gv", oracle, "held to the limit by unplugging")
        assert held <= pages(560), held
        # vmbcd follows the device: once it holds still, vmbcd says the size QEMU says (right
        # after the reclaim vmbcd may give a block or two back up to the limit meanwhile)
        def same_size():
            dom, dev = w.domain("gv"), vmem_dev(g)
            return (dom["virtio-mem"]["size"] == dev["size"] // PAGE and
                    dev["size"] == dev["requested-size"])
        wait_for("vmbcd's virtio-mem size to be QEMU's", same_size, timeout=10)
        # the guest lives on, its files intact
        assert "300" in g.run("du -m /mnt/fill/a")
        # no limit: what vmbcd took is plugged back
        with w.control() as c:
            c.execute("set-limit", {"domain": "gv", "resource": "physpages",
                                    "barrier": "unlimited", "limit": "unlimited"})
        wait_for("virtio-mem plugged back", lambda: vmem_dev(g)["size"] == 640 * MIB,
                 timeout=30)
        wait_for("the balloon empty", lambda: g.balloon_actual() == 384 * MIB, timeout=10)
        w.stop_daemon()


KSM = "/sys/kernel/mm/ksm"
KSM_KNOBS = ("run", "pages_to_scan", "sleep_millisecs")


def ksm_read(knob):
    with open(os.path.join(KSM, knob)) as f:
        return f.read().strip()


def ksm_write(knob, value):
    with open(os.path.join(KSM, knob), "w") as f:
        f.write(str(value))


def fill_pattern(g, mib, name="p"):
    """mib MiB in the guest's tmpfs, each 4 KiB page its own number: no two pages of one guest
    alike, the same pages in every guest that runs this."""
    g.run("awk 'BEGIN { for (i = 0; i < %d; i++) printf \"%%4095d\\n\", i }' "
          "> /mnt/fill/%s" % (mib * 256, name), timeout=300)


def case_ksm():
    """Two guests with the same 150 MiB in tmpfs and KSM switched on by the test (its
    settings given back after): the two physpages sum to what their guest RAM costs the host
    (the summed Pss of both guest-RAM ranges) within 3 %, each paying about half of what they
    share; the unshared view (ksm-saved) says what the other pays for."""
    if not os.path.exists(os.path.join(KSM, "run")) or os.geteuid() != 0:
        print(f"SKIP: no KSM to switch on here ({KSM})")
        sys.exit(SKIP)
    old = {k: ksm_read(k) for k in KSM_KNOBS}
    try:
        with World("ksm") as w:
            ga = w.guest("ka", 512)
            gb = w.guest("kb", 512)
            w.start_daemon()
            fill_pattern(ga, 150)
            fill_pattern(gb, 150)
            assert ga.run("md5sum /mnt/fill/p").split()[0] == \
                gb.run("md5sum /mnt/fill/p").split()[0]
            cost = lambda: sum(g.guest_ram_mapping()["Pss"] for g in (ga, gb)) * 1024 // PAGE  # noqa: E731,E501
            rss = lambda: sum(g.guest_ram_mapping()["Rss"] for g in (ga, gb)) * 1024 // PAGE  # noqa: E731,E501
            before = rss()
            ksm_write("pages_to_scan", 2000)
            ksm_write("sleep_millisecs", 20)
            ksm_write("run", 1)
            # merged: what the two cost dropped by most of the 150 MiB they share, and holds
            wait_for("KSM merged the shared pages", lambda: rss() - cost() >= pages(140),
                     timeout=120)
            last = [cost()]

            def steady():
                time.sleep(2)
                now = cost()
                moved = abs(now - last[0])
                last[0] = now
                return moved <= pages(2)
            wait_for("KSM settled", steady, timeout=120)
            got = [None]

            def summed():
                lo = cost()
                ha, hb = w.res("ka")["held"], w.res("kb")["held"]
                hi = cost()
                got[0] = (ha, hb, lo, hi)
                low, high = min(lo, hi), max(lo, hi)
                return low * (1 - REL) - FLOOR <= ha + hb <= high * (1 + REL) + FLOOR
            ok = vmbcguest.wait_for(summed, 30, 0.5)
            ha, hb, lo, hi = got[0]
            print(f"held {ha} + {hb} = {ha + hb} pages; the guests' RAM costs {lo}..{hi} "
                  f"pages (Rss {before} before KSM, {rss()} now)")
            assert ok, f"held {ha} + {hb} pages, Pss {lo}..{hi} pages"
            da, db = w.domain("ka"), w.domain("kb")
            print(f"ksm-merged {da['ksm-merged']} / {db['ksm-merged']}, "
                  f"ksm-saved {da['ksm-saved']} / {db['ksm-saved']} pages")
            # each pays about half of the 150 MiB they share: the other half is saved
            for d in (da, db):
                assert pages(60) <= d["ksm-saved"] <= pages(150), d
                assert d["ksm-merged"] >= pages(140), d
            # two alike guests pay alike
            assert abs(ha - hb) <= pages(40), (ha, hb)
            w.stop_daemon()
    finally:
        # run first: 0 stops merging (2 would unmerge every page of the whole host)
        for k in KSM_KNOBS:
            ksm_write(k, old[k])
        assert {k: ksm_read(k) for k in KSM_KNOBS} == old, "KSM settings not restored"


CASES = {n[len("case_"):]: f for n, f in globals().items() if n.startswith("case_")}

if __name__ == "__main__":
    vmbcguest.exit_on_sigterm()
    try:
        vmbcguest.check_available()
    except vmbcguest.GuestUnavailable as e:
        print(f"SKIP: {e}")
        sys.exit(SKIP)
    name = sys.argv[1]
    CASES[name]()
    print(f"PASS: {name}")
