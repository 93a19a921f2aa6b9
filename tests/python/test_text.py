"""text.short_long and text.stats against the Python reference (issue 4)."""

from __future__ import annotations

import collections
import ctypes
import os
import random
import sys
import unittest
from typing import Any, Dict, Iterable, Optional

import kilntest
import kiln


def reference(text: str, min_length: int = 8, ignore: Iterable[str] = ("the", "a")) -> Optional[float]:
    """The short_long of the posts, verbatim (None instead of ZeroDivisionError)."""
    ignore = list(ignore)
    split = text.split()
    split = [w for w in split if w not in ignore]
    long = sum(1 for w in split if len(w) > min_length)
    return long / len(split) if split else None


def reference_stats(text: str, min_length: int = 8, ignore: Iterable[str] = ("the", "a"),
                    top: int = 0) -> Dict[str, Any]:
    ignore = list(ignore)
    words = text.split()
    kept = [w for w in words if w not in ignore]
    long = sum(1 for w in kept if len(w) > min_length)
    d: Dict[str, Any] = {
        "words": len(words), "lines": len(text.splitlines()), "code_points": len(text),
        "bytes": len(text.encode()),
        "short_long": {"words": len(kept), "long_words": long,
                       "fraction": long / len(kept) if kept else None}}
    if top:
        d["top"] = [[w, n] for w, n in collections.Counter(words).most_common(top)]
    return d


# Pieces the generator draws from: every separator str.split() knows about,
# look-alikes it does not split on (U+200B, U+FEFF, U+180E), combining marks,
# emoji, and words of exactly 8 and 9 code points made of multibyte letters.
SEPARATORS = [" ", "\t", "\n", "\r", "\r\n", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x1f", "\x85",
              "\xa0", "\u1680", "\u2000", "\u2005", "\u200a", "\u2028", "\u2029", "\u202f", "\u205f",
              "\u3000", "  ", " \t "]
