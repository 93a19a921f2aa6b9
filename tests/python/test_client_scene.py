"""The documented scene API (issue 15): kiln.Scene and the typed builders,
render()/render_image()/render_array()/_repr_png_, and `describe`
documenting every element, material and light type."""

from __future__ import annotations

import asyncio
import json
import os
import unittest

import kilntest
from kilntest import KilnTestCase

import kiln

SCENES = os.path.join(kilntest.DATA, "scenes")
try:
    import numpy
except ImportError:
    numpy = None
try:
    from PIL import Image
except ImportError:
    Image = None


def walk(schema, out):
    """Every sub-schema of a schema (following $defs)."""
    if isinstance(schema, dict):
        out.append(schema)
        for v in schema.values():
            walk(v, out)
    elif isinstance(schema, list):
        for v in schema:
            walk(v, out)
    return out


class DescribeSceneFormatTest(KilnTestCase):
    def test_every_type_has_a_full_schema(self):
        add = self.client.describe("scene.add")["args"]
        defs = add["$defs"]
        for kind, fields in (("sphere", {"center", "radius", "material"}),
                             ("plane", {"origin", "normal", "material"}),
                             ("mesh", {"path", "vertices", "faces", "uvs", "normals", "translate", "scale"}),
                             ("point", {"position", "color", "intensity"}),
                             ("directional", {"direction", "color", "intensity"})):
            self.assertEqual(defs[kind]["properties"]["type"]["enum"], [kind])
            self.assertLessEqual(fields, set(defs[kind]["properties"]), kind)
        mat = defs["material"]["properties"]
        self.assertLessEqual({"color", "texture", "albedo", "surface", "reflectivity", "index", "transparency"},
                             set(mat))
        self.assertEqual(mat["albedo"]["default"], 0.18)
        self.assertIn("refractive", mat["surface"]["description"])
        refs = {a["$ref"] for a in defs["element"]["anyOf"]}
        self.assertLessEqual({"#/$defs/sphere", "#/$defs/plane", "#/$defs/mesh"}, refs)
        self.assertEqual(add["properties"]["elements"]["items"], {"$ref": "#/$defs/element"})
        self.assertEqual(add["properties"]["lights"]["items"], {"$ref": "#/$defs/light"})
        # No bare {"type": "object"} for elements, materials or lights anywhere.
        for name in ("scene.add", "scene.load"):
            args = self.client.describe(name)["args"]
            props = [args["properties"]] + [s["properties"] for s in walk(args, []) if "properties" in s]
            for p in props:
                for key in ("element", "elements", "light", "lights", "material", "scene"):
                    if key in p:
                        self.assertNotEqual(p[key], {"type": "object"}, f"{name}: {key}")
                        self.assertNotEqual(p[key].get("items"), {"type": "object"}, f"{name}: {key}")

    def test_actions_json_documents_the_scene_format(self):
        with open(os.path.join(kilntest.ROOT, "proto", "actions.json")) as f:
            actions = {a["name"]: a for a in json.load(f)["actions"]}
        self.assertIn("sphere", actions["scene.add"]["args"]["$defs"])
        self.assertIn("material", actions["scene.load"]["args"]["$defs"])

    def test_documented_element_is_accepted_and_non_object_refused(self):
        with self.client.scene(width=4, height=4) as s:
            s.add([kiln.mesh(vertices=[(0, 0, -3), (1, 0, -3), (0, 1, -3)], faces=[(0, 1, 2)],
                             uvs=[(0, 0), (1, 0), (0, 1)], color=(1, 0, 0))],
                  [kiln.directional_light((0, -1, 0), intensity=2)])
            with self.assertRaises(kiln.InvalidArgs) as cm:
                self.client.call("scene.add", {"scene_id": s.scene_id, "elements": [5]})
            self.assertEqual(cm.exception.detail["path"], "args.elements[0]")


