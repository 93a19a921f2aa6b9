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
import threading
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
            c = kiln.Client(req["socket"], pass_fds=req.get("pass_fds", False))
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

    def __init__(self, user: User, socket_path: str, pass_fds: bool = False) -> None:
        """pass_fds False (default): paths go to kilnd as strings, so its own
        rules are what a test sees; True: the client passes descriptors."""
        self.user = user
        self.pass_fds = pass_fds
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
        return self._ask({"op": "connect", "socket": self.socket_path, "pass_fds": self.pass_fds})

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


# --- Files are opened with the caller's rights ---------------------------------

class CallerRightsTest(MultiUserCase):
    """Paths kilnd opens itself: with the rights of the client that named
    them, beneath the roots."""

    def test_other_users_private_file_is_not_read(self):
        diary = self.p["diary"]
        self.assertEqual(code_of(self.a.call("text.stats", {"path": diary})), "success")
        for action, args in (("text.stats", {"path": diary}), ("text.short_long", {"path": diary}),
                             ("corpus.load", {"name": "stolen", "paths": [diary]}),
                             ("corpus.load", {"name": "stolen2", "dir": self.p["a"], "glob": "*.txt"})):
            with self.subTest(action=action, args=args):
                r = self.b.call(action, args)
                self.assertNotIn("4711", json.dumps(r))
                if action == "corpus.load" and r["result"] != "error":
                    # A partial load: every file failed, nothing loaded.
                    self.fail(f"B loaded from A's directory: {r}")
                self.assertEqual(code_of(r), "forbidden", r)

    def test_outputs_go_only_where_the_client_may_write(self):
        a_out = os.path.join(self.p["a"], "planted.txt")
        r = self.b.call("pi", {"digits": 20, "output": a_out})
        self.assertEqual(code_of(r), "forbidden", r)
        self.assertFalse(os.path.exists(a_out))
        # A's file in a sticky shared directory: B may not replace it.
        r = self.b.call("pi", {"digits": 20, "output": self.p["a_drop"]})
        self.assertEqual(code_of(r), "forbidden", r)
        with open(self.p["a_drop"]) as f:
            self.assertEqual(f.read(), "A's words in a shared drop\n")
        self.assertEqual(os.stat(self.p["a_drop"]).st_uid, A.uid)
        # A's own output belongs to A, not to the daemon's root.
        r = self.a.call("pi", {"digits": 20, "output": os.path.join(self.p["a"], "pi.txt")})
        self.assertEqual(code_of(r), "success", r)
        st = os.stat(os.path.join(self.p["a"], "pi.txt"))
        self.assertEqual((st.st_uid, st.st_gid), (A.uid, A.gid))
        # No temporary file is left behind by either attempt.
        self.assertEqual(sorted(os.listdir(self.p["a"])), ["diary.txt", "pi.txt"])
        self.assertEqual(sorted(os.listdir(self.p["drop"])), ["a.txt"])

    def test_outside_the_roots_missing_and_existing_look_alike(self):
        out = self.p["outside"]
        replies = {}
        for name in ("victim.txt", "no-such-file.txt"):
            for action, args in (("text.stats", {"path": os.path.join(out, name)}),
                                 ("pi", {"digits": 5, "output": os.path.join(out, name)}),
                                 ("corpus.load", {"name": "x", "paths": [os.path.join(out, name)]})):
                r = self.b.call(action, args)
                replies[(name, action)] = (code_of(r), r["message"].replace(name, "NAME"),
                                           json.dumps(r.get("detail")).replace(name, "NAME"))
        for action in ("text.stats", "pi", "corpus.load"):
            with self.subTest(action=action):
                self.assertEqual(replies[("victim.txt", action)], replies[("no-such-file.txt", action)])
                self.assertEqual(replies[("victim.txt", action)][0], "forbidden")
        # The same through a path that climbs out of a root with "..".
        climb = os.path.join(self.p["shared"], "..", "outside")
        r1 = self.b.call("text.stats", {"path": os.path.join(climb, "victim.txt")})
        r2 = self.b.call("text.stats", {"path": os.path.join(climb, "no-such-file.txt")})
        self.assertEqual((code_of(r1), r1["message"].replace("victim.txt", "N")),
                         (code_of(r2), r2["message"].replace("no-such-file.txt", "N")))
        self.assertEqual(code_of(r1), "forbidden")
        with open(self.p["victim"]) as f:
            self.assertEqual(f.read(), "outside the roots\n")


FLIP = r'''
import ctypes, json, os, threading, time
libc = ctypes.CDLL(None, use_errno=True)
SW, LINK, SECONDS = ARGS
stop = threading.Event()
flips = [0]
def flipper():
    a, b = SW.encode(), LINK.encode()
    while not stop.is_set():
        if libc.renameat2(-100, a, -100, b, 2) != 0:  # RENAME_EXCHANGE
            return
        flips[0] += 1
t = threading.Thread(target=flipper, daemon=True)
t.start()
texts, codes, n = [], {}, 0
deadline = time.monotonic() + SECONDS
while time.monotonic() < deadline:
    for action, args in (("pi", {"digits": 5, "output": SW + "/victim.txt"}),
                         ("corpus.load", {"name": "race", "dir": SW, "glob": "*"}),
                         ("text.stats", {"path": SW + "/victim.txt"})):
        r = c.call(action, args, check=False, timeout=10)
        n += 1
        code = (r.error or {}).get("code") if r.result == "error" else r.result
        codes[action + ":" + str(code)] = codes.get(action + ":" + str(code), 0) + 1
        texts.append(r.message + json.dumps(r.data) + json.dumps(r.error))
        if r.result != "error" and action == "corpus.load":
            c.call("corpus.unload", {"name": "race"}, check=False)
stop.set()
t.join(5)
out = {"flips": flips[0], "requests": n, "codes": codes, "texts": texts}
'''


