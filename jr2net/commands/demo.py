"""``jr2net demo``: the live pipeline end to end on built-in media, the main job of ``setup.sh``.

A driving clip is rendered from the face model (:mod:`jr2net.driving_clip`: an expression and
head-turn sequence), played as if it were a camera through the live pipeline (tracking,
reconstruction, reenactment in the shared worker pool, encoding) onto the built-in avatar (drawn
from the face model at each frame, so no refiner is involved), and written side by side
(driving | result) to an MP4 that plays in real time. The run's fps and per-stage latency are
printed. No third-party media is needed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from jr2net.commands.method import add_stage_mode_argument
from jr2net.driving_clip import render_driving_clip
from jr2net.face_model import FaceModel
from jr2net.media import iter_video_frames
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.pipeline import Pipeline
from jr2net.realtime.reenactment import open_reenactment, warm_up
from jr2net.realtime.reenactment_hosts import reenactment_pool
from jr2net.realtime.sinks import FileSink
from jr2net.realtime.sources import FileSource
from jr2net.sources import MODEL_SOURCE, load_source

CLIP_SIZE = 320


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run the live pipeline on a built-in driving clip and avatar (no media needed)",
        description=__doc__.split("\n\n")[1],
    )
    parser.add_argument("-o", "--output", type=Path, default=Path("out/demo.mp4"), help="(out/demo.mp4)")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the driving clip (default 5)")
    parser.add_argument("--size", type=int, default=256, help="working size of the avatar (default 256)")
    parser.add_argument("--stats", type=Path, help="also write the run's statistics here (JSON)")
    add_stage_mode_argument(parser)
    parser.set_defaults(run=run)


class SideBySideSink:
    """Writes each result beside the driving frame it came from (found by its index) to an MP4.

    Args:
        path: the MP4.
        driving: N (H, W, 3) RGB uint8 driving frames, by index.
        result_width, result_height: the results' size; each is scaled to the driving's height.
    """

    blocking = True

    def __init__(self, path: Path, driving: list[np.ndarray], result_width: int, result_height: int) -> None:
        self.driving = driving
        height, width = driving[0].shape[:2]
        self.result_size = (round(result_width * height / result_height), height)
        self._file = FileSink(path, width + self.result_size[0], height)

    def send(self, frame: StagedFrame) -> None:
        if frame.image is None:
            raise ValueError(f"frame {frame.index} reached the side-by-side sink without pixels")
        result = np.asarray(Image.fromarray(frame.image).resize(self.result_size, Image.BILINEAR))
        self._file.send(replace(frame, image=np.concatenate([self.driving[frame.index], result], axis=1)))

    def close(self) -> None:
        self._file.close()


def run(args: argparse.Namespace) -> int:
    model = FaceModel.load()
    source = load_source(model, MODEL_SOURCE, args.size)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        clip = render_driving_clip(model, Path(folder) / "driving.mp4", CLIP_SIZE, args.seconds)
        driving = [image for _, _, image in iter_video_frames(clip)]
        height, width = source.image.shape[-2:]
        print(
            f"live pipeline: {len(driving)} driving frames onto the built-in avatar "
            "(drawn from the face model)",
            file=sys.stderr,
        )
        with reenactment_pool(args.stages, hosts=1) as pool:
            warm_up(pool, source)  # first-use costs paid before the clip, as `serve` does
            session = open_reenactment(pool, "demo", source)
            sink = SideBySideSink(args.output, driving, width, height)  # the pipeline closes it
            stats = asyncio.run(Pipeline(FileSource(clip, paced=True), session.stages, [sink]).run())
    summary = stats.summary()
    if args.stats is not None:
        args.stats.write_text(json.dumps(summary, indent=1) + "\n")
    stages = ", ".join(
        f"{name} {value['median_ms']:.1f} ms (p99 {value['p99_ms']:.1f})"
        for name, value in summary["latency"].items()
    )
    print(
        f"wrote {args.output}: {summary['frames_out']} of {summary['frames_in']} frames reenacted, "
        f"{summary['fps']:.1f} fps; per stage, median: {stages}"
    )
    return 0 if stats.frames_out > 0 else 1
