"""The ``--refiner`` options shared by ``reenact``, ``live`` and ``serve``: how the warp becomes
the output frame, the geometric renderer or the learned DCNet."""

from __future__ import annotations

import argparse
from pathlib import Path

from jr2net.engines.dcnet_runners import DCNET_RUNTIMES
from jr2net.engines.refiners import DEFAULT_REFINER, REFINERS, RefinerChoice
from jr2net.nets.dcnet_checkpoint import default_dcnet_weights


def add_refiner_arguments(parser: argparse.ArgumentParser) -> None:
    """``--refiner dcnet|geometric``, ``--dcnet-runtime onnx|torch`` and ``--dcnet-weights FILE``."""
    parser.add_argument(
        "--refiner",
        choices=REFINERS,
        default=DEFAULT_REFINER,
        help=f"how the warped source becomes the frame: dcnet (the learned generator) or geometric "
        f"(relighting and a feathered paste); default {DEFAULT_REFINER}",
    )
    parser.add_argument(
        "--dcnet-runtime", choices=DCNET_RUNTIMES, default="onnx", help="how DCNet runs (default onnx)"
    )
    parser.add_argument(
        "--dcnet-weights",
        type=Path,
        help=f"DCNet weights (default: $JR2NET_DCNET or {default_dcnet_weights().name}, shipped)",
    )


def refiner_choice(args: argparse.Namespace, threads: int = 0) -> RefinerChoice:
    """The refiner options of parsed arguments, checked (see :meth:`RefinerChoice.check`); DCNet
    on ``threads`` onnxruntime threads (0: torch's)."""
    choice = RefinerChoice(args.refiner, args.dcnet_runtime, args.dcnet_weights, threads)
    choice.check()
    return choice
