"""Client methods for scenes and rendering (issue 6).

Scenes live in the daemon; Python holds only a scene id, wrapped in a
`Scene` object that deletes the daemon-side scene when its ``with`` block
ends (or on ``close()``):

    with client.scene(width=800, height=600) as s:
        s.add_sphere((0, 0, -5), 1, color=(0.2, 1, 0.2), surface="reflective", reflectivity=0.7)
        s.add_plane((0, -2, -5), (0, 1, 0), texture="/abs/checker.png")
        s.add_light("point", position=(-2, 10, -3), intensity=10000)
        rgba = s.render()                 # width * height * 4 bytes
        image = s.render_image()          # a PIL.Image (needs python3-pil)

A scene being rendered refuses scene.add and scene.update with `busy`
(kiln.Busy); render again after the change.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

from ._util import set_given

Vec = Sequence[float]
Progress = Union[bool, Callable[[Dict[str, Any]], None], None]


def material(color: Optional[Vec] = None, texture: Optional[str] = None, *, albedo: float = 0.18,
             surface: str = "diffuse", reflectivity: Optional[float] = None,
             index: Optional[float] = None, transparency: Optional[float] = None) -> Dict[str, Any]:
    """A material document: a colour or a texture (absolute PNG path, read
    by the daemon), an albedo, and a surface: "diffuse", "reflective"
    (reflectivity) or "refractive" (index, transparency)."""
    m: Dict[str, Any] = {"albedo": albedo, "surface": surface}
    if texture is not None:
        m["texture"] = texture
    else:
        m["color"] = list(color if color is not None else (1.0, 1.0, 1.0))
    return set_given(m, reflectivity=reflectivity, index=index, transparency=transparency)


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


class Scene:
    """A daemon-side scene.  Use as a context manager so it is deleted once."""

    def __init__(self, client: Any, scene_id: int) -> None:
        self.client = client
        self.scene_id = scene_id
        self._closed = False

    def __enter__(self) -> "Scene":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<kiln.Scene {self.scene_id}{' closed' if self._closed else ''}>"

    def close(self) -> None:
        """Deletes the daemon-side scene (once; later calls do nothing)."""
        if self._closed:
            return
        self._closed = True
        from .errors import KilnError
        try:
            self.client.call("scene.delete", {"scene_id": self.scene_id})
        except (KilnError, OSError):
            # Already gone (daemon restarted, or deleted elsewhere).
            pass

    # -- building -------------------------------------------------------------
    def add(self, elements: Iterable[Dict[str, Any]] = (), lights: Iterable[Dict[str, Any]] = (), *,
            timeout: Optional[float] = None) -> Dict[str, Any]:
        """Adds element and light documents in one request (all or none)."""
        args: Dict[str, Any] = {"scene_id": self.scene_id, "elements": list(elements),
                                "lights": list(lights)}
        return self.client.call("scene.add", args, timeout=timeout).data

    def add_sphere(self, center: Vec, radius: float, **mat: Any) -> Dict[str, Any]:
        return self.add([{"type": "sphere", "center": list(center), "radius": radius,
                          "material": material(**mat)}])

    def add_plane(self, origin: Vec, normal: Vec, **mat: Any) -> Dict[str, Any]:
        return self.add([{"type": "plane", "origin": list(origin), "normal": list(normal),
                          "material": material(**mat)}])

    def add_mesh(self, path: Optional[str] = None, *, vertices: Optional[Sequence[Vec]] = None,
                 faces: Optional[Sequence[Sequence[int]]] = None, uvs: Optional[Sequence[Vec]] = None,
                 normals: Optional[Sequence[Vec]] = None, translate: Vec = (0.0, 0.0, 0.0),
                 scale: float = 1.0, **mat: Any) -> Dict[str, Any]:
        """A triangle mesh from a Wavefront OBJ file (absolute path, read by
        the daemon) or inline vertices and faces (0-based vertex indices;
        optional per-vertex uvs and normals)."""
        e: Dict[str, Any] = {"type": "mesh", "translate": list(translate), "scale": scale,
                             "material": material(**mat)}
        if path is not None:
            e["path"] = path
        else:
            e["vertices"] = [list(v) for v in vertices or ()]
            e["faces"] = [list(f) for f in faces or ()]
            if uvs is not None:
                e["uvs"] = [list(v) for v in uvs]
            if normals is not None:
                e["normals"] = [list(v) for v in normals]
        return self.add([e])

    def add_light(self, kind: str = "point", *, position: Optional[Vec] = None,
                  direction: Optional[Vec] = None, color: Vec = (1.0, 1.0, 1.0),
                  intensity: float = 1.0) -> Dict[str, Any]:
        """kind "point" (position; inverse-square falloff) or "directional"
        (direction the light travels)."""
        light: Dict[str, Any] = {"type": kind, "color": list(color), "intensity": intensity}
        if position is not None:
            light["position"] = list(position)
        if direction is not None:
            light["direction"] = list(direction)
        return self.add(lights=[light])

    def update(self, **settings: Any) -> Dict[str, Any]:
        """Changes settings: width, height, fov, shadow_bias,
        max_recursion_depth, samples, gamma, background, camera={position,
        look_at, up}, semantics ("kiln" or "rust": whose rendering rules)."""
        return self.client.call("scene.update", dict(settings, scene_id=self.scene_id)).data

    def get(self, format: str = "kiln") -> Dict[str, Any]:
        """The scene document: kiln's format (client.load_scene(doc) renders
        the same), or with format="rust" converted to the Rust tracer's
        (invalid_args if the scene has what that format cannot express)."""
        return self.client.call("scene.get", {"scene_id": self.scene_id, "format": format}).data["scene"]

    # -- rendering ------------------------------------------------------------
    def render_output(self, *, format: str = "rgba", region: Optional[Dict[str, int]] = None,
                      output: Optional[str] = None, progress: Progress = None,
                      timeout: Optional[float] = None) -> Any:
        """The whole ProcedureOutput of scene.render (data and attachment).
        progress=True draws a bar on stderr; a callable gets the progress
        dicts."""
        args = set_given({"scene_id": self.scene_id, "format": format}, region=region, output=output)
        fn = _stderr_bar(f"scene {self.scene_id}") if progress is True else (progress or None)
        return self.client.call("scene.render", args, timeout=timeout, progress=fn)

    def render(self, **kw: Any) -> bytes:
        """RGBA bytes (width * height * 4, rows top to bottom); see render_output."""
        out = self.render_output(**kw)
        return out.attachment or b""

    def render_png(self, **kw: Any) -> bytes:
        return self.render_output(format="png", **kw).attachment or b""

    def render_image(self, **kw: Any) -> Any:
        """The render as a PIL.Image (RGBA).  Needs Pillow (Debian: python3-pil)."""
        try:
            from PIL import Image
        except ImportError:
            raise RuntimeError("render_image() needs Pillow: apt-get install python3-pil "
                               "(or use render() for raw RGBA bytes, render_png() for PNG)") from None
        out = self.render_output(**kw)
        return Image.frombytes("RGBA", (out.data["width"], out.data["height"]), out.attachment)


class SceneMixin:
    """Mixed into kiln.Client; uses self.call()."""

    def scene(self, **settings: Any) -> Scene:
        """Creates a scene (settings as in Scene.update) and returns it."""
        return Scene(self, self.call("scene.create", settings).data["scene_id"])  # type: ignore[attr-defined]

    def load_scene(self, document: Optional[Dict[str, Any]] = None, *, path: Optional[str] = None,
                   format: Optional[str] = None, base_dir: Optional[str] = None,
                   timeout: Optional[float] = None) -> Scene:
        """Creates a scene from a whole document (kiln's or the Rust ray
        tracer's JSON format, rendered with that format's semantics), inline
        or from a file the daemon reads.  format: "auto" (default), "kiln" or
        "rust".  base_dir: the absolute directory relative texture paths are
        relative to (default: the scene file's)."""
        args: Dict[str, Any] = {"scene": document} if path is None else {"path": path}
        set_given(args, format=format, base_dir=base_dir)
        return Scene(self, self.call("scene.load", args, timeout=timeout).data["scene_id"])  # type: ignore[attr-defined]

    def scenes(self) -> List[Dict[str, Any]]:
        return self.call("scene.list").data["scenes"]  # type: ignore[attr-defined]
