#!/usr/bin/env python3
"""Builds the scene of the ray-tracing FFI post in kilnd and saves it as a PNG.

Three spheres (reflective, textured, glass), a textured reflective floor, a
back wall and two point lights.  The scene lives in the daemon; this script
only holds its id, and the `with` block deletes it at the end.

    python3 client/examples/render_scene.py -o scene.png --width 800 --height 600
    python3 client/examples/render_scene.py --samples 4 --progress

Textures are PNG files the daemon reads, so they must be absolute paths under
the daemon's path_roots (the default is the repository's tests/data/scenes).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import kiln  # noqa: E402

DEFAULT_TEXTURES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "tests", "data", "scenes")


def build(client: kiln.Client, args: argparse.Namespace) -> kiln.Scene:
    checker = os.path.join(args.textures, "checker.png")
    stripes = os.path.join(args.textures, "stripes.png")
    scene = client.scene(width=args.width, height=args.height, fov=90, samples=args.samples,
                         shadow_bias=1e-9, max_recursion_depth=10)
    scene.add_sphere((0, 0, -5), 1, color=(0.2, 1, 0.2), surface="reflective", reflectivity=0.7)
    scene.add_sphere((-3, 1, -6), 2, texture=stripes, albedo=0.58)
    scene.add_sphere((2, 1, -4), 1.5, color=(1, 1, 1), surface="refractive", index=1.5, transparency=1.0)
    scene.add_plane((0, -2, -5), (0, 1, 0), texture=checker, surface="reflective", reflectivity=0.5)
    scene.add_plane((0, 0, -20), (0, 0, 1), color=(0.2, 0.3, 1), albedo=0.38)
    scene.add_light("point", position=(-2, 10, -3), color=(0.3, 0.8, 0.3), intensity=10000)
    scene.add_light("point", position=(0.25, 0, -2), color=(0.8, 0.3, 0.3), intensity=250)
    return scene


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default="scene.png", help="PNG file to write (default scene.png)")
    ap.add_argument("--width", type=int, default=800)
    ap.add_argument("--height", type=int, default=600)
    ap.add_argument("--samples", type=int, default=1, help="samples per pixel (antialiasing)")
    ap.add_argument("--textures", default=DEFAULT_TEXTURES, help="directory of checker.png and stripes.png")
    ap.add_argument("--socket", default=None, help="kilnd socket (default: $KILN_SOCKET or the usual path)")
    ap.add_argument("--progress", action="store_true", help="progress bar on stderr")
    args = ap.parse_args()
    args.textures = os.path.abspath(args.textures)

    with kiln.Client(args.socket) as client, build(client, args) as scene:
        t0 = time.perf_counter()
        out = scene.render_output(format="png", progress=args.progress or None)
        elapsed = time.perf_counter() - t0
        with open(args.output, "wb") as f:
            f.write(out.attachment)
    d = out.data
    print(f"{args.output}: {d['width']}x{d['height']}, {d['rays']} rays, daemon {d['render_ms']:.1f} ms, "
          f"end to end {elapsed * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
