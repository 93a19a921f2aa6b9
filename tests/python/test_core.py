"""The foundation against a real daemon: client API, errors, pipelining,
attachments, progress, timeouts, Ctrl-C, CLI, socket handling, config,
reload, shutdown and limits."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

import kilntest
from kilntest import Daemon, KilnTestCase, heavy, raw_exchange

import kiln


class ClientTest(KilnTestCase):
    def wait_in_flight(self, n: int, timeout: float = 5.0) -> bool:
        """Waits until the daemon has n requests in flight (the stats call itself is one)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.client.stats()["in_flight"] == n:
                return True
            time.sleep(0.02)
        return False

    def test_ping(self) -> None:
        p = self.client.ping()
        self.assertEqual(p["pid"], self.daemon.pid)
        self.assertIsInstance(p["version"], str)

    def test_core_actions(self) -> None:
        c = self.client
        self.assertEqual(c.echo("naïve ☃ \u2028"), "naïve ☃ \u2028")
        self.assertEqual(c.echo_int(-2**63), -2**63)
        self.assertEqual(c.double(-2**62), -2**63)
        self.assertEqual(c.vector_length(3, 4, 12), 13.0)
        self.assertGreater(c.stats()["rss_bytes"], 0)
        names = {a["name"] for a in c.describe()["actions"]}
        self.assertTrue({"ping", "describe", "echo", "double", "vector.length", "cancel", "stats"} <= names)

    def test_errors_carry_codes(self) -> None:
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.client.double(2**62)
        self.assertEqual(cm.exception.code, "invalid_args")
        self.assertEqual(cm.exception.detail, {"path": "args.x"})
        with self.assertRaises(kiln.UnknownAction):
            self.client.call("frobnicate")
        with self.assertRaises(kiln.InvalidRequest):
            self.client.call("ping", host_list=["h1"])
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call("echo", {"int": 2**64})
        out = self.client.call("double", {"x": "1"}, check=False)
        self.assertEqual(out.result, "error")
        self.assertEqual(out.error["code"], "invalid_args")
        # The connection stays usable after errors.
        self.assertEqual(self.client.double(2), 4)

    def test_pipelined_thousand(self) -> None:
        outs = self.client.call_many([("double", {"x": i}) for i in range(1000)])
        self.assertEqual([o.data["x"] for o in outs], [2 * i for i in range(1000)])
        self.assertEqual(len({o.job_id for o in outs}), 1000)

    def test_out_of_order_completion(self) -> None:
        c = self.client
        slow = kiln.ProcedureInput(0, "sleep", {"seconds": 0.3})
        fast = kiln.ProcedureInput(0, "ping")
        outs = c.call_many([slow, fast])
        self.assertEqual(outs[0].result, "success")
        self.assertEqual(outs[1].message, "pong")

    def test_progress_and_timeout(self) -> None:
        seen = []
        self.client.sleep(0.3, steps=3, progress=seen.append)
        self.assertEqual(seen[-1], {"done": 3, "total": 3})
        t0 = time.monotonic()
        with self.assertRaises(kiln.Timeout):
            self.client.sleep(30, timeout=0.2)
        self.assertLess(time.monotonic() - t0, 5)
        # The timed-out work was cancelled, not left running.
        self.assertTrue(self.wait_in_flight(1))

    def test_attachment_raw_and_base64(self) -> None:
        out = self.client.call("ping", attachment=b"\x00\xff" * 1000)
        self.assertEqual(out.result, "success")
        replies = self.raw(b'{"job_id":1,"action":"ping","raw_b64":"AAE="}\n')
        self.assertEqual(replies[0]["result"], "success")

    def test_keyboard_interrupt_cancels(self) -> None:
        timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
        timer.start()
        t0 = time.monotonic()
        with self.assertRaises(KeyboardInterrupt):
            self.client.sleep(30)
        self.assertLess(time.monotonic() - t0, 5)
        # The connection is still usable and the daemon stopped the work.
        self.assertEqual(self.client.double(5), 10)
        self.assertTrue(self.wait_in_flight(1))

    def test_cancel_from_same_connection(self) -> None:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(self.socket_path)
        sock.sendall(b'{"job_id":1,"action":"sleep","args":{"seconds":30}}\n'
                     b'{"job_id":2,"action":"cancel","args":{"target":1}}\n')
        f = sock.makefile("rb")
        a, b = json.loads(f.readline()), json.loads(f.readline())
        sock.close()
        self.assertEqual((a["job_id"], a["error"]["code"]), (1, "cancelled"))
        self.assertEqual((b["job_id"], b["result"]), (2, "success"))

    def test_disconnect_cancels(self) -> None:
        sock = socket.socket(socket.AF_UNIX)
        sock.connect(self.socket_path)
        sock.sendall(b'{"job_id":1,"action":"sleep","args":{"seconds":30}}\n')
        time.sleep(0.1)
        sock.close()
        self.assertTrue(self.wait_in_flight(1))

    def test_half_close_still_answers(self) -> None:
        # socat-style: send, shut down the write side, read the replies.
        replies = self.raw(b'{"job_id":1,"action":"sleep","args":{"seconds":0.2}}\n{"job_id":2,"action":"ping"}\n')
        self.assertEqual(sorted(r["job_id"] for r in replies), [1, 2])
        self.assertTrue(all(r["result"] == "success" for r in replies))

    def test_garbage_and_blank_lines(self) -> None:
        replies = self.raw(b"\n   \n\x00\xff\xfe garbage\n{\"job_id\":3,\"action\":\"ping\"}\n")
        self.assertEqual(replies[0]["error"]["code"], "parse_error")
        self.assertIsNone(replies[0]["job_id"])
        self.assertEqual(replies[1]["job_id"], 3)

    def test_two_clients_at_once(self) -> None:
        with self.daemon.client() as other:
            out1 = self.client.call_many([("double", {"x": i}) for i in range(200)])
            out2 = other.call_many([("double", {"x": -i}) for i in range(200)])
        self.assertEqual(out1[-1].data["x"], 398)
        self.assertEqual(out2[-1].data["x"], -398)

    def test_cli(self) -> None:
        env = dict(os.environ, KILN_SOCKET=self.socket_path,
                   PYTHONPATH=os.path.join(kilntest.ROOT, "client"))
        p = subprocess.run([sys.executable, "-m", "kiln", "vector.length", "x=3", "y=4", "--json", '{"z": 12}'],
                           env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["data"]["length"], 13.0)
        p = subprocess.run([sys.executable, "-m", "kiln", "double", "x=oops"], env=env,
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 1)
        self.assertEqual(json.loads(p.stdout)["error"]["code"], "invalid_args")


