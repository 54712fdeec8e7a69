"""CUDA shading maps (CuPy RawKernel, ``cuda/maps.cu``): same ShadedMaps as the torch reference."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jr2net.kernels.cuda_runtime import Launch, launch, require_cuda
from jr2net.kernels.maps_torch import ShadedMaps, check_maps_inputs


def shade_maps_cuda(
    tri_id: Tensor, bary: Tensor, triangles: Tensor, normals: Tensor, albedo: Tensor, coefficients: Tensor
) -> ShadedMaps:
    """Shading maps of CUDA tensors; same contract as :func:`maps_torch.shade_maps_torch` (no gradients)."""
    check_maps_inputs(tri_id, bary, triangles, normals, albedo, coefficients)
    require_cuda()
    return launch_shade_maps(launch, tri_id, bary, triangles, normals, albedo, coefficients)


def launch_shade_maps(
    run: Launch,
    tri_id: Tensor,
    bary: Tensor,
    triangles: Tensor,
    normals: Tensor,
    albedo: Tensor,
    coefficients: Tensor,
) -> ShadedMaps:
    """The shading kernel run by ``run`` on ``tri_id``'s device; the caller checks the inputs.

    Args:
        run: CuPy's :func:`launch` on CUDA tensors, or a host launcher on CPU tensors.
        tri_id: (B, H, W); bary: (B, H, W, 3); triangles: (F, 3); normals, albedo: (B, V, 3);
            coefficients: (B, 9, 3); as for :func:`shade_maps_cuda`.

    Returns:
        :class:`ShadedMaps`, each (B, H, W, 3), on ``tri_id``'s device.
    """
    batch, height, width = tri_id.shape
    outputs = [
        torch.zeros((batch, height, width, 3), dtype=torch.float32, device=tri_id.device) for _ in range(4)
    ]
    inputs = [t.detach().contiguous() for t in (tri_id, bary)]
    inputs.append(triangles.to(device=tri_id.device, dtype=torch.int64).contiguous())
    inputs += [t.detach().contiguous() for t in (normals, albedo, coefficients)]
    run(
        "maps.cu",
        "shade_maps",
        batch * height * width,
        *inputs,
        np.int64(batch),
        np.int64(normals.shape[1]),
        np.int32(height),
        np.int32(width),
        *outputs,
    )
    normal, light, albedo_map, image = outputs
    return ShadedMaps(normal=normal, light=light, albedo=albedo_map, image=image)
