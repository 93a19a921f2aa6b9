"""kiln.Client: a connection to kilnd.

    with kiln.Client() as c:
        print(c.ping())
        out = c.call("vector.length", {"x": 3, "y": 4, "z": 12})

Replies may arrive in any order; the client matches them by job_id, so
call_many() can pipeline a batch on one connection.  Ctrl-C during a call
sends `cancel` for it and raises KeyboardInterrupt.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import _fds
from ._compute import ComputeMixin
from ._corpus import CorpusMixin
from ._jobs import JobsMixin
from ._scene import SceneMixin
from .errors import ConnectionLost, KilnError
from .protocol import ProcedureInput, ProcedureOutput, default_socket_path

ProgressFn = Callable[[Dict[str, Any]], None]
Request = Union[ProcedureInput, Tuple[str, Optional[Dict[str, Any]]]]

_RECV = 1 << 18
# How long to wait for the daemon's `cancelled` reply after Ctrl-C.
_CANCEL_GRACE = 2.0


class Client(ComputeMixin, CorpusMixin, SceneMixin, JobsMixin):
    """A connection to kilnd over its Unix socket (a context manager)."""

    def __init__(self, path: Optional[str] = None, *, connect_timeout: float = 5.0,
                 pass_fds: bool = True) -> None:
        """pass_fds: open the files requests name here and pass the
        descriptors (SCM_RIGHTS), so kilnd uses them with this process's
        rights; False sends plain paths (kilnd's path_roots then apply)."""
        self.path = path or default_socket_path()
        self.pass_fds = pass_fds
        self._ids = itertools.count(1)
        self._buf = bytearray()
        self._replies: Dict[int, ProcedureOutput] = {}
        self._progress: Dict[int, ProgressFn] = {}
        self._sock: Optional[socket.socket] = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._sock.settimeout(connect_timeout)
            self._sock.connect(self.path)
            self._sock.settimeout(None)
        except OSError as e:
            self._sock.close()
            self._sock = None
            raise ConnectionLost(f"cannot connect to kilnd at {self.path}: {e.strerror or e}") from e

    # -- lifetime -------------------------------------------------------------
    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()

    # -- wire -----------------------------------------------------------------
    def next_job_id(self) -> int:
        return next(self._ids)

    def _send(self, req: ProcedureInput) -> None:
        if self._sock is None:
            raise ConnectionLost("client is closed")
        fds: List[int] = []
        if self.pass_fds:
            req.fd_paths, fds = _fds.open_args(req.action, req.args)
        try:
            line = req.encode()
            if fds:
                # The descriptors travel with the line's first bytes.
                sent = socket.send_fds(self._sock, [line], fds)
                self._sock.sendall(line[sent:])
            else:
                self._sock.sendall(line)
            if req.attachment is not None:
                self._sock.sendall(memoryview(req.attachment))
        except OSError as e:
            raise ConnectionLost(f"send failed: {e}") from e
        finally:
            for fd in fds:
                os.close(fd)

    def _fill(self) -> None:
        assert self._sock is not None
        try:
            chunk = self._sock.recv(_RECV)
        except OSError as e:
            raise ConnectionLost(f"receive failed: {e}") from e
        if not chunk:
            raise ConnectionLost("kilnd closed the connection")
        self._buf += chunk

    def _read_one(self) -> None:
        """Reads one reply or progress line (and its attachment) and files it."""
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                break
            self._fill()
        line = bytes(self._buf[:nl])
        del self._buf[:nl + 1]
        obj = json.loads(line)
        attachment = None
        n = obj.get("raw")
        if isinstance(n, int):
            while len(self._buf) < n:
                self._fill()
            attachment = bytes(self._buf[:n])
            del self._buf[:n]
        elif "raw_b64" in obj:
            import base64
            attachment = base64.b64decode(obj["raw_b64"])
        job_id = obj.get("job_id")
        if obj.get("result") == "progress":
            fn = self._progress.get(job_id)
            if fn is not None:
                fn(obj.get("progress") or {})
            return
        if job_id is None:
            # The daemon could not parse a request of ours: a client bug.
            out = ProcedureOutput.from_dict(obj)
            raise KilnError(out.message, code=(out.error or {}).get("code", "internal"),
                            detail=(out.error or {}).get("detail"), output=out)
        self._replies[job_id] = ProcedureOutput.from_dict(obj, attachment)

    def _wait(self, job_id: int) -> ProcedureOutput:
        try:
            while job_id not in self._replies:
                self._read_one()
        except KeyboardInterrupt:
            self._cancel_after_interrupt(job_id)
            raise
        self._progress.pop(job_id, None)
        return self._replies.pop(job_id)

    def _cancel_after_interrupt(self, job_id: int) -> None:
        """Asks the daemon to stop the interrupted request and reads its
        replies, so the connection stays usable."""
        if self._sock is None:
            return
        cancel_id = self.next_job_id()
        try:
            self._send(ProcedureInput(cancel_id, "cancel", {"target": job_id}))
            self._sock.settimeout(_CANCEL_GRACE)
            while job_id not in self._replies or cancel_id not in self._replies:
                self._read_one()
            self._replies.pop(job_id, None)
            self._replies.pop(cancel_id, None)
            self._sock.settimeout(None)
        except (OSError, KilnError, ValueError):
            self.close()

    # -- calls ----------------------------------------------------------------
    def call(self, action: str, args: Optional[Dict[str, Any]] = None, *,
             timeout: Optional[float] = None, retries: int = 0,
             host_list: Optional[Sequence[str]] = None, attachment: Optional[bytes] = None,
             progress: Optional[ProgressFn] = None, detach: bool = False,
             check: bool = True) -> ProcedureOutput:
        """Sends one request and waits for its reply.  Raises the KilnError
        subclass of the error code on result "error" (unless check=False)."""
        req = ProcedureInput(self.next_job_id(), action, dict(args or {}), timeout, retries,
                             list(host_list or []), progress is not None, detach, attachment)
        if progress is not None:
            self._progress[req.job_id] = progress
        self._send(req)
        out = self._wait(req.job_id)
        return out.raise_for_error() if check else out

    def call_many(self, requests: Iterable[Request], *, window: int = 128,
                  check: bool = True) -> List[ProcedureOutput]:
        """Pipelines requests ((action, args) pairs or ProcedureInput objects,
        whose job_id is replaced) with at most `window` in flight, and returns
        the replies in request order.  With check=True the first error is
        raised after every reply has been read."""
        reqs: List[ProcedureInput] = []
        for r in requests:
            if isinstance(r, ProcedureInput):
                r.job_id = self.next_job_id()
                reqs.append(r)
            else:
                reqs.append(ProcedureInput(self.next_job_id(), r[0], dict(r[1] or {})))
        outs: List[ProcedureOutput] = []
        sent = 0
        pending = bytearray()
        for i, req in enumerate(reqs):
            # Keep at most `window` requests unanswered; batch what is sent.
            while sent - len(outs) >= window:
                if pending:
                    self._send_bytes(pending)
                    pending.clear()
                outs.append(self._wait(reqs[len(outs)].job_id))
            if req.attachment is None:
                pending += req.encode()
            else:
                self._send_bytes(pending + req.encode())
                pending.clear()
                self._send_bytes(req.attachment)
            sent += 1
        if pending:
            self._send_bytes(pending)
        while len(outs) < len(reqs):
            outs.append(self._wait(reqs[len(outs)].job_id))
        if check:
            for o in outs:
                o.raise_for_error()
        return outs

    def _send_bytes(self, data: Union[bytes, bytearray]) -> None:
        if self._sock is None:
            raise ConnectionLost("client is closed")
        try:
            self._sock.sendall(data)
        except OSError as e:
            raise ConnectionLost(f"send failed: {e}") from e

    # -- core actions ---------------------------------------------------------
    def ping(self) -> Dict[str, Any]:
        """{"version", "uptime_s", "pid"}."""
        return self.call("ping").data

    def describe(self) -> Dict[str, Any]:
        return self.call("describe").data

    def echo(self, text: str) -> str:
        return self.call("echo", {"text": text}).data["text"]

    def echo_int(self, value: int) -> int:
        return self.call("echo", {"int": value}).data["int"]

    def double(self, x: int) -> int:
        return self.call("double", {"x": x}).data["x"]

    def vector_length(self, x: float, y: float, z: float) -> float:
        return self.call("vector.length", {"x": x, "y": y, "z": z}).data["length"]

    def stats(self) -> Dict[str, Any]:
        return self.call("stats").data

    def sleep(self, seconds: float, steps: int = 1, *, timeout: Optional[float] = None,
              progress: Optional[ProgressFn] = None) -> Dict[str, Any]:
        return self.call("sleep", {"seconds": seconds, "steps": steps}, timeout=timeout,
                         progress=progress).data
