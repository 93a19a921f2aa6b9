"""The `kiln` command (also `python3 -m kiln`): one request to kilnd.

    kiln ping
    kiln pi digits=50
    kiln text.short_long text="a quick brown fox" min_length=3
    kiln scene.render --help                  # the action's summary and arguments
    kiln describe [ACTION]                    # every action, or one
    kiln corpus.load --json '{"name": "n", "paths": ["/data/a.txt"]}'

Prints the reply as JSON.  key=value arguments are typed from the action's
schema (text=5 sends the string "5" when text is a string; digits=50 an
integer; lists and objects as JSON); --json gives them as one object
instead (the same key in both is an error).

Exit status: 0 success (and partial), 1 an error reply, 2 a usage error,
3 kilnd cannot be reached, 4 a procedure failed on every host, 130 Ctrl-C.
On a terminal, long calls (pi, corpus loads, renders, procedures) draw a
progress bar on stderr.

Shorthands: `seal` is corpus.seal, e.g.
    kiln seal dir=/data/diary out_dir=/data/sealed passphrase=...
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any, Dict, List, Optional

from .client import Client
from .errors import ConnectError, ConnectionLost, KilnError
from .protocol import ProcedureOutput

ALIASES = {"seal": "corpus.seal"}
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_CONNECT, EXIT_FAILURE, EXIT_INTERRUPT = 0, 1, 2, 3, 4, 130


class UsageError(Exception):
    pass


def _type_names(schema: Dict[str, Any]) -> List[str]:
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    if isinstance(t, list):
        return [x for x in t if isinstance(x, str)]
    names: List[str] = []
    for alt in schema.get("oneOf", []) + schema.get("anyOf", []):
        if isinstance(alt, dict):
            names += _type_names(alt)
    if "enum" in schema and all(isinstance(e, str) for e in schema["enum"]):
        names.append("string")
    return names


def typed_value(key: str, text: str, schema: Optional[Dict[str, Any]]) -> Any:
    """`text` as the type the action's schema gives `key`: a string stays a
    string (text=5 sends "5"); integer, number and boolean are parsed;
    arrays and objects are JSON.  A value that does not parse as its type
    is sent as the string, so the daemon's invalid_args reply names the
    argument.  Without a schema for the key: JSON when it parses, else the
    string."""
    types = set(_type_names(schema or {}))
    if "string" in types and not (types - {"string"} and text[:1] in '[{'):
        return text
    if types:
        try:
            v = json.loads(text)
        except ValueError:
            if "boolean" in types and text.lower() in ("yes", "no", "on", "off"):
                return text.lower() in ("yes", "on")
            return text
        if "integer" in types and isinstance(v, int) and not isinstance(v, bool):
            return v
        if "number" in types and isinstance(v, (int, float)) and not isinstance(v, bool):
            return v
        if "boolean" in types and isinstance(v, bool):
            return v
        if "array" in types and isinstance(v, list):
            return v
        if "object" in types and isinstance(v, dict):
            return v
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: List[str], props: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """key=value words as arguments, typed from the args schema's properties."""
    args: Dict[str, Any] = {}
    for p in pairs:
        if "=" not in p:
            raise UsageError(f"expected key=value, got {p!r}")
        k, v = p.split("=", 1)
        if k in args:
            raise UsageError(f"{k} given twice")
        args[k] = typed_value(k, v, (props or {}).get(k))
    return args


def _action_help(entry: Dict[str, Any]) -> str:
    lines = [f"{entry['name']}: {entry.get('summary', '')}".rstrip()]
    schema = entry.get("args") or {}
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    if entry.get("hosts"):
        lines.append("  runs on hosts: kiln ACTION --hosts h1,h2 [--retries N] [--timeout S]")
    if props:
        lines.append("arguments (key=value, typed from the schema):")
        for k, v in props.items():
            t = "/".join(_type_names(v)) or "any"
            extra = []
            if k in required:
                extra.append("required")
            for lim in ("minimum", "maximum", "default"):
                if lim in v:
                    extra.append(f"{lim} {json.dumps(v[lim])}")
            if "enum" in v:
                extra.append("one of " + ", ".join(json.dumps(e) for e in v["enum"]))
            desc = v.get("description", "")
            lines.append(f"  {k}: {t}" + (f" ({'; '.join(extra)})" if extra else "")
                         + (f" — {desc}" if desc else ""))
    else:
        lines.append("no arguments")
    lines.append("argument schema:")
    lines.append(json.dumps(schema, indent=2, ensure_ascii=False))
    return "\n".join(lines)


