"""Rendering: the FFI post's scene (three spheres -- reflective, textured,
glass -- a textured reflective floor, a back wall, two point lights) end to
end from Python at 800x600 1 spp and 1920x1080 4 spp, with 1 and 2 threads;
then a scene of 100,000 spheres built by 100 scene.add requests of 1,000
(beside the same built by one request), and a 100,000-sphere scene at
800x600; then a 16000x12000 frame streamed whole to a PNG file, with the
daemon's peak RSS growth (bounded whatever the size; the whole frame in
memory would be 732 MiB).

Each figure is the median of several runs of `scene.render` (format rgba,
attachment read by the Python client), beside its floor measured in the same
run: the same request on an empty scene of the same size (socket transfer of
the image plus the tile machinery, no ray tracing).  Goals (issue 6):
800x600 1 spp <= 100 ms end to end on 2 threads, 1 -> 2 threads >= 1.8x,
100,000 spheres at 800x600 <= 2 s; (issue 18) 100 x scene.add of 1,000
spheres then the first 320x240 render <= 0.5 s in all.  The Rust tracer of the post takes about
0.38 s single-threaded for the 800x600 frame on this machine (from the issue;
not measured here).  The daemon's CPU time per frame is printed too: on a
busy machine wall times (and the speed-up) suffer, CPU time much less.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from typing import Any, Dict, List, Tuple

from benchlib import DATA, Server, header, row

import kiln

SCENES = os.path.join(DATA, "scenes")
POST = os.path.join(SCENES, "post_rust.json")


def timed(fn: Any, runs: int) -> Tuple[float, Any]:
    """Median wall time in ms over `runs` calls (after one warm-up), and the last result."""
    out = fn()
    ts: List[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return statistics.median(ts), out


def cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def post_case(threads: int, width: int, height: int, samples: int, runs: int) -> Dict[str, float]:
    with Server({"threads": threads}) as srv, srv.client() as c:
        with c.load_scene(path=POST) as s, c.scene(width=width, height=height) as empty:
            s.update(width=width, height=height, samples=samples)
            c0 = cpu_ms(srv.proc.pid)
            ms, out = timed(lambda: s.render_output(), runs)
            cpu = (cpu_ms(srv.proc.pid) - c0) / (runs + 1)
            floor, _ = timed(lambda: empty.render_output(), runs)
    rays = out.data["rays"]
    return {"ms": ms, "floor": floor, "rays": rays, "mrays": rays / (ms / 1000) / 1e6,
            "cpu": cpu}


def many_spheres(threads: int, n: int) -> Dict[str, float]:
    rnd = random.Random(6)
    elements: List[Dict[str, Any]] = []
    for _ in range(n):
        elements.append({"type": "sphere",
                         "center": [rnd.uniform(-12, 12), rnd.uniform(-1.8, 6), rnd.uniform(-30, -6)],
                         "radius": rnd.uniform(0.03, 0.12),
                         "material": {"color": [rnd.random(), rnd.random(), rnd.random()], "albedo": 0.5}})
    with Server({"threads": threads, "max_line_bytes": 64 << 20}) as srv, srv.client() as c:
        t0 = time.perf_counter()
        with c.scene(width=800, height=600, fov=70) as s:
            for i in range(0, n, 25000):
                s.add(elements[i:i + 25000], timeout=120)
            s.add_plane((0, -2, 0), (0, 1, 0), texture=os.path.join(SCENES, "checker.png"),
                        surface="reflective", reflectivity=0.3)
            s.add_light("point", position=(-5, 12, -5), intensity=20000)
            s.add_light("directional", direction=(0.2, -1, -0.3), intensity=1.5)
            build = (time.perf_counter() - t0) * 1000
            ms, out = timed(lambda: s.render_output(timeout=120), 3)
    return {"build_ms": build, "ms": ms, "rays": out.data["rays"],
            "mrays": out.data["rays"] / (ms / 1000) / 1e6}


def sphere_elements(n: int, seed: int = 7) -> List[Dict[str, Any]]:
    rnd = random.Random(seed)
    return [{"type": "sphere",
             "center": [rnd.uniform(-12, 12), rnd.uniform(-1.8, 6), rnd.uniform(-30, -6)],
             "radius": rnd.uniform(0.03, 0.12),
             "material": {"color": [rnd.random(), rnd.random(), rnd.random()], "albedo": 0.5}}
            for _ in range(n)]


def bulk_build(batches: int, per_batch: int) -> Dict[str, float]:
    """`batches` x scene.add of `per_batch` spheres from Python, then the
    first 320x240 render: the time to build, to the first image, in all."""
    elements = sphere_elements(batches * per_batch)
    with Server({"threads": 2, "max_line_bytes": 64 << 20}) as srv, srv.client() as c:
        with c.scene(width=320, height=240, fov=70) as s:
            s.add_light("directional", direction=(0.2, -1, -0.3), intensity=1.5)
            t0 = time.perf_counter()
            for i in range(batches):
                s.add(elements[i * per_batch:(i + 1) * per_batch], timeout=120)
            t1 = time.perf_counter()
            s.render_output(timeout=120)
            t2 = time.perf_counter()
            second, _ = timed(lambda: s.render_output(timeout=120), 3)
    return {"add_ms": (t1 - t0) * 1000, "render_ms": (t2 - t1) * 1000, "total_ms": (t2 - t0) * 1000,
            "second_ms": second}


def vm_hwm_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def huge_streamed(threads: int, width: int, height: int) -> Dict[str, float]:
    """A frame far beyond scene_max_pixels written whole to a PNG file
    (streamed by row bands): wall time and the daemon's peak RSS growth, and
    as the floor the same frame's raw RGBA written to a file the same way."""
    doc = {"width": width, "height": height, "fov": 90.0, "shadow_bias": 1e-13, "max_recursion_depth": 4,
           "elements": [], "lights": []}
    out: Dict[str, float] = {}
    with Server({"threads": threads}) as srv, srv.client() as c:
        with c.load_scene(doc) as s:
            for fmt in ("rgba", "png"):
                path = os.path.join(srv.dir, "huge." + fmt)
                before = vm_hwm_kib(srv.proc.pid)
                t0 = time.perf_counter()
                s.render_output(format=fmt, output=path, timeout=3600)
                out[fmt + "_ms"] = (time.perf_counter() - t0) * 1000
                out[fmt + "_rss_mib"] = (vm_hwm_kib(srv.proc.pid) - before) / 1024
                out[fmt + "_bytes"] = os.path.getsize(path)
                os.unlink(path)
    return out


