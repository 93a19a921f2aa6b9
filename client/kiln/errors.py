"""Exceptions raised by the kiln client: one class per stable error code."""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class KilnError(Exception):
    """A request failed.  ``code`` is the stable wire code ("invalid_args"),
    ``detail`` the daemon's detail value, ``output`` the whole reply."""

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


class ParseError(KilnError):
    code = "parse_error"


class InvalidRequest(KilnError):
    code = "invalid_request"


class UnknownAction(KilnError):
    code = "unknown_action"


class InvalidArgs(KilnError):
    code = "invalid_args"


class Timeout(KilnError):
    code = "timeout"


class Cancelled(KilnError):
    code = "cancelled"


class TooLarge(KilnError):
    code = "too_large"


class NotFound(KilnError):
    code = "not_found"


class Forbidden(KilnError):
    code = "forbidden"


class Busy(KilnError):
    code = "busy"


class Internal(KilnError):
    code = "internal"


class ConnectionLost(KilnError):
    """The socket could not be opened, or closed before the reply came."""

    code = "connection"


ERRORS: Dict[str, Type[KilnError]] = {
    cls.code: cls
    for cls in (ParseError, InvalidRequest, UnknownAction, InvalidArgs, Timeout, Cancelled,
                TooLarge, NotFound, Forbidden, Busy, Internal)
}


def error_for(code: str, message: str, **kw: Any) -> KilnError:
    """The exception instance for a wire error code (KilnError if unknown)."""
    return ERRORS.get(code, KilnError)(message, code=code, **kw)
