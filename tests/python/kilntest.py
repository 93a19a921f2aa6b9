"""Test support: a real kilnd on a temporary socket for each test class.

    class PingTest(kilntest.KilnTestCase):
        CONFIG = {"max_line_bytes": 4096}      # merged into the test config
        def test_ping(self):
            self.assertEqual(self.client.ping()["pid"], self.daemon.pid)

KILND (environment) names the binary (default build/kilnd).  Under
KILN_TEST_WRAPPER (e.g. "valgrind --error-exitcode=99 ...") the daemon runs
inside that command and tests marked @heavy are skipped.
"""

from __future__ import annotations

import functools
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from typing import Any, Dict, List, Optional

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
sys.path.insert(0, os.path.join(ROOT, "client"))

import kiln  # noqa: E402

KILND = os.environ.get("KILND", os.path.join(ROOT, "build", "kilnd"))
WRAPPER = shlex.split(os.environ.get("KILN_TEST_WRAPPER", ""))
START_TIMEOUT = 60.0 if WRAPPER else 10.0


def heavy(fn: Any) -> Any:
    """Marks a test too slow to run under valgrind."""
    return unittest.skipIf(bool(WRAPPER), "heavy test skipped under " + " ".join(WRAPPER[:1]))(fn)


def requires_tool(name: str) -> Any:
    """Marks a test that needs a required test tool (one `make deps-test`
    installs, such as the openssl CLI): when it is missing the test fails,
    since its comparison cannot run.  Optional tools skip instead."""
    def wrap(fn: Any) -> Any:
        @functools.wraps(fn)
        def run(self: unittest.TestCase, *a: Any, **kw: Any) -> Any:
            if not shutil.which(name):
                self.fail(f"required test tool {name} is missing (make deps-test installs it)")
            return fn(self, *a, **kw)
        return run
    return wrap


class Daemon:
    """A kilnd process with its own socket, config and log file.

    `dir` reuses a directory (a restart then finds the previous run's stale
    socket and state, and appends to its log); `prefix` goes before the
    command (e.g. taskset for benchmarks)."""

    def __init__(self, config: Optional[Dict[str, Any]] = None, *, args: Optional[List[str]] = None,
                 env: Optional[Dict[str, str]] = None, dir: Optional[str] = None,
                 prefix: Optional[List[str]] = None) -> None:
        self.dir = dir or tempfile.mkdtemp(prefix="kilntest-")
        self.socket_path = os.path.join(self.dir, "kiln.sock")
        self.config_path = os.path.join(self.dir, "kiln.json")
        cfg: Dict[str, Any] = {"path_roots": [DATA, self.dir], "log_level": "debug"}
        cfg.update(config or {})
        with open(self.config_path, "w") as f:
            json.dump(cfg, f)
        self.log_path = os.path.join(self.dir, "kilnd.log")
        self.log = open(self.log_path, "ab")
        e = dict(os.environ)
        e.pop("KILN_SOCKET", None)
        e.update(env or {})
        self.proc = subprocess.Popen(
            list(prefix or []) + WRAPPER + [KILND, "--socket", self.socket_path, "--config", self.config_path]
            + (args or []), stdout=self.log, stderr=subprocess.STDOUT, env=e)
        self.pid = self.proc.pid
        try:
            self._wait_ready()
        except BaseException:
            self.stop(signal.SIGKILL)
            raise

    def _wait_ready(self) -> None:
        # A stale socket file refuses connections, so a successful connect
        # means this daemon is listening.
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kilnd exited with {self.proc.returncode}:\n{self.read_log()}")
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket_path)
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("kilnd did not start:\n" + self.read_log())

    def client(self) -> kiln.Client:
        # Paths go to kilnd as strings, so tests see its own path rules;
        # descriptor passing (the client's default) is tested on its own.
        return kiln.Client(self.socket_path, pass_fds=False)

    def read_log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        try:
            if self.proc.poll() is None:
                self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                    raise AssertionError("kilnd did not exit after signal:\n" + self.read_log())
        finally:
            self.log.close()
        return self.proc.returncode

    def rss(self) -> int:
        """Resident memory of the daemon, in bytes."""
        with open(f"/proc/{self.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> "Daemon":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class KilnTestCase(unittest.TestCase):
    """Starts one daemon per test class; self.client is connected per test."""

    CONFIG: Dict[str, Any] = {}
    daemon: Daemon

    @classmethod
    def setUpClass(cls) -> None:
        cls.daemon = Daemon(cls.CONFIG)
        cls.socket_path = cls.daemon.socket_path

    @classmethod
    def tearDownClass(cls) -> None:
        rc = cls.daemon.stop()
        if rc != 0:
            raise AssertionError(f"kilnd exited with {rc}:\n{cls.daemon.read_log()[-4000:]}")

    def setUp(self) -> None:
        self.client = self.daemon.client()

    def tearDown(self) -> None:
        self.client.close()

    def raw(self, data: bytes, *, replies: Optional[int] = None, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """Sends bytes on a fresh connection, half-closes, and returns the
        replies (JSON objects) until the daemon closes, or `replies` of them."""
        return raw_exchange(self.socket_path, data, replies=replies, timeout=timeout)


def raw_exchange(path: str, data: bytes, *, replies: Optional[int] = None,
                 timeout: float = 10.0) -> List[Dict[str, Any]]:
    out: List[Dict[str, Any]] = []
    buf = b""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        if replies is None:
            s.shutdown(socket.SHUT_WR)
        while replies is None or len(out) < replies:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                obj = json.loads(line)
                if isinstance(obj.get("raw"), int):
                    n = obj["raw"]
                    while len(buf) < n:
                        more = s.recv(1 << 16)
                        if not more:
                            break
                        buf += more
                    obj["_attachment"] = buf[:n]
                    buf = buf[n:]
                out.append(obj)
    return out