class LimitsTest(KilnTestCase):
    CONFIG = {"max_line_bytes": 1024, "max_attachment_bytes": 4096, "max_connections": 3,
              "max_output_buffer": 65536, "max_inflight_per_conn": 8}

    def test_line_over_limit(self) -> None:
        replies = self.raw(b'{"job_id":1,"action":"echo","args":{"text":"' + b"x" * 2000 + b'"}}\n'
                           b'{"job_id":2,"action":"ping"}\n')
        self.assertEqual(len(replies), 1)
        self.assertEqual(replies[0]["error"]["code"], "too_large")
        self.assertEqual(replies[0]["error"]["detail"]["limit"], "max_line_bytes")

    def test_attachment_over_limit(self) -> None:
        with self.assertRaises(kiln.TooLarge):
            self.client.call("ping", attachment=b"x" * 5000)

    def test_max_connections(self) -> None:
        extra = [socket.socket(socket.AF_UNIX) for _ in range(3)]
        for s in extra:
            s.settimeout(10)
            s.connect(self.socket_path)
        time.sleep(0.1)
        try:
            line = extra[-1].makefile("rb").readline()
            self.assertEqual(json.loads(line)["error"]["code"], "busy")
        finally:
            for s in extra:
                s.close()

    def test_refused_peers_do_not_hold_slots(self) -> None:
        """A refused connection lingers (up to 2 s) until its peer closes, but
        it no longer counts against max_connections: once a served client
        leaves, the next one is served even while refused peers still hold
        their sockets open."""
        d = Daemon({"max_connections": 2})
        socks: list = []

        def ping(s: socket.socket) -> dict:
            s.sendall(b'{"job_id":1,"action":"ping"}\n')
            return json.loads(s.makefile("rb").readline())

        try:
            served = [socket.socket(socket.AF_UNIX) for _ in range(2)]
            socks += served
            for s in served:
                s.settimeout(10)
                s.connect(d.socket_path)
                self.assertEqual(ping(s)["result"], "success")
            for _ in range(4):
                r = socket.socket(socket.AF_UNIX)
                socks.append(r)
                r.settimeout(10)
                r.connect(d.socket_path)
                self.assertEqual(json.loads(r.makefile("rb").readline())["error"]["code"], "busy")
            refused_at = time.monotonic()
            served[1].close()
            # Well inside the refused peers' linger time: a slot must be free
            # as soon as the daemon has seen the served client go.
            while True:
                c = socket.socket(socket.AF_UNIX)
                socks.append(c)
                c.settimeout(10)
                c.connect(d.socket_path)
                reply = ping(c)
                if reply["result"] == "success" or time.monotonic() - refused_at > 1.2:
                    break
                time.sleep(0.05)
            self.assertEqual(reply["result"], "success", reply)
        finally:
            for s in socks:
                s.close()
            self.assertEqual(d.stop(), 0)

    def test_client_that_never_reads(self) -> None:
        # Pipeline far more output than max_output_buffer without reading: the
        # daemon stops reading this client, keeps serving others, and its
        # memory does not grow with the backlog.
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.socket_path)
        s.setblocking(False)
        line = b'{"job_id":1,"action":"echo","args":{"text":"' + b"y" * 900 + b'"}}\n'
        sent = 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                sent += s.send(line * 64)
            except BlockingIOError:
                break
        self.assertLess(sent, 64 * 1024 * 1024, "the daemon never pushed back")
        self.assertEqual(self.client.ping()["pid"], self.daemon.pid)
        rss = self.client.stats()["rss_bytes"]
        self.assertLess(rss, 200 * 1024 * 1024)
        s.close()

    def test_inflight_per_connection(self) -> None:
        # Twenty slow requests pipelined on one connection: only
        # max_inflight_per_conn (8) run at once; the rest wait unread.
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.socket_path)
        try:
            s.sendall(b"".join(b'{"job_id":%d,"action":"sleep","args":{"seconds":3,"steps":30}}\n' % i
                               for i in range(20)))
            deadline = time.monotonic() + 10
            while self.client.stats()["in_flight"] < 9 and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(0.3)
            # The eight sleeps and this stats request.
            self.assertEqual(self.client.stats()["in_flight"], 9)
        finally:
            s.close()


