"""Client exceptions, local refusals, ProcedureInput calls, Ctrl-C and
reconnection (issue 15)."""

from __future__ import annotations

import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import kilntest
from kilntest import KilnTestCase

import kiln


def wait_in_flight(d, want, timeout=10.0):
    """Waits until the daemon has `want` requests in flight besides stats."""
    with d.client() as other:
        deadline = time.monotonic() + timeout
        while True:
            n = other.stats()["in_flight"] - 1
            if n == want or time.monotonic() > deadline:
                return n
            time.sleep(0.02)


class HierarchyTest(unittest.TestCase):
    def test_each_class_is_also_the_standard_exception(self):
        pairs = [(kiln.ParseError, ValueError), (kiln.InvalidRequest, ValueError),
                 (kiln.InvalidArgs, ValueError), (kiln.TooLarge, ValueError),
                 (kiln.UnknownAction, LookupError), (kiln.NotFound, LookupError),
                 (kiln.Timeout, TimeoutError), (kiln.Forbidden, PermissionError),
                 (kiln.ConnectionLost, ConnectionError), (kiln.ConnectError, ConnectionError),
                 (kiln.Cancelled, RuntimeError), (kiln.Busy, RuntimeError),
                 (kiln.Internal, RuntimeError)]
        for cls, std in pairs:
            e = cls("m", detail={"x": 1}, job_id=3)
            self.assertIsInstance(e, std, cls)
            self.assertIsInstance(e, kiln.KilnError, cls)
            self.assertEqual(e.message, "m")
            self.assertIn(e.code, str(e))
            back = pickle.loads(pickle.dumps(e))
            self.assertIs(type(back), cls)
            self.assertEqual((back.message, back.detail, back.job_id), ("m", {"x": 1}, 3))
        self.assertFalse(issubclass(kiln.ConnectError, kiln.ConnectionLost))
        codes = {c.code for c, _ in pairs}
        self.assertEqual(len(codes), len(pairs), "one class per code")


