"""Native modules (include/kiln/module.h) against a real kilnd: the C
examples in process and thread isolation, the Rust example when cargo
built it, crashes and hangs isolated in worker processes, cancel and
progress, loading on SIGHUP, and the refusals (ownership, ABI, schema).

The modules come from `make modules` ($BUILD/modules, $BUILD/tests/modules).
"""

from __future__ import annotations

import array
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest
from typing import Any, Dict, List, Optional

import kilntest
from kilntest import heavy

import kiln
from kiln import arrays

BUILD = os.environ.get("BUILD", os.path.join(kilntest.ROOT, "build"))
MODULES = os.path.join(BUILD, "modules")
TEST_MODULES = os.path.join(BUILD, "tests", "modules")
KILL_GRACE = 0.5


def module_path(name: str) -> str:
    for d in (MODULES, TEST_MODULES):
        p = os.path.join(d, name + ".so")
        if os.path.exists(p):
            return p
    raise unittest.SkipTest(f"{name}.so not built (run `make modules`)")


def install_module(name: str, directory: str, as_name: Optional[str] = None, mode: int = 0o755) -> str:
    """A copy of a built module in `directory` (a new file, so a fresh inode)."""
    dst = os.path.join(directory, (as_name or name) + ".so")
    tmp = dst + ".tmp"
    shutil.copyfile(module_path(name), tmp)
    os.chmod(tmp, mode)
    os.replace(tmp, dst)
    return dst


def module_dir() -> str:
    d = tempfile.mkdtemp(prefix="kilnmod-")
    os.chmod(d, 0o755)
    return d


