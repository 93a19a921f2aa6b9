"""Standard-library PNG decoding, encoding and PSNR for the render tests (no Pillow)."""

from __future__ import annotations

import math
import zlib
from typing import Tuple


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def decode_rgba(data: bytes) -> Tuple[int, int, bytes]:
    """Width, height and 8-bit RGBA bytes of a non-interlaced 8-bit RGB,
    RGBA or palette PNG (the tracer writes RGB, kilnd RGBA,
    tests/data/scenes/palette.png is a palette)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    plte, trns = b"", b""
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 4], "big")
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height = int.from_bytes(body[0:4], "big"), int.from_bytes(body[4:8], "big")
            ctype = body[9]
            assert body[8] == 8 and ctype in (2, 3, 6) and body[12] == 0, "expected 8-bit RGB(A) or palette"
        elif kind == b"PLTE":
            plte = body
        elif kind == b"tRNS":
            trns = body
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    bpp = {2: 3, 3: 1, 6: 4}[ctype]
    raw = zlib.decompress(idat)
    stride = width * bpp
    out = bytearray()
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                line[i] = (line[i] + _paeth(a, b, c)) & 255
        prev = line
        if ctype == 6:
            out += line
        elif ctype == 2:
            for x in range(width):
                out += line[3 * x:3 * x + 3] + b"\xff"
        else:
            for k in line:
                out += plte[3 * k:3 * k + 3] + bytes([trns[k] if k < len(trns) else 255])
    return width, height, bytes(out)


def decode_rgb(data: bytes) -> Tuple[int, int, bytes]:
    """decode_rgba without the alpha channel."""
    width, height, rgba = decode_rgba(data)
    return width, height, rgba_to_rgb(rgba)


def encode_rgb(width: int, height: int, rgb: bytes) -> bytes:
    """An 8-bit truecolour PNG (no filter), standard library only."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (len(body).to_bytes(4, "big") + kind + body
                + (zlib.crc32(kind + body) & 0xffffffff).to_bytes(4, "big"))
    rows = b"".join(b"\0" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", width.to_bytes(4, "big") + height.to_bytes(4, "big")
                                          + bytes([8, 2, 0, 0, 0]))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def rgba_to_rgb(rgba: bytes) -> bytes:
    out = bytearray(rgba)
    del out[3::4]
    return bytes(out)


def psnr(a: bytes, b: bytes) -> float:
    """Peak signal-to-noise ratio of two equally sized 8-bit images, in dB
    (infinity when identical)."""
    assert len(a) == len(b) and a, "images differ in size"
    se = sum((x - y) * (x - y) for x, y in zip(a, b))
    if se == 0:
        return math.inf
    return 10 * math.log10(255 * 255 * len(a) / se)
