"""CUDA fused eq. 2 warp (CuPy RawKernel, ``cuda/warp.cu``): same WarpResult as the torch reference."""

from __future__ import annotations

import numpy as np
import torch

from jr2net.kernels.cuda_runtime import Launch, launch, require_cuda
from jr2net.kernels.warp_torch import (
    DEFAULT_DEPTH_TOLERANCE,
    INVALID_COORDINATE,
    NEAR,
    WarpInputs,
    WarpResult,
)


def warp_cuda(inputs: WarpInputs, depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE) -> WarpResult:
    """Eq. 2 warp of CUDA tensors; same contract as :func:`warp_torch.warp_torch` (no gradients)."""
    require_cuda()
    return launch_warp(launch, inputs, depth_tolerance)


def launch_warp(run: Launch, inputs: WarpInputs, depth_tolerance: float) -> WarpResult:
    """The fused warp kernel run by ``run`` on the target depth's device.

    Args:
        run: CuPy's :func:`launch` on CUDA tensors, or a host launcher on CPU tensors.
        inputs: images (B, C, Hs, Ws), depths and cameras, as for :func:`warp_cuda`.

    Returns:
        :class:`WarpResult` with (B, H, W, 2) grid and (B, ·, H, W) maps on the target depth's device.
    """
    source_image, source_depth, target_depth = inputs.source_image, inputs.source_depth, inputs.target_depth
    device = target_depth.device
    matrix, offset = inputs.matrices()
    batch, height, width = target_depth.shape
    channels, source_height, source_width = source_image.shape[1:]
    grid = torch.empty((batch, height, width, 2), dtype=torch.float32, device=device)
    image = torch.zeros((batch, channels, height, width), dtype=torch.float32, device=device)
    valid = torch.zeros((batch, 1, height, width), dtype=torch.float32, device=device)
    covisible = torch.zeros((batch, 1, height, width), dtype=torch.float32, device=device)
    limit_factor = torch.tensor(1.0 + depth_tolerance, dtype=torch.float32).item()
    run(
        "warp.cu",
        "warp_fused",
        batch * height * width,
        source_image.detach().contiguous(),
        source_depth.detach().contiguous(),
        target_depth.detach().contiguous(),
        matrix.to(device),
        offset.to(device),
        np.int64(batch),
        np.int32(channels),
        np.int32(source_height),
        np.int32(source_width),
        np.int32(height),
        np.int32(width),
        np.float32(limit_factor),
        np.float32(NEAR),
        np.float32(INVALID_COORDINATE),
        grid,
        image,
        valid,
        covisible,
    )
    return WarpResult(grid=grid, image=image, valid=valid, covisible=covisible)
