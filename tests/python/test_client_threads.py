"""One kiln.Client shared by many threads (issue 15): calls are multiplexed
on its one connection and replies matched by job_id."""

from __future__ import annotations

import threading
import time
import unittest

import kilntest
from kilntest import KilnTestCase

import kiln


class ThreadsTest(KilnTestCase):
    def run_threads(self, n, fn):
        errors = []

        def body(i):
            try:
                fn(i)
            except BaseException as e:  # reported below
                errors.append(e)
        threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads), "a thread hung")
        self.assertEqual(errors, [])

    def test_eight_threads_300_calls_each(self):
        c = self.client
        results = {}

        def work(i):
            got = []
            for k in range(300):
                x = i * 1000 + k
                if k % 3 == 0:
                    got.append(c.double(x) == 2 * x)
                elif k % 3 == 1:
                    got.append(c.echo(f"t{i}-{k}") == f"t{i}-{k}")
                else:
                    got.append(c.call("vector.length", {"x": 3, "y": 4, "z": x % 7 and 12}).data["length"]
                               == (13.0 if x % 7 else 5.0))
            results[i] = got
        self.run_threads(8, work)
        self.assertEqual(sorted(results), list(range(8)))
        for i, got in results.items():
            self.assertEqual(len(got), 300)
            self.assertTrue(all(got), f"thread {i} got a wrong reply")
        # Still one connection: the daemon saw one client (plus stats' own).
        self.assertEqual(c.stats()["connections"], 1)

    def test_slow_call_does_not_block_other_threads(self):
        c = self.client
        done = {}

        def slow():
            done["slow"] = (c.sleep(3.0), time.monotonic())

        t = threading.Thread(target=slow)
        t.start()
        time.sleep(0.1)
        for k in range(100):
            self.assertEqual(c.double(k), 2 * k)
        quick_end = time.monotonic()
        t.join(30)
        self.assertIn("slow", done)
        self.assertLess(quick_end, done["slow"][1], "quick calls waited for the slow one")

    def test_progress_runs_in_the_calling_thread(self):
        c = self.client
        seen = {}

        def work(i):
            me = threading.get_ident()
            events = []
            c.sleep(0.3, steps=3, progress=lambda p: events.append((threading.get_ident(), p)))
            seen[i] = events
            self.assertTrue(events)
            self.assertTrue(all(tid == me for tid, _ in events))
        self.run_threads(4, work)
        self.assertEqual(len(seen), 4)

    def test_call_many_from_threads(self):
        c = self.client

        def work(i):
            outs = c.call_many([("double", {"x": i * 100 + k}) for k in range(200)], window=16)
            self.assertEqual([o.data["x"] for o in outs], [2 * (i * 100 + k) for k in range(200)])
        self.run_threads(4, work)

    def test_connection_loss_wakes_every_thread(self):
        d = kilntest.Daemon()
        c = d.client()
        errors = []

        def work():
            try:
                c.sleep(30)
            except kiln.ConnectionLost as e:
                errors.append(e)
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        with d.client() as other:
            deadline = time.monotonic() + 10
            while other.stats()["in_flight"] < 5 and time.monotonic() < deadline:
                time.sleep(0.02)
        d.stop(kilntest.signal.SIGKILL)
        for t in threads:
            t.join(10)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(len(errors), 4)
        c.close()


if __name__ == "__main__":
    unittest.main()