class SceneApiTest(KilnTestCase):
    def build(self, s):
        s.add([kiln.sphere((0, 0, -5), 1, color=(0.2, 1, 0.2), surface="reflective", reflectivity=0.5),
               kiln.plane((0, -2, -5), (0, 1, 0), kiln.material(texture=os.path.join(SCENES, "checker.png")))],
              [kiln.point_light((0, 5, 0), intensity=800)])

    def test_exported_and_documented(self):
        self.assertIs(kiln.Scene, kiln._scene.Scene)
        for fn in (kiln.material, kiln.sphere, kiln.plane, kiln.mesh, kiln.point_light, kiln.directional_light,
                   kiln.Scene.add, kiln.Scene.add_sphere, kiln.Scene.add_plane, kiln.Scene.add_mesh,
                   kiln.Scene.add_light, kiln.Scene.update, kiln.Scene.render, kiln.Scene.render_image,
                   kiln.Scene.render_array, kiln.Client.scene, kiln.Client.call):
            self.assertTrue(fn.__doc__ and len(fn.__doc__) > 40, fn)
        self.assertIn("reflectivity", kiln.Scene.add_sphere.__doc__)
        self.assertIn("0.18", kiln.material.__doc__)

    def test_builders_check_locally(self):
        with self.assertRaises(ValueError):
            kiln.material(surface="shiny")
        with self.assertRaises(ValueError):
            kiln.material(color=(1, 1, 1), texture="/x.png")
        with self.assertRaises(ValueError):
            kiln.sphere((0, 0), 1)
        with self.assertRaises(TypeError):
            kiln.sphere((0, "a", 0), 1)
        self.assertEqual(kiln.sphere((0, 0, -5), 2, color=(1, 0, 0)),
                         {"type": "sphere", "center": [0, 0, -5], "radius": 2,
                          "material": {"albedo": 0.18, "surface": "diffuse", "color": [1, 0, 0]}})
        with self.client.scene(width=4, height=4) as s:
            with self.assertRaises(ValueError):
                s.add_light("spot", position=(0, 0, 0))
            with self.assertRaises(ValueError):
                s.add_light("point", direction=(0, -1, 0))

    def test_render_forms(self):
        with self.client.scene(width=40, height=30) as s:
            self.build(s)
            rgba = s.render()
            self.assertEqual(len(rgba), 40 * 30 * 4)
            png = s._repr_png_()
            self.assertTrue(png.startswith(b"\x89PNG\r\n\x1a\n"))
            self.assertEqual(png, s.render_png())
            if numpy is not None:
                a = s.render_array()
                self.assertEqual((a.shape, a.dtype), ((30, 40, 4), numpy.uint8))
                owner = a
                while isinstance(owner, numpy.ndarray):
                    owner = owner.base
                self.assertIsInstance(owner, bytes)   # a view of the attachment: no copy
                self.assertFalse(a.flags.writeable)
                self.assertEqual(a.tobytes(), rgba)
            if Image is not None:
                im = s.render_image()
                self.assertEqual((im.size, im.mode), ((40, 30), "RGBA"))
                self.assertEqual(im.tobytes(), rgba)
        self.assertIsNone(s._repr_png_())  # closed: nothing to show

    @unittest.skipIf(numpy is not None, "numpy is installed")
    def test_render_array_without_numpy(self):
        with self.client.scene(width=4, height=4) as s, self.assertRaises(RuntimeError) as cm:
            s.render_array()
        self.assertIn("numpy", str(cm.exception))

    def test_relative_texture_is_resolved(self):
        old = os.getcwd()
        os.chdir(SCENES)
        try:
            with self.client.scene(width=4, height=4) as s:
                s.add_sphere((0, 0, -3), 1, texture="checker.png")
                self.assertEqual(s.get()["elements"][0]["material"]["texture"],
                                 os.path.join(SCENES, "checker.png"))
        finally:
            os.chdir(old)

    def test_async_scene(self):
        async def main():
            async with kiln.AsyncClient(self.socket_path) as c:
                async with await c.scene(width=8, height=6) as s:
                    await s.add([kiln.sphere((0, 0, -3), 1)], [kiln.point_light((0, 3, 0), intensity=100)])
                    self.assertEqual(len(await s.render()), 8 * 6 * 4)
                    if numpy is not None:
                        self.assertEqual((await s.render_array()).shape, (6, 8, 4))
                self.assertEqual(await c.scenes(), [])
        asyncio.run(asyncio.wait_for(main(), 60))


if __name__ == "__main__":
    unittest.main()
