"""DCNet runners: :class:`jr2net.dcnet_renderer.DCNetRunner` on torch or onnxruntime."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from jr2net.dense_conditions import CROP_SIZE
from jr2net.engines.dcnet_onnx import INPUTS, OUTPUTS, cached_dcnet_onnx
from jr2net.engines.runners import onnx_session
from jr2net.nets.dcnet import DCNet
from jr2net.nets.dcnet_checkpoint import default_dcnet_weights, load_dcnet

DCNET_RUNTIMES = ("torch", "onnx")


class TorchDCNetRunner:
    """Eager torch, shapes checked."""

    def __init__(self, net: DCNet) -> None:
        self.net = net.eval()

    @torch.no_grad()
    def __call__(self, texture: Tensor, conditions: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
        output = self.net.generate(texture, conditions, grid)
        return output.image, output.alpha


class OnnxDCNetRunner:
    """onnxruntime over DCNet's ONNX export (its crop size is fixed at export)."""

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.session = onnx_session(path, threads)
        self.size = self.session.get_inputs()[0].shape[-1]

    def __call__(self, texture: Tensor, conditions: Tensor, grid: Tensor) -> tuple[Tensor, Tensor]:
        if texture.shape[-1] != self.size:
            raise ValueError(f"this DCNet export runs {self.size}² crops, got {tuple(texture.shape)}")
        feed = {
            name: np.ascontiguousarray(value.detach().cpu().numpy(), dtype=np.float32)
            for name, value in zip(INPUTS, (texture, conditions, grid), strict=True)
        }
        image, alpha = self.session.run(OUTPUTS, feed)
        return torch.from_numpy(image), torch.from_numpy(alpha)


@functools.cache
def shared_onnx_runner(path: Path, threads: int) -> OnnxDCNetRunner:
    """One :class:`OnnxDCNetRunner` per export and thread count in a process, shared by every
    session there: a live stage host serves its callers' frames in turns, and a new caller (or
    the call after the warm-up) then pays for no session creation (about 120 ms) and no first,
    slower runs."""
    return OnnxDCNetRunner(path, threads)


def make_dcnet_runner(
    runtime: str = "onnx", weights: Path | None = None, threads: int = 0, size: int = CROP_SIZE
) -> TorchDCNetRunner | OnnxDCNetRunner:
    """A DCNet runner of ``runtime`` for a weights file (default: ``$JR2NET_DCNET`` or the shipped)
    and S×S crops."""
    return DCNetRunnersBySize(runtime, weights, threads)(size)


class DCNetRunnersBySize:
    """:data:`jr2net.dcnet_renderer.DCNetRunners`: one runner per crop size, made on first use
    (the weights are read once; onnxruntime gets an export per size, cached on disk, and its
    runner is shared in the process: :func:`shared_onnx_runner`)."""

    def __init__(self, runtime: str = "onnx", weights: Path | None = None, threads: int = 0) -> None:
        if runtime not in DCNET_RUNTIMES:
            raise ValueError(f"unknown DCNet runtime {runtime!r}; choose from {DCNET_RUNTIMES}")
        self.runtime, self.threads = runtime, threads
        self.weights = default_dcnet_weights() if weights is None else weights
        self.net = load_dcnet(self.weights)
        self._runners: dict[int, TorchDCNetRunner | OnnxDCNetRunner] = {}

    def __call__(self, size: int) -> TorchDCNetRunner | OnnxDCNetRunner:
        if size not in self._runners:
            if self.runtime == "torch":
                self._runners[size] = TorchDCNetRunner(self.net)
            else:
                export = cached_dcnet_onnx(self.net, self.weights, size)
                self._runners[size] = shared_onnx_runner(export, self.threads)
        return self._runners[size]
