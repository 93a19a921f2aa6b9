"""corpus.* against a real daemon: openssl CLI compatibility, the sealed
format, atomic loads, and counts/search/stats against Python references."""

from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import struct
import subprocess
import unittest

import kilntest
import kiln

OPENSSL = shutil.which("openssl") or "openssl"  # required (make deps-test); see requires_tool
PASS = "correct horse battery staple"

try:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
except ImportError:  # optional Debian package python3-cryptography
    AESGCM = None

# Words with non-ASCII letters, sre case equivalences (ſ/s, K/Kelvin sign),
# punctuation inside and at the edges, digits, mixed case.
VOCAB = ["café", "Café", "CAFÉ", "naïve", "Naïve", "straße", "STRASSE", "ſtraße", "the", "The",
         "THE", "then", "other", "c++", "C++", "don't", "Don't", "e-mail", "ǅemal", "ǆemal",
         "Ǆemal", "kelvin", "\u212aelvin", "ΣΊΣΥΦΟΣ", "σίσυφος", "ι\u0345", "x_1", "42", "٤٢",
         "中文", "日本語", "über", "Über", "émile", "e\u0301mile", "İstanbul", "istanbul", "ıstanbul"]
PUNCT = [" ", " ", " ", ", ", ". ", "; ", "\n", " — ", "'", "(", ")", "-", "_", "+"]
QUERIES = ["café", "CAFÉ", "naïve", "straße", "STRASSE", "the", "The", "c++", "C++", "don't",
           "e-mail", "ǅemal", "kelvin", "σίσυφος", "ΣΊΣΥΦΟΣ", "ι", "x_1", "42", "中文", "über",
           "émile", "istanbul", "İstanbul", "+", "(", "ſtraße", "s"]


def gen_text(rng: random.Random, words: int) -> str:
    return "".join(rng.choice(VOCAB) + rng.choice(PUNCT) for _ in range(words))


def py_count(text: str, word: str, icase: bool) -> int:
    pat = r"\b" + re.escape(word) + r"\b"
    return len(re.findall(pat, text, re.IGNORECASE if icase else 0))


def openssl_enc(src: str, dst: str, passphrase: str, *opts: str) -> None:
    subprocess.run([OPENSSL, "enc", "-aes-256-cbc", "-salt", *opts, "-pass", "pass:" + passphrase,
                    "-in", src, "-out", dst], check=True, stderr=subprocess.DEVNULL)


