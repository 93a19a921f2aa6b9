"""Security (issue 8): peer credentials (socket, procedures, jobs) checked
with a real second user, path_roots against `..`, symlinks, swapped
directories, FIFOs and aliases, and secrets (a passphrase and decrypted
text) kept out of logs, job records, other clients' replies, core dumps
(MADV_DONTDUMP) and freed memory.

Tests that need a second uid create the system user `kilntest` (as root)
and run clients as it with setpriv; without root they skip.
"""

from __future__ import annotations

import ctypes
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
import threading
import time
import unittest
from typing import Dict, List, Optional, Tuple

import kilntest
import kiln

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else "python3"
TEST_USER = "kilntest"
NOBODY = 65534


def test_user() -> Tuple[int, int]:
    """The uid and gid of the test user, created if missing (root only)."""
    try:
        pw = pwd.getpwnam(TEST_USER)
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        pass
    if os.geteuid() != 0:
        raise unittest.SkipTest(f"user {TEST_USER} is missing and creating it needs root")
    if not shutil.which("useradd"):
        raise unittest.SkipTest("useradd is not installed")
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", TEST_USER],
                   check=True, capture_output=True)
    pw = pwd.getpwnam(TEST_USER)
    return pw.pw_uid, pw.pw_gid


def need_setpriv() -> None:
    if os.geteuid() != 0:
        raise unittest.SkipTest("running a client as another uid needs root")
    if not shutil.which("setpriv"):
        raise unittest.SkipTest("setpriv (util-linux) is not installed")


def run_as(uid: int, gid: int, code: str, timeout: float = 30) -> dict:
    """Runs Python `code` as uid:gid (no supplementary groups) with setpriv;
    the code prints one JSON object, which is returned."""
    prelude = f"import json, sys\nsys.path.insert(0, {os.path.join(kilntest.ROOT, 'client')!r})\nimport kiln\n"
    p = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", PYTHON, "-c",
                        prelude + textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"client as uid {uid} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout)


def open_socket_to_all(daemon: kilntest.Daemon) -> None:
    """The test daemon's directory and socket are private; let other uids
    reach the socket so the daemon's own checks are what is tested."""
    os.chmod(daemon.dir, 0o755)
    os.chmod(daemon.socket_path, 0o666)


# --- Peer credentials ---------------------------------------------------------

RAW_PING = """
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(PATH)
    s.sendall(b'{"job_id":1,"action":"ping"}\\n')
    s.shutdown(socket.SHUT_WR)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    print(json.dumps({"replies": [json.loads(l) for l in data.splitlines() if l]}))
"""


class SocketAllowListTest(kilntest.KilnTestCase):
    """allowed_uids excludes the test user: its connection gets forbidden
    and is closed; root (listed) is served; a reload that lists it lets
    it in."""

    @classmethod
    def setUpClass(cls) -> None:
        need_setpriv()
        cls.uid, cls.gid = test_user()
        # Neither list names the test user (nobody's group is not its group).
        cls.CONFIG = {"allowed_uids": [0], "allowed_gids": [NOBODY]}
        super().setUpClass()
        open_socket_to_all(cls.daemon)
        if cls.gid == NOBODY:
            raise unittest.SkipTest(f"user {TEST_USER}'s group is nobody's")

    def ping_as_test_user(self) -> List[dict]:
        return run_as(self.uid, self.gid, RAW_PING.replace("PATH", repr(self.socket_path)))["replies"]

    def test_other_uid_is_refused(self):
        replies = self.ping_as_test_user()
        self.assertEqual(len(replies), 1, replies)
        self.assertEqual(replies[0]["error"]["code"], "forbidden")
        self.assertIsNone(replies[0]["job_id"])
        self.assertEqual(self.client.ping()["pid"], self.daemon.pid)
        self.assertIn(f"uid {self.uid} gid {self.gid} is not allowed", self.daemon.read_log())

    def reload(self, cfg: dict) -> None:
        with open(self.daemon.config_path, "w") as f:
            json.dump(cfg, f)
        self.daemon.proc.send_signal(signal.SIGHUP)

    def outcome_as_test_user(self, want: str) -> str:
        """The test user's ping outcome once it is `want` (a reload is
        asynchronous), or the last one after a bounded wait."""
        got = ""
        for _ in range(50):
            r = self.ping_as_test_user()[0]
            got = r["result"] if r["result"] != "error" else r["error"]["code"]
            if got == want:
                break
            time.sleep(0.1)
        return got

    def test_reload_lets_it_in(self):
        with open(self.daemon.config_path) as f:
            cfg = json.load(f)
        try:
            self.reload(dict(cfg, allowed_gids=[self.gid]))
            self.assertEqual(self.outcome_as_test_user("success"), "success")
        finally:
            self.reload(cfg)
        self.assertEqual(self.outcome_as_test_user("forbidden"), "forbidden")

    def test_gid_list_alone_restricts(self):
        """allowed_gids without allowed_uids: only members of the listed
        groups (by the peer's gid) get in."""
        d = kilntest.Daemon({"allowed_gids": [0]})
        try:
            open_socket_to_all(d)
            replies = run_as(self.uid, self.gid, RAW_PING.replace("PATH", repr(d.socket_path)))["replies"]
            self.assertEqual([r["error"]["code"] for r in replies], ["forbidden"], replies)
            self.assertEqual(d.client().ping()["pid"], d.pid)
        finally:
            self.assertEqual(d.stop(), 0)


