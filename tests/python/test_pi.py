"""The pi action against a real daemon (issue 4)."""

from __future__ import annotations

import os
import socket
import threading
import time
import unittest

import kilntest
import kiln

try:
    import gmpy2  # Debian python3-gmpy2
except ImportError:  # pragma: no cover - optional
    gmpy2 = None

# The first 50 decimals, as published everywhere.
PI50 = "3.14159265358979323846264338327950288419716939937510"


def gmpy2_pi(n: int) -> str:
    """n decimals of pi, truncated, from MPFR (with bits to spare)."""
    gmpy2.get_context().precision = int(n * 3.3219280948873623) + 64
    s = gmpy2.const_pi().digits(10, n + 20)[0]  # "31415...", rounded far past n
    return s[0] + "." + s[1:n + 1] if n else "3"


class PiTest(kilntest.KilnTestCase):
    CONFIG = {"pi_max_digits": 2_000_000}

    def test_small(self) -> None:
        self.assertEqual(self.client.pi(0), "3")
        self.assertEqual(self.client.pi(1), "3.1")
        for n in range(2, 51):
            self.assertEqual(self.client.pi(n), PI50[:n + 2], n)

    def test_reply_shape(self) -> None:
        out = self.client.call("pi", {"digits": 20})
        self.assertEqual(set(out.data), {"digits", "pi", "cached"})
        self.assertEqual(out.data["digits"], 20)
        self.assertIsNone(out.attachment)

    def test_feynman_point(self) -> None:
        """Decimals 762-767 are 999999 then 8: truncation must keep the 9s."""
        ref = self.client.pi(1000)
        self.assertEqual(ref[2 + 761:2 + 768], "9999998")
        for n in range(758, 772):
            self.assertEqual(self.client.pi(n), ref[:n + 2], n)

    @unittest.skipIf(gmpy2 is None, "python3-gmpy2 not installed")
    def test_against_mpfr(self) -> None:
        for n in (1000, 4321, 70000):
            self.assertEqual(self.client.pi(n), gmpy2_pi(n), n)

    def test_large_goes_as_attachment(self) -> None:
        out = self.client.call("pi", {"digits": 100000})
        self.assertNotIn("pi", out.data)
        self.assertEqual(out.data["attachment"], 100002)
        self.assertEqual(len(out.attachment), 100002)
        self.assertTrue(out.attachment.startswith(PI50.encode()))

    def test_base64_for_socat_style_clients(self) -> None:
        (r,) = self.raw(b'{"job_id":7,"action":"pi","args":{"digits":70000}}\n')
        self.assertIn("raw_b64", r)
        import base64
        self.assertEqual(base64.b64decode(r["raw_b64"]).decode(), self.client.pi(70000))

    def test_output_file(self) -> None:
        path = os.path.join(self.daemon.dir, "pi.txt")
        d = self.client.pi_to_file(5000, path)
        self.assertEqual(d["bytes"], 5002)
        with open(path) as f:
            self.assertEqual(f.read(), self.client.pi(5000))
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.pi_to_file(10, "/etc/kiln-pi-test.txt")
        self.assertEqual(cm.exception.code, "forbidden")

    def test_errors(self) -> None:
        for args, code in (({"digits": -1}, "invalid_args"), ({"digits": 1.5}, "invalid_args"),
                           ({"digits": "10"}, "invalid_args"), ({}, "invalid_args"),
                           ({"digits": 10, "extra": 1}, "invalid_args"),
                           ({"digits": 2_000_001}, "too_large"),
                           ({"digits": 2**63 - 1}, "too_large")):
            with self.assertRaises(kiln.KilnError, msg=str(args)) as cm:
                self.client.call("pi", args)
            self.assertEqual(cm.exception.code, code, args)
        # The daemon is still fine.
        self.assertEqual(self.client.pi(3), "3.141")



class PiProgressTest(kilntest.KilnTestCase):
    CONFIG = {"pi_cache_max_digits": 0}

    def test_progress(self) -> None:
        # No cache: every request computes, so progress always comes.
        for _ in range(2):
            seen = []
            out = self.client.call("pi", {"digits": 100000}, progress=seen.append, timeout=300)
            self.assertEqual(out.data["digits"], 100000)
            self.assertFalse(out.data["cached"])
            self.assertTrue(seen)
            self.assertTrue(all(p["total"] == seen[0]["total"] > 0 for p in seen), seen)
            done = [p["done"] for p in seen]
            self.assertEqual(done, sorted(done))
            self.assertEqual(seen[-1]["done"], seen[-1]["total"])
        self.assertEqual(self.client.stats()["pi_cache_digits"], 0)