WORDS = ["the", "a", "The", "A", "thé", "an", "cat", "eight888", "nine99999", "ééééééééé", "éééééééé",
         "日本語のテキスト", "日本語のテキストだ", "😀😀😀😀😀😀😀😀", "😀😀😀😀😀😀😀😀😀", "e\u0301\u0301\u0301\u0301\u0301\u0301\u0301",
         "e\u0301\u0301\u0301\u0301\u0301\u0301\u0301\u0301", "x\u200by", "\ufeffbom", "mongol\u180e",
         "extraordinarily", "a" * 63, "b" * 64, "c" * 65, "wörd", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\x00nul", "\x7f"]


def generate(rng: random.Random, n: int) -> str:
    parts = []
    for _ in range(n):
        parts.append(rng.choice(WORDS) if rng.random() < 0.6 else rng.choice(SEPARATORS))
    return "".join(parts)


def load_lib(test: unittest.TestCase) -> ctypes.CDLL:
    """build/libkiln.so next to the daemon under test.  `make test` builds
    it, so a missing one fails; an ASan build cannot be loaded (skip)."""
    so = os.path.join(os.path.dirname(os.path.abspath(kilntest.KILND)), "libkiln.so")
    if not os.path.exists(so):
        test.fail(f"{so} is missing (make builds it beside kilnd)")
    with open(so, "rb") as f:
        if b"__asan_init" in f.read():
            test.skipTest("libkiln.so is built with ASan, which cannot load into Python")
    return ctypes.CDLL(so)


class TextTest(kilntest.KilnTestCase):
    def check(self, text: str, min_length: int = 8, ignore: Iterable[str] = ("the", "a"),
              top: int = 0) -> None:
        ignore = list(ignore)
        want = reference_stats(text, min_length, ignore, top)
        got = self.client.text_stats(text, min_length=min_length, ignore=ignore, top=top)
        got.pop("compute_ms")
        got["short_long"].pop("compute_ms", None)
        self.assertEqual(got, want, repr(text[:200]))
        self.assertEqual(self.client.short_long(text, min_length, ignore), reference(text, min_length, ignore))

    def test_examples(self) -> None:
        self.check("the quick brownfoxes jumped over a lazy dog, extraordinarily")
        self.check("")
        self.check(" \t\n ")
        self.check("a\r\nb\rc\n\nd\u2028e\x85f\x1cg\x1fh")
        self.check("ééééééééé éééééééé 😀😀😀😀😀😀😀😀😀 e\u0301\u0301\u0301\u0301\u0301\u0301\u0301\u0301")

    def test_generated(self) -> None:
        rng = random.Random(4)
        for i in range(150):
            text = generate(rng, rng.randint(0, 400))
            ignore = rng.choice([("the", "a"), (), ("the", "a", "ééééééééé", "thé", "b" * 64, "x\u200by"),
                                 tuple("abcdefghijklmnopqrstuvwxyz"), ("a b", "", "the", "the")])
            self.check(text, rng.choice([0, 1, 3, 8, 9, 62, 63, 64, 100]), ignore, top=rng.choice([0, 5]))

    def test_mostly_ascii_blocks(self) -> None:
        """Long ASCII runs (the 64-byte block path) with rare multibyte
        characters and separators in between."""
        rng = random.Random(9)
        ascii_words = ["the", "a", "and", "x" * 9, "y" * 8, "word", "longerword", "z" * 70]
        for _ in range(20):
            parts = []
            for _ in range(rng.randint(100, 3000)):
                r = rng.random()
                if r < 0.01:
                    parts.append(rng.choice(WORDS))
                elif r < 0.02:
                    parts.append(rng.choice(SEPARATORS))
                else:
                    parts.append(rng.choice(ascii_words) + rng.choice([" ", " ", " ", "\n", "\t"]))
            self.check("".join(parts), rng.choice([8, 3, 63]), top=3)

    def test_attachment_and_path(self) -> None:
        rng = random.Random(5)
        text = generate(rng, 40000)
        self.assertGreater(len(text.encode()), 65536)  # the client sends it as an attachment
        self.check(text)
        path = os.path.join(self.daemon.dir, "gen.txt")
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        got = self.client.text_stats(path=path)
        self.assertEqual(got["short_long"]["fraction"], reference(text))
        self.assertEqual(got["lines"], len(text.splitlines()))
        self.assertEqual(self.client.short_long(path=path), reference(text))
        # bytes are always an attachment
        self.assertEqual(self.client.short_long(b"the cat sat extraordinarily"), 1 / 3)

    def test_sample_file(self) -> None:
        path = os.path.join(kilntest.DATA, "text", "sample.txt")
        with open(path, encoding="utf-8", newline="") as f:
            text = f.read()
        got = self.client.text_stats(path=path, top=10)
        got.pop("compute_ms")
        got["short_long"].pop("compute_ms", None)
        self.assertEqual(got, reference_stats(text, top=10))

    def test_no_words(self) -> None:
        out = self.client.call("text.short_long", {"text": "the a  the"})
        self.assertIsNone(out.data["fraction"])
        self.assertEqual(out.data["words"], 0)
        self.assertIn("no words", out.message)
        self.assertIsNone(self.client.short_long(""))

    def test_invalid_utf8(self) -> None:
        for data in (b"abc\xff", b"\xc0\x80", b"ok \xed\xa0\x80", b"x" * 200 + b"\xe2\x82",
                     "é".encode() * 50 + b"\x80", b"\xf4\x90\x80\x80"):
            with self.subTest(data=data[-8:]):
                try:
                    data.decode("utf-8")
                    self.fail("test data should be invalid")
                except UnicodeDecodeError as e:
                    offset = e.start
                with self.assertRaises(kiln.KilnError) as cm:
                    self.client.short_long(data)
                self.assertEqual(cm.exception.code, "invalid_args")
                self.assertEqual(cm.exception.detail["offset"], offset)
                self.assertIn(str(offset), str(cm.exception))
        path = os.path.join(self.daemon.dir, "bad.txt")
        with open(path, "wb") as f:
            f.write(b"fine words \xfe")
        with self.assertRaises(kiln.KilnError) as cm:
            self.client.text_stats(path=path)
        self.assertEqual((cm.exception.code, cm.exception.detail["offset"]), ("invalid_args", 11))

    def test_input_errors(self) -> None:
        cases = [({}, None, "invalid_args"),
                 ({"text": "a", "path": "/x"}, None, "invalid_args"),
                 ({"text": "a"}, b"b", "invalid_args"),
                 ({"path": "/etc/passwd"}, None, "forbidden"),
                 ({"path": os.path.join(self.daemon.dir, "missing.txt")}, None, "not_found"),
                 ({"path": "relative.txt"}, None, "invalid_args"),
                 ({"text": "a", "min_length": -1}, None, "invalid_args"),
                 ({"text": "a", "ignore": "the"}, None, "invalid_args"),
                 ({"text": "a", "ignore": [1]}, None, "invalid_args"),
                 ({"text": "a", "bogus": 1}, None, "invalid_args"),
                 ({"document": "doc.txt"}, None, "invalid_args"),
                 ({"corpus": "c", "document": "doc.txt"}, b"b", "invalid_args"),
                 ({"corpus": "none", "document": "doc.txt"}, None, "not_found")]
        for args, attachment, code in cases:
            with self.subTest(args=args):
                with self.assertRaises(kiln.KilnError) as cm:
                    self.client.call("text.short_long", args, attachment=attachment)
                self.assertEqual(cm.exception.code, code)
                if args.get("document") and "corpus" not in args:
                    self.assertIn("go together", str(cm.exception))
        self.assertEqual(self.client.short_long("still fine"), 0.0)

    @kilntest.heavy
    def test_whitespace_set_all_code_points(self) -> None:
        """Every code point c: "a" c "b" is one word or two exactly as Python
        splits it, checked in chunks through the daemon."""
        cps = [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
        for i in range(0, len(cps), 1 << 16):
            chunk = cps[i:i + (1 << 16)]
            text = " ".join("a" + chr(c) + "b" for c in chunk)
            got = self.client.text_stats(text)
            self.assertEqual(got["words"], len(text.split()), hex(chunk[0]))
            self.assertEqual(got["lines"], len(text.splitlines()), hex(chunk[0]))

    def test_is_space_ctypes(self) -> None:
        """kiln_text_is_space() in libkiln.so against str.isspace() (what
        str.split() uses) for all code points."""
        f = load_lib(self).kiln_text_is_space
        f.argtypes = [ctypes.c_uint32]
        f.restype = ctypes.c_int
        wrong = [hex(c) for c in range(0x110000) if bool(f(c)) != chr(c).isspace()]
        self.assertEqual(wrong, [])

    def test_both_library_paths_ctypes(self) -> None:
        """kiln_text_count() in libkiln.so, on the AVX2 path and the portable
        one, against the Python reference on generated Unicode texts."""
        lib = load_lib(self)

        class Opts(ctypes.Structure):
            _fields_ = [("min_length", ctypes.c_uint64), ("ignore", ctypes.POINTER(ctypes.c_char_p)),
                        ("ignore_len", ctypes.POINTER(ctypes.c_size_t)), ("ignore_count", ctypes.c_size_t),
                        ("lines", ctypes.c_int), ("portable", ctypes.c_int)]

        class Counts(ctypes.Structure):
            _fields_ = [(n, ctypes.c_uint64) for n in
                        ("bytes", "code_points", "words", "kept_words", "long_words", "lines")]

        rng = random.Random(21)
        for _ in range(200):
            text = generate(rng, rng.randint(0, 600))
            ml = rng.choice([0, 3, 8, 9, 63, 64])
            ign = [w.encode() for w in rng.choice([("the", "a"), ("ééééééééé", "b" * 64, "x"), ()])]
            data = text.encode()
            want = reference_stats(text, ml, [w.decode() for w in ign])
            for portable in (0, 1):
                arr = (ctypes.c_char_p * max(1, len(ign)))(*ign)
                lens = (ctypes.c_size_t * max(1, len(ign)))(*[len(w) for w in ign])
                o = Opts(ml, arr, lens, len(ign), 1, portable)
                c = Counts()
                err = ctypes.create_string_buffer(128)
                rc = lib.kiln_text_count(data, ctypes.c_size_t(len(data)), ctypes.byref(o), None,
                                         ctypes.byref(c), None, err, ctypes.c_size_t(128))
                self.assertEqual(rc, 0)
                got = (c.words, c.lines, c.code_points, c.bytes, c.kept_words, c.long_words)
                self.assertEqual(got, (want["words"], want["lines"], want["code_points"], want["bytes"],
                                       want["short_long"]["words"], want["short_long"]["long_words"]),
                                 (portable, repr(text[:80])))

    @kilntest.heavy
    def test_one_megabyte(self) -> None:
        rng = random.Random(11)
        words = [("".join(rng.choice("etaoinshrdlucmfwyp") for _ in range(rng.randint(1, 14))))
                 for _ in range(3000)] + ["the", "a", "naïve", "café"]
        text = " ".join(rng.choice(words) for _ in range(180000))
        self.assertEqual(self.client.short_long(text), reference(text))
        self.assertEqual(self.client.short_long(text, 3, ()), reference(text, 3, ()))


if __name__ == "__main__":
    unittest.main()