class ConnectErrorTest(unittest.TestCase):
    def test_missing_socket(self):
        path = os.path.join(tempfile.mkdtemp(prefix="kiln-ce-"), "nope.sock")
        with self.assertRaises(kiln.ConnectError) as cm:
            kiln.Client(path)
        self.assertEqual(cm.exception.reason, "missing")
        self.assertIn(path, str(cm.exception))
        self.assertIn("KILN_SOCKET", str(cm.exception))
        self.assertNotIsInstance(cm.exception, kiln.ConnectionLost)

    def test_refused_stale_socket(self):
        path = os.path.join(tempfile.mkdtemp(prefix="kiln-ce-"), "stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()  # the file stays; nobody listens
        with self.assertRaises(kiln.ConnectError) as cm:
            kiln.Client(path)
        self.assertEqual(cm.exception.reason, "refused")
        self.assertIn("stale", str(cm.exception))

    @unittest.skipUnless(os.geteuid() == 0, "needs root to run a client as another user")
    def test_forbidden_socket(self):
        d = kilntest.Daemon()
        try:
            code = ("import sys; sys.path.insert(0, sys.argv[1]); import kiln\n"
                    "try:\n    kiln.Client(sys.argv[2])\n"
                    "except kiln.ConnectError as e:\n    print(e.reason); print(e.message)\n")
            p = subprocess.run([sys.executable, "-c", code, os.path.join(kilntest.ROOT, "client"),
                                d.socket_path], user=65534, group=65534, capture_output=True,
                               text=True, timeout=30, cwd="/")
            if "No module named" in p.stderr:
                self.skipTest("the repository is not readable by nobody")
            lines = p.stdout.splitlines()
            self.assertEqual(lines[:1], ["forbidden"], p.stderr)
            self.assertIn("kiln group", lines[1])
        finally:
            d.stop()


class ErrorsTest(KilnTestCase):
    CONFIG = {"max_line_bytes": 4096}

    def test_daemon_errors_raise_standard_exceptions(self):
        c = self.client
        with self.assertRaises(ValueError) as cm:
            c.call("double", {"x": "oops"})
        self.assertIsInstance(cm.exception, kiln.InvalidArgs)
        self.assertEqual(cm.exception.detail["path"], "args.x")
        with self.assertRaises(LookupError) as cm:
            c.call("no.such.action")
        self.assertIsInstance(cm.exception, kiln.UnknownAction)
        with self.assertRaises(LookupError):
            c.scene_id = c.call("scene.delete", {"scene_id": 987654})
        with self.assertRaises(TimeoutError) as cm:
            c.sleep(5, timeout=0.2)
        self.assertIsInstance(cm.exception, kiln.Timeout)
        with self.assertRaises(PermissionError) as cm:
            c.short_long(path="/etc/hostname")
        self.assertIsInstance(cm.exception, kiln.Forbidden)
        self.assertEqual(c.double(4), 8)

    def assert_nothing_sent(self, fn, exc):
        before = self.client.stats()["requests_served"]
        with self.assertRaises(exc) as cm:
            fn()
        after = self.client.stats()["requests_served"]
        self.assertEqual(after, before + 1, "the refused request reached the daemon")
        self.assertNotIsInstance(cm.exception, kiln.KilnError)
        return cm.exception

    def test_local_refusals(self):
        c = self.client
        e = self.assert_nothing_sent(lambda: c.call("vector.length", {"x": float("nan"), "y": 0, "z": 0}),
                                     ValueError)
        self.assertIn("args.x", str(e))
        self.assert_nothing_sent(lambda: c.vector_length(float("inf"), 0, 0), ValueError)
        e = self.assert_nothing_sent(lambda: c.echo("bad \ud800 surrogate"), ValueError)
        self.assertIn("surrogate", str(e))
        self.assert_nothing_sent(lambda: c.call("echo", {"text": ["x", {"y": "\udfff"}]}), ValueError)
        self.assert_nothing_sent(lambda: c.call("echo", {"text": b"bytes"}), TypeError)
        self.assert_nothing_sent(lambda: c.call("echo", {"text": object()}), TypeError)
        self.assert_nothing_sent(lambda: c.short_long(12345), TypeError)
        self.assert_nothing_sent(lambda: c.pi("50"), TypeError)
        self.assert_nothing_sent(lambda: c.pi(True), TypeError)
        self.assert_nothing_sent(lambda: c.double(2.5), TypeError)
        self.assert_nothing_sent(lambda: c.call_many([("double", {"x": 1}), ("echo", {"text": "\ud800"})]),
                                 ValueError)
        self.assertEqual(c.echo("still fine"), "still fine")

    def test_call_accepts_procedure_input(self):
        out = self.client.call(kiln.ProcedureInput(0, "vector.length", {"x": 3, "y": 4, "z": 12}))
        self.assertEqual(out.data["length"], 13.0)
        self.assertNotEqual(out.job_id, 0)
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call(kiln.ProcedureInput(0, "double", {"x": "no"}))
        out = self.client.call(kiln.ProcedureInput(0, "double", {"x": "no"}), check=False)
        self.assertEqual(out.error["code"], "invalid_args")

    def test_too_long_line_is_too_large_then_reconnects(self):
        c = self.client
        with self.assertRaises(kiln.TooLarge) as cm:
            c.echo("x" * 10000)
        self.assertIsInstance(cm.exception, ValueError)
        self.assertEqual(cm.exception.detail["limit"], "max_line_bytes")
        self.assertEqual(c.echo("after"), "after")
        self.assertEqual(c.double(21), 42)

    def test_relative_paths_are_resolved_by_the_client(self):
        data = os.path.join(kilntest.DATA, "text")
        name = sorted(f for f in os.listdir(data) if f.endswith(".txt"))[0]
        old = os.getcwd()
        os.chdir(data)
        try:
            via_rel = self.client.text_stats(path=name)
        finally:
            os.chdir(old)
        via_abs = self.client.text_stats(path=os.path.join(data, name))
        for d in (via_rel, via_abs):
            d.pop("compute_ms")
        self.assertEqual(via_rel, via_abs)
        self.assertGreater(via_rel["words"], 0)


class ReconnectTest(unittest.TestCase):
    def test_next_call_reconnects_after_restart(self):
        d = kilntest.Daemon()
        try:
            c = d.client()
            first = c.ping()["pid"]
            d.stop()
            d2 = kilntest.Daemon(dir=d.dir)
            try:
                self.assertEqual(c.ping()["pid"], d2.pid)
                self.assertNotEqual(first, d2.pid)
                self.assertEqual(c.double(5), 10)
            finally:
                d2.stop()
            with self.assertRaises(kiln.ConnectError):
                c.ping()  # no daemon now: says so
            c.close()
            with self.assertRaises(kiln.ConnectionLost):
                c.ping()  # closed by the user: stays closed
        finally:
            d.stop()

    def test_call_in_flight_when_daemon_dies_raises_connection_lost(self):
        d = kilntest.Daemon()
        c = d.client()
        t = threading.Timer(0.3, lambda: d.stop(signal.SIGKILL))
        t.start()
        with self.assertRaises(kiln.ConnectionLost) as cm:
            c.sleep(30)
        self.assertIsInstance(cm.exception, ConnectionError)
        t.join()
        c.close()


class InterruptTest(KilnTestCase):
    def interrupt_when(self, want):
        def run():
            if wait_in_flight(self.daemon, want) == want:
                # What Ctrl-C does: SIGINT, which interrupts the main thread's recv.
                signal.pthread_kill(main, signal.SIGINT)
        main = threading.main_thread().ident
        t = threading.Thread(target=run)
        t.start()
        return t

    def test_ctrl_c_in_call_cancels_it(self):
        t = self.interrupt_when(1)
        with self.assertRaises(KeyboardInterrupt):
            self.client.sleep(30)
        t.join()
        self.assertEqual(wait_in_flight(self.daemon, 0), 0)
        self.assertEqual(self.client.double(3), 6)

    def test_ctrl_c_in_call_many_cancels_every_outstanding_request(self):
        t = self.interrupt_when(6)
        with self.assertRaises(KeyboardInterrupt):
            self.client.call_many([("sleep", {"seconds": 30})] * 6)
        t.join()
        self.assertEqual(wait_in_flight(self.daemon, 0), 0)
        self.assertEqual(self.client.double(3), 6)


if __name__ == "__main__":
    unittest.main()