class FlipRaceTest(MultiUserCase):
    """B swaps a directory it owns with a symlink to a directory outside the
    roots while looping requests that name a file in it (bounded: 3 s per
    target).  Files outside stay untouched and no reply names them."""

    def race(self, target: str, names: List[str]) -> Dict[str, Any]:
        # Fresh names per race: the flipper leaves them swapped either way.
        tag = os.urandom(4).hex()
        sw = os.path.join(self.p["b"], f"sw-{tag}")
        link = os.path.join(self.p["b"], f"swl-{tag}")
        os.makedirs(sw)
        for n in ("victim.txt", "inside-doc.txt"):
            with open(os.path.join(sw, n), "w") as f:
                f.write("inside words\n")
            os.chmod(os.path.join(sw, n), 0o666)
        os.chown(sw, B.uid, B.gid)
        os.symlink(target, link)
        os.lchown(link, B.uid, B.gid)
        out = self.b.run(FLIP.replace("ARGS", repr((sw, link, 3.0))))
        for n in names:
            for t in out["texts"]:
                self.assertNotIn(n, t)
        self.assertGreater(out["flips"], 100, "the flipper did not run")
        return out

    def test_race_into_world_writable_outside(self):
        before = os.stat(self.p["victim"])
        secret = f"outsidename-{os.getpid()}.txt"
        with open(os.path.join(self.p["outside"], secret), "w") as f:
            f.write("x\n")
        out = self.race(self.p["outside"], [secret, "outside the roots"])
        after = os.stat(self.p["victim"])
        self.assertEqual((after.st_ino, after.st_size, after.st_mtime_ns),
                         (before.st_ino, before.st_size, before.st_mtime_ns))
        with open(self.p["victim"]) as f:
            self.assertEqual(f.read(), "outside the roots\n")
        self.assertEqual(sorted(os.listdir(self.p["outside"])), sorted(["victim.txt", secret]))
        self.assertTrue(any(k.startswith("pi:success") for k in out["codes"]), out["codes"])
        self.assertTrue(any(k.endswith(":forbidden") for k in out["codes"]), out["codes"])

    def test_race_into_root_only_directory(self):
        before = os.stat(self.p["rootfile"])
        out = self.race(self.p["rootonly"], ["rootfile.txt", "root only"])
        after = os.stat(self.p["rootfile"])
        self.assertEqual((after.st_ino, after.st_size, after.st_mtime_ns),
                         (before.st_ino, before.st_size, before.st_mtime_ns))
        self.assertEqual(os.listdir(self.p["rootonly"]), ["rootfile.txt"])
        self.assertTrue(set(k.split(":")[1] for k in out["codes"]) <=
                        {"success", "partial", "forbidden", "not_found", "invalid_args", "failure"},
                        out["codes"])


# --- Logs ---------------------------------------------------------------------

class LogForgeryTest(MultiUserCase):
    """Names a client chose reach the (debug) log escaped: a newline in a
    corpus name cannot start a forged line."""

    CONFIG = {"log_level": "debug"}

    def test_forged_lines_stay_inside_one_line(self):
        forged = "ok\nkilnd error: reload failed\n<0>emerg: x\x1b[2J"
        self.assertEqual(code_of(self.b.call("corpus.info", {"name": forged})), "not_found")
        log = self.daemon.read_log()
        for line in log.splitlines():
            self.assertFalse(line.startswith("kilnd error: reload failed"), line)
            self.assertFalse(line.startswith("<0>"), line)
            self.assertNotIn("\x1b", line)
        self.assertIn("ok\\nkilnd error: reload failed\\n<0>emerg: x\\x1b[2J", log)


# --- Secrets in memory --------------------------------------------------------

