#!/usr/bin/env python3
"""The vmbc demo's walkthrough (run by tools/demo after it built everything).

Two real guests (QEMU, TCG, Debian's cloud kernel with its virtio-balloon
driver), vmbcd watching both, and one of them held to its limit by the balloon.
"""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "guest"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests", "libvirt"))
import vmbcguest  # noqa: E402
from vmbctest import QMP  # noqa: E402

METRICS = "127.0.0.1:9786"
BOLD = "\033[1m" if sys.stdout.isatty() else ""
RESET = "\033[0m" if sys.stdout.isatty() else ""


def say(text):
    print(f"\n{BOLD}==> {text}{RESET}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--no-wait", action="store_true",
                    help="clean up at once instead of waiting for Ctrl-C")
    ap.add_argument("--libvirt", action="store_true",
                    help="run the guests as libvirt domains and vmbcd's libvirt backend")
    ap.add_argument("--metrics", default=METRICS, metavar="ADDR:PORT",
                    help=f"where vmbcd serves /metrics (default {METRICS})")
    args = ap.parse_args()

    vmbcd = os.path.join(args.build, "src", "daemon", "vmbcd")
    vmbc = os.path.join(args.build, "src", "cli", "vmbc")
    os.environ["VMBC_GUEST_DIR"] = os.path.join(args.build, "tests", "guest")
    work = tempfile.mkdtemp(prefix="vmbc-demo-")
    os.chmod(work, 0o755)
    sock = os.path.join(work, "vmbcd.sock")
    guests = []
    procs = []
    lv = None

    def vmbc_run(*cmd, show=True):
        r = subprocess.run([vmbc, "-c", sock, *cmd], capture_output=True, text=True)
        if show:
            print(f"$ vmbc {' '.join(cmd)}")
            sys.stdout.write(r.stdout)
            sys.stdout.write(r.stderr)
        return r

    def cleanup(*_):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for g in guests:
            g.stop()
        if lv is not None:
            lv.close()
        shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))
    try:
        vmbcd_env = dict(os.environ)
        if args.libvirt:
            import test_libvirt_e2e as lvt
            say("Starting a private libvirtd (session mode, in the demo's temp dir)")
            lv = lvt.Libvirtd(os.path.join(work, "lv"))
            lv.start()
            print(f"    libvirtd pid {lv.proc.pid}, URI {lv.uri}")
            gdir = os.path.join(work, "guests")
            os.mkdir(gdir)
            user = lvt.pwd.getpwnam(lvt.UNPRIV)
            os.chown(gdir, user.pw_uid, user.pw_gid)
            vmbcd_env["XDG_RUNTIME_DIR"] = lv.run_dir  # where the session driver's pidfiles are
        say("Booting two guests under QEMU (TCG): web1 and db1, 768 MiB each"
            + (", as libvirt domains" if args.libvirt else ""))
        print("    web1 runs without free page reporting: memory it frees stays on the host")
        for name, fpr in (("web1", False), ("db1", True)):
            if args.libvirt:
                g = lvt.DomainGuest(lv, name, gdir, mem_mib=768, free_page_reporting=fpr)
                guests.append(g)
                g.start()
                print(f"    {name}: domain, pid {g.pid}, booted in {g.boot_seconds:.1f} s")
                continue
            d = os.path.join(work, name)
            os.mkdir(d)
            g = vmbcguest.Guest(d, mem_mib=768, free_page_reporting=fpr,
                                extra_args=("-name", name))
            guests.append(g)
            g.start()
            print(f"    {name}: pid {g.pid}, booted in {g.boot_seconds:.1f} s, "
                  f"QMP socket {g.qmp_path}")

        say("Starting vmbcd on them")
        conf = os.path.join(work, "vmbc.conf")
        with open(conf, "w") as f:
            backend = (f"backends = libvirt\nlibvirt-uri = {lv.uri}\n" if args.libvirt
                       else f"backends = qmp\nqmp-sockets = {work}/*/qmp.sock\n")
            f.write(f"""[daemon]
{backend}
control-socket = {sock}
state-dir = {work}/state
metrics-listen = {args.metrics}
tick = 500ms
reclaim-timeout = 10s
# the demo's guests run in this shell's cgroup: should a reclaim fail, vmbcd says why
# rather than setting memory.high on it
escalation = none
""")
        log = open(os.path.join(work, "vmbcd.log"), "w")
        daemon = subprocess.Popen([vmbcd, "--foreground", "--config", conf], stdout=log,
                                  stderr=subprocess.STDOUT, env=vmbcd_env)
        procs.append(daemon)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if os.path.exists(sock):
                with QMP(sock) as c:
                    if len(c.execute("query-domains")["domains"]) == 2:
                        break
            time.sleep(0.2)
        time.sleep(1.5)
        print(f"    vmbcd pid {daemon.pid}, control socket {sock}")
        vmbc_run("list")
        vmbc_run("ubc", "-h")

        events_log = os.path.join(work, "events.log")
        events = subprocess.Popen([vmbc, "-c", sock, "events"],
                                  stdout=open(events_log, "w"), stderr=subprocess.STDOUT)
        procs.append(events)

        say("web1 fills 400 MiB of tmpfs and frees it again; db1 uses 100 MiB")
        guests[0].fill(400)
        guests[0].free()
        guests[1].fill(100)
        time.sleep(2)
        print("    web1 freed its memory, but without free page reporting the host still")
        print("    holds every page it touched:")
        vmbc_run("ubc", "-h")

        say("Giving both VMs a budget: barrier 384M, limit 448M of physpages")
        print("    web1 is over it: vmbcd inflates web1's balloon, and `vmbc setlimit`")
        print("    answers once held is back under the limit. db1 is within budget.")
        for name in ("web1", "db1"):
            t0 = time.monotonic()
            r = vmbc_run("setlimit", name, "physpages", "384M:448M")
            print(f"    (answered in {time.monotonic() - t0:.1f} s)")
            if r.returncode != 0:
                print(f"demo: FAILED: vmbc setlimit {name} exited {r.returncode}", file=sys.stderr)
                return 1
        time.sleep(1.5)

        say("The events vmbcd sent (vmbc events)")
        with open(events_log) as f:
            sys.stdout.write(f.read())
        say("The beancounters now: web1 held is back under its limit, db1 was left alone")
        vmbc_run("ubc", "-h")
        vmbc_run("list")

        say("What the host sees (RSS of each guest's RAM mapping, from /proc)")
        for g in guests:
            name = getattr(g, "name", None) or os.path.basename(g.workdir)
            print(f"    {name}: {g.rss_guest_ram() >> 20} MiB resident")

        # the demo's promise, checked: web1 held back within its limit, by vmbcd's count and by
        # what the host holds of its RAM
        limit = 448 << 20
        with QMP(sock) as c:
            res = next(r for r in c.execute("query-domain", {"domain": "web1"})["resources"]
                       if r["resource"] == "physpages")
            page = c.execute("query-version")["page-size"]
        web1_rss = guests[0].rss_guest_ram()
        if res["held"] * page > limit or web1_rss > limit:
            print(f"demo: FAILED: web1 not held within its limit of 448M: held "
                  f"{res['held'] * page >> 20} MiB, {web1_rss >> 20} MiB resident",
                  file=sys.stderr)
            return 1
        print(f"    web1 is within its limit: held {res['held'] * page >> 20} MiB, "
              f"{web1_rss >> 20} MiB resident")

        if args.no_wait or not sys.stdin.isatty():
            say("Done; cleaning up")
            return 0
        say("Everything stays up for you to explore:")
        print(f"    {vmbc} -c {sock}                 # the interactive shell (try: help, ubc -h)")
        print(f"    {vmbc} -c {sock} dominfo web1")
        print(f"    {vmbc} -c {sock} events          # follow limit hits and reclaims")
        print(f"    curl http://{args.metrics}/metrics           # Prometheus metrics")
        print(f"    vmbcd's log: {work}/vmbcd.log")
        print("Press Ctrl-C to stop the guests and vmbcd and remove everything.")
        try:
            while daemon.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            print()
        say("Stopping")
        return 0
    finally:
        cleanup()


if __name__ == "__main__":
    sys.exit(main())
