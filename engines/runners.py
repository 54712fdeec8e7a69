"""Runners: RecNet (or RecAugNet) crops in, raw outputs out, on one runtime.

Every runner is a context manager and a callable ``(B, 3, S, S) float32 tensor -> (B, D) tensor``
(:meth:`jr2net.nets.recnet.RecNet.decode` turns the output into parameters). ``torch`` runs the
network eagerly; ``onnx`` runs its ONNX export (:mod:`jr2net.engines.onnx_export`) in
onnxruntime on the CPU, or CUDA when onnxruntime has it; ``tensorrt`` builds a TensorRT engine
from that export (:mod:`jr2net.engines.tensorrt_engine`, GPU and the ``trt`` extra only).
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType

import numpy as np
import torch
from torch import Tensor

from jr2net.engines.onnx_export import cached_onnx
from jr2net.nets.checkpoint import default_weights, load_weights
from jr2net.nets.etnet import default_etnet_weights
from jr2net.nets.recaugnet import RecAugNet, load_recaugnet
from jr2net.nets.recnet import RecNet

RUNTIMES = ("torch", "onnx", "tensorrt")


class Runner:
    """Base of the runners: a context manager and a callable (B, 3, S, S) -> (B, D)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Release what the runner holds."""

    def __call__(self, images: Tensor) -> Tensor:
        raise NotImplementedError


class TorchRunner(Runner):
    """Eager torch, on the network's device."""

    def __init__(self, net: RecNet | RecAugNet) -> None:
        self.net = net.eval()
        self.device = next(net.parameters()).device

    @torch.no_grad()
    def __call__(self, images: Tensor) -> Tensor:
        return self.net(images.to(self.device)).cpu()


def onnx_session(path: Path, threads: int = 0) -> object:
    """An onnxruntime session over an ONNX file, CUDA when onnxruntime has it, else the CPU, with
    ``threads`` intra-op threads (0: onnxruntime's choice) that sleep between runs."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = [
        p
        for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
        if p in onnxruntime.get_available_providers()
    ]
    return onnxruntime.InferenceSession(str(path), options, providers=providers)


class OnnxRunner(Runner):
    """onnxruntime over an ONNX file; ``threads`` intra-op threads (0: onnxruntime's choice).

    Its threads sleep between runs instead of spinning: spinning, they took the cores from the
    torch and numpy work around each run (RecNet's whole per-face step on 2 cores: median 8.0 ms,
    p90 26 ms spinning; 6.3 ms, p90 6.8 ms not), for 0.7 ms more on a lone batch-1 run.
    """

    def __init__(self, path: Path, threads: int = 0) -> None:
        self.session = onnx_session(path, threads)

    def __call__(self, images: Tensor) -> Tensor:
        feed = {"images": np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)}
        return torch.from_numpy(self.session.run(["raw"], feed)[0])

    def close(self) -> None:
        self.session = None


def _check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; choose from {RUNTIMES}")


def _runner(runtime: str, net: RecNet | RecAugNet, weights: tuple[Path, ...], threads: int) -> Runner:
    """A runner of ``runtime`` for ``net``, loaded from the ``weights`` files (the export's cache key)."""
    if runtime == "torch":
        return TorchRunner(net)
    if runtime == "tensorrt":
        from jr2net.engines.tensorrt_engine import TensorRTRunner, build_engine, require_tensorrt

        require_tensorrt()
        return TensorRTRunner(build_engine(cached_onnx(net, weights)))
    return OnnxRunner(cached_onnx(net, weights), threads)


def make_runner(runtime: str, weights: Path | None = None, threads: int = 0) -> tuple[RecNet, Runner]:
    """The network (for decoding) and a runner of ``runtime`` for a weights file (default: shipped)."""
    _check_runtime(runtime)
    weights = default_weights() if weights is None else weights
    net = load_weights(weights)
    return net, _runner(runtime, net, (weights,), threads)


def make_recaugnet_runner(
    runtime: str, weights: Path | None = None, etnet_weights: Path | None = None, threads: int = 0
) -> tuple[RecAugNet, Runner]:
    """RecAugNet (for decoding) and a runner of ``runtime`` for a RecNet and an ETNet weights file
    (default: each one's environment variable or shipped weights); exports are cached by both."""
    _check_runtime(runtime)
    weights = default_weights() if weights is None else weights
    etnet_weights = default_etnet_weights() if etnet_weights is None else etnet_weights
    net = load_recaugnet(weights, etnet_weights)
    return net, _runner(runtime, net, (weights, etnet_weights), threads)