class SecretsInMemoryTest(MultiUserCase):
    """Decrypted text and passphrases are wiped: after a load, and after a
    search (whose reply carried the text) plus unload, a scan of the
    daemon's memory finds neither; the process is not dumpable."""

    CONFIG = {"log_level": "debug"}

    def setUp(self) -> None:
        super().setUp()
        if kilntest.WRAPPER or os.environ.get("KILN_TEST_SANITIZER"):
            self.skipTest("memory scans need the plain build (sanitizers keep freed memory)")
        if not shutil.which("openssl"):
            self.skipTest("openssl is not installed")
        tag = os.urandom(6).hex()
        self.passphrase = f"pass-{tag}-phrase-long-enough-to-span-buffers-xyz"
        self.marker = f"plaintextmarker{tag}"
        self.dir = os.path.join(self.p["a"], f"enc-{tag}")
        os.makedirs(self.dir)
        for i in range(3):
            plain = os.path.join(self.base, f"doc{i}.txt")
            with open(plain, "w") as f:
                f.write(f"hello there {self.marker} number {i}\n" * 50)
            subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", "1000", "-salt", "-pass",
                            "pass:" + self.passphrase, "-in", plain, "-out",
                            os.path.join(self.dir, f"doc{i}.enc")], check=True)
            os.unlink(plain)
        for root, dirs, files in os.walk(self.dir):
            for n in dirs + files:
                os.chown(os.path.join(root, n), A.uid, A.gid)
        os.chown(self.dir, A.uid, A.gid)

    def scan(self, needles: List[bytes]) -> Dict[bytes, int]:
        import test_security
        try:
            found = test_security.memory_scan(self.daemon.pid, needles)
        except PermissionError:
            self.skipTest("cannot read the daemon's memory (ptrace restricted)")
        return {n: len(v) for n, v in found.items()}

    def load(self, name: str) -> None:
        r = self.a.call("corpus.load", {"name": name, "dir": self.dir, "glob": "*.enc",
                                        "format": "openssl-enc", "iterations": 1000,
                                        "passphrase": self.passphrase})
        self.assertEqual(code_of(r), "success", r)

    def test_load_then_search_then_unload(self):
        pw, mk = self.passphrase.encode(), self.marker.encode()
        self.load("diary")
        found = self.scan([pw])
        self.assertEqual(found[pw], 0, "the passphrase is still in memory after the load")
        r = self.a.call("corpus.search", {"name": "diary", "query": self.marker, "max_results": 100})
        self.assertEqual(code_of(r), "success", r)
        self.assertIn(self.marker, json.dumps(r["data"]))
        r = self.a.call("corpus.unload", {"name": "diary"})
        self.assertEqual(code_of(r), "success", r)
        time.sleep(0.3)  # the wipe runs on the pool after the reply
        found = self.scan([pw, mk])
        self.assertEqual(found, {pw: 0, mk: 0}, "secrets left in memory after search and unload")

    def test_not_dumpable(self):
        # Root reads any /proc entry, so look at the owner: a process that is
        # not dumpable has its /proc files owned by root whatever its uid.
        run = os.path.join(self.base, "arun")
        os.makedirs(run)
        os.chown(run, A.uid, A.gid)
        os.chmod(run, 0o700)
        cfg = os.path.join(run, "kiln.json")
        with open(cfg, "w") as f:
            json.dump({}, f)
        sock = os.path.join(run, "kiln.sock")
        proc = subprocess.Popen(["setpriv", f"--reuid={A.uid}", f"--regid={A.gid}", "--init-groups",
                                 kilntest.KILND, "--socket", sock, "--config", cfg],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + kilntest.START_TIMEOUT
            while not os.path.exists(sock) and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertTrue(os.path.exists(sock), proc.stderr)
            self.assertEqual(os.stat(f"/proc/{proc.pid}/mem").st_uid, 0, "kilnd is dumpable")
        finally:
            proc.terminate()
            proc.wait(20)
            proc.stderr.close()


# --- Ownership ----------------------------------------------------------------

def same_reply(r1: Dict[str, Any], r2: Dict[str, Any], a: str, b: str) -> tuple:
    """A reply's code, message and detail with the names `a`/`b` masked, for
    comparing the reply about another user's object with a missing one's."""
    return tuple(json.dumps(x).replace(a, "NAME").replace(b, "NAME")
                 for x in ((code_of(r1), r1.get("message"), r1.get("detail")),
                           (code_of(r2), r2.get("message"), r2.get("detail"))))


class OwnershipTest(MultiUserCase):
    """Corpora and scenes belong to the uid that made them; names and ids are
    per owner; another user gets exactly the not-found reply; admins (root
    here) list and unload everything and see per-user figures."""

    CONFIG = {"scene_max_scenes_per_uid": 3, "scene_max_scenes": 10}

    def load(self, agent: Agent, name: str, path: str) -> Dict[str, Any]:
        return agent.call("corpus.load", {"name": name, "paths": [path]})

    def test_corpora_are_per_owner(self):
        self.assertEqual(code_of(self.load(self.a, "diary", self.p["diary"])), "success")
        planted = os.path.join(self.p["b"], "planted.txt")
        with open(planted, "w") as f:
            f.write("planted text by B\n")
        os.chown(planted, B.uid, B.gid)
        for action, args in (("corpus.search", {"query": "PIN"}), ("corpus.count", {"word": "PIN"}),
                             ("corpus.info", {}), ("corpus.unload", {})):
            with self.subTest(action=action):
                theirs = self.b.call(action, dict(args, name="diary"))
                missing = self.b.call(action, dict(args, name="nosuchname"))
                self.assertEqual(code_of(theirs), "not_found", theirs)
                self.assertNotIn("4711", json.dumps(theirs))
                x, y = same_reply(theirs, missing, "diary", "nosuchname")
                self.assertEqual(x, y)
        r = self.b.call("text.stats", {"corpus": "diary", "document": "diary.txt"})
        self.assertEqual(code_of(r), "not_found", r)
        self.assertEqual(self.b.call("corpus.list")["data"]["corpora"], [])
        # B's own "diary" is another corpus: A's text is untouched.
        self.assertEqual(code_of(self.load(self.b, "diary", planted)), "success")
        a_hits = self.a.call("corpus.search", {"name": "diary", "query": "PIN"})["data"]
        self.assertEqual(a_hits["count"], 10)
        self.assertEqual(self.a.call("corpus.search", {"name": "diary", "query": "planted"})["data"]["count"], 0)
        self.assertEqual(self.b.call("corpus.search", {"name": "diary", "query": "PIN"})["data"]["count"], 0)
        self.assertEqual([c["name"] for c in self.a.call("corpus.list")["data"]["corpora"]], ["diary"])
        # Admin (root): sees both with owners, may unload B's, gets per-user stats.
        with kiln_client(self.daemon.socket_path) as root:
            listed = root.call("corpus.list", {"all": True}).data["corpora"]
            self.assertEqual(sorted((c["name"], c["owner"]) for c in listed),
                             sorted([("diary", A.uid), ("diary", B.uid)]))
            per = root.stats()["per_uid"]
            self.assertGreater(per[str(A.uid)]["corpus_memory_bytes"], 0)
            self.assertEqual(per[str(B.uid)]["corpora"], 1)
            root.call("corpus.unload", {"name": "diary", "owner": B.uid})
        self.assertEqual(code_of(self.b.call("corpus.info", {"name": "diary"})), "not_found")
        self.assertEqual(code_of(self.a.call("corpus.info", {"name": "diary"})), "success")
        # Not an admin: no one else's list, no per-user figures, no owner= unload.
        self.assertEqual(code_of(self.b.call("corpus.list", {"all": True})), "forbidden")
        self.assertNotIn("per_uid", self.b.call("stats")["data"])
        r = self.b.call("corpus.unload", {"name": "diary", "owner": A.uid})
        self.assertEqual(code_of(r), "forbidden", r)
        self.assertEqual(code_of(self.a.call("corpus.unload", {"name": "diary"})), "success")

    def test_scenes_are_per_owner(self):
        made = self.a.call("scene.create", {"width": 16, "height": 16})
        self.assertEqual(code_of(made), "success", made)
        sid = made["data"]["scene_id"]
        other = self.a.call("scene.create", {"width": 16, "height": 16})["data"]["scene_id"]
        # Not small sequential integers.
        self.assertGreater(max(sid, other), 1 << 32)
        self.assertNotEqual(abs(sid - other), 1)
        missing = 12345
        for action, args in (("scene.get", {}), ("scene.render", {}), ("scene.delete", {}),
                             ("scene.update", {"width": 8}), ("scene.add", {"elements": []})):
            with self.subTest(action=action):
                theirs = self.b.call(action, dict(args, scene_id=sid))
                none = self.b.call(action, dict(args, scene_id=missing))
                self.assertEqual(code_of(theirs), "not_found", theirs)
                x, y = same_reply(theirs, none, str(sid), str(missing))
                self.assertEqual(x, y)
        self.assertEqual(self.b.call("scene.list")["data"]["scenes"], [])
        self.assertEqual(code_of(self.a.call("scene.get", {"scene_id": sid})), "success")
        # B fills its own slots; A can still create.
        codes = [code_of(self.b.call("scene.create", {"width": 8, "height": 8})) for _ in range(4)]
        self.assertEqual(codes, ["success"] * 3 + ["too_large"])
        r = self.b.call("scene.create", {"width": 8, "height": 8})
        self.assertEqual(r["detail"]["limit"], "scene_max_scenes_per_uid")
        self.assertEqual(code_of(self.a.call("scene.create", {"width": 8, "height": 8})), "success")
        with kiln_client(self.daemon.socket_path) as root:
            owners = [s["owner"] for s in root.call("scene.list", {"all": True}).data["scenes"]]
            self.assertEqual(sorted(owners), sorted([A.uid] * 3 + [B.uid] * 3))
            root.call("scene.delete", {"scene_id": sid})
            self.assertEqual(root.stats()["per_uid"][str(B.uid)]["scenes"], 3)
        self.assertEqual(code_of(self.a.call("scene.get", {"scene_id": sid})), "not_found")


class AdminGroupTest(MultiUserCase):
    """admin_gids: A (through a supplementary group) lists everything; B
    does not."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.CONFIG = {"admin_gids": [G]}
        super().setUpClass()

    def test_admin_by_group(self):
        self.assertEqual(code_of(self.b.call("scene.create", {"width": 8, "height": 8})), "success")
        r = self.a.call("scene.list", {"all": True})
        self.assertEqual([s["owner"] for s in r["data"]["scenes"]], [B.uid])
        self.assertIn(str(B.uid), self.a.call("stats")["data"]["per_uid"])
        self.assertEqual(code_of(self.b.call("scene.list", {"all": True})), "forbidden")


class PerUserCorpusMemoryTest(MultiUserCase):
    """corpus_memory_per_uid: B filling its share leaves A's loads working."""

    CONFIG = {"corpus_memory_per_uid": 256 << 10, "corpus_memory_budget": 16 << 20}

    def test_one_user_cannot_take_the_budget(self):
        big = []
        for i in range(3):
            path = os.path.join(self.p["b"], f"big{i}.txt")
            with open(path, "w") as f:
                f.write("filler words " * 10000)
            os.chown(path, B.uid, B.gid)
            big.append(path)
        self.assertEqual(code_of(self.b.call("corpus.load", {"name": "one", "paths": big[:1]})), "success")
        r = self.b.call("corpus.load", {"name": "two", "paths": big[1:]})
        self.assertEqual(code_of(r), "too_large", r)
        self.assertIn("corpus_memory_per_uid", r["message"])
        self.assertEqual(code_of(self.load_small()), "success")

    def load_small(self) -> Dict[str, Any]:
        return self.a.call("corpus.load", {"name": "small", "paths": [self.p["diary"]]})


# --- Fair limits --------------------------------------------------------------

HOLD = """
import socket
kiln.held = getattr(kiln, "held", [])
n = 0
for _ in range(COUNT):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(PATH)
    kiln.held.append(s)
out = len(kiln.held)
"""

FIRST_LINE = """
import json, socket
s = socket.socket(socket.AF_UNIX)
s.settimeout(TIMEOUT)
s.connect(PATH)
buf = b""
try:
    while b"\\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
except socket.timeout:
    pass
out = json.loads(buf.split(b"\\n")[0]) if buf else None
s.close()
"""


class LimitsTest(MultiUserCase):
    """Per-uid limits: B reaching one gets busy/too_large naming the key; A
    keeps working."""

    CONFIG = {"max_connections_per_uid": 6, "max_inflight_per_uid": 6, "max_detached_per_uid": 3,
              "max_attachment_bytes_per_uid": 1 << 20, "pool_threads_per_uid": 1}

    def admin_stats(self) -> Dict[str, Any]:
        with kiln_client(self.daemon.socket_path) as root:
            return root.stats()

    def test_connections_per_uid(self):
        # B's agent holds one connection; five more reach the limit.
        self.assertEqual(self.b.run(HOLD.replace("COUNT", "5").replace("PATH", repr(self.daemon.socket_path))), 5)
        r = self.b.run(FIRST_LINE.replace("TIMEOUT", "10").replace("PATH", repr(self.daemon.socket_path)))
        self.assertEqual((r["result"], r["error"]["code"]), ("error", "busy"), r)
        self.assertIn("max_connections_per_uid", r["message"])
        self.assertEqual(code_of(self.a.call("ping")), "success")
        self.assertEqual(code_of(self.b.call("ping")), "success")
        self.assertEqual(self.admin_stats()["per_uid"][str(B.uid)]["connections"], 6)
        # The refused one freed its slot at once; closing the held ones frees theirs.
        self.b.run("for s in kiln.held: s.close()\nkiln.held.clear()\nout = 0")
        deadline = time.monotonic() + 5
        while self.admin_stats()["per_uid"].get(str(B.uid), {}).get("connections") != 1:
            self.assertLess(time.monotonic(), deadline, "closed connections still counted")
            time.sleep(0.05)

    def test_detached_and_in_flight_per_uid(self):
        jobs: List[int] = []
        try:
            self.detached_and_in_flight(jobs)
        finally:
            for j in jobs:
                self.b.call("job.cancel", {"job": j})
            self.wait_no_jobs(B)

    def wait_no_jobs(self, user: User) -> None:
        deadline = time.monotonic() + 10
        while self.admin_stats()["per_uid"].get(str(user.uid), {}).get("jobs", 0) > 0:
            self.assertLess(time.monotonic(), deadline, "cancelled jobs still alive")
            time.sleep(0.05)

    def detached_and_in_flight(self, jobs: List[int]) -> None:
        for _ in range(3):
            r = self.b.call("sleep", {"seconds": 30, "steps": 300}, detach=True)
            self.assertEqual(r["result"], "accepted", r)
            jobs.append(r["data"]["job"])
        r = self.b.call("sleep", {"seconds": 30}, detach=True)
        self.assertEqual((code_of(r), r["detail"]), ("busy", {"limit": "max_detached_per_uid", "max": 3}), r)
        # A's pool work starts although B's sleeps are running (B gets one thread).
        t0 = time.monotonic()
        self.assertEqual(code_of(self.a.call("pi", {"digits": 1000}, timeout=20)), "success")
        self.assertEqual(code_of(self.a.call("sleep", {"seconds": 0.01}, timeout=20)), "success")
        self.assertLess(time.monotonic() - t0, 15)
        # The three detached jobs count as in flight: three more are taken,
        # then busy.  (The three taken wait for B's one pool thread, which
        # B's own sleeps hold, and time out.)
        codes = self.b.run("""
            from kiln.protocol import ProcedureInput
            reqs = [ProcedureInput(c.next_job_id(), "sleep", {"seconds": 0.1}, 1.0) for _ in range(5)]
            out = sorted((r.error or {}).get("code", r.result) for r in c.call_many(reqs, check=False))
        """)
        self.assertEqual(codes, ["busy", "busy", "timeout", "timeout", "timeout"])
        self.assertEqual(code_of(self.a.call("ping")), "success")

    def test_attachments_counted_as_they_arrive(self):
        base = self.daemon.rss()
        # Declared but never sent: nothing is allocated for them.
        held = self.b.run("""
            import socket
            kiln.att = []
            for i in range(4):
                s = socket.socket(socket.AF_UNIX)
                s.connect(PATH)
                s.sendall(b'{"job_id":1,"action":"text.stats","raw":268435456}\\n')
                kiln.att.append(s)
            out = len(kiln.att)
        """.replace("PATH", repr(self.daemon.socket_path)))
        self.assertEqual(held, 4)
        time.sleep(0.3)
        self.assertLess(self.daemon.rss() - base, 32 << 20)
        # Bytes beyond max_attachment_bytes_per_uid: too_large naming it, the
        # rest is skipped and the connection goes on.
        r = self.b.run("""
            import json, socket
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(20)
            s.connect(PATH)
            n = 3 << 20
            s.sendall(b'{"job_id":7,"action":"text.stats","raw":%d}\\n' % n + b"w " * (n // 2)
                      + b'{"job_id":8,"action":"ping"}\\n')
            buf = b""
            while buf.count(b"\\n") < 2:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            out = [json.loads(l) for l in buf.splitlines()[:2]]
        """.replace("PATH", repr(self.daemon.socket_path)))
        self.assertEqual(r[0]["error"], {"code": "too_large",
                                         "detail": {"limit": "max_attachment_bytes_per_uid", "max": 1048576}})
        self.assertEqual((r[1]["job_id"], r[1]["result"]), (8, "success"))
        # A's attachment is A's own budget.
        r = self.a.run("""
            r = c.call("text.stats", {}, attachment=b"some words " * 50000, check=False)
            out = r.result
        """)
        self.assertEqual(r, "success")
        self.b.run("for s in kiln.att: s.close()\nout = 0")

    def test_detached_job_keeps_no_unused_attachment(self):
        job = self.b.run("""
            r = c.call("sleep", {"seconds": 30, "steps": 300}, detach=True, attachment=b"x" * (512 << 10))
            out = r.data["job"]
        """)
        try:
            time.sleep(0.2)
            self.assertEqual(self.admin_stats()["per_uid"][str(B.uid)]["attachment_bytes"], 0)
            self.assertEqual(self.admin_stats()["per_uid"][str(B.uid)]["jobs"], 1)
        finally:
            self.b.call("job.cancel", {"job": job})
            self.wait_no_jobs(B)


NEVER_READ_RENDERS = """
import json, socket
sid = c.call("scene.create", {"width": SIDE, "height": SIDE}).data["scene_id"]
s = socket.socket(socket.AF_UNIX)
s.connect(PATH)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
lines = b"".join(json.dumps({"job_id": i, "action": "scene.render", "args": {"scene_id": sid}}).encode()
                 + b"\\n" for i in range(COUNT))
s.sendall(lines)
kiln.unread = s
out = sid
"""


class OutputBufferTest(MultiUserCase):
    """Replies for a client that does not read count against
    max_output_buffer before the renders producing them start: 30 pipelined
    renders (1.3 MiB each as base64) never read hold about the buffer, not
    all 40 MiB."""

    CONFIG = {"max_output_buffer": 4 << 20}

    def test_pipelined_renders_never_read(self):
        base = self.daemon.rss()
        self.b.run(NEVER_READ_RENDERS.replace("SIDE", "512").replace("COUNT", "30")
                   .replace("PATH", repr(self.daemon.socket_path)))
        time.sleep(3)
        grown = self.daemon.rss() - base
        with kiln_client(self.daemon.socket_path) as root:
            jobs = root.stats()["per_uid"][str(B.uid)]["jobs"]
        # One render waits for room (prepared, not started); the others were
        # never read off the socket.
        self.assertLessEqual(jobs, 2)
        if not os.environ.get("KILN_TEST_SANITIZER") and not kilntest.WRAPPER:
            self.assertLess(grown, 20 << 20, f"RSS grew by {grown >> 20} MiB")
        # A is unaffected, and a reader gets every reply in order.
        self.assertEqual(code_of(self.a.call("ping")), "success")
        self.b.run("kiln.unread.close()\nout = 0")


class IdleTimeoutTest(MultiUserCase):
    """A silent connection is told and closed after idle_timeout; its slot is
    free at once."""

    CONFIG = {"idle_timeout": 0.5, "max_connections_per_uid": 2}

    def test_idle_connection_is_closed(self):
        r = self.b.run(FIRST_LINE.replace("TIMEOUT", "10").replace("PATH", repr(self.daemon.socket_path)))
        self.assertEqual(r["error"], {"code": "timeout", "detail": {"limit": "idle_timeout"}}, r)
        self.assertIn("idle_timeout", r["message"])
        # The agent's own connection was closed as well; a new one works.
        self.b.connect()
        self.assertEqual(code_of(self.b.call("ping")), "success")
        # A connection with work in flight is not idle.
        self.assertEqual(code_of(self.b.call("sleep", {"seconds": 1.2}, timeout=10)), "success")


class RecordBytesTest(MultiUserCase):
    """max_detached_record_bytes_per_uid: a reply that does not fit is not
    kept, and further detached jobs are refused."""

    CONFIG = {"max_detached_record_bytes_per_uid": 4000}

    def test_records_bounded(self):
        r = self.b.call("pi", {"digits": 10000}, detach=True)
        self.assertEqual(r["result"], "accepted", r)
        done = self.b.run(f"""
            r = c.job_wait({r["data"]["job"]}, timeout=30, check=False)
            out = [r.result, (r.error or {{}}).get("code"), (r.error or {{}}).get("detail")]
        """)
        self.assertEqual(done, ["error", "too_large", {"limit": "max_detached_record_bytes_per_uid", "max": 4000}])
        small = self.b.call("pi", {"digits": 10}, detach=True)
        self.assertEqual(small["result"], "accepted", small)
        self.b.run(f"c.job_wait({small['data']['job']}, timeout=30)")
        # A is not affected by B's records.
        self.assertEqual(self.a.call("pi", {"digits": 10}, detach=True)["result"], "accepted")


# --- Stress: one user floods, the other keeps working --------------------------

FLOOD = """
import json, os, socket, threading, time
P = PATH
kiln.flood = []
res = {"conns_refused": 0, "detached": {}, "corpus": {}, "raw_held": 0}
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(P)
    kiln.flood.append(s)
    return s
# 1. Connections beyond max_connections_per_uid.
for _ in range(40):
    try:
        conn()
    except OSError:
        res["conns_refused"] += 1
time.sleep(0.5)
for s in list(kiln.flood):
    s.setblocking(False)
    try:
        got = s.recv(4096)
    except (BlockingIOError, OSError):
        got = b""
    s.setblocking(True)
    if b"busy" in got:
        res["conns_refused"] += 1
        kiln.flood.remove(s)
        s.close()
# Free all but a few, so the other floods have connections to use.
for s in kiln.flood[4:]:
    s.close()
del kiln.flood[4:]
# 2. Detached sleeps carrying attachments they never read.
for i in range(20):
    r = c.call("sleep", {"seconds": 5, "steps": 50}, detach=True, attachment=os.urandom(4 << 20), check=False)
    k = (r.error or {}).get("code", r.result)
    res["detached"][k] = res["detached"].get(k, 0) + 1
# 3. Renders never read.
sid = c.call("scene.create", {"width": 1024, "height": 1024}).data["scene_id"]
s = kiln.flood[0]
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.sendall(b"".join(json.dumps({"job_id": i, "action": "scene.render", "args": {"scene_id": sid}}).encode()
                   + b"\\n" for i in range(30)))
# 4. Declared attachments never sent.
for x in kiln.flood[1:4]:
    x.sendall(b'{"job_id":1,"action":"text.stats","raw":268435456}\\n')
    res["raw_held"] += 1
# 5. Corpus memory filled.
for i in range(12):
    r = c.call("corpus.load", {"name": "fill%d" % i, "paths": [BIG]}, check=False)
    k = (r.error or {}).get("code", r.result)
    res["corpus"][k] = res["corpus"].get(k, 0) + 1
out = res
"""

A_LOOP = """
import time
res = {"ok": 0, "failed": [], "max_s": 0.0}
deadline = time.monotonic() + SECONDS
while time.monotonic() < deadline:
    for action, args in (("ping", {}), ("pi", {"digits": 2000}),
                         ("corpus.search", {"name": "mine", "query": "PIN"}),
                         ("corpus.count", {"name": "mine", "word": "PIN"})):
        t0 = time.monotonic()
        r = c.call(action, args, timeout=20, check=False)
        res["max_s"] = max(res["max_s"], time.monotonic() - t0)
        if r.result == "success":
            res["ok"] += 1
        else:
            res["failed"].append([action, (r.error or {}).get("code"), r.message])
out = res
"""


class FloodStressTest(MultiUserCase):
    """B floods every resource at once (connections, detached jobs with big
    attachments, never-read renders, declared-but-unsent attachments, corpus
    memory) while A's ping, pi and corpus queries keep succeeding; kilnd's
    RSS stays within a bound derived from the config:

        baseline + max_attachment_bytes_total + corpus_memory_budget
                 + 2 x max_output_buffer x max_connections_per_uid + 64 MiB
    """

    CONFIG = {"max_connections_per_uid": 16, "max_inflight_per_uid": 64, "max_detached_per_uid": 6,
              "max_attachment_bytes_per_uid": 32 << 20, "max_attachment_bytes_total": 48 << 20,
              "max_output_buffer": 2 << 20, "corpus_memory_per_uid": 8 << 20,
              "corpus_memory_budget": 24 << 20, "scene_max_pixels": 1 << 20}

    @kilntest.heavy
    def test_flood(self):
        if os.environ.get("KILN_TEST_SANITIZER"):
            self.skipTest("RSS bounds are measured on the plain build (sanitizers keep freed memory)")
        cfg = dict(self.CONFIG)
        big = os.path.join(self.p["b"], "big.txt")
        with open(big, "w") as f:
            f.write("filler words for the budget " * 40000)
        os.chown(big, B.uid, B.gid)
        self.assertEqual(code_of(self.a.call("corpus.load", {"name": "mine", "paths": [self.p["diary"]]})),
                         "success")
        base = self.daemon.rss()
        bound = (base + cfg["max_attachment_bytes_total"] + cfg["corpus_memory_budget"]
                 + 2 * cfg["max_output_buffer"] * cfg["max_connections_per_uid"] + (64 << 20))
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], self.daemon.rss())
                time.sleep(0.05)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        flood: Dict[str, Any] = {}
        flooder = threading.Thread(target=lambda: flood.update(self.b.run(
            FLOOD.replace("PATH", repr(self.daemon.socket_path)).replace("BIG", repr(big)))), daemon=True)
        t0 = time.monotonic()
        flooder.start()
        time.sleep(0.5)
        a = self.a.run(A_LOOP.replace("SECONDS", "14"))
        flooder.join(120)
        stop.set()
        sampler.join(5)
        elapsed = time.monotonic() - t0
        print(f"\n  [stress] flood by B: {flood}; A: {a['ok']} requests ok, {len(a['failed'])} failed, "
              f"slowest {a['max_s']:.2f} s; kilnd RSS baseline {base >> 20} MiB, peak {peak[0] >> 20} MiB, "
              f"bound {bound >> 20} MiB; {elapsed:.1f} s", file=sys.stderr)
        self.assertFalse(flooder.is_alive(), "the flood did not finish")
        self.assertEqual(a["failed"], [])
        self.assertGreater(a["ok"], 8)
        self.assertLess(peak[0], bound)
        self.assertGreater(flood["conns_refused"], 0)
        self.assertIn("busy", flood["detached"])
        self.assertIn("too_large", flood["corpus"])
        self.b.run("for s in kiln.flood: s.close()\nout = 0")