class OutputBufferTest(KilnTestCase):
    """max_output_buffer on its own (the in-flight limit out of reach):
    a client that sends and never reads is no longer read from once its
    unsent replies reach the limit."""

    CONFIG = {"max_output_buffer": 65536, "max_inflight_per_conn": 1000000}

    def test_unread_replies_stop_reading(self) -> None:
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.socket_path)
        s.setblocking(False)
        line = b'{"job_id":1,"action":"echo","args":{"text":"' + b"y" * 900 + b'"}}\n'
        sent = 0
        deadline = time.monotonic() + 5
        try:
            # Keep offering for 5 s: a daemon that still reads makes room
            # again and again (tens of MiB); a paused one never does.
            while time.monotonic() < deadline and sent < 64 << 20:
                try:
                    sent += s.send(line * 64)
                except BlockingIOError:
                    time.sleep(0.05)
            # 64 KiB of replies queued, plus what the two socket buffers
            # hold (a few hundred KiB).
            self.assertLess(sent, 2 << 20, "the daemon kept reading a client that does not read")
            self.assertEqual(self.client.ping()["pid"], self.daemon.pid)
        finally:
            s.close()


class PoolShareTest(KilnTestCase):
    """With the automatic pool (threads 0) one user's work runs on every
    CPU at once: the pool is CPUs + 1 and a uid's share every thread but
    one, so one thread stays free for other users (test_multiuser)."""

    @unittest.skipUnless(os.getuid() == 0, "stats.per_uid is shown to root and admins only")
    def test_one_user_uses_every_cpu(self) -> None:
        ncpu = os.sysconf("SC_NPROCESSORS_ONLN")
        clients = [kiln.Client(self.socket_path) for _ in range(ncpu + 1)]
        try:
            threads = [threading.Thread(target=c.call, args=("sleep", {"seconds": 2.0}), kwargs={"timeout": 30})
                       for c in clients]
            for t in threads:
                t.start()
            deadline = time.monotonic() + 10
            workers = 0
            while time.monotonic() < deadline:
                per_uid = self.client.stats().get("per_uid", {})
                workers = per_uid.get(str(os.getuid()), {}).get("pool_workers", 0)
                if workers >= ncpu:
                    break
                time.sleep(0.05)
            # Every CPU, and not one more: the last sleep waits its turn.
            self.assertEqual(workers, ncpu)
            time.sleep(0.3)
            self.assertEqual(self.client.stats()["per_uid"][str(os.getuid())]["pool_workers"], ncpu)
            for t in threads:
                t.join(30)
        finally:
            for c in clients:
                c.close()