PROC_CALLS = """
    out = {}
    with kiln.Client(PATH) as c:
        for name in NAMES:
            try:
                r = c.run_procedure(name, ["ok-sec"], timeout=10)
                out[name] = r.result
            except kiln.KilnError as e:
                out[name] = e.code
        try:
            c.call("t.root_only", host_list=["ok-sec"], detach=True)
            out["detached"] = "accepted"
        except kiln.KilnError as e:
            out["detached"] = e.code
    print(json.dumps(out))
"""


class ProcedureAllowListTest(kilntest.KilnTestCase):
    """Per-procedure allowed_uids/allowed_gids, checked before anything runs."""

    @classmethod
    def setUpClass(cls) -> None:
        need_setpriv()
        cls.uid, cls.gid = test_user()
        cls.state = tempfile.mkdtemp(prefix="kiln-sec-proc-")
        os.chmod(cls.state, 0o777)
        script = os.path.join(kilntest.DATA, "proc", "host.sh")

        def proc(**allow):
            spec = {"argv": ["/bin/sh", script, "{host}", "{attempt}", cls.state]}
            spec.update(allow)
            return spec
        cls.CONFIG = {"procedures": {
            "t.root_only": proc(allowed_uids=[0]),
            "t.test_user": proc(allowed_uids=[cls.uid]),
            "t.test_group": proc(allowed_gids=[cls.gid]),
            "t.anyone": proc(),
        }}
        super().setUpClass()
        open_socket_to_all(cls.daemon)

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(cls.state, ignore_errors=True)

    def calls_as(self, uid: int, gid: int) -> Dict[str, str]:
        names = ["t.root_only", "t.test_user", "t.test_group", "t.anyone"]
        return run_as(uid, gid, PROC_CALLS.replace("PATH", repr(self.socket_path)).replace("NAMES", repr(names)))

    def test_each_uid_runs_only_what_it_may(self):
        self.assertEqual(self.calls_as(self.uid, self.gid),
                         {"t.root_only": "forbidden", "t.test_user": "success", "t.test_group": "success",
                          "t.anyone": "success", "detached": "forbidden"})
        self.assertEqual(self.calls_as(NOBODY, NOBODY),
                         {"t.root_only": "forbidden", "t.test_user": "forbidden", "t.test_group": "forbidden",
                          "t.anyone": "success", "detached": "forbidden"})
        # Root is not special for procedures: only the lists count.
        with self.assertRaises(kiln.Forbidden):
            self.client.run_procedure("t.test_user", ["ok-sec"], timeout=10)
        self.assertEqual(self.client.run_procedure("t.root_only", ["ok-sec"], timeout=10).result, "success")


JOB_CALLS = """
    out = {}
    with kiln.Client(PATH) as c:
        out["list"] = sorted(j["job"] for j in c.job_list())
        for name, fn in (("status", c.job_status), ("cancel", c.job_cancel)):
            try:
                fn(OTHER)
                out[name] = "visible"
            except kiln.NotFound:
                out[name] = "not_found"
        try:
            c.job_wait(OTHER, timeout=0.2)
            out["wait"] = "visible"
        except kiln.NotFound:
            out["wait"] = "not_found"
        except kiln.KilnError as e:
            out["wait"] = e.code
        if MINE:
            out["mine"] = c.detach("sleep", {"seconds": 30, "steps": 300})
    print(json.dumps(out))
"""


