#!/usr/bin/env python3
"""Regenerates the seed corpora tests/fuzz/corpus/<target>/ (committed).

Seeds come from the golden requests in proto/examples/*.json, the sample
files in tests/data, the example configurations and a few hand-written
requests for actions the examples do not reach.  The formats are those the
targets read (see the comment at the top of each tests/fuzz/fuzz_*.c):

  frame   2 control bytes (chunk size, line limit) + request lines
  conn    request lines, as sent on the socket ("@DATA@" = the data root)
  action  "<action>\\n<args JSON>"
  scene   a scene document (paths relative to tests/data/scenes)
  obj     an OBJ file
  seal    1 mode byte + an openssl-enc (passphrase "fuzz", PBKDF2 at one
          iteration or the legacy KDF) or sealed file (cheap KDF parameters)
  config  a configuration file

Needs the `openssl` command and python3-cryptography (sealed seeds).
Usage: tests/fuzz/make_seeds.py   (rewrites every corpus directory)
"""

from __future__ import annotations

import glob
import hashlib
import hmac
import json
import os
import shutil
import struct
import subprocess
from typing import Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")
PASS = b"fuzz"

seeds: Dict[str, List[bytes]] = {t: [] for t in
                                 ("frame", "conn", "action", "scene", "obj", "seal", "config")}


def add(target: str, data: bytes) -> None:
    if data not in seeds[target]:
        seeds[target].append(data)


def line_of(send) -> bytes:
    text = send if isinstance(send, str) else json.dumps(send, ensure_ascii=False)
    return text.encode() + b"\n"


# --- requests: golden examples plus actions the examples leave out ----------

EXTRA_REQUESTS = [
    {"job_id": 1, "action": "describe"},
    {"job_id": 1, "action": "text.short_long", "raw": 11},
    {"job_id": 1, "action": "scene.create", "args": {"width": 8, "height": 8}},
    {"job_id": 1, "action": "scene.update", "args": {"scene_id": 1, "fov": 60, "samples": 2,
                                                     "camera": {"position": [0, 0, 3]}}},
    {"job_id": 1, "action": "scene.add", "args": {"scene_id": 1, "elements": [
        {"type": "sphere", "center": [0, 0, -3], "radius": 1,
         "material": {"color": [1, 0, 0], "surface": "reflective", "reflectivity": 0.5}},
        {"type": "mesh", "path": "@DATA@/scenes/cube.obj", "translate": [0, 0, -4], "scale": 0.5,
         "material": {"texture": "@DATA@/scenes/checker.png"}}],
        "lights": [{"type": "point", "position": [0, 3, 0], "color": [1, 1, 1], "intensity": 50}]}},
    {"job_id": 1, "action": "scene.render", "args": {"scene_id": 1, "format": "png",
                                                     "output": "@DATA@/out.png"}},
    {"job_id": 1, "action": "scene.list"},
    {"job_id": 1, "action": "corpus.seal", "args": {"dir": "@DATA@/corpus/plain", "out_dir": "@DATA@",
                                                    "passphrase": "fuzz", "kdf": "pbkdf2",
                                                    "iterations": 1000}},
    {"job_id": 1, "action": "corpus.list"},
    {"job_id": 1, "action": "corpus.search", "args": {"name": "example", "query": "the",
                                                      "case": "insensitive", "max_results": 2}},
    {"job_id": 1, "action": "corpus.stats", "args": {"name": "example", "min_length": 3,
                                                     "ignore": ["the"]}},
    {"job_id": 1, "action": "pi", "args": {"digits": 20, "output": "@DATA@/pi.txt"}},
    {"job_id": 1, "action": "text.stats", "args": {"corpus": "example", "document": "monday.txt"}},
    {"job_id": 1, "action": "sleep", "args": {"seconds": 0.01, "steps": 2}, "progress": True},
    {"job_id": 1, "action": "echo", "args": {"text": "x"}, "detach": True},
    {"job_id": 1, "action": "job.cancel", "args": {"job": 1}},
    {"job_id": 1, "action": "vector.length", "args": {"x": 1e308, "y": 1e308, "z": -1e308}},
]


def requests() -> List[List]:
    """Every golden request, grouped by example file (one stream per file)."""
    groups = []
    for path in sorted(glob.glob(os.path.join(ROOT, "proto", "examples", "*.json"))):
        with open(path, encoding="utf-8") as f:
            groups.append([e["send"] for e in json.load(f)])
    groups.append(EXTRA_REQUESTS)
    return groups


