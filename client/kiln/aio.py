"""kiln.AsyncClient: the asyncio client for kilnd.

    async def main():
        async with kiln.AsyncClient() as c:
            print(await c.ping())
            digits = await asyncio.gather(*(c.pi(n) for n in range(100)))
            job = await c.stream("pi", {"digits": 10**7})
            async for p in job:                     # progress dicts
                print(p["done"], "/", p["total"])
            out = await job                         # the ProcedureOutput

Every method of kiln.Client exists here as a coroutine with the same
arguments and results.  Any number of tasks share the one connection;
replies are matched by job_id.  Cancelling a task that awaits a call (or
call_many, or a stream) sends `cancel` for its requests to the daemon.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from typing import Any, AsyncIterator, Callable, Dict, Generator, Iterable, List, Optional, \
    Sequence, Union

from ._base import ClientBase, ProgressFn, Request
from ._compute import ComputeMixin
from ._corpus import CorpusMixin
from ._jobs import JobsMixin
from ._scene import SceneMixin
from ._transport import Transport, open_transport
from .errors import ConnectError, ConnectionLost, KilnError, error_for
from .protocol import (Decoder, ProcedureInput, ProcedureOutput, closes_connection,
                       default_socket_path)

__all__ = ["AsyncClient", "AsyncCall"]

_RECV = 1 << 18
_END = object()


class _APending:
    __slots__ = ("job_id", "seq", "future", "progress", "queue")

    def __init__(self, job_id: int, seq: int, future: "asyncio.Future[ProcedureOutput]",
                 progress: Optional[ProgressFn], queue: Optional["asyncio.Queue[Any]"]) -> None:
        self.job_id = job_id
        self.seq = seq
        self.future = future
        self.progress = progress
        self.queue = queue


class AsyncCall:
    """A request in flight (from AsyncClient.stream): ``async for`` yields
    its progress dicts until it ends; ``await`` gives its ProcedureOutput
    (raising the KilnError subclass of an error reply unless check=False).
    Cancelling the awaiting task, or ``await call.cancel()``, cancels it in
    the daemon."""

    def __init__(self, client: "AsyncClient", pending: _APending, check: bool) -> None:
        self._client = client
        self._p = pending
        self._check = check
        self.job_id = pending.job_id

    def __aiter__(self) -> AsyncIterator[Dict[str, Any]]:
        return self._progress()

    async def _progress(self) -> AsyncIterator[Dict[str, Any]]:
        assert self._p.queue is not None
        while True:
            item = await self._p.queue.get()
            if item is _END:
                return
            yield item

    async def result(self) -> ProcedureOutput:
        try:
            out = await asyncio.shield(self._p.future)
        except asyncio.CancelledError:
            if not self._p.future.done():
                self._client._send_cancel([self._p])
            raise
        return out.raise_for_error() if self._check else out

    def __await__(self) -> Generator[Any, None, ProcedureOutput]:
        return self.result().__await__()

    async def cancel(self) -> None:
        """Asks the daemon to cancel this request (its result then raises
        kiln.Cancelled)."""
        if not self._p.future.done():
            self._client._send_cancel([self._p])


class AsyncClient(ComputeMixin, CorpusMixin, SceneMixin, JobsMixin, ClientBase):
    """An asyncio connection to kilnd: ``async with kiln.AsyncClient(target)
    as c``.  target as for kiln.Client (a socket path or ssh://...).  The
    connection is opened on first use (or ``await c.connect()``) and reopened
    after the daemon closes it or restarts."""

    is_async = True

    def __init__(self, target: Optional[Union[str, "os.PathLike[str]"]] = None, *,
                 connect_timeout: float = 5.0, ssh_options: Optional[Sequence[str]] = None) -> None:
        ClientBase.__init__(self)
        self.path = os.fspath(target) if target else default_socket_path()
        self.connect_timeout = connect_timeout
        self.ssh_options = list(ssh_options) if ssh_options is not None else None
        self._t: Optional[Transport] = None
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None
        self._read_task: Optional["asyncio.Task[None]"] = None
        self._pending: Dict[int, _APending] = {}
        self._seq = 0
        self._conn_error: Optional[ProcedureOutput] = None
        self._doomed = False  # kilnd said it closes this connection
        self._lock: Optional[asyncio.Lock] = None
        self._drain_lock: Optional[asyncio.Lock] = None
        self._closed = False

    # -- lifetime -------------------------------------------------------------
    async def connect(self) -> "AsyncClient":
        """Opens the connection now (raises kiln.ConnectError if kilnd
        cannot be reached); returns self."""
        await self._ensure()
        return self

    async def __aenter__(self) -> "AsyncClient":
        return await self.connect()

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Closes the connection; calls still waiting raise ConnectionLost."""
        self._closed = True
        self._disconnect(ConnectionLost("the client was closed"))
        task, self._read_task = self._read_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("connected" if self._t else "disconnected")
        return f"<kiln.AsyncClient {self.path} {state}>"

    async def _ensure(self) -> None:
        if self._closed:
            raise ConnectionLost("the client is closed")
        if self._lock is None:
            self._lock = asyncio.Lock()
            self._drain_lock = asyncio.Lock()
        if self._t is not None and self._doomed and not self._pending:
            self._disconnect(ConnectionLost("kilnd closed the connection"))
        if self._t is not None:
            return
        async with self._lock:
            if self._t is not None:
                return
            loop = asyncio.get_running_loop()
            t = await loop.run_in_executor(None, lambda: open_transport(
                self.path, connect_timeout=self.connect_timeout, ssh_options=self.ssh_options))
            t.sock.setblocking(False)
            reader, writer = await asyncio.open_unix_connection(sock=t.sock, limit=_RECV)
            self._t, self._reader, self._writer = t, reader, writer
            self._conn_error = None
            self._doomed = False
            self._read_task = loop.create_task(self._read_loop(t, reader))
            if not t.local:
                await self._handshake(t)

    async def _handshake(self, t: Transport) -> None:
        try:
            await asyncio.wait_for(self.call("ping"), max(self.connect_timeout, 30.0))
            return
        except (KilnError, OSError, asyncio.TimeoutError):
            pass
        self._disconnect(ConnectionLost("ssh bridge failed"))
        err = await asyncio.get_running_loop().run_in_executor(None, t.ssh_stderr)
        raise ConnectError(f"cannot reach kilnd at {self.path}" + (f": {err}" if err else ""))

    def _disconnect(self, exc: KilnError) -> None:
        """Closes the connection and fails every request waiting on it (an
        error sent without a job_id goes to the earliest, as in Client)."""
        t, self._t = self._t, None
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None
        if t is not None:
            t.close()
        conn_error, self._conn_error = self._conn_error, None
        for p in sorted(self._pending.values(), key=lambda p: p.seq):
            if p.future.done():
                continue
            if conn_error is not None:
                err = conn_error.error or {}
                p.future.set_exception(error_for(
                    str(err.get("code", "internal")), conn_error.message,
                    detail=err.get("detail"), job_id=p.job_id, output=conn_error))
                conn_error = None
            else:
                p.future.set_exception(ConnectionLost(exc.message, job_id=p.job_id))
            p.future.exception()  # marks it retrieved: nobody may be waiting
            if p.queue is not None:
                p.queue.put_nowait(_END)
        self._pending.clear()

    async def _read_loop(self, t: Transport, reader: asyncio.StreamReader) -> None:
        dec = Decoder()
        reason = "kilnd closed the connection"
        try:
            while True:
                data = await reader.read(_RECV)
                if not data:
                    break
                dec.feed(data)
                for obj, attachment in dec.messages():
                    self._file(obj, attachment)
        except (OSError, ValueError, AttributeError) as e:
            reason = f"receive failed: {e}"
        if self._t is t:
            self._disconnect(ConnectionLost(reason))

    def _file(self, obj: Dict[str, Any], attachment: Optional[bytes]) -> None:
        if closes_connection(obj):
            self._doomed = True
        job_id = obj.get("job_id")
        if job_id is None:
            self._conn_error = ProcedureOutput.from_dict(obj)
            return
        p = self._pending.get(job_id)
        if p is None:
            return
        if obj.get("result") == "progress":
            ev = obj.get("progress") or {}
            if p.progress is not None:
                r = p.progress(ev)
                if inspect.isawaitable(r):
                    asyncio.ensure_future(r)
            if p.queue is not None:
                p.queue.put_nowait(ev)
            return
        del self._pending[job_id]
        if not p.future.done():
            p.future.set_result(ProcedureOutput.from_dict(obj, attachment))
        if p.queue is not None:
            p.queue.put_nowait(_END)

    # -- sending ----------------------------------------------------------------
    def _write(self, *buffers: Any) -> None:
        """The one place requests are written (line, then attachment)."""
        assert self._writer is not None
        for b in buffers:
            self._writer.write(b)

    async def _submit(self, reqs: Sequence[ProcedureInput], progress: Optional[ProgressFn] = None,
                      stream: bool = False) -> List[_APending]:
        lines = [r.encode() for r in reqs]
        await self._ensure()
        loop = asyncio.get_running_loop()
        pend = []
        for r in reqs:
            if r.job_id in self._pending:
                raise ValueError(f"job_id {r.job_id} is already in flight on this client")
            self._seq += 1
            p = _APending(r.job_id, self._seq, loop.create_future(), progress,
                          asyncio.Queue() if stream else None)
            self._pending[r.job_id] = p
            pend.append(p)
        run: List[bytes] = []
        for r, line in zip(reqs, lines):
            run.append(line)
            if r.attachment is not None:
                self._write(b"".join(run), r.attachment)
                run = []
        if run:
            self._write(b"".join(run))
        assert self._drain_lock is not None
        try:
            async with self._drain_lock:
                if self._writer is not None:
                    await self._writer.drain()
        except OSError as e:
            self._disconnect(ConnectionLost(f"send failed: {e}"))
        return pend

    def _send_cancel(self, pend: Sequence[_APending]) -> None:
        """Sends `cancel` for each unfinished request, without waiting (safe
        inside a task being cancelled); their replies are read and dropped."""
        live = [p for p in pend if not p.future.done() and p.job_id in self._pending]
        if not live or self._writer is None:
            return
        loop = asyncio.get_running_loop()
        lines = []
        for p in live:
            cid = self.next_job_id()
            self._seq += 1
            fut = loop.create_future()
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._pending[cid] = _APending(cid, self._seq, fut, None, None)
            lines.append(ProcedureInput(cid, "cancel", {"target": p.job_id}).encode())
        self._write(b"".join(lines))

    async def _await_all(self, pend: Sequence[_APending]) -> List[ProcedureOutput]:
        try:
            return list(await asyncio.gather(*(asyncio.shield(p.future) for p in pend)))
        except BaseException:
            self._send_cancel(pend)
            raise

    # -- calls ----------------------------------------------------------------
    async def call(self, action: Union[str, ProcedureInput], args: Optional[Dict[str, Any]] = None,
                   *, timeout: Optional[float] = None, retries: int = 0,
                   host_list: Optional[Sequence[str]] = None, attachment: Optional[bytes] = None,
                   progress: Optional[ProgressFn] = None, detach: bool = False,
                   check: bool = True) -> ProcedureOutput:
        """As kiln.Client.call; progress may be a function or a coroutine
        function.  Cancelling the awaiting task cancels the request in the
        daemon."""
        req = self._input(action, args, timeout, retries, host_list, attachment,
                          progress is not None, detach)
        pend = await self._submit([req], progress)
        out = (await self._await_all(pend))[0]
        return out.raise_for_error() if check else out

    async def stream(self, action: Union[str, ProcedureInput],
                     args: Optional[Dict[str, Any]] = None, *, check: bool = True,
                     **kw: Any) -> AsyncCall:
        """Starts a request with progress and returns it as an AsyncCall:
        ``async for p in call`` gives progress dicts, ``await call`` the
        reply.  Keywords as call()."""
        req = self._input(action, args, kw.pop("timeout", None), kw.pop("retries", 0),
                          kw.pop("host_list", None), kw.pop("attachment", None), True,
                          kw.pop("detach", False))
        if kw:
            raise TypeError(f"unexpected keyword arguments: {', '.join(kw)}")
        pend = await self._submit([req], None, stream=True)
        return AsyncCall(self, pend[0], check)

    async def call_many(self, requests: Iterable[Request], *, window: int = 128,
                        check: bool = True) -> List[ProcedureOutput]:
        """As kiln.Client.call_many: pipelines the batch (at most `window`
        in flight) and returns the replies in order.  Cancelling the task
        cancels every outstanding request of the batch.  Many concurrent
        call()s with asyncio.gather are just as good."""
        if window < 1:
            raise ValueError("window must be at least 1")
        reqs = self._inputs(requests)
        outs: List[ProcedureOutput] = []
        for i in range(0, len(reqs), window):
            pend = await self._submit(reqs[i:i + window])
            outs += await self._await_all(pend)
        if check:
            for o in outs:
                o.raise_for_error()
        return outs

    def _call_then(self, action: str, args: Optional[Dict[str, Any]],
                   post: Callable[[ProcedureOutput], Any], *, quiet: bool = False,
                   **kw: Any) -> Any:
        async def run() -> Any:
            try:
                out = await self.call(action, args, **kw)
            except (KilnError, OSError):
                if quiet:
                    return None
                raise
            return post(out)
        return run()
