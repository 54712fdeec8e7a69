"""``jr2net serve``: the web page and WebRTC endpoint for live reenactment (loopback by default)."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from jr2net.commands.method import add_method_arguments, add_stage_mode_argument, method_choice
from jr2net.commands.refiner import REFINERS, RefinerChoice, add_refiner_arguments, refiner_choice
from jr2net.face_model import FaceModel
from jr2net.realtime.server import DEFAULT_MIN_FPS, ReenactmentServer
from jr2net.realtime.threads import configure_live_threads
from jr2net.realtime.webrtc import is_loopback, limit_ice_to_loopback
from jr2net.sources import load_source


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the live reenactment web page and WebRTC endpoint",
        description="A browser sends its camera over WebRTC and sees the reenacted stream next to it.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    parser.add_argument("--source", default="model", help="default source: a photo or clip, or 'model'")
    parser.add_argument("--size", type=int, default=256, help="working size of the source (default 256)")
    add_method_arguments(parser)
    add_refiner_arguments(parser)
    add_stage_mode_argument(parser)
    parser.add_argument(
        "--min-fps",
        type=float,
        default=DEFAULT_MIN_FPS,
        help=(
            "refuse a caller (503, with the reason on the page) when taking them would bring every "
            f"caller below this many fps (default {DEFAULT_MIN_FPS:g}; 0 takes everyone)"
        ),
    )
    parser.add_argument(
        "--hosts",
        type=int,
        help="processes per stage in the shared worker pool (default: sized to the machine's cores)",
    )
    parser.add_argument(
        "--echo",
        action="store_true",
        help="send each camera back unprocessed (the transport floor, for benchmarks)",
    )
    parser.set_defaults(run=run)


def renderers(args: argparse.Namespace) -> dict[str, RefinerChoice]:
    """The refiners a caller may pick: the chosen one (checked: a clear error now if it cannot be
    built), and the others that can be (DCNet only with readable weights, said when it is not)."""
    chosen = refiner_choice(args)
    offered = {chosen.refiner: chosen}
    for name in REFINERS:
        if name in offered:
            continue
        other = RefinerChoice(name, args.dcnet_runtime, args.dcnet_weights)
        try:
            other.check()
        except (FileNotFoundError, ValueError) as error:
            print(f"the {name} refiner is not offered: {error}", file=sys.stderr)
            continue
        offered[name] = other
    return offered


def run(args: argparse.Namespace) -> int:
    configure_live_threads()
    model = FaceModel.load()
    source = load_source(model, args.source, args.size)
    server = ReenactmentServer(
        model,
        source,
        args.size,
        echo=args.echo,
        method=method_choice(args),
        stage_mode=args.stages,
        renderers=renderers(args),
        default_renderer=args.refiner,
        min_fps=args.min_fps,
        hosts=args.hosts,
    )
    if is_loopback(args.host):
        limit_ice_to_loopback()
    print(f"open http://{args.host}:{args.port}/")
    web.run_app(server.app(), host=args.host, port=args.port, print=None)
    return 0