class DefaultTimeoutTest(KilnTestCase):
    CONFIG = {"default_timeout": 0.3}

    def test_request_without_timeout_gets_the_default(self) -> None:
        t0 = time.monotonic()
        with self.assertRaises(kiln.Timeout) as cm:
            self.client.call("sleep", {"seconds": 30, "steps": 300})
        self.assertEqual(cm.exception.detail, {"timeout": 0.3})
        self.assertLess(time.monotonic() - t0, 20)
        self.assertEqual(self.client.call("sleep", {"seconds": 0.5}, timeout=5).result, "success")


class AttachmentLimitTest(KilnTestCase):
    CONFIG = {"max_attachment_bytes": 100}

    def expect_too_large(self, line: bytes) -> None:
        replies = self.raw(line)
        self.assertEqual(replies[0]["error"]["code"], "too_large", replies)
        self.assertEqual(replies[0]["error"]["detail"], {"limit": "max_attachment_bytes", "max": 100})

    def test_raw_attachment(self) -> None:
        self.expect_too_large(b'{"job_id":1,"action":"echo","args":{"text":"x"},"raw":101}\n' + b"z" * 101)
        (ok,) = self.raw(b'{"job_id":2,"action":"echo","args":{"text":"x"},"raw":100}\n' + b"z" * 100)
        self.assertEqual(ok["result"], "success", ok)

    def test_base64_attachment(self) -> None:
        import base64
        b64 = base64.b64encode(b"z" * 101)
        self.expect_too_large(b'{"job_id":1,"action":"echo","args":{"text":"x"},"raw_b64":"' + b64 + b'"}\n')
        b64 = base64.b64encode(b"z" * 100)
        (ok,) = self.raw(b'{"job_id":2,"action":"echo","args":{"text":"x"},"raw_b64":"' + b64 + b'"}\n')
        self.assertEqual(ok["result"], "success", ok)


class RequestLimitsTest(KilnTestCase):
    CONFIG = {"max_timeout": 5, "default_timeout": 5, "max_retries": 2}

    def test_timeout_and_retries_bounded(self) -> None:
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.call("ping", timeout=5.5)
        self.assertEqual((cm.exception.code, cm.exception.detail), ("invalid_request", {"key": "timeout"}))
        self.assertIn("max_timeout", str(cm.exception))
        self.assertEqual(self.client.call("ping", timeout=5).result, "success")
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.call("ping", retries=3)
        self.assertEqual((cm.exception.code, cm.exception.detail), ("invalid_request", {"key": "retries"}))
        self.assertEqual(self.client.call("ping", retries=2).result, "success")

    def test_job_wait_bounded(self) -> None:
        job = self.client.detach("sleep", {"seconds": 0.2})
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.client.call("job.wait", {"job": job, "timeout": 5.5})
        self.assertEqual(cm.exception.detail, {"path": "args.timeout"})
        self.assertIn("max_timeout", str(cm.exception))
        self.assertEqual(self.client.call("job.wait", {"job": job, "timeout": 5}).data["state"], "finished")


