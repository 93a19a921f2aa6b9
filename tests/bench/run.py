#!/usr/bin/env python3
"""make bench: runs every tests/bench/bench_*.py in turn (or the ones named)."""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("only", nargs="*", help="bench names, e.g. ping text")
    ns = ap.parse_args()
    build = os.path.join(ROOT, ns.build)
    env = dict(os.environ, BUILD=build, KILND=os.path.join(build, "kilnd"))
    env.pop("KILN_SOCKET", None)
    rc = 0
    print(f"# kiln benchmarks ({os.cpu_count()} CPUs, {os.uname().release})")
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "bench", "bench_*.py"))):
        name = os.path.basename(path)[6:-3]
        if ns.only and name not in ns.only:
            continue
        r = subprocess.run(["/usr/bin/python3", path], cwd=os.path.dirname(path), env=env)
        if r.returncode:
            print(f"bench {name} failed with {r.returncode}")
            rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main())
