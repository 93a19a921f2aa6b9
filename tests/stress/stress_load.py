"""Load: many concurrent connections with a mixed workload, and slow or
misbehaving clients (dribbling bytes, half a line, never reading, endless
connect/disconnect).  Long forms with KILN_STRESS=long (`make stress`),
bounded forms otherwise (`make test`, via tests/python/test_stress_load.py).
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import stresslib as S  # noqa: E402
from stresslib import LONG, report  # noqa: E402


@S.heavy
class ConcurrentLoadTest(S.StressCase):
    """1000 connections at once, each running a mixed closed-loop script of
    ping, text.short_long, corpus.count and a small scene.render."""

    # One uid opens every connection here: the per-uid limits (issue 13)
    # are raised so the daemon-wide ones are what is loaded.
    CONFIG = {"log_level": "info", "max_connections": 1100, "max_connections_per_uid": 1100,
              "max_inflight_per_uid": 100000}

    def test_thousand_connections_mixed(self):
        w = S.prepare_workload(self.socket_path)
        per_conn = 40 if LONG else 4
        rounds = 5 if LONG else 1
        base_fds = S.fd_count(self.daemon.pid)
        total = S.MuxResult()
        for r in range(rounds):
            res = S.run_mux(self.socket_path, S.mixed_scripts(1000, per_conn, w), deadline_s=300)
            report(f"load round {r + 1}/{rounds}: {res.summary()}")
            self.assertEqual(res.bad_errors(), {}, res.error_samples[:3])
            self.assertEqual((res.broken, res.unfinished), (0, 0))
            self.assertEqual(res.replies, 1000 * per_conn)
            total.merge(res)
        ping = total.latency["ping"]
        report(f"load total: {total.replies} requests over 1000 concurrent connections x {rounds}, "
               f"busy={total.errors.get('busy', 0)}, ping p50={S.percentile(ping, 50) * 1e3:.1f} ms "
               f"p99={S.percentile(ping, 99) * 1e3:.1f} ms")
        self.assertLessEqual(S.settle_fds(self.daemon.pid, base_fds), base_fds)
        # Only this test's own two connections are left (self.client and c).
        with S.Conn(self.socket_path) as c:
            self.assertEqual(c.ok("stats")["data"]["connections"], 2)


class MaxConnectionsTest(S.StressCase):
    """Beyond max_connections a new connection gets the documented busy
    and is closed; the ones within the limit are served throughout."""

    CONFIG = {"log_level": "info", "max_connections": 100, "max_connections_per_uid": 1000}

    def test_over_the_limit_is_busy(self):
        held = [S.Conn(self.socket_path) for _ in range(99)]  # self.client is the 100th
        for c in held:
            c.ok("ping")
        extra = 20 if not LONG else 500
        codes = {}
        for _ in range(extra):
            with S.Conn(self.socket_path, timeout=10) as c:
                c.send("ping")
                r = c.read()
                codes[S.error_code(r)] = codes.get(S.error_code(r), 0) + 1
                with self.assertRaises(EOFError):
                    c.read()
        self.assertEqual(codes, {"busy": extra})
        for c in held:
            c.ok("ping")
            c.close()
        with S.Conn(self.socket_path) as c:
            c.ok("ping")
        report(f"max_connections 100: {extra} connections over the limit got busy and were closed; "
               f"the 100 within it kept being served")


class SlowClientTest(S.StressCase):
    CONFIG = {"log_level": "info", "max_output_buffer": 256 * 1024}

    def pinger(self, stop: threading.Event, lat: list) -> threading.Thread:
        """A well-behaved client pinging in a loop until `stop`."""
        def run():
            with S.Conn(self.socket_path, timeout=10) as c:
                for _ in range(1_000_000):
                    if stop.is_set():
                        return
                    t = time.monotonic()
                    r = c.call("ping")
                    lat.append(time.monotonic() - t)
                    assert r["result"] == "success", r
                    time.sleep(0.002)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def test_byte_per_100ms(self):
        """Clients sending one byte every 100 ms get their answers, and
        nobody else waits for them."""
        stop, lat = threading.Event(), []
        p = self.pinger(stop, lat)
        n_slow = 8 if LONG else 2
        text = "slow" * (20 if LONG else 1)
        lines = [S.request_line(i + 1, "echo", {"text": f"{text}{i}"}) for i in range(n_slow)]
        if not LONG:
            lines = [S.request_line(i + 1, "double", {"x": i}) for i in range(n_slow)]
        socks = [socket.socket(socket.AF_UNIX) for _ in lines]
        for s in socks:
            s.settimeout(10)
            s.connect(self.socket_path)
        t0 = time.monotonic()
        for k in range(max(len(x) for x in lines)):
            for s, line in zip(socks, lines):
                if k < len(line):
                    s.send(line[k:k + 1])
            time.sleep(0.1)
        for i, s in enumerate(socks):
            c = S.Conn.wrap(s)
            r = c.reply()
            self.assertEqual(r["job_id"], i + 1)
            self.assertEqual(r["data"], {"text": f"{text}{i}"} if LONG else {"x": 2 * i})
            s.close()
        stop.set()
        p.join(10)
        report(f"slow: {n_slow} clients at 1 byte/100 ms for {time.monotonic() - t0:.1f} s; meanwhile "
               f"{len(lat)} pings, p99 {S.percentile(lat, 99) * 1e3:.1f} ms")
        self.assertGreater(len(lat), 10)

    def test_half_line_then_silence(self):
        base_fds = S.fd_count(self.daemon.pid)
        silent = [socket.socket(socket.AF_UNIX) for _ in range(50 if LONG else 10)]
        for s in silent:
            s.connect(self.socket_path)
            s.sendall(b'{"job_id":1,"action":"pi","args":{"dig')
        stop, lat = threading.Event(), []
        p = self.pinger(stop, lat)
        time.sleep(3 if LONG else 0.5)
        stop.set()
        p.join(10)
        self.assertGreater(len(lat), 10)
        # The silent ones are still connected, still unanswered.
        for s in silent:
            s.setblocking(False)
            with self.assertRaises(BlockingIOError):
                s.recv(100)
            s.close()
        self.assertLessEqual(S.settle_fds(self.daemon.pid, base_fds), base_fds)
        report(f"half line: {len(silent)} silent clients; {len(lat)} pings meanwhile, "
               f"p99 {S.percentile(lat, 99) * 1e3:.1f} ms")

    @S.heavy
    def test_sender_that_never_reads(self):
        """A client pipelining requests without reading: once its replies
        fill max_output_buffer the daemon stops reading it (its sends
        block), memory stays bounded, others are served; then it reads and
        gets every reply, in order."""
        pid = self.daemon.pid
        n = 4000 if LONG else 1500
        text = "x" * 4000
        payload = b"".join(S.request_line(i + 1, "echo", {"text": text}) for i in range(n))
        base_rss = S.rss(pid)
        s = socket.socket(socket.AF_UNIX)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.connect(self.socket_path)
        sent = [0]

        def writer():
            view = memoryview(payload)
            try:
                while sent[0] < len(payload):
                    sent[0] += s.send(view[sent[0]:sent[0] + 65536])
            except OSError:
                pass
        w = threading.Thread(target=writer, daemon=True)
        w.start()
        # Wait until the writer stalls: the daemon stopped reading.
        last, stalled = -1, 0
        for _ in range(200):
            time.sleep(0.05)
            if sent[0] == last:
                stalled += 1
                if stalled >= 10:
                    break
            else:
                last, stalled = sent[0], 0
        self.assertLess(sent[0], len(payload), "the daemon read everything: no backpressure")
        self.assertGreaterEqual(stalled, 10, "the writer never stalled")
        stalled_at = sent[0]
        grown = S.rss(pid) - base_rss
        stop, lat = threading.Event(), []
        p = self.pinger(stop, lat)
        time.sleep(0.3)
        stop.set()
        p.join(10)
        self.assertGreater(len(lat), 10, "other clients were not served")
        # Replies held for the stalled client: about max_output_buffer, not n * 4 KB.
        if not S.SANITIZER and not S.UNDER_WRAPPER:
            self.assertLess(grown, 4 * 1024 * 1024, f"RSS grew {grown} bytes for a stalled client")
        c = S.Conn.wrap(s)
        s.settimeout(30)
        for i in range(n):
            r = c.reply()
            self.assertEqual(r["job_id"], i + 1)
        w.join(10)
        s.close()
        report(f"never-reads: stalled after {stalled_at} of {len(payload)} request bytes, RSS +{grown >> 10} KiB "
               f"(max_output_buffer 256 KiB); {len(lat)} pings served meanwhile; all {n} replies arrived")

    @S.heavy
    def test_connect_disconnect_cycles(self):
        pid = self.daemon.pid
        cycles = 100_000 if LONG else 10_000
        ping = S.request_line(1, "ping", {})
        # Warm up the allocator with one round of each kind first.
        kinds = ("close", "unread", "half", "full")

        def one(kind: str) -> None:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(10)
                s.connect(self.socket_path)
                if kind == "unread":
                    s.sendall(ping)
                elif kind == "half":
                    s.sendall(ping[:7])
                elif kind == "full":
                    s.sendall(ping)
                    assert s.recv(4096).startswith(b'{"job_id":1,"result":"success"')
        for i in range(200):
            one(kinds[i % 4])
        base_fds = S.settle_fds(pid, S.fd_count(pid))
        base_rss = S.rss(pid)
        t0 = time.monotonic()
        for i in range(cycles):
            one(kinds[i % 4])
        el = time.monotonic() - t0
        fds = S.settle_fds(pid, base_fds)
        grown = S.rss(pid) - base_rss
        report(f"connect/disconnect: {cycles} cycles in {el:.1f} s ({cycles / el:.0f}/s); "
               f"fds {base_fds} -> {fds}; RSS {base_rss >> 10} -> {(base_rss + grown) >> 10} KiB")
        self.assertLessEqual(fds, base_fds)
        if not S.SANITIZER:
            self.assertLess(grown, 2 * 1024 * 1024)
        with S.Conn(self.socket_path) as c:
            self.assertEqual(c.ok("stats")["data"]["connections"], 2)


if __name__ == "__main__":
    unittest.main()
