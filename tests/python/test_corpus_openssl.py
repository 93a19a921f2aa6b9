"""corpus.load reads files as `openssl enc` writes them, every variant the
action documents, through the Python client: ciphers, digests, both key
derivations, -iter, -a/-A, -nosalt, -S, -K/-iv; a passphrase with a file that
is not encrypted fails naming it; detect finds the combination."""

from __future__ import annotations

import os
import shutil
import subprocess
import unittest
from typing import Any, Dict, List

import kilntest
import kiln

OPENSSL = shutil.which("openssl")
GPG = shutil.which("gpg")
AGE = shutil.which("age")
PASS = "correct horse battery staple"
TEXT = "The river was high; café by the river. Then the River fell.\n" * 30
KEY = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

# (openssl enc options, corpus_load keyword arguments) for every documented variant.
CIPHERS = ["aes-128-cbc", "aes-192-cbc", "aes-256-cbc", "aes-128-ctr", "aes-192-ctr", "aes-256-ctr",
           "aes-128-cfb", "aes-192-cfb", "aes-256-cfb", "aes-128-ofb", "aes-192-ofb", "aes-256-ofb",
           "chacha20", "camellia-128-cbc", "camellia-192-cbc", "camellia-256-cbc", "aria-128-cbc",
           "aria-192-cbc", "aria-256-cbc"]
DIGESTS = ["sha1", "sha224", "sha256", "sha384", "sha512", "md5", "sha3-256", "sha512-256"]
VARIANTS: List[Any] = (
    [(["-" + c, "-pbkdf2"], {"cipher": c}) for c in CIPHERS]
    + [(["-aes-256-cbc", "-pbkdf2", "-md", d], {"digest": d}) for d in DIGESTS]
    + [(["-aes-256-cbc", "-md", d], {"digest": d, "kdf": "legacy"}) for d in DIGESTS]
    + [(["-aes-128-cbc", "-iter", "3210"], {"cipher": "aes-128-cbc", "iterations": 3210}),
       (["-aes-256-cbc", "-pbkdf2", "-a"], {}),
       (["-aes-256-cbc", "-pbkdf2", "-a", "-A"], {}),
       (["-chacha20", "-md", "md5", "-a", "-A"], {"cipher": "chacha20", "digest": "md5", "kdf": "legacy"}),
       (["-aes-256-cbc", "-pbkdf2", "-nosalt"], {"nosalt": True}),
       (["-aes-256-ctr", "-nosalt", "-a"], {"nosalt": True, "kdf": "legacy", "cipher": "aes-256-ctr"}),
       (["-aes-256-cbc", "-pbkdf2", "-S", "0102030405060708"], {"salt": "0102030405060708"}),
       (["-aria-256-cbc", "-pbkdf2", "-S", "0a0b0c0d0e0f1011", "-a"],
        {"salt": "0a0b0c0d0e0f1011", "cipher": "aria-256-cbc"})])
RAW_VARIANTS = [
    (["-aes-256-cbc", "-K", KEY, "-iv", "0f0e0d0c0b0a09080706050403020100"],
     {"key": KEY, "iv": "0f0e0d0c0b0a09080706050403020100"}),
    (["-aes-128-ctr", "-K", "00ff", "-iv", "01", "-a"], {"key": "00ff", "iv": "01", "cipher": "aes-128-ctr"}),
    (["-camellia-256-cbc", "-K", KEY, "-iv", "aa"], {"key": KEY, "iv": "aa", "cipher": "camellia-256-cbc"}),
]


