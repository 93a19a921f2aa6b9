"""Shared helpers for the load and fault tests (tests/stress/*.py and the
bounded forms in tests/python/test_stress_*.py).

Everything here talks to a real kilnd over a loopback Unix socket and is
bounded: every loop has a count and a deadline.  Standard library only.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))

import kilntest  # noqa: E402
from kilntest import DATA, Daemon  # noqa: E402,F401

SANITIZER = os.environ.get("KILN_TEST_SANITIZER", "")
UNDER_WRAPPER = bool(kilntest.WRAPPER)
# KILN_STRESS=long selects the long forms (make stress); otherwise the
# bounded forms run (make test).
LONG = os.environ.get("KILN_STRESS") == "long"
heavy = kilntest.heavy


def report(line: str) -> None:
    """A result line: on stderr, and appended to $KILN_STRESS_REPORT."""
    sys.stderr.write("\n  [stress] " + line.replace("\n", "\n  [stress] ") + "\n")
    sys.stderr.flush()
    path = os.environ.get("KILN_STRESS_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


class StressCase(kilntest.KilnTestCase):
    """A daemon per class, as in the other Python tests."""

    def setUp(self) -> None:
        super().setUp()
        # A round trip, so the daemon has accepted self.client's connection
        # before a test counts descriptors.
        self.client.ping()


# --- The daemon process, seen from /proc -------------------------------------

def proc_status(pid: int, key: str) -> int:
    """A kB field of /proc/PID/status (VmRSS, VmHWM...), in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def rss(pid: int) -> int:
    return proc_status(pid, "VmRSS")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fd_targets(pid: int) -> List[str]:
    out = []
    for n in os.listdir(f"/proc/{pid}/fd"):
        try:
            out.append(os.readlink(f"/proc/{pid}/fd/{n}"))
        except OSError:
            pass
    return sorted(out)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/task"))


