"""Golden examples (proto/examples/*.json): loading, sending, matching.

Used by tests/python/test_golden.py and, as a command, by tests/sh/test_socat.sh:

    python3 tests/python/golden.py requests FILE     # print the request lines
    python3 tests/python/golden.py check FILE < replies
"""

from __future__ import annotations

import glob
import json
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data")
TYPES = {"<int>": lambda v: isinstance(v, int) and not isinstance(v, bool),
         "<number>": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
         "<string>": lambda v: isinstance(v, str),
         "<bool>": lambda v: isinstance(v, bool),
         "<any>": lambda v: True}


def example_files() -> List[str]:
    return sorted(glob.glob(os.path.join(ROOT, "proto", "examples", "*.json")))


def load(path: str) -> List[Dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _subst(v: Any, captures: Optional[Dict[str, Any]] = None) -> Any:
    if isinstance(v, str):
        if captures and len(v) > 2 and v[0] == "@" == v[-1] and v[1:-1] in captures:
            return captures[v[1:-1]]
        return v.replace("@DATA@", DATA)
    if isinstance(v, list):
        return [_subst(x, captures) for x in v]
    if isinstance(v, dict):
        return {k: _subst(x, captures) for k, x in v.items()}
    return v


def request_line(case: Dict[str, Any], captures: Optional[Dict[str, Any]] = None) -> bytes:
    """The case's request; a string "@NAME@" becomes the value an earlier
    reply's "<int:NAME>" captured."""
    send = case["send"]
    if isinstance(send, str):
        return send.replace("@DATA@", DATA).encode() + b"\n"
    return json.dumps(_subst(send, captures), separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def match(expect: Any, actual: Any, where: str = "reply",
          captures: Optional[Dict[str, Any]] = None) -> List[str]:
    """Differences between an expected pattern and an actual value;
    "<int:NAME>" matches an integer and stores it in captures[NAME]."""
    if isinstance(expect, str) and expect.startswith("<int:") and expect.endswith(">"):
        if not isinstance(actual, int) or isinstance(actual, bool):
            return [f"{where}: expected an integer, got {actual!r}"]
        if captures is not None:
            captures[expect[5:-1]] = actual
        return []
    if isinstance(expect, str) and expect in TYPES:
        return [] if TYPES[expect](actual) else [f"{where}: expected {expect}, got {actual!r}"]
    if isinstance(expect, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        errs: List[str] = []
        more = expect.get("<more>") is True
        for k, v in expect.items():
            if k == "<more>":
                continue
            if k not in actual:
                errs.append(f"{where}.{k}: missing")
            else:
                errs += match(v, actual[k], f"{where}.{k}", captures)
        if not more:
            errs += [f"{where}.{k}: unexpected key" for k in actual if k not in expect]
        return errs
    if isinstance(expect, list):
        if not isinstance(actual, list) or len(actual) != len(expect):
            return [f"{where}: expected {expect!r}, got {actual!r}"]
        errs = []
        for i, (e, a) in enumerate(zip(expect, actual)):
            errs += match(e, a, f"{where}[{i}]", captures)
        return errs
    if isinstance(expect, float) and isinstance(actual, (int, float)):
        return [] if abs(expect - actual) <= 1e-9 * max(1.0, abs(expect)) else [f"{where}: {expect} != {actual}"]
    if expect != actual or type(expect) is not type(actual):
        return [f"{where}: expected {expect!r}, got {actual!r}"]
    return []


def check_case(case: Dict[str, Any], replies: List[Dict[str, Any]],
               captures: Optional[Dict[str, Any]] = None) -> List[str]:
    exp = _subst(case["expect"])
    if len(replies) != len(exp):
        return [f"{case['name']}: expected {len(exp)} lines, got {len(replies)}: {replies!r}"]
    errs: List[str] = []
    for i, (e, a) in enumerate(zip(exp, replies)):
        errs += [f"{case['name']}: {m}" for m in match(e, a, f"line{i}", captures)]
    return errs


def captures_from(cases: List[Dict[str, Any]], replies: List[Dict[str, Any]]) -> Dict[str, Any]:
    """What the replies to `cases` (sent one by one) captured."""
    captures: Dict[str, Any] = {}
    for case, got in split_by_job(cases, replies):
        check_case(case, got, captures)
    return captures


def split_by_job(cases: List[Dict[str, Any]], replies: List[Dict[str, Any]]) -> List[Tuple[Dict[str, Any], List[Dict[str, Any]]]]:
    """Groups replies of a batch by case, using each case's job_id (or null)."""
    out = []
    for case in cases:
        ids = {e.get("job_id") for e in case["expect"]}
        out.append((case, [r for r in replies if r.get("job_id") in ids]))
    return out


def main(argv: List[str]) -> int:
    if len(argv) == 3 and argv[1] == "requests":
        for case in load(argv[2]):
            sys.stdout.buffer.write(request_line(case))
        return 0
    if len(argv) == 3 and argv[1] == "check":
        cases = load(argv[2])
        replies = [json.loads(l) for l in sys.stdin.buffer.read().splitlines() if l.strip()]
        errs: List[str] = []
        captures: Dict[str, Any] = {}
        for case, got in split_by_job(cases, replies):
            errs += check_case(case, got, captures)
        for e in errs:
            print(e)
        print(f"{os.path.basename(argv[2])}: {len(cases)} cases, {len(errs)} mismatches")
        return 1 if errs else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
