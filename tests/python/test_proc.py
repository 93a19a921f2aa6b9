"""Host procedures (issue 7): configured argv per host, retries, timeouts,
process groups, max_parallel, host validation, permissions, shutdown.

The procedures run tests/data/proc/host.sh, whose behaviour is chosen by the
host name (ok*, fail*, flaky*, hang*, stubborn*, spawn*, conc*, slow*); it
keeps its state (run counters, pids, concurrency) in a temporary directory.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
import unittest

import kilntest
import kiln

SCRIPT = os.path.join(kilntest.DATA, "proc", "host.sh")
STATE = tempfile.mkdtemp(prefix="kiln-proc-")
FAST_KILL = {"kill_grace": 0.5, "retry_backoff": 0.05}


def behave(state: str = STATE, **kw):
    spec = {"argv": ["/bin/sh", SCRIPT, "{host}", "{attempt}", state], "max_parallel": 8}
    spec.update(FAST_KILL)
    spec.update(kw)
    return spec


def alive(pid: int) -> bool:
    """True if pid is a live process (a zombie counts as dead: it is
    already gone and waits only for its parent to collect it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_dead(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.02)
    return not alive(pid)


def children_of(pid: int):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append((int(d), fields[0]))
    return out


def read_pid(name: str, state: str = STATE) -> int:
    deadline = time.monotonic() + 5
    path = os.path.join(state, name)
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                text = f.read().strip()
            if text:
                return int(text)
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError(f"{path} was never written")


class ProcTest(kilntest.KilnTestCase):
    CONFIG = {
        "procedures": {
            "#": "test procedures",
            "t.behave": behave(),
            "t.conc": behave(max_parallel=3),
            "t.many": {"argv": ["/bin/true", "{host}"], "max_parallel": 50},
            "t.forbidden": {"argv": ["/bin/true"], "allowed_uids": [4242424], "allowed_gids": [4242424]},
            "t.missing": {"argv": ["/nonexistent/kiln-no-such-command", "{host}"]},
            "t.subst": {"argv": ["/bin/sh", "-c", 'echo "$1|$2|$3|$4|$KILN_T"', "sh", "{host}", "{timeout}",
                                 "{attempt}", "x{job_id}y"],
                        "env": {"KILN_T": "env-{host}"}, "description": "substitution check"},
            "t.noisy": {"argv": ["/bin/sh", "-c",
                                 "head -c 100000 /dev/zero | tr '\\0' a; printf 'end\\377\\n'; "
                                 "printf 'err\\n' >&2"],
                        "tail_bytes": 64},
            "t.codes": {"argv": ["/bin/sh", SCRIPT, "{host}", "{attempt}", STATE],
                        "success_exit_codes": [0, 3]},
        }
    }

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(STATE, ignore_errors=True)

    def run_proc(self, name, hosts, **kw):
        return self.client.run_procedure(name, hosts, **kw)

    def run_flaky(self, host, retries):
        """Runs t.behave on one flaky host: (reply, the host's result, how
        many times host.sh really ran)."""
        out = self.run_proc("t.behave", [host], retries=retries)
        with open(os.path.join(STATE, f"{host}.count")) as f:
            return out, out.data["hosts"][host], int(f.read())

    def assertNoChildren(self):
        # Every attempt's child is reaped before the reply: none may remain.
        kids = children_of(self.daemon.pid)
        self.assertEqual(kids, [], f"kilnd still has children: {kids}")

    # -- results ---------------------------------------------------------------
    def test_partial_result_and_failed_hosts(self):
        out = self.run_proc("t.behave", ["ok-p1", "fail-p1"], timeout=10)
        self.assertEqual(out.result, "partial")
        self.assertEqual(out.message, "1 of 2 hosts failed")
        self.assertEqual(out.failed_hosts, ["fail-p1"])
        hosts = out.data["hosts"]
        self.assertEqual(set(hosts), {"ok-p1", "fail-p1"})
        ok = hosts["ok-p1"]
        self.assertEqual(set(ok), {"ok", "attempts", "exit_code", "duration_ms", "stdout_tail", "stderr_tail"})
        self.assertTrue(ok["ok"])
        self.assertEqual(ok["attempts"], 1)
        self.assertEqual(ok["exit_code"], 0)
        self.assertEqual(ok["stdout_tail"], "hello from ok-p1 attempt 1\n")
        self.assertEqual(ok["stderr_tail"], "")
        self.assertIsInstance(ok["duration_ms"], (int, float))
        self.assertGreater(ok["duration_ms"], 0)
        # duration_ms measures the attempt: a host that sleeps 0.3 s takes
        # at least 300 ms.
        slow = self.run_proc("t.behave", ["slow-p1"], timeout=10).data["hosts"]["slow-p1"]
        self.assertGreaterEqual(slow["duration_ms"], 300)
        bad = hosts["fail-p1"]
        self.assertFalse(bad["ok"])
        self.assertEqual(bad["exit_code"], 3)
        self.assertEqual(bad["stderr_tail"], "failing fail-p1\n")
        self.assertNoChildren()

    def test_success_and_failure(self):
        out = self.run_proc("t.behave", ["ok-s1", "ok-s2", "ok-s3"])
        self.assertEqual((out.result, out.failed_hosts), ("success", []))
        self.assertEqual(out.message, "all 3 hosts succeeded")
        out = self.run_proc("t.behave", ["fail-f1", "fail-f2"])
        self.assertEqual(out.result, "failure")
        self.assertEqual(out.message, "2 of 2 hosts failed")
        self.assertEqual(out.failed_hosts, ["fail-f1", "fail-f2"])

    def test_failed_hosts_in_request_order(self):
        hosts = ["fail-o3", "ok-o1", "fail-o1", "ok-o2", "fail-o2"]
        out = self.run_proc("t.behave", hosts)
        self.assertEqual(out.failed_hosts, ["fail-o3", "fail-o1", "fail-o2"])
        self.assertEqual(out.message, "3 of 5 hosts failed")

    def test_success_exit_codes(self):
        out = self.run_proc("t.codes", ["fail-c1"])
        self.assertEqual(out.result, "success")
        self.assertEqual(out.data["hosts"]["fail-c1"]["exit_code"], 3)

    # -- retries ---------------------------------------------------------------
    def test_retries_counted_exactly(self):
        out = self.run_proc("t.behave", ["fail-r1", "ok-r1"], retries=2)
        self.assertEqual(out.data["hosts"]["fail-r1"]["attempts"], 3)
        self.assertEqual(out.data["hosts"]["ok-r1"]["attempts"], 1)
        out = self.run_proc("t.behave", ["fail-r2"], retries=0)
        self.assertEqual(out.data["hosts"]["fail-r2"]["attempts"], 1)

    def test_flaky_succeeds_on_third_run(self):
        out, h, runs = self.run_flaky("flaky-a", retries=2)
        self.assertEqual((out.result, h["ok"], h["attempts"], runs), ("success", True, 3, 3))
        self.assertEqual(h["stdout_tail"], "ok on run 3\n")
        # The tail is that of the last attempt only.
        self.assertEqual(h["stderr_tail"], "")

    def test_flaky_runs_out_of_retries(self):
        out, h, runs = self.run_flaky("flaky-b", retries=1)
        self.assertEqual((out.result, h["ok"], h["attempts"], h["exit_code"], runs), ("failure", False, 2, 1, 2))
        self.assertEqual(h["stderr_tail"], "run 2 fails\n")

    # -- timeouts and process groups --------------------------------------------
    def test_timeout_terminates(self):
        out = self.run_proc("t.behave", ["hang-t1"], timeout=0.3)
        h = out.data["hosts"]["hang-t1"]
        self.assertEqual((out.result, h["ok"], h["signal"], h["timed_out"]), ("failure", False, "SIGTERM", True))
        self.assertNotIn("exit_code", h)
        self.assertFalse(alive(read_pid("hang-t1.pid")))
        self.assertNoChildren()

    def test_timeout_kills_after_grace_when_sigterm_ignored(self):
        out = self.run_proc("t.behave", ["stubborn-t1"], timeout=0.3)
        h = out.data["hosts"]["stubborn-t1"]
        self.assertEqual((h["signal"], h["timed_out"]), ("SIGKILL", True))
        # SIGKILL came only after the grace period: at least timeout + grace.
        self.assertGreaterEqual(h["duration_ms"], 300 + 500)
        self.assertFalse(alive(read_pid("stubborn-t1.pid")))
        self.assertNoChildren()

    def test_timeout_retried(self):
        out = self.run_proc("t.behave", ["hang-t2"], timeout=0.2, retries=1)
        self.assertEqual(out.data["hosts"]["hang-t2"]["attempts"], 2)

    def test_grandchildren_killed_when_leader_exits(self):
        out = self.run_proc("t.behave", ["spawn-g1"], timeout=10)
        self.assertEqual(out.result, "success")
        self.assertTrue(wait_dead(read_pid("spawn-g1.grandchild")), "grandchild left running")
        self.assertNoChildren()

    def test_grandchildren_killed_on_timeout(self):
        out = self.run_proc("t.behave", ["spawnhang-g2"], timeout=0.3)
        self.assertEqual(out.data["hosts"]["spawnhang-g2"]["signal"], "SIGTERM")
        self.assertTrue(wait_dead(read_pid("spawnhang-g2.grandchild")), "grandchild left running")
        self.assertFalse(alive(read_pid("spawnhang-g2.pid")))

    # -- parallelism -------------------------------------------------------------
    def test_max_parallel_respected(self):
        log = os.path.join(STATE, "concurrency")
        if os.path.exists(log):
            os.unlink(log)
        hosts = [f"conc-{i}" for i in range(12)]
        out = self.run_proc("t.conc", hosts)
        self.assertEqual(out.result, "success")
        with open(log) as f:
            counts = [int(x) for x in f.read().split()]
        self.assertEqual(len(counts), 2 * 12)
        # Never more than max_parallel at once, and the limit is used: with
        # 12 hosts of 0.5 s each, three run side by side (one at a time
        # would show only 1s).
        self.assertLessEqual(max(counts), 3, counts)
        self.assertEqual(max(counts), 3, counts)

    @kilntest.heavy
    def test_500_hosts(self):
        hosts = [f"h{i}.example.net" for i in range(500)]
        seen = []
        out = self.run_proc("t.many", hosts, progress=seen.append)
        self.assertEqual(out.result, "success")
        self.assertEqual(out.message, "all 500 hosts succeeded")
        self.assertEqual(len(out.data["hosts"]), 500)
        self.assertTrue(all(h["ok"] and h["exit_code"] == 0 for h in out.data["hosts"].values()))
        self.assertEqual(sorted(p["host"] for p in seen), sorted(hosts))
        self.assertNoChildren()

    def test_progress_one_line_per_host(self):
        seen = []
        hosts = ["ok-pr1", "fail-pr1", "ok-pr2"]
        out = self.run_proc("t.behave", hosts, progress=seen.append)
        self.assertEqual(out.result, "partial")
        self.assertEqual(sorted(p["host"] for p in seen), sorted(hosts))
        self.assertEqual([p["done"] for p in seen], [1, 2, 3])
        self.assertTrue(all(p["total"] == 3 for p in seen))
        self.assertEqual({p["host"]: p["ok"] for p in seen}, {"ok-pr1": True, "fail-pr1": False, "ok-pr2": True})

    # -- argv, env, output ------------------------------------------------------
    def test_substitution_and_env(self):
        out = self.client.call("t.subst", timeout=7.5, host_list=["10.1.2.3"])
        tail = out.data["hosts"]["10.1.2.3"]["stdout_tail"]
        self.assertEqual(tail, f"10.1.2.3|7.5|1|x{out.job_id}y|env-10.1.2.3\n")

    def test_tails_bounded_and_valid_utf8(self):
        out = self.run_proc("t.noisy", ["ok-n1"])
        h = out.data["hosts"]["ok-n1"]
        self.assertTrue(h["ok"])
        self.assertTrue(h["stdout_tail"].endswith("aaaend\ufffd\n"), h["stdout_tail"])
        # 64 bytes kept; the one invalid byte became U+FFFD (3 bytes).
        self.assertEqual(len(h["stdout_tail"].encode()), 64 + 2)
        self.assertEqual(h["stderr_tail"], "err\n")

    def test_missing_command(self):
        out = self.run_proc("t.missing", ["ok-m1"], retries=1)
        h = out.data["hosts"]["ok-m1"]
        self.assertEqual((out.result, h["ok"], h["attempts"]), ("failure", False, 2))
        if kilntest.WRAPPER and "error" not in h:
            # valgrind runs posix_spawn as a plain fork: the child reports
            # the failed exec as exit status 127 instead.
            self.assertEqual(h["exit_code"], 127)
        else:
            self.assertIn("no such file", h["error"].lower())
            self.assertNotIn("exit_code", h)

    # -- request checks ---------------------------------------------------------
    def test_bad_host_names(self):
        for bad in ["-oProxyCommand=touch /tmp/x", "a b", "", "a..b", "x" * 64 + ".com", "host_1",
                    "trailing.", "-lead", "lead-.x", "a;b", "ümlaut", "a\nb", "1.2.3.4/8", "[::1]"]:
            with self.subTest(host=bad):
                with self.assertRaises(kiln.InvalidArgs) as cm:
                    self.run_proc("t.behave", ["ok-b1", bad])
                self.assertEqual(cm.exception.detail["path"], "host_list[1]")
                self.assertEqual(cm.exception.detail["host"], bad)

    def test_good_host_names(self):
        hosts = ["ok-1.example.com", "10.0.0.1", "::1", "fe80::1:2", "OK-UPPER", "ok" + "a" * 61]
        out = self.run_proc("t.many", hosts)
        self.assertEqual(out.result, "success", out.data)

    def test_duplicate_hosts_refused(self):
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.run_proc("t.behave", ["ok-d1", "ok-d2", "ok-d1"])
        self.assertEqual(cm.exception.detail, {"path": "host_list[2]", "host": "ok-d1"})
        # Nothing ran.
        self.assertFalse(os.path.exists(os.path.join(STATE, "ok-d1.count")))

    def test_empty_host_list(self):
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.run_proc("t.behave", [])
        self.assertEqual(cm.exception.detail["path"], "host_list")

    def test_args_refused(self):
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call("t.behave", {"cmd": "rm -rf /"}, host_list=["ok-a1"])

    def test_unknown_procedure(self):
        with self.assertRaises(kiln.UnknownAction):
            self.run_proc("t.nope", ["ok-u1"])
        # Comment keys are not procedures.
        with self.assertRaises(kiln.UnknownAction):
            self.run_proc("#", ["ok-u1"])

    def test_forbidden_uid(self):
        with self.assertRaises(kiln.Forbidden) as cm:
            self.run_proc("t.forbidden", ["ok-x1"])
        self.assertEqual(cm.exception.detail["uid"], os.getuid())

    def test_local_action_takes_no_hosts(self):
        with self.assertRaises(kiln.InvalidRequest):
            self.client.call("ping", host_list=["ok-l1"])

    def test_describe_lists_procedures(self):
        actions = {a["name"]: a for a in self.client.describe()["actions"]}
        d = actions["t.subst"]
        self.assertEqual((d["family"], d["hosts"], d["summary"]), ("proc", True, "substitution check"))
        self.assertEqual(d["procedure"]["argv"][0], "/bin/sh")
        self.assertEqual(d["procedure"]["max_parallel"], 16)
        # Procedures the caller may not run are not described to it (issue 13).
        self.assertNotIn("t.forbidden", actions)
        self.assertFalse(d["procedure"]["restricted"])
        self.assertEqual(actions["t.conc"]["procedure"]["max_parallel"], 3)
        self.assertNotIn("#", actions)

    def test_disconnect_cancels_and_kills(self):
        raw = kiln.Client(self.socket_path)
        raw._send(kiln.ProcedureInput(1, "t.behave", {}, 30, 0, ["hang-x1"]))
        pid = read_pid("hang-x1.pid")
        raw.close()
        self.assertTrue(wait_dead(pid), "child survived its client's disconnect")
        deadline = time.monotonic() + 5
        while children_of(self.daemon.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertNoChildren()


class ProcConfigTest(unittest.TestCase):
    def assertRefused(self, procedures, needle):
        with self.assertRaises(RuntimeError) as cm:
            kilntest.Daemon({"procedures": procedures})
        self.assertIn(needle, str(cm.exception))

    def test_unknown_key_refused(self):
        self.assertRefused({"x": {"argv": ["/bin/true"], "max_paralel": 2}}, "procedures.x.max_paralel")

    def test_bad_values_refused(self):
        self.assertRefused({"x": {"argv": []}}, "procedures.x.argv")
        self.assertRefused({"x": {"argv": ["/bin/true"], "max_parallel": 0}}, "procedures.x.max_parallel")
        self.assertRefused({"x": {"argv": ["/bin/true"], "env": {"A B": "1"}}}, "procedures.x.env")
        self.assertRefused({"bad name": {"argv": ["/bin/true"]}}, "procedures.bad name")

    def test_builtin_name_refused(self):
        self.assertRefused({"ping": {"argv": ["/bin/true"]}}, "procedures.ping")

    def test_builtin_name_refused_on_reload(self):
        """SIGHUP checks a procedure against the action table as startup does:
        a reload naming one after a built-in action is refused whole, and the
        old configuration (with its procedures) stays in force."""
        d = kilntest.Daemon({"procedures": {"x": {"argv": ["/bin/true"]}}})
        try:
            with open(d.config_path) as f:
                cfg = json.load(f)
            cfg["procedures"] = {"ping": {"argv": ["/bin/true"]}, "y": {"argv": ["/bin/true"]}}
            with open(d.config_path, "w") as f:
                json.dump(cfg, f)
            d.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "reload failed" not in d.read_log() and time.monotonic() < deadline:
                time.sleep(0.05)
            self.assertIn('config key "procedures.ping": is the name of a built-in action', d.read_log())
            with d.client() as c:
                self.assertEqual(c.ping()["pid"], d.pid)
                names = {a["name"] for a in c.call("describe").data["actions"]}
                self.assertIn("x", names)
                self.assertNotIn("y", names)
        finally:
            self.assertEqual(d.stop(), 0)


class ProcShutdownTest(unittest.TestCase):
    @kilntest.heavy
    def test_shutdown_signals_children_and_reports_cancelled(self):
        state = tempfile.mkdtemp(prefix="kiln-proc-sd-")
        d = kilntest.Daemon({"shutdown_grace": 2,
                             "procedures": {"t.b": behave(state, kill_grace=30)}})
        try:
            c = d.client()
            c._send(kiln.ProcedureInput(7, "t.b", {}, 60, 0, ["hang-s1", "stubborn-s1"]))
            pids = [read_pid("hang-s1.pid", state), read_pid("stubborn-s1.pid", state)]
            d.proc.send_signal(signal.SIGTERM)
            out = c._wait(7)
            self.assertEqual((out.result, out.error["code"]), ("error", "cancelled"))
            self.assertEqual(d.stop(), 0)
            for pid in pids:
                self.assertFalse(alive(pid), f"child {pid} outlived kilnd")
            c.close()
        finally:
            d.stop()
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
