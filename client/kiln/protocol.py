"""The wire types: ProcedureInput (request) and ProcedureOutput (reply).

See proto/README.md for the protocol; these dataclasses mirror
proto/schema/procedure_input.json and procedure_output.json.
"""

from __future__ import annotations

import base64
import json
import math
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from .errors import error_for

RESULTS = ("success", "partial", "failure", "error", "accepted", "progress")


@dataclass
class ProcedureInput:
    job_id: int
    action: str
    args: Dict[str, Any] = field(default_factory=dict)
    timeout: Optional[float] = None
    retries: int = 0
    host_list: List[str] = field(default_factory=list)
    progress: bool = False
    detach: bool = False
    attachment: Optional[bytes] = None
    fd_paths: List[str] = field(default_factory=list)  # paths whose descriptors go with the line

    def encode(self) -> bytes:
        """The request line (and the raw attachment bytes after it)."""
        obj: Dict[str, Any] = {"job_id": self.job_id, "action": self.action}
        if self.args:
            obj["args"] = self.args
        if self.timeout is not None:
            obj["timeout"] = self.timeout
        if self.retries:
            obj["retries"] = self.retries
        if self.host_list:
            obj["host_list"] = list(self.host_list)
        if self.progress:
            obj["progress"] = True
        if self.detach:
            obj["detach"] = True
        obj["accept_raw"] = True
        if self.attachment is not None:
            # Bytes, not elements: array.array, memoryview and numpy arrays are buffers too.
            try:
                obj["raw"] = memoryview(self.attachment).nbytes
            except TypeError:
                raise TypeError("attachment must be bytes or a buffer (bytearray, memoryview, "
                                f"array.array, numpy array), not {type(self.attachment).__name__}") from None
        if self.fd_paths:
            obj["fds"] = list(self.fd_paths)
        return encode_line(obj)


def encode_line(obj: Dict[str, Any]) -> bytes:
    """One request line.  Values JSON cannot carry are refused here, before
    anything is sent: NaN and infinities (ValueError), strings with lone
    surrogates (ValueError), objects that are not JSON types (TypeError);
    the message names the offending argument."""
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False).encode("utf-8") + b"\n"
    except (TypeError, ValueError):
        check_json(obj, "request")
        raise


def check_json(value: Any, path: str = "args") -> None:
    """Raises TypeError/ValueError naming the first part of `value` that is
    not a JSON value the daemon could accept (NaN, infinity, a string with a
    lone surrogate, a non-string key, or a non-JSON type)."""
    if value is None or isinstance(value, (bool, int)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{path}: {value!r} cannot be sent (JSON has no NaN or infinity)")
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"{path}: string has a lone surrogate at index {e.start} "
                             "(not valid Unicode text)") from None
        return
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_json(v, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{path}: key {k!r} is not a string")
            check_json(k, f"{path} key")
            check_json(v, f"{path}.{k}")
        return
    raise TypeError(f"{path}: {type(value).__name__} is not a JSON type "
                    "(use str, int, float, bool, None, list or dict)")


class Decoder:
    """Splits the bytes kilnd sends into messages: feed() what was received,
    then take (object, attachment) pairs from messages().  Shared by the
    thread-safe and the asyncio client."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def messages(self) -> List[Tuple[Dict[str, Any], Optional[bytes]]]:
        out: List[Tuple[Dict[str, Any], Optional[bytes]]] = []
        buf = self._buf
        while True:
            nl = buf.find(b"\n", self._pos)
            if nl < 0:
                break
            obj = json.loads(bytes(buf[self._pos:nl]))
            attachment = None
            n = obj.get("raw") if isinstance(obj, dict) else None
            if isinstance(n, int):
                if len(buf) - (nl + 1) < n:
                    break
                attachment = bytes(buf[nl + 1:nl + 1 + n])
                self._pos = nl + 1 + n
            else:
                self._pos = nl + 1
                if isinstance(obj, dict) and "raw_b64" in obj:
                    attachment = base64.b64decode(obj["raw_b64"])
            out.append((obj, attachment))
        return out


@dataclass
class ProcedureOutput:
    job_id: Optional[int]
    result: str
    message: str = ""
    failed_hosts: List[str] = field(default_factory=list)
    data: Dict[str, Any] = field(default_factory=dict)
    error: Optional[Dict[str, Any]] = None
    attachment: Optional[bytes] = None

    @classmethod
    def from_dict(cls, d: Dict[str, Any], attachment: Optional[bytes] = None) -> "ProcedureOutput":
        return cls(job_id=d.get("job_id"), result=d.get("result", ""), message=d.get("message", ""),
                   failed_hosts=list(d.get("failed_hosts", [])), data=d.get("data") or {},
                   error=d.get("error"), attachment=attachment)

    @property
    def ok(self) -> bool:
        return self.result != "error"

    def raise_for_error(self) -> "ProcedureOutput":
        """Raises the KilnError subclass for an error reply; returns self otherwise."""
        if self.result == "error":
            err = self.error or {}
            raise error_for(str(err.get("code", "internal")), self.message,
                            detail=err.get("detail"), job_id=self.job_id, output=self)
        return self


# Limits whose too_large reply is followed by kilnd closing the connection
# (the rest of the stream cannot be framed any more).
CLOSING_LIMITS = ("max_line_bytes", "max_attachment_bytes")


def closes_connection(obj: Dict[str, Any]) -> bool:
    """True for a reply after which kilnd closes the connection."""
    err = obj.get("error") if obj.get("result") == "error" else None
    if not isinstance(err, dict) or err.get("code") != "too_large":
        return False
    detail = err.get("detail")
    return isinstance(detail, dict) and detail.get("limit") in CLOSING_LIMITS


def default_socket_path() -> str:
    """The socket kilnd uses by default, found the same way the daemon does:
    $KILN_SOCKET, $RUNTIME_DIRECTORY/kiln.sock, $XDG_RUNTIME_DIR/kiln/kiln.sock,
    /tmp/kiln-$UID/kiln.sock; if that does not exist but the system service's
    /run/kiln/kiln.sock does, that one."""
    env = os.environ.get("KILN_SOCKET")
    if env:
        return env
    rt = os.environ.get("RUNTIME_DIRECTORY")
    if rt:
        return os.path.join(rt.split(":")[0], "kiln.sock")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    path = os.path.join(xdg, "kiln", "kiln.sock") if xdg else f"/tmp/kiln-{os.getuid()}/kiln.sock"
    system = "/run/kiln/kiln.sock"
    if not os.path.exists(path) and os.path.exists(system):
        return system
    return path