@unittest.skipUnless(OPENSSL, "openssl CLI not installed")
class OpensslVariantsTest(kilntest.KilnTestCase):
    CONFIG = {"corpus_memory_budget": 64 << 20}

    def setUp(self) -> None:
        super().setUp()
        self.tmp = os.path.join(self.daemon.dir, self.id().rsplit(".", 1)[-1])
        os.makedirs(self.tmp, exist_ok=True)
        self.plain = os.path.join(self.tmp, "plain.txt")
        with open(self.plain, "w", encoding="utf-8") as f:
            f.write(TEXT)
        self.n = 0

    def enc(self, opts: List[str], with_pass: bool = True) -> str:
        self.n += 1
        out = os.path.join(self.tmp, f"f{self.n}")
        args = [OPENSSL, "enc", "-e", *opts, "-in", self.plain, "-out", out]
        if with_pass:
            args += ["-pass", "pass:" + PASS]
        subprocess.run(args, check=True, stderr=subprocess.DEVNULL)
        return out

    def load(self, paths: List[str], **kw: Any) -> Dict[str, Any]:
        self.n += 1
        # Under valgrind a detect (six key derivations of 10,000 rounds and
        # up to 66 decryptions) takes minutes.
        return self.client.corpus_load(f"c{self.n}", paths, timeout=900 if kilntest.WRAPPER else None, **kw)

    def test_round_trips(self) -> None:
        for opts, kw in VARIANTS:
            with self.subTest(opts=" ".join(opts)):
                r = self.load([self.enc(opts)], passphrase=PASS, **kw)
                self.assertEqual(r["bytes"], len(TEXT.encode()))
                self.assertEqual(self.client.corpus_count(r["name"], "river")["total"], 60)
                self.assertEqual(r["source"]["openssl"]["cipher"], kw.get("cipher", "aes-256-cbc"))
        for opts, kw in RAW_VARIANTS:
            with self.subTest(opts=" ".join(opts)):
                r = self.load([self.enc(opts, with_pass=False)], **kw)
                self.assertEqual(self.client.corpus_count(r["name"], "river")["total"], 60)
                self.assertEqual(r["source"]["openssl"]["key"], "raw")

    def test_wrong_options_say_what_to_try(self) -> None:
        f = self.enc(["-aes-128-cbc", "-pbkdf2", "-md", "sha512"])
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.load([f], passphrase=PASS)
        msg = str(cm.exception)
        self.assertIn("does not decrypt with aes-256-cbc, pbkdf2-sha256, 10000 iterations", msg)
        self.assertIn("records none of the cipher, digest", msg)
        for option in ("cipher", "digest", "kdf", "iterations", "detect"):
            self.assertIn(option, msg)
        # Stream ciphers give no padding error: the text check catches them.
        f = self.enc(["-aes-256-ctr", "-pbkdf2", "-md", "sha512"])
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.load([f], passphrase=PASS, cipher="aes-256-ctr")
        self.assertIn("not UTF-8", str(cm.exception))
        self.assertIn("records none of the cipher", str(cm.exception))
        # A stream-cipher file read as a block cipher.
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.load([f], passphrase=PASS)
        self.assertIn("does not decrypt with aes-256-cbc: not a whole number of 16-byte blocks", str(cm.exception))

    def test_detect(self) -> None:
        for opts, want in ((["-aes-128-cbc", "-pbkdf2", "-md", "sha512"],
                            {"cipher": "aes-128-cbc", "digest": "sha512", "kdf": "pbkdf2"}),
                           (["-chacha20", "-pbkdf2", "-md", "sha1", "-a"],
                            {"cipher": "chacha20", "digest": "sha1", "kdf": "pbkdf2"}),
                           (["-aria-256-cbc", "-md", "md5"], {"cipher": "aria-256-cbc", "digest": "md5", "kdf": "legacy"}),
                           (["-aes-256-ctr", "-md", "sha256"], {"cipher": "aes-256-ctr", "digest": "sha256", "kdf": "legacy"})):
            with self.subTest(opts=" ".join(opts)):
                r = self.load([self.enc(opts), self.enc(opts)], passphrase=PASS, detect=True)
                found = r["source"]["openssl"]
                self.assertTrue(found["detected"])
                self.assertEqual({k: found[k] for k in want}, want)
                self.assertLessEqual(found["tried"], 66)
                self.assertEqual(r["documents"], 2)
        # Iterations outside the list are not guessed; given, detect keeps them.
        f = self.enc(["-aes-192-cbc", "-iter", "4242"])
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.load([f], passphrase=PASS, detect=True)
        self.assertIn("combinations", str(cm.exception))
        r = self.load([f], passphrase=PASS, detect=True, iterations=4242)
        self.assertEqual(r["source"]["openssl"]["cipher"], "aes-192-cbc")

    def test_passphrase_means_encrypted(self) -> None:
        enc = self.enc(["-aes-256-cbc", "-pbkdf2"])
        readme = os.path.join(self.tmp, "README.txt")
        with open(readme, "w") as f:
            f.write("Diary files, encrypted. Nothing secret here.\n")
        b64 = self.enc(["-aes-256-cbc", "-pbkdf2", "-a"])
        for kw in ({"passphrase": PASS}, {"key": KEY, "iv": "00"}):
            with self.subTest(secret=list(kw)[0]), self.assertRaises(kiln.InvalidArgs) as cm:
                self.load([enc, readme, b64] if "passphrase" in kw else [readme], **kw)
            self.assertIn("README.txt: not encrypted as openssl enc writes it: plain text", str(cm.exception))
            failed = cm.exception.detail["failed"]
            self.assertEqual([x["document"] for x in failed], ["README.txt"])
        self.assertNotIn(f"c{self.n}", [c["name"] for c in self.client.corpus_list()])
        r = self.load([enc, readme, b64], passphrase=PASS, allow_plain=True)
        self.assertEqual(r["documents"], 3)
        self.assertEqual(r["source"]["files"], {"openssl-enc": 2, "plain": 1})
        # Without a secret, plain files load and encrypted ones (base64 too) are refused.
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.load([readme, b64])
        self.assertIn("need a passphrase", str(cm.exception))

    def test_message_names_first_failures(self) -> None:
        paths = []
        for i in range(5):
            p = os.path.join(self.tmp, f"note{i}.txt")
            with open(p, "w") as f:
                f.write("plain\n")
            paths.append(p)
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.load(paths, passphrase=PASS)
        msg = str(cm.exception)
        self.assertIn("5 of 5 files failed", msg)
        for i in range(3):
            self.assertIn(f"note{i}.txt: not encrypted", msg)
        self.assertIn("and 2 more", msg)
        self.assertEqual(len(cm.exception.detail["failed"]), 5)

    @unittest.skipUnless(GPG, "gpg not installed")
    def test_gpg_armor_is_not_plain_text(self) -> None:
        out = os.path.join(self.tmp, "diary.asc")
        subprocess.run([GPG, "--batch", "--homedir", self.tmp, "--passphrase", PASS, "--pinentry-mode", "loopback",
                        "--symmetric", "--armor", "-o", out, self.plain], check=True, stderr=subprocess.DEVNULL)
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.load([out], passphrase=PASS)
        self.assertIn("gpg ASCII-armored", str(cm.exception))

    @unittest.skipUnless(AGE, "age not installed")
    def test_age_armor_is_not_plain_text(self) -> None:
        key = os.path.join(self.tmp, "age.key")
        subprocess.run(["age-keygen", "-o", key], check=True, stderr=subprocess.DEVNULL)
        recipient = subprocess.run(["age-keygen", "-y", key], check=True, capture_output=True, text=True).stdout.strip()
        out = os.path.join(self.tmp, "diary.age")
        subprocess.run([AGE, "-a", "-r", recipient, "-o", out, self.plain], check=True)
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.load([out], passphrase=PASS)
        self.assertIn("an age file", str(cm.exception))

    def test_bad_options(self) -> None:
        f = self.enc(["-aes-256-cbc", "-pbkdf2"])
        for kw, text in (({"cipher": "aes-256-gcm"}, "AEAD"), ({"cipher": "nope-1"}, "nope-1"),
                         ({"digest": "sha7"}, "sha7"), ({"key": "zz", "iv": "00"}, "hex"),
                         ({"key": KEY}, "iv"), ({"iv": "00"}, "key")):
            with self.subTest(kw=kw), self.assertRaises(kiln.InvalidArgs) as cm:
                self.load([f], passphrase=PASS if "key" not in kw else None, **kw)
            self.assertIn(text, str(cm.exception))


if __name__ == "__main__":
    unittest.main()