def _bar(label: str) -> Any:
    width = 30

    def show(p: Dict[str, Any]) -> None:
        done, total = p.get("done", 0), p.get("total") or 0
        if total:
            filled = int(width * min(done, total) / total)
            sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] "
                             f"{100 * min(done, total) // total:3d}%")
        else:
            sys.stderr.write(f"\r{label} {done}")
        sys.stderr.flush()
    return show


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="kiln", add_help=False, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Send one request to kilnd and print the reply as JSON.",
        epilog="`kiln describe` lists the actions; `kiln ACTION --help` shows one.\n"
               "Exit status: 0 ok, 1 error reply, 2 usage, 3 no daemon, 4 failure, 130 Ctrl-C.")
    ap.add_argument("action", nargs="?", help="action name (try: describe)")
    ap.add_argument("pairs", nargs="*", metavar="key=value", help="arguments")
    ap.add_argument("-h", "--help", action="store_true", help="this help, or the action's")
    ap.add_argument("--json", dest="json_args", help="arguments as a JSON object")
    ap.add_argument("--socket", help="socket path or ssh://[user@]host[:port][/socket] "
                                     "(default: $KILN_SOCKET or kilnd's default)")
    ap.add_argument("--timeout", type=float, help="seconds")
    ap.add_argument("--retries", type=int, default=0)
    ap.add_argument("--hosts", help="comma-separated host_list")
    ap.add_argument("--progress", action="store_true", help="print progress lines (JSON) to stderr")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar on a terminal")
    ap.add_argument("--detach", action="store_true", help="run as a detached job")
    ap.add_argument("--attach", metavar="FILE", help="send FILE as the raw attachment")
    ap.add_argument("--output", metavar="FILE", help="write a reply attachment to FILE")
    ap.add_argument("--version", action="store_true", help="print the client's version")
    return ap


def _run(argv: Optional[List[str]]) -> int:
    ap = _parser()
    ns = ap.parse_args(argv)
    if ns.version:
        from ._version import __version__
        print(f"kiln {__version__}")
        return EXIT_OK
    if ns.action is None:
        if ns.help:
            ap.print_help()
            return EXIT_OK
        ap.print_usage(sys.stderr)
        print("kiln: an action is required (try: kiln describe)", file=sys.stderr)
        return EXIT_USAGE
    action = ALIASES.get(ns.action, ns.action)
    with Client(ns.socket) as c:
        if action == "describe" and not ns.help:
            if ns.pairs and "=" not in ns.pairs[0]:
                print(json.dumps(c.describe(ns.pairs[0]), indent=2, ensure_ascii=False))
                return EXIT_OK
        entry: Optional[Dict[str, Any]] = None
        try:
            entry = c.describe(action)
        except KilnError:
            if ns.help:
                raise UsageError(f"no action {action!r} (try: kiln describe)")
        if ns.help:
            assert entry is not None
            print(_action_help(entry))
            return EXIT_OK
        props = ((entry or {}).get("args") or {}).get("properties") or {}
        args = parse_pairs(ns.pairs, props)
        if ns.json_args is not None:
            try:
                extra = json.loads(ns.json_args)
            except ValueError as e:
                raise UsageError(f"--json: {e}") from None
            if not isinstance(extra, dict):
                raise UsageError("--json must be a JSON object")
            both = sorted(set(extra) & set(args))
            if both:
                raise UsageError(f"{', '.join(both)} given both in --json and as key=value")
            args.update(extra)
        attachment = None
        if ns.attach:
            with open(ns.attach, "rb") as f:
                attachment = f.read()
        progress = None
        bar = False
        if ns.progress:
            def progress(p: Dict[str, Any]) -> None:
                print(json.dumps(p), file=sys.stderr, flush=True)
        elif not ns.no_progress and sys.stderr.isatty():
            progress = _bar(action)
            bar = True
        try:
            out: ProcedureOutput = c.call(
                action, args, timeout=ns.timeout, retries=ns.retries,
                host_list=ns.hosts.split(",") if ns.hosts else None, attachment=attachment,
                progress=progress, detach=ns.detach, check=False)
        finally:
            if bar:
                sys.stderr.write("\r\033[K")
                sys.stderr.flush()
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
    sys.stdout.flush()
    if out.result == "error":
        return EXIT_ERROR
    if out.result == "failure":
        return EXIT_FAILURE
    return EXIT_OK


def main(argv: Optional[List[str]] = None) -> int:
    """The console script: returns the exit status (no tracebacks for
    Ctrl-C, a closed pipe, a missing daemon or bad arguments)."""
    try:
        return _run(argv)
    except UsageError as e:
        print(f"kiln: {e}", file=sys.stderr)
        return EXIT_USAGE
    except (TypeError, ValueError) as e:
        # Local refusals (NaN, lone surrogates, wrong types) and bad files.
        if isinstance(e, KilnError):
            print(f"kiln: {e}", file=sys.stderr)
            return EXIT_ERROR
        print(f"kiln: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ConnectError as e:
        print(f"kiln: {e.message}", file=sys.stderr)
        return EXIT_CONNECT
    except ConnectionLost as e:
        print(f"kiln: {e.message}", file=sys.stderr)
        return EXIT_CONNECT
    except KilnError as e:
        print(f"kiln: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("kiln: interrupted (the request was cancelled)", file=sys.stderr)
        return EXIT_INTERRUPT
    except BrokenPipeError:
        # The reader went away (kiln ... | head): not an error of ours.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return 128 + signal.SIGPIPE
    except OSError as e:
        print(f"kiln: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
