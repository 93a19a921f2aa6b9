#!/usr/bin/python3
"""Mutation check: does the suite notice when a security check or a
documented behaviour is broken?

tests/mutation/mutations.json lists mutations.  Each is one exact edit
inside one named top-level definition (a function, or a table such as
config.c's keys[]) of one file, and names the tests that must catch it:

    {"id": "path.boundary",
     "file": "daemon/paths.c", "function": "kiln_path_allowed",
     "old": "exact text", "new": "replacement",
     "tests": ["py:test_security.PathTest.test_sibling_of_root",
               "unit:test_corpus", "sh:test_socat.sh"],
     "why": "what breaks"}

Tests: "unit:NAME" runs BUILD/tests/NAME (a check binary), "py:ID" runs
`python3 -m unittest ID` from tests/python against the mutated kilnd,
"sh:NAME" runs tests/sh/NAME.  A mutation is caught when one of its tests
fails (or times out); it survives when all pass.

    run.py                 every mutation: prints a table, exits 1 if any
                           survived, no longer applies, or a test fails
                           on the unmutated tree (the baseline)
    run.py ID...           only those
    run.py --check         only checks that every edit still applies (each
                           old text found exactly once inside its function)
                           and every named test exists; no build (make test)
    run.py --list          ids, files and functions

The tree is copied (git ls-files plus uncommitted changes) to a scratch
directory with its own build directory; each mutation is applied there,
rebuilt incrementally (only kilnd, libkiln.so and the named unit tests),
tested, and the file restored.  Nothing in the working tree is touched.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIST = os.path.join(ROOT, "tests", "mutation", "mutations.json")
PY = "/usr/bin/python3"
TEST_TIMEOUT = 300  # seconds; a test that hangs under a mutation has caught it


class NoLongerApplies(Exception):
    pass


def load(path: str = LIST) -> List[dict]:
    with open(path, encoding="utf-8") as f:
        muts = json.load(f)
    seen = set()
    for m in muts:
        for k in ("id", "file", "function", "old", "new", "tests", "why"):
            if k not in m:
                raise SystemExit(f"{path}: mutation {m.get('id', '?')} lacks {k!r}")
        if m["id"] in seen:
            raise SystemExit(f"{path}: duplicate id {m['id']}")
        if m["old"] == m["new"] or not m["tests"]:
            raise SystemExit(f"{path}: mutation {m['id']} changes nothing or names no test")
        seen.add(m["id"])
    return muts


def definition_span(text: str, name: str) -> Tuple[int, int]:
    """[start, end) of the top-level definition of `name`: from the line
    that defines it (a line starting in column 0 that names it before a
    "(" or "[" or " =" and does not end in ";") to the next line that
    starts with "}" (the end of the body, kernel style)."""
    pat = re.compile(r"^[A-Za-z_][^;\n]*?\b" + re.escape(name) + r"\s*(\(|\[|=)[^;\n]*$", re.M)
    starts = [m.start() for m in pat.finditer(text)]
    spans = []
    for s in starts:
        end = re.compile(r"^\}", re.M).search(text, s)
        if end:
            spans.append((s, end.end()))
    if len(spans) != 1:
        raise NoLongerApplies(f"{len(spans)} definitions of {name}")
    return spans[0]


def apply(src: str, m: dict) -> str:
    """The file text with the mutation applied; NoLongerApplies if the old
    text is not found exactly once inside the named function."""
    s, e = definition_span(src, m["function"])
    body = src[s:e]
    n = body.count(m["old"])
    if n != 1:
        raise NoLongerApplies(f"old text found {n} times in {m['function']}()")
    return src[:s] + body.replace(m["old"], m["new"]) + src[e:]


def test_exists(root: str, t: str) -> Optional[str]:
    kind, _, name = t.partition(":")
    if kind == "unit":
        return None if os.path.exists(os.path.join(root, "tests", "unit", name + ".c")) else f"no tests/unit/{name}.c"
    if kind == "sh":
        return None if os.path.exists(os.path.join(root, "tests", "sh", name)) else f"no tests/sh/{name}"
    if kind == "py":
        parts = name.split(".")
        path = os.path.join(root, "tests", "python", parts[0] + ".py")
        if not os.path.exists(path):
            return f"no tests/python/{parts[0]}.py"
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if len(parts) > 1 and not re.search(r"^class " + re.escape(parts[1]) + r"\b", text, re.M):
            return f"no class {parts[1]} in {parts[0]}.py"
        if len(parts) > 2 and not re.search(r"^    def " + re.escape(parts[2]) + r"\(", text, re.M):
            return f"no test {parts[2]} in {parts[0]}.py"
        return None
    return f"unknown test kind {kind!r}"


def check(muts: List[dict], root: str = ROOT) -> List[str]:
    problems = []
    for m in muts:
        try:
            with open(os.path.join(root, m["file"]), encoding="utf-8") as f:
                apply(f.read(), m)
        except (OSError, NoLongerApplies) as e:
            problems.append(f"{m['id']}: no longer applies to {m['file']}: {e}")
        for t in m["tests"]:
            err = test_exists(root, t)
            if err:
                problems.append(f"{m['id']}: test {t}: {err}")
    return problems


def copy_tree(dst: str) -> None:
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, check=True, stdout=subprocess.PIPE).stdout.split(b"\0")
    for rel in files:
        if not rel:
            continue
        rel_s = rel.decode()
        src = os.path.join(ROOT, rel_s)
        if not os.path.lexists(src):
            continue
        out = os.path.join(dst, rel_s)
        os.makedirs(os.path.dirname(out), exist_ok=True)
        shutil.copy2(src, out, follow_symlinks=False)


def build(work: str, targets: List[str], log: List[str]) -> bool:
    p = subprocess.run(["nice", "make", "--no-print-directory", "-j2", "BUILD=build"] + targets, cwd=work,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        log.append(p.stdout.decode(errors="replace")[-3000:])
    return p.returncode == 0


def targets_for(tests: List[str]) -> List[str]:
    t = ["build/kilnd", "build/libkiln.so"]
    t += sorted({"build/tests/" + x.split(":", 1)[1] for x in tests if x.startswith("unit:")})
    return t


def run_test(work: str, t: str) -> Tuple[str, str]:
    """("pass", "fail" or "skip", output tail).  A skip proves nothing:
    it is neither a pass in the baseline nor a catch."""
    kind, _, name = t.partition(":")
    build_dir = os.path.join(work, "build")
    env = dict(os.environ, KILND=os.path.join(build_dir, "kilnd"), BUILD=build_dir,
               KILN_TEST_DATA=os.path.join(work, "tests", "data"), PYTHONDONTWRITEBYTECODE="1")
    for k in ("KILN_SOCKET", "KILN_TEST_WRAPPER", "KILN_TEST_SANITIZER", "KILN_UPDATE_GOLDEN"):
        env.pop(k, None)
    if kind == "unit":
        cmd, cwd = [os.path.join(build_dir, "tests", name)], work
    elif kind == "py":
        cmd, cwd = [PY, "-m", "unittest", name], os.path.join(work, "tests", "python")
    else:
        cmd, cwd = ["bash", os.path.join(work, "tests", "sh", name)], work
    try:
        p = subprocess.run(["nice"] + cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=TEST_TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return "fail", (e.stdout or b"").decode(errors="replace")[-2000:] + f"\n(timed out after {TEST_TIMEOUT} s)"
    out = p.stdout.decode(errors="replace")
    if kind == "sh" and p.returncode == 77:
        return "skip", out[-2000:]
    if p.returncode == 0 and kind == "py" and re.search(r"^OK \(.*skipped=", out, re.M):
        return "skip", out[-2000:]
    return ("pass" if p.returncode == 0 else "fail"), out[-2000:]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ids", nargs="*")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--no-baseline", action="store_true", help="skip running the tests on the unmutated tree")
    ap.add_argument("--verbose", "-v", action="store_true", help="print each test's output")
    ns = ap.parse_args()
    muts = load()
    if ns.list:
        for m in muts:
            print(f"{m['id']:32} {m['file']}:{m['function']}")
        return 0
    problems = check(muts)
    if ns.check:
        for p in problems:
            print("mutation list: " + p)
        print(f"mutation list: {len(muts)} mutations, {len(problems)} problems")
        return 1 if problems else 0
    if ns.ids:
        unknown = set(ns.ids) - {m["id"] for m in muts}
        if unknown:
            print("unknown ids: " + ", ".join(sorted(unknown)))
            return 2
        muts = [m for m in muts if m["id"] in ns.ids]
    broken = {p.split(":", 1)[0] for p in problems}
    for p in problems:
        print("NO LONGER APPLIES / BAD TEST: " + p)

    work = tempfile.mkdtemp(prefix="kiln-mutation-")
    # The security tests run clients as another user, who must reach the
    # client library and test data in the copy.
    os.chmod(work, 0o755)
    t_start = time.monotonic()
    rows: List[Tuple[str, str]] = []
    bad = 0
    try:
        copy_tree(work)
        log: List[str] = []
        all_tests = sorted({t for m in muts for t in m["tests"]})
        print(f"scratch tree {work}; building", flush=True)
        if not build(work, targets_for(all_tests), log):
            print("the unmutated tree does not build:\n" + "\n".join(log))
            return 1
        if not ns.no_baseline:
            failing = []
            for t in all_tests:
                res, out = run_test(work, t)
                print(f"baseline {t}: {res}", flush=True)
                if res != "pass":
                    failing.append(t)
                    print(out)
            if failing:
                print("tests fail (or skip) on the unmutated tree, so they cannot show a mutation: "
                      + ", ".join(failing))
                return 1
        for m in muts:
            t0 = time.monotonic()
            if m["id"] in broken:
                rows.append((m["id"], "NO LONGER APPLIES"))
                bad += 1
                continue
            path = os.path.join(work, m["file"])
            with open(path, encoding="utf-8") as f:
                orig = f.read()
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(apply(orig, m))
                log = []
                if not build(work, targets_for(m["tests"]), log):
                    # A mutation that does not compile catches nothing.
                    verdict = "DOES NOT BUILD"
                    print("\n".join(log))
                    bad += 1
                else:
                    caught = []
                    for t in m["tests"]:
                        res, out = run_test(work, t)
                        if ns.verbose:
                            print(out)
                        if res == "fail":
                            caught.append(t)
                            break
                    if caught:
                        verdict = "caught by " + ", ".join(caught)
                    else:
                        verdict = "SURVIVED"
                        bad += 1
            finally:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(orig)
            rows.append((m["id"], verdict))
            print(f"{m['id']:32} {verdict}  ({time.monotonic() - t0:.0f} s)", flush=True)
    finally:
        if ns.keep:
            print("scratch tree kept: " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    width = max([len(r[0]) for r in rows] + [8])
    print()
    print(f"{'mutation':{width}}  result")
    print(f"{'-' * width}  {'-' * 40}")
    for mid, verdict in rows:
        print(f"{mid:{width}}  {verdict}")
    print(f"\n{len(rows)} mutations, {len(rows) - bad} caught, {bad} not caught "
          f"({time.monotonic() - t_start:.0f} s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
