"""Command line: python3 -m kiln ACTION [key=value ...] [--json ARGS]

Prints the reply as JSON.  A value is read as JSON when it parses (5, true,
[1,2], "x"), otherwise as a string: `python3 -m kiln pi digits=50`.
Exit status: 0 for success, 1 for an error reply, 2 for a usage error, 3 when
the daemon cannot be reached.

Shorthands: `seal` is corpus.seal, e.g.
    python3 -m kiln seal dir=/data/diary out_dir=/data/sealed passphrase=...
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional

from .client import Client
from .errors import ConnectionLost
from .protocol import ProcedureOutput


ALIASES = {"seal": "corpus.seal"}


def parse_pairs(pairs: List[str]) -> Dict[str, Any]:
    args: Dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise SystemExit(f"kiln: expected key=value, got {p!r}")
        k, v = p.split("=", 1)
        try:
            args[k] = json.loads(v)
        except ValueError:
            args[k] = v
    return args


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m kiln", description="Send one request to kilnd.")
    ap.add_argument("action", help="action name (try: describe)")
    ap.add_argument("pairs", nargs="*", metavar="key=value", help="arguments")
    ap.add_argument("--json", dest="json_args", help="arguments as a JSON object")
    ap.add_argument("--socket", help="socket path (default: as kilnd)")
    ap.add_argument("--timeout", type=float, help="seconds")
    ap.add_argument("--retries", type=int, default=0)
    ap.add_argument("--hosts", help="comma-separated host_list")
    ap.add_argument("--progress", action="store_true", help="print progress lines to stderr")
    ap.add_argument("--detach", action="store_true", help="run as a detached job")
    ap.add_argument("--attach", metavar="FILE", help="send FILE as the raw attachment")
    ap.add_argument("--output", metavar="FILE", help="write a reply attachment to FILE")
    ns = ap.parse_args(argv)

    action = ALIASES.get(ns.action, ns.action)
    args = parse_pairs(ns.pairs)
    if ns.json_args:
        try:
            extra = json.loads(ns.json_args)
        except ValueError as e:
            print(f"kiln: --json: {e}", file=sys.stderr)
            return 2
        if not isinstance(extra, dict):
            print("kiln: --json must be an object", file=sys.stderr)
            return 2
        args.update(extra)
    attachment = None
    if ns.attach:
        with open(ns.attach, "rb") as f:
            attachment = f.read()

    def show_progress(p: Dict[str, Any]) -> None:
        print(json.dumps(p), file=sys.stderr)

    try:
        with Client(ns.socket) as c:
            out: ProcedureOutput = c.call(
                action, args, timeout=ns.timeout, retries=ns.retries,
                host_list=ns.hosts.split(",") if ns.hosts else None, attachment=attachment,
                progress=show_progress if ns.progress else None, detach=ns.detach, check=False)
    except ConnectionLost as e:
        print(f"kiln: {e.message}", file=sys.stderr)
        return 3
    reply: Dict[str, Any] = {"job_id": out.job_id, "result": out.result, "message": out.message,
                             "failed_hosts": out.failed_hosts, "data": out.data}
    if out.error is not None:
        reply["error"] = out.error
    if out.attachment is not None:
        if ns.output:
            with open(ns.output, "wb") as f:
                f.write(out.attachment)
            reply["attachment"] = {"bytes": len(out.attachment), "written_to": ns.output}
        else:
            reply["attachment"] = {"bytes": len(out.attachment),
                                   "hint": "use --output FILE to save it"}
    print(json.dumps(reply, indent=2, ensure_ascii=False))
    return 0 if out.result != "error" else 1


if __name__ == "__main__":
    sys.exit(main())
