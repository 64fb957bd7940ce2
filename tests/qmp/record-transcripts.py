#!/usr/bin/env python3
# record-transcripts.py: records raw QMP exchanges with the real
# qemu-system-x86_64 (TCG, no guest kernel) into tests/qmp/transcripts/*.replies.
# Each line is '> JSON' (sent to QEMU) or '< JSON' (QEMU's reply or event),
# exactly as on the wire; test-qmp-replay drives the client through them.
# Transcripts that need a guest driver are recorded by tests/guest.
# Usage: tests/qmp/record-transcripts.py [OUTDIR]
import json, os, socket, subprocess, sys, time, tempfile

def run(name, comment, extra_args, commands, settle=0.3):
    d = tempfile.mkdtemp()
    sock = os.path.join(d, 'qmp.sock')
    args = ['qemu-system-x86_64', '-accel', 'tcg', '-nographic', '-nodefaults', '-m', '512',
            '-qmp', 'unix:%s,server=on,wait=off' % sock] + extra_args
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.settimeout(0.2)
        lines = ['# ' + comment]
        buf = b''
        def drain(wait):
            nonlocal buf
            end = time.time() + wait
            while time.time() < end:
                try:
                    chunk = s.recv(65536)
                except socket.timeout:
                    continue
                if not chunk:
                    break
                buf += chunk
                while b'\r\n' in buf:
                    line, buf = buf.split(b'\r\n', 1)
                    lines.append('< ' + line.decode())
        drain(0.5)
        n = 0
        for cmd in commands:
            if isinstance(cmd, (int, float)):
                drain(cmd)
                continue
            n += 1
            text = cmd.replace('@ID@', '"rec-%d"' % n)
            lines.append('> ' + text)
            s.sendall(text.encode() + b'\r\n')
            drain(settle)
        s.close()
    finally:
        p.kill()
        p.wait()
        try:
            os.unlink(sock)
        except OSError:
            pass
        os.rmdir(d)
    with open(name, 'w') as f:
        f.write('\n'.join(lines) + '\n')

BAL = ['-device', 'virtio-balloon-pci,id=balloon0,free-page-reporting=on']
CAPS = '{"execute": "qmp_capabilities", "id": @ID@}'
out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "transcripts")
ver = subprocess.run(['qemu-system-x86_64', '--version'], capture_output=True, text=True).stdout.splitlines()[0]
rec = 'recorded from %s (tcg, no guest kernel)' % ver
run(out + '/balloon-query.replies', rec + ': query-balloon and balloon with the device present', BAL, [
    CAPS,
    '{"execute": "query-balloon", "id": @ID@}',
    '{"execute": "balloon", "arguments": {"value": 268435456}, "id": @ID@}',
    '{"execute": "query-balloon", "id": @ID@}',
])
run(out + '/balloon-no-device.replies', rec + ': no balloon device, DeviceNotActive', [], [
    CAPS,
    '{"execute": "query-balloon", "id": @ID@}',
    '{"execute": "balloon", "arguments": {"value": 268435456}, "id": @ID@}',
])
run(out + '/stats-unset.replies', rec + ': stats polling and guest-stats before any guest report (unset stats read 2^64-1)', BAL, [
    CAPS,
    '{"execute": "qom-set", "arguments": {"path": "/machine/peripheral/balloon0", "property": "guest-stats-polling-interval", "value": 2}, "id": @ID@}',
    '{"execute": "qom-get", "arguments": {"path": "/machine/peripheral/balloon0", "property": "guest-stats-polling-interval"}, "id": @ID@}',
    '{"execute": "qom-get", "arguments": {"path": "/machine/peripheral/balloon0", "property": "guest-stats"}, "id": @ID@}',
    '{"execute": "qom-get", "arguments": {"path": "/machine/peripheral/nosuch", "property": "guest-stats"}, "id": @ID@}',
])
run(out + '/query-misc.replies', rec + ': memory summary, status, errors', BAL, [
    CAPS,
    '{"execute": "query-memory-size-summary", "id": @ID@}',
    '{"execute": "query-status", "id": @ID@}',
    '{"execute": "no-such-command", "id": @ID@}',
    '{"execute": "qmp_capabilities", "id": @ID@}',
    '{"execute": "balloon", "arguments": {"value": "big"}, "id": @ID@}',
])
run(out + '/stop-cont-events.replies', rec + ': stop and cont with their STOP and RESUME events', BAL, [
    CAPS,
    '{"execute": "stop", "id": @ID@}',
    '{"execute": "query-status", "id": @ID@}',
    '{"execute": "cont", "id": @ID@}',
    '{"execute": "query-status", "id": @ID@}',
])
