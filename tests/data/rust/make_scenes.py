#!/usr/bin/python3
"""Writes the Rust-format scenes in this folder (run once; the JSON files are
committed).  Every scene is in the tracer's own serde format; texture paths
are relative to this folder, where the reference tracer was run."""
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
TEX = "scenes/checkerboard.png"


def v(x, y, z):
    return {"x": float(x), "y": float(y), "z": float(z)}


def rgb(r, g, b):
    return {"red": float(r), "green": float(g), "blue": float(b)}


def mat(col=None, tex=None, albedo=0.18, surface="Diffuse"):
    coloration = {"Texture": {"path": tex}} if tex else {"Color": rgb(*col)}
    return {"coloration": coloration, "albedo": albedo, "surface": surface}


def sphere(c, r, m):
    return {"Sphere": {"center": v(*c), "radius": float(r), "material": m}}


def plane(o, n, m):
    return {"Plane": {"origin": v(*o), "normal": v(*n), "material": m}}


def spherical(p, col, i):
    return {"Spherical": {"position": v(*p), "color": rgb(*col), "intensity": float(i)}}


def directional(d, col, i):
    return {"Directional": {"direction": v(*d), "color": rgb(*col), "intensity": float(i)}}


def scene(w, h, fov, elements, lights, bias=1e-13, depth=10):
    return {"width": w, "height": h, "fov": float(fov), "elements": elements, "lights": lights,
            "shadow_bias": bias, "max_recursion_depth": depth}


def refl(r):
    return {"Reflective": {"reflectivity": r}}


def refr(i, t):
    return {"Refractive": {"index": i, "transparency": t}}


def post_python():
    """The 002 post's python/runner.py scene (800x800 there), texture path
    relative to this folder instead of ../app/."""
    cols = [mat((1, 1, 1)), mat((1, 0, 0)), mat((0, 1, 0)), mat((0, 0, 1)), mat(tex=TEX)]
    surfs = ["Diffuse", refl(0.95), refr(1.5, 0.5), refl(0.45)]
    els, i = [], 0
    for y in range(-2, 3):
        for x in range(-2, 3):
            m = dict(cols[i % 5], surface=surfs[i % 4])
            els.append(sphere((x, y, -5), 0.4, m))
            i += 1
    els.append(plane((0, 0, -10), (0, 0, -1), mat((0.3, 0.3, 0.3), albedo=0.01)))
    lights = [spherical((0, 0, -7.5), (0.25, 1, 0.25), 10000), directional((0, 0, -1), (1, 1, 1), 5)]
    return scene(240, 240, 45, els, lights)


def materials():
    """Every material: diffuse colour and texture, reflective, refractive at
    transparency 1, 0.5 and 0.2 with tinted colours, and a textured
    refractive sphere, over a textured reflective floor."""
    els = [
        sphere((-3, 1.2, -7), 1, mat((0.9, 0.2, 0.2))),
        sphere((0, 1.2, -7), 1, mat(tex=TEX, albedo=0.5)),
        sphere((3, 1.2, -7), 1, mat((0.8, 0.8, 0.8), surface=refl(0.8))),
        sphere((-3, -1, -6), 1, mat((1, 1, 1), surface=refr(1.5, 1.0))),
        sphere((0, -1, -6), 1, mat((0.6, 1, 0.6), surface=refr(1.33, 0.5))),
        sphere((3, -1, -6), 1, mat((1, 0.7, 0.4), surface=refr(2.4, 0.2))),
        sphere((1.5, 0.1, -4), 0.5, mat(tex=TEX, surface=refr(1.2, 0.9))),
        plane((0, -2, 0), (0, -1, 0), mat(tex=TEX, surface=refl(0.3))),
        plane((0, 0, -25), (0, 0, -1), mat((0.3, 0.4, 0.9), albedo=0.4)),
    ]
    lights = [spherical((-4, 6, -2), (1, 1, 1), 12000), directional((0.3, -1, -0.5), (1, 0.9, 0.8), 2)]
    return scene(320, 240, 70, els, lights)


def planes():
    """Planes in every orientation, seen from both sides: a floor and a
    ceiling, side walls, a back wall, a tilted textured plane, and planes
    whose normals face the camera (invisible to the tracer, whose planes are
    one-sided), with textures at negative coordinates."""
    els = [
        plane((0, -2, 0), (0, -1, 0), mat(tex=TEX)),                    # floor, seen from above
        plane((0, 4, 0), (0, 1, 0), mat((0.9, 0.9, 0.5))),               # ceiling, seen from below
        plane((0, 3, 0), (0, -1, 0), mat((1, 0, 1))),                    # faces the camera: invisible
        plane((-5, 0, 0), (-1, 0, 0), mat((0.9, 0.3, 0.3), albedo=0.5)),  # left wall
        plane((5, 0, 0), (1, 0, 0), mat(tex=TEX, albedo=0.5)),           # right wall, textured
        plane((0, 0, -40), (0, 0, -1), mat((0.3, 0.3, 0.9))),            # back wall
        plane((0, 0, -12), (0, 0, 1), mat((1, 1, 1))),                   # faces the camera: invisible
        plane((0, 0, -30), (0.3, -0.2, -1), mat(tex=TEX, albedo=0.4)),   # tilted, textured
        sphere((0, -1, -8), 1, mat((0.8, 0.8, 0.8), surface=refl(0.6))),
    ]
    lights = [spherical((0, 3.5, -16), (1, 1, 1), 8000), spherical((-2, 3.5, -5), (1, 0.8, 0.6), 2000),
              directional((-0.5, -1, -0.3), (0.7, 0.8, 1), 1.5)]
    return scene(320, 200, 80, els, lights)


def lights():
    """Lights of both kinds and colours, shadows across a floor and a wall,
    a light behind a sphere and one with zero intensity."""
    els = [
        sphere((-1.5, -0.5, -6), 1.5, mat((1, 1, 1), albedo=0.6)),
        sphere((2, -1, -5), 1, mat((0.4, 0.9, 0.9), albedo=0.6, surface=refl(0.2))),
        sphere((0.5, 1.5, -9), 1, mat((1, 1, 1), surface=refr(1.5, 0.8))),
        plane((0, -2, 0), (0, -1, 0), mat((0.8, 0.8, 0.8), albedo=0.5)),
        plane((0, 0, -14), (0, 0, -1), mat((0.9, 0.9, 0.9), albedo=0.5)),
    ]
    lts = [
        spherical((-4, 3, -3), (1, 0.3, 0.3), 6000),
        spherical((4, 2, -4), (0.3, 0.3, 1), 4000),
        spherical((0, 0, -12), (0.3, 1, 0.3), 3000),
        directional((0.4, -1, -0.6), (1, 1, 0.8), 1.2),
        directional((-1, -0.3, 0), (0.6, 0.3, 1), 0.8),
        spherical((0, 5, -5), (1, 1, 1), 0),
    ]
    return scene(320, 240, 75, els, lts)


def small_test():
    """The repository's app/scenes/test.json at 320x240."""
    with open(os.path.join(HERE, "test.json")) as f:
        doc = json.load(f)
    doc.update(width=320, height=240)
    return doc


def main():
    for name, doc in [("post_python", post_python()), ("materials", materials()), ("planes", planes()),
                      ("lights", lights()), ("test_small", small_test())]:
        with open(os.path.join(HERE, name + ".json"), "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
