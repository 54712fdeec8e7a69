"""CUDA dense correspondence (CuPy RawKernel, ``cuda/correspond.cu``), as the torch reference."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jr2net.kernels.correspond_torch import Correspondence, check_correspond_inputs, limit_factor
from jr2net.kernels.cuda_runtime import Launch, launch, require_cuda


def correspond_cuda(
    tri_id: Tensor,
    bary: Tensor,
    triangles: Tensor,
    source_points: Tensor,
    camera: Tensor,
    source_depth: Tensor,
    tolerance: float,
) -> Correspondence:
    """Dense correspondence of CUDA tensors; same contract as :func:`correspond_torch.correspond_torch`
    (no gradients)."""
    check_correspond_inputs(tri_id, bary, triangles, source_points, camera, source_depth)
    require_cuda()
    return launch_correspond(launch, tri_id, bary, triangles, source_points, camera, source_depth, tolerance)


def launch_correspond(
    run: Launch,
    tri_id: Tensor,
    bary: Tensor,
    triangles: Tensor,
    source_points: Tensor,
    camera: Tensor,
    source_depth: Tensor,
    tolerance: float,
) -> Correspondence:
    """The correspondence kernel run by ``run`` on ``tri_id``'s device; the caller checks the inputs.

    Args:
        run: CuPy's :func:`launch` on CUDA tensors, or a host launcher on CPU tensors.
        the rest: as for :func:`correspond_cuda`.

    Returns:
        :class:`Correspondence` on ``tri_id``'s device.
    """
    batch, height, width = tri_id.shape
    device = tri_id.device
    points = torch.zeros((batch, height, width, 3), dtype=torch.float32, device=device)
    covisible = torch.zeros((batch, 1, height, width), dtype=torch.float32, device=device)
    inputs = [t.detach().contiguous() for t in (tri_id, bary)]
    inputs.append(triangles.to(device=device, dtype=torch.int64).contiguous())
    inputs += [t.detach().contiguous() for t in (source_points, camera, source_depth)]
    run(
        "correspond.cu",
        "correspond",
        batch * height * width,
        *inputs,
        np.int64(batch),
        np.int64(source_points.shape[1]),
        np.int32(height),
        np.int32(width),
        np.int32(source_depth.shape[1]),
        np.int32(source_depth.shape[2]),
        np.float32(limit_factor(tolerance)),
        points,
        covisible,
    )
    return Correspondence(points=points, covisible=covisible)
