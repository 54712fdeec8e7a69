"""Numba CPU twin of :mod:`warp_torch`: grid, bilinear sample and co-visibility fused in one pass."""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from jr2net.kernels.warp_torch import (
    DEFAULT_DEPTH_TOLERANCE,
    INVALID_COORDINATE,
    NEAR,
    WarpInputs,
    WarpResult,
)

_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _warp(
    source: np.ndarray,
    source_depth: np.ndarray,
    target_depth: np.ndarray,
    matrix: np.ndarray,
    offset: np.ndarray,
    limit_factor: np.float32,
    near: np.float32,
    grid: np.ndarray,
    image: np.ndarray,
    valid: np.ndarray,
    covisible: np.ndarray,
) -> None:
    batch, channels, source_height, source_width = source.shape
    height, width = target_depth.shape[1], target_depth.shape[2]
    for job in numba.prange(batch * height):
        b, y = job // height, job % height
        py = np.float32(y) + _HALF
        for x in range(width):
            grid[b, y, x, 0] = np.float32(INVALID_COORDINATE)
            grid[b, y, x, 1] = np.float32(INVALID_COORDINATE)
            d = target_depth[b, y, x]
            if not d > _ZERO:
                continue
            px = np.float32(x) + _HALF
            hx = (matrix[b, 0, 0] * px + matrix[b, 0, 1] * py + matrix[b, 0, 2]) * d + offset[b, 0]
            hy = (matrix[b, 1, 0] * px + matrix[b, 1, 1] * py + matrix[b, 1, 2]) * d + offset[b, 1]
            hz = (matrix[b, 2, 0] * px + matrix[b, 2, 1] * py + matrix[b, 2, 2]) * d + offset[b, 2]
            if not hz > near:
                continue
            sx, sy = hx / hz, hy / hz
            grid[b, y, x, 0], grid[b, y, x, 1] = sx, sy
            valid[b, 0, y, x] = _ONE
            ux, uy = sx - _HALF, sy - _HALF
            if ux > -2.0 and ux < source_width + 1.0 and uy > -2.0 and uy < source_height + 1.0:
                fx, fy = math.floor(ux), math.floor(uy)
                ax, ay = ux - np.float32(fx), uy - np.float32(fy)
                x0, y0 = int(fx), int(fy)
                weights = ((_ONE - ax) * (_ONE - ay), ax * (_ONE - ay), (_ONE - ax) * ay, ax * ay)
                for c in range(channels):
                    total = _ZERO
                    for tap in range(4):
                        col, row = x0 + tap % 2, y0 + tap // 2
                        if col >= 0 and col < source_width and row >= 0 and row < source_height:
                            total += source[b, c, row, col] * weights[tap]
                        else:
                            total += _ZERO * weights[tap]
                    image[b, c, y, x] = total
            if sx >= 0.0 and sx < source_width and sy >= 0.0 and sy < source_height:
                seen = source_depth[b, math.floor(sy), math.floor(sx)]
                if seen > _ZERO and hz <= seen * limit_factor:
                    covisible[b, 0, y, x] = _ONE


def warp_numba(inputs: WarpInputs, depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE) -> WarpResult:
    """Eq. 2 warp on the CPU with numba; same contract as :func:`warp_torch.warp_torch` (no gradients)."""
    matrix, offset = inputs.matrices()
    target_depth = inputs.target_depth
    batch, height, width = target_depth.shape
    channels = inputs.source_image.shape[1]
    images = (inputs.source_image, inputs.source_depth, target_depth)
    arrays = [np.ascontiguousarray(t.detach().cpu().numpy()) for t in images]
    grid = np.empty((batch, height, width, 2), np.float32)
    image = np.zeros((batch, channels, height, width), np.float32)
    valid = np.zeros((batch, 1, height, width), np.float32)
    covisible = np.zeros((batch, 1, height, width), np.float32)
    limit_factor = np.float32(torch.tensor(1.0 + depth_tolerance, dtype=torch.float32).item())
    _warp(
        *arrays, matrix.numpy(), offset.numpy(), limit_factor, np.float32(NEAR), grid, image, valid, covisible
    )
    return WarpResult(
        grid=torch.from_numpy(grid),
        image=torch.from_numpy(image),
        valid=torch.from_numpy(valid),
        covisible=torch.from_numpy(covisible),
    )
