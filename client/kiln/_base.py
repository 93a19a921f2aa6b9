"""What Client and AsyncClient share: request building and the typed methods.

Every typed method (ping, pi, corpus_search, scene, ...) is written once, in
the family mixins, as "build the request, then shape the reply" through
``_call_then(action, args, post, ...)``.  Client runs it and returns the
value; AsyncClient returns a coroutine of the same value.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from .protocol import ProcedureInput, ProcedureOutput

ProgressFn = Callable[[Dict[str, Any]], Any]
Request = Union[ProcedureInput, Tuple[str, Optional[Dict[str, Any]]]]

# How long to wait for the daemon's `cancelled` replies after Ctrl-C or a
# task cancellation before giving up on the connection.
CANCEL_GRACE = 2.0


def _identity(out: ProcedureOutput) -> ProcedureOutput:
    return out


class ClientBase:
    """Shared state and helpers; see Client and AsyncClient."""

    path: str

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._id_lock = threading.Lock()

    def next_job_id(self) -> int:
        """A job_id not used before on this client (thread-safe)."""
        with self._id_lock:
            return next(self._ids)

    def _input(self, action: Union[str, ProcedureInput], args: Optional[Dict[str, Any]],
               timeout: Optional[float], retries: int, host_list: Optional[Sequence[str]],
               attachment: Optional[bytes], progress: bool, detach: bool) -> ProcedureInput:
        """The request for call(): a ProcedureInput is taken as given (its
        job_id replaced by a fresh one); otherwise one is built from the
        keywords.  Encoding it (ProcedureInput.encode) refuses values JSON
        cannot carry, before anything is sent."""
        if isinstance(action, ProcedureInput):
            if args is not None:
                raise TypeError("call(ProcedureInput, args): put the args in the ProcedureInput")
            req = action
            req.job_id = self.next_job_id()
            if progress:
                req.progress = True
        else:
            if not isinstance(action, str):
                raise TypeError(f"action must be a str or ProcedureInput, not {type(action).__name__}")
            if args is not None and not isinstance(args, dict):
                raise TypeError(f"args must be a dict, not {type(args).__name__}")
            if timeout is not None and (isinstance(timeout, bool)
                                        or not isinstance(timeout, (int, float))):
                raise TypeError("timeout must be a number of seconds")
            if host_list is not None and isinstance(host_list, (str, bytes)):
                raise TypeError("host_list must be a list of host names, not a string")
            req = ProcedureInput(self.next_job_id(), action, dict(args or {}), timeout, retries,
                                 list(host_list or []), progress, detach, attachment)
        return req

    def _inputs(self, requests: Iterable[Request]) -> List[ProcedureInput]:
        reqs: List[ProcedureInput] = []
        for r in requests:
            if isinstance(r, ProcedureInput):
                r.job_id = self.next_job_id()
                reqs.append(r)
            else:
                action, args = r
                reqs.append(self._input(action, args, None, 0, None, None, False, False))
        return reqs

    def _path(self, path: Any) -> str:
        """A path argument: resolved against the working directory when the
        daemon is local (it needs absolute paths), as given over ssh://."""
        if self.path.startswith("ssh://"):
            _need(path, str, "path")
            return str(path)
        return local_path(path)

    # Implemented by Client (returns post(output)) and AsyncClient (returns
    # a coroutine of it).  quiet=True turns KilnError/OSError into None.
    def _call_then(self, action: str, args: Optional[Dict[str, Any]],
                   post: Callable[[ProcedureOutput], Any], *, quiet: bool = False,
                   **kw: Any) -> Any:
        raise NotImplementedError

    # -- core actions ---------------------------------------------------------
    def ping(self) -> Dict[str, Any]:
        """{"version", "uptime_s", "pid"} of the daemon."""
        return self._call_then("ping", None, _data)

    def describe(self, action: Optional[str] = None) -> Dict[str, Any]:
        """Every action with its summary and args/data JSON Schemas
        ({"version", "actions": [...]}), or just the entry for `action`
        (raises kiln.UnknownAction if there is none)."""
        def pick(out: ProcedureOutput) -> Dict[str, Any]:
            if action is None:
                return out.data
            for a in out.data.get("actions", []):
                if a.get("name") == action:
                    return a
            from .errors import UnknownAction
            raise UnknownAction(f"no action {action!r} (try describe())")
        return self._call_then("describe", None, pick)

    def echo(self, text: str) -> str:
        """Returns text unchanged (a round trip)."""
        _need(text, str, "text")
        return self._call_then("echo", {"text": text}, lambda o: o.data["text"])

    def echo_int(self, value: int) -> int:
        """Returns the integer unchanged (a round trip of a JSON integer)."""
        _need_int(value, "value")
        return self._call_then("echo", {"int": value}, lambda o: o.data["int"])

    def double(self, x: int) -> int:
        """2 * x, computed by the daemon."""
        _need_int(x, "x")
        return self._call_then("double", {"x": x}, lambda o: o.data["x"])

    def vector_length(self, x: float, y: float, z: float) -> float:
        """The Euclidean length of (x, y, z)."""
        for k, v in (("x", x), ("y", y), ("z", z)):
            _need_number(v, k)
        return self._call_then("vector.length", {"x": x, "y": y, "z": z},
                               lambda o: o.data["length"])

    def stats(self) -> Dict[str, Any]:
        """Daemon counters: connections, requests_served, in_flight, rss_bytes, ..."""
        return self._call_then("stats", None, _data)

    def sleep(self, seconds: float, steps: int = 1, *, timeout: Optional[float] = None,
              progress: Optional[ProgressFn] = None) -> Dict[str, Any]:
        """Sleeps in the daemon (a test action), reporting progress per step."""
        _need_number(seconds, "seconds")
        return self._call_then("sleep", {"seconds": seconds, "steps": steps}, _data,
                               timeout=timeout, progress=progress)


def _data(out: ProcedureOutput) -> Dict[str, Any]:
    return out.data


def _need(value: Any, typ: Any, name: str) -> None:
    if not isinstance(value, typ):
        want = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
        raise TypeError(f"{name} must be {want}, not {type(value).__name__}")


def _need_int(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


def _need_number(value: Any, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")


def local_path(path: str) -> str:
    """A path argument for the daemon: relative paths are resolved against
    the client's working directory (the daemon needs absolute ones)."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, not {type(path).__name__}")
    return os.path.abspath(os.fspath(path))