# --- Descriptor passing -------------------------------------------------------

class FdPassingTest(MultiUserCase):
    """The Python client opens every file a request names with its own
    rights and passes the descriptor; kilnd reads and writes through it, so
    files outside path_roots work for their owner and nobody else."""

    def setUp(self) -> None:
        super().setUp()
        self.a_fd = Agent(A, self.daemon.socket_path, pass_fds=True)
        self.b_fd = Agent(B, self.daemon.socket_path, pass_fds=True)
        self.priv = os.path.join(self.base, f"a-private-{os.urandom(3).hex()}")
        os.makedirs(self.priv)
        for i in range(3):
            with open(os.path.join(self.priv, f"note{i}.txt"), "w") as f:
                f.write(f"private note {i} with PIN 4711\n")
            os.chown(os.path.join(self.priv, f"note{i}.txt"), A.uid, A.gid)
            os.chmod(os.path.join(self.priv, f"note{i}.txt"), 0o600)
        os.chown(self.priv, A.uid, A.gid)
        os.chmod(self.priv, 0o700)

    def tearDown(self) -> None:
        self.a_fd.close()
        self.b_fd.close()
        super().tearDown()

    def test_owner_reads_and_writes_outside_the_roots(self):
        note = os.path.join(self.priv, "note0.txt")
        r = self.a_fd.call("text.stats", {"path": note})
        self.assertEqual(code_of(r), "success", r)
        self.assertEqual(r["data"]["words"], 6)
        # Without a descriptor the same path is outside the roots.
        self.assertEqual(code_of(self.a.call("text.stats", {"path": note})), "forbidden")
        # B cannot open it, so it goes as a path: forbidden, nothing read.
        r = self.b_fd.call("text.stats", {"path": note})
        self.assertEqual(code_of(r), "forbidden", r)
        out = os.path.join(self.priv, "pi.txt")
        r = self.a_fd.call("pi", {"digits": 30, "output": out})
        self.assertEqual(code_of(r), "success", r)
        with open(out) as f:
            self.assertEqual(f.read(), "3.141592653589793238462643383279")
        self.assertEqual(os.stat(out).st_uid, A.uid)
        r = self.a_fd.call("corpus.load", {"name": "notes", "dir": self.priv, "glob": "note*.txt"})
        self.assertEqual(code_of(r), "success", r)
        self.assertEqual(r["data"]["documents"], 3)
        r = self.a_fd.call("corpus.load", {"name": "two", "paths": [note, os.path.join(self.priv, "note1.txt")]})
        self.assertEqual((code_of(r), r["data"].get("documents")), ("success", 2), r)

    def test_raw_descriptor_protocol(self):
        pid = self.daemon.pid
        before = len(os.listdir(f"/proc/{pid}/fd"))
        out = self.a.run("""
            import json, os, socket, time
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(20)
            s.connect(PATH)
            # Named but not sent: invalid_request naming fds.
            s.sendall(b'{"job_id":1,"action":"text.stats","args":{"path":"/x/y"},"fds":["/x/y"]}\\n')
            first = b""
            while b"\\n" not in first:
                first += s.recv(65536)
            # Sent with no request naming them: closed by kilnd.
            r, w = os.pipe()
            for i in range(40):
                socket.send_fds(s, [b" "], [r])
            s.sendall(b"\\n")
            time.sleep(0.5)  # strays are matched by order: let kilnd close them first
            # A write-only descriptor for a file to read: refused.
            fd = os.open(NOTE, os.O_WRONLY | os.O_APPEND)
            socket.send_fds(s, [b'{"job_id":2,"action":"text.stats","args":{"path":"%s"},"fds":["%s"]}\\n'
                            % (NOTE.encode(), NOTE.encode())], [fd])
            os.close(fd)
            fd = os.open(NOTE, os.O_RDONLY)
            socket.send_fds(s, [b'{"job_id":3,"action":"text.stats","args":{"path":"%s"},"fds":["%s"]}\\n'
                            % (NOTE.encode(), NOTE.encode())], [fd])
            os.close(fd)
            os.close(r)
            os.close(w)
            buf = first
            while buf.count(b"\\n") < 3:
                buf += s.recv(65536)
            out = [json.loads(l) for l in buf.splitlines()]
            s.close()
        """.replace("PATH", repr(self.daemon.socket_path)).replace("NOTE", repr(os.path.join(self.priv, "note1.txt"))))
        by_id = {r["job_id"]: r for r in out}
        self.assertEqual(by_id[1]["error"], {"code": "invalid_request", "detail": {"key": "fds"}})
        self.assertEqual(by_id[2]["error"]["code"], "invalid_args")
        self.assertEqual((by_id[3]["result"], by_id[3]["data"]["words"]), ("success", 6))
        time.sleep(0.3)
        self.assertLessEqual(len(os.listdir(f"/proc/{pid}/fd")), before + 2)


