"""The wire types: ProcedureInput (request) and ProcedureOutput (reply).

See proto/README.md for the protocol; these dataclasses mirror
proto/schema/procedure_input.json and procedure_output.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

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
            obj["raw"] = len(self.attachment)
        if self.fd_paths:
            obj["fds"] = list(self.fd_paths)
        line = json.dumps(obj, separators=(",", ":")).encode() + b"\n"
        return line


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
