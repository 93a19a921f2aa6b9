"""ping round trips and throughput: kilnd against a bare C echo server (the
floor), from the C client and from the Python client, with client and server
on the same CPU and on different CPUs; then kilnd's resident memory before
and after 1,000,000 requests."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Dict, List, Optional

from benchlib import BUILD, EchoServer, Server, header, percentile, pin_self, row, taskset, unpin_self

import kiln

C_CLIENT = os.path.join(BUILD, "bench", "bench_client")
ECHO = os.path.join(BUILD, "bench", "echo_server")
N_SEQ_C, N_PIPE_C = 20000, 300000
N_SEQ_PY, N_PIPE_PY = 5000, 100000


def c_client(path: str, mode: str, n: int, cpus: Optional[str]) -> Dict[str, float]:
    args = [C_CLIENT, path, mode, str(n)] + (["100"] if mode == "pipe" else [])
    out = subprocess.run(taskset(cpus) + args, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def py_seq(path: str, n: int, cpus: Optional[str]) -> Dict[str, float]:
    pin_self(cpus)
    try:
        with kiln.Client(path) as c:
            t: List[float] = []
            for _ in range(n):
                t0 = time.perf_counter()
                c.call("ping", check=False)
                t.append((time.perf_counter() - t0) * 1e6)
        return {"p50_us": percentile(t, 50), "p99_us": percentile(t, 99)}
    finally:
        unpin_self()


def py_pipe(path: str, n: int, cpus: Optional[str]) -> Dict[str, float]:
    pin_self(cpus)
    try:
        with kiln.Client(path) as c:
            t0 = time.perf_counter()
            for _ in range(n // 100):
                c.call_many([("ping", None)] * 100, window=100, check=False)
            return {"rps": n / (time.perf_counter() - t0)}
    finally:
        unpin_self()


def main() -> None:
    header("ping: kilnd vs the bare C echo server (floor), same run")
    print("method: tests/bench/bench_client.c (C) and kiln.Client (Python); sequential = one request,\n"
          "wait for the reply; pipelined = batches of 100. Placement: 'same CPU' pins client and\n"
          "server to CPU 0 (taskset); 'split' puts the server on CPU 0 and the client on CPU 1,\n"
          "where each round trip pays a cross-CPU wake-up.")
    for place, scpu, ccpu in (("same CPU", "0", "0"), ("split CPUs", "0", "1")):
        print(f"\n### placement: {place}")
        row("figure", "kilnd", "echo floor", "ratio")
        with Server(cpus=scpu) as k, EchoServer(ECHO, cpus=scpu) as e:
            for label, fn, key in (
                ("C seq p50 (us)", lambda p: c_client(p, "seq", N_SEQ_C, ccpu), "p50_us"),
                ("C seq p99 (us)", None, "p99_us"),
                ("C pipelined (req/s)", lambda p: c_client(p, "pipe", N_PIPE_C, ccpu), "rps"),
                ("Python seq p50 (us)", lambda p: py_seq(p, N_SEQ_PY, ccpu), "p50_us"),
                ("Python seq p99 (us)", None, "p99_us"),
                ("Python pipelined (req/s)", lambda p: py_pipe(p, N_PIPE_PY, ccpu), "rps"),
            ):
                if fn is not None:
                    kr, er = fn(k.socket_path), fn(e.socket_path)
                ratio = kr[key] / er[key] if key != "rps" else er[key] / kr[key]
                row(label, f"{kr[key]:.1f}", f"{er[key]:.1f}", f"{ratio:.2f}x")

    header("kilnd resident memory over 1,000,000 requests")
    with Server() as k:
        c_client(k.socket_path, "pipe", 10000, None)
        before = k.rss()
        t0 = time.perf_counter()
        c_client(k.socket_path, "pipe", 1000000, None)
        dt = time.perf_counter() - t0
        after = k.rss()
        row("RSS before (KiB)", before // 1024)
        row("RSS after 1M pings (KiB)", after // 1024)
        row("growth (KiB)", (after - before) // 1024, "goal < 1024")
        row("1M pipelined pings took (s)", f"{dt:.2f}")


if __name__ == "__main__":
    main()
