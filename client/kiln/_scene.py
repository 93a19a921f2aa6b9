"""Scenes and rendering: kiln.Scene and the scene-document builders.

Scenes live in the daemon; Python holds only a scene id, wrapped in a
`Scene` that deletes the daemon-side scene when its ``with`` block ends
(or on ``close()``):

    with client.scene(width=800, height=600) as s:
        s.add_sphere((0, 0, -5), 1, color=(0.2, 1, 0.2), surface="reflective", reflectivity=0.7)
        s.add_plane((0, -2, -5), (0, 1, 0), texture="/abs/checker.png")
        s.add_light("point", position=(-2, 10, -3), intensity=10000)
        rgba = s.render()                 # width * height * 4 bytes, rows top to bottom
        image = s.render_image()          # a PIL.Image (needs Pillow: python3-pil)
        array = s.render_array()          # numpy array (height, width, 4), uint8

The fast path for big scenes is one request with every element, built with
the functions below (plain dicts, the scene format `describe` documents):

    s.add([kiln.sphere((0, 0, -5), 1, kiln.material(color=(1, 0, 0))), ...],
          [kiln.point_light((0, 5, 0), intensity=500)])

Coordinates: right-handed, the default camera at the origin looking down -z.
Colours are [r, g, b] in 0..1.  Texture and mesh paths are read by the
daemon (with your rights, under its path_roots); relative paths are
resolved by the client.  A scene being rendered refuses add and update with
kiln.Busy; render again after the change.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from ._util import set_given

Vec = Sequence[float]
Progress = Union[bool, Callable[[Dict[str, Any]], Any], None]
SURFACES = ("diffuse", "reflective", "refractive")
LIGHTS = ("point", "directional")

__all__ = ["Scene", "material", "sphere", "plane", "mesh", "point_light", "directional_light"]


def _vec(v: Vec, name: str, n: int = 3) -> List[float]:
    if isinstance(v, (str, bytes)) or len(v) != n:
        raise ValueError(f"{name} must be {n} numbers, got {v!r}")
    out = []
    for x in v:
        if isinstance(x, bool) or not isinstance(x, (int, float)):
            raise TypeError(f"{name} must hold numbers, got {x!r}")
        out.append(x)
    return out


def material(color: Optional[Vec] = None, texture: Optional[str] = None, *, albedo: float = 0.18,
             surface: str = "diffuse", reflectivity: Optional[float] = None,
             index: Optional[float] = None, transparency: Optional[float] = None) -> Dict[str, Any]:
    """A material document.

    color: [r, g, b] in 0..1 (default white), or texture: a PNG file (read
    by the daemon; mapped by the element's uv coordinates) — not both.
    albedo: fraction of light a diffuse surface reflects (default 0.18).
    surface: "diffuse" (default), "reflective" (with reflectivity 0..1,
    default 0.5: the mirror share) or "refractive" (with index, the
    refractive index, default 1.5, and transparency 0..1, default 1.0).
    """
    if surface not in SURFACES:
        raise ValueError(f"surface must be one of {', '.join(SURFACES)}, not {surface!r}")
    if color is not None and texture is not None:
        raise ValueError("give color or texture, not both")
    m: Dict[str, Any] = {"albedo": albedo, "surface": surface}
    if texture is not None:
        m["texture"] = texture
    else:
        m["color"] = _vec(color if color is not None else (1.0, 1.0, 1.0), "color")
    return set_given(m, reflectivity=reflectivity, index=index, transparency=transparency)


def _mat(mat: Optional[Dict[str, Any]], kw: Dict[str, Any]) -> Dict[str, Any]:
    if mat is not None and kw:
        raise TypeError("give a material or material keywords, not both")
    return mat if mat is not None else material(**kw)


def sphere(center: Vec, radius: float, mat: Optional[Dict[str, Any]] = None,
           **material_kw: Any) -> Dict[str, Any]:
    """A sphere element: center [x, y, z], radius > 0, and a material (a
    material() dict, or its keywords: color, texture, albedo, surface,
    reflectivity, index, transparency)."""
    return {"type": "sphere", "center": _vec(center, "center"), "radius": radius,
            "material": _mat(mat, material_kw)}


def plane(origin: Vec, normal: Vec, mat: Optional[Dict[str, Any]] = None,
          **material_kw: Any) -> Dict[str, Any]:
    """An infinite plane element through `origin` with surface normal
    `normal` (need not be unit length), and a material (see sphere)."""
    return {"type": "plane", "origin": _vec(origin, "origin"), "normal": _vec(normal, "normal"),
            "material": _mat(mat, material_kw)}


def mesh(path: Optional[str] = None, *, vertices: Optional[Sequence[Vec]] = None,
         faces: Optional[Sequence[Sequence[int]]] = None, uvs: Optional[Sequence[Vec]] = None,
         normals: Optional[Sequence[Vec]] = None, translate: Vec = (0.0, 0.0, 0.0),
         scale: float = 1.0, mat: Optional[Dict[str, Any]] = None,
         **material_kw: Any) -> Dict[str, Any]:
    """A triangle mesh element: a Wavefront OBJ file `path` (read by the
    daemon), or inline `vertices` ([x, y, z] each) and `faces` (triangles of
    0-based vertex indices) with optional per-vertex `uvs` ([u, v]) and
    `normals`.  The mesh is scaled by `scale` (default 1), then moved by
    `translate` (default [0, 0, 0]).  Material as in sphere."""
    if (path is None) == (vertices is None):
        raise ValueError("give path or vertices (with faces), not both")
    e: Dict[str, Any] = {"type": "mesh", "translate": _vec(translate, "translate"), "scale": scale,
                         "material": _mat(mat, material_kw)}
    if path is not None:
        e["path"] = path
        return e
    e["vertices"] = [_vec(v, "vertices[]") for v in vertices or ()]
    e["faces"] = [list(f) for f in faces or ()]
    if uvs is not None:
        e["uvs"] = [_vec(v, "uvs[]", 2) for v in uvs]
    if normals is not None:
        e["normals"] = [_vec(v, "normals[]") for v in normals]
    return e


def point_light(position: Vec, *, color: Vec = (1.0, 1.0, 1.0), intensity: float = 1.0) -> Dict[str, Any]:
    """A point light at `position`; its light falls off with the square of
    the distance (intensity / (4 pi d^2)), so scenes use large intensities
    (hundreds to tens of thousands).  color [r, g, b] (default white)."""
    return {"type": "point", "position": _vec(position, "position"), "color": _vec(color, "color"),
            "intensity": intensity}


def directional_light(direction: Vec, *, color: Vec = (1.0, 1.0, 1.0),
                      intensity: float = 1.0) -> Dict[str, Any]:
    """A light infinitely far away (like the sun) shining along
    `direction` (the way the light travels, e.g. [0, -1, 0] straight down),
    with constant intensity (default 1) and color (default white)."""
    return {"type": "directional", "direction": _vec(direction, "direction"),
            "color": _vec(color, "color"), "intensity": intensity}


def _stderr_bar(label: str) -> Callable[[Dict[str, Any]], None]:
    """A progress callback drawing a one-line bar on stderr."""
    def show(p: Dict[str, Any]) -> None:
        done, total = p.get("done", 0), p.get("total") or 1
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {100 * done // total:3d}%")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()
    return show


def _image(out: Any) -> Any:
    try:
        from PIL import Image
    except ImportError:
        raise RuntimeError("render_image() needs Pillow: apt-get install python3-pil, or "
                           "pip install 'kiln[pillow]' (or use render() for RGBA bytes)") from None
    return Image.frombuffer("RGBA", (out.data["width"], out.data["height"]), out.attachment,
                            "raw", "RGBA", 0, 1)


def _array(out: Any) -> Any:
    try:
        import numpy
    except ImportError:
        raise RuntimeError("render_array() needs numpy: apt-get install python3-numpy, or "
                           "pip install 'kiln[numpy]' (or use render() for RGBA bytes)") from None
    # A read-only view of the attachment: no copy.
    return numpy.frombuffer(out.attachment, dtype=numpy.uint8).reshape(
        out.data["height"], out.data["width"], 4)


class Scene:
    """A daemon-side scene (from client.scene() or client.load_scene()).

    Use it as a context manager (``with``, or ``async with`` on an
    AsyncClient) so the daemon's scene is deleted once.  With an AsyncClient
    every method returns an awaitable of the same value."""

    def __init__(self, client: Any, scene_id: int) -> None:
        self.client = client
        self.scene_id = scene_id
        self._closed = False

    def __enter__(self) -> "Scene":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "Scene":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"<kiln.Scene {self.scene_id}{' closed' if self._closed else ''}>"

    def close(self) -> Any:
        """Deletes the daemon-side scene (once; later calls do nothing, and
        a scene already gone is not an error)."""
        if self._closed:
            return _nothing() if _is_async(self.client) else None
        self._closed = True
        return self.client._call_then("scene.delete", {"scene_id": self.scene_id},
                                      lambda o: None, quiet=True)

    # -- building -------------------------------------------------------------
    def add(self, elements: Iterable[Dict[str, Any]] = (), lights: Iterable[Dict[str, Any]] = (), *,
            timeout: Optional[float] = None) -> Dict[str, Any]:
        """Adds element documents (sphere(), plane(), mesh()) and light
        documents (point_light(), directional_light()) in one request, all
        or none.  Returns the scene summary {"scene_id", "width", "height",
        "elements", "lights", "memory_bytes", "renders"}."""
        args: Dict[str, Any] = {"scene_id": self.scene_id,
                                "elements": [self._resolve(e) for e in elements],
                                "lights": list(lights)}
        return self.client._call_then("scene.add", args, lambda o: o.data, timeout=timeout)

    def _resolve(self, e: Dict[str, Any]) -> Dict[str, Any]:
        """Relative texture and mesh paths, resolved for the daemon."""
        if not isinstance(e, dict):
            raise TypeError(f"an element must be a dict (see kiln.sphere), not {type(e).__name__}")
        m = e.get("material")
        if isinstance(e.get("path"), str):
            e = dict(e, path=self.client._path(e["path"]))
        if isinstance(m, dict) and isinstance(m.get("texture"), str):
            e = dict(e, material=dict(m, texture=self.client._path(m["texture"])))
        return e

    def add_sphere(self, center: Vec, radius: float, *, color: Optional[Vec] = None,
                   texture: Optional[str] = None, albedo: float = 0.18, surface: str = "diffuse",
                   reflectivity: Optional[float] = None, index: Optional[float] = None,
                   transparency: Optional[float] = None) -> Dict[str, Any]:
        """Adds a sphere (center [x, y, z], radius) with a material: color
        [r, g, b] (default white) or texture (PNG path); albedo (0.18);
        surface "diffuse", "reflective" (reflectivity, default 0.5) or
        "refractive" (index, default 1.5; transparency, default 1.0).
        Returns the scene summary."""
        return self.add([sphere(center, radius, material(
            color, texture, albedo=albedo, surface=surface, reflectivity=reflectivity,
            index=index, transparency=transparency))])

    def add_plane(self, origin: Vec, normal: Vec, *, color: Optional[Vec] = None,
                  texture: Optional[str] = None, albedo: float = 0.18, surface: str = "diffuse",
                  reflectivity: Optional[float] = None, index: Optional[float] = None,
                  transparency: Optional[float] = None) -> Dict[str, Any]:
        """Adds an infinite plane through origin with the given normal;
        material keywords as add_sphere."""
        return self.add([plane(origin, normal, material(
            color, texture, albedo=albedo, surface=surface, reflectivity=reflectivity,
            index=index, transparency=transparency))])

    def add_mesh(self, path: Optional[str] = None, *, vertices: Optional[Sequence[Vec]] = None,
                 faces: Optional[Sequence[Sequence[int]]] = None, uvs: Optional[Sequence[Vec]] = None,
                 normals: Optional[Sequence[Vec]] = None, translate: Vec = (0.0, 0.0, 0.0),
                 scale: float = 1.0, **material_kw: Any) -> Dict[str, Any]:
        """Adds a triangle mesh: an OBJ file or inline vertices and faces
        (see kiln.mesh); material keywords as add_sphere."""
        return self.add([mesh(path, vertices=vertices, faces=faces, uvs=uvs, normals=normals,
                              translate=translate, scale=scale, **material_kw)])

    def add_light(self, kind: str = "point", *, position: Optional[Vec] = None,
                  direction: Optional[Vec] = None, color: Vec = (1.0, 1.0, 1.0),
                  intensity: float = 1.0) -> Dict[str, Any]:
        """Adds a light: kind "point" (position; inverse-square falloff, see
        kiln.point_light) or "directional" (direction the light travels).
        color [r, g, b] (default white), intensity (default 1)."""
        if kind == "point":
            if position is None or direction is not None:
                raise ValueError("a point light takes position (and no direction)")
            light = point_light(position, color=color, intensity=intensity)
        elif kind == "directional":
            if direction is None or position is not None:
                raise ValueError("a directional light takes direction (and no position)")
            light = directional_light(direction, color=color, intensity=intensity)
        else:
            raise ValueError(f"kind must be one of {', '.join(LIGHTS)}, not {kind!r}")
        return self.add(lights=[light])

    def update(self, **settings: Any) -> Dict[str, Any]:
        """Changes settings: width, height (pixels), fov (vertical, degrees),
        shadow_bias, max_recursion_depth (0..64), samples (per pixel,
        1..256), gamma, background [r, g, b], camera={"position", "look_at",
        "up"}, semantics ("kiln" or "rust": whose rendering rules).  Returns
        the scene summary."""
        return self.client._call_then("scene.update", dict(settings, scene_id=self.scene_id),
                                      lambda o: o.data)

    def get(self, format: str = "kiln") -> Dict[str, Any]:
        """The scene document: kiln's format (client.load_scene(doc) renders
        the same), or with format="rust" converted to the Rust tracer's
        (invalid_args if the scene has what that format cannot express)."""
        return self.client._call_then("scene.get", {"scene_id": self.scene_id, "format": format},
                                      lambda o: o.data["scene"])

    # -- rendering ------------------------------------------------------------
    def render_output(self, *, format: str = "rgba", region: Optional[Dict[str, int]] = None,
                      output: Optional[str] = None, progress: Progress = None,
                      timeout: Optional[float] = None, _post: Any = None) -> Any:
        """The whole ProcedureOutput of scene.render: data {"width",
        "height", "format", "render_ms", "rays"} and the attachment.
        format "rgba" or "png"; region {"x", "y", "width", "height"} renders
        part of the image; output= has the daemon write the file instead.
        progress=True draws a bar on stderr; a callable gets the progress
        dicts ({"done", "total"} rows)."""
        args = set_given({"scene_id": self.scene_id, "format": format}, region=region,
                         output=self.client._path(output) if output is not None else None)
        fn = _stderr_bar(f"scene {self.scene_id}") if progress is True else (progress or None)
        return self.client._call_then("scene.render", args, _post or (lambda o: o),
                                      timeout=timeout, progress=fn)

    def render(self, **kw: Any) -> bytes:
        """The image as RGBA bytes (width * height * 4, rows top to bottom);
        keywords as render_output."""
        return self.render_output(_post=lambda o: o.attachment or b"", **kw)

    def render_png(self, **kw: Any) -> bytes:
        """The image as PNG file bytes."""
        return self.render_output(format="png", _post=lambda o: o.attachment or b"", **kw)

    def render_image(self, **kw: Any) -> Any:
        """The image as a PIL.Image (mode RGBA).  Needs Pillow
        (Debian: python3-pil; pip: kiln[pillow])."""
        return self.render_output(_post=_image, **kw)

    def render_array(self, **kw: Any) -> Any:
        """The image as a read-only numpy array of shape (height, width, 4),
        dtype uint8, viewing the reply's attachment (no copy).  Needs numpy
        (Debian: python3-numpy; pip: kiln[numpy])."""
        return self.render_output(_post=_array, **kw)

    def _repr_png_(self) -> Optional[bytes]:
        """Jupyter shows a scene as its rendered image (sync Client only)."""
        if self._closed or _is_async(self.client):
            return None
        return self.render_png()


async def _nothing() -> None:
    return None


def _is_async(client: Any) -> bool:
    return bool(getattr(client, "is_async", False))


class SceneMixin:
    """Mixed into kiln.Client and kiln.AsyncClient."""

    _call_then: Callable[..., Any]
    _path: Callable[[Any], str]

    def scene(self, **settings: Any) -> Scene:
        """Creates a scene and returns it as a kiln.Scene.  Settings (all
        optional): width (default 800), height (600), fov (90),
        shadow_bias (1e-9), max_recursion_depth (10), samples (1), gamma
        (2.2), background ([0, 0, 0]), camera ({"position": [0, 0, 0],
        "look_at": [0, 0, -1], "up": [0, 1, 0]}) — see Scene.update."""
        return self._call_then("scene.create", settings, lambda o: Scene(self, o.data["scene_id"]))

    def load_scene(self, document: Optional[Dict[str, Any]] = None, *, path: Optional[str] = None,
                   format: Optional[str] = None, base_dir: Optional[str] = None,
                   timeout: Optional[float] = None) -> Scene:
        """Creates a scene from a whole document (kiln's format, as
        Scene.get returns, or the Rust ray tracer's JSON, rendered with that
        format's semantics), inline or from a file the daemon reads.
        format: "auto" (default), "kiln" or "rust".  base_dir: the absolute
        directory relative texture paths are relative to (default: the scene
        file's)."""
        args: Dict[str, Any] = {"scene": document} if path is None else {"path": self._path(path)}
        set_given(args, format=format, base_dir=base_dir)
        return self._call_then("scene.load", args, lambda o: Scene(self, o.data["scene_id"]),
                               timeout=timeout)

    def scenes(self) -> List[Dict[str, Any]]:
        """Every scene you own: [{"scene_id", "width", "height", ...}]."""
        return self._call_then("scene.list", None, lambda o: o.data["scenes"])