def request_seeds() -> None:
    raw_line = b'{"job_id":1,"action":"text.short_long","raw":11}\nhello world\n'
    for group in requests():
        stream = b""
        for send in group:
            line = line_of(send)
            if isinstance(send, dict) and send.get("raw"):
                line = raw_line
            stream += line
            add("conn", line)
            add("frame", b"\x00\x80" + line)
            if isinstance(send, dict) and isinstance(send.get("action"), str):
                args = send.get("args", {})
                if isinstance(args, dict):
                    add("action", send["action"].encode() + b"\n" +
                        json.dumps(args, ensure_ascii=False).encode())
                    if send.get("progress"):
                        add("action", b"+" + send["action"].encode() + b"\n" + json.dumps(args).encode())
        # Pipelined streams, and the same read in small chunks.
        add("conn", stream)
        add("frame", b"\x07\x20" + stream)
    add("frame", b"\x03\x00" + raw_line + b'{"job_id":2,"action":"ping"}\r\n')
    add("conn", raw_line)


# --- scenes and meshes --------------------------------------------------------

def relative(obj):
    """Scene paths as the scene target reads them: relative to tests/data/scenes."""
    text = json.dumps(obj)
    return text.replace("@DATA@/scenes/", "")


def scene_seeds() -> None:
    with open(os.path.join(DATA, "scenes", "post_rust.json"), "rb") as f:
        add("scene", f.read())
    for group in requests():
        for send in group:
            if not isinstance(send, dict):
                continue
            args = send.get("args") or {}
            if send.get("action") == "scene.load" and "scene" in args:
                add("scene", relative(args["scene"]).encode())
            elif send.get("action") in ("scene.add", "scene.create"):
                add("scene", relative(args).encode())
    add("scene", json.dumps({
        "width": 6, "height": 6, "samples": 2, "max_recursion_depth": 3,
        "elements": [
            {"type": "plane", "origin": [0, -1, 0], "normal": [0, 1, 0],
             "material": {"texture": "stripes.png", "albedo": 0.5}},
            {"type": "sphere", "center": {"x": 0, "y": 0, "z": -2}, "radius": 0.5,
             "material": {"color": {"r": 0.2, "g": 0.4, "b": 0.9}, "surface": "refractive",
                          "index": 1.5, "transparency": 0.8}},
            {"type": "mesh", "vertices": [[0, 0, -3], [1, 0, -3], [0, 1, -3]], "faces": [[0, 1, 2]],
             "uvs": [[0, 0], [1, 0], [0, 1]], "normals": [[0, 0, 1]]},
            {"Sphere": {"center": {"x": 1, "y": 0, "z": -3}, "radius": 0.3,
                        "material": {"coloration": {"Texture": {"path": "palette.png"}},
                                     "albedo": 0.3, "surface": {"Reflective": {"reflectivity": 0.4}}}}},
        ],
        "lights": [{"type": "directional", "direction": [0, -1, -1], "color": [1, 1, 1], "intensity": 2},
                   {"Spherical": {"position": {"x": 0, "y": 2, "z": 0},
                                  "color": {"red": 1, "green": 1, "blue": 1}, "intensity": 30}}],
    }).encode())


OBJ_SEEDS = [
    b"v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\nvn 0 0 1\n"
    b"f 1/1/1 2/2/1 3/3/1 4/4/1\n",
    b"# negative indices, no uvs\nv -1 -1 0\nv 1 -1 0\nv 0 1 0\nvn 0 0 1\nf -3//-1 -2//-1 -1//-1\n",
    b"o thing\ng part\ns off\nusemtl red\nmtllib x.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\r\n",
    b"v 1e300 0 0\nv 0 -1e300 0\nv 0 0 nan\nf 1 2 3\n",
]


def obj_seeds() -> None:
    with open(os.path.join(DATA, "scenes", "cube.obj"), "rb") as f:
        add("obj", f.read())
    for s in OBJ_SEEDS:
        add("obj", s)


# --- encrypted files -------------------------------------------------------------

def openssl_enc(plain: bytes, pbkdf2: bool, salt: bytes) -> bytes:
    # A fixed salt (-S) keeps regenerated seeds identical.
    cmd = ["openssl", "enc", "-aes-256-cbc", "-salt", "-S", salt.hex(), "-md", "sha256", "-pass", "pass:fuzz"]
    if pbkdf2:
        cmd += ["-pbkdf2", "-iter", "1"]
    return subprocess.run(cmd, input=plain, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                          check=True).stdout


