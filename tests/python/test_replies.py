"""Consistent replies across action families (issue 15): detail.limit names
the config key and detail.max its value wherever a limit is hit;
corpus.search counts every hit; corpus.count has one shape; kdf_ms is real;
stats counters count."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import unittest

import kilntest
from kilntest import KilnTestCase

import kiln

CORPUS = os.path.join(kilntest.DATA, "corpus")
SCENES = os.path.join(kilntest.DATA, "scenes")


class LimitDetailTest(KilnTestCase):
    CONFIG = {"max_line_bytes": 2048, "max_attachment_bytes": 1000, "pi_max_digits": 500,
              "scene_max_scenes": 1, "scene_max_pixels": 10000, "scene_max_elements": 3,
              "scene_max_texture_pixels": 100, "corpus_memory_budget": 8192, "max_file_bytes": 100000}

    def assertLimit(self, fn, key, max_value):
        with self.assertRaises(kiln.TooLarge) as cm:
            fn()
        d = cm.exception.detail
        self.assertIsInstance(d, dict, cm.exception)
        self.assertEqual(d.get("limit"), key, cm.exception)
        self.assertEqual(d.get("max"), max_value, cm.exception)

    def test_every_family_names_the_key(self):
        c = self.client
        self.assertLimit(lambda: c.echo("x" * 5000), "max_line_bytes", 2048)
        self.assertLimit(lambda: c.short_long(b"word " * 300), "max_attachment_bytes", 1000)
        self.assertLimit(lambda: c.pi(501), "pi_max_digits", 500)
        # Any size loads; scene_max_pixels bounds what is rendered whole into memory.
        with c.scene(width=101, height=100) as s:
            self.assertLimit(lambda: s.render(), "scene_max_pixels", 10000)
        with c.scene(width=10, height=10) as s:
            self.assertLimit(lambda: c.scene(width=10, height=10), "scene_max_scenes", 1)
            sphere = kiln.sphere((0, 0, -5), 1)
            self.assertLimit(lambda: s.add([sphere] * 4), "scene_max_elements", 3)
            self.assertLimit(lambda: s.add_sphere((0, 0, -5), 1, texture=os.path.join(SCENES, "stripes.png")),
                             "scene_max_texture_pixels", 100)
        big = os.path.join(self.daemon.dir, "big.txt")
        with open(big, "w") as f:
            f.write("word " * 4000)  # 20000 bytes: more than the corpus budget
        self.assertLimit(lambda: c.corpus_load("big", [big]), "corpus_memory_budget", 8192)
        huge = os.path.join(self.daemon.dir, "huge.txt")
        with open(huge, "w") as f:
            f.write("w " * 60000)
        self.assertLimit(lambda: c.text_stats(path=huge), "max_file_bytes", 100000)


class BusyDetailTest(KilnTestCase):
    CONFIG = {"max_connections": 1}

    def test_max_connections(self):
        out = kilntest.raw_exchange(self.socket_path, b"")
        self.assertEqual(out[0]["error"]["code"], "busy")
        self.assertEqual(out[0]["error"]["detail"], {"limit": "max_connections", "max": 1})


class CorpusRepliesTest(KilnTestCase):
    def setUp(self):
        super().setUp()
        self.client.corpus_load("ex", dir=os.path.join(CORPUS, "plain"), glob="*.txt")

    def test_search_reports_every_hit(self):
        full = self.client.corpus_search("ex", "a", max_results=10000)
        self.assertFalse(full["truncated"])
        self.assertEqual(full["count"], len(full["results"]))
        self.assertEqual(full["returned"], full["count"])
        self.assertGreater(full["count"], 3)
        few = self.client.corpus_search("ex", "a", max_results=2)
        self.assertEqual(few["count"], full["count"])
        self.assertEqual((few["returned"], len(few["results"])), (2, 2))
        self.assertTrue(few["truncated"])
        none = self.client.corpus_search("ex", "a", max_results=0)
        self.assertEqual((none["count"], none["returned"]), (full["count"], 0))

    def test_count_has_one_shape(self):
        one = self.client.call("corpus.count", {"name": "ex", "word": "café"}).data
        many = self.client.call("corpus.count", {"name": "ex", "words": ["café"]}).data
        self.assertEqual(one, many)
        self.assertEqual(set(one), {"case", "total", "words"})
        self.assertEqual(one["words"][0]["word"], "café")
        # The client's convenience for one word: that word's entry.
        entry = self.client.corpus_count("ex", "café")
        self.assertEqual(entry["total"], one["total"])
        self.assertEqual(entry["documents"], one["words"][0]["documents"])


@unittest.skipUnless(shutil.which("openssl"), "openssl CLI not installed")
class KdfTimeTest(KilnTestCase):
    @kilntest.heavy  # PBKDF2 under valgrind takes minutes
    def test_openssl_enc_kdf_ms_is_measured(self):
        tmp = tempfile.mkdtemp(prefix="kiln-kdf-", dir=self.daemon.dir)
        src = os.path.join(CORPUS, "plain", "monday.txt")
        paths = []
        for i in range(2):
            dst = os.path.join(tmp, f"f{i}.enc")
            subprocess.run(["openssl", "enc", "-aes-256-cbc", "-salt", "-pbkdf2", "-iter", "300000",
                            "-pass", "pass:pw", "-in", src, "-out", dst], check=True)
            paths.append(dst)
        t0 = time.monotonic()
        r = self.client.corpus_load("k", paths, passphrase="pw", iterations=300000)
        wall_ms = (time.monotonic() - t0) * 1000
        # Two PBKDF2-SHA256 derivations of 300000 iterations take tens of
        # milliseconds at least; the field used to say 0.
        self.assertGreater(r["kdf_ms"], 5.0, r)
        self.assertLess(r["kdf_ms"], 2 * wall_ms + 1, r)
        plain = self.client.corpus_load("p", [src])
        self.assertEqual(plain["kdf_ms"], 0.0)


class StatsCountersTest(KilnTestCase):
    CONFIG = {"procedures": {"t.true": {"argv": ["/bin/true", "{host}"]}}}

    def test_counters_count(self):
        c = self.client
        before = c.stats()
        c.run_procedure("t.true", ["a", "b"])
        c.run_procedure("t.true", ["c"])
        for _ in range(5):
            c.ping()
        after = c.stats()
        self.assertEqual(after["procedure_runs"] - before["procedure_runs"], 2)
        self.assertEqual(after["procedure_runs_active"], 0)
        self.assertEqual(after["requests_served"] - before["requests_served"], 2 + 5 + 1)


if __name__ == "__main__":
    unittest.main()
