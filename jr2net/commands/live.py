"""``jr2net live``: a camera (or a video file standing in for one) drives a face, live."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from jr2net.commands.method import add_method_arguments, add_stage_mode_argument, method_choice
from jr2net.commands.refiner import add_refiner_arguments, note_unrefined, refiner_choice
from jr2net.commands.render import parse_weights
from jr2net.face_model import FaceModel
from jr2net.lighting import LIGHT_PRESETS
from jr2net.realtime.pipeline import Pipeline, PipelineStats
from jr2net.realtime.reenactment import open_reenactment
from jr2net.realtime.reenactment_hosts import planning_stage, reenactment_pool
from jr2net.realtime.sinks import SINKS, FrameSink
from jr2net.realtime.sources import CameraSource, FileSource, FrameSource, OpenCVCameraSource
from jr2net.realtime.threads import configure_live_threads, live_onnx_threads
from jr2net.realtime.worker_pool import PooledSession
from jr2net.reenact import Controls
from jr2net.sources import computing_source, load_source


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "live",
        help="drive a face from a camera, into a virtual camera and/or a file",
        description=(
            "Live reenactment: camera frames are tracked, reconstructed and reenacted onto the source, "
            "frames are dropped (never queued) when a stage falls behind, and per-stage latency is reported."
        ),
    )
    feed = parser.add_mutually_exclusive_group(required=True)
    feed.add_argument(
        "--camera",
        help=(
            "camera: an OpenCV index (0, 1, ...; any platform), or a device for PyAV: /dev/video0 (Linux), "
            "'video=Name' (Windows), or an avfoundation index with --camera-format avfoundation (macOS)"
        ),
    )
    feed.add_argument(
        "--input", type=Path, help="a video file played at its frame rate, as if it were a camera"
    )
    parser.add_argument(
        "--camera-format",
        help="open --camera with PyAV in this input format (default: v4l2 / avfoundation / dshow)",
    )
    parser.add_argument("--source", default="model", help="source photo or clip, or 'model' (default)")
    parser.add_argument("--size", type=int, default=256, help="working size of the source (default 256)")
    parser.add_argument("--vcam", action="store_true", help="send the result to a virtual camera")
    parser.add_argument(
        "--vcam-backend", choices=["pyvirtualcam", "fake"], default="pyvirtualcam", help=argparse.SUPPRESS
    )
    parser.add_argument("-o", "--output", type=Path, help="also record the result to this MP4")
    parser.add_argument(
        "--set", action="append", default=[], metavar="NAME=W", help="override an expression weight"
    )
    parser.add_argument("--light", choices=sorted(LIGHT_PRESETS), help="force a light preset")
    parser.add_argument("--max-frames", type=int, help="stop after this many frames")
    parser.add_argument("--stats", type=Path, help="write the run's latency statistics here (JSON)")
    add_method_arguments(parser)
    add_refiner_arguments(parser)
    add_stage_mode_argument(parser)
    parser.set_defaults(run=run)


def _source(args: argparse.Namespace) -> FrameSource:
    """The feed: a file played as a camera, an OpenCV camera index, or a PyAV camera device."""
    if args.input is not None:
        return FileSource(args.input, paced=True, max_frames=args.max_frames)
    if args.camera.isdigit() and args.camera_format is None:
        return OpenCVCameraSource(int(args.camera), max_frames=args.max_frames)
    return CameraSource(args.camera, args.camera_format, max_frames=args.max_frames)


def run(args: argparse.Namespace) -> int:
    configure_live_threads()
    if not args.vcam and args.output is None:
        raise ValueError("nowhere to send the result: give --vcam and/or -o FILE")
    model = FaceModel.load()
    source = computing_source(model, load_source(model, args.source, args.size), args.refiner)
    note_unrefined(args.source)
    height, width = source.picture.shape[-2:]
    frames = _source(args)
    sinks: list[FrameSink] = []
    if args.vcam:
        sinks.append(SINKS["vcam"](width, height, backend=args.vcam_backend))
    if args.output is not None:
        sinks.append(SINKS["file"](args.output, width, height))
    controls = Controls(expression=parse_weights(args.set), light=args.light)
    renderer = refiner_choice(args, live_onnx_threads())
    renderer.prepare()
    with reenactment_pool(args.stages, hosts=1) as pool:
        planner = planning_stage(args.refiner)
        session = open_reenactment(pool, "live", source, method_choice(args), controls, renderer, planner)
        pipeline = Pipeline(frames, session.stages, sinks)
        stats = asyncio.run(_run_until_interrupted(pipeline, session))
    summary = stats.summary()
    print(json.dumps(summary, indent=1))
    if args.stats is not None:
        args.stats.write_text(json.dumps(summary, indent=1) + "\n")
    if stats.frames_out == 0:
        print("no frame came through", file=sys.stderr)
        return 1
    return 0


async def _run_until_interrupted(pipeline: Pipeline, session: PooledSession) -> PipelineStats:
    """Run until the feed ends or Ctrl-C; on a terminal, ``r`` + Enter recalibrates."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, pipeline.stop)
    if sys.stdin.isatty():
        print("press r and Enter to take the current frame as the neutral reference", file=sys.stderr)
        loop.add_reader(sys.stdin, lambda: key_command(sys.stdin.readline(), session))
    try:
        return await pipeline.run()
    finally:
        if sys.stdin.isatty():
            loop.remove_reader(sys.stdin)


def _report_recalibration(done: asyncio.Future) -> None:
    error = done.exception()
    if error is None:
        print("recalibrated: the next frame is the new neutral", file=sys.stderr)
    else:
        print(f"could not recalibrate: {error}", file=sys.stderr)


def key_command(line: str, session: PooledSession) -> None:
    """Carry out a key typed on the terminal: ``r`` recalibrates (the next driving frame becomes
    the neutral reference of relative motion; in a worker thread, the event loop never waits for
    the stages); anything else is named and ignored. Needs a running event loop."""
    key = line.strip().lower()
    if key == "r":
        done = asyncio.get_running_loop().run_in_executor(None, session.control, "recalibrate")
        done.add_done_callback(_report_recalibration)
    elif key:
        print(f"unknown key {key!r}: r recalibrates, Ctrl-C stops", file=sys.stderr)