class JobOwnershipTest(kilntest.KilnTestCase):
    """Detached jobs: a uid sees, waits for and cancels only its own; root
    sees all."""

    @classmethod
    def setUpClass(cls) -> None:
        need_setpriv()
        cls.uid, cls.gid = test_user()
        super().setUpClass()
        open_socket_to_all(cls.daemon)

    def jobs_as(self, uid: int, gid: int, other: int, mine: bool) -> dict:
        code = JOB_CALLS.replace("PATH", repr(self.socket_path)).replace("OTHER", str(other))
        return run_as(uid, gid, code.replace("MINE", repr(mine)))

    def test_uid_sees_only_its_own_jobs(self):
        rootjob = self.client.detach("sleep", {"seconds": 30, "steps": 300})
        a = self.jobs_as(self.uid, self.gid, rootjob, True)
        self.assertEqual((a["list"], a["status"], a["cancel"], a["wait"]),
                         ([], "not_found", "not_found", "not_found"))
        b = self.jobs_as(NOBODY, NOBODY, a["mine"], True)
        self.assertEqual((b["list"], b["status"], b["cancel"], b["wait"]),
                         ([], "not_found", "not_found", "not_found"))
        # The test user's job was not cancelled by nobody's attempt.
        st = self.client.job_status(a["mine"])
        self.assertEqual((st["state"], st["uid"]), ("running", self.uid))
        a2 = self.jobs_as(self.uid, self.gid, b["mine"], False)
        self.assertEqual(a2["list"], [a["mine"]])
        self.assertEqual(a2["status"], "not_found")
        self.assertTrue({rootjob, a["mine"], b["mine"]} <= {j["job"] for j in self.client.job_list()})
        for j in (rootjob, a["mine"], b["mine"]):
            self.client.job_cancel(j)


# --- Paths --------------------------------------------------------------------

