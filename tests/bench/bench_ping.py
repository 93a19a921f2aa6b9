"""ping round trips and throughput: kilnd against a bare C echo server (the
floor), from the C client and from the Python client, with client and server
on the same CPU and on different CPUs; then kilnd's resident memory before
and after 1,000,000 requests; then kilnd beside redis-server (the anchor, on a
private Unix socket, same run): one raw-socket Python client pipelining pings
in batches of 100, each project's own Python client (kiln.Client.call_many vs
a redis-py pipeline) and sequential ping latency.  Redis rows are skipped with
a note when redis-server / python3-redis are not installed."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from typing import Dict, List, Optional

from benchlib import (BUILD, EchoServer, RedisServer, Server, header, percentile, pin_self, row, taskset,
                      unpin_self)

import kiln

C_CLIENT = os.path.join(BUILD, "bench", "bench_client")
ECHO = os.path.join(BUILD, "bench", "echo_server")
N_SEQ_C, N_PIPE_C = 20000, 300000
N_SEQ_PY, N_PIPE_PY = 5000, 100000
N_RAW = 300000


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


KILN_PING = b'{"job_id":1,"action":"ping"}\n'
REDIS_PING = b"PING\r\n"


def raw_pipe(path: str, request: bytes, end: bytes, n: int, batch: int = 100) -> Dict[str, float]:
    """One raw-socket Python client: batches of `batch` requests written at
    once, then replies read until `batch` of them (counted by `end`) came."""
    payload = request * batch
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(path)
        t0 = time.perf_counter()
        for _ in range(n // batch):
            s.sendall(payload)
            got = 0
            while got < batch:
                k = s.recv_into(view)
                if not k:
                    raise RuntimeError("server closed the connection")
                got += bytes(view[:k]).count(end)
        dt = time.perf_counter() - t0
    return {"rps": n // batch * batch / dt}


def redis_py(path: str, n_pipe: int, n_seq: int) -> Dict[str, float]:
    import redis  # python3-redis; the caller checked it imports
    r = redis.Redis(unix_socket_path=path)
    r.ping()
    t0 = time.perf_counter()
    for _ in range(n_pipe // 100):
        p = r.pipeline(transaction=False)
        for _ in range(100):
            p.ping()
        p.execute()
    rps = n_pipe / (time.perf_counter() - t0)
    t: List[float] = []
    for _ in range(n_seq):
        t0 = time.perf_counter()
        r.ping()
        t.append((time.perf_counter() - t0) * 1e6)
    r.close()
    return {"rps": rps, "p50_us": percentile(t, 50), "p99_us": percentile(t, 99)}


def redis_anchor() -> None:
    header("ping beside Redis (anchor), same run: one Python client, batches of 100")
    if not RedisServer.available():
        print(f"skipped: {RedisServer.BINARY} is not installed (Debian package redis-server; "
              "`make deps-test` installs it)")
        return
    try:
        import redis  # noqa: F401
        have_redis_py = True
    except ImportError:
        have_redis_py = False
    w = (36, 12, 12, 15)
    row("figure", "kilnd", "Redis", "kilnd / Redis", "goal", widths=w)
    with Server() as k, RedisServer() as rs:
        kr = raw_pipe(k.socket_path, KILN_PING, b"\n", N_RAW)
        rr = raw_pipe(rs.socket_path, REDIS_PING, b"\r\n", N_RAW)
        ratio = kr["rps"] / rr["rps"]
        row("raw socket, pipelined (req/s)", f"{kr['rps']:.0f}", f"{rr['rps']:.0f}", f"{ratio:.2f}x",
            f">= 0.67x: {'met' if ratio >= 0.67 else 'NOT met'}", widths=w)
        if not have_redis_py:
            print("redis-py rows skipped: the redis module does not import (Debian package python3-redis)")
            return
        kp = py_pipe(k.socket_path, N_PIPE_PY, None)
        ks = py_seq(k.socket_path, N_SEQ_PY, None)
        rp = redis_py(rs.socket_path, N_PIPE_PY, N_SEQ_PY)
        ratio = kp["rps"] / rp["rps"]
        row("own client, pipelined (req/s)", f"{kp['rps']:.0f}", f"{rp['rps']:.0f}", f"{ratio:.2f}x",
            f">= 1.0x: {'met' if ratio >= 1.0 else 'NOT met'}", widths=w)
        row("own client, sequential p50 (us)", f"{ks['p50_us']:.1f}", f"{rp['p50_us']:.1f}",
            f"{ks['p50_us'] / rp['p50_us']:.2f}x", "parity", widths=w)
        row("own client, sequential p99 (us)", f"{ks['p99_us']:.1f}", f"{rp['p99_us']:.1f}",
            f"{ks['p99_us'] / rp['p99_us']:.2f}x", "", widths=w)
    print("(kilnd: kiln.Client.call_many / call; Redis: redis-py pipeline(transaction=False) / ping;\n"
          " raw socket: the same Python loop writing 100 requests and counting 100 replies)")


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

    redis_anchor()


if __name__ == "__main__":
    main()
