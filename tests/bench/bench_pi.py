"""Benchmark for the pi action (issue 4).

    /usr/bin/python3 tests/bench/bench_pi.py [--max 10000000] [--gmpy2-max 1000000]

For 10^4 .. 10^7 digits, side by side in one run: kilnd cold (a fresh
computation: the cache is disabled), kilnd cached (the prefix of a larger
expansion already held), MPFR's const_pi through gmpy2 (python3-gmpy2, with
the decimal conversion; up to --gmpy2-max digits since 10^7 takes ~15 s) and
a pure-Python integer Machin formula (10^4 and 10^5 only).  Times are end to
end from the Python client, best of a few runs for the small sizes.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Callable, Optional

import benchlib
from benchlib import header, row

try:
    import gmpy2
except ImportError:  # optional
    gmpy2 = None

GOALS = {10**6: "cold <= 0.4 s, cached <= 10 ms", 10**7: "cold <= 6 s"}


def machin(n: int) -> str:
    """pi = 16 atan(1/5) - 4 atan(1/239) in fixed point with 10 guard digits."""
    guard = 10
    one = 10 ** (n + guard)

    def atan_inv(x: int) -> int:
        total = term = one // x
        x2, k, sign = x * x, 3, -1
        while term:
            term //= x2
            total += sign * (term // k)
            sign, k = -sign, k + 2
        return total

    p = (16 * atan_inv(5) - 4 * atan_inv(239)) // 10 ** guard
    s = str(p)
    return s[0] + "." + s[1:] if n else s


def mpfr(n: int) -> str:
    gmpy2.get_context().precision = int(n * 3.3219280948873623) + 64
    s = gmpy2.const_pi().digits(10, n + 10)[0]
    return s[0] + "." + s[1:n + 1]


def timed(fn: Callable[[], str], repeat: int) -> tuple:
    best, out = float("inf"), ""
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def fmt(t: Optional[float]) -> str:
    if t is None:
        return "-"
    return f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.3f} s"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int, default=10**7)
    ap.add_argument("--gmpy2-max", type=int, default=10**6)
    ns = ap.parse_args()
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    sizes = [n for n in (10**4, 10**5, 10**6, 10**7) if n <= ns.max]
    header("pi: first n decimals, end to end from the Python client (2 threads in kilnd's pool)")
    row("digits", "kilnd cold", "kilnd cached", "gmpy2 MPFR", "pure-Python Machin", "goal",
        widths=(10, 14, 14, 14, 20, 30))
    with benchlib.Server({"pi_cache_max_digits": 0}) as cold_srv, cold_srv.client() as cold, \
            benchlib.Server() as warm_srv, warm_srv.client() as warm:
        warm.pi(max(sizes))  # fills the cache with the largest expansion
        for n in sizes:
            reps = 5 if n <= 10**5 else 2 if n <= 10**6 else 1
            t_cold, ref = timed(lambda: cold.pi(n), reps)
            t_warm, got = timed(lambda: warm.pi(n), 5)
            assert got == ref
            t_mp = None
            if gmpy2 is not None and n <= ns.gmpy2_max:
                t_mp, s = timed(lambda: mpfr(n), reps)
                assert s == ref, "gmpy2 disagrees"
            t_ma = None
            if n <= 10**5:
                t_ma, s = timed(lambda: machin(n), 1)
                assert s == ref, "Machin disagrees"
            row(n, fmt(t_cold), fmt(t_warm), fmt(t_mp) if gmpy2 else "not installed", fmt(t_ma),
                GOALS.get(n, ""), widths=(10, 14, 14, 14, 20, 30))
    return 0


if __name__ == "__main__":
    sys.exit(main())
