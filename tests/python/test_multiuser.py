"""The multi-user trust model (issue 13), tried as a second local user would:
a root-run kilnd that two real users, A and B, both reach, and each hole
from the issue as an attempt that must fail in the stated way.

The users (and a group only A belongs to, as a supplementary group) are
created by this module with useradd and removed afterwards; without root,
or without useradd/setpriv, every test here skips with a message.

Clients run as A or B in a child process (setpriv --reuid --regid
--init-groups): `Agent` keeps one such process with one connection and
answers calls over a pipe, so a test can hold a connection open.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import grp
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest
from typing import Any, Dict, List, Optional

import kilntest

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
SUFFIX = f"{os.getpid() % 100000:05d}"
USER_A, USER_B, GROUP_G = f"kmua{SUFFIX}", f"kmub{SUFFIX}", f"kmug{SUFFIX}"


class User:
    def __init__(self, name: str) -> None:
        pw = pwd.getpwnam(name)
        self.name, self.uid, self.gid = name, pw.pw_uid, pw.pw_gid


A: User
B: User
G: int  # gid of the group only A belongs to (supplementary)
_created: List[List[str]] = []


def setUpModule() -> None:
    global A, B, G
    if os.geteuid() != 0:
        raise unittest.SkipTest("multi-user tests create two users and need root")
    for tool in ("useradd", "userdel", "groupadd", "groupdel", "setpriv"):
        if not shutil.which(tool):
            raise unittest.SkipTest(f"{tool} is not installed")
    subprocess.run(["groupadd", "--system", GROUP_G], check=True, capture_output=True)
    _created.append(["groupdel", GROUP_G])
    for name, extra in ((USER_A, ["-G", GROUP_G]), (USER_B, [])):
        subprocess.run(["useradd", "--system", "--no-create-home", "--user-group", "--shell",
                        "/usr/sbin/nologin"] + extra + [name], check=True, capture_output=True)
        _created.insert(0, ["userdel", name])
    A, B, G = User(USER_A), User(USER_B), grp.getgrnam(GROUP_G).gr_gid


def tearDownModule() -> None:
    for cmd in _created:
        subprocess.run(cmd, capture_output=True)
    _created.clear()


AGENT = r'''
import json, sys, traceback
sys.path.insert(0, CLIENT_DIR)
import kiln
c = None
def out(o):
    sys.stdout.write(json.dumps(o) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    req = json.loads(line)
    try:
        if req["op"] == "connect":
            if c: c.close()
            c = kiln.Client(req["socket"])
            out({"ok": True})
        elif req["op"] == "call":
            r = c.call(req["action"], req.get("args") or {}, timeout=req.get("timeout"),
                       detach=req.get("detach", False), check=False)
            out({"result": r.result, "message": r.message, "data": r.data,
                 "code": (r.error or {}).get("code"), "detail": (r.error or {}).get("detail")})
        elif req["op"] == "exec":
            env = {"c": c, "kiln": kiln, "out": None}
            exec(req["code"], env)
            out({"out": env["out"]})
    except Exception as e:
        out({"exception": type(e).__name__, "text": str(e)})
'''


class Agent:
    """A client process running as `user` with one persistent connection."""

    def __init__(self, user: User, socket_path: str) -> None:
        self.user = user
        code = AGENT.replace("CLIENT_DIR", repr(os.path.join(kilntest.ROOT, "client")))
        self.proc = subprocess.Popen(
            ["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--init-groups", PYTHON, "-c", code],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.socket_path = socket_path
        self.connect()

    def _ask(self, req: Dict[str, Any]) -> Dict[str, Any]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"agent for {self.user.name} died")
        return json.loads(line)

    def connect(self) -> Dict[str, Any]:
        return self._ask({"op": "connect", "socket": self.socket_path})

    def call(self, action: str, args: Optional[Dict[str, Any]] = None, *, timeout: float = 30,
             detach: bool = False) -> Dict[str, Any]:
        """The reply as {result, message, data, code, detail}, or
        {exception, text} when the connection failed."""
        return self._ask({"op": "call", "action": action, "args": args or {}, "timeout": timeout,
                          "detach": detach})

    def run(self, code: str) -> Any:
        """Runs Python code in the agent (`c` is its client); returns `out`."""
        r = self._ask({"op": "exec", "code": textwrap.dedent(code)})
        if "exception" in r:
            raise AssertionError(f"agent {self.user.name}: {r}")
        return r["out"]

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


def code_of(reply: Dict[str, Any]) -> str:
    """"success" or the error code of a reply."""
    return reply["code"] if reply.get("result") == "error" else reply.get("result") or reply.get("exception", "?")


def make_tree(base: str) -> Dict[str, str]:
    """The files the tests use, under `base` (0755, root):
      shared/            a path root, 0755
      shared/a           A's private directory (0700) with diary.txt (0600)
      shared/b           B's directory (0755)
      shared/drop        a sticky world-writable directory holding A's a.txt
      outside/           world-writable, outside the roots (victim.txt 0666)
      rootonly/          root's, 0700, outside the roots
    """
    p = {k: os.path.join(base, v) for k, v in {
        "shared": "shared", "a": "shared/a", "b": "shared/b", "drop": "shared/drop",
        "outside": "outside", "rootonly": "rootonly"}.items()}
    os.chmod(base, 0o755)
    for k in p:
        os.makedirs(p[k], exist_ok=True)
    os.chmod(p["shared"], 0o755)
    os.chown(p["a"], A.uid, A.gid)
    os.chmod(p["a"], 0o700)
    os.chown(p["b"], B.uid, B.gid)
    os.chmod(p["b"], 0o755)
    os.chmod(p["drop"], 0o1777)
    os.chmod(p["outside"], 0o777)
    os.chmod(p["rootonly"], 0o700)
    files = {
        "diary": (os.path.join(p["a"], "diary.txt"), "dear diary my PIN is 4711\n" * 10, A, 0o600),
        "a_drop": (os.path.join(p["drop"], "a.txt"), "A's words in a shared drop\n", A, 0o644),
        "victim": (os.path.join(p["outside"], "victim.txt"), "outside the roots\n", None, 0o666),
        "rootfile": (os.path.join(p["rootonly"], "rootfile.txt"), "root only\n", None, 0o600),
    }
    for k, (path, text, owner, mode) in files.items():
        with open(path, "w") as f:
            f.write(text)
        if owner:
            os.chown(path, owner.uid, owner.gid)
        os.chmod(path, mode)
        p[k] = path
    return p


class MultiUserCase(unittest.TestCase):
    """One root-run kilnd per class that A and B can both reach; agents for
    A and B connected per test."""

    CONFIG: Dict[str, Any] = {}
    daemon: kilntest.Daemon

    @classmethod
    def setUpClass(cls) -> None:
        cls.base = tempfile.mkdtemp(prefix="kiln-mu-")
        cls.p = make_tree(cls.base)
        cfg = {"socket_mode": "0666", "path_roots": [kilntest.DATA, cls.p["shared"]], "threads": 2}
        cfg.update(cls.CONFIG)
        run = os.path.join(cls.base, "run")
        os.makedirs(run, mode=0o755)
        cls.daemon = kilntest.Daemon(cfg, dir=run)

    @classmethod
    def tearDownClass(cls) -> None:
        rc = cls.daemon.stop()
        shutil.rmtree(cls.base, ignore_errors=True)
        if rc != 0:
            raise AssertionError(f"kilnd exited with {rc}:\n{cls.daemon.read_log()[-4000:]}")

    def setUp(self) -> None:
        self.a = Agent(A, self.daemon.socket_path)
        self.b = Agent(B, self.daemon.socket_path)

    def tearDown(self) -> None:
        self.a.close()
        self.b.close()


# --- The socket directory -----------------------------------------------------

class SocketDirTest(unittest.TestCase):
    """kilnd refuses to bind a socket that a directory above it lets another
    user replace, naming the directory and the reason."""

    def setUp(self) -> None:
        if not os.path.exists(kilntest.KILND):
            self.skipTest("kilnd is not built")
        self.base = tempfile.mkdtemp(prefix="kiln-mu-sock-")
        os.chmod(self.base, 0o755)
        self.cfg = os.path.join(self.base, "kiln.json")
        with open(self.cfg, "w") as f:
            json.dump({}, f)

    def tearDown(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)

    def start(self, sock: str) -> subprocess.CompletedProcess:
        p = subprocess.run([kilntest.KILND, "--socket", sock, "--config", self.cfg], capture_output=True,
                           text=True, timeout=20)
        self.assertNotEqual(p.returncode, 0, p.stderr)
        self.assertFalse(os.path.exists(sock))
        return p

    def test_directory_owned_by_another_user(self):
        d = os.path.join(self.base, "b-owned")
        os.makedirs(os.path.join(d, "run"))
        os.chown(d, B.uid, B.gid)
        p = self.start(os.path.join(d, "run", "kiln.sock"))
        self.assertIn(f"{d} is owned by uid {B.uid}", p.stderr)

    def test_world_writable_directory_deep_in_the_path(self):
        d = os.path.join(self.base, "open")
        os.makedirs(os.path.join(d, "run"))
        os.chmod(d, 0o777)
        p = self.start(os.path.join(d, "run", "kiln.sock"))
        self.assertIn(f"{d} (mode 0777) is writable by everyone", p.stderr)

    def test_group_writable_directory(self):
        d = os.path.join(self.base, "grp")
        os.makedirs(d)
        os.chown(d, 0, G)
        os.chmod(d, 0o775)
        p = self.start(os.path.join(d, "kiln.sock"))
        self.assertIn(f"{d} (mode 0775) is writable by its group", p.stderr)

    def test_sticky_directory_as_the_sockets_own(self):
        d = os.path.join(self.base, "sticky")
        os.makedirs(d)
        os.chmod(d, 0o1777)
        p = self.start(os.path.join(d, "kiln.sock"))
        self.assertIn(f"{d} (mode 1777) is writable by everyone; the socket's own directory must be private",
                      p.stderr)

    def test_second_sticky_directory(self):
        d = os.path.join(self.base, "sticky")
        os.makedirs(os.path.join(d, "run"))
        os.chmod(d, 0o1777)
        p = self.start(os.path.join(d, "run", "kiln.sock"))
        self.assertIn(f"{d} (mode 1777) is writable by everyone; only one sticky", p.stderr)

    def test_symlinked_directory_is_checked_where_it_leads(self):
        bad = os.path.join(self.base, "b-owned")
        os.makedirs(os.path.join(bad, "run"))
        os.chown(bad, B.uid, B.gid)
        os.symlink(bad, os.path.join(self.base, "alias"))
        p = self.start(os.path.join(self.base, "alias", "run", "kiln.sock"))
        self.assertIn(f"{bad} is owned by uid {B.uid}", p.stderr)

    def test_private_directory_is_created_and_accepted(self):
        d = os.path.join(self.base, "fresh")
        sock = os.path.join(d, "kiln.sock")
        proc = subprocess.Popen([kilntest.KILND, "--socket", sock, "--config", self.cfg],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + kilntest.START_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    with socket.socket(socket.AF_UNIX) as s:
                        s.connect(sock)
                    break
                except OSError:
                    time.sleep(0.02)
            self.assertEqual(stat.S_IMODE(os.stat(d).st_mode), 0o700)
            with kiln_client(sock) as c:
                self.assertEqual(c.ping()["pid"], proc.pid)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(20), 0)
            proc.stderr.close()

def kiln_client(path: str) -> Any:
    import kiln
    return kiln.Client(path)


if __name__ == "__main__":
    unittest.main()
