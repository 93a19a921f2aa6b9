"""The `kiln` command (issue 15): per-action help, schema-typed key=value,
--json conflicts, exit status, Ctrl-C and closed pipes without tracebacks,
a progress bar on a terminal."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
import unittest

import kilntest
from kilntest import KilnTestCase

CLIENT = os.path.join(kilntest.ROOT, "client")


class CliTest(KilnTestCase):
    CONFIG = {"procedures": {"t.false": {"argv": ["/bin/false", "{host}"]},
                             "t.true": {"argv": ["/bin/true", "{host}"]}}}

    def env(self):
        return dict(os.environ, KILN_SOCKET=self.socket_path, PYTHONPATH=CLIENT)

    def kiln(self, *args, **kw):
        return subprocess.run([sys.executable, "-m", "kiln", *args], env=self.env(),
                              capture_output=True, text=True, timeout=60, **kw)

    def test_action_help(self):
        p = self.kiln("pi", "--help")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("pi:", p.stdout)
        self.assertIn("digits: integer", p.stdout)
        self.assertIn('"properties"', p.stdout)
        p = self.kiln("no.such", "--help")
        self.assertEqual(p.returncode, 2)
        self.assertIn("no action", p.stderr)
        p = self.kiln("--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("kiln describe", p.stdout)

    def test_describe_one_action(self):
        p = self.kiln("describe", "vector.length")
        self.assertEqual(p.returncode, 0, p.stderr)
        d = json.loads(p.stdout)
        self.assertEqual(d["name"], "vector.length")
        self.assertIn("args", d)

    def test_values_typed_from_the_schema(self):
        p = self.kiln("echo", "text=5")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["data"]["text"], "5")
        p = self.kiln("echo", "text=[1,2]")
        self.assertEqual(json.loads(p.stdout)["data"]["text"], "[1,2]")
        p = self.kiln("double", "x=21")
        self.assertEqual(json.loads(p.stdout)["data"]["x"], 42)
        p = self.kiln("text.short_long", "text=true true longwordhere", "min_length=3",
                      'ignore=["x"]')
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertAlmostEqual(json.loads(p.stdout)["data"]["fraction"], 1.0)
        p = self.kiln("vector.length", "x=3", "y=4", "z=12.0")
        self.assertEqual(json.loads(p.stdout)["data"]["length"], 13.0)

    def test_json_conflict_is_an_error(self):
        p = self.kiln("double", "x=1", "--json", '{"x": 2}')
        self.assertEqual(p.returncode, 2)
        self.assertIn("x given both", p.stderr)
        self.assertEqual(p.stdout, "")
        p = self.kiln("vector.length", "x=3", "--json", '{"y": 4, "z": 12}')
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_exit_status(self):
        self.assertEqual(self.kiln("double", "x=oops").returncode, 1)
        self.assertEqual(self.kiln("no.such.action").returncode, 1)
        p = self.kiln("t.false", "--hosts", "a,b")
        self.assertEqual(json.loads(p.stdout)["result"], "failure")
        self.assertEqual(p.returncode, 4)
        p = self.kiln("t.true", "--hosts", "a")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = subprocess.run([sys.executable, "-m", "kiln", "ping"], capture_output=True, text=True,
                           timeout=60, env=dict(self.env(), KILN_SOCKET="/nonexistent/kiln.sock"))
        self.assertEqual(p.returncode, 3)
        self.assertIn("no kilnd socket", p.stderr)
        self.assertNotIn("Traceback", p.stderr)

    def test_local_refusal_without_traceback(self):
        p = self.kiln("echo", "--json", '{"text": "\\ud800"}')
        self.assertEqual(p.returncode, 2)
        self.assertIn("surrogate", p.stderr)
        self.assertNotIn("Traceback", p.stderr)

    def in_flight(self):
        with self.daemon.client() as c:
            return c.stats()["in_flight"] - 1

    def test_ctrl_c_no_traceback_and_cancelled(self):
        proc = subprocess.Popen([sys.executable, "-m", "kiln", "sleep", "seconds=30"], env=self.env(),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while self.in_flight() < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.in_flight(), 1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 130, err)
        self.assertNotIn("Traceback", err)
        self.assertIn("interrupted", err)
        deadline = time.monotonic() + 10
        while self.in_flight() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.in_flight(), 0)

    def test_closed_pipe_no_traceback(self):
        # 120 kB of output: more than the pipe holds, so writing after head
        # exits must fail with EPIPE.
        p = subprocess.run(f"{sys.executable} -m kiln echo text={'x' * 120000} | head -c 10 >/dev/null; "
                           "echo status=${PIPESTATUS[0]} >&2", shell=True, executable="/bin/bash",
                           env=self.env(), capture_output=True, text=True, timeout=60)
        self.assertNotIn("Traceback", p.stderr)
        self.assertNotIn("BrokenPipe", p.stderr)
        self.assertIn("status=141", p.stderr)

    def test_progress_bar_on_a_terminal(self):
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen([sys.executable, "-m", "kiln", "sleep", "seconds=0.6", "steps=6"],
                                    env=self.env(), stdout=subprocess.PIPE, stderr=slave)
            os.close(slave)
            slave = -1
            err = b""
            while True:
                r, _, _ = select.select([master], [], [], 30)
                if not r:
                    break
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                err += chunk
            out, _ = proc.communicate(timeout=30)
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)
        self.assertEqual(proc.returncode, 0)
        self.assertIn(b"sleep [", err)
        self.assertIn(b"%", err)
        self.assertEqual(json.loads(out)["result"], "success")
        # Not a terminal: no bar.
        p = self.kiln("sleep", "seconds=0.3", "steps=3")
        self.assertEqual(p.stderr, "")


if __name__ == "__main__":
    unittest.main()