def sealed(plain: bytes, kdf: int, salt: bytes, nonce: bytes) -> bytes:
    """proto/sealed-format.md, with the cheap parameters the target derives."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if kdf == 1:
        log2n, p1, p2 = 10, 8, 1
        master = hashlib.scrypt(PASS, salt=salt, n=1 << log2n, r=p1, p=p2, dklen=32)
    else:
        log2n, p1, p2 = 0, 1000, 0
        master = hashlib.pbkdf2_hmac("sha256", PASS, salt, p1, 32)
    enc = hmac.new(master, b"kiln sealed v1 encryption key", hashlib.sha256).digest()
    check = hmac.new(master, b"kiln sealed v1 key check", hashlib.sha256).digest()[:16]
    header = (b"KILNSEAL" + bytes([1, kdf, log2n, 0]) + struct.pack(">II", p1, p2) + salt + check +
              nonce + struct.pack(">Q", len(plain)))
    return header + AESGCM(enc).encrypt(nonce, plain, header)


def seal_seeds() -> None:
    texts = [b"", b"The caf\xc3\xa9 was open.\nthe end\n", b"\xff not utf-8"]
    for name in ("monday.txt", "tuesday.txt"):
        with open(os.path.join(DATA, "corpus", "plain", name), "rb") as f:
            texts.append(f.read())
    for i, t in enumerate(texts):
        add("seal", b"\x00" + openssl_enc(t, True, bytes([i]) * 8))
        add("seal", b"\x01" + openssl_enc(t, False, bytes([i + 1]) * 8))
        add("seal", b"\x02" + sealed(t, 2, bytes([i]) * 16, bytes([i]) * 12))
    add("seal", b"\x03" + sealed(texts[1], 1, b"s" * 16, b"n" * 12))
    for path in sorted(glob.glob(os.path.join(DATA, "corpus", "*", "*"))):
        with open(path, "rb") as f:
            body = f.read()
        add("seal", (b"\x02" if body.startswith(b"KILNSEAL") else b"\x00") + body)


# --- configuration files ----------------------------------------------------------

def config_seeds() -> None:
    for path in (os.path.join(ROOT, "daemon", "kiln.example.json"), os.path.join(ROOT, "daemon", "kiln.dev.json"),
                 os.path.join(DATA, "test-config.json")):
        with open(path, "rb") as f:
            add("config", f.read())
    add("config", json.dumps({
        "socket": "kiln.sock", "socket_mode": "0600", "log_level": "warn", "threads": 2,
        "default_timeout": 5, "max_timeout": 60.5, "allowed_uids": [0, 1000], "allowed_gids": [],
        "path_roots": [".", "/tmp"], "state_dir": "state", "max_line_bytes": 4096,
        "procedures": {
            "#": "comment",
            "t.echo": {"argv": ["/bin/echo", "{host}", "{timeout}", "{attempt}", "{job_id}"],
                       "env": {"K": "v-{host}"}, "max_parallel": 2, "success_exit_codes": [0, 3],
                       "tail_bytes": 64, "description": "d", "allowed_uids": [0]},
        },
    }).encode())
    add("config", b'{"#": "x", "max_timeout": 1, "default_timeout": 2}')


# --- dictionaries (libFuzzer -dict): names the fuzzer could not guess ------------

def schema_words(schema, out: set) -> None:
    if isinstance(schema, dict):
        for k, v in schema.items():
            if k == "properties" and isinstance(v, dict):
                out.update(v.keys())
            if k == "enum" and isinstance(v, list):
                out.update(x for x in v if isinstance(x, str))
            schema_words(v, out)
    elif isinstance(schema, list):
        for v in schema:
            schema_words(v, out)


def literals(path: str) -> set:
    import re
    with open(path, encoding="utf-8") as f:
        return set(re.findall(r'"([A-Za-z_][A-Za-z0-9_.]{0,24})"', f.read()))


def dictionaries() -> Dict[str, set]:
    with open(os.path.join(ROOT, "proto", "actions.json"), encoding="utf-8") as f:
        actions = json.load(f)["actions"]
    words = {a["name"] for a in actions}
    for a in actions:
        schema_words(a["args"], words)
    envelope = {"job_id", "action", "timeout", "retries", "host_list", "args", "progress", "accept_raw",
                "raw", "raw_b64", "detach", "@DATA@"}
    scene = literals(os.path.join(ROOT, "daemon", "scene_doc.c")) | {"checker.png", "cube.obj", "palette.png"}
    config = literals(os.path.join(ROOT, "daemon", "config.c")) | literals(os.path.join(ROOT, "daemon", "act_proc.c"))
    return {"action": words | {"@DATA@"}, "conn": words | envelope, "frame": envelope,
            "scene": scene, "config": config,
            "obj": {"v ", "vt ", "vn ", "f ", "//", "/", "\n", "-1"}}


def write_dicts() -> None:
    out = os.path.join(HERE, "dict")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    for target, words in dictionaries().items():
        with open(os.path.join(out, f"{target}.dict"), "w", encoding="utf-8") as f:
            for w in sorted(words):
                f.write('"' + "".join(chr(b) if 32 <= b < 127 and b not in b'"\\' else
                                      ("\\" + chr(b) if b in b'"\\' else f"\\x{b:02x}")
                                      for b in w.encode()) + '"\n')


def main() -> None:
    write_dicts()
    request_seeds()
    scene_seeds()
    obj_seeds()
    seal_seeds()
    config_seeds()
    for target, items in seeds.items():
        out = os.path.join(HERE, "corpus", target)
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        for data in items:
            name = hashlib.sha1(data).hexdigest()
            with open(os.path.join(out, name), "wb") as f:
                f.write(data)
        print(f"{target}: {len(items)} seeds")


if __name__ == "__main__":
    main()
