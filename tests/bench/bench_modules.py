"""Native modules: what isolation costs, in the same run.

1. Call overhead: a trivial module action (numeric.add) in thread and in
   process isolation, beside a ctypes call of the same C function
   (kiln_example_add, exported by the same numeric.so) and a built-in action
   (`double`).  Goal: process isolation adds <= 20 us per call over thread
   isolation.
2. A 1 MiB float64 round trip (numeric.running_sum: 131072 doubles in, as
   many out, as attachments) in both isolations, beside ctypes calling
   kiln_example_running_sum on an array.array.  Goal: within 2x of ctypes.

Sequential calls from one Python client (kiln.Client); medians of N calls
after a warm-up.  The modules come from `make modules`.
"""

from __future__ import annotations

import array
import ctypes
import os
import shutil
import socket
import statistics
import threading
import tempfile
import time
from typing import Callable, List

from benchlib import BUILD, Server, header, percentile, row

from kiln import arrays

NUMERIC = os.path.join(BUILD, "modules", "numeric.so")
N_CALLS = 5000
N_BIG = 200
BIG = 1 << 17  # doubles: 1 MiB


def timed(fn: Callable[[], object], n: int) -> List[float]:
    for _ in range(min(200, n // 10)):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def socket_round_trip(nbytes: int, n: int) -> List[float]:
    """The transport alone: nbytes to a thread over a Unix socketpair and back."""
    a, b = socket.socketpair()
    payload = bytes(nbytes)

    def echo() -> None:
        buf = bytearray(nbytes)
        view = memoryview(buf)
        while True:
            got = 0
            while got < nbytes:
                k = b.recv_into(view[got:])
                if not k:
                    return
                got += k
            b.sendall(buf)

    t = threading.Thread(target=echo, daemon=True)
    t.start()
    back = bytearray(nbytes)
    view = memoryview(back)

    def once() -> None:
        a.sendall(payload)
        got = 0
        while got < nbytes:
            got += a.recv_into(view[got:])

    try:
        return timed(once, n)
    finally:
        a.close()
        t.join()
        b.close()


def main() -> None:
    if not os.path.exists(NUMERIC):
        print(f"bench_modules: {NUMERIC} missing (run `make modules`); skipped")
        return
    moddir = tempfile.mkdtemp(prefix="kilnbench-mod-")
    os.chmod(moddir, 0o755)
    path = os.path.join(moddir, "numeric.so")
    shutil.copyfile(NUMERIC, path)
    os.chmod(path, 0o755)
    # Lazy binding: the kiln_mod_* symbols (from kilnd) are never called here.
    lib = ctypes.CDLL(path, mode=os.RTLD_LAZY)
    lib.kiln_example_add.restype = ctypes.c_int64
    lib.kiln_example_add.argtypes = [ctypes.c_int64, ctypes.c_int64]
    lib.kiln_example_running_sum.restype = None
    lib.kiln_example_running_sum.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]

    thread = Server({"modules": [{"path": path, "isolation": "thread"}]})
    process = Server({"modules": [{"path": path, "isolation": "process"}]})
    try:
        ct = thread.client()
        cp = process.client()

        header("module call overhead (numeric.add), sequential, Python client")
        print(f"method: {N_CALLS} calls each after a warm-up; p50 and p99 in microseconds")
        row("call", "p50 us", "p99 us")
        res = {
            "ctypes kiln_example_add (floor)": timed(lambda: lib.kiln_example_add(2, 3), N_CALLS),
            "built-in action `double`": timed(lambda: ct.call("double", {"x": 21}), N_CALLS),
            "numeric.add, isolation thread": timed(lambda: ct.call("numeric.add", {"a": 2, "b": 3}), N_CALLS),
            "numeric.add, isolation process": timed(lambda: cp.call("numeric.add", {"a": 2, "b": 3}), N_CALLS),
        }
        for name, t in res.items():
            row(name, f"{percentile(t, 50):.1f}", f"{percentile(t, 99):.1f}")
        p50 = {k: statistics.median(v) for k, v in res.items()}
        extra = p50["numeric.add, isolation process"] - p50["numeric.add, isolation thread"]
        print(f"process isolation adds {extra:.1f} us per call over thread isolation (goal <= 20 us: "
              f"{'met' if extra <= 20 else 'NOT met'}); thread isolation vs the built-in: "
              f"{p50['numeric.add, isolation thread'] / p50['built-in action `double`']:.2f}x")

        header("1 MiB float64 round trip (numeric.running_sum), sequential")
        print(f"method: {BIG} doubles in, {BIG} out; {N_BIG} calls each; ctypes allocates its output "
              "array per call as kilnd does")
        x = array.array("d", (float(i % 1000) for i in range(BIG)))
        addr, _ = x.buffer_info()

        def by_ctypes() -> None:
            out = array.array("d", bytes(8 * BIG))
            lib.kiln_example_running_sum(addr, out.buffer_info()[0], BIG)

        want = arrays.call(ct, "numeric.running_sum", {}, x)[1]
        assert arrays.call(cp, "numeric.running_sum", {}, x)[1] == want
        big = {
            "ctypes kiln_example_running_sum (floor)": timed(by_ctypes, N_BIG),
            "1 MiB each way over a Unix socket, no kilnd": socket_round_trip(8 * BIG, N_BIG),
            "isolation thread": timed(lambda: arrays.call(ct, "numeric.running_sum", {}, x), N_BIG),
            "isolation process": timed(lambda: arrays.call(cp, "numeric.running_sum", {}, x), N_BIG),
        }
        row("round trip", "p50 us", "p99 us", "x ctypes")
        floor = statistics.median(big["ctypes kiln_example_running_sum (floor)"])
        for name, t in big.items():
            row(name, f"{percentile(t, 50):.0f}", f"{percentile(t, 99):.0f}", f"{statistics.median(t) / floor:.2f}")
        ratio = statistics.median(big["isolation process"]) / floor
        print(f"process isolation round trip: {ratio:.2f}x ctypes (goal <= 2x: {'met' if ratio <= 2 else 'NOT met'}); "
              "between kilnd and its worker the arrays cross by memfd, but the client's socket still carries "
              "them both ways (the socket-only row is that part's floor)")
        ct.close()
        cp.close()
    finally:
        thread.stop()
        process.stop()
        shutil.rmtree(moddir, ignore_errors=True)


if __name__ == "__main__":
    main()
