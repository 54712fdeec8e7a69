"""CUDA rasterizer (CuPy RawKernel, ``cuda/rasterize.cu``): same Fragments as the torch reference."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jr2net.kernels.cuda_runtime import Launch, launch, require_cuda
from jr2net.kernels.fragments import Fragments
from jr2net.kernels.rasterize_torch import DEFAULT_NEAR, EMPTY_KEY, check_raster_inputs


def rasterize_cuda(
    screen_vertices: Tensor, triangles: Tensor, height: int, width: int, near: float = DEFAULT_NEAR
) -> Fragments:
    """Rasterize CUDA tensors; same contract as :func:`rasterize_torch.rasterize_torch`."""
    check_raster_inputs(screen_vertices, triangles, height, width)
    require_cuda()
    if not screen_vertices.is_cuda:
        raise ValueError(f"the CUDA rasterizer needs CUDA tensors, got {screen_vertices.device}")
    return launch_rasterize(launch, screen_vertices, triangles, height, width, near)


def launch_rasterize(
    run: Launch, screen_vertices: Tensor, triangles: Tensor, height: int, width: int, near: float
) -> Fragments:
    """The rasterizer's two kernels run by ``run`` on the tensors' device; the caller checks the inputs.

    Args:
        run: CuPy's :func:`launch` on CUDA tensors, or a host launcher on CPU tensors.
        screen_vertices: (B, V, 3) float32; triangles: (F, 3) int; as for :func:`rasterize_cuda`.

    Returns:
        :class:`Fragments` of shape (B, H, W) on the tensors' device.
    """
    device = screen_vertices.device
    batch, vertex_count = screen_vertices.shape[:2]
    screen = screen_vertices.detach().contiguous()
    faces = triangles.to(device=device, dtype=torch.int64).contiguous()
    pixels = batch * height * width
    keys = torch.full((pixels,), EMPTY_KEY, dtype=torch.int64, device=device)
    tri_id = torch.empty((batch, height, width), dtype=torch.int64, device=device)
    bary = torch.empty((batch, height, width, 3), dtype=torch.float32, device=device)
    depth = torch.empty((batch, height, width), dtype=torch.float32, device=device)
    sizes = (np.int64(batch), np.int64(vertex_count))
    run(
        "rasterize.cu",
        "rasterize_triangles",
        batch * faces.shape[0],
        screen,
        faces,
        *sizes,
        np.int64(faces.shape[0]),
        np.int32(height),
        np.int32(width),
        np.float32(near),
        keys,
    )
    run(
        "rasterize.cu",
        "resolve_fragments",
        pixels,
        screen,
        faces,
        keys,
        *sizes,
        np.int32(height),
        np.int32(width),
        tri_id,
        bary,
        depth,
    )
    return Fragments(tri_id=tri_id, bary=bary, depth=depth)
