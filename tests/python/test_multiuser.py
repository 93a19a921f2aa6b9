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
        self.assertIn(code_of(r), ("forbidden", "ConnectionError", "KilnError", "ProtocolError",
                                   "BrokenPipeError", "ConnectionResetError"), r)
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
    return kiln.Client(path)


if __name__ == "__main__":
    unittest.main()
