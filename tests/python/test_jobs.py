"""Detached jobs (issue 7): "detach": true, job.status / job.wait /
job.cancel / job.list from any connection, peer-credential visibility,
retention, and records in the state directory that survive restarts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

import kilntest
import kiln

SCRIPT = os.path.join(kilntest.DATA, "proc", "host.sh")
# The Debian interpreter: one another uid can run (not one under /root).
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def wait_record(path: str, state: str, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if json.load(f)["state"] == state:
                    return True
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    return False


def behave(state: str):
    return {"argv": ["/bin/sh", SCRIPT, "{host}", "{attempt}", state], "kill_grace": 0.5,
            "retry_backoff": 0.05}


class JobsTest(kilntest.KilnTestCase):
    STATE = tempfile.mkdtemp(prefix="kiln-jobs-")
    CONFIG = {"procedures": {"t.b": behave(STATE)}, "state_dir": os.path.join(STATE, "records")}

    @classmethod
    def tearDownClass(cls) -> None:
        super().tearDownClass()
        shutil.rmtree(cls.STATE, ignore_errors=True)

    def test_detach_replies_accepted_at_once(self):
        out = self.client.call("sleep", {"seconds": 0.3}, detach=True)
        self.assertEqual(out.result, "accepted")
        self.assertEqual(set(out.data), {"job"})
        job = out.data["job"]
        st = self.client.job_status(job)
        self.assertEqual((st["job"], st["action"], st["state"], st["uid"]), (job, "sleep", "running", os.getuid()))
        self.assertEqual(st["job_id"], out.job_id)
        final = self.client.job_wait(job, timeout=10)
        self.assertEqual((final.result, final.data["seconds"], final.job_id), ("success", 0.3, out.job_id))
        st = self.client.job_status(job)
        self.assertEqual((st["state"], st["result"]), ("finished", "success"))
        self.assertEqual(st["reply"]["data"]["seconds"], 0.3)

    def test_detached_procedure_survives_client_close(self):
        with self.daemon.client() as c:
            acc = c.run_procedure("t.b", ["slow-d1", "fail-d1"], detach=True)
            job = acc.data["job"]
        # The connection is gone; the work goes on and is collected elsewhere.
        with self.daemon.client() as c2:
            out = c2.job_wait(job, timeout=20)
        self.assertEqual(out.result, "partial")
        self.assertEqual(out.message, "1 of 2 hosts failed")
        self.assertEqual(out.failed_hosts, ["fail-d1"])
        self.assertTrue(out.data["hosts"]["slow-d1"]["ok"])

    def test_detached_validation_errors_are_immediate(self):
        with self.assertRaises(kiln.InvalidArgs):
            self.client.run_procedure("t.b", ["bad host"], detach=True)
        with self.assertRaises(kiln.UnknownAction):
            self.client.call("no.such.action", detach=True)

    def test_wait_timeout(self):
        job = self.client.detach("sleep", {"seconds": 30, "steps": 300})
        with self.assertRaises(kiln.Timeout) as cm:
            self.client.job_wait(job, timeout=0.2)
        self.assertEqual(cm.exception.detail["state"], "running")
        self.assertTrue(self.client.job_cancel(job))
        out = self.client.job_wait(job, timeout=10, check=False)
        self.assertEqual((out.result, out.error["code"]), ("error", "cancelled"))
        self.assertFalse(self.client.job_cancel(job))

    def test_deadline_applies_to_detached_jobs(self):
        job = self.client.detach("sleep", {"seconds": 30, "steps": 300}, timeout=0.2)
        out = self.client.job_wait(job, timeout=10, check=False)
        self.assertEqual((out.result, out.error["code"]), ("error", "timeout"))

    def test_cancel_detached_procedure_kills_children(self):
        acc = self.client.run_procedure("t.b", ["hang-c1"], timeout=60, detach=True)
        job = acc.data["job"]
        pid_file = os.path.join(self.STATE, "hang-c1.pid")
        deadline = time.monotonic() + 5
        while not os.path.exists(pid_file) and time.monotonic() < deadline:
            time.sleep(0.02)
        with open(pid_file) as f:
            pid = int(f.read())
        with self.daemon.client() as other:
            self.assertTrue(other.job_cancel(job))
        with self.assertRaises(kiln.Cancelled):
            self.client.job_wait(job, timeout=10)
        deadline = time.monotonic() + 5
        while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertFalse(os.path.exists(f"/proc/{pid}"), "child survived job.cancel")

    def test_progress_visible_in_status(self):
        job = self.client.detach("sleep", {"seconds": 2, "steps": 20}, progress=lambda p: None)
        deadline = time.monotonic() + 5
        st = self.client.job_status(job)
        while "progress" not in st and time.monotonic() < deadline:
            time.sleep(0.05)
            st = self.client.job_status(job)
        self.assertEqual(st["progress"]["total"], 20)
        self.client.job_cancel(job)

    def test_list_and_not_found(self):
        a = self.client.detach("ping")
        b = self.client.detach("echo", {"text": "hi"})
        self.client.job_wait(b, timeout=5)
        jobs = [j["job"] for j in self.client.job_list()]
        self.assertIn(a, jobs)
        self.assertIn(b, jobs)
        self.assertLess(jobs.index(a), jobs.index(b))
        with self.assertRaises(kiln.NotFound):
            self.client.job_status(12345)
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call("job.status", {"job": "x"})

    def test_record_file_on_disk(self):
        job = self.client.detach("echo", {"text": "on disk"})
        self.client.job_wait(job, timeout=5)
        path = os.path.join(self.STATE, "records", f"job-{job}.json")
        # The reply may come before the record's writes are done.
        self.assertTrue(wait_record(path, "finished"))
        with open(path) as f:
            rec = json.load(f)
        self.assertEqual(rec["reply"]["data"]["text"], "on disk")
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        # kilnd created the state directory: private to its user.
        self.assertEqual(os.stat(os.path.dirname(path)).st_mode & 0o777, 0o700)
        self.assertEqual([n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")], [])

    def test_other_uid_sees_only_its_own(self):
        nobody = 65534
        # Let an unprivileged client reach the socket.
        os.chmod(self.daemon.dir, 0o755)
        os.chmod(self.socket_path, 0o666)
        mine = self.client.detach("ping")
        code = textwrap.dedent(f"""
            import json, sys
            sys.path.insert(0, {os.path.join(kilntest.ROOT, 'client')!r})
            import kiln
            with kiln.Client({self.socket_path!r}) as c:
                res = {{"list_before": [j["job"] for j in c.job_list()]}}
                try:
                    c.job_status({mine})
                    res["status_root_job"] = "visible"
                except kiln.NotFound:
                    res["status_root_job"] = "not_found"
                try:
                    c.job_cancel({mine})
                    res["cancel_root_job"] = "done"
                except kiln.NotFound:
                    res["cancel_root_job"] = "not_found"
                job = c.detach("ping")
                c.job_wait(job, timeout=5)
                res["own"] = job
                res["list_after"] = [j["job"] for j in c.job_list()]
            print(json.dumps(res))
        """)
        try:
            proc = subprocess.run([PYTHON, "-c", code], user=nobody, group=nobody,
                                  capture_output=True, text=True, timeout=30)
        except PermissionError:
            self.skipTest("cannot run a client as another uid")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        res = json.loads(proc.stdout)
        self.assertEqual(res["list_before"], [])
        self.assertEqual(res["status_root_job"], "not_found")
        self.assertEqual(res["cancel_root_job"], "not_found")
        self.assertEqual(res["list_after"], [res["own"]])
        # Root sees everyone's jobs.
        st = self.client.job_status(res["own"])
        self.assertEqual(st["uid"], nobody)


class RetentionTest(kilntest.KilnTestCase):
    CONFIG = {"job_retention": 0}

    def test_finished_records_expire(self):
        job = self.client.detach("sleep", {"seconds": 0.2})
        # A waiter holds the record until it has its reply...
        out = self.client.job_wait(job, timeout=5)
        self.assertEqual(out.data["seconds"], 0.2)
        # ...then, with job_retention 0, it is gone.
        with self.assertRaises(kiln.NotFound):
            self.client.job_status(job)


class RestartTest(unittest.TestCase):
    """Records outlive the daemon: finished ones keep their reply; ones that
    were running when it died are `interrupted`."""

    def setUp(self) -> None:
        self.state = tempfile.mkdtemp(prefix="kiln-jobs-restart-")
        self.cfg = {"state_dir": self.state, "shutdown_grace": 0.3}

    def tearDown(self) -> None:
        shutil.rmtree(self.state, ignore_errors=True)

    def test_records_survive_restart(self):
        d = kilntest.Daemon(self.cfg)
        try:
            with d.client() as c:
                done = c.detach("echo", {"text": "kept"})
                c.job_wait(done, timeout=5)
                killed = c.detach("sleep", {"seconds": 60, "steps": 600})
                stopped = c.detach("sleep", {"seconds": 60, "steps": 600})
            # Wait until the records are on disk (written after the replies).
            for h, state in ((done, "finished"), (killed, "running"), (stopped, "running")):
                path = os.path.join(self.state, f"job-{h}.json")
                self.assertTrue(wait_record(path, state), f"{path} never said {state}")
            # A crash: no chance to record anything more.
            d.stop(signal.SIGKILL)
        finally:
            d.stop()
        d2 = kilntest.Daemon(self.cfg)
        try:
            with d2.client() as c:
                st = c.job_status(done)
                self.assertEqual((st["state"], st["reply"]["data"]["text"]), ("finished", "kept"))
                st = c.job_status(killed)
                self.assertEqual(st["state"], "interrupted")
                self.assertEqual(st["reply"]["error"]["code"], "cancelled")
                self.assertEqual(st["reply"]["error"]["detail"], {"reason": "interrupted"})
                out = c.job_wait(killed, timeout=1, check=False)
                self.assertEqual(out.result, "error")
                new = c.detach("ping")
                self.assertGreater(new, max(done, killed, stopped))
                running = c.detach("sleep", {"seconds": 60, "steps": 600})
            # A clean stop cancels running detached jobs after the grace.
            self.assertEqual(d2.stop(), 0)
        finally:
            d2.stop()
        d3 = kilntest.Daemon(self.cfg)
        try:
            with d3.client() as c:
                st = c.job_status(running)
                self.assertEqual((st["state"], st["reply"]["error"]["code"]), ("finished", "cancelled"))
                self.assertEqual(c.job_status(done)["reply"]["data"]["text"], "kept")
        finally:
            self.assertEqual(d3.stop(), 0)

    def test_corrupt_record_ignored(self):
        with open(os.path.join(self.state, "job-5.json"), "w") as f:
            f.write("{not json")
        with open(os.path.join(self.state, "job-6.json.tmp"), "w") as f:
            f.write("half")
        d = kilntest.Daemon(self.cfg)
        try:
            with d.client() as c:
                self.assertEqual(c.job_list(), [])
            self.assertFalse(os.path.exists(os.path.join(self.state, "job-6.json.tmp")))
        finally:
            self.assertEqual(d.stop(), 0)


class StateDirectoryEnvTest(unittest.TestCase):
    def test_state_directory_env(self):
        state = tempfile.mkdtemp(prefix="kiln-jobs-env-")
        try:
            d = kilntest.Daemon({}, env={"STATE_DIRECTORY": state})
            try:
                with d.client() as c:
                    job = c.detach("ping")
                    c.job_wait(job, timeout=5)
            finally:
                self.assertEqual(d.stop(), 0)
            self.assertTrue(os.path.exists(os.path.join(state, f"job-{job}.json")))
        finally:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
