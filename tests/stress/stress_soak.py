"""Soak: N mixed requests, pipelined over a few connections, with churn on
the side (connections coming and going, corpora and scenes loaded and
dropped, requests cancelled by disconnecting, detached jobs), while the
daemon's resident memory and descriptor count are sampled.  They must stay
flat.  KILN_STRESS=long: 10,000,000 requests (KILN_SOAK_REQUESTS overrides);
bounded form: 60,000.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stresslib as S  # noqa: E402
from stresslib import LONG, report  # noqa: E402

CONNS = 8
WINDOW = 64


def templates(w):
    """(prefix, suffix) pairs: prefix + job_id + suffix is one request line.
    Replies are all single lines (the render comes base64-encoded)."""
    mix = [
        ("ping", "{}"),
        ("echo", '{"text":"soak"}'),
        ("text.short_long", '{"text":"the quick brownfoxes jumped over a lazy dog, extraordinarily"}'),
        ("corpus.count", '{"name":"%s","word":"the"}' % w["corpus"]),
        ("scene.render", '{"scene_id":%d,"format":"rgba","region":{"x":0,"y":0,"width":4,"height":4}}'
         % w["scene_id"]),
        ("vector.length", '{"x":3,"y":4,"z":12}'),
        ("double", '{"x":21}'),
        ("corpus.search", '{"name":"%s","query":"caf","max_results":2}' % w["corpus"]),
    ]
    return [(b'{"job_id":', (',"action":"%s","args":%s}\n' % (a, args)).encode()) for a, args in mix]


class Pipe:
    __slots__ = ("sock", "out", "tail", "outstanding", "next_id")

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.out = b""
        self.tail = b""
        self.outstanding = 0
        self.next_id = 1


@S.heavy
class SoakTest(S.StressCase):
    CONFIG = {"log_level": "info", "job_retention": 1}

    def churn(self, k: int) -> None:
        """One round of side traffic, different each time."""
        path = self.socket_path
        kind = k % 5
        if kind == 0:
            for _ in range(20):
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(path)
        elif kind == 1:
            with S.Conn(path) as c:
                c.ok("corpus.load", {"name": "churn", "dir": os.path.join(S.DATA, "corpus", "enc"),
                                     "key_file": os.path.join(S.DATA, "corpus", "key.txt")})
                c.ok("corpus.count", {"name": "churn", "word": "the"})
                c.ok("corpus.unload", {"name": "churn"})
        elif kind == 2:
            with S.Conn(path) as c:
                sid = c.ok("scene.load", {"scene": S.TINY_SCENE})["data"]["scene_id"]
                c.ok("scene.render", {"scene_id": sid, "format": "png"}, accept_raw=True)
                c.ok("scene.delete", {"scene_id": sid})
        elif kind == 3:
            c = S.Conn(path)
            c.send("sleep", {"seconds": 5, "steps": 50})
            c.send("pi", {"digits": 20000 + k}, accept_raw=True)
            c.close()
        else:
            with S.Conn(path) as c:
                r = c.call("echo", {"text": "detached"}, detach=True)
                c.ok("job.wait", {"job": r["data"]["job"], "timeout": 10})

    def test_soak(self):
        pid = self.daemon.pid
        total = int(os.environ.get("KILN_SOAK_REQUESTS", 10_000_000 if LONG else 60_000))
        if S.SANITIZER and not LONG:
            total //= 2
        w = S.prepare_workload(self.socket_path)
        tpl = templates(w)
        base_fds = S.stable_fds(pid)
        pipes = [Pipe(self.socket_path) for _ in range(CONNS)]
        sel = selectors.DefaultSelector()
        for p in pipes:
            sel.register(p.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, p)
        sent = done = errors = 0
        samples = []
        sample_every = max(total // 40, 1000)
        churn_every = max(total // 200, 500)
        next_sample = next_churn = 0
        churns = 0
        t0 = time.monotonic()
        deadline = t0 + (3 * 3600 if LONG else 300)
        k = 0
        while done < total and time.monotonic() < deadline:
            for p in pipes:
                if p.outstanding <= WINDOW // 2 and sent < total and not p.out:
                    n = min(WINDOW - p.outstanding, total - sent)
                    parts = []
                    for _ in range(n):
                        pre, suf = tpl[k % len(tpl)]
                        k += 1
                        parts.append(pre + str(p.next_id).encode() + suf)
                        p.next_id += 1
                    p.out = b"".join(parts)
                    p.outstanding += n
                    sent += n
                    sel.modify(p.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, p)
            for key, ev in sel.select(timeout=1.0):
                p = key.data
                if ev & selectors.EVENT_WRITE and p.out:
                    try:
                        m = p.sock.send(p.out)
                        p.out = p.out[m:]
                    except BlockingIOError:
                        pass
                    if not p.out:
                        sel.modify(p.sock, selectors.EVENT_READ, p)
                if ev & selectors.EVENT_READ:
                    try:
                        chunk = p.sock.recv(1 << 18)
                    except BlockingIOError:
                        continue
                    self.assertTrue(chunk, "the daemon closed a soak connection")
                    data = p.tail + chunk
                    cut = data.rfind(b"\n") + 1
                    lines, p.tail = data[:cut], data[cut:]
                    n = lines.count(b"\n")
                    e = lines.count(b'"result":"error"')
                    if e:
                        for line in lines.split(b"\n"):
                            if b'"result":"error"' in line:
                                self.fail(f"error reply in the soak: {line[:300]!r}")
                    errors += e
                    p.outstanding -= n
                    done += n
            if done >= next_sample:
                next_sample += sample_every
                samples.append((done, S.rss(pid), S.fd_count(pid), time.monotonic() - t0))
            if done >= next_churn:
                next_churn += churn_every
                self.churn(churns)
                churns += 1
        elapsed = time.monotonic() - t0
        for p in pipes:
            sel.unregister(p.sock)
            p.sock.close()
        sel.close()
        self.assertEqual(done, total, f"only {done} of {total} replies before the deadline")
        time.sleep(0.5)
        end_fds = S.settle_fds(pid, base_fds)
        samples.append((done, S.rss(pid), end_fds, elapsed))
        lines = [f"soak: {done} requests (+{churns} churn rounds) in {elapsed:.0f} s = {done / elapsed:.0f}/s, "
                 f"{errors} errors; curve (requests, RSS KiB, fds):"]
        step = max(1, len(samples) // 20)
        for d, r, f, t in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
            lines.append(f"  {d:>10} {r >> 10:>8} {f:>4}   t={t:.0f}s")
        report("\n".join(lines))
        # Flat: after the warm-up (first quarter), resident memory stays
        # within a small margin, and the descriptors come back.
        warm = [r for d, r, f, t in samples if d >= total // 4]
        if warm and not S.SANITIZER and not S.UNDER_WRAPPER:
            self.assertLess(max(warm) - min(warm), max(8 << 20, min(warm) // 5),
                            f"RSS not flat: {[r >> 10 for r in warm]}")
        self.assertLessEqual(end_fds, base_fds + 1)


if __name__ == "__main__":
    unittest.main()
