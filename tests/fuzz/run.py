#!/usr/bin/env python3
"""Runs the libFuzzer targets built by `make fuzz-build` ($BUILD/fuzz/fuzz_*).

Each target fuzzes for --seconds from its committed seed corpus
tests/fuzz/corpus/<name>/ and dictionary tests/fuzz/dict/<name>.dict (both
written by make_seeds.py); new inputs are kept in $BUILD/fuzz/corpus/<name>/,
crash inputs go to $BUILD/fuzz/artifacts/<name>/.  Then every committed
reproducer in tests/fuzz/regressions/<name>/ is replayed.  One line per target:

    FUZZ-RESULT <name> PASS|FAIL <executions> <seconds> <coverage>

A target fails when the fuzzer finds a crash, leak, hang (-timeout) or
sanitizer report, or when a regression input crashes again.

Usage: tests/fuzz/run.py [--build build] [--seconds 60] [--parallel N] [--fresh] [target...]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

ENV = dict(os.environ,
           ASAN_OPTIONS="abort_on_error=1:detect_leaks=1",
           UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")


def run_target(build: str, name: str, seconds: int, fresh: bool) -> Tuple[str, bool, int, float, int, str]:
    binary = os.path.join(build, "fuzz", f"fuzz_{name}")
    # --fresh starts from the seeds alone, so the run's length does not grow
    # with what earlier runs kept (make test uses it).
    work = tempfile.mkdtemp(prefix=f"kiln-fuzz-{name}-") if fresh else os.path.join(build, "fuzz", "corpus", name)
    artifacts = os.path.join(build, "fuzz", "artifacts", name) + "/"
    seeds = os.path.join(HERE, "corpus", name)
    os.makedirs(work, exist_ok=True)
    os.makedirs(artifacts, exist_ok=True)
    cmd = [binary, f"-max_total_time={seconds}", "-timeout=20", "-rss_limit_mb=3072",
           "-print_final_stats=1", f"-artifact_prefix={artifacts}", work]
    if os.path.isdir(seeds):
        cmd.append(seeds)
    dictionary = os.path.join(HERE, "dict", f"{name}.dict")
    if os.path.exists(dictionary):
        cmd.insert(1, f"-dict={dictionary}")
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=seconds + 120)
        out, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode(errors="replace") + "\n*** fuzzer did not stop\n", -1
    elapsed = time.monotonic() - t0
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    m = re.search(r"stat::number_of_executed_units: (\d+)", out)
    execs = int(m.group(1)) if m else 0
    covs = re.findall(r"cov: (\d+)", out)
    cov = int(covs[-1]) if covs else 0
    ok = rc == 0
    report = "" if ok else "\n".join(out.splitlines()[-60:])

    regressions = sorted(glob.glob(os.path.join(HERE, "regressions", name, "*")))
    if regressions:
        p = subprocess.run([binary, "-timeout=20", *regressions], cwd=ROOT, env=ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        if p.returncode != 0:
            ok = False
            report += "\n*** a regression input fails again:\n" + \
                      "\n".join(p.stdout.decode(errors="replace").splitlines()[-60:])
    summary = (f"fuzz {name}: {execs} executions in {elapsed:.0f} s ({execs / max(elapsed, 1e-3):.0f}/s), "
               f"coverage {cov}, {len(regressions)} regression inputs replayed, "
               f"{'no crash' if ok else 'FAILED (inputs in ' + artifacts + ')'}")
    return name, ok, execs, elapsed, cov, summary + ("\n" + report if report else "")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--fresh", action="store_true", help="start from the seeds, keep no new corpus entries")
    ap.add_argument("targets", nargs="*")
    ns = ap.parse_args()
    build = os.path.join(ROOT, ns.build)
    names: List[str] = ns.targets or sorted(
        os.path.basename(b)[len("fuzz_"):] for b in glob.glob(os.path.join(build, "fuzz", "fuzz_*"))
        if os.access(b, os.X_OK) and "." not in os.path.basename(b))
    if not names:
        print(f"no fuzz targets in {build}/fuzz (run make fuzz-build)")
        return 1
    failed = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, ns.parallel)) as pool:
        for name, ok, execs, elapsed, cov, text in pool.map(lambda n: run_target(build, n, ns.seconds, ns.fresh),
                                                                names):
            print(text, flush=True)
            print(f"FUZZ-RESULT {name} {'PASS' if ok else 'FAIL'} {execs} {elapsed:.1f} {cov}", flush=True)
            failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
