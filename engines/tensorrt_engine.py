"""TensorRT: an engine built from RecNet's ONNX export, cached, and a runner over it.

TensorRT is imported here alone and only when asked for (``pip install -e ".[trt]"`` on a machine
with an NVIDIA GPU); without it, or without CUDA, :func:`require_tensorrt` says so clearly. The
engine has a dynamic batch (1 to :data:`MAX_BATCH`), optionally FP16, and is cached beside the
ONNX export with the TensorRT version and GPU in its name (an engine is only valid there).
Buffers are torch CUDA tensors, run on torch's current stream, so pycuda is not needed.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from jr2net.engines.runners import Runner
from jr2net.nets.recnet import CROP_SIZE

MAX_BATCH = 8
WORKSPACE_BYTES = 1 << 30


def require_tensorrt() -> ModuleType:
    """The ``tensorrt`` module; a clear error without it or without a CUDA device."""
    if not torch.cuda.is_available():
        raise RuntimeError("the TensorRT runtime needs an NVIDIA GPU with CUDA; use --runtime onnx or torch")
    try:
        import tensorrt
    except ImportError as error:
        raise RuntimeError(
            f"the TensorRT runtime needs the tensorrt package ({error}): pip install -e '.[trt]'"
        ) from error
    return tensorrt


def engine_path(onnx_path: Path, fp16: bool) -> Path:
    """Where the engine built from ``onnx_path`` is cached (TensorRT version and GPU in the name)."""
    trt = require_tensorrt()
    device = torch.cuda.get_device_name().replace(" ", "_")
    precision = "fp16" if fp16 else "fp32"
    return onnx_path.with_name(f"{onnx_path.stem}-trt{trt.__version__}-{device}-{precision}.engine")


def build_engine(onnx_path: Path, fp16: bool = True) -> Path:
    """Build (or reuse) the serialized engine of an ONNX file; returns its path."""
    path = engine_path(onnx_path, fp16)
    if path.is_file():
        return path
    trt = require_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    shape = (3, CROP_SIZE, CROP_SIZE)
    profile.set_shape("images", (1, *shape), (1, *shape), (MAX_BATCH, *shape))
    config.add_optimization_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT could not build an engine from {onnx_path} (see its log above)")
    partial = path.with_suffix(".partial")
    partial.write_bytes(bytes(serialized))
    partial.replace(path)
    return path


class TensorRTRunner(Runner):
    """Runs a serialized engine: (B, 3, S, S) crops, B ≤ :data:`MAX_BATCH` -> (B, D) raw output on the CPU."""

    def __init__(self, path: Path) -> None:
        trt = require_tensorrt()
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise RuntimeError(
                f"{path} is not an engine this TensorRT and GPU can load; delete it to rebuild"
            )
        self.context = self.engine.create_execution_context()
        self.output_size = int(self.engine.get_tensor_shape("raw")[1])

    def close(self) -> None:
        """Release the execution context and the engine."""
        self.context = None
        self.engine = None

    def __call__(self, images: Tensor) -> Tensor:
        batch = images.shape[0]
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"the TensorRT engine takes batches of 1 to {MAX_BATCH} crops, got {batch}")
        inputs = images.to("cuda", torch.float32).contiguous()
        outputs = torch.empty(batch, self.output_size, device="cuda")
        self.context.set_input_shape("images", tuple(inputs.shape))
        self.context.set_tensor_address("images", inputs.data_ptr())
        self.context.set_tensor_address("raw", outputs.data_ptr())
        if not self.context.execute_async_v3(torch.cuda.current_stream().cuda_stream):
            raise RuntimeError("TensorRT failed to run the engine")
        return outputs.cpu()
