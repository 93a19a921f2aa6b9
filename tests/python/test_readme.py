"""The README's Python examples run as written (issue 15): every ```python
block of "Using it from Python", from the repository root, against a real
daemon whose path_roots is tests/data like `make run`'s."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unittest

import kilntest
from kilntest import KilnTestCase


def examples():
    with open(os.path.join(kilntest.ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    section = text.split("## Using it from Python", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


class ReadmeTest(KilnTestCase):
    def test_there_is_an_example_per_workload(self):
        blocks = "\n".join(examples())
        for needle in ("c.pi(", "c.short_long(", "corpus_load(", "c.scene(", "AsyncClient", "job_wait"):
            self.assertIn(needle, blocks)
        self.assertIn("tests/data/text/sample.txt", blocks)

    def test_examples_run(self):
        env = dict(os.environ, KILN_SOCKET=self.socket_path,
                   PYTHONPATH=os.path.join(kilntest.ROOT, "client"))
        for i, code in enumerate(examples()):
            with self.subTest(example=i, first_line=code.splitlines()[1] if "\n" in code else code):
                p = subprocess.run([sys.executable, "-c", code], cwd=kilntest.ROOT, env=env,
                                   capture_output=True, text=True, timeout=120)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertTrue(p.stdout.strip())
                self.assertNotIn("Traceback", p.stderr)


if __name__ == "__main__":
    unittest.main()
