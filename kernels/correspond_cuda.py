"""CUDA dense correspondence (CuPy RawKernel, ``cuda/correspond.cu``), as the torch reference."""

from __future__ import annotations

import numpy as np
import torch

from jr2net.kernels.correspond_torch import Correspondence, CorrespondInputs, limit_factor
from jr2net.kernels.cuda_runtime import Launch, launch, require_cuda


def correspond_cuda(inputs: CorrespondInputs, tolerance: float) -> Correspondence:
    """Dense correspondence of CUDA tensors; same contract as :func:`correspond_torch.correspond_torch`
    (no gradients)."""
    require_cuda()
    return launch_correspond(launch, inputs, tolerance)


def launch_correspond(run: Launch, inputs: CorrespondInputs, tolerance: float) -> Correspondence:
    """The correspondence kernel run by ``run`` on ``inputs.tri_id``'s device.

    Args:
        run: CuPy's :func:`launch` on CUDA tensors, or a host launcher on CPU tensors.
        inputs, tolerance: as for :func:`correspond_cuda`.

    Returns:
        :class:`Correspondence` on the inputs' device.
    """
    batch, height, width = inputs.tri_id.shape
    device = inputs.tri_id.device
    points = torch.zeros((batch, height, width, 3), dtype=torch.float32, device=device)
    covisible = torch.zeros((batch, 1, height, width), dtype=torch.float32, device=device)
    run(
        "correspond.cu",
        "correspond",
        batch * height * width,
        *inputs.tensors(),
        np.int64(batch),
        np.int64(inputs.source_points.shape[1]),
        np.int32(height),
        np.int32(width),
        np.int32(inputs.source_depth.shape[1]),
        np.int32(inputs.source_depth.shape[2]),
        np.float32(limit_factor(tolerance)),
        points,
        covisible,
    )
    return Correspondence(points=points, covisible=covisible)
