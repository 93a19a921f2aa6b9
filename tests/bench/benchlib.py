"""Shared helpers for the benchmarks in tests/bench (run by `make bench`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
KILND = os.environ.get("KILND", os.path.join(BUILD, "kilnd"))
sys.path.insert(0, os.path.join(ROOT, "client"))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
os.environ.setdefault("KILND", KILND)

import kiln  # noqa: E402,F401  (re-exported for the bench scripts)
import kilntest  # noqa: E402


def taskset(cpus: Optional[str]) -> List[str]:
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


class Server(kilntest.Daemon):
    """kilnd for a benchmark (the test suite's Daemon, logging only warnings),
    optionally pinned to `cpus` with taskset."""

    def __init__(self, config: Optional[Dict[str, Any]] = None, *, cpus: Optional[str] = None) -> None:
        cfg: Dict[str, Any] = {"log_level": "warn"}
        cfg.update(config or {})
        super().__init__(cfg, prefix=taskset(cpus))

    def stop(self, *args: Any, **kw: Any) -> int:
        rc = super().stop(*args, **kw)
        shutil.rmtree(self.dir, ignore_errors=True)
        return rc


class EchoServer:
    """The floor for bench_ping: a bare C echo server (tests/bench/echo_server.c)."""

    def __init__(self, binary: str, *, cpus: Optional[str] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="kilnbench-")
        self.socket_path = os.path.join(self.dir, "echo.sock")
        self.proc = subprocess.Popen(taskset(cpus) + [binary, self.socket_path], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("echo server did not start")
            time.sleep(0.01)

    def __enter__(self) -> "EchoServer":
        return self

    def __exit__(self, *a: Any) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisServer:
    """The anchor for bench_ping: Debian's redis-server on a private Unix
    socket in a temporary directory (no TCP port, no persistence).  Check
    RedisServer.available() first; the benchmark skips with a note if not."""

    BINARY = "/usr/bin/redis-server"

    @classmethod
    def available(cls) -> bool:
        return os.access(cls.BINARY, os.X_OK)

    def __init__(self, *, cpus: Optional[str] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="kilnbench-redis-")
        self.socket_path = os.path.join(self.dir, "redis.sock")
        self.proc = subprocess.Popen(taskset(cpus) + [self.BINARY, "--port", "0", "--unixsocket", self.socket_path,
                                                      "--unixsocketperm", "700", "--save", "", "--appendonly",
                                                      "no", "--dir", self.dir],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.01)

    def __enter__(self) -> "RedisServer":
        return self

    def __exit__(self, *a: Any) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def percentile(xs: List[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(len(s) * p / 100))]


def pin_self(cpus: Optional[str]) -> None:
    if cpus and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {int(c) for c in cpus.split(",")})


def unpin_self() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


def header(title: str) -> None:
    print(f"\n## {title}", flush=True)


def row(*cols: Any, widths: Sequence[int] = (44, 16, 16, 12)) -> None:
    out = ""
    for c, w in zip(cols, list(widths) + [16] * len(cols)):
        out += f"{str(c):<{w}}"
    print(out.rstrip(), flush=True)
