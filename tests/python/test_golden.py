"""Replays every golden example in proto/examples/ against a real daemon."""

from __future__ import annotations

import json
import os
import unittest

import golden
import kilntest


class GoldenTest(unittest.TestCase):
    def test_examples(self) -> None:
        files = golden.example_files()
        self.assertTrue(files, "no golden examples found")
        with open(os.path.join(kilntest.DATA, "test-config.json")) as f:
            cfg = json.load(f)
        cfg["path_roots"] = [kilntest.DATA]
        for path in files:
            d = kilntest.Daemon(cfg)
            captures: dict = {}
            try:
                for case in golden.load(path):
                    with self.subTest(file=os.path.basename(path), case=case["name"]):
                        replies = kilntest.raw_exchange(d.socket_path, golden.request_line(case, captures),
                                                        replies=len(case["expect"]), timeout=60)
                        for r in replies:
                            r.pop("_attachment", None)
                        self.assertEqual(golden.check_case(case, replies, captures), [])
            finally:
                self.assertEqual(d.stop(), 0, d.read_log()[-3000:])


if __name__ == "__main__":
    unittest.main()
