"""Scenes in the Rust ray tracer's format (the 002 post's bheisler/raytracer)
rendered as the tracer renders them, against reference images the real
tracer made (tests/data/rust/README.md says how), with a PSNR threshold;
unknown keys refused in both formats; base_dir; big frames."""

from __future__ import annotations

import json
import os
import shutil
import unittest
import zlib
from typing import Any, Dict

import kilntest
import kiln
import pngio

RUST = os.path.join(kilntest.DATA, "rust")
SCENES = os.path.join(kilntest.DATA, "scenes")
MIN_PSNR = 35.0  # dB, against the tracer's own render


def reference(name: str) -> bytes:
    with open(os.path.join(RUST, "ref", name + ".png"), "rb") as f:
        return pngio.decode_rgb(f.read())[2]


def load_json(name: str) -> Dict[str, Any]:
    with open(os.path.join(RUST, name)) as f:
        return json.load(f)


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a process (VmHWM), KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc/PID/status")


class RustFidelityTest(kilntest.KilnTestCase):
    CONFIG = {"threads": 2}

    def assert_psnr(self, name: str, rgba: bytes) -> float:
        value = pngio.psnr(pngio.rgba_to_rgb(rgba), reference(name))
        self.assertGreaterEqual(value, MIN_PSNR, f"{name}: {value:.2f} dB against the tracer")
        return value

    def test_scenes_match_the_tracer(self) -> None:
        # The post's Python-built scene, the repository's test scene, and
        # scenes exercising every material, light and plane orientation.
        for name in ("post_python", "test_small", "materials", "planes", "lights"):
            with self.subTest(scene=name), self.client.load_scene(path=os.path.join(RUST, name + ".json")) as s:
                self.assertEqual(s.get()["semantics"], "rust")
                self.assert_psnr(name, s.render())

    def test_post_scene_with_its_own_textures(self) -> None:
        with self.client.load_scene(path=os.path.join(SCENES, "post_rust.json")) as s:
            s.update(width=160, height=120)
            self.assert_psnr("post_rust", s.render())

    def test_kiln_semantics_are_kept_apart(self) -> None:
        # The same document with kiln's semantics (two-sided planes, glass
        # with a diffuse part) is a different picture: the semantics switch
        # is real, and scene.get in kiln's format keeps the tracer's.
        with self.client.load_scene(path=os.path.join(RUST, "planes.json")) as s:
            rust = s.render()
            doc = s.get()
            s.update(semantics="kiln")
            kiln_img = s.render()
        self.assertLess(pngio.psnr(pngio.rgba_to_rgb(kiln_img), reference("planes")), 25)
        with self.client.load_scene(doc) as again:
            self.assertEqual(again.render(), rust)
        doc["semantics"] = "kiln"
        with self.client.load_scene(doc) as again:
            self.assertEqual(again.render(), kiln_img)

    def test_one_sided_planes(self) -> None:
        # A plane whose normal faces the camera: invisible to the tracer,
        # visible under kiln's semantics.
        plane = {"Plane": {"origin": {"x": 0, "y": 0, "z": -10}, "normal": {"x": 0, "y": 0, "z": 1},
                           "material": {"coloration": {"Color": {"red": 1, "green": 1, "blue": 1}},
                                        "albedo": 1, "surface": "Diffuse"}}}
        light = {"Directional": {"direction": {"x": 0, "y": 0, "z": -1},
                                 "color": {"red": 1, "green": 1, "blue": 1}, "intensity": 10}}
        doc = {"width": 8, "height": 6, "fov": 90.0, "shadow_bias": 1e-13, "max_recursion_depth": 4,
               "elements": [plane], "lights": [light]}
        with self.client.load_scene(doc) as s:
            self.assertEqual(set(s.render()[0::4]), {0})
            s.update(semantics="kiln")
            self.assertEqual(set(s.render()[0::4]), {255})
        # Facing away: visible, lit by light travelling toward it, and not
        # by light from behind.
        plane["Plane"]["normal"]["z"] = -1
        with self.client.load_scene(doc) as s:
            self.assertEqual(set(s.render()[0::4]), {255})
        light["Directional"]["direction"]["z"] = 1
        with self.client.load_scene(doc) as s:
            self.assertEqual(set(s.render()[0::4]), {0}, "lit from behind")

    def test_conversion_round_trips(self) -> None:
        with self.client.load_scene(path=os.path.join(RUST, "materials.json")) as s:
            image = s.render()
            rust_doc = s.get(format="rust")
            self.assertIn("Sphere", rust_doc["elements"][0])
            with self.client.load_scene(rust_doc) as again:
                self.assertEqual(again.render(), image)
        # What the Rust format cannot say is refused by name.
        with self.client.scene(width=8, height=6, samples=4) as s:
            with self.assertRaises(kiln.InvalidArgs) as cm:
                s.get(format="rust")
            self.assertIn("samples", str(cm.exception))
        with self.client.scene(width=8, height=6) as s:
            s.add_mesh(vertices=[(0, 0, -3), (1, 0, -3), (0, 1, -3)], faces=[(0, 1, 2)])
            with self.assertRaises(kiln.InvalidArgs) as cm:
                s.get(format="rust")
            self.assertIn("mesh", str(cm.exception))

    def assert_refused(self, doc: Dict[str, Any], key: str, **kw: Any) -> None:
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.client.load_scene(doc, **kw).close()
        self.assertIn(f'"{key}"', str(cm.exception))

    def test_old_formats_refused(self) -> None:
        # Three older versions of the repository's test.json: the tracer
        # rejects them, and so does kiln (never an empty black scene).
        for name, key in (("old-eee82d8.json", "sphere"), ("old-f2c31e1.json", "spheres"),
                          ("old-72f9c2e.json", "light")):
            with self.subTest(file=name):
                with self.assertRaises(kiln.InvalidArgs) as cm:
                    self.client.load_scene(path=os.path.join(RUST, name)).close()
                self.assertIn(f'"{key}"', str(cm.exception))
        self.assertEqual(self.client.scenes(), [])

    def test_unknown_keys_everywhere(self) -> None:
        rust = load_json("materials.json")
        bad = json.loads(json.dumps(rust))
        bad["sphere"] = {}
        self.assert_refused(bad, "sphere", base_dir=RUST)
        bad = json.loads(json.dumps(rust))
        bad["elements"][0]["Sphere"]["colour"] = 1
        self.assert_refused(bad, "colour", base_dir=RUST)
        bad = json.loads(json.dumps(rust))
        bad["elements"][0]["Sphere"]["material"]["shine"] = 1
        self.assert_refused(bad, "shine", base_dir=RUST)
        bad = json.loads(json.dumps(rust))
        bad["elements"][2]["Sphere"]["material"]["surface"]["Reflective"]["gloss"] = 1
        self.assert_refused(bad, "gloss", base_dir=RUST)
        bad = json.loads(json.dumps(rust))
        bad["lights"][0]["Spherical"]["radius"] = 1
        self.assert_refused(bad, "radius", base_dir=RUST)
        bad = json.loads(json.dumps(rust))
        del bad["max_recursion_depth"]
        self.assert_refused(bad, "max_recursion_depth", base_dir=RUST)
        # The kiln format: top level, camera, item, material.
        sphere = {"type": "sphere", "center": [0, 0, -5], "radius": 1, "material": {"color": [1, 0, 0]}}
        self.assert_refused({"elements": [sphere], "sphere": sphere}, "sphere")
        self.assert_refused({"camera": {"position": [0, 0, 0], "fov": 3}}, "fov")
        self.assert_refused({"elements": [dict(sphere, colour=[1, 0, 0])]}, "colour")
        self.assert_refused({"elements": [dict(sphere, material={"color": [1, 0, 0], "gloss": 1})]}, "gloss")
        self.assert_refused({"lights": [{"type": "point", "position": [0, 0, 0], "intensity": 1, "radius": 1}]},
                            "radius")
        # Rust keys in a kiln document are unknown there too.
        self.assert_refused({"elements": [dict(sphere, material={"coloration": {"Color": [1, 0, 0]}})]},
                            "coloration")
        with self.assertRaises(kiln.InvalidArgs) as cm:
            self.client.load_scene({"elements": [sphere] + rust["elements"][:1]}, base_dir=RUST).close()
        self.assertIn("mixes", str(cm.exception))

    def test_base_dir(self) -> None:
        # The repository's scenes name textures relative to the directory
        # the app ran in; a copy elsewhere finds them only through base_dir.
        elsewhere = os.path.join(self.daemon.dir, "test_small.json")
        shutil.copy(os.path.join(RUST, "test_small.json"), elsewhere)
        with self.assertRaises(kiln.NotFound) as cm:
            self.client.load_scene(path=elsewhere).close()
        self.assertIn("checkerboard.png", str(cm.exception))
        with self.client.load_scene(path=elsewhere, base_dir=RUST) as s:
            self.assert_psnr("test_small", s.render())
        with self.client.load_scene(load_json("test_small.json"), base_dir=RUST) as s:
            self.assert_psnr("test_small", s.render())
        with self.assertRaises(kiln.InvalidArgs):
            self.client.load_scene(path=elsewhere, base_dir="tests/data/rust").close()

    @kilntest.heavy
    def test_huge_frame(self) -> None:
        # The repository's current test.json, 32000x24000, as the app ran it
        # (textures relative to app/): it loads; whole, it renders only to a
        # file; any region renders, as the tracer renders that region; a
        # full-width strip streams to a PNG file in bounded memory.
        with self.client.load_scene(path=os.path.join(RUST, "test.json"), base_dir=RUST) as s:
            info = self.client.call("scene.list").data["scenes"][0]
            self.assertEqual((info["width"], info["height"]), (32000, 24000))
            with self.assertRaises(kiln.KilnError) as cm:
                s.render()
            self.assertEqual(cm.exception.code, "too_large")
            region = {"x": 18200, "y": 11880, "width": 320, "height": 240}
            tile = s.render(region=region)
            self.assert_psnr("test_region", tile)
            # Peak RSS of the daemon while it writes a 32000x512 strip (65
            # MB as RGBA, more as an in-memory PNG): at most one 8 MiB band,
            # the PNG writer and slack, whatever the size.  Under a sanitizer
            # (slow, and its own memory) a shorter strip and no bound.
            sanitizer = bool(os.environ.get("KILN_TEST_SANITIZER"))
            strip = {"x": 0, "y": 11880 if sanitizer else 11760, "width": 32000, "height": 240 if sanitizer else 512}
            bound_kib = 32 * 1024
            before = vm_hwm_kib(self.daemon.pid)
            out = os.path.join(self.daemon.dir, "strip.png")
            data = s.render_output(format="png", region=strip, output=out, timeout=900).data
            grown = vm_hwm_kib(self.daemon.pid) - before
            if not sanitizer:
                self.assertLessEqual(grown, bound_kib, f"peak RSS grew by {grown} KiB writing the strip")
            self.assertEqual(os.path.getsize(out), data["bytes"])
        # The file holds the strip: the rows and columns of the region
        # rendered before are the same bytes.
        with open(out, "rb") as f:
            png = f.read()
        self.assertEqual(png[12:24], b"IHDR" + (32000).to_bytes(4, "big") + strip["height"].to_bytes(4, "big"))
        self.assertEqual(png[-8:-4], b"IEND")
        top = region["y"] - strip["y"]
        self.assertEqual(streamed_block(png, 32000, range(top, top + 240), range(18200, 18520)), tile)


