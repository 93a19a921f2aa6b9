"""kiln.Client: the thread-safe client for kilnd.

    with kiln.Client() as c:
        print(c.ping())
        out = c.call("vector.length", {"x": 3, "y": 4, "z": 12})
        print(out.data["length"])          # 13.0

One Client may be shared by any number of threads: their requests are
multiplexed on its one connection and the replies matched by job_id, so
threads never wait for each other's work.  Progress callbacks run in the
thread that made the call.  call_many() pipelines a batch.  Ctrl-C during a
call (or call_many) sends `cancel` for every outstanding request and raises
KeyboardInterrupt; the connection stays usable.  If the daemon closes the
connection or restarts, the next call reconnects.
"""

from __future__ import annotations

import itertools
import os
import select
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from . import _fds
from ._base import CANCEL_GRACE, ClientBase, ProgressFn, Request
from ._compute import ComputeMixin
from ._corpus import CorpusMixin
from ._jobs import JobsMixin
from ._scene import SceneMixin
from ._transport import Transport, open_transport
from .errors import ConnectError, ConnectionLost, KilnError, error_for
from .protocol import (Decoder, ProcedureInput, ProcedureOutput, closes_connection,
                       default_socket_path)

__all__ = ["Client"]

_RECV = 1 << 18
# A connection quiet for this long is checked for a close by kilnd (a
# non-blocking peek) before it carries a request; busier ones need not be.
_IDLE_CHECK = 0.05


class _Pending:
    """One request waiting for its reply.  Guarded by Client._cv."""

    __slots__ = ("job_id", "gen", "seq", "progress", "events", "out", "exc", "done")

    def __init__(self, job_id: int, gen: int, seq: int, progress: Optional[ProgressFn]) -> None:
        self.job_id = job_id
        self.gen = gen                    # the connection it was sent on
        self.seq = seq                    # send order, for errors without a job_id
        self.progress = progress
        self.events: List[Dict[str, Any]] = []
        self.out: Optional[ProcedureOutput] = None
        self.exc: Optional[BaseException] = None
        self.done = False


