"""Kernel latency: rasterize, maps, warp, correspond (and chains) × backend × size on the ICT head.

    python -m bench.kernels --out out/bench_kernels.json [--device cpu|cuda]

Each run is the median and p99 in ms after warm-up, synchronised on CUDA. Backends are torch and
numba on the CPU, and torch and cuda on a CUDA device when there is one (``--device`` keeps one
side; ``cuda`` fails without a working CUDA device). Compare timings as ratios within one report
(these machines are shared and noisy).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import torch

from bench.timing import time_call, write_report
from jr2net.camera import FLIP, euler_to_matrix, intrinsics
from jr2net.face_model import FaceModel
from jr2net.geometry import COVISIBILITY_TOLERANCE, place_vertices
from jr2net.kernels.correspond_torch import CorrespondInputs
from jr2net.kernels.cuda_runtime import cuda_unavailable_reason
from jr2net.kernels.dispatch import implementation
from jr2net.kernels.warp_torch import WarpInputs
from jr2net.lighting import irradiance_coefficients, light_preset
from jr2net.warp import relative_pose

OPS = ("rasterize", "maps", "warp", "correspond", "rasterize+maps", "rasterize+maps+warp")


def _scene(model: FaceModel, size: int, yaw: float, device: torch.device) -> dict[str, torch.Tensor]:
    expression = model.expression_vector({"jawOpen": 0.5, "mouthSmileLeft": 0.4})[None]
    vertices = model(torch.zeros(1, model.identity_count), expression)
    rotation = euler_to_matrix(torch.tensor([[0.1, math.radians(yaw), 0.0]]))
    translation = torch.tensor([[0.0, 2.0, 60.0]])
    matrix = intrinsics(torch.tensor([size * 60 / 34]), size, size)
    geometry = place_vertices(model, vertices, rotation, translation, matrix)
    return {
        "screen": geometry.screen.to(device),
        "camera_points": geometry.camera_points.to(device),
        "normals": geometry.view_normals.contiguous().to(device),
        "placement": FLIP @ rotation,
        "translation": translation,
        "intrinsics": matrix.to(device),
    }


def _ops(model: FaceModel, backend: str, size: int, device: torch.device) -> dict[str, Callable[[], object]]:
    rasterize = implementation("rasterize", backend)
    shade = implementation("shade_maps", backend)
    warp = implementation("warp", backend)
    correspond = implementation("correspond", backend)
    triangles = model.triangles.to(device)
    albedo = torch.full((1, model.vertex_count, 3), 0.6, device=device)
    coefficients = irradiance_coefficients(light_preset("studio")[None]).to(device)
    target, source = _scene(model, size, 10.0, device), _scene(model, size, -20.0, device)
    rotation, translation = relative_pose(
        target["placement"], target["translation"], source["placement"], source["translation"]
    )
    rotation, translation = rotation.to(device), translation.to(device)
    source_fragments = rasterize(source["screen"], triangles, size, size)
    source_image = torch.rand(1, 3, size, size, device=device)
    fragments = rasterize(target["screen"], triangles, size, size)
    matrix = target["intrinsics"]

    def maps(frags: object) -> object:
        return shade(frags.tri_id, frags.bary, triangles, target["normals"], albedo, coefficients)

    def warp_from(frags: object) -> object:
        return warp(
            WarpInputs(
                source_image, source_fragments.depth, frags.depth, matrix, matrix, rotation, translation
            )
        )

    def chain(with_warp: bool) -> object:
        frags = rasterize(target["screen"], triangles, size, size)
        maps(frags)
        return warp_from(frags) if with_warp else frags

    return {
        "rasterize": lambda: rasterize(target["screen"], triangles, size, size),
        "maps": lambda: maps(fragments),
        "warp": lambda: warp_from(fragments),
        "correspond": lambda: correspond(
            CorrespondInputs(
                fragments.tri_id,
                fragments.bary,
                triangles,
                source["camera_points"],
                matrix,
                source_fragments.depth,
            ),
            COVISIBILITY_TOLERANCE,
        ),
        "rasterize+maps": lambda: chain(False),
        "rasterize+maps+warp": lambda: chain(True),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON report path")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument(
        "--device",
        choices=("all", "cpu", "cuda"),
        default="all",
        help="the CPU backends, the CUDA ones or both",
    )
    args = parser.parse_args()
    reason = cuda_unavailable_reason()
    if args.device == "cuda" and reason is not None:
        parser.error(f"--device cuda: {reason}")
    plans = [("torch", torch.device("cpu")), ("numba", torch.device("cpu"))] if args.device != "cuda" else []
    if args.device != "cpu" and reason is None:
        plans += [("torch", torch.device("cuda")), ("cuda", torch.device("cuda"))]
    model = FaceModel.load()
    runs = []
    with torch.no_grad():
        for backend, device in plans:
            for size in args.sizes:
                for op, fn in _ops(model, backend, size, device).items():
                    timing = time_call(fn, device, args.repeats, args.warmup)
                    runs.append({"op": op, "backend": backend, "device": device.type, "size": size, **timing})
                    line = f"{op:22s} {backend:6s} {device.type:5s} {size:4d}²"
                    print(
                        f"{line}  median {timing['median_ms']:8.3f} ms  p99 {timing['p99_ms']:8.3f} ms",
                        flush=True,
                    )
    report = write_report(args.out, runs, sorted({d for _, d in plans}, key=str))
    print(f"wrote {args.out} ({report['device']})")


if __name__ == "__main__":
    main()