class PiCacheTest(kilntest.KilnTestCase):
    CONFIG = {"pi_cache_max_digits": 100000}

    def test_sizes_agree_and_cache(self) -> None:
        a = self.client.call("pi", {"digits": 20000})
        self.assertFalse(a.data["cached"])
        big = self.client.call("pi", {"digits": 90000})
        self.assertFalse(big.data["cached"])
        self.assertEqual(big.attachment.decode()[:20002], a.data["pi"])
        again = self.client.call("pi", {"digits": 20000})
        self.assertTrue(again.data["cached"])
        self.assertEqual(again.data["pi"], a.data["pi"])
        self.assertEqual(self.client.stats()["pi_cache_digits"], 90000)
        # Beyond pi_cache_max_digits: computed, correct, but not kept.
        huge = self.client.call("pi", {"digits": 150000})
        self.assertEqual(huge.attachment[:90002], big.attachment)
        self.assertFalse(self.client.call("pi", {"digits": 150000}).data["cached"])
        self.assertEqual(self.client.stats()["pi_cache_digits"], 90000)


class PiCoalesceTest(kilntest.KilnTestCase):
    def test_concurrent_identical(self) -> None:
        """Pipelined identical and smaller requests share one computation
        and all get the same digits."""
        outs = self.client.call_many([("pi", {"digits": 70001})] * 4 + [("pi", {"digits": 69999})])
        first = outs[0].attachment
        for o in outs[1:4]:
            self.assertEqual(o.attachment, first)
        self.assertEqual(outs[4].attachment, first[:-2])


class PiCancelTest(kilntest.KilnTestCase):
    CONFIG = {}

    @kilntest.heavy
    def test_timeout_stops_and_others_survive(self) -> None:
        """The owner of a computation times out; a second request waiting on
        the same computation from another connection still gets its digits."""
        result = {}

        def other() -> None:
            time.sleep(0.05)
            with self.daemon.client() as c:
                result["pi"] = c.pi(1_500_000, timeout=120)

        t = threading.Thread(target=other)
        t.start()
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.call("pi", {"digits": 2_000_000}, timeout=0.3)
        self.assertEqual(cm.exception.code, "timeout")
        t.join(120)
        self.assertTrue(result["pi"].startswith(PI50))
        self.assertEqual(len(result["pi"]), 1_500_002)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.daemon.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def wait_idle(self, seconds: float = 60) -> dict:
        """stats once only the stats request itself is in flight (a job
        stays in flight until its work items have returned)."""
        deadline = time.monotonic() + seconds
        while self.client.stats()["in_flight"] > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.client.stats()

    @kilntest.heavy
    def test_timeout_stops_the_computation(self) -> None:
        """10^7 digits take many seconds; timed out after 0.3 s, the
        computation stops at its next splitting step: its work items
        return, the daemon's CPU time stops growing, nothing is cached."""
        with self.assertRaises(kiln.Timeout):
            self.client.call("pi", {"digits": 10_000_000}, timeout=0.3)
        stats = self.wait_idle()
        self.assertEqual(stats["in_flight"], 1, "the timed-out computation still holds its job")
        cpu = self.cpu_seconds()
        time.sleep(0.5)
        self.assertLess(self.cpu_seconds() - cpu, 0.2, "kilnd still burns CPU after the timeout")
        # Had it run to the end, the 10^7 digits would be in the cache.
        self.assertLess(self.client.stats()["pi_cache_digits"], 10_000_000)
        self.assertEqual(self.client.pi(10), PI50[:12])

    @kilntest.heavy
    def test_disconnect_cancels(self) -> None:
        """10^7 digits take seconds; once the client is gone the computation
        stops at its next splitting step and never produces its result."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(self.socket_path)
            s.sendall(b'{"job_id":1,"action":"pi","args":{"digits":10000000}}\n')
            time.sleep(0.3)
        self.assertEqual(self.client.pi(10), PI50[:12])
        deadline = time.monotonic() + 60
        while self.client.stats()["in_flight"] > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        stats = self.client.stats()
        self.assertEqual(stats["in_flight"], 1)
        # Had it run to the end, the 10^7 digits would be in the cache.
        self.assertLess(stats["pi_cache_digits"], 10_000_000)


if __name__ == "__main__":
    unittest.main()