# --- Access lists -------------------------------------------------------------

def reload(daemon: kilntest.Daemon, **changes: Any) -> None:
    with open(daemon.config_path) as f:
        cfg = json.load(f)
    cfg.update(changes)
    with open(daemon.config_path, "w") as f:
        json.dump(cfg, f)
    daemon.proc.send_signal(signal.SIGHUP)


class SocketGroupTest(MultiUserCase):
    """allowed_gids admits a user through a supplementary group."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.CONFIG = {"allowed_uids": [0], "allowed_gids": [G]}
        super().setUpClass()

    def test_supplementary_group_counts(self):
        self.assertEqual(code_of(self.a.call("ping")), "success")
        r = self.b.call("ping")
        self.assertIn(code_of(r), ("forbidden", "Forbidden", "ConnectError", "ConnectionError", "KilnError",
                                   "ProtocolError", "BrokenPipeError", "ConnectionResetError"), r)
        self.assertIn(f"uid {B.uid} gid {B.gid} is not allowed", self.daemon.read_log())


class ProcedureGroupTest(MultiUserCase):
    """Per-procedure gid lists count supplementary groups, and describe shows
    each user only the procedures it may run."""

    @classmethod
    def setUpClass(cls) -> None:
        script = os.path.join(kilntest.DATA, "proc", "host.sh")
        spec = {"argv": ["/bin/sh", script, "{host}", "{attempt}", "/tmp"]}
        cls.CONFIG = {"procedures": {"t.group": dict(spec, allowed_gids=[G]),
                                     "t.rootonly": dict(spec, allowed_uids=[0]),
                                     "t.anyone": dict(spec)}}
        super().setUpClass()

    def described(self, agent: Agent) -> List[str]:
        r = agent.call("describe")
        self.assertEqual(code_of(r), "success", r)
        return sorted(a["name"] for a in r["data"]["actions"] if a["family"] == "proc")

    def runs(self, agent: Agent, name: str) -> str:
        return agent.run(f"""
            r = c.call({name!r}, {{}}, host_list=["ok-mu"], check=False, timeout=20)
            out = r.result if r.result != "error" else r.error["code"]
        """)

    def test_group_list_and_describe(self):
        self.assertEqual(self.described(self.a), ["t.anyone", "t.group"])
        self.assertEqual(self.described(self.b), ["t.anyone"])
        self.assertNotIn("t.rootonly", json.dumps(self.b.call("describe")))
        self.assertEqual(self.runs(self.a, "t.group"), "success")
        self.assertEqual(self.runs(self.b, "t.group"), "forbidden")
        self.assertEqual(self.runs(self.a, "t.rootonly"), "forbidden")
        self.assertEqual(self.runs(self.b, "t.anyone"), "success")
        with kilntest.kiln.Client(self.daemon.socket_path) as c:
            names = {a["name"] for a in c.describe()["actions"]}
        self.assertTrue({"t.anyone", "t.rootonly"} <= names)


class ReloadDropsUserTest(MultiUserCase):
    """A reload that removes a uid closes its open connections."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.CONFIG = {"allowed_uids": [0, A.uid, B.uid]}
        super().setUpClass()

    def test_removed_uid_loses_its_open_connection(self):
        self.assertEqual(code_of(self.a.call("ping")), "success")
        self.assertEqual(code_of(self.b.call("ping")), "success")
        reload(self.daemon, allowed_uids=[0, B.uid])
        got = "success"
        deadline = time.monotonic() + 10
        while got == "success" and time.monotonic() < deadline:
            time.sleep(0.05)
            got = code_of(self.a.call("ping", timeout=5))
        self.assertNotEqual(got, "success", "A's connection still works after the reload")
        self.assertIn("no longer allowed", self.daemon.read_log())
        # Closed, not merely refusing: the old connection reads end of stream.
        self.assertNotEqual(code_of(self.a.call("ping", timeout=5)), "success")
        # B, still listed, keeps its connection.
        self.assertEqual(code_of(self.b.call("ping")), "success")
        # A new connection from A is refused too.
        self.a.connect()
        self.assertNotEqual(code_of(self.a.call("ping", timeout=5)), "success")


