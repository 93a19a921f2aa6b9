"""Shared helpers for the benchmarks in tests/bench (run by `make bench`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
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

import kiln  # noqa: E402


def taskset(cpus: Optional[str]) -> List[str]:
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


def wait_socket(path: str, proc: subprocess.Popen, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError("server did not start")


class Server:
    """kilnd (or another server binary) on a temporary socket."""

    def __init__(self, config: Optional[Dict[str, Any]] = None, *, cpus: Optional[str] = None,
                 argv: Optional[Sequence[str]] = None) -> None:
        self.dir = tempfile.mkdtemp(prefix="kilnbench-")
        self.socket_path = os.path.join(self.dir, "s.sock")
        if argv is None:
            cfg = {"path_roots": [DATA, self.dir], "log_level": "warn"}
            cfg.update(config or {})
            cfgpath = os.path.join(self.dir, "kiln.json")
            with open(cfgpath, "w") as f:
                json.dump(cfg, f)
            argv = [KILND, "--socket", self.socket_path, "--config", cfgpath]
        else:
            argv = list(argv) + [self.socket_path]
        self.proc = subprocess.Popen(taskset(cpus) + list(argv), stderr=subprocess.DEVNULL)
        wait_socket(self.socket_path, self.proc)

    def rss(self) -> int:
        with open(f"/proc/{self.proc.pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def client(self) -> kiln.Client:
        return kiln.Client(self.socket_path)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *a: Any) -> None:
        self.stop()


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
