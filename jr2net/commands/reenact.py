"""``jr2net reenact --source face.jpg --driving clip.mp4 -o out.mp4``: a driving video animates a face."""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import av
import numpy as np
from PIL import Image
from tqdm import tqdm

from jr2net.commands.refiner import add_refiner_arguments, note_unrefined, refiner_choice
from jr2net.commands.render import parse_weights
from jr2net.face_model import FaceModel
from jr2net.image_io import to_uint8
from jr2net.lighting import LIGHT_PRESETS
from jr2net.media import VideoWriter, iter_video_frames, mux_audio, probe_video, remember_frames
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import LIGHT_MODES, MOTIONS, Controls, Reenactor
from jr2net.sources import computing_source, load_source


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reenact",
        help="animate a source face (a photo, or the built-in model) with a driving video",
        description=(
            "Reconstruct the source and every driving frame, transfer the driving expression and head "
            "motion onto the source, and write a video with the driving's frame rate, frame count and audio."
        ),
    )
    parser.add_argument(
        "--source", required=True, help="source photo or short clip, or 'model' for the built-in avatar"
    )
    parser.add_argument("--driving", type=Path, required=True, help="driving video")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output MP4")
    parser.add_argument(
        "--motion",
        choices=MOTIONS,
        default="relative",
        help="driving motion relative to its first frame (default) or absolute",
    )
    parser.add_argument(
        "--light",
        default="source",
        choices=[*LIGHT_MODES, *sorted(LIGHT_PRESETS)],
        help="keep the source's light (default), take the driving's, or force a preset",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=W",
        help="override an expression weight, e.g. jawOpen=0.5",
    )
    parser.add_argument("--pitch", type=float, help="override the head pitch (degrees)")
    parser.add_argument("--yaw", type=float, help="override the head yaw (degrees)")
    parser.add_argument("--roll", type=float, help="override the head roll (degrees)")
    parser.add_argument("--side-by-side", action="store_true", help="write driving | source | result")
    parser.add_argument(
        "--size",
        type=int,
        default=512,
        help="working size: the built-in avatar's, and what larger photos are scaled down to (default 512)",
    )
    parser.add_argument("--max-frames", type=int, help="stop after this many driving frames")
    add_refiner_arguments(parser)
    parser.set_defaults(run=run)


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    width = round(image.shape[1] * height / image.shape[0])
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR))


def run(args: argparse.Namespace) -> int:
    info = probe_video(args.driving)
    renderer = refiner_choice(args)()
    model = FaceModel.load()
    controls = Controls(
        expression=parse_weights(args.set),
        pitch=args.pitch,
        yaw=args.yaw,
        roll=args.roll,
        light=args.light if args.light in LIGHT_PRESETS else None,
    )
    source = computing_source(model, load_source(model, args.source, args.size), args.refiner)
    note_unrefined(args.source)
    source_image = to_uint8(source.picture[0])
    light_mode = args.light if args.light in LIGHT_MODES else "source"
    reenactor = Reenactor(model, source, args.motion, light_mode, renderer)
    height, width = source_image.shape[:2]
    if args.side_by_side:
        width = _fit_height(np.zeros((info.height, info.width, 3), np.uint8), height).shape[1] + 2 * width
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(f".{args.output.stem}.partial.mp4")
    with_audio = args.output.with_name(f".{args.output.stem}.audio.mp4")
    try:
        written, missing = _reenact_frames(args, info, reenactor, controls, source_image, partial, width)
        muxed = False
        if info.has_audio:
            try:
                muxed = mux_audio(partial, args.driving, with_audio)
            except av.FFmpegError as error:
                print(
                    f"the driving's audio could not be copied ({error}); writing the video without it",
                    file=sys.stderr,
                )
        (with_audio if muxed else partial).replace(args.output)
    finally:
        partial.unlink(missing_ok=True)
        with_audio.unlink(missing_ok=True)
    print(
        f"{written} frames ({missing} driving frames without a face kept the last pose); wrote {args.output}"
    )
    return 0


def _reenact_frames(
    args: argparse.Namespace,
    info: object,
    reenactor: Reenactor,
    controls: Controls,
    source_image: np.ndarray,
    partial: Path,
    width: int,
) -> tuple[int, int]:
    frames = itertools.islice(iter_video_frames(args.driving), args.max_frames)
    images: dict[int, np.ndarray] = {}
    total = min(info.frame_count or 0, args.max_frames or 1 << 62) or None
    last = None
    missing = 0
    with (
        Reconstructor(reenactor.model, mode="video") as reconstructor,
        VideoWriter(partial, info.fps, width, source_image.shape[0]) as writer,
    ):
        for result in tqdm(
            reconstructor.video(remember_frames(frames, images)), total=total, unit="frame", desc="reenacting"
        ):
            driving = images.pop(result.index)
            if result.params is not None:
                last = reenactor(result.params, controls, result.tracking.landmarks)
            else:
                missing += 1
            frame = source_image if last is None else last.image
            if args.side_by_side:
                frame = np.concatenate([_fit_height(driving, frame.shape[0]), source_image, frame], axis=1)
            writer.write(frame)
        if missing:
            print(f"{missing} driving frames had no face", file=sys.stderr)
        return writer.frames_written, missing
