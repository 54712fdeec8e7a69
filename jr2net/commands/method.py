"""The reconstruction method options shared by ``reconstruct``, ``live`` and ``serve``."""

from __future__ import annotations

import argparse
from pathlib import Path

from jr2net.estimators import FrameEstimator, RecNetEstimator, RecNetPredictor
from jr2net.face_model import FaceModel


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


def estimator(model: FaceModel, args: argparse.Namespace) -> FrameEstimator | None:
    """RecNet's estimator for ``--method recnet`` (weights and runtime from the arguments), else None."""
    if args.method != "recnet":
        return None
    from jr2net.engines.runners import make_runner

    net, runner = make_runner(args.runtime, args.weights)
    return RecNetEstimator(RecNetPredictor(net, runner, model.neutral))