class Client(ComputeMixin, CorpusMixin, SceneMixin, JobsMixin, ClientBase):
    """A connection to kilnd (a context manager; thread-safe).

    ``target`` is a socket path or ``ssh://[user@]host[:port][/socket]``
    (default: $KILN_SOCKET, else the socket kilnd uses by default, see
    kiln.default_socket_path()).  Raises kiln.ConnectError (a
    ConnectionError) when the daemon cannot be reached, saying why.

    call() is the general request; the typed methods (ping, pi, short_long,
    text_stats, corpus_*, scene/load_scene, run_procedure, job_*) wrap it.
    Errors raise the kiln.KilnError subclass of their code (see kiln.errors).
    """

    def __init__(self, target: Optional[Union[str, "os.PathLike[str]"]] = None, *,
                 connect_timeout: float = 5.0, ssh_options: Optional[Sequence[str]] = None,
                 pass_fds: bool = True) -> None:
        """pass_fds: open the files requests name here and pass the
        descriptors (SCM_RIGHTS) with the request, so kilnd uses them with
        this process's rights; False sends plain paths (kilnd's path_roots
        then apply).  Over ssh:// paths are always sent plain."""
        ClientBase.__init__(self)
        self.pass_fds = pass_fds
        self.path = os.fspath(target) if target else default_socket_path()
        self.connect_timeout = connect_timeout
        self.ssh_options = list(ssh_options) if ssh_options is not None else None
        self._cv = threading.Condition()
        self._send_lock = threading.Lock()
        self._t: Optional[Transport] = None
        self._gen = 0
        self._seq = itertools.count()
        self._pending: Dict[int, _Pending] = {}
        self._reading = False
        self._decoder = Decoder()
        self._conn_error: Optional[ProcedureOutput] = None
        self._doomed = False  # kilnd said it closes this connection
        self._last_rx = 0.0   # time.monotonic() of the last bytes received
        self._unanswered = 0  # requests on the current connection without a reply
        self._closed = False
        with self._cv:
            self._connect()

    # -- lifetime -------------------------------------------------------------
    def close(self) -> None:
        """Closes the connection; requests still waiting raise ConnectionLost
        (the daemon cancels them).  Later calls raise ConnectionLost."""
        with self._cv:
            self._closed = True
            if self._t is not None:
                self._drop(self._t, ConnectionLost("the client was closed"))

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_t", None) is not None:
            try:
                self.close()
            except Exception:  # interpreter shutdown
                pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._t else "disconnected")
        return f"<kiln.Client {self.path} {state}>"

    # -- connection (all under self._cv) ---------------------------------------
    def _connect(self) -> None:
        t = open_transport(self.path, connect_timeout=self.connect_timeout,
                           ssh_options=self.ssh_options)
        if not t.local:
            self._handshake(t)
        self._t = t
        self._gen += 1
        self._decoder = Decoder()
        self._conn_error = None
        self._doomed = False

    def _handshake(self, t: Transport) -> None:
        """Over ssh the first request proves the bridge works, so a wrong
        host, key or socket is a ConnectError rather than a lost reply."""
        dec = Decoder()
        try:
            t.sock.settimeout(max(self.connect_timeout, 30.0))
            t.send(ProcedureInput(self.next_job_id(), "ping").encode())
            while True:
                data = t.sock.recv(_RECV)
                if not data:
                    break
                dec.feed(data)
                if dec.messages():
                    t.sock.settimeout(None)
                    return
        except (OSError, ValueError):
            pass
        err = t.ssh_stderr()
        t.close()
        raise ConnectError(f"cannot reach kilnd at {self.path}" + (f": {err}" if err else ""),
                           reason="other")

    def _ensure_connected(self) -> None:
        if self._closed:
            raise ConnectionLost("the client is closed")
        t = self._t
        if (t is not None and not self._reading and not self._awaiting() and
                (self._doomed or (time.monotonic() - self._last_rx > _IDLE_CHECK and t.peer_closed()))):
            # The daemon closed this idle connection (restart, idle limit).
            self._drop(t, ConnectionLost("kilnd closed the connection"))
        if self._t is None:
            self._connect()

    def _awaiting(self) -> bool:
        """True while a request sent on the current connection awaits its reply."""
        return self._unanswered > 0

    def _drop(self, t: Transport, exc: KilnError) -> None:
        """Closes connection t and fails every request still waiting on it.
        An error the daemon sent without a job_id (a line it could not
        parse, or one over max_line_bytes) goes to the earliest of them."""
        if self._t is not t:
            return
        self._t = None
        t.close()
        waiting = sorted((p for p in self._pending.values() if p.gen == self._gen and not p.done),
                         key=lambda p: p.seq)
        conn_error = self._conn_error
        for p in waiting:
            if conn_error is not None:
                err = conn_error.error or {}
                p.exc = error_for(str(err.get("code", "internal")), conn_error.message,
                                  detail=err.get("detail"), job_id=p.job_id, output=conn_error)
                conn_error = None
            else:
                p.exc = ConnectionLost(exc.message, job_id=p.job_id)
            p.done = True
        self._conn_error = None
        self._unanswered = 0
        self._cv.notify_all()

    def _file(self, obj: Dict[str, Any], attachment: Optional[bytes]) -> None:
        if closes_connection(obj):
            self._doomed = True
        job_id = obj.get("job_id")
        if job_id is None:
            self._conn_error = ProcedureOutput.from_dict(obj)
            return
        p = self._pending.get(job_id)
        if p is None or p.done:
            return
        if obj.get("result") == "progress":
            if p.progress is not None:
                p.events.append(obj.get("progress") or {})
            return
        p.out = ProcedureOutput.from_dict(obj, attachment)
        p.done = True
        self._unanswered -= 1

    # -- sending and waiting ---------------------------------------------------
    def _submit(self, reqs: Sequence[ProcedureInput],
                progress: Optional[ProgressFn] = None) -> List[_Pending]:
        """Encodes (refusing bad values before anything is sent), registers
        and sends requests; one write for a run of lines without attachments.
        Files the requests name are opened here and their descriptors sent
        with the line (_fds), closed once sent."""
        fds_of: List[List[int]] = []
        try:
            if self.pass_fds and not self.path.startswith("ssh://"):
                for r in reqs:
                    r.fd_paths, fds = _fds.open_args(r.action, r.args or {})
                    fds_of.append(fds)
            return self._submit_encoded(reqs, fds_of, progress)
        finally:
            for fds in fds_of:
                for fd in fds:
                    os.close(fd)

    def _submit_encoded(self, reqs: Sequence[ProcedureInput], fds_of: List[List[int]],
                        progress: Optional[ProgressFn]) -> List[_Pending]:
        lines = [r.encode() for r in reqs]
        with self._cv:
            self._ensure_connected()
            t = self._t
            assert t is not None
            pend = []
            for r in reqs:
                if r.job_id in self._pending:
                    raise ValueError(f"job_id {r.job_id} is already in flight on this client")
                p = _Pending(r.job_id, self._gen, next(self._seq), progress)
                self._pending[r.job_id] = p
                pend.append(p)
            self._unanswered += len(pend)
        try:
            with self._send_lock:
                run: List[bytes] = []
                for i, (r, line) in enumerate(zip(reqs, lines)):
                    if fds_of and fds_of[i] and t.local:
                        # The descriptors travel with the line's first bytes.
                        if run:
                            t.send(b"".join(run))
                            run = []
                        t.send_fds(line, fds_of[i])
                        if r.attachment is not None:
                            t.send(memoryview(r.attachment))
                        continue
                    run.append(line)
                    if r.attachment is not None:
                        t.send(b"".join(run), memoryview(r.attachment))
                        run = []
                if run:
                    t.send(b"".join(run))
        except OSError as e:
            with self._cv:
                self._drop(t, ConnectionLost(f"send failed: {e.strerror or e}"))
        return pend

    def _send(self, req: ProcedureInput) -> None:
        """Sends one request without waiting (its reply: _wait(req.job_id))."""
        self._submit([req])

    def _wait(self, which: Union[int, _Pending], deadline: Optional[float] = None) -> ProcedureOutput:
        """Waits for a request's reply (raising ConnectionLost if the
        connection broke first).  Whichever waiting thread finds no reader
        reads for everyone; the others sleep until their reply is filed."""
        with self._cv:
            p = self._pending[which] if isinstance(which, int) else which
        while True:
            events: List[Dict[str, Any]] = []
            t: Optional[Transport] = None
            with self._cv:
                while True:
                    if p.events:
                        events, p.events = p.events, []
                        break
                    if p.done:
                        self._pending.pop(p.job_id, None)
                        if p.exc is not None:
                            raise p.exc
                        assert p.out is not None
                        return p.out
                    if not self._reading and self._t is not None:
                        self._reading = True
                        t = self._t
                        break
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        raise TimeoutError("no reply in time")
                    self._cv.wait(left)
            for ev in events:
                assert p.progress is not None
                p.progress(ev)
            if t is not None:
                self._read_for_all(t, deadline)

    def _read_for_all(self, t: Transport, deadline: Optional[float]) -> None:
        """One receive on t as the reader; files what arrived."""
        data: Optional[bytes] = None
        failure: Optional[str] = None
        try:
            if deadline is not None:
                left = max(0.0, deadline - time.monotonic())
                if not select.select([t.sock], [], [], left)[0]:
                    return
            data = t.sock.recv(_RECV)
            if not data:
                failure = "kilnd closed the connection"
        except OSError as e:
            failure = f"receive failed: {e.strerror or e}"
        finally:
            with self._cv:
                self._reading = False
                if failure is not None:
                    self._drop(t, ConnectionLost(failure))
                elif data and self._t is t:
                    self._last_rx = time.monotonic()
                    try:
                        self._decoder.feed(data)
                        for obj, attachment in self._decoder.messages():
                            self._file(obj, attachment)
                    except (ValueError, AttributeError) as e:
                        self._drop(t, ConnectionLost(f"unreadable reply from kilnd: {e}"))
                self._cv.notify_all()

    def _cancel(self, pend: Sequence[_Pending]) -> None:
        """Sends `cancel` for every request of `pend` still running and reads
        their replies (for at most CANCEL_GRACE seconds; then the connection
        is closed, which cancels them too)."""
        with self._cv:
            targets = [p for p in pend if not p.done and p.gen == self._gen and self._t is not None]
            for p in pend:
                if p.done:  # answered, but nobody will collect it now
                    self._pending.pop(p.job_id, None)
        if not targets:
            return
        deadline = time.monotonic() + CANCEL_GRACE
        try:
            cancels = self._submit([ProcedureInput(self.next_job_id(), "cancel", {"target": p.job_id})
                                    for p in targets])
            for p in targets + cancels:
                try:
                    self._wait(p, deadline)
                except KilnError:
                    pass
        except (TimeoutError, KilnError):
            with self._cv:
                if self._t is not None:
                    self._drop(self._t, ConnectionLost("cancelled requests did not stop in time"))
                for p in targets:
                    self._pending.pop(p.job_id, None)

    # -- calls ----------------------------------------------------------------
    def call(self, action: Union[str, ProcedureInput], args: Optional[Dict[str, Any]] = None, *,
             timeout: Optional[float] = None, retries: int = 0,
             host_list: Optional[Sequence[str]] = None, attachment: Optional[bytes] = None,
             progress: Optional[ProgressFn] = None, detach: bool = False,
             check: bool = True) -> ProcedureOutput:
        """Sends one request and waits for its reply.

        action: an action name (see describe()) with its `args`, or a whole
        kiln.ProcedureInput (its job_id is replaced by a fresh one).
        timeout: seconds, enforced by the daemon (reply kiln.Timeout).
        retries, host_list: for host procedures.  attachment: raw bytes sent
        after the line.  progress: called with each progress dict
        ({"done", "total", ...}) in this thread.  detach: start a daemon-wide
        job (reply "accepted", data["job"]).  check: raise the KilnError
        subclass of an error reply (default) instead of returning it.

        Refuses NaN, infinities, lone surrogates (ValueError) and non-JSON
        values (TypeError) before sending.  Ctrl-C cancels the request in
        the daemon and raises KeyboardInterrupt."""
        req = self._input(action, args, timeout, retries, host_list, attachment,
                          progress is not None, detach)
        p = self._submit([req], progress)[0]
        try:
            out = self._wait(p)
        except BaseException as e:
            if not isinstance(e, KilnError):
                self._cancel([p])
            raise
        return out.raise_for_error() if check else out

    def call_many(self, requests: Iterable[Request], *, window: int = 128,
                  check: bool = True) -> List[ProcedureOutput]:
        """Pipelines requests ((action, args) pairs or ProcedureInput objects,
        whose job_id is replaced) with at most `window` in flight, and returns
        the replies in request order.  With check=True the first error is
        raised after every reply has been read.  Ctrl-C cancels every
        request of the batch still running and raises KeyboardInterrupt."""
        if window < 1:
            raise ValueError("window must be at least 1")
        reqs = self._inputs(requests)
        pend: List[_Pending] = []
        outs: List[ProcedureOutput] = []
        # Refill the window in chunks (one write each), not per reply.
        chunk = max(1, window // 4)
        try:
            while len(outs) < len(reqs):
                room = window - (len(pend) - len(outs))
                left = len(reqs) - len(pend)
                if left and room >= min(left, chunk):
                    pend += self._submit(reqs[len(pend):len(pend) + min(room, left)])
                else:
                    outs.append(self._wait(pend[len(outs)]))
        except BaseException as e:
            if not isinstance(e, ConnectionLost):
                self._cancel(pend[len(outs):])
            raise
        if check:
            for o in outs:
                o.raise_for_error()
        return outs

    def _call_then(self, action: str, args: Optional[Dict[str, Any]],
                   post: Callable[[ProcedureOutput], Any], *, quiet: bool = False,
                   **kw: Any) -> Any:
        if quiet:
            try:
                return post(self.call(action, args, **kw))
            except (KilnError, OSError):
                return None
        return post(self.call(action, args, **kw))
