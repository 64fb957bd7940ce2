#!/usr/bin/env python3
"""e2e: the README's first command, the demo walkthrough, runs to its end.

tools/demo.py (what tools/demo runs after bootstrap and build) boots two real guests,
starts vmbcd on them and holds web1 to its limit; it exits non-zero when web1 is not
held within its limit by vmbcd's count and by its RAM's residency on the host. This runs
it on this build with --no-wait, on a free metrics port, and checks that it said so.
"""
import os
import socket
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    build = os.environ["VMBC_BUILD_ROOT"]
    if os.geteuid() != 0:
        print("SKIP: the demo runs as root")
        return 77
    cmd = [sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--build", build,
           "--no-wait", "--metrics", f"127.0.0.1:{free_port()}"]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=200)
    sys.stdout.write(r.stdout)
    sys.stderr.write(r.stderr)
    assert r.returncode == 0, f"tools/demo.py exited {r.returncode}"
    for want in ("web1 is within its limit", "$ vmbc setlimit web1 physpages 384M:448M",
                 "Done; cleaning up"):
        assert want in r.stdout, f"the demo did not say {want!r}"
    print("PASS: demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
