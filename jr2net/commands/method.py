"""The reconstruction method options shared by ``reconstruct``, ``live`` and ``serve``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import torch

from jr2net.estimators import FrameEstimator, RecNetEstimator, RecNetPredictor
from jr2net.face_model import FaceModel
from jr2net.nets.checkpoint import load_weights
from jr2net.nets.recaugnet import load_recaugnet
from jr2net.realtime.stage_modes import STAGE_MODES

METHODS = ("fit", "recnet", "recaugnet")


@dataclass(frozen=True)
class MethodChoice:
    """Which estimator a reconstructor uses, as a value that pickles: called with the face model
    (in a stage process, say), it builds the estimator.

    Attributes:
        method: one of :data:`METHODS`.
        runtime: how the network runs (``torch``, ``onnx``, ``tensorrt``).
        weights: RecNet weights (None: ``$JR2NET_RECNET`` or the shipped ones).
        etnet_weights: ETNet weights for ``recaugnet`` (None: ``$JR2NET_ETNET`` or the shipped ones).
    """

    method: str = "fit"
    runtime: str = "torch"
    weights: Path | None = None
    etnet_weights: Path | None = None

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {METHODS}")

    def check(self) -> None:
        """Fail now, with the reason, when the network's weights are missing or unreadable, instead
        of inside a stage once the call has started."""
        if self.method == "recnet":
            load_weights(self.weights)
        elif self.method == "recaugnet":
            load_recaugnet(self.weights, self.etnet_weights)

    def __call__(self, model: FaceModel) -> FrameEstimator | None:
        """The network's estimator for ``recnet`` and ``recaugnet`` (with this runtime and
        weights); None for the fitter.

        onnxruntime gets as many threads as torch has in this process (one in a live stage).
        """
        if self.method == "fit":
            return None
        from jr2net.engines.runners import make_recaugnet_runner, make_runner

        threads = torch.get_num_threads()
        if self.method == "recaugnet":
            net, runner = make_recaugnet_runner(self.runtime, self.weights, self.etnet_weights, threads)
        else:
            net, runner = make_runner(self.runtime, self.weights, threads)
        return RecNetEstimator(RecNetPredictor(net, runner, model))


def add_method_arguments(parser: argparse.ArgumentParser) -> None:
    """``--method fit|recnet|recaugnet``, ``--runtime torch|onnx|tensorrt``, ``--weights FILE`` and
    ``--etnet-weights FILE``."""
    parser.add_argument(
        "--method",
        choices=METHODS,
        default="fit",
        help="fit: the landmark fitter (default); recnet: the RecNet network on aligned crops; "
        "recaugnet: RecNet with its expression from the ETNet network",
    )
    parser.add_argument(
        "--runtime",
        choices=("torch", "onnx", "tensorrt"),
        default="torch",
        help="how the network runs (--method recnet or recaugnet); tensorrt needs an NVIDIA GPU and "
        "the trt extra",
    )
    parser.add_argument(
        "--weights", type=Path, help="RecNet weights (default: $JR2NET_RECNET or the shipped small variant)"
    )
    parser.add_argument(
        "--etnet-weights",
        type=Path,
        help="ETNet weights for --method recaugnet (default: $JR2NET_ETNET or the shipped small variant)",
    )


def add_stage_mode_argument(parser: argparse.ArgumentParser) -> None:
    """``--stages process|thread`` for the live commands."""
    parser.add_argument(
        "--stages",
        choices=STAGE_MODES,
        default="process",
        help="run reconstruct and reenact each in its own process (default: faster on several cores) "
        "or in threads of this one (quicker start); with --ray, process: on each node's stage hosts, "
        "shared by the calls there, thread: in threads of each call's own actor",
    )


def estimator(model: FaceModel, args: argparse.Namespace) -> FrameEstimator | None:
    """The network's estimator for ``--method recnet`` or ``recaugnet`` (weights and runtime from
    the arguments), else None."""
    return _choice(args)(model)


def method_choice(args: argparse.Namespace) -> MethodChoice:
    """The method options of parsed arguments, as a value a stage process can be handed; checked
    (see :meth:`MethodChoice.check`)."""
    choice = _choice(args)
    choice.check()
    return choice


def _choice(args: argparse.Namespace) -> MethodChoice:
    return MethodChoice(args.method, args.runtime, args.weights, args.etnet_weights)
