"""Numba CPU twin of :mod:`correspond_torch`: barycentric point, projection and co-visibility in one pass."""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from jr2net.kernels.correspond_torch import Correspondence, CorrespondInputs, limit_factor

_ZERO = np.float32(0.0)
_ONE = np.float32(1.0)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _correspond(
    tri_id: np.ndarray,
    bary: np.ndarray,
    triangles: np.ndarray,
    source_points: np.ndarray,
    camera: np.ndarray,
    source_depth: np.ndarray,
    limit: np.float32,
    points: np.ndarray,
    covisible: np.ndarray,
) -> None:
    batch, height, width = tri_id.shape
    source_height, source_width = source_depth.shape[1], source_depth.shape[2]
    for job in numba.prange(batch * height):
        b, y = job // height, job % height
        for x in range(width):
            face = tri_id[b, y, x]
            if face < 0:
                continue
            i, j, k = triangles[face, 0], triangles[face, 1], triangles[face, 2]
            b0, b1, b2 = bary[b, y, x, 0], bary[b, y, x, 1], bary[b, y, x, 2]
            px = source_points[b, i, 0] * b0 + source_points[b, j, 0] * b1 + source_points[b, k, 0] * b2
            py = source_points[b, i, 1] * b0 + source_points[b, j, 1] * b1 + source_points[b, k, 1] * b2
            pz = source_points[b, i, 2] * b0 + source_points[b, j, 2] * b1 + source_points[b, k, 2] * b2
            sx = (px * camera[b, 0, 0] + py * camera[b, 0, 1] + pz * camera[b, 0, 2]) / pz
            sy = (px * camera[b, 1, 0] + py * camera[b, 1, 1] + pz * camera[b, 1, 2]) / pz
            points[b, y, x, 0], points[b, y, x, 1], points[b, y, x, 2] = sx, sy, pz
            if sx >= _ZERO and sx < source_width and sy >= _ZERO and sy < source_height:
                seen = source_depth[b, math.floor(sy), math.floor(sx)]
                if seen > _ZERO and pz <= seen * limit:
                    covisible[b, 0, y, x] = _ONE


def correspond_numba(inputs: CorrespondInputs, tolerance: float) -> Correspondence:
    """Dense correspondence on the CPU with numba; same contract as
    :func:`correspond_torch.correspond_torch` (no gradients)."""
    batch, height, width = inputs.tri_id.shape
    points = np.zeros((batch, height, width, 3), np.float32)
    covisible = np.zeros((batch, 1, height, width), np.float32)
    arrays = [t.numpy() for t in inputs.tensors()]
    _correspond(*arrays, np.float32(limit_factor(tolerance)), points, covisible)
    return Correspondence(points=torch.from_numpy(points), covisible=torch.from_numpy(covisible))