def wait_for(pred: Any, timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout * (4 if kilntest.WRAPPER else 1)
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def module_stats(client: kiln.Client, path: str) -> Dict[str, Any]:
    for m in client.stats()["modules"]:
        if m["path"] == path:
            return m
    raise AssertionError(f"{path} not in stats")


def action_names(client: kiln.Client) -> List[str]:
    return [a["name"] for a in client.describe()["actions"]]


class ProcessModulesTest(kilntest.KilnTestCase):
    """numeric (2 workers), faults and progress in process isolation."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.moddir = module_dir()
        cls.numeric = install_module("numeric", cls.moddir)
        cls.faults = install_module("faults", cls.moddir)
        cls.progress = install_module("progress", cls.moddir)
        cls.CONFIG = {"module_kill_grace": KILL_GRACE, "modules": [
            {"path": cls.numeric, "workers": 2},
            {"path": cls.faults, "isolation": "process"},
            {"path": cls.progress},
        ]}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(cls.moddir, ignore_errors=True)

    def test_add(self) -> None:
        out = self.client.call("numeric.add", {"a": 40, "b": 2})
        self.assertEqual(out.data, {"sum": 42})

    def test_array_in_json_args(self) -> None:
        out = self.client.call("numeric.sum", {"values": [1, 2.5, -0.5]})
        self.assertEqual(out.data, {"n": 3, "sum": 3.0})

    def test_overflow_is_the_modules_invalid_args(self) -> None:
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.client.call("numeric.add", {"a": 2**63 - 1, "b": 1})
        self.assertIn("overflows", cm.exception.message)

    def test_dot_from_array_attachment(self) -> None:
        x = array.array("d", [1, 2, 3])
        y = array.array("d", [4, -5, 6])
        out = self.client.call("numeric.dot", {"n": 3}, attachment=arrays.to_bytes(x + y))
        self.assertEqual(out.data["dot"], 1 * 4 - 2 * 5 + 3 * 6)

    def test_buffers_pass_as_attachments_directly(self) -> None:
        x = array.array("d", [1, 2, 3, 4, 5, 6])
        for att in (x, memoryview(x), x.tobytes()):
            self.assertEqual(self.client.call("numeric.dot", {"n": 3}, attachment=att).data["dot"], 32.0)
        if arrays.have_numpy():
            import numpy as np  # type: ignore
            a = np.array([1, 2, 3, 4, 5, 6], dtype=np.float64)
            self.assertEqual(self.client.call("numeric.dot", {"n": 3}, attachment=a).data["dot"], 32.0)
        self.assertIs(kiln.arrays, arrays)

    def test_dot_wrong_length_is_invalid_args(self) -> None:
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.client.call("numeric.dot", {"n": 4}, attachment=arrays.to_bytes([1.0, 2.0]))
        self.assertIn("2n = 8 doubles", cm.exception.message)

    def test_running_sum_round_trip_1mb(self) -> None:
        n = 1 << 17  # 1 MiB of doubles: crosses by memfd both ways
        x = array.array("d", (float(i % 97) for i in range(n)))
        out, sums = arrays.call(self.client, "numeric.running_sum", {}, x)
        self.assertEqual(out.data, {"n": n, "attachment": n * 8})
        self.assertEqual(len(sums), n)
        for i in (0, 1, 2, 1000):
            self.assertEqual(sums[i], float(sum(j % 97 for j in range(i + 1))))
        self.assertEqual(sums[-1], sum(x))

    def test_running_sum_small_inline(self) -> None:
        out, sums = arrays.call(self.client, "numeric.running_sum", {}, memoryview(array.array("d", [1, 2, 3])))
        self.assertEqual(list(sums), [1.0, 3.0, 6.0])

    def test_running_sum_without_attachment_is_invalid_args(self) -> None:
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call("numeric.running_sum", {})

    def test_numpy_in_numpy_out(self) -> None:
        if not arrays.have_numpy():
            self.skipTest("numpy is not installed (python3-numpy)")
        import numpy as np  # type: ignore
        x = np.arange(10, dtype=np.float32)  # converted to float64 on the way
        out, sums = arrays.call(self.client, "numeric.running_sum", {}, x)
        self.assertIsInstance(sums, np.ndarray)
        self.assertEqual(sums.dtype, np.float64)
        self.assertEqual(list(sums), list(np.cumsum(np.arange(10, dtype=np.float64))))

    def test_schema_validated_before_the_module(self) -> None:
        for args, path in (({"a": 1}, "args.b"), ({"a": 1, "b": "2"}, "args.b"), ({"a": 1, "b": 2, "c": 3}, "args.c")):
            with self.assertRaises(kiln.InvalidArgs) as cm:
                self.client.call("numeric.add", args)
            self.assertEqual(cm.exception.detail, {"path": path}, args)

    def test_host_list_refused(self) -> None:
        with self.assertRaises(kiln.InvalidRequest):
            self.client.call("numeric.add", {"a": 1, "b": 2}, host_list=["localhost"])

    def test_describe_lists_module_actions_like_builtins(self) -> None:
        acts = {a["name"]: a for a in self.client.describe()["actions"]}
        for name in ("numeric.add", "numeric.sum", "numeric.dot", "numeric.running_sum", "example.crash",
                     "example.spin", "example.pid", "example.progress"):
            self.assertIn(name, acts)
            self.assertEqual(acts[name]["family"], "module")
            self.assertTrue(acts[name]["summary"])
            self.assertEqual(acts[name]["args"]["type"], "object")
        self.assertEqual(acts["numeric.add"]["args"]["required"], ["a", "b"])
        self.assertEqual(acts["numeric.add"]["data"]["properties"]["sum"], {"type": "integer"})
        self.assertEqual(acts["numeric.add"]["module"], {"path": self.numeric, "isolation": "process", "workers": 2})
        self.assertIn("ping", acts)

    def test_crash_three_times_is_internal_and_contained(self) -> None:
        before = module_stats(self.client, self.faults)
        pid = self.client.call("example.pid").data["pid"]
        for how, want in (("segv", "SIGSEGV"), ("abort", "SIGABRT"), ("exit", "status 7")):
            with self.assertRaises(kiln.Internal) as cm:
                self.client.call("example.crash", {"how": how})
            self.assertIn(want, cm.exception.message)
            self.assertEqual(cm.exception.detail["module"], self.faults)
            if how != "exit":
                self.assertEqual(cm.exception.detail["signal"], want)
            # kilnd, other modules and the crashed module's new worker all answer.
            self.assertEqual(self.client.ping()["pid"], self.daemon.pid)
            self.assertEqual(self.client.call("numeric.add", {"a": 1, "b": 2}).data["sum"], 3)
            new_pid = self.client.call("example.pid").data["pid"]
            self.assertNotEqual(new_pid, pid)
            pid = new_pid
        after = module_stats(self.client, self.faults)
        self.assertEqual(after["crashes"] - before["crashes"], 3)
        self.assertEqual(after["state"], "ready")

    @heavy
    def test_spin_times_out_and_its_worker_is_replaced(self) -> None:
        before = module_stats(self.client, self.faults)
        pid = self.client.call("example.pid").data["pid"]
        t0 = time.monotonic()
        with self.assertRaises(kiln.Timeout):
            self.client.call("example.spin", timeout=1.0)
        self.assertLess(time.monotonic() - t0, 1.0 + KILL_GRACE + 1.0)
        # The worker ignored cancellation: it is killed after the grace and replaced.
        new_pid = self.client.call("example.pid", timeout=10).data["pid"]
        self.assertNotEqual(new_pid, pid)
        with self.assertRaises(ProcessLookupError):
            os.kill(pid, 0)
        after = module_stats(self.client, self.faults)
        self.assertEqual(after["kills"] - before["kills"], 1)
        self.assertEqual(after["crashes"], before["crashes"])

    @heavy
    def test_other_calls_run_while_a_worker_spins(self) -> None:
        result: Dict[str, Any] = {}

        def spin() -> None:
            with self.daemon.client() as c:
                try:
                    c.call("example.spin", timeout=2.0)
                except kiln.KilnError as e:
                    result["code"] = e.code

        t = threading.Thread(target=spin)
        t.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        for i in range(20):
            self.assertEqual(self.client.call("numeric.add", {"a": i, "b": 1}).data["sum"], i + 1)
        self.client.ping()
        self.assertLess(time.monotonic() - t0, 1.5)
        t.join()
        self.assertEqual(result.get("code"), "timeout")

    def raw_cancel(self, action: str, args: Dict[str, Any], after: float) -> List[Dict[str, Any]]:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(20)
            s.connect(self.socket_path)
            s.sendall(json.dumps({"job_id": 1, "action": action, "args": args}).encode() + b"\n")
            time.sleep(after)
            s.sendall(json.dumps({"job_id": 2, "action": "cancel", "args": {"target": 1}}).encode() + b"\n")
            buf = b""
            while buf.count(b"\n") < 2:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        return [json.loads(line) for line in buf.splitlines()]

    def test_cancel_reaches_a_cooperative_handler(self) -> None:
        before = module_stats(self.client, self.progress)
        pid_before = before["workers"]
        replies = {r["job_id"]: r for r in self.raw_cancel("example.progress", {"steps": 100000, "step_ms": 5}, 0.3)}
        self.assertEqual(replies[1]["error"]["code"], "cancelled")
        self.assertEqual(replies[2]["result"], "success")
        # It returned on its own: same worker, no kill, and it serves the next call.
        out = self.client.call("example.progress", {"steps": 2, "step_ms": 1})
        self.assertEqual(out.data, {"steps": 2})
        after = module_stats(self.client, self.progress)
        self.assertEqual(after["workers"], pid_before)
        self.assertEqual(after["kills"], before["kills"])

    @heavy
    def test_cancel_of_a_spinning_handler_kills_its_worker(self) -> None:
        before = module_stats(self.client, self.faults)
        replies = {r["job_id"]: r for r in self.raw_cancel("example.spin", {}, 0.3)}
        self.assertEqual(replies[1]["error"]["code"], "cancelled")
        wait_for(lambda: module_stats(self.client, self.faults)["kills"] > before["kills"], what="the kill")
        self.client.call("example.pid", timeout=10)

    def test_progress_streams(self) -> None:
        seen: List[Dict[str, Any]] = []
        out = self.client.call("example.progress", {"steps": 5, "step_ms": 150}, progress=seen.append)
        self.assertEqual(out.data, {"steps": 5})
        self.assertEqual(out.message, "5 steps")
        self.assertGreaterEqual(len(seen), 2)
        self.assertEqual(seen[-1]["total"], 5)
        dones = [p["done"] for p in seen]
        self.assertEqual(dones, sorted(dones))

    def test_queued_calls_wait_for_a_worker(self) -> None:
        # Two workers, eight pipelined calls: all answered, in any order.
        outs = self.client.call_many([("numeric.add", {"a": i, "b": i}) for i in range(8)])
        self.assertEqual([o.data["sum"] for o in outs], [2 * i for i in range(8)])

    def test_stats(self) -> None:
        m = module_stats(self.client, self.numeric)
        self.assertEqual(m["state"], "ready")
        self.assertEqual(m["isolation"], "process")
        self.assertEqual(m["actions"], 4)
        self.assertEqual(len(m["workers"]), 2)
        for pid in m["workers"]:
            with open(f"/proc/{pid}/status") as f:
                status = f.read()
            self.assertIn(f"PPid:\t{self.daemon.pid}", status)

    def test_worker_has_no_descriptor_of_kilnds(self) -> None:
        pid = self.client.call("example.pid").data["pid"]
        fds = sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd"))
        # stdin (/dev/null), stdout and stderr (kilnd's log) and the socket to kilnd.
        self.assertEqual(fds, [0, 1, 2, 3])
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
        self.assertFalse([e for e in env if e.startswith((b"KILN", b"NOTIFY_SOCKET", b"LISTEN_FDS"))])
        with open(f"/proc/{pid}/status") as f:
            self.assertIn("NoNewPrivs:\t1", f.read())


class ThreadModulesTest(kilntest.KilnTestCase):
    """numeric and progress in thread isolation (in kilnd's process)."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.moddir = module_dir()
        cls.numeric = install_module("numeric", cls.moddir)
        cls.progress = install_module("progress", cls.moddir)
        cls.CONFIG = {"modules": [{"path": cls.numeric, "isolation": "thread"},
                                  {"path": cls.progress, "isolation": "thread"}]}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(cls.moddir, ignore_errors=True)

    def test_calls(self) -> None:
        self.assertEqual(self.client.call("numeric.add", {"a": 1, "b": 2}).data, {"sum": 3})
        out, sums = arrays.call(self.client, "numeric.running_sum", {}, [1.0, 2.0, 3.5])
        self.assertEqual(list(sums), [1.0, 3.0, 6.5])
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call("numeric.add", {"a": 1})

    def test_big_round_trip(self) -> None:
        x = array.array("d", [1.0]) * (1 << 17)
        out, sums = arrays.call(self.client, "numeric.running_sum", {}, x)
        self.assertEqual(sums[-1], float(1 << 17))

    def test_timeout_cancels_cooperatively(self) -> None:
        t0 = time.monotonic()
        with self.assertRaises(kiln.Timeout):
            self.client.call("example.progress", {"steps": 100000, "step_ms": 5}, timeout=0.5)
        self.assertLess(time.monotonic() - t0, 3)
        self.assertEqual(self.client.call("example.progress", {"steps": 1, "step_ms": 0}).data, {"steps": 1})

    def test_describe_and_stats(self) -> None:
        acts = {a["name"]: a for a in self.client.describe()["actions"]}
        self.assertEqual(acts["numeric.add"]["module"]["isolation"], "thread")
        self.assertEqual(module_stats(self.client, self.numeric)["state"], "ready")


class RustModuleTest(kilntest.KilnTestCase):
    """The Rust example (bindgen over kiln/module.h, a cdylib)."""

    @classmethod
    def setUpClass(cls) -> None:
        if not os.path.exists(os.path.join(MODULES, "rust_example.so")):
            raise unittest.SkipTest("rust_example.so not built: `make modules` builds it when Debian's cargo, "
                                    "rustc and librust-bindgen-dev are installed")
        cls.moddir = module_dir()
        cls.rust = install_module("rust_example", cls.moddir)
        cls.CONFIG = {"modules": [{"path": cls.rust}]}
        super().setUpClass()

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(cls.moddir, ignore_errors=True)

    def test_sum(self) -> None:
        out = self.client.call("rust.sum", {}, attachment=arrays.to_bytes([1.5, 2.5, 4.0]))
        self.assertEqual(out.data, {"n": 3, "sum": 8.0})

    def test_scale_big(self) -> None:
        x = array.array("d", range(1 << 17))
        out, y = arrays.call(self.client, "rust.scale", {"factor": -2}, x)
        self.assertEqual(y[12345], -24690.0)
        self.assertEqual(len(y), len(x))

    def test_schema(self) -> None:
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call("rust.scale", {}, attachment=b"")


class LoadingTest(unittest.TestCase):
    """Loading, SIGHUP and refusals: one daemon per test."""

    def setUp(self) -> None:
        self.moddir = module_dir()
        self.daemons: List[kilntest.Daemon] = []

    def tearDown(self) -> None:
        try:
            for d in self.daemons:
                rc = d.stop()
                self.assertEqual(rc, 0, f"kilnd exited with {rc}:\n{d.read_log()[-4000:]}")
        finally:
            shutil.rmtree(self.moddir, ignore_errors=True)

    def start(self, modules: List[Dict[str, Any]], **extra: Any) -> kilntest.Daemon:
        d = kilntest.Daemon(dict(extra, modules=modules))
        self.daemons.append(d)
        return d

    def reload(self, d: kilntest.Daemon, modules: List[Dict[str, Any]]) -> None:
        with open(d.config_path) as f:
            cfg = json.load(f)
        cfg["modules"] = modules
        with open(d.config_path, "w") as f:
            json.dump(cfg, f)
        os.kill(d.pid, signal.SIGHUP)

    def test_sighup_adds_and_removes(self) -> None:
        numeric = install_module("numeric", self.moddir)
        faults = install_module("faults", self.moddir)
        d = self.start([{"path": numeric}])
        with d.client() as c:
            self.assertNotIn("example.pid", action_names(c))
            self.reload(d, [{"path": numeric}, {"path": faults}])
            wait_for(lambda: "example.pid" in action_names(c), what="faults to load")
            self.assertGreater(c.call("example.pid").data["pid"], 0)
            workers = module_stats(c, numeric)["workers"]
            self.reload(d, [{"path": faults}])
            wait_for(lambda: "numeric.add" not in action_names(c), what="numeric to unload")
            with self.assertRaises(kiln.UnknownAction):
                c.call("numeric.add", {"a": 1, "b": 1})
            # Its workers are gone.
            for pid in workers:
                wait_for(lambda: not os.path.exists(f"/proc/{pid}") or
                         open(f"/proc/{pid}/stat").read().split()[2] == "Z", what=f"worker {pid} to stop")
            self.assertEqual(c.call("example.pid").data["pid"] > 0, True)

    @heavy  # one more daemon each: skipped under valgrind, where the suite's time is short
    def test_sighup_reloads_a_changed_file_only(self) -> None:
        path = install_module("numeric", self.moddir, as_name="mine")
        d = self.start([{"path": path}])
        with d.client() as c:
            workers = module_stats(c, path)["workers"]
            self.reload(d, [{"path": path}])
            time.sleep(0.5)
            self.assertEqual(module_stats(c, path)["workers"], workers, "an unchanged module was reloaded")
            install_module("faults", self.moddir, as_name="mine")  # replaced: a new file at the same path
            self.reload(d, [{"path": path}])
            wait_for(lambda: "example.pid" in action_names(c), what="the new version")
            self.assertNotIn("numeric.add", action_names(c))

    def test_module_config_reaches_the_module(self) -> None:
        path = install_module("progress", self.moddir)
        d = self.start([{"path": path, "config": {"step_ms": 200}}])
        with d.client() as c:
            t0 = time.monotonic()
            c.call("example.progress", {"steps": 2})
            self.assertGreaterEqual(time.monotonic() - t0, 0.4)
        self.assert_refused(install_module("progress", self.moddir, as_name="p2"),
                            "config.step_ms: expected a number", config={"step_ms": "slow"})

    @heavy  # one more daemon each: skipped under valgrind, where the suite's time is short
    def test_config_change_reloads(self) -> None:
        path = install_module("numeric", self.moddir)
        d = self.start([{"path": path}])
        with d.client() as c:
            self.reload(d, [{"path": path, "workers": 3}])
            wait_for(lambda: len(module_stats(c, path).get("workers", [])) == 3, what="three workers")

    def assert_refused(self, path: str, want: str, **spec: Any) -> Dict[str, Any]:
        d = self.start([dict(spec, path=path)])
        with d.client() as c:
            m = module_stats(c, path)
            self.assertEqual(m["state"], "refused")
            self.assertIn(want, m["error"])
            self.assertEqual(c.ping()["pid"], d.pid)
        self.assertIn("refused", d.read_log())
        self.assertIn(want, d.read_log())
        return m

    def test_world_writable_refused(self) -> None:
        path = install_module("numeric", self.moddir, mode=0o757)
        self.assert_refused(path, "writable by others")
        d = self.daemons[-1]
        with d.client() as c, self.assertRaises(kiln.UnknownAction):
            c.call("numeric.add", {"a": 1, "b": 1})

    @heavy  # one more daemon each: skipped under valgrind, where the suite's time is short
    def test_group_writable_refused(self) -> None:
        if os.getgid() == 0:
            self.skipTest("group-writable is allowed for group root; run as non-root to check this")
        path = install_module("numeric", self.moddir, mode=0o775)
        self.assert_refused(path, "writable by group")

    def test_foreign_owner_refused(self) -> None:
        if os.geteuid() != 0:
            self.skipTest("chown to another user needs root")
        path = install_module("numeric", self.moddir)
        os.chown(path, 65534, 65534)
        self.assert_refused(path, "owned by uid 65534")
        os.chown(path, 0, 0)
        # Fixed and reloaded: loads.
        d = self.daemons[-1]
        self.reload(d, [{"path": path}])
        with d.client() as c:
            wait_for(lambda: "numeric.add" in action_names(c), what="the fixed module")

    @heavy  # one more daemon each: skipped under valgrind, where the suite's time is short
    def test_thread_isolation_checks_ownership_too(self) -> None:
        path = install_module("numeric", self.moddir, mode=0o666)
        self.assert_refused(path, "writable by others", isolation="thread")

    def test_wrong_abi_refused_naming_both_versions(self) -> None:
        for iso in ("process", "thread"):
            path = install_module("abi_wrong", self.moddir, as_name="abi_wrong_" + iso)
            self.assert_refused(path, "built for kiln module ABI version 2, but kilnd implements version 1",
                                isolation=iso)

    @heavy  # one more daemon each: skipped under valgrind, where the suite's time is short
    def test_invalid_schema_refused(self) -> None:
        path = install_module("bad_schema", self.moddir)
        self.assert_refused(path, 'unsupported schema keyword "patternProperties"')

    @heavy  # one more daemon each: skipped under valgrind, where the suite's time is short
    def test_not_a_module_refused(self) -> None:
        path = os.path.join(self.moddir, "plain.so")
        shutil.copyfile(os.path.join(BUILD, "libkiln.so"), path)  # a shared object, not a module
        os.chmod(path, 0o755)
        self.assert_refused(path, "not a kiln module")

    @heavy  # one more daemon each: skipped under valgrind, where the suite's time is short
    def test_missing_file_refused(self) -> None:
        self.assert_refused(os.path.join(self.moddir, "nope.so"), "cannot open")

    @heavy  # one more daemon each: skipped under valgrind, where the suite's time is short
    def test_duplicate_action_refused(self) -> None:
        a = install_module("numeric", self.moddir, as_name="one")
        b = install_module("numeric", self.moddir, as_name="two")
        d = self.start([{"path": a}, {"path": b}])
        with d.client() as c:
            states = {m["path"]: m for m in c.stats()["modules"]}
            self.assertEqual(sorted(m["state"] for m in states.values()), ["ready", "refused"])
            refused = [m for m in states.values() if m["state"] == "refused"][0]
            self.assertIn("is already served by module", refused["error"])

    def test_bad_config_entries(self) -> None:
        path = install_module("numeric", self.moddir)
        for modules, want in (([{"path": path, "isolation": "fork"}], "isolation"),
                              ([{"path": path, "workers": 0}], "workers"),
                              ([{"path": path, "oops": 1}], 'unknown key "oops"'),
                              ([{"isolation": "thread"}], "path"),
                              ([{"path": path}, {"path": path}], "listed twice"),
                              ({"path": path}, "expected an array")):
            with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
                json.dump({"modules": modules}, f)
                f.flush()
                p = subprocess.run([kilntest.KILND, "--config", f.name, "--describe"], capture_output=True,
                                   text=True, timeout=60)
            self.assertNotEqual(p.returncode, 0, modules)
            self.assertIn('"modules"', p.stderr)
            self.assertIn(want, p.stderr)

    def test_shutdown_stops_workers(self) -> None:
        path = install_module("faults", self.moddir)
        d = self.start([{"path": path}])
        with d.client() as c:
            pid = c.call("example.pid").data["pid"]
        self.assertEqual(d.stop(), 0)
        self.daemons.remove(d)
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), what="the worker to go")

    @heavy
    def test_shutdown_with_a_spinning_call(self) -> None:
        path = install_module("faults", self.moddir)
        d = self.start([{"path": path}], shutdown_grace=1, module_kill_grace=0.5)
        result: Dict[str, Any] = {}

        def spin() -> None:
            with d.client() as c:
                result["out"] = c.call("example.spin", timeout=60, check=False)

        t = threading.Thread(target=spin)
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        self.assertEqual(d.stop(), 0)
        self.daemons.remove(d)
        # The grace, then cancel, then the kill grace: kilnd does not wait on the module.
        self.assertLess(time.monotonic() - t0, 1 + 0.5 + 3)
        t.join(10)
        self.assertEqual(result["out"].error["code"], "cancelled")


if __name__ == "__main__":
    unittest.main()
