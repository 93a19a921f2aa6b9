"""Exceptions raised by the kiln client: one class per stable error code.

Each class is also the standard exception a Python program would catch for
that kind of failure, so ``except ValueError`` or ``except TimeoutError``
work without knowing kiln:

=================  ===================  =======================================
class              wire code            also a
=================  ===================  =======================================
ParseError         parse_error          ValueError
InvalidRequest     invalid_request      ValueError
InvalidArgs        invalid_args         ValueError
TooLarge           too_large            ValueError
UnknownAction      unknown_action       LookupError
NotFound           not_found            LookupError
Timeout            timeout              TimeoutError
Forbidden          forbidden            PermissionError
Cancelled          cancelled            RuntimeError
Busy               busy                 RuntimeError
Internal           internal             RuntimeError
ConnectionLost     (client side)        ConnectionError
ConnectError       (client side)        ConnectionError
=================  ===================  =======================================

``ConnectError`` means no connection could be made at all (its message says
whether the socket is missing, refused or forbidden, and what to do);
``ConnectionLost`` means an established connection broke before the reply
came.  Values that cannot be sent (NaN, infinities, lone surrogates, objects
JSON cannot carry) raise plain ``ValueError``/``TypeError`` before anything is
sent.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class KilnError(Exception):
    """A request failed.  ``code`` is the stable wire code ("invalid_args"),
    ``message`` the daemon's one-line message, ``detail`` its detail value
    (e.g. ``{"path": "args.z"}`` or ``{"limit": "max_line_bytes", "max": 4096}``),
    ``job_id`` the request's id and ``output`` the whole ProcedureOutput."""

    code: str = "internal"

    def __init__(self, message: str, *, code: Optional[str] = None, detail: Any = None,
                 job_id: Optional[int] = None, output: Any = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.detail = detail
        self.job_id = job_id
        self.output = output

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), self.message, self.code, self.detail, self.job_id))


def _rebuild(cls: Type[KilnError], message: str, code: str, detail: Any,
             job_id: Optional[int]) -> KilnError:
    return cls(message, code=code, detail=detail, job_id=job_id)


class ParseError(KilnError, ValueError):
    """The daemon could not parse a request line (a client bug)."""

    code = "parse_error"


class InvalidRequest(KilnError, ValueError):
    """The request envelope was wrong (unknown key, duplicate job_id...)."""

    code = "invalid_request"


class UnknownAction(KilnError, LookupError):
    """No such action or configured procedure."""

    code = "unknown_action"


class InvalidArgs(KilnError, ValueError):
    """The arguments failed the action's schema; ``detail["path"]`` names one."""

    code = "invalid_args"


class Timeout(KilnError, TimeoutError):
    """The request's timeout passed; the daemon cancelled the work."""

    code = "timeout"


class Cancelled(KilnError, RuntimeError):
    """The request was cancelled (``cancel``, Ctrl-C, task cancellation, shutdown)."""

    code = "cancelled"


class TooLarge(KilnError, ValueError):
    """A named limit was exceeded: ``detail["limit"]`` is its config key,
    ``detail["max"]`` the configured value."""

    code = "too_large"


class NotFound(KilnError, LookupError):
    """No such scene, corpus, job, file or request."""

    code = "not_found"


class Forbidden(KilnError, PermissionError):
    """Not allowed: peer credentials, or a path outside ``path_roots``."""

    code = "forbidden"


class Busy(KilnError, RuntimeError):
    """A capacity limit is reached; try again later."""

    code = "busy"


class Internal(KilnError, RuntimeError):
    """A daemon bug or unexpected system error."""

    code = "internal"


class ConnectionLost(KilnError, ConnectionError):
    """An established connection closed before the reply came.  The client
    reconnects on its next call."""

    code = "connection_lost"


class ConnectError(KilnError, ConnectionError):
    """No connection to kilnd could be made.  ``reason`` is "missing" (no
    socket file), "refused" (a stale socket: kilnd is not running),
    "forbidden" (no permission to connect) or "other"; the message says how
    to fix it."""

    code = "connect"

    def __init__(self, message: str, *, reason: str = "other", **kw: Any) -> None:
        super().__init__(message, **kw)
        self.reason = reason


ERRORS: Dict[str, Type[KilnError]] = {
    cls.code: cls
    for cls in (ParseError, InvalidRequest, UnknownAction, InvalidArgs, Timeout, Cancelled,
                TooLarge, NotFound, Forbidden, Busy, Internal)
}


def error_for(code: str, message: str, **kw: Any) -> KilnError:
    """The exception instance for a wire error code (KilnError if unknown)."""
    return ERRORS.get(code, KilnError)(message, code=code, **kw)