class PathTest(kilntest.KilnTestCase):
    """Only files under path_roots, however the path is spelled."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = tempfile.mkdtemp(prefix="kiln-sec-paths-")
        cls.root = os.path.join(cls.tmp, "root")
        cls.out = os.path.join(cls.tmp, "outside")
        os.makedirs(os.path.join(cls.root, "sub"))
        os.makedirs(cls.out)
        with open(os.path.join(cls.out, "secret.txt"), "w") as f:
            f.write("topsecretword " * 20)
        with open(os.path.join(cls.root, "inside.txt"), "w") as f:
            f.write("harmless words " * 20)
        os.symlink(os.path.join(cls.out, "secret.txt"), os.path.join(cls.root, "link.txt"))
        os.symlink(cls.out, os.path.join(cls.root, "dirlink"))
        os.symlink("../outside/secret.txt", os.path.join(cls.root, "rellink.txt"))
        os.symlink(os.path.join(cls.out, "new.txt"), os.path.join(cls.root, "dangling.txt"))
        os.mkfifo(os.path.join(cls.root, "fifo"))
        # Beside the root, its name the root's plus one letter.
        cls.sibling = cls.root + "x"
        os.makedirs(cls.sibling)
        with open(os.path.join(cls.sibling, "secret.txt"), "w") as f:
            f.write("topsecretword " * 20)
        cls.CONFIG = {"path_roots": [cls.root], "threads": 2}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def read_error(self, path: str) -> Tuple[Optional[str], str]:
        """text.short_long on `path`: (error code, message), (None, "") for
        a harmless file read, ("SECRET", "") if the outside file was read
        (every word of the secret is long, no word of the harmless files
        is, so the fraction tells which was read)."""
        try:
            out = self.client.call("text.short_long", {"path": path}, timeout=5)
        except kiln.KilnError as e:
            return e.code, e.message
        self.assertNotIn("topsecretword", json.dumps(out.data))
        return ("SECRET" if out.data["fraction"] else None), ""

    def read_code(self, path: str) -> Optional[str]:
        return self.read_error(path)[0]

    def test_reads_cannot_escape(self):
        r, o = self.root, self.out
        self.assertIsNone(self.read_code(os.path.join(r, "inside.txt")))
        escapes = [
            os.path.join(r, "..", "outside", "secret.txt"),
            os.path.join(r, "sub", "..", "..", "outside", "secret.txt"),
            os.path.join(r, "link.txt"),
            os.path.join(r, "rellink.txt"),
            os.path.join(r, "dirlink", "secret.txt"),
            os.path.join(r, "dirlink", "..", "outside", "secret.txt"),
            "/proc/self/root" + os.path.join(o, "secret.txt"),
            f"/proc/{self.daemon.pid}/root" + os.path.join(o, "secret.txt"),
            "/proc/self/cwd/" + "../" * 32 + os.path.join(o, "secret.txt").lstrip("/"),
            os.path.join(o, "secret.txt"),
        ]
        for p in escapes:
            with self.subTest(path=p):
                code, msg = self.read_error(p)
                self.assertEqual(code, "forbidden")
                # Refused when the path was resolved, before anything was
                # opened (not only by the check of the opened file).
                self.assertIn("is outside the configured path_roots", msg)
                self.assertNotIn("while opening", msg)
        code, msg = self.read_error("outside/secret.txt")
        self.assertEqual(code, "invalid_args")
        self.assertIn("path must be absolute", msg)
        self.assertEqual(self.read_code(os.path.join(r, "inside.txt")), None)
        self.assertEqual(self.read_code(os.path.join(r, "nothing.txt")), "not_found")

    def test_sibling_of_root_is_outside(self):
        """<root>x is not under <root>: a root matches whole path components."""
        r, sib = self.root, self.sibling
        for p in (os.path.join(sib, "secret.txt"), os.path.join(r, "..", os.path.basename(sib), "secret.txt")):
            with self.subTest(path=p):
                code, msg = self.read_error(p)
                self.assertEqual(code, "forbidden")
                self.assertIn("outside the configured path_roots", msg)
        with self.assertRaises(kiln.Forbidden):
            self.client.call("pi", {"digits": 10, "output": os.path.join(sib, "w.txt")}, timeout=5)
        self.assertEqual(os.listdir(sib), ["secret.txt"])

    def test_writes_cannot_escape(self):
        r, o = self.root, self.out
        for p in (os.path.join(r, "..", "outside", "w1.txt"), os.path.join(r, "dirlink", "w2.txt"),
                  os.path.join(r, "dangling.txt"), os.path.join(r, "link.txt")):
            with self.subTest(path=p):
                with self.assertRaises(kiln.KilnError) as cm:
                    self.client.call("pi", {"digits": 10, "output": p}, timeout=5)
                self.assertEqual(cm.exception.code, "forbidden")
        self.assertEqual(sorted(os.listdir(o)), ["secret.txt"])
        with open(os.path.join(o, "secret.txt")) as f:
            self.assertTrue(f.read().startswith("topsecretword"))

    def test_fifo_does_not_block_the_pool(self):
        # Two FIFO reads would hold both pool threads forever if opening
        # blocked; they are refused and the pool stays free.
        fifo = os.path.join(self.root, "fifo")
        for _ in range(3):
            code, msg = self.read_error(fifo)
            self.assertEqual(code, "invalid_args")
            self.assertIn("not a regular file", msg)
        self.assertEqual(self.client.call("sleep", {"seconds": 0.01}, timeout=5).result, "success")
        # With a writer holding the FIFO open, a read would wait for data
        # forever: scene files are refused as well, at once.
        w = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
        try:
            for _ in range(2):
                with self.assertRaises(kiln.KilnError) as cm:
                    self.client.load_scene(path=fifo, timeout=5)
                self.assertEqual(cm.exception.code, "invalid_args")
                self.assertIn("not a regular file", cm.exception.message)
            self.assertEqual(self.client.call("sleep", {"seconds": 0.01}, timeout=5).result, "success")
        finally:
            os.close(w)

    @kilntest.heavy
    def test_swapped_directory_race(self):
        """A directory swapped, atomically and endlessly, with a symlink to
        the outside while requests name a file deep in it: between
        resolving and opening, the path may lead outside, and the opened
        file's real path is checked again.  Never the outside file.

        The file is 150 directories down, so realpath() spends most of its
        time after it has passed the swapped directory: the window in
        which the check and the open disagree is wide enough to be hit
        often.  The swapper is a separate process (no GIL in between)."""
        libc = ctypes.CDLL(None, use_errno=True)
        if not hasattr(libc, "renameat2"):
            self.skipTest("no renameat2 in libc")
        sw, link = os.path.join(self.root, "sw"), os.path.join(self.root, "swl")
        deep = os.path.join(*["d"] * 150)
        os.makedirs(os.path.join(sw, deep), exist_ok=True)
        os.makedirs(os.path.join(self.out, deep), exist_ok=True)
        with open(os.path.join(sw, deep, "f.txt"), "w") as f:
            f.write("harmless words")
        shutil.copy(os.path.join(self.out, "secret.txt"), os.path.join(self.out, deep, "f.txt"))
        os.symlink(self.out, link)
        stop = os.path.join(self.tmp, "stop-swapping")
        swapper = subprocess.Popen([PYTHON, "-c", textwrap.dedent(f"""
            import ctypes, os
            libc = ctypes.CDLL(None, use_errno=True)
            a, b, n = {sw!r}.encode(), {link!r}.encode(), 0
            while n % 256 or not os.path.exists({stop!r}):
                if libc.renameat2(-100, a, -100, b, 2) != 0:  # AT_FDCWD, RENAME_EXCHANGE
                    break
                n += 1
            print(n)
            """)], stdout=subprocess.PIPE, text=True)
        codes: Dict[str, int] = {}
        try:
            for _ in range(1000):
                code = self.read_code(os.path.join(sw, deep, "f.txt"))
                codes[str(code)] = codes.get(str(code), 0) + 1
        finally:
            open(stop, "w").close()
            flips = int(swapper.communicate(timeout=30)[0] or 0)
            shutil.rmtree(os.path.join(self.out, "d"))
        self.assertGreater(flips, 100, "the swapper did not run")
        # "SECRET" (the outside file read) must never appear.
        self.assertTrue(set(codes) <= {"None", "forbidden", "not_found", "invalid_args"}, codes)
        self.assertIn("None", codes)
        self.assertIn("forbidden", codes)


class PathAliasTest(unittest.TestCase):
    """A bind mount is the kernel's, not a symlink: a root reached through an
    alias outside path_roots is outside (the daemon checks the path it
    resolves, so only an administrator who mounts something *into* a root
    can widen it)."""

    def test_bind_mount_alias_is_outside(self):
        if os.geteuid() != 0:
            self.skipTest("mount --bind needs root")
        tmp = tempfile.mkdtemp(prefix="kiln-sec-bind-")
        root, alias = os.path.join(tmp, "root"), os.path.join(tmp, "alias")
        os.makedirs(root)
        os.makedirs(alias)
        with open(os.path.join(root, "f.txt"), "w") as f:
            f.write("words in the root")
        if subprocess.run(["mount", "--bind", root, alias], capture_output=True).returncode != 0:
            shutil.rmtree(tmp)
            self.skipTest("mount --bind is not permitted here")
        d = kilntest.Daemon({"path_roots": [root]})
        try:
            with d.client() as c:
                self.assertEqual(c.call("text.short_long", {"path": os.path.join(root, "f.txt")}).result,
                                 "success")
                with self.assertRaises(kiln.Forbidden):
                    c.call("text.short_long", {"path": os.path.join(alias, "f.txt")})
        finally:
            self.assertEqual(d.stop(), 0)
            subprocess.run(["umount", alias], capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)


class FileSizeLimitTest(kilntest.KilnTestCase):
    """max_file_bytes applies to every file the daemon reads for a client:
    text inputs, corpus files, scene documents, meshes and textures."""

    CONFIG = {"max_file_bytes": 1000}

    def setUp(self) -> None:
        super().setUp()
        self.small = os.path.join(self.daemon.dir, "small.txt")
        self.big = os.path.join(self.daemon.dir, "big.txt")
        with open(self.small, "w") as f:
            f.write("word " * 200)
        with open(self.big, "w") as f:
            f.write("word " * 201)

    def assertTooLarge(self, fn) -> kiln.KilnError:
        with self.assertRaises(kiln.KilnError) as cm:
            fn()
        self.assertEqual(cm.exception.code, "too_large", str(cm.exception))
        return cm.exception

    def test_text(self):
        self.assertEqual(self.client.call("text.short_long", {"path": self.small}).result, "success")
        e = self.assertTooLarge(lambda: self.client.call("text.short_long", {"path": self.big}))
        self.assertIn("max_file_bytes", str(e))

    def test_corpus(self):
        self.assertEqual(self.client.corpus_load("fs", [self.small])["documents"], 1)
        e = self.assertTooLarge(lambda: self.client.corpus_load("fs2", [self.small, self.big]))
        self.assertEqual([(f["document"], f["code"]) for f in e.detail["failed"]], [("big.txt", "too_large")])

    def test_scene_files(self):
        scenes = os.path.join(kilntest.DATA, "scenes")
        doc = {"width": 8, "height": 8, "elements": [], "lights": []}
        path = os.path.join(self.daemon.dir, "scene.json")
        with open(path, "w") as f:
            json.dump(doc, f)
        with self.client.load_scene(path=path):
            pass
        with open(path, "w") as f:
            json.dump(dict(doc, padding="x" * 1000), f)
        e = self.assertTooLarge(lambda: self.client.load_scene(path=path))
        self.assertIn("max_file_bytes", str(e))
        # stripes.png and cube.obj are under 1000 bytes, palette.png is over.
        self.assertLess(os.path.getsize(os.path.join(scenes, "stripes.png")), 1000)
        self.assertGreater(os.path.getsize(os.path.join(scenes, "palette.png")), 1000)
        big_obj = os.path.join(self.daemon.dir, "big.obj")
        with open(os.path.join(scenes, "cube.obj")) as f:
            cube = f.read()
        with open(big_obj, "w") as f:
            f.write("# padding\n" * 100 + cube)
        with self.client.scene(width=8, height=8) as s:
            s.add_sphere((0, 0, -3), 1, texture=os.path.join(scenes, "stripes.png"))
            s.add_mesh(os.path.join(scenes, "cube.obj"))
            self.assertTooLarge(lambda: s.add_sphere((0, 0, -3), 1, texture=os.path.join(scenes, "palette.png")))
            self.assertTooLarge(lambda: s.add_mesh(big_obj))


# --- Secrets ------------------------------------------------------------------

def memory_scan(pid: int, needles: List[bytes]) -> Dict[bytes, List[Tuple[str, bool]]]:
    """Where each needle occurs in the process's readable memory: a list of
    (mapping, has the "dd" (MADV_DONTDUMP) VmFlag) per occurrence region."""
    maps: List[Tuple[int, int, str, bool]] = []
    cur = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+)", line)
            if m:
                cur = [int(m.group(1), 16), int(m.group(2), 16), line.strip(), m.group(3)]
            elif line.startswith("VmFlags:") and cur:
                flags = line.split()[1:]
                if "rd" in flags and cur[3].startswith("r"):
                    maps.append((cur[0], cur[1], cur[2], "dd" in flags))
    found: Dict[bytes, List[Tuple[str, bool]]] = {n: [] for n in needles}
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for start, end, desc, dd in maps:
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            for n in needles:
                if n in data:
                    found[n].append((desc, dd))
    return found


class SecretsTest(unittest.TestCase):
    """A corpus loaded with a known passphrase at log_level debug."""

    @classmethod
    def setUpClass(cls) -> None:
        if not shutil.which("openssl"):
            raise AssertionError("required test tool openssl is missing (make deps-test installs it)")
        cls.tmp = tempfile.mkdtemp(prefix="kiln-sec-secret-")
        tag = os.urandom(6).hex()
        cls.passphrase = f"pass-{tag}-phrase"
        cls.wrong = f"wrong-{tag}-guess"
        # Decrypted text that no request ever names.
        cls.marker = f"plaintextmarker{tag}"
        cls.corpus = os.path.join(cls.tmp, "corpus")
        os.makedirs(cls.corpus)
        for i in range(3):
            plain = os.path.join(cls.tmp, f"doc{i}.txt")
            with open(plain, "w") as f:
                f.write(f"hello there {cls.marker} number {i}\n" * 200)
            subprocess.run(["openssl", "enc", "-aes-256-cbc", "-pbkdf2", "-iter", "1000", "-salt", "-pass",
                            "pass:" + cls.passphrase, "-in", plain, "-out", os.path.join(cls.corpus, f"doc{i}.enc")],
                           check=True)
            os.unlink(plain)
        cls.key_file = os.path.join(cls.tmp, "key.txt")
        with open(cls.key_file, "w") as f:
            f.write(cls.passphrase + "\n")
        cls.state = os.path.join(cls.tmp, "state")
        cls.daemon = kilntest.Daemon({"log_level": "debug", "path_roots": [kilntest.DATA, cls.tmp],
                                      "state_dir": cls.state})

    @classmethod
    def tearDownClass(cls) -> None:
        rc = cls.daemon.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        if rc != 0:
            raise AssertionError(f"kilnd exited with {rc}")

    def load_args(self, name: str, **kw) -> dict:
        args = {"name": name, "dir": self.corpus, "glob": "*.enc", "format": "openssl-enc", "iterations": 1000}
        args.update(kw)
        return args

    def test_secrets_stay_secret(self):
        d = self.daemon
        secrets = [self.passphrase.encode(), self.wrong.encode(), self.marker.encode()]
        observed: List[str] = []
        stop = threading.Event()

        def other_client():
            # Another client watching everything it can, meanwhile.
            with d.client() as c:
                for _ in range(100_000):
                    if stop.is_set():
                        return
                    for action in ("stats", "corpus.list", "job.list", "describe"):
                        observed.append(json.dumps(c.call(action).data))
                    for item in c.call("corpus.list").data["corpora"]:
                        observed.append(json.dumps(c.call("corpus.info", {"name": item["name"]}).data))
                    time.sleep(0.01)
        watcher = threading.Thread(target=other_client, daemon=True)
        watcher.start()
        with d.client() as c:
            c.call("corpus.load", self.load_args("inline", passphrase=self.passphrase))
            c.call("corpus.load", self.load_args("keyfile", key_file=self.key_file))
            with self.assertRaises(kiln.KilnError) as cm:
                c.call("corpus.load", self.load_args("wrong", passphrase=self.wrong))
            self.assertNotIn(self.wrong, str(cm.exception) + json.dumps(cm.exception.detail))
            job = c.detach("corpus.load", self.load_args("detached", passphrase=self.passphrase))
            done = c.job_wait(job, timeout=30)
            self.assertEqual(done.result, "success")
            observed.append(json.dumps(c.job_status(job)))
            self.assertEqual(c.corpus_count("inline", "hello")["total"], 600)
            self.assertEqual(c.corpus_count("detached", "hello")["total"], 600)
            # A request line cut short right after the passphrase.
            bad = json.dumps({"job_id": 9, "action": "corpus.load",
                              "args": self.load_args("x", passphrase=self.wrong)})[:-3] + "\n"
            replies = kilntest.raw_exchange(d.socket_path, bad.encode())
            self.assertEqual(replies[0]["error"]["code"], "parse_error")
            self.assertNotIn(self.wrong, json.dumps(replies))
            time.sleep(0.3)
            stop.set()
            watcher.join(10)
            self.assertGreater(len(observed), 4)
            for text in observed:
                for s in secrets:
                    self.assertNotIn(s.decode(), text)
            # Job records on disk hold no argument values.
            for name in os.listdir(self.state):
                with open(os.path.join(self.state, name), "rb") as f:
                    data = f.read()
                for s in secrets:
                    self.assertNotIn(s, data, name)
            # The log (debug level) names neither.
            log = d.read_log().encode()
            self.assertIn(b"corpus.load", log)
            for s in secrets:
                self.assertNotIn(s, log)
            # While loaded, the decrypted text lives only in pages excluded
            # from core dumps; the passphrase nowhere (wiped after use).
            if os.environ.get("KILN_TEST_SANITIZER") or kilntest.WRAPPER:
                self.skipTest("memory scan needs the plain build (ASan and valgrind keep freed memory "
                              "in quarantine and move allocations); the checks above ran")
            try:
                found = memory_scan(d.pid, secrets)
            except PermissionError:
                self.skipTest("cannot read the daemon's memory (ptrace restricted)")
            self.assertTrue(found[self.marker.encode()], "the corpus text was not found in memory at all")
            self.assertEqual([m for m, dd in found[self.marker.encode()] if not dd], [],
                             "decrypted text in memory that a core dump would include")
            self.assertEqual(found[self.passphrase.encode()], [], "the passphrase is still in memory")
            self.assertEqual(found[self.wrong.encode()], [], "the wrong passphrase is still in memory")
            for name in ("inline", "keyfile", "detached"):
                c.corpus_unload(name)
        # Unloaded: wiped, not just freed.
        found = memory_scan(d.pid, [self.marker.encode()])
        self.assertEqual(found[self.marker.encode()], [], "decrypted text left in memory after unload")


if __name__ == "__main__":
    unittest.main()
