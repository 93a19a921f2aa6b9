#!/bin/sh
# sd_notify: a datagram socket standing in for systemd, as $NOTIFY_SOCKET in
# both the path and the abstract "@" form, must receive READY=1 (once the
# socket accepts), STATUS= (tracking connections and jobs), WATCHDOG=1 (with
# $WATCHDOG_USEC), RELOADING=1 + MONOTONIC_USEC= and READY=1 around SIGHUP,
# and STOPPING=1 on SIGTERM.  The path run also sets $JOURNAL_STREAM to
# stderr's device:inode and checks the "<N>" level prefixes; the abstract run
# checks plain lines without them.
set -eu
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
KILND=${KILND:-$BUILD/kilnd}
PYTHON=${PYTHON:-/usr/bin/python3}

T=$(mktemp -d /tmp/kiln-notify.XXXXXX)
trap 'rm -rf "$T"' EXIT
export KILND T
exec "$PYTHON" - <<'EOF'
import json, os, re, shlex, signal, socket, subprocess, sys, time

KILND = shlex.split(os.environ["KILND"])
T = os.environ["T"]
# Generous: the same test runs under valgrind.
WAIT = 60.0


def fail(msg):
    print("FAIL:", msg)
    sys.exit(1)


class Receiver:
    """The systemd side: collects notification datagrams."""

    def __init__(self, addr):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + addr[1:] if addr.startswith("@") else addr)
        self.seen = []

    def expect(self, pred, what):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                msg = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.seen.append(msg)
            fields = dict(line.split("=", 1) for line in msg.split("\n") if "=" in line)
            if pred(fields):
                return fields
        fail("%s not received; got %r" % (what, self.seen))


def request(conn, obj):
    conn.sendall((json.dumps(obj) + "\n").encode())


def replies(conn, n):
    """The next n reply lines on conn, by job_id."""
    conn.settimeout(WAIT)
    buf, out = b"", {}
    while len(out) < n:
        chunk = conn.recv(65536)
        if not chunk:
            fail("connection closed after replies %r" % out)
        buf += chunk
        while b"\n" in buf and len(out) < n:
            line, buf = buf.split(b"\n", 1)
            r = json.loads(line)
            out[r.get("job_id")] = r
    return out


def run(form):
    addr = T + "/notify.sock" if form == "path" else "@kiln-notify-test-%d" % os.getpid()
    recv = Receiver(addr)
    sock_path = "%s/kiln-%s.sock" % (T, form)
    cfg = "%s/config-%s.json" % (T, form)
    with open(cfg, "w") as f:
        json.dump({"socket": sock_path, "log_level": "info"}, f)
    log_path = "%s/stderr-%s.log" % (T, form)
    log = open(log_path, "w")
    env = dict(os.environ, NOTIFY_SOCKET=addr, WATCHDOG_USEC="400000")
    for k in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "WATCHDOG_PID", "INVOCATION_ID", "JOURNAL_STREAM"):
        env.pop(k, None)
    journal = form == "path"
    if journal:
        st = os.fstat(log.fileno())
        env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
    p = subprocess.Popen(KILND + ["--config", cfg, "--foreground"], env=env,
                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        ready = recv.expect(lambda f: f.get("READY") == "1", "READY=1")
        # READY=1 promises the socket accepts already.
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.connect(sock_path)
        status_re = re.compile(r"(\d+) connections?, (\d+) jobs? in flight, .* held")
        if not status_re.match(ready.get("STATUS", "")):
            fail("READY=1 without a STATUS= summary: %r" % recv.seen[-1])
        recv.expect(lambda f: (m := status_re.match(f.get("STATUS", ""))) and m.group(1) == "1",
                    "STATUS= with 1 connection")
        request(conn, {"job_id": 1, "action": "sleep", "args": {"seconds": 30, "steps": 300}})
        recv.expect(lambda f: (m := status_re.match(f.get("STATUS", ""))) and m.group(2) == "1",
                    "STATUS= with 1 job in flight")
        request(conn, {"job_id": 2, "action": "cancel", "args": {"target": 1}})
        got = replies(conn, 2)
        if got.get(2, {}).get("result") != "success":
            fail("cancel was not accepted: %r" % got)
        if (got.get(1, {}).get("error") or {}).get("code") != "cancelled":
            fail("the sleep was not cancelled: %r" % got)
        recv.expect(lambda f: (m := status_re.match(f.get("STATUS", ""))) and m.group(2) == "0",
                    "STATUS= with 0 jobs in flight after the cancel")
        recv.expect(lambda f: f.get("WATCHDOG") == "1", "WATCHDOG=1")

        before = time.clock_gettime(time.CLOCK_MONOTONIC)
        p.send_signal(signal.SIGHUP)
        rel = recv.expect(lambda f: f.get("RELOADING") == "1", "RELOADING=1 after SIGHUP")
        after = time.clock_gettime(time.CLOCK_MONOTONIC)
        try:
            usec = int(rel["MONOTONIC_USEC"])
        except (KeyError, ValueError):
            fail("RELOADING=1 without MONOTONIC_USEC=: %r" % rel)
        if not before * 1e6 - 1e3 <= usec <= after * 1e6 + 1e3:
            fail("MONOTONIC_USEC=%d outside [%d, %d]" % (usec, before * 1e6, after * 1e6))
        recv.expect(lambda f: f.get("READY") == "1", "READY=1 after the reload")
        conn.close()

        p.send_signal(signal.SIGTERM)
        recv.expect(lambda f: f.get("STOPPING") == "1", "STOPPING=1 after SIGTERM")
        rc = p.wait(WAIT)
        if rc != 0:
            fail("kilnd exited with %d" % rc)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        log.close()
    with open(log_path) as f:
        lines = [l for l in f.read().splitlines() if l and not l.startswith("==")]  # valgrind's own lines
    if not lines:
        fail("kilnd logged nothing")
    if journal:
        bad = [l for l in lines if not re.match(r"<[0-7]>", l)]
        if bad:
            fail("journal lines without <N> prefix: %r" % bad[:3])
        if not any(l.startswith("<6>") for l in lines):
            fail("no <6> (info) line: %r" % lines[:5])
    else:
        bad = [l for l in lines if re.match(r"<[0-7]>", l)]
        if bad:
            fail("<N> prefix outside the journal: %r" % bad[:3])
    recv.sock.close()
    print("ok: %s NOTIFY_SOCKET: %d datagrams" % (form, len(recv.seen)))


run("path")
run("abstract")
EOF
