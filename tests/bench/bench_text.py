"""Benchmark for text.short_long (issue 4).

    /usr/bin/python3 tests/bench/bench_text.py [--mb 1] [--repeat 20]

On the same deterministic ~1 MB English text, side by side in one run:
the pure-Python reference (the posts' short_long), the C function called
in-process through ctypes (build/libkiln.so, the FFI way), and kilnd from the
Python client with the text inline in the JSON, as a raw attachment and by
path.  Also the daemon-side compute time (data.compute_ms) as GB/s, beside
the library's own speed on an all-ASCII and a mostly-ASCII text.  The
daemon-side compute is also measured on French/German-like prose (about one
word in ten non-ASCII), beside memcpy and memchr of the same buffer in the
same run (the memory-speed floor).  Every figure is the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import random
import sys
import time
from typing import Callable, List, Optional

import benchlib
from benchlib import header, row

WORDS = ("the of and to a in is it you that he was for on are with as his they be at one have this "
         "from or had by hot word but what some we can out other were all there when up use your how "
         "said an each she which do their time if will way about many then them write would like so "
         "these her long make thing see him two has look more day could go come did number sound no "
         "most people my over know water than call first who may down side been now find any new "
         "work part take get place made live where after back little only round man year came show "
         "every good me give our under name very through just form sentence great think say help low "
         "line differ turn cause much mean before move right boy old too same tell does set three "
         "want air well also play small end put home read hand port large spell add even land here "
         "must big high such follow act why ask men change went light kind off need house picture "
         "extraordinary understanding international communication responsibility development "
         "environment government information particularly relationship opportunity").split()
RARE = ["café", "naïve", "déjà", "Zürich", "façade", "—", "“quoted”"]


def generate(nbytes: int, seed: int = 1234, rare: float = 0.002) -> str:
    """English-like text: sentences of common words, commas, full stops and
    paragraphs, with a sprinkle of non-ASCII words (fixed seed)."""
    rng = random.Random(seed)
    out: List[str] = []
    size = 0
    while size < nbytes:
        n = rng.randint(5, 25)
        words = [rng.choice(RARE) if rng.random() < rare else rng.choice(WORDS) for _ in range(n)]
        words[0] = words[0].capitalize()
        if n > 8:
            words[n // 2] += ","
        s = " ".join(words) + (".\n\n" if rng.random() < 0.1 else ". ")
        out.append(s)
        size += len(s.encode())
    return "".join(out)


# French/German-like prose: common words, about one in ten with a non-ASCII
# letter, typographic quotes and dashes now and then.
EURO_ASCII = ("le la les de des et un une en du que qui dans pour pas sur est il elle nous vous "
              "mais avec plus tout comme fait bien dit sans faire aussi temps homme jour monde "
              "der die das und ist nicht ein eine zu den mit sich auch auf dem des von sie es "
              "wir noch nach wie aber nur oder bei zeit jahr haus mann welt gesellschaft "
              "entwicklung gouvernement international information administration").split()
EURO_ACCENT = ("été à où déjà très première français élève fenêtre château garçon Noël naïve "
               "développement société après être même règle deçà über für schön Mädchen Straße "
               "Größe Übersetzung Bürgermeister können möchte Geschäftsführer täglich "
               "l’homme «bonjour» „Anführung“ —").split()


def generate_euro(nbytes: int, seed: int = 4321) -> str:
    """About one word in ten non-ASCII, as in French or German prose."""
    rng = random.Random(seed)
    out: List[str] = []
    size = 0
    while size < nbytes:
        n = rng.randint(6, 22)
        words = [rng.choice(EURO_ACCENT) if rng.random() < 0.1 else rng.choice(EURO_ASCII) for _ in range(n)]
        words[0] = words[0].capitalize()
        s = " ".join(words) + (".\n\n" if rng.random() < 0.1 else ". ")
        out.append(s)
        size += len(s.encode())
    return "".join(out)[:nbytes]


def reference(string: str, min_length: int = 8, ignore=("the", "a")) -> float:
    split = string.split()
    split = [w for w in split if w not in ignore]
    long = sum(1 for w in split if len(w) > min_length)
    return long / len(split)


def best(fn: Callable[[], object], repeat: int) -> float:
    t = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        t = min(t, time.perf_counter() - t0)
    return t


def load_lib() -> Optional[ctypes.CDLL]:
    so = os.path.join(benchlib.BUILD, "libkiln.so")
    if not os.path.exists(so):
        return None
    lib = ctypes.CDLL(so)
    lib.kiln_text_short_long.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint64,
                                         ctypes.POINTER(ctypes.c_char_p), ctypes.c_size_t,
                                         ctypes.POINTER(ctypes.c_double)]
    lib.kiln_text_short_long.restype = ctypes.c_int
    return lib


def memory_floor(buf: bytes, repeat: int) -> List[tuple]:
    """memcpy and memchr (for a byte that is absent) over buf, from libc via
    ctypes: what one core's memory path does with the same bytes."""
    libc = ctypes.CDLL(None)
    libc.memchr.restype = ctypes.c_void_p
    libc.memchr.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t]
    src = ctypes.create_string_buffer(buf, len(buf))
    dst = ctypes.create_string_buffer(len(buf))
    n = len(buf)
    t_cpy = best(lambda: ctypes.memmove(dst, src, n), repeat * 5)
    t_chr = best(lambda: libc.memchr(src, 0x01, n), repeat * 5)
    return [("memcpy", t_cpy), ("memchr", t_chr)]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=1.0)
    ap.add_argument("--repeat", type=int, default=20)
    ns = ap.parse_args()
    text = generate(int(ns.mb * 1e6))
    data = text.encode()
    want = reference(text)
    header(f"text.short_long on {len(data)} bytes of English-like text "
           f"({sum(1 for c in text if ord(c) > 127)} non-ASCII code points), best of {ns.repeat}")
    row("method", "time", "vs Python", "result")

    t_py = best(lambda: reference(text), max(3, ns.repeat // 4))
    row("pure Python reference (str.split)", f"{t_py * 1e3:.2f} ms", "1.0x", f"{want:.6f}")

    lib = load_lib()
    t_ff = None
    if lib is not None:
        ign = (ctypes.c_char_p * 2)(b"the", b"a")
        out = ctypes.c_double()

        def ffi() -> float:
            b = text.encode()  # what a ctypes user must do with a str
            rc = lib.kiln_text_short_long(b, len(b), 8, ign, 2, ctypes.byref(out))
            assert rc == 0
            return out.value

        assert ffi() == want
        t_ff = best(ffi, ns.repeat)
        row("ctypes kiln_text_short_long (in-process)", f"{t_ff * 1e3:.3f} ms", f"{t_py / t_ff:.1f}x", "same")
    else:
        row("ctypes kiln_text_short_long", "skipped", f"({benchlib.BUILD}/libkiln.so missing)")

    with benchlib.Server({"max_line_bytes": 4 * len(data) + 4096}) as srv, srv.client() as c:
        path = os.path.join(srv.dir, "text.txt")
        with open(path, "wb") as f:
            f.write(data)
        computed: List[float] = []

        def inline() -> None:
            r = c.call("text.short_long", {"text": text})
            assert r.data["fraction"] == want

        def attach() -> None:
            r = c.call("text.short_long", {}, attachment=data)
            assert r.data["fraction"] == want
            computed.append(r.data["compute_ms"])

        def by_path() -> None:
            r = c.call("text.short_long", {"path": path})
            assert r.data["fraction"] == want

        def client_method() -> None:
            assert c.short_long(text) == want

        inline()
        euro_text = generate_euro(len(data))
        euro = euro_text.encode()
        euro_want = reference(euro_text)
        euro_ms: List[float] = []

        def attach_euro() -> None:
            r = c.call("text.short_long", {}, attachment=euro)
            assert r.data["fraction"] == euro_want
            euro_ms.append(r.data["compute_ms"])

        t_in = best(inline, ns.repeat)
        t_at = best(attach, ns.repeat)
        t_pa = best(by_path, ns.repeat)
        t_cm = best(client_method, ns.repeat)
        ffi_note = f" ({t_in / t_ff:.1f}x ctypes; goal <= 1.5x)" if t_ff else ""
        row("kilnd, text inline in the JSON", f"{t_in * 1e3:.2f} ms", f"{t_py / t_in:.1f}x", ffi_note.strip())
        row("kilnd, raw attachment", f"{t_at * 1e3:.2f} ms", f"{t_py / t_at:.1f}x", "goal >= 12x")
        row("kilnd, Client.short_long(str) (attachment)", f"{t_cm * 1e3:.2f} ms", f"{t_py / t_cm:.1f}x", "")
        row("kilnd, by path (daemon reads the file)", f"{t_pa * 1e3:.2f} ms", f"{t_py / t_pa:.1f}x", "goal >= 25x")
        cm = min(computed)
        best(attach_euro, ns.repeat)
        em = min(euro_ms)
        header(f"daemon-side compute (data.compute_ms, best of {ns.repeat}) beside memory speed, same run")
        row("text", "compute", "GB/s", "goal")
        row("English-like (mostly ASCII)", f"{cm:.3f} ms", f"{len(data) / cm / 1e6:.2f}",
            ">= 3 GB/s")
        nonascii = sum(1 for w in euro_text.split() if not w.isascii())
        row(f"French/German-like ({nonascii * 100 / max(1, len(euro_text.split())):.0f}% non-ASCII words)",
            f"{em:.3f} ms", f"{len(euro) / em / 1e6:.2f}", ">= 3 GB/s")
        for label, secs in memory_floor(euro, ns.repeat):
            row(f"  floor: {label} of the same buffer", f"{secs * 1e3:.3f} ms", f"{len(euro) / secs / 1e9:.2f}", "")

    if lib is not None:
        header("library throughput on one core (ctypes, no encode), best of runs")
        row("text", "bytes", "time", "GB/s")
        ign = (ctypes.c_char_p * 2)(b"the", b"a")
        out = ctypes.c_double()
        for label, t in (("mostly ASCII (this text)", data),
                         ("all ASCII", generate(int(ns.mb * 1e6), rare=0).encode()),
                         ("French/German-like (1 word in 10 non-ASCII)", generate_euro(int(ns.mb * 1e6)).encode()),
                         ("2% non-ASCII words", generate(int(ns.mb * 1e6), rare=0.02).encode())):
            dt = best(lambda: lib.kiln_text_short_long(t, len(t), 8, ign, 2, ctypes.byref(out)), ns.repeat)
            row(label, len(t), f"{dt * 1e3:.3f} ms", f"{len(t) / dt / 1e9:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