# --- Job records --------------------------------------------------------------

class DurableRecordTest(unittest.TestCase):
    """A detached job is `accepted` only once its record is on disk; when the
    record cannot be written (read-only or full state directory) the request
    fails with a clear error and the job never runs."""

    def setUp(self) -> None:
        self.base = tempfile.mkdtemp(prefix="kiln-mu-rec-")
        self.state = os.path.join(self.base, "state")
        os.makedirs(self.state)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", self.state],
                          capture_output=True).returncode != 0:
            shutil.rmtree(self.base)
            self.skipTest("cannot mount a tmpfs here")
        self.daemon = kilntest.Daemon({"state_dir": self.state, "path_roots": [self.base]})
        self.client = self.daemon.client()

    def tearDown(self) -> None:
        self.client.close()
        rc = self.daemon.stop()
        subprocess.run(["umount", self.state], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)
        self.assertEqual(rc, 0)

    def detach_pi(self, name: str) -> Any:
        return self.client.call("pi", {"digits": 50, "output": os.path.join(self.base, name)}, detach=True,
                                check=False)

    def assert_refused(self, name: str, reason: str) -> None:
        r = self.detach_pi(name)
        self.assertEqual((r.result, (r.error or {}).get("code")), ("error", "internal"), r)
        self.assertIn("was not started: its record could not be written", r.message)
        self.assertIn(reason, r.message)
        time.sleep(0.5)
        self.assertFalse(os.path.exists(os.path.join(self.base, name)), "the refused job ran")
        self.assertEqual(self.client.job_list(), [])

    def test_accepted_means_recorded(self):
        r = self.detach_pi("ok.txt")
        self.assertEqual(r.result, "accepted", r)
        self.assertTrue(os.path.exists(os.path.join(self.state, f"job-{r.data['job']}.json")))
        self.assertEqual(self.client.job_wait(r.data["job"], timeout=20).result, "success")

    def test_read_only_state_dir(self):
        subprocess.run(["mount", "-o", "remount,ro", self.state], check=True)
        self.assert_refused("ro.txt", "Read-only file system")
        subprocess.run(["mount", "-o", "remount,rw", self.state], check=True)
        r = self.detach_pi("after.txt")
        self.assertEqual(r.result, "accepted", r)

    def test_full_state_dir(self):
        with open(os.path.join(self.state, "filler"), "wb") as f:
            try:
                while True:
                    f.write(b"x" * 65536)
                    f.flush()
            except OSError:
                pass
        self.assert_refused("full.txt", "No space left on device")


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
    return kiln.Client(path, pass_fds=False)


if __name__ == "__main__":
    unittest.main()
