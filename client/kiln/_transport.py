"""Byte transports to kilnd: a local Unix socket, or ssh:// to a remote one.

Both end in a connected stream socket, so the clients above only see a
socket.  `Transport.send()` is the one place that writes requests to it:
ancillary data (file descriptors passed with SCM_RIGHTS) would be added
there, on the first buffer of a message, for local sockets only.

ssh://[user@]host[:port][/path/to/kiln.sock] runs OpenSSH (`ssh`, with the
user's ~/.ssh/config, keys and agent) and, on the remote host, socat bridging
its stdin/stdout to the daemon's socket — like `docker -H ssh://`.  Without
a path, the remote side picks the first socket that exists among
$KILN_SOCKET, $XDG_RUNTIME_DIR/kiln/kiln.sock, /run/kiln/kiln.sock and
/tmp/kiln-$UID/kiln.sock.  Extra ssh options come from the `ssh_options`
argument or $KILN_SSH_OPTIONS (split like a shell would).
"""

from __future__ import annotations

import errno
import os
import shlex
import socket
import subprocess
from typing import List, Optional, Sequence, Tuple, Union
from urllib.parse import unquote, urlsplit

from .errors import ConnectError

Buffer = Union[bytes, bytearray, memoryview]

_REMOTE_PICK = (
    'for p in "$KILN_SOCKET" "${XDG_RUNTIME_DIR:+$XDG_RUNTIME_DIR/kiln/kiln.sock}" '
    '/run/kiln/kiln.sock "/tmp/kiln-$(id -u)/kiln.sock"; do '
    '[ -n "$p" ] && [ -S "$p" ] && exec socat - "UNIX-CONNECT:$p"; done; '
    'echo "kiln: no kilnd socket found on $(hostname)" >&2; exit 3')


class Transport:
    """A connected stream socket to kilnd (and the ssh process behind it,
    for ssh://).  Not thread-safe: the client serialises send()."""

    def __init__(self, sock: socket.socket, proc: Optional[subprocess.Popen] = None,
                 target: str = "") -> None:
        self.sock = sock
        self.proc = proc
        self.target = target
        self.local = proc is None

    def send(self, *buffers: Buffer) -> None:
        """Writes the buffers in order (a request line, then its raw
        attachment).  The one place requests reach the socket."""
        for b in buffers:
            self.sock.sendall(b)

    def send_fds(self, line: bytes, fds: List[int]) -> None:
        """Writes a request line with descriptors (SCM_RIGHTS) attached to
        its first bytes; local sockets only."""
        sent = socket.send_fds(self.sock, [line], fds)
        if sent < len(line):
            self.sock.sendall(line[sent:])

    def peer_closed(self) -> bool:
        """True if the daemon has closed its end (checked without blocking
        before a request is sent on an idle connection)."""
        try:
            data = self.sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        return data == b""

    def ssh_stderr(self) -> str:
        """What ssh said on stderr (after it exited), for error messages."""
        if self.proc is None or self.proc.stderr is None:
            return ""
        try:
            self.proc.wait(2)
            return self.proc.stderr.read().decode(errors="replace").strip()
        except (subprocess.TimeoutExpired, OSError, ValueError):
            return ""

    def close(self) -> None:
        """Closes the socket (waking a thread blocked reading it) and stops ssh."""
        try:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()
        finally:
            if self.proc is not None:
                if self.proc.poll() is None:
                    self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
                if self.proc.stderr is not None:
                    self.proc.stderr.close()


def _connect_error(path: str, e: OSError) -> ConnectError:
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return ConnectError(
            f"no kilnd socket at {path}: kilnd is not running there. Start it (`make run`, or "
            "`systemctl enable --now kilnd.socket`), or point KILN_SOCKET / Client(path) at the "
            "socket it printed", reason="missing")
    if e.errno == errno.ECONNREFUSED:
        return ConnectError(
            f"connection refused at {path}: the socket file is stale (kilnd is not running). "
            "Start kilnd again; it replaces the stale socket", reason="refused")
    if e.errno in (errno.EACCES, errno.EPERM):
        return ConnectError(
            f"permission denied opening {path}: join the kiln group "
            "(`sudo usermod -aG kiln $USER`, then log in again) or use your own kilnd",
            reason="forbidden")
    return ConnectError(f"cannot connect to kilnd at {path}: {e.strerror or e}")


def parse_ssh(target: str) -> Tuple[Optional[str], str, Optional[int], Optional[str]]:
    """ssh://[user@]host[:port][/path] -> (user, host, port, path or None)."""
    u = urlsplit(target)
    if u.scheme != "ssh" or not u.hostname:
        raise ValueError(f"not an ssh://[user@]host[:port][/path] address: {target!r}")
    if u.query or u.fragment:
        raise ValueError(f"ssh address has a query or fragment: {target!r}")
    path = unquote(u.path) if u.path not in ("", "/") else None
    return (unquote(u.username) if u.username else None, u.hostname, u.port, path)


def ssh_argv(target: str, options: Optional[Sequence[str]] = None) -> list:
    """The ssh command line bridging to kilnd on the host named by target."""
    user, host, port, path = parse_ssh(target)
    argv = ["ssh", "-T", "-o", "BatchMode=yes", "-e", "none"]
    if options is None:
        options = shlex.split(os.environ.get("KILN_SSH_OPTIONS", ""))
    argv += list(options)
    if port is not None:
        argv += ["-p", str(port)]
    if user is not None:
        argv += ["-l", user]
    if path is not None:
        remote = "exec socat - " + shlex.quote("UNIX-CONNECT:" + path)
    else:
        remote = _REMOTE_PICK
    # The remote login shell runs this string; keep it POSIX sh.
    return argv + ["--", host, "sh -c " + shlex.quote(remote)]


def open_transport(target: str, *, connect_timeout: float = 5.0,
                   ssh_options: Optional[Sequence[str]] = None) -> Transport:
    """Connects to kilnd at `target` (a socket path or an ssh:// address).
    Raises ConnectError with the reason and the fix."""
    if target.startswith("ssh://"):
        return _open_ssh(target, ssh_options)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(connect_timeout)
        sock.connect(target)
        sock.settimeout(None)
    except OSError as e:
        sock.close()
        raise _connect_error(target, e) from e
    return Transport(sock, target=target)


def _open_ssh(target: str, ssh_options: Optional[Sequence[str]]) -> Transport:
    argv = ssh_argv(target, ssh_options)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        proc = subprocess.Popen(argv, stdin=theirs, stdout=theirs, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as e:
        ours.close()
        raise ConnectError(f"cannot run ssh for {target}: {e.strerror or e} "
                           "(install openssh-client)", reason="other") from e
    finally:
        theirs.close()
    return Transport(ours, proc, target=target)