class DaemonLifecycleTest(unittest.TestCase):
    def test_refuses_live_socket_and_replaces_stale(self) -> None:
        d = Daemon()
        try:
            p = subprocess.run([kilntest.KILND, "--socket", d.socket_path], capture_output=True,
                               text=True, timeout=30)
            self.assertEqual(p.returncode, 1)
            self.assertIn("already listening", p.stderr)
        finally:
            d.stop(signal.SIGKILL)
        # SIGKILL left a stale socket file behind; a new daemon replaces it.
        self.assertTrue(os.path.exists(d.socket_path))
        d2 = Daemon(args=[])
        try:
            d2_sock = d2.socket_path
            self.assertEqual(d2.client().ping()["pid"], d2.pid)
        finally:
            d2.stop()
        self.assertFalse(os.path.exists(d2_sock))

    def test_stale_socket_same_path(self) -> None:
        d = Daemon()
        path = d.socket_path
        d.stop(signal.SIGKILL)
        p = subprocess.Popen([kilntest.KILND, "--socket", path], stderr=subprocess.PIPE)
        try:
            for _ in range(200):
                try:
                    with kiln.Client(path) as c:
                        self.assertEqual(c.ping()["pid"], p.pid)
                        break
                except kiln.ConnectError:
                    time.sleep(0.02)
            else:
                self.fail("daemon did not replace the stale socket")
        finally:
            p.terminate()
            p.wait(10)
        self.assertEqual(p.returncode, 0)

    def test_socket_mode(self) -> None:
        # The socket file gets socket_mode exactly (default 0660), never
        # more: who may connect is decided by the file's mode first.
        for cfg, mode in (({}, 0o660), ({"socket_mode": "0600"}, 0o600), ({"socket_mode": "0666"}, 0o666)):
            d = Daemon(cfg)
            try:
                self.assertEqual(os.stat(d.socket_path).st_mode & 0o7777, mode, cfg)
            finally:
                self.assertEqual(d.stop(), 0)

    def test_invalid_config_names_key(self) -> None:
        for cfg, key in (({"max_line_bytes": "big"}, "max_line_bytes"), ({"colour": 1}, "colour"),
                         ({"socket_mode": "999"}, "socket_mode"), ({"path_roots": ["/nonexistent/x"]}, "path_roots")):
            d = Daemon.__new__(Daemon)
            import tempfile
            tmp = tempfile.mkdtemp()
            path = os.path.join(tmp, "bad.json")
            with open(path, "w") as f:
                json.dump(cfg, f)
            p = subprocess.run([kilntest.KILND, "--config", path, "--socket", os.path.join(tmp, "s")],
                               capture_output=True, text=True, timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(key, p.stderr)

    def test_sighup_reload(self) -> None:
        d = Daemon({"max_line_bytes": 100000})
        try:
            big = b'{"job_id":1,"action":"echo","args":{"text":"' + b"z" * 5000 + b'"}}\n'
            self.assertEqual(raw_exchange(d.socket_path, big)[0]["result"], "success")
            with open(d.config_path) as f:
                cfg = json.load(f)
            cfg["max_line_bytes"] = 1024
            with open(d.config_path, "w") as f:
                json.dump(cfg, f)
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            self.assertEqual(raw_exchange(d.socket_path, big)[0]["error"]["code"], "too_large")
            # A broken config on reload keeps the old one.
            with open(d.config_path, "w") as f:
                f.write("{broken")
            d.proc.send_signal(signal.SIGHUP)
            time.sleep(0.3)
            self.assertEqual(d.client().ping()["pid"], d.pid)
        finally:
            self.assertEqual(d.stop(), 0)
        self.assertIn("reload failed", d.read_log())

    @staticmethod
    def wait_busy(d: Daemon) -> None:
        """Waits until the daemon has a request in flight besides `stats`."""
        with d.client() as other:
            for _ in range(500):
                if other.stats()["in_flight"] > 1:
                    return
                time.sleep(0.01)
        raise AssertionError("the request never started")

    def test_sigterm_lets_work_finish(self) -> None:
        d = Daemon({"shutdown_grace": 10})
        c = d.client()
        req = kiln.ProcedureInput(c.next_job_id(), "sleep", {"seconds": 0.5})
        c._send(req)
        self.wait_busy(d)
        d.proc.send_signal(signal.SIGTERM)
        out = c._wait(req.job_id)
        self.assertEqual(out.result, "success")
        self.assertEqual(d.proc.wait(10), 0)
        self.assertFalse(os.path.exists(d.socket_path))
        c.close()

    def test_sigterm_cancels_after_grace(self) -> None:
        d = Daemon({"shutdown_grace": 0.2})
        c = d.client()
        req = kiln.ProcedureInput(c.next_job_id(), "sleep", {"seconds": 30})
        c._send(req)
        self.wait_busy(d)
        d.proc.send_signal(signal.SIGTERM)
        out = c._wait(req.job_id)
        self.assertEqual(out.error["code"], "cancelled")
        self.assertEqual(d.proc.wait(10), 0)
        c.close()

    def test_forbidden_uid(self) -> None:
        d = Daemon({"allowed_uids": [os.getuid() + 4242]})
        try:
            line = raw_exchange(d.socket_path, b'{"job_id":1,"action":"ping"}\n')
            self.assertEqual(line[0]["error"]["code"], "forbidden")
        finally:
            d.stop()

    @heavy
    @unittest.skipIf(os.environ.get("KILN_TEST_SANITIZER"), "ASan's quarantine holds freed memory by design")
    def test_memory_flat_over_many_requests(self) -> None:
        d = Daemon()
        try:
            with d.client() as c:
                c.call_many([("echo", {"text": "warm" * 10})] * 20000)
                before = c.stats()["rss_bytes"]
                for _ in range(5):
                    c.call_many([("echo", {"text": "warm" * 10})] * 20000)
                after = c.stats()["rss_bytes"]
            self.assertLess(after - before, 4 * 1024 * 1024, (before, after))
        finally:
            d.stop()


if __name__ == "__main__":
    unittest.main()