def wait_until(pred: Callable[[], bool], seconds: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


def settle_fds(pid: int, baseline: int, seconds: float = 10.0) -> int:
    """Waits for the daemon's fd count to come back to `baseline` (closes
    finish on the next loop turns); returns the last count."""
    wait_until(lambda: fd_count(pid) <= baseline, seconds)
    return fd_count(pid)


def stable_fds(pid: int, seconds: float = 2.0) -> int:
    """The fd count once two reads 50 ms apart agree (bounded)."""
    last = fd_count(pid)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = fd_count(pid)
        if now == last:
            break
        last = now
    return last


def percentile(values: List[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


# --- A blocking connection with the wire format ------------------------------

class Conn:
    """One connection: send requests (optionally with a raw attachment),
    read replies (progress lines included) with attachments."""

    def __init__(self, path: Optional[str], timeout: float = 30.0) -> None:
        self.buf = b""
        self.next_id = 1
        if path is None:
            return
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise

    @classmethod
    def wrap(cls, sock: socket.socket) -> "Conn":
        """A Conn reading and writing an already connected socket."""
        c = cls(None)
        c.sock = sock
        return c

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def send(self, action: str, args: Optional[Dict[str, Any]] = None, *, job_id: Optional[int] = None,
             attach: Optional[bytes] = None, **env: Any) -> int:
        if job_id is None:
            job_id = self.next_id
            self.next_id += 1
        req: Dict[str, Any] = {"job_id": job_id, "action": action, "args": args or {}}
        req.update(env)
        if attach is not None:
            req["raw"] = len(attach)
        self.sock.sendall(json.dumps(req).encode() + b"\n" + (attach or b""))
        return job_id

    def read(self) -> Dict[str, Any]:
        """The next line (a reply or a progress line)."""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("daemon closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        obj = json.loads(line)
        n = obj.get("raw")
        if isinstance(n, int):
            while len(self.buf) < n:
                chunk = self.sock.recv(1 << 16)
                if not chunk:
                    raise EOFError("daemon closed the connection inside an attachment")
                self.buf += chunk
            obj["_attachment"], self.buf = self.buf[:n], self.buf[n:]
        return obj

    def reply(self, job_id: Optional[int] = None) -> Dict[str, Any]:
        """The next final reply (for `job_id` if given), skipping progress."""
        while True:
            obj = self.read()
            if obj.get("result") == "progress":
                continue
            if job_id is None or obj.get("job_id") == job_id:
                return obj

    def call(self, action: str, args: Optional[Dict[str, Any]] = None, **env: Any) -> Dict[str, Any]:
        return self.reply(self.send(action, args, **env))

    def ok(self, action: str, args: Optional[Dict[str, Any]] = None, **env: Any) -> Dict[str, Any]:
        r = self.call(action, args, **env)
        if r.get("result") != "success":
            raise AssertionError(f"{action} failed: {r}")
        return r


def error_code(reply: Dict[str, Any]) -> Optional[str]:
    return (reply.get("error") or {}).get("code")


# --- Many connections at once ------------------------------------------------

class MuxConn:
    __slots__ = ("sock", "script", "pos", "inbuf", "outbuf", "sent_at", "kind", "job_id", "done")

    def __init__(self, sock: socket.socket, script: List[Tuple[str, bytes]]) -> None:
        self.sock = sock
        self.script = script
        self.pos = 0
        self.inbuf = b""
        self.outbuf = b""
        self.sent_at = 0.0
        self.kind = ""
        self.job_id = 0
        self.done = False


class MuxResult:
    def __init__(self) -> None:
        self.latency: Dict[str, List[float]] = {}
        self.errors: Dict[str, int] = {}
        self.error_samples: List[Dict[str, Any]] = []
        self.replies = 0
        self.broken = 0       # connections that ended before their script did
        self.unfinished = 0   # connections still running at the deadline
        self.elapsed = 0.0
        self.connections = 0

    def merge(self, other: "MuxResult") -> None:
        for k, v in other.latency.items():
            self.latency.setdefault(k, []).extend(v)
        for k, v in other.errors.items():
            self.errors[k] = self.errors.get(k, 0) + v
        self.replies += other.replies
        self.broken += other.broken
        self.unfinished += other.unfinished
        self.elapsed += other.elapsed
        self.connections += other.connections

    def bad_errors(self, allowed: Tuple[str, ...] = ("busy",)) -> Dict[str, int]:
        return {k: v for k, v in self.errors.items() if k not in allowed}

    def summary(self) -> str:
        parts = [f"{self.connections} connections, {self.replies} replies in {self.elapsed:.1f} s "
                 f"({self.replies / max(self.elapsed, 1e-9):.0f}/s)"]
        for kind, lat in sorted(self.latency.items()):
            parts.append(f"{kind}: n={len(lat)} p50={percentile(lat, 50) * 1e3:.1f} ms "
                         f"p99={percentile(lat, 99) * 1e3:.1f} ms max={max(lat) * 1e3:.1f} ms")
        if self.errors:
            parts.append(f"errors: {self.errors}")
        if self.broken or self.unfinished:
            parts.append(f"broken: {self.broken}, unfinished: {self.unfinished}")
        return "\n  ".join(parts)


def request_line(job_id: int, action: str, args: Dict[str, Any], **env: Any) -> bytes:
    req: Dict[str, Any] = {"job_id": job_id, "action": action, "args": args}
    req.update(env)
    return json.dumps(req, separators=(",", ":")).encode() + b"\n"


def run_mux(path: str, scripts: List[List[Tuple[str, Dict[str, Any], Dict[str, Any]]]], *,
            deadline_s: float, connect_timeout: float = 10.0) -> MuxResult:
    """Opens one connection per script, all at once, and runs each script
    closed-loop (one request in flight per connection) with a selector.
    A script is a list of (action, args, extra envelope keys)."""
    res = MuxResult()
    sel = selectors.DefaultSelector()
    conns: List[MuxConn] = []
    t0 = time.monotonic()
    for script in scripts:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(connect_timeout)
        s.connect(path)
        s.setblocking(False)
        lines = [(a, request_line(i + 1, a, args, **env)) for i, (a, args, env) in enumerate(script)]
        conns.append(MuxConn(s, lines))
    res.connections = len(conns)
    live = 0
    for c in conns:
        _next_request(c)
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
        live += 1
    end = t0 + deadline_s
    while live and time.monotonic() < end:
        for key, ev in sel.select(timeout=0.5):
            c = key.data
            if ev & selectors.EVENT_WRITE and c.outbuf:
                try:
                    n = c.sock.send(c.outbuf)
                    c.outbuf = c.outbuf[n:]
                except BlockingIOError:
                    pass
                except OSError:
                    live -= _finish(sel, c, res, broken=True)
                    continue
                if not c.outbuf:
                    sel.modify(c.sock, selectors.EVENT_READ, c)
            if ev & selectors.EVENT_READ:
                try:
                    chunk = c.sock.recv(1 << 16)
                except BlockingIOError:
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    live -= _finish(sel, c, res, broken=True)
                    continue
                c.inbuf += chunk
                if _consume(c, res):
                    if c.pos >= len(c.script):
                        live -= _finish(sel, c, res, broken=False)
                    else:
                        _next_request(c)
                        sel.modify(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    for c in conns:
        if not c.done:
            res.unfinished += 1
            _finish(sel, c, res, broken=False)
    sel.close()
    res.elapsed = time.monotonic() - t0
    return res


def _next_request(c: MuxConn) -> None:
    c.kind, line = c.script[c.pos]
    c.job_id = c.pos + 1
    c.outbuf = line
    c.sent_at = time.monotonic()


def _consume(c: MuxConn, res: MuxResult) -> bool:
    """Parses what arrived; True once the current request's reply is in."""
    while b"\n" in c.inbuf:
        nl = c.inbuf.index(b"\n")
        obj = json.loads(c.inbuf[:nl])
        n = obj.get("raw")
        if isinstance(n, int):
            if len(c.inbuf) < nl + 1 + n:
                return False
            c.inbuf = c.inbuf[nl + 1 + n:]
        else:
            c.inbuf = c.inbuf[nl + 1:]
        if obj.get("result") == "progress":
            continue
        if obj.get("job_id") != c.job_id:
            res.errors["unexpected_reply"] = res.errors.get("unexpected_reply", 0) + 1
            res.error_samples.append(obj)
            continue
        res.replies += 1
        res.latency.setdefault(c.kind, []).append(time.monotonic() - c.sent_at)
        if obj.get("result") == "error":
            code = error_code(obj) or "?"
            res.errors[code] = res.errors.get(code, 0) + 1
            if len(res.error_samples) < 10:
                res.error_samples.append(obj)
        c.pos += 1
        return True
    return False


def _finish(sel: selectors.BaseSelector, c: MuxConn, res: MuxResult, *, broken: bool) -> int:
    if c.done:
        return 0
    c.done = True
    if broken and c.pos < len(c.script):
        res.broken += 1
    try:
        sel.unregister(c.sock)
    except (KeyError, ValueError):
        pass
    c.sock.close()
    return 1


# --- The workload ------------------------------------------------------------

SHORT_TEXT = "the quick brownfoxes jumped over a lazy dog, extraordinarily " * 4
TINY_SCENE = {
    "width": 8, "height": 8, "samples": 1,
    "elements": [{"type": "sphere", "center": [0, 0, -5], "radius": 1,
                  "material": {"color": [1, 0.5, 0.2], "albedo": 0.18, "surface": "diffuse"}}],
    "lights": [{"type": "directional", "direction": [0, -1, -1], "color": [1, 1, 1], "intensity": 2}],
}


def prepare_workload(path: str) -> Dict[str, Any]:
    """Loads the small corpus and the tiny scene the mixed load uses."""
    with Conn(path) as c:
        c.ok("corpus.load", {"name": "stress", "dir": os.path.join(DATA, "corpus", "plain")})
        r = c.ok("scene.load", {"scene": TINY_SCENE})
        return {"corpus": "stress", "scene_id": r["data"]["scene_id"]}


def mixed_request(i: int, w: Dict[str, Any]) -> Tuple[str, Dict[str, Any], Dict[str, Any]]:
    k = i % 4
    if k == 0:
        return ("ping", {}, {})
    if k == 1:
        return ("text.short_long", {"text": SHORT_TEXT}, {})
    if k == 2:
        return ("corpus.count", {"name": w["corpus"], "word": "the"}, {})
    return ("scene.render", {"scene_id": w["scene_id"], "format": "rgba"}, {"accept_raw": True})


def mixed_scripts(connections: int, per_conn: int, w: Dict[str, Any]):
    return [[mixed_request(c + i, w) for i in range(per_conn)] for c in range(connections)]
