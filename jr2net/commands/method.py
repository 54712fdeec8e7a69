"""The reconstruction method options shared by ``reconstruct``, ``live`` and ``serve``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from jr2net.estimators import FrameEstimator, RecNetEstimator, RecNetPredictor
from jr2net.face_model import FaceModel
from jr2net.realtime.stage_modes import STAGE_MODES


@dataclass(frozen=True)
class MethodChoice:
    """Which estimator a reconstructor uses, as a value that pickles: called with the face model
    (in a stage process, say), it builds the estimator."""

    method: str = "fit"
    runtime: str = "torch"
    weights: Path | None = None

    def __call__(self, model: FaceModel) -> FrameEstimator | None:
        """RecNet's estimator for ``recnet`` (with this runtime and weights); None for the fitter.

        onnxruntime gets as many threads as torch has in this process (one in a live stage).
        """
        if self.method != "recnet":
            return None
        from jr2net.engines.runners import make_runner

        net, runner = make_runner(self.runtime, self.weights, threads=torch.get_num_threads())
        return RecNetEstimator(RecNetPredictor(net, runner, model))


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """``--method fit|recnet``, ``--runtime torch|onnx`` and ``--weights FILE``."""
    parser.add_argument(
        "--method",
        choices=("fit", "recnet"),
        default="fit",
        help="fit: the landmark fitter (default); recnet: the RecNet network on aligned crops",
    )
    parser.add_argument(
        "--runtime",
        choices=("torch", "onnx", "tensorrt"),
        default="torch",
        help="how RecNet runs (--method recnet); tensorrt needs an NVIDIA GPU and the trt extra",
    )
    parser.add_argument(
        "--weights", type=Path, help="RecNet weights (default: $JR2NET_RECNET or the shipped small variant)"
    )


def add_stage_mode_argument(parser: argparse.ArgumentParser) -> None:
    """``--stages process|thread`` for the live commands."""
    parser.add_argument(
        "--stages",
        choices=STAGE_MODES,
        default="process",
        help="run reconstruct and reenact each in its own process (default: faster on several cores) "
        "or in threads of this one (quicker start)",
    )


def estimator(model: FaceModel, args: argparse.Namespace) -> FrameEstimator | None:
    """RecNet's estimator for ``--method recnet`` (weights and runtime from the arguments), else None."""
    return method_choice(args)(model)


def method_choice(args: argparse.Namespace) -> MethodChoice:
    """The method options of parsed arguments, as a value a stage process can be handed."""
    return MethodChoice(args.method, args.runtime, args.weights)
