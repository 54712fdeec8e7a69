"""The ``--refiner`` options shared by ``reenact``, ``live`` and ``serve``: how the warp becomes
the output frame, the geometric renderer or the learned DCNet."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import torch

from jr2net.dcnet_renderer import DCNetRenderer
from jr2net.engines.dcnet_onnx import export_crop_sizes
from jr2net.engines.dcnet_runners import DCNET_RUNTIMES, DCNetRunnersBySize
from jr2net.nets.dcnet_checkpoint import default_dcnet_weights, load_dcnet
from jr2net.reenact import FrameRenderer, GeometricRenderer
from jr2net.sources import MODEL_SOURCE

REFINERS = ("dcnet", "geometric")
DEFAULT_REFINER = "dcnet"  # ahead of the geometric path on the quality benchmark (README, "--refiner")


@dataclass(frozen=True)
class RefinerChoice:
    """Which frame renderer a reenactor uses, as a value that pickles: called (in a stage
    process, say), it builds the renderer; DCNet's onnxruntime gets ``threads`` threads (0: as
    many as torch has where it is built)."""

    refiner: str = DEFAULT_REFINER
    runtime: str = "onnx"
    weights: Path | None = None
    threads: int = 0

    def __post_init__(self) -> None:
        if self.refiner not in REFINERS:
            raise ValueError(f"unknown refiner {self.refiner!r}; choose from {REFINERS}")
        if self.runtime not in DCNET_RUNTIMES:
            raise ValueError(f"unknown DCNet runtime {self.runtime!r}; choose from {DCNET_RUNTIMES}")

    def check(self) -> None:
        """Fail now, with the reason, when the refiner cannot be built (DCNet weights missing or
        unreadable), instead of inside a stage once the call has started."""
        if self.refiner == "dcnet":
            load_dcnet(self.weights)

    def prepare(self) -> None:
        """First-use work done now, not during a call: DCNet on onnxruntime exports its model for
        every crop size (cached on disk by the weights' hash: only the first start after new
        weights pays, under a second a size)."""
        if self.refiner == "dcnet" and self.runtime == "onnx":
            export_crop_sizes(self.weights)

    def __call__(self) -> FrameRenderer:
        if self.refiner == "geometric":
            return GeometricRenderer()
        threads = self.threads or torch.get_num_threads()
        return DCNetRenderer(DCNetRunnersBySize(self.runtime, self.weights, threads=threads))


def add_refiner_arguments(parser: argparse.ArgumentParser) -> None:
    """``--refiner dcnet|geometric``, ``--dcnet-runtime onnx|torch`` and ``--dcnet-weights FILE``."""
    parser.add_argument(
        "--refiner",
        choices=REFINERS,
        default=DEFAULT_REFINER,
        help=f"how the warped source becomes the frame: dcnet (the learned generator) or geometric "
        f"(relighting and a feathered paste); default {DEFAULT_REFINER}. The built-in avatar is drawn "
        "from the face model instead",
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


def note_unrefined(source: str) -> None:
    """Tell the user on stderr when ``source`` is the built-in avatar, which is drawn from the face
    model: ``--refiner`` does not change it."""
    if source == MODEL_SOURCE:
        print(
            "the built-in avatar is drawn from the face model; --refiner applies to photos and clips",
            file=sys.stderr,
        )
