"""kiln.AsyncClient (issue 15): the client API with await, many concurrent
calls on one connection, progress, and task cancellation reaching the
daemon."""

from __future__ import annotations

import asyncio
import time
import unittest

import kilntest
from kilntest import KilnTestCase

import kiln


def in_flight(d) -> int:
    with d.client() as other:
        return other.stats()["in_flight"] - 1  # not counting stats itself


async def wait_in_flight(d, want, timeout=10.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = await asyncio.get_running_loop().run_in_executor(None, in_flight, d)
        if n == want or time.monotonic() > deadline:
            return n
        await asyncio.sleep(0.02)


class AsyncClientTest(KilnTestCase):
    def run_async(self, coro):
        return asyncio.run(asyncio.wait_for(coro, 120))

    def test_context_manager_and_typed_methods(self):
        async def main():
            async with kiln.AsyncClient(self.socket_path) as c:
                self.assertEqual((await c.ping())["pid"], self.daemon.pid)
                self.assertEqual(await c.pi(10), "3.1415926535")
                self.assertEqual(await c.double(21), 42)
                self.assertAlmostEqual(await c.short_long("a quick brown fox", 3), 2 / 3)
                out = await c.call(kiln.ProcedureInput(0, "vector.length", {"x": 3, "y": 4, "z": 12}))
                self.assertEqual(out.data["length"], 13.0)
                with self.assertRaises(kiln.InvalidArgs):
                    await c.call("double", {"x": "no"})
                with self.assertRaises(ValueError):
                    await c.echo("\ud800")
                async with await c.scene(width=4, height=4) as s:
                    await s.add_sphere((0, 0, -3), 1)
                    self.assertEqual(len(await s.render()), 4 * 4 * 4)
                self.assertEqual(await c.scenes(), [])
            self.assertTrue(repr(c).endswith("closed>"))
        self.run_async(main())

    def test_200_concurrent_calls(self):
        async def main():
            async with kiln.AsyncClient(self.socket_path) as c:
                xs = list(range(200))
                got = await asyncio.gather(*(c.double(x) for x in xs))
                self.assertEqual(got, [2 * x for x in xs])
                texts = await asyncio.gather(*(c.echo(f"e{x}") for x in xs))
                self.assertEqual(texts, [f"e{x}" for x in xs])
                outs = await c.call_many([("double", {"x": x}) for x in xs], window=50)
                self.assertEqual([o.data["x"] for o in outs], [2 * x for x in xs])
                # Concurrent slow calls overlap: all 20 are in flight at once.
                slow = asyncio.ensure_future(asyncio.gather(*(c.sleep(1.0) for _ in range(20))))
                self.assertEqual(await wait_in_flight(self.daemon, 20), 20)
                self.assertEqual(len(await slow), 20)
                # One connection for all of it (the other is the test's sync client).
                self.assertEqual((await c.stats())["connections"], 2)
        self.run_async(main())

    def test_progress_callback_and_async_iterator(self):
        async def main():
            async with kiln.AsyncClient(self.socket_path) as c:
                seen = []
                await c.sleep(0.3, steps=3, progress=seen.append)
                self.assertTrue(seen)
                self.assertEqual(seen[-1]["done"], seen[-1]["total"])
                got = []

                async def coro_cb(p):
                    got.append(p)
                await c.call("sleep", {"seconds": 0.2, "steps": 2}, progress=coro_cb)
                await asyncio.sleep(0)
                self.assertTrue(got)
                job = await c.stream("sleep", {"seconds": 0.3, "steps": 3})
                events = [p async for p in job]
                self.assertTrue(events)
                self.assertEqual(events[-1]["done"], events[-1]["total"])
                out = await job
                self.assertEqual(out.result, "success")
        self.run_async(main())

    def test_cancelling_the_task_cancels_in_the_daemon(self):
        async def main():
            async with kiln.AsyncClient(self.socket_path) as c:
                task = asyncio.ensure_future(c.sleep(30))
                self.assertEqual(await wait_in_flight(self.daemon, 1), 1)
                task.cancel()
                with self.assertRaises(asyncio.CancelledError):
                    await task
                self.assertEqual(await wait_in_flight(self.daemon, 0), 0)
                # Many at once, and a whole call_many batch.
                tasks = [asyncio.ensure_future(c.sleep(30)) for _ in range(10)]
                batch = asyncio.ensure_future(c.call_many([("sleep", {"seconds": 30})] * 5))
                self.assertEqual(await wait_in_flight(self.daemon, 15), 15)
                for t in tasks + [batch]:
                    t.cancel()
                await asyncio.gather(*tasks, batch, return_exceptions=True)
                self.assertEqual(await wait_in_flight(self.daemon, 0), 0)
                # wait_for's timeout cancels too; the connection stays usable.
                with self.assertRaises(asyncio.TimeoutError):
                    await asyncio.wait_for(c.sleep(30), 0.3)
                self.assertEqual(await wait_in_flight(self.daemon, 0), 0)
                self.assertEqual(await c.double(2), 4)
        self.run_async(main())

    def test_stream_cancel(self):
        async def main():
            async with kiln.AsyncClient(self.socket_path) as c:
                job = await c.stream("sleep", {"seconds": 30, "steps": 30})
                self.assertEqual(await wait_in_flight(self.daemon, 1), 1)
                await job.cancel()
                with self.assertRaises(kiln.Cancelled):
                    await job
                self.assertEqual(await wait_in_flight(self.daemon, 0), 0)
        self.run_async(main())


class AsyncTypesTest(unittest.TestCase):
    def test_stub_lists_every_method_as_a_coroutine(self):
        import inspect
        import os
        with open(os.path.join(kilntest.ROOT, "client", "kiln", "aio.pyi")) as f:
            stub = f.read()
        for name, _ in inspect.getmembers(kiln.Client, inspect.isfunction):
            if not name.startswith("_") and name != "next_job_id":
                self.assertIn(f"async def {name}(", stub, f"aio.pyi lacks {name}: regenerate it")
                self.assertTrue(hasattr(kiln.AsyncClient, name), name)


class AsyncReconnectTest(unittest.TestCase):
    def test_connect_error_and_reconnect_after_restart(self):
        async def main():
            c = kiln.AsyncClient("/nonexistent/kiln.sock")
            with self.assertRaises(kiln.ConnectError):
                await c.ping()
            d = kilntest.Daemon()
            try:
                async with kiln.AsyncClient(d.socket_path) as c:
                    self.assertEqual((await c.ping())["pid"], d.pid)
                    d.stop()
                    d2 = kilntest.Daemon(dir=d.dir)
                    try:
                        await asyncio.sleep(0.1)
                        self.assertEqual((await c.ping())["pid"], d2.pid)
                    finally:
                        d2.stop()
            finally:
                d.stop()
        asyncio.run(asyncio.wait_for(main(), 60))


if __name__ == "__main__":
    unittest.main()