def streamed_block(png: bytes, width: int, rows: range, cols: range) -> bytes:
    """The RGBA pixels of rows x cols of an 8-bit RGBA PNG whose rows all use
    the None or Up filter (kilnd's writer), decompressed incrementally so the
    whole image is never held.  Up works column by column, so only the
    wanted columns are followed."""
    idat, pos = [], 8
    while pos < len(png):
        n = int.from_bytes(png[pos:pos + 4], "big")
        if png[pos + 4:pos + 8] == b"IDAT":
            idat.append(png[pos + 8:pos + 8 + n])
        pos += 12 + n
    d = zlib.decompressobj()
    stride = width * 4 + 1
    lo, hi = 1 + cols.start * 4, 1 + cols.stop * 4
    buf, prev, out, y = b"", bytes(hi - lo), [], 0
    for chunk in idat:
        buf += d.decompress(chunk)
        while len(buf) >= stride and y < rows.stop:
            f, part = buf[0], buf[lo:hi]
            buf = buf[stride:]
            assert f in (0, 2), f"row {y}: filter {f}"
            if f == 2:
                part = bytes((a + b) & 255 for a, b in zip(part, prev))
            if y in rows:
                out.append(part)
            prev = part
            y += 1
        if y >= rows.stop:
            break
    assert len(out) == len(rows), "the file ended early"
    return b"".join(out)


if __name__ == "__main__":
    unittest.main()