class CorpusTest(kilntest.KilnTestCase):
    CONFIG = {"corpus_memory_budget": 64 << 20}

    def setUp(self) -> None:
        super().setUp()
        self.tmp = os.path.join(self.daemon.dir, self.id().rsplit(".", 1)[-1])
        os.makedirs(self.tmp, exist_ok=True)

    def write(self, name: str, data: bytes) -> str:
        path = os.path.join(self.tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def make_texts(self, n: int, words: int = 400, seed: int = 7) -> dict:
        rng = random.Random(seed)
        return {f"doc{i:02d}.txt": gen_text(rng, words) for i in range(n)}

    def assert_counts(self, name: str, texts: dict) -> None:
        for icase in (False, True):
            case = "insensitive" if icase else "sensitive"
            got = self.client.corpus_count(name, QUERIES, case=case)
            self.assertEqual(len(got["words"]), len(QUERIES))
            for q, res in zip(QUERIES, got["words"]):
                want = {doc: py_count(t, q, icase) for doc, t in texts.items()}
                self.assertEqual(res["documents"], want, f"{q!r} case={case}")
                self.assertEqual(res["total"], sum(want.values()))

    def expect_load_error(self, code: str, **kw) -> kiln.KilnError:
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.corpus_load(**kw)
        self.assertEqual(cm.exception.code, code, cm.exception)
        return cm.exception

    # --- plain -------------------------------------------------------------------

    def test_plain_counts_match_python(self) -> None:
        texts = self.make_texts(6, 600)
        paths = [self.write(n, t.encode()) for n, t in texts.items()]
        r = self.client.corpus_load("plain", paths, format="plain")
        self.assertEqual(r["documents"], 6)
        self.assertEqual(r["bytes"], sum(len(t.encode()) for t in texts.values()))
        self.assertEqual(r["failed"], [])
        self.assert_counts("plain", texts)
        one = self.client.corpus_count("plain", "café", case="insensitive")
        self.assertEqual(one["total"], sum(py_count(t, "café", True) for t in texts.values()))
        self.assertEqual(set(one["documents"]), set(texts))

    def test_search_matches_python(self) -> None:
        texts = self.make_texts(3, 300, seed=11)
        paths = [self.write(n, t.encode()) for n, t in texts.items()]
        self.client.corpus_load("s", paths)
        for q, icase in (("naïve", False), ("STRASSE", True), ("c++", False), ("ΣΊΣΥΦΟΣ", True)):
            want = []
            for doc, t in texts.items():
                for ln, line in enumerate(t.split("\n"), 1):
                    for m in re.finditer(re.escape(q), line, re.I if icase else 0):
                        want.append({"document": doc, "line": ln, "column": m.start() + 1,
                                     "text": line})
            got = self.client.corpus_search("s", q, case="insensitive" if icase else "sensitive",
                                            max_results=10000)
            self.assertEqual(got["results"], want, q)
            self.assertFalse(got["truncated"])
        few = self.client.corpus_search("s", "the", max_results=3)
        self.assertEqual(len(few["results"]), 3)
        self.assertTrue(few["truncated"])
        ww = self.client.corpus_search("s", "the", whole_word=True, max_results=10000)
        self.assertEqual(ww["count"], sum(py_count(t, "the", False) for t in texts.values()))

    def test_stats_match_python(self) -> None:
        texts = self.make_texts(3, 200, seed=3)
        paths = [self.write(n, t.encode()) for n, t in texts.items()]
        self.client.corpus_load("st", paths)
        st = self.client.corpus_stats("st", min_length=5, ignore=["the"])
        total_words = 0
        for doc, t in texts.items():
            words = t.split()
            kept = [w for w in words if w != "the"]
            d = st["documents"][doc]
            self.assertEqual(d["words"], len(words))
            self.assertEqual(d["kept_words"], len(kept))
            self.assertEqual(d["long_words"], len([w for w in kept if len(w) > 5]))
            self.assertEqual(d["code_points"], len(t))
            self.assertEqual(d["lines"], len(t.splitlines()))
            total_words += len(words)
        self.assertEqual(st["total"]["words"], total_words)

    def test_list_info_unload(self) -> None:
        p = self.write("a.txt", "hello world\nsecond line\n".encode())
        self.client.corpus_load("li", [p])
        names = [c["name"] for c in self.client.corpus_list()]
        self.assertIn("li", names)
        info = self.client.corpus_info("li")
        self.assertEqual(info["document_list"], [{"name": "a.txt", "bytes": 24, "code_points": 24,
                                                  "lines": 2}])
        self.assertEqual(self.client.corpus_unload("li")["bytes"], 24)
        for fn in (lambda: self.client.corpus_count("li", "hello"),
                   lambda: self.client.corpus_search("li", "hello"),
                   lambda: self.client.corpus_info("li"),
                   lambda: self.client.corpus_unload("li")):
            with self.assertRaises(kiln.NotFound):
                fn()

    def test_text_actions_read_corpus_documents(self) -> None:
        texts = self.make_texts(2, 300, seed=9)
        paths = [self.write(n, t.encode()) for n, t in texts.items()]
        self.client.corpus_load("tx", paths)
        for action in ("text.stats", "text.short_long"):
            for doc, t in texts.items():
                via_corpus = self.client.call(action, {"corpus": "tx", "document": doc}).data
                inline = self.client.call(action, {"text": t}).data
                via_corpus.pop("compute_ms", None)
                inline.pop("compute_ms", None)
                self.assertEqual(via_corpus, inline, action)
        with self.assertRaises(kiln.NotFound):
            self.client.call("text.stats", {"corpus": "tx", "document": "nope.txt"})
        with self.assertRaises(kiln.NotFound):
            self.client.call("text.stats", {"corpus": "nope", "document": "doc00.txt"})
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call("text.stats", {"corpus": "tx"})
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call("text.stats", {"corpus": "tx", "document": "doc00.txt", "text": "x"})

    def test_bad_inputs(self) -> None:
        p = self.write("bad.txt", b"valid start \xff\xfe end")
        e = self.expect_load_error("invalid_args", name="bad", paths=[p])
        self.assertIn("not valid UTF-8", e.detail["failed"][0]["reason"])
        empty_dir = os.path.join(self.tmp, "none")
        os.makedirs(empty_dir)
        e = self.expect_load_error("invalid_args", name="zero", dir=empty_dir)
        self.assertIn("0 files", str(e))
        os.makedirs(os.path.join(self.tmp, "d1"))
        os.makedirs(os.path.join(self.tmp, "d2"))
        a = self.write("d1/same.txt", b"one")
        b = self.write("d2/same.txt", b"two")
        e = self.expect_load_error("invalid_args", name="dup", paths=[a, b])
        self.assertIn("duplicate", e.detail["failed"][0]["reason"])
        self.expect_load_error("not_found", name="nf", paths=[os.path.join(self.tmp, "missing")])
        self.expect_load_error("forbidden", name="fb", paths=["/etc/hostname"])
        # The daemon refuses relative paths (the client resolves them first).
        with self.assertRaises(kiln.InvalidArgs):
            self.client.call("corpus.load", {"name": "rel", "paths": ["relative.txt"]})
        # Resolved by the client against its working directory: outside the
        # roots, so forbidden whether or not it exists (no existence oracle).
        e = self.expect_load_error("forbidden", name="rel", paths=["relative-missing.txt"])
        self.assertEqual(e.detail["failed"][0]["path"], os.path.abspath("relative-missing.txt"))
        # No corpus was installed by any of the failed loads.
        for name in ("bad", "zero", "dup", "nf", "fb", "rel"):
            with self.assertRaises(kiln.NotFound):
                self.client.corpus_info(name)
        # An empty word is refused as such, on a corpus that exists.
        self.client.corpus_load("good", [a])
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.client.corpus_count("good", "")
        self.assertIn("word", str(cm.exception))

    def test_empty_plain_file(self) -> None:
        p = self.write("empty.txt", b"")
        r = self.client.corpus_load("empty", [p])
        self.assertEqual((r["documents"], r["bytes"]), (1, 0))
        self.assertEqual(self.client.corpus_count("empty", "x")["total"], 0)

    def test_dir_glob_and_progress(self) -> None:
        texts = self.make_texts(5, 50, seed=5)
        for n, t in texts.items():
            self.write(n, t.encode())
        self.write("skip.md", b"not matched")
        r = self.client.corpus_load("dg", dir=self.tmp, glob="*.txt")
        self.assertEqual(r["documents"], 5)
        self.assertEqual([d["name"] for d in self.client.corpus_info("dg")["document_list"]],
                         sorted(texts))

    # --- openssl enc -------------------------------------------------------------

    def enc_corpus(self, texts: dict, *opts: str, passphrase: str = PASS) -> list:
        paths = []
        for n, t in texts.items():
            src = self.write(n + ".plain", t.encode())
            dst = os.path.join(self.tmp, n)
            openssl_enc(src, dst, passphrase, *opts)
            os.unlink(src)
            paths.append(dst)
        return paths

    @kilntest.requires_tool("openssl")
    def test_openssl_default_iterations(self) -> None:
        texts = self.make_texts(4, 300, seed=21)
        paths = self.enc_corpus(texts, "-pbkdf2")
        r = self.client.corpus_load("enc", paths, passphrase=PASS)
        self.assertEqual(r["source"]["files"], {"openssl-enc": 4})
        self.assertNotIn(PASS, repr(r))
        self.assert_counts("enc", texts)
        self.assertNotIn(PASS, self.daemon.read_log())
        self.assertNotIn(texts["doc00.txt"][:40], self.daemon.read_log())

    @kilntest.requires_tool("openssl")
    def test_openssl_custom_iterations_and_key_file(self) -> None:
        texts = self.make_texts(2, 100, seed=22)
        paths = self.enc_corpus(texts, "-pbkdf2", "-iter", "2500")
        key = self.write("key", (PASS + "\nsecond line ignored\n").encode())
        self.client.corpus_load("it", paths, key_file=key, format="openssl-enc", iterations=2500)
        self.assert_counts("it", texts)
        e = self.expect_load_error("invalid_args", name="it2", paths=paths, passphrase=PASS)
        self.assertIn("wrong passphrase", e.detail["failed"][0]["reason"])

    @kilntest.requires_tool("openssl")
    def test_openssl_legacy_kdf(self) -> None:
        texts = self.make_texts(2, 100, seed=23)
        paths = self.enc_corpus(texts, "-md", "sha256")
        self.client.corpus_load("leg", paths, passphrase=PASS, kdf="legacy")
        self.assert_counts("leg", texts)

    @kilntest.requires_tool("openssl")
    def test_openssl_failures_are_atomic(self) -> None:
        texts = self.make_texts(3, 100, seed=24)
        paths = self.enc_corpus(texts, "-pbkdf2")
        self.client.corpus_load("atom", paths, passphrase=PASS)
        before = self.client.corpus_count("atom", "the")
        # Wrong passphrase: every file fails, the old corpus stays.
        e = self.expect_load_error("invalid_args", name="atom", paths=paths, passphrase="nope")
        self.assertEqual(len(e.detail["failed"]), 3)
        for f in e.detail["failed"]:
            self.assertIn("wrong passphrase", f["reason"])
        self.assertNotIn("nope", repr(e.detail) + str(e))
        # One truncated file among good ones.
        with open(paths[1], "rb") as f:
            data = f.read()
        trunc = self.write("trunc.enc", data[:-7])
        e = self.expect_load_error("invalid_args", name="atom", paths=[paths[0], trunc],
                                   passphrase=PASS)
        self.assertEqual([f["document"] for f in e.detail["failed"]], ["trunc.enc"])
        self.assertIn("truncated", e.detail["failed"][0]["reason"])
        empty = self.write("empty.enc", b"")
        e = self.expect_load_error("invalid_args", name="atom", paths=[empty], passphrase=PASS,
                                   format="openssl-enc")
        self.assertEqual(e.detail["failed"][0]["reason"], "empty file")
        # Non-UTF-8 plaintext encrypted with the right passphrase.
        raw = self.write("latin1.plain", "caf\xe9 \xfc".encode("latin-1"))
        openssl_enc(raw, raw + ".enc", PASS, "-pbkdf2")
        e = self.expect_load_error("invalid_args", name="atom", paths=[raw + ".enc"], passphrase=PASS)
        self.assertIn("not UTF-8", e.detail["failed"][0]["reason"])
        self.assertEqual(self.client.corpus_count("atom", "the"), before)
        self.expect_load_error("invalid_args", name="nopass", paths=paths)

    @kilntest.heavy
    @kilntest.requires_tool("openssl")
    def test_load_timeout_installs_nothing(self) -> None:
        # Eight files of one PBKDF2 at 200000 rounds each (about 0.1 s).
        (one,) = self.enc_corpus({"slow.enc": "slow text"}, "-pbkdf2", "-iter", "200000")
        with open(one, "rb") as f:
            data = f.read()
        paths = [one] + [self.write(f"slow{i}.enc", data) for i in range(7)]
        with self.assertRaises(kiln.Timeout):
            self.client.corpus_load("slow", paths, passphrase=PASS, iterations=200000, timeout=0.2)
        # The work still in flight notices the cancellation and discards its text.
        self.assertEqual(self.client.call("sleep", {"seconds": 0.5}).result, "success")
        with self.assertRaises(kiln.NotFound):
            self.client.corpus_info("slow")

    @kilntest.requires_tool("openssl")
    def test_openssl_empty_plaintext(self) -> None:
        src = self.write("e.plain", b"")
        openssl_enc(src, src + ".enc", PASS, "-pbkdf2")
        r = self.client.corpus_load("ee", [src + ".enc"], passphrase=PASS)
        self.assertEqual((r["documents"], r["bytes"]), (1, 0))

    # --- sealed --------------------------------------------------------------------

    def seal(self, texts: dict, **kw) -> list:
        src = os.path.join(self.tmp, "src")
        out = os.path.join(self.tmp, "sealed")
        os.makedirs(src, exist_ok=True)
        os.makedirs(out, exist_ok=True)
        for n, t in texts.items():
            self.write("src/" + n, t.encode())
        kw.setdefault("passphrase", PASS)
        kw.setdefault("log2_n", 10)
        r = self.client.corpus_seal(out, dir=src, **kw)
        self.assertEqual(len(r["files"]), len(texts))
        return [f["path"] for f in r["files"]]

    def test_sealed_round_trip(self) -> None:
        texts = self.make_texts(5, 200, seed=31)
        paths = self.seal(texts)
        r = self.client.corpus_load("sealed", paths, passphrase=PASS)
        self.assertEqual(r["source"]["sealed_kdf"], [{"kdf": "scrypt", "log2_n": 10, "r": 8, "p": 1}])
        self.assertEqual(sorted(d["name"] for d in self.client.corpus_info("sealed")["document_list"]),
                         sorted(n + ".kseal" for n in texts))
        renamed = {n + ".kseal": t for n, t in texts.items()}
        self.assert_counts("sealed", renamed)

    def test_sealed_pbkdf2(self) -> None:
        texts = self.make_texts(2, 50, seed=32)
        paths = self.seal(texts, kdf="pbkdf2", iterations=1000, log2_n=None)
        r = self.client.corpus_load("sp", paths, passphrase=PASS, format="sealed")
        self.assertEqual(r["source"]["sealed_kdf"], [{"kdf": "pbkdf2-sha256", "iterations": 1000}])

    def test_sealed_tamper_and_wrong_passphrase(self) -> None:
        texts = self.make_texts(3, 100, seed=33)
        paths = self.seal(texts)
        e = self.expect_load_error("invalid_args", name="t", paths=paths, passphrase="wrong")
        self.assertEqual({f["reason"] for f in e.detail["failed"]}, {"wrong passphrase"})
        with open(paths[2], "rb") as f:
            data = bytearray(f.read())
        data[100] ^= 0x01
        with open(paths[2], "wb") as f:
            f.write(data)
        e = self.expect_load_error("invalid_args", name="t", paths=paths, passphrase=PASS)
        self.assertEqual(len(e.detail["failed"]), 1)
        self.assertIn("authentication failed", e.detail["failed"][0]["reason"])
        trunc = self.write("trunc.kseal", bytes(data[:-3]))
        e = self.expect_load_error("invalid_args", name="t", paths=[trunc], passphrase=PASS)
        self.assertIn("truncated", e.detail["failed"][0]["reason"])
        with self.assertRaises(kiln.NotFound):
            self.client.corpus_info("t")

    def test_seal_refuses_non_utf8_and_existing(self) -> None:
        self.write("x.txt", b"\xc3\x28")
        out = os.path.join(self.tmp, "o")
        os.makedirs(out)
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.corpus_seal(out, [os.path.join(self.tmp, "x.txt")], passphrase=PASS, log2_n=10)
        self.assertIn("UTF-8", cm.exception.detail["failed"][0]["reason"])
        y = self.write("y.txt", b"fine")
        args = dict(passphrase=PASS, log2_n=10)
        (sealed,) = [f["path"] for f in self.client.corpus_seal(out, [y], **args)["files"]]
        with open(sealed, "rb") as f:
            first = f.read()
        self.write("y.txt", b"rewritten words")
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.corpus_seal(out, [y], **args)
        self.assertIn("exists", str(cm.exception.detail) + str(cm.exception))
        with open(sealed, "rb") as f:
            self.assertEqual(f.read(), first, "a refused seal changed the existing file")
        self.client.corpus_seal(out, [y], overwrite=True, **args)
        with open(sealed, "rb") as f:
            self.assertNotEqual(f.read(), first, "overwrite=True left the old sealed file")
        self.client.corpus_load("ow", [sealed], passphrase=PASS)
        self.assertEqual(self.client.corpus_count("ow", "rewritten")["total"], 1)
        self.assertEqual(self.client.corpus_count("ow", "fine")["total"], 0)

    def test_load_and_seal_share_file_rules(self) -> None:
        """corpus.load and corpus.seal take their files and passphrase the same way."""
        os.makedirs(os.path.join(self.tmp, "d1"))
        os.makedirs(os.path.join(self.tmp, "d2"))
        a = self.write("d1/same.txt", b"one")
        b = self.write("d2/same.txt", b"two")
        key = self.write("key", (PASS + "\n").encode())
        out = os.path.join(self.tmp, "o")
        os.makedirs(out)
        # The files are plain: load needs allow_plain beside a passphrase.
        calls = {"load": lambda **kw: self.client.corpus_load("rules", allow_plain=True, **kw),
                 "seal": lambda **kw: self.client.corpus_seal(out, log2_n=10, **kw)}
        for action, call in calls.items():
            for kw, code, text in (
                    (dict(paths=[a], glob="*.txt", passphrase=PASS), "invalid_args", "glob needs dir"),
                    (dict(paths=[a], passphrase=PASS, key_file=key), "invalid_args", "not both"),
                    (dict(paths=[a, b], passphrase=PASS), "invalid_args", None)):
                with self.assertRaises(kiln.KilnError, msg=f"{action} {kw}") as cm:
                    call(**kw)
                self.assertEqual(cm.exception.code, code, f"{action} {kw}")
                if text:
                    self.assertIn(text, str(cm.exception), action)
                else:
                    failed = cm.exception.detail["failed"]
                    self.assertEqual([f["path"] for f in failed], [b], action)
                    self.assertIn("duplicate document name (also " + a, failed[0]["reason"])
        self.assertEqual(os.listdir(out), ["same.txt.kseal"])

    @unittest.skipUnless(AESGCM, "python3-cryptography not installed")
    def test_sealed_format_matches_documentation(self) -> None:
        """Decrypts a sealed file following proto/sealed-format.md only."""
        import hmac
        texts = {"doc.txt": "Dear diary — naïve café\n"}
        (path,) = self.seal(texts)
        with open(path, "rb") as f:
            blob = f.read()
        hdr = blob[:72]
        self.assertEqual(hdr[:8], b"KILNSEAL")
        version, kdf, log2_n, rsv, r, p = struct.unpack(">BBBBII", hdr[8:20])
        self.assertEqual((version, kdf, log2_n, rsv, r, p), (1, 1, 10, 0, 8, 1))
        salt, check, nonce = hdr[20:36], hdr[36:52], hdr[52:64]
        (length,) = struct.unpack(">Q", hdr[64:72])
        self.assertEqual(len(blob), 72 + length + 16)
        master = hashlib.scrypt(PASS.encode(), salt=salt, n=1 << log2_n, r=r, p=p, dklen=32)
        enc = hmac.new(master, b"kiln sealed v1 encryption key", "sha256").digest()
        chk = hmac.new(master, b"kiln sealed v1 key check", "sha256").digest()[:16]
        self.assertEqual(chk, check)
        plain = AESGCM(enc).decrypt(nonce, blob[72:], hdr)
        self.assertEqual(plain.decode(), texts["doc.txt"])


class CorpusBudgetTest(kilntest.KilnTestCase):
    CONFIG = {"corpus_memory_budget": 64 * 1024}

    def test_budget_exceeded_loads_nothing(self) -> None:
        d = os.path.join(self.daemon.dir, "b")
        os.makedirs(d)
        small = os.path.join(d, "small.txt")
        with open(small, "w") as f:
            f.write("tiny text")
        self.client.corpus_load("small", [small])
        paths = []
        for i in range(3):
            paths.append(os.path.join(d, f"big{i}.txt"))
            with open(paths[-1], "w") as f:
                f.write("word " * 6000)
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.corpus_load("big", paths)
        self.assertEqual(cm.exception.code, "too_large")
        # Refused from the files' sizes, before decrypting and indexing.
        self.assertIn("over corpus_memory_budget", str(cm.exception))
        self.assertEqual([c["name"] for c in self.client.corpus_list()], ["small"])

    def test_budget_counts_every_corpus(self) -> None:
        # Each fits the budget alone; together they do not.
        d = os.path.join(self.daemon.dir, "t")
        os.makedirs(d)
        paths = []
        for i in range(2):
            paths.append(os.path.join(d, f"half{i}.txt"))
            with open(paths[-1], "w") as f:
                f.write("word " * 7000)
        try:
            self.client.corpus_load("half0", [paths[0]])
            with self.assertRaises(kiln.KilnError) as cm:
                self.client.corpus_load("half1", [paths[1]])
            self.assertEqual(cm.exception.code, "too_large")
            self.assertIn("held by other corpora", str(cm.exception))
            self.assertNotIn("half1", [c["name"] for c in self.client.corpus_list()])
            # Replacing a corpus counts only the new one.
            self.client.corpus_load("half0", [paths[1]])
        finally:
            self.client.corpus_unload("half0")

    def test_too_many_files_refused_before_reading(self) -> None:
        # Every document takes at least a page: 64 KiB hold 16 at most.
        d = os.path.join(self.daemon.dir, "many")
        os.makedirs(d)
        for i in range(17):
            with open(os.path.join(d, f"f{i:02}.txt"), "w") as f:
                f.write("w")
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.corpus_load("many", dir=d, glob="*.txt")
        self.assertEqual(cm.exception.code, "too_large")
        self.assertIn("17 files cannot fit corpus_memory_budget", str(cm.exception))


if __name__ == "__main__":
    unittest.main()
