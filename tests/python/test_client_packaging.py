"""Packaging of the Python client (issue 15): pip install ./client into a
fresh venv offline, the `kiln` console script, py.typed, and one version
shared with kilnd."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

import kilntest
from kilntest import KilnTestCase

import kiln

CLIENT = os.path.join(kilntest.ROOT, "client")


def header_version() -> str:
    with open(os.path.join(kilntest.ROOT, "include", "kiln", "version.h")) as f:
        return re.search(r'#define KILN_VERSION "([^"]+)"', f.read()).group(1)


class VersionTest(unittest.TestCase):
    def test_one_version(self):
        v = header_version()
        self.assertEqual(kiln.__version__, v, "run make: client/kiln/_version.py is stale")
        out = subprocess.run([kilntest.KILND, "--version"], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.stdout.strip(), f"kilnd {v}")

    def test_daemon_reports_it(self):
        with kilntest.Daemon() as d, d.client() as c:
            self.assertEqual(c.ping()["version"], kiln.__version__)


class PipInstallTest(KilnTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="kiln-venv-")
        cls.venv = os.path.join(cls.tmp, "venv")
        py = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
        if importlib.util.find_spec("ensurepip") is None:
            cls.skip = "no ensurepip/venv (apt-get install python3-venv)"
            return
        # Debian ships setuptools as python3-setuptools: the venv sees it
        # through --system-site-packages; --no-build-isolation uses it.
        p = subprocess.run([py, "-m", "venv", "--system-site-packages", cls.venv],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            cls.skip = f"python3 -m venv failed (apt-get install python3-venv): {p.stderr[-300:]}"
            return
        # Build from a copy, so the build leaves nothing in the repository.
        src = os.path.join(cls.tmp, "client")
        shutil.copytree(CLIENT, src, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info"))
        cls.pip = subprocess.run([os.path.join(cls.venv, "bin", "python"), "-m", "pip", "install",
                                  "--no-index", "--no-build-isolation", "--disable-pip-version-check",
                                  src], capture_output=True, text=True, timeout=600,
                                 env=dict(os.environ, PIP_NO_INPUT="1"))
        cls.skip = None

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        if self.skip:
            self.skipTest(self.skip)
        self.assertEqual(self.pip.returncode, 0, self.pip.stdout + self.pip.stderr)

    def venv_run(self, *argv, **kw):
        env = dict(os.environ, KILN_SOCKET=self.socket_path)
        env.pop("PYTHONPATH", None)
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=60, env=env,
                              cwd=self.tmp, **kw)

    def test_installed_package_imports_from_the_venv(self):
        py = os.path.join(self.venv, "bin", "python")
        p = self.venv_run(py, "-c", "import kiln, sys; print(kiln.__file__); print(kiln.__version__);"
                                    "print(kiln.Client().pi(20))")
        self.assertEqual(p.returncode, 0, p.stderr)
        path, version, pi = p.stdout.splitlines()
        self.assertTrue(path.startswith(self.venv), path)
        self.assertEqual(version, header_version())
        self.assertEqual(pi, "3.14159265358979323846")
        pkg = os.path.dirname(path)
        self.assertTrue(os.path.exists(os.path.join(pkg, "py.typed")))
        self.assertTrue(os.path.exists(os.path.join(pkg, "aio.pyi")))  # AsyncClient's coroutine types

    def test_console_script(self):
        exe = os.path.join(self.venv, "bin", "kiln")
        self.assertTrue(os.access(exe, os.X_OK))
        p = self.venv_run(exe, "vector.length", "x=3", "y=4", "z=12")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["data"]["length"], 13.0)
        p = self.venv_run(exe, "double", "x=oops")
        self.assertEqual(p.returncode, 1)
        p = self.venv_run(exe, "--version")
        self.assertEqual(p.stdout.strip(), f"kiln {header_version()}")

    def test_metadata(self):
        py = os.path.join(self.venv, "bin", "python")
        p = self.venv_run(py, "-c", "import importlib.metadata as m, json; d = m.distribution('kiln');"
                                    "print(json.dumps([d.version, d.requires or [],"
                                    " d.metadata.get_all('Provides-Extra')]))")
        self.assertEqual(p.returncode, 0, p.stderr)
        version, requires, extras = json.loads(p.stdout)
        self.assertEqual(version, header_version())
        # Nothing at runtime but the standard library; Pillow/numpy only as extras.
        self.assertTrue(all("extra ==" in r for r in requires), requires)
        self.assertEqual(sorted(extras), ["numpy", "pillow"])


class MakeInstallTest(unittest.TestCase):
    def test_make_install_into_destdir(self):
        dest = tempfile.mkdtemp(prefix="kiln-destdir-")
        try:
            p = subprocess.run(["make", "-s", "--no-print-directory", "install", f"DESTDIR={dest}",
                                f"BUILD={os.path.relpath(os.path.dirname(kilntest.KILND), kilntest.ROOT)}"],
                               cwd=kilntest.ROOT, capture_output=True, text=True, timeout=300)
            self.assertEqual(p.returncode, 0, p.stderr)
            site = [r for r, _, files in os.walk(dest) if r.endswith("/kiln") and "client.py" in files]
            self.assertEqual(len(site), 1, site)
            self.assertTrue(os.path.exists(os.path.join(site[0], "py.typed")))
            self.assertTrue(os.path.exists(os.path.join(site[0], "aio.pyi")))
            exe = os.path.join(dest, "usr", "local", "bin", "kiln")
            env = dict(os.environ, PYTHONPATH=os.path.dirname(site[0]))
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, env=env, timeout=30)
            self.assertEqual(out.stdout.strip(), f"kiln {header_version()}", out.stderr)
        finally:
            shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
