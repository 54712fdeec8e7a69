"""``jr2net reconstruct INPUT -o DIR``: FaceParams per frame of an image or a video, with an overlay."""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from jr2net.commands.method import add_method_arguments, estimator
from jr2net.face_model import FaceModel
from jr2net.media import (
    MediaError,
    VideoWriter,
    is_image,
    iter_video_frames,
    probe_video,
    read_image,
    remember_frames,
)
from jr2net.obj_io import write_obj
from jr2net.reconstruct import FrameResult, Reconstructor, landmarks68_2d, overlay
from jr2net.smoothing import OneEuroConfig


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reconstruct",
        help="reconstruct FaceParams from an image or a video",
        description=(
            "Track the face with MediaPipe and fit the ICT model per frame. Writes DIR/params.json "
            "(FaceParams and the 68 landmarks in pixels per frame), DIR/mesh.obj for an image, and an "
            "overlay for a person to check (overlay.png or overlay.mp4)."
        ),
    )
    parser.add_argument("input", type=Path, help="an image or a video file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--identity-frames", type=int, default=5, help="video frames the identity is fitted from"
    )
    parser.add_argument("--max-frames", type=int, help="stop after this many video frames")
    parser.add_argument(
        "--no-smooth", action="store_true", help="no One-Euro smoothing of expression and pose"
    )
    parser.add_argument(
        "--min-cutoff", type=float, default=OneEuroConfig.min_cutoff, help="One-Euro cut-off at rest (Hz)"
    )
    parser.add_argument("--beta", type=float, default=OneEuroConfig.beta, help="One-Euro speed coefficient")
    parser.add_argument("--no-overlay", action="store_true", help="skip the overlay image or video")
    add_method_arguments(parser)
    parser.set_defaults(run=run)


def frame_record(model: FaceModel, result: FrameResult) -> dict:
    """One ``frames`` entry of params.json."""
    if result.params is None:
        return {"index": result.index, "face": False, "params": None, "landmarks68_2d": None}
    height, width = result.tracking.image_size
    params = result.params.replace(albedo=None)
    with torch.no_grad():
        points = landmarks68_2d(model, params, height, width)
    return {
        "index": result.index,
        "face": True,
        "params": params.to_json(),
        "landmarks68_2d": points.round(decimals=3).tolist(),
    }


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, separators=(",", ":")) + "\n")


def _reconstruct_image(model: FaceModel, args: argparse.Namespace) -> int:
    image = read_image(args.input)
    with Reconstructor(model, mode="image", estimator=estimator(model, args)) as reconstructor:
        result = reconstructor.image(image)
    args.output.mkdir(parents=True, exist_ok=True)
    _write_json(
        args.output / "params.json",
        {"source": str(args.input), "method": args.method, "frames": [frame_record(model, result)]},
    )
    written = ["params.json"]
    if result.params is None:
        print(f"no face found in {args.input}", file=sys.stderr)
    else:
        with torch.no_grad():
            vertices = model(result.params.identity, result.params.expression)[0].numpy()
        colours = result.params.albedo[0].numpy()
        write_obj(args.output / "mesh.obj", vertices, model.triangles.numpy(), vertex_colours=colours)
        written.append("mesh.obj")
        if not args.no_overlay:
            from PIL import Image

            Image.fromarray(overlay(model, result.params, image)).save(args.output / "overlay.png")
            written.append("overlay.png")
    print(f"wrote {', '.join(str(args.output / name) for name in written)}")
    return 0


def _reconstruct_video(model: FaceModel, args: argparse.Namespace) -> int:
    info = probe_video(args.input)
    total = min(info.frame_count or 0, args.max_frames or 1 << 62) or None
    smoothing = None if args.no_smooth else OneEuroConfig(min_cutoff=args.min_cutoff, beta=args.beta)
    args.output.mkdir(parents=True, exist_ok=True)
    records = []
    frames = itertools.islice(iter_video_frames(args.input), args.max_frames)
    images: dict[int, np.ndarray] = {}
    writer = (
        None
        if args.no_overlay
        else VideoWriter(args.output / "overlay.mp4", info.fps, info.width, info.height)
    )
    with Reconstructor(
        model, identity_frames=args.identity_frames, smoothing=smoothing, estimator=estimator(model, args)
    ) as reconstructor:
        for result in tqdm(
            reconstructor.video(remember_frames(frames, images)),
            total=total,
            unit="frame",
            desc="reconstructing",
        ):
            records.append(frame_record(model, result))
            image = images.pop(result.index)
            if writer is not None:
                writer.write(image if result.params is None else overlay(model, result.params, image))
        missing = reconstructor.frames_without_face
    if writer is not None:
        writer.close()
    data = {"source": str(args.input), "method": args.method, "fps": float(info.fps), "frames": records}
    _write_json(args.output / "params.json", data)
    print(f"{len(records)} frames, {missing} without a face; wrote {args.output / 'params.json'}")
    if writer is not None:
        print(f"wrote {writer.path}")
    return 0


def run(args: argparse.Namespace) -> int:
    if not args.input.is_file():
        raise MediaError(f"{args.input}: no such file")
    model = FaceModel.load()
    if is_image(args.input):
        return _reconstruct_image(model, args)
    return _reconstruct_video(model, args)
