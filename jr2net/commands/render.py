"""``jr2net render``: a shaded render of the face model (and its maps) for a person to look at."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from jr2net.avatar import portrait_params
from jr2net.face_model import FaceModel
from jr2net.image_io import save_png
from jr2net.lighting import LIGHT_PRESETS
from jr2net.params import FaceParams
from jr2net.render import RenderMaps, render_face

BACKGROUND = 0.12


def parse_weights(items: list[str]) -> dict[str, float]:
    """``["jawOpen=0.8", "mouthSmileLeft=0.3,eyeBlinkRight=1"]`` -> ``{name: weight}``."""
    weights: dict[str, float] = {}
    for item in items:
        for pair in filter(None, item.split(",")):
            name, sep, value = pair.partition("=")
            try:
                weights[name.strip()] = float(value)
            except ValueError:
                raise ValueError(f"expected NAME=WEIGHT, got {pair!r}") from None
            if not sep:
                raise ValueError(f"expected NAME=WEIGHT, got {pair!r}")
    return weights


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="render the face model with an expression, head pose and light",
        description="Render the ICT face model, shaded by SH light, to a PNG (and its maps with --maps).",
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=Path("face.png"), help="output PNG (default face.png)"
    )
    parser.add_argument(
        "--expression",
        action="append",
        default=[],
        metavar="NAME=W",
        help="expression weight by ICT or ARKit name, e.g. jawOpen=0.8 (repeat or comma-separate)",
    )
    parser.add_argument(
        "--yaw", type=float, default=0.0, help="degrees; positive turns the face to image right"
    )
    parser.add_argument("--pitch", type=float, default=0.0, help="degrees; positive turns the face down")
    parser.add_argument(
        "--roll", type=float, default=0.0, help="degrees; positive tilts the head to image left"
    )
    parser.add_argument(
        "--identity-seed", type=int, help="sample identity coefficients ~ N(0, 1) with this seed"
    )
    parser.add_argument("--light", choices=sorted(LIGHT_PRESETS), default="studio", help="SH light preset")
    parser.add_argument(
        "--size", type=int, default=512, help="image width and height in pixels (default 512)"
    )
    parser.add_argument("--maps", action="store_true", help="also write _normal, _depth and _light PNGs")
    parser.set_defaults(run=run)


def build_params(model: FaceModel, args: argparse.Namespace) -> FaceParams:
    """FaceParams framing the head for ``args.size`` with the requested expression, pose and light."""
    params = portrait_params(model, args.size, args.light)
    identity = params.identity
    if args.identity_seed is not None:
        generator = torch.Generator().manual_seed(args.identity_seed)
        identity = torch.randn(identity.shape, generator=generator)
    angles = torch.tensor([[math.radians(args.pitch), math.radians(args.yaw), math.radians(args.roll)]])
    return params.replace(
        identity=identity,
        expression=model.expression_vector(parse_weights(args.expression))[None],
        rotation=angles,
    )


def _on_background(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return image * mask + BACKGROUND * (1.0 - mask)


def write_maps(maps: RenderMaps, output: Path) -> list[Path]:
    """Write the normal, depth (near = bright) and light (scaled to its maximum) maps beside ``output``."""
    mask = maps.mask[0]
    depth = maps.depth[0]
    face = depth[mask > 0]
    near, far = (float(face.min()), float(face.max())) if face.numel() else (0.0, 1.0)
    depth_image = (far - depth) / max(far - near, 1e-6) * 0.8 + 0.2
    stem = output.with_suffix("")
    return [
        save_png(Path(f"{stem}_normal.png"), (maps.normal[0] * 0.5 + 0.5) * mask),
        save_png(Path(f"{stem}_depth.png"), depth_image * mask),
        save_png(Path(f"{stem}_light.png"), maps.light[0] * mask / maps.light[0].max().clamp(min=1e-6)),
    ]


def run(args: argparse.Namespace) -> int:
    if args.size < 16:
        raise ValueError(f"--size must be at least 16 pixels, got {args.size}")
    model = FaceModel.load()
    params = build_params(model, args)
    with torch.no_grad():
        maps = render_face(model, params, args.size, args.size)
    written = [save_png(args.output, _on_background(maps.image[0], maps.mask[0]))]
    if args.maps:
        written += write_maps(maps, args.output)
    for path in written:
        print(f"wrote {path}")
    return 0
