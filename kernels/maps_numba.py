"""Numba CPU twin of :mod:`maps_torch` (no gradients: the inference fast path)."""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

from jr2net.kernels.maps_torch import ShadedMaps, check_maps_inputs

_TINY = np.float32(1e-12)
_ONE = np.float32(1.0)
_THREE = np.float32(3.0)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _shade(
    tri_id: np.ndarray,
    bary: np.ndarray,
    triangles: np.ndarray,
    normals: np.ndarray,
    albedo: np.ndarray,
    coefficients: np.ndarray,
    out_normal: np.ndarray,
    out_light: np.ndarray,
    out_albedo: np.ndarray,
    out_image: np.ndarray,
) -> None:
    batch, height, width = tri_id.shape
    for job in numba.prange(batch * height):
        b, y = job // height, job % height
        for x in range(width):
            face = tri_id[b, y, x]
            if face < 0:
                continue
            i0, i1, i2 = triangles[face, 0], triangles[face, 1], triangles[face, 2]
            w0, w1, w2 = bary[b, y, x, 0], bary[b, y, x, 1], bary[b, y, x, 2]
            for c in range(3):
                out_normal[b, y, x, c] = (
                    normals[b, i0, c] * w0 + normals[b, i1, c] * w1 + normals[b, i2, c] * w2
                )
                out_albedo[b, y, x, c] = albedo[b, i0, c] * w0 + albedo[b, i1, c] * w1 + albedo[b, i2, c] * w2
            nx, ny, nz = out_normal[b, y, x, 0], out_normal[b, y, x, 1], out_normal[b, y, x, 2]
            length = max(math.sqrt(nx * nx + ny * ny + nz * nz), _TINY)
            nx, ny, nz = nx / length, ny / length, nz / length
            out_normal[b, y, x, 0], out_normal[b, y, x, 1], out_normal[b, y, x, 2] = nx, ny, nz
            xy, yz, zz, xz, xx_yy = nx * ny, ny * nz, _THREE * nz * nz - _ONE, nx * nz, nx * nx - ny * ny
            for c in range(3):
                k = coefficients[b, :, c]
                value = (
                    k[0] + ny * k[1] + nz * k[2] + nx * k[3] + xy * k[4] + yz * k[5] + zz * k[6] + xz * k[7]
                )
                value += xx_yy * k[8]
                out_light[b, y, x, c] = value
                out_image[b, y, x, c] = out_albedo[b, y, x, c] * value


def shade_maps_numba(
    tri_id: Tensor, bary: Tensor, triangles: Tensor, normals: Tensor, albedo: Tensor, coefficients: Tensor
) -> ShadedMaps:
    """Shading maps on the CPU with numba; same contract as :func:`maps_torch.shade_maps_torch`."""
    check_maps_inputs(tri_id, bary, triangles, normals, albedo, coefficients)
    arrays = [
        np.ascontiguousarray(t.detach().cpu().numpy()) for t in (tri_id, bary, normals, albedo, coefficients)
    ]
    faces = np.ascontiguousarray(triangles.detach().cpu().numpy().astype(np.int64))
    outputs = [np.zeros((*tri_id.shape, 3), np.float32) for _ in range(4)]
    _shade(arrays[0], arrays[1], faces, arrays[2], arrays[3], arrays[4], *outputs)
    normal, light, albedo_map, image = (torch.from_numpy(o) for o in outputs)
    return ShadedMaps(normal=normal, light=light, albedo=albedo_map, image=image)
