"""DCNet runners: :class:`jr2net.dcnet_renderer.DCNetRunner` on torch or onnxruntime."""

from __future__ import annotations

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


def make_dcnet_runner(
    runtime: str = "onnx", weights: Path | None = None, threads: int = 0, size: int = CROP_SIZE
) -> TorchDCNetRunner | OnnxDCNetRunner:
    """A DCNet runner of ``runtime`` for a weights file (default: ``$JR2NET_DCNET`` or the shipped)."""
    if runtime not in DCNET_RUNTIMES:
        raise ValueError(f"unknown DCNet runtime {runtime!r}; choose from {DCNET_RUNTIMES}")
    weights = default_dcnet_weights() if weights is None else weights
    net = load_dcnet(weights)
    if runtime == "torch":
        return TorchDCNetRunner(net)
    return OnnxDCNetRunner(cached_dcnet_onnx(net, weights, size), threads)
