"""ssh:// transport (issue 15): kiln.Client("ssh://user@host:port/socket")
runs OpenSSH and socat on the remote side.  Tested against a real sshd the
test starts on a free loopback port, with a throwaway host key and client
key and its own sshd_config; needs root (sshd) and openssh-server."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import kilntest
from kilntest import KilnTestCase

import kiln

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
MISSING = [n for n, p in (("openssh-server", SSHD), ("openssh-client", shutil.which("ssh")),
                          ("socat", shutil.which("socat"))) if not p or not os.path.exists(p)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@unittest.skipIf(MISSING, f"needs {', '.join(MISSING)} (apt-get install {' '.join(MISSING)})")
@unittest.skipUnless(os.geteuid() == 0, "needs root to run sshd")
class SshTest(KilnTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tmp = tempfile.mkdtemp(prefix="kiln-ssh-")
        os.chmod(cls.tmp, 0o700)
        host_key = os.path.join(cls.tmp, "host_ed25519")
        cls.key = os.path.join(cls.tmp, "id_ed25519")
        for k in (host_key, cls.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k], check=True,
                           timeout=60)
        auth = os.path.join(cls.tmp, "authorized_keys")
        shutil.copy(cls.key + ".pub", auth)
        cls.port = free_port()
        config = os.path.join(cls.tmp, "sshd_config")
        with open(config, "w") as f:
            f.write(f"Port {cls.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
                    f"AuthorizedKeysFile {auth}\nPidFile {cls.tmp}/sshd.pid\n"
                    "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
                    "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                    f"SetEnv PATH={os.environ.get('PATH', '/usr/bin:/bin')}\n")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # privilege separation directory
        cls.sshd = subprocess.Popen([SSHD, "-D", "-e", "-f", config], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", cls.port), 1).close()
                break
            except OSError:
                if cls.sshd.poll() is not None or time.monotonic() > deadline:
                    err = cls.sshd.stderr.read().decode(errors="replace") if cls.sshd.stderr else ""
                    raise RuntimeError(f"sshd did not start: {err}")
                time.sleep(0.05)
        cls.opts = ["-i", cls.key, "-o", "StrictHostKeyChecking=no", "-o",
                    f"UserKnownHostsFile={cls.tmp}/known_hosts", "-o", "LogLevel=ERROR"]
        cls.url = f"ssh://root@127.0.0.1:{cls.port}{cls.daemon.socket_path}"

    @classmethod
    def tearDownClass(cls):
        cls.sshd.terminate()
        cls.sshd.wait(10)
        cls.sshd.stderr.close()
        shutil.rmtree(cls.tmp, ignore_errors=True)
        super().tearDownClass()

    def test_calls_over_ssh(self):
        with kiln.Client(self.url, ssh_options=self.opts) as c:
            self.assertEqual(c.ping()["pid"], self.daemon.pid)
            self.assertEqual(c.pi(30), "3.141592653589793238462643383279")
            big = c.pi(200000)  # a raw attachment through the bridge
            self.assertEqual(len(big), 200002)
            self.assertEqual(big, self.client.pi(200000))
            outs = c.call_many([("double", {"x": i}) for i in range(300)])
            self.assertEqual([o.data["x"] for o in outs], [2 * i for i in range(300)])
            with self.assertRaises(kiln.InvalidArgs):
                c.call("double", {"x": "x"})
            ssh = c._t.proc
        self.assertIsNotNone(ssh.poll(), "ssh outlived the client")

    def test_environment_variables(self):
        env = dict(os.environ, KILN_SOCKET=self.url, KILN_SSH_OPTIONS=" ".join(self.opts),
                   PYTHONPATH=os.path.join(kilntest.ROOT, "client"))
        p = subprocess.run([sys.executable, "-m", "kiln", "double", "x=21"], env=env,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["data"]["x"], 42)

    def test_default_remote_socket(self):
        # Without a path the remote side takes the first socket among
        # $KILN_SOCKET, $XDG_RUNTIME_DIR/kiln/kiln.sock, /run/kiln/kiln.sock
        # and /tmp/kiln-$UID/kiln.sock: the last one, a link to our daemon.
        link_dir = f"/tmp/kiln-{os.getuid()}"
        link = os.path.join(link_dir, "kiln.sock")
        if os.path.lexists(link) or os.path.exists("/run/kiln/kiln.sock"):
            self.skipTest(f"{link} or /run/kiln/kiln.sock in use on this machine")
        os.makedirs(link_dir, exist_ok=True)
        os.symlink(self.daemon.socket_path, link)
        try:
            with kiln.Client(f"ssh://root@127.0.0.1:{self.port}", ssh_options=self.opts) as c:
                self.assertEqual(c.ping()["pid"], self.daemon.pid)
        finally:
            os.unlink(link)

    def test_wrong_socket_is_a_connect_error(self):
        url = f"ssh://root@127.0.0.1:{self.port}/nonexistent/kiln.sock"
        with self.assertRaises(kiln.ConnectError) as cm:
            kiln.Client(url, ssh_options=self.opts)
        self.assertIn("nonexistent", str(cm.exception))

    def test_refused_key_is_a_connect_error(self):
        other = os.path.join(self.tmp, "other_key")
        if not os.path.exists(other):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", other], check=True)
        opts = ["-i", other, "-o", "IdentitiesOnly=yes"] + self.opts[2:]
        with self.assertRaises(kiln.ConnectError) as cm:
            kiln.Client(self.url, ssh_options=opts)
        self.assertIn("Permission denied", str(cm.exception))

    def test_async_over_ssh(self):
        async def main():
            async with kiln.AsyncClient(self.url, ssh_options=self.opts) as c:
                got = await asyncio.gather(*(c.double(i) for i in range(50)))
                self.assertEqual(got, [2 * i for i in range(50)])
        asyncio.run(asyncio.wait_for(main(), 60))

    def test_bad_addresses(self):
        for bad in ("ssh://", "ssh://host?x=1"):
            with self.assertRaises(ValueError):
                kiln.Client(bad)


if __name__ == "__main__":
    unittest.main()
