#!/usr/bin/env python3
"""Runs the long forms of the load, fault and soak tests (`make stress`):
the same test classes as the bounded forms in `make test`, with
KILN_STRESS=long.  Prints every [stress] result line again at the end.

    tests/stress/run.py [--build DIR] [MODULE...]     e.g. stress_soak
    KILN_SOAK_REQUESTS=N overrides the soak's 10,000,000 requests.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
MODULES = ["stress_load", "stress_faults", "stress_soak"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("modules", nargs="*", default=MODULES)
    ns = ap.parse_args()
    build = os.path.join(ROOT, ns.build)
    fd, report = tempfile.mkstemp(prefix="kiln-stress-", suffix=".txt")
    os.close(fd)
    env = dict(os.environ, KILN_STRESS="long", KILN_STRESS_REPORT=report, KILND=os.path.join(build, "kilnd"),
               BUILD=build, KILN_TEST_DATA=os.path.join(ROOT, "tests", "data"), PYTHONDONTWRITEBYTECODE="1")
    env.pop("KILN_SOCKET", None)
    env.pop("KILN_TEST_WRAPPER", None)
    failed = []
    t0 = time.monotonic()
    for m in ns.modules:
        print(f"== {m} (long form)", flush=True)
        t = time.monotonic()
        rc = subprocess.run([PY, "-m", "unittest", "-v", m], cwd=HERE, env=env).returncode
        print(f"== {m}: exit {rc} in {time.monotonic() - t:.0f} s", flush=True)
        if rc:
            failed.append(m)
    with open(report) as f:
        lines = f.read()
    os.unlink(report)
    print(f"\n== stress results ({time.monotonic() - t0:.0f} s; kilnd {env['KILND']})\n{lines}")
    print("failed: " + ", ".join(failed) if failed else "all stress tests passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