def goal(ok: bool) -> str:
    return "meets goal" if ok else "MISSES goal"


def main() -> None:
    header("post scene, end to end from Python (median; floor = empty scene of the same size)")
    row("case", "ms", "floor ms", "Mrays/s", "daemon CPU ms/frame")
    results = {}
    for (w, h, spp, runs) in ((800, 600, 1, 9), (1920, 1080, 4, 3)):
        for threads in (1, 2):
            r = post_case(threads, w, h, spp, runs)
            results[(w, spp, threads)] = r
            note = f"{r['cpu']:.0f}"
            if (w, spp, threads) == (800, 1, 2):
                note += f"   <= 100 ms: {goal(r['ms'] <= 100)}"
            row(f"{w}x{h} {spp} spp, {threads} thread{'s' if threads > 1 else ''}", f"{r['ms']:.1f}",
                f"{r['floor']:.1f}", f"{r['mrays']:.1f}", note)
    for (w, spp) in ((800, 1), (1920, 4)):
        one, two = results[(w, spp, 1)], results[(w, spp, 2)]
        speedup = one["ms"] / two["ms"]
        row(f"speed-up 1 -> 2 threads, {w} wide {spp} spp", f"{speedup:.2f}x", "", "",
            f">= 1.8x: {goal(speedup >= 1.8)}")
    header("a scene built in bulk: 100,000 spheres added from Python, then the first 320x240 render, "
           "2 threads")
    row("case", "adds ms", "first render ms", "total ms", "next renders ms (median)")
    many = bulk_build(100, 1000)
    one = bulk_build(1, 100000)
    row("100 x scene.add of 1,000 spheres", f"{many['add_ms']:.0f}", f"{many['render_ms']:.0f}",
        f"{many['total_ms']:.0f}", f"{many['second_ms']:.0f}   total <= 500 ms: {goal(many['total_ms'] <= 500)}")
    row("floor: 1 x scene.add of 100,000 spheres", f"{one['add_ms']:.0f}", f"{one['render_ms']:.0f}",
        f"{one['total_ms']:.0f}", f"{one['second_ms']:.0f}")
    header("100,000 spheres + textured reflective floor, 800x600 1 spp, 2 threads")
    r = many_spheres(2, 100000)
    row("build from Python (4 x scene.add)", f"{r['build_ms']:.0f} ms")
    row("render end to end", f"{r['ms']:.0f} ms", "", f"{r['mrays']:.1f}", f"<= 2000 ms: {goal(r['ms'] <= 2000)}")
    w, h = 16000, 12000
    header(f"{w}x{h} (empty scene) rendered whole to a file, streamed by row bands, 2 threads")
    r = huge_streamed(2, w, h)
    whole = w * h * 4 / (1 << 20)
    row("case", "ms", "peak RSS +MiB", "file MiB", f"whole frame in memory: {whole:.0f} MiB")
    row("PNG (libpng row writes)", f"{r['png_ms']:.0f}", f"{r['png_rss_mib']:.1f}",
        f"{r['png_bytes'] / (1 << 20):.1f}", f"bounded (< 64 MiB): {goal(r['png_rss_mib'] < 64)}")
    row("floor: raw RGBA, same bands", f"{r['rgba_ms']:.0f}", f"{r['rgba_rss_mib']:.1f}",
        f"{r['rgba_bytes'] / (1 << 20):.1f}")


if __name__ == "__main__":
    main()
