"""proto/ and the example config cannot drift from the code: both are
checked against `kilnd --describe`, which reads the dispatch table and the
config key table."""

from __future__ import annotations

import json
import os
import subprocess
import unittest

import kilntest


def describe() -> dict:
    env = dict(os.environ)
    env.pop("KILN_CONFIG", None)
    out = subprocess.run([kilntest.KILND, "--describe"], capture_output=True, text=True, env=env,
                         timeout=60, check=True).stdout
    return json.loads(out)


class ProtoTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.desc = describe()

    def test_actions_json_is_current(self) -> None:
        with open(os.path.join(kilntest.ROOT, "proto", "actions.json")) as f:
            committed = json.load(f)
        self.assertEqual(committed, self.desc, "proto/actions.json is stale: run `make proto`")

    def test_every_action_documented(self) -> None:
        for a in self.desc["actions"]:
            self.assertTrue(a["summary"].strip(), a["name"])
            self.assertEqual(a["args"].get("type"), "object", a["name"])

    def test_example_config_has_every_key_with_its_default(self) -> None:
        with open(os.path.join(kilntest.ROOT, "daemon", "kiln.example.json")) as f:
            example = json.load(f)
        for key in self.desc["config"]:
            name = key["key"]
            self.assertIn(name, example, f"kiln.example.json lacks {name}")
            self.assertIn("# " + name, example, f"kiln.example.json does not document {name}")
            if name != "procedures":
                self.assertEqual(example[name], key["default"], name)
        known = {k["key"] for k in self.desc["config"]}
        for name in example:
            self.assertTrue(name.startswith("#") or name in known, f"unknown key {name} in the example")

    def test_example_config_loads(self) -> None:
        p = subprocess.run([kilntest.KILND, "--config", os.path.join(kilntest.ROOT, "daemon", "kiln.example.json"),
                            "--describe"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
