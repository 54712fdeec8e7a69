"""``jr2net serve``: the web page and WebRTC endpoint for live reenactment (loopback by default);
with ``--ray``, the front door of calls that each run on a Ray cluster's node."""

from __future__ import annotations

import argparse
import sys

from aiohttp import web

from jr2net.commands.method import add_method_arguments, add_stage_mode_argument, method_choice
from jr2net.commands.refiner import REFINERS, RefinerChoice, add_refiner_arguments, refiner_choice
from jr2net.face_model import FaceModel
from jr2net.realtime.ray_loopback import keep_ray_on_loopback
from jr2net.realtime.server import DEFAULT_MIN_FPS, ReenactmentServer
from jr2net.realtime.threads import configure_live_threads, live_onnx_threads
from jr2net.realtime.webrtc import is_loopback, limit_ice_to_loopback
from jr2net.sources import load_source

SESSION_CPUS = 1.0
FILL = "fill"
WARM_CALLS = FILL


def warm_calls(text: str) -> int | str:
    """``--warm-calls``: a number of warm actors (0 or more), or :data:`FILL` (as many as the
    cluster has room for)."""
    if text == FILL:
        return FILL
    try:
        count = int(text)
    except ValueError:
        count = -1
    if count < 0:
        raise argparse.ArgumentTypeError(f"expected a number of actors (0 or more) or {FILL!r}, got {text!r}")
    return count


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
        help=(
            "refuse a caller (503, with the reason on the page) when taking them would bring every "
            f"caller below this many fps (default {DEFAULT_MIN_FPS:g}; 0 takes everyone; not with --ray)"
        ),
    )
    parser.add_argument(
        "--hosts",
        type=int,
        help="processes per stage in the shared worker pool (default: sized to the machine's cores; "
        "not with --ray)",
    )
    parser.add_argument(
        "--ray",
        metavar="auto|local|ADDRESS",
        help="run each call in its own actor on a Ray cluster (needs jr2net[ray]): 'auto' the cluster "
        "this machine runs or joined (ray start), 'local' a private one on 127.0.0.1 that ends with "
        "the server, or a head's HOST:PORT",
    )
    parser.add_argument(
        "--session-cpus",
        type=float,
        help=f"with --ray: CPUs each call declares, fractions allowed (default {SESSION_CPUS:g})",
    )
    parser.add_argument(
        "--session-gpus",
        type=float,
        help="with --ray: GPUs each call declares, e.g. 0.25 for four calls a GPU (default 0)",
    )
    parser.add_argument(
        "--warm-calls",
        type=warm_calls,
        help=f"with --ray: session actors kept started and warm for the next callers where the cluster "
        f"has room, each holding a session's resources: a number (0: each call starts its own, "
        f"seconds slower) or {FILL} (the default: all there is room for, so every call finds one and a "
        "replacement starts as a call ends rather than beside the calls as they start)",
    )
    parser.add_argument(
        "--echo",
        action="store_true",
        help="send each camera back unprocessed (the transport floor, for benchmarks)",
    )
    parser.set_defaults(run=run)


def renderers(args: argparse.Namespace) -> dict[str, RefinerChoice]:
    """The refiners a caller may pick: the chosen one (checked: a clear error now if it cannot be
    built), and the others that can be (DCNet only with readable weights, said when it is not),
    each prepared (:meth:`RefinerChoice.prepare`) so no caller waits for first-use work."""
    chosen = refiner_choice(args, live_onnx_threads())
    offered = {chosen.refiner: chosen}
    for name in REFINERS:
        if name in offered:
            continue
        other = RefinerChoice(name, args.dcnet_runtime, args.dcnet_weights, live_onnx_threads())
        try:
            other.check()
        except (FileNotFoundError, ValueError) as error:
            print(f"the {name} refiner is not offered: {error}", file=sys.stderr)
            continue
        offered[name] = other
    for choice in offered.values():
        choice.prepare()
    return offered


def run(args: argparse.Namespace) -> int:
    if args.ray is not None:
        return run_on_ray(args)
    if any(option is not None for option in (args.session_cpus, args.session_gpus, args.warm_calls)):
        raise ValueError("--session-cpus, --session-gpus and --warm-calls are for calls on Ray: add --ray")
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
        min_fps=DEFAULT_MIN_FPS if args.min_fps is None else args.min_fps,
        hosts=args.hosts,
    )
    if is_loopback(args.host):
        limit_ice_to_loopback()
    print(f"open http://{args.host}:{args.port}/")
    web.run_app(server.app(), host=args.host, port=args.port, print=None)
    return 0


def _warm_actors(option: int | str | None) -> int | None:
    """The front door's ``warm`` for ``--warm-calls`` (None for :data:`FILL`; :data:`WARM_CALLS`
    when not given)."""
    chosen = WARM_CALLS if option is None else option
    return None if chosen == FILL else int(chosen)


def run_on_ray(args: argparse.Namespace) -> int:
    """``serve --ray``: this process is the front door (page, uploads, signalling), every call an
    actor that Ray places on a node with the session's resources free."""
    if args.min_fps is not None or args.hosts is not None:
        raise ValueError(
            "--min-fps and --hosts size the single server; with --ray a call is taken when a node has "
            "its --session-cpus and --session-gpus free, and runs one host per stage of its own"
        )
    if args.ray == "local":
        keep_ray_on_loopback()
    try:
        from jr2net.realtime.ray_cluster import SessionResources, connect
        from jr2net.realtime.ray_server import RayFrontDoor
    except ModuleNotFoundError as error:
        if error.name != "ray":
            raise
        raise ValueError(
            'serve --ray needs Ray on every machine of the cluster: pip install "jr2net[ray]"'
        ) from error
    resources = SessionResources(
        SESSION_CPUS if args.session_cpus is None else args.session_cpus, args.session_gpus or 0.0
    )
    try:
        connect(args.ray)
    except ConnectionError as error:
        raise ConnectionError(
            f"no Ray cluster at --ray {args.ray} ({error}); start one with `ray start --head`, or "
            "serve on a private one with --ray local"
        ) from error
    configure_live_threads()
    model = FaceModel.load()
    source = load_source(model, args.source, args.size)
    offered = renderers(args)
    door = RayFrontDoor(
        model,
        source,
        args.size,
        resources,
        method=method_choice(args),
        stage_mode=args.stages,
        renderers=offered,
        default_renderer=args.refiner,
        echo=args.echo,
        loopback_ice=is_loopback(args.host),
        warm=_warm_actors(args.warm_calls),
    )
    app = door.app()
    if args.ray == "local":  # the private cluster ends with this process: its calls end first, cleanly
        app.on_shutdown.append(lambda _: door.hang_up_all())
    print(f"open http://{args.host}:{args.port}/  (calls on Ray: {resources} each)")
    web.run_app(app, host=args.host, port=args.port, print=None)
    return 0
