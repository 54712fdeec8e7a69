"""Numba CPU twin of the rasterizer: same Fragments as :mod:`rasterize_torch`, bit for bit.

Triangles are binned into bands of rows; bands run in parallel (``prange``), each owning its
pixels, so the depth test needs no atomics. Inside a band triangles are visited in id order and a
candidate replaces the pixel only when strictly nearer: exactly the ``(depth bits, id)`` minimum of
the reference. Every float operation is float32 in the reference's order (``error_model='numpy'``,
no fastmath, so no FMA contraction).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from torch import Tensor

from jr2net.kernels.fragments import Fragments
from jr2net.kernels.rasterize_torch import DEFAULT_NEAR, check_raster_inputs

BAND_ROWS = 8
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)
_ZERO = np.float32(0.0)


@numba.njit(cache=True, error_model="numpy")
def _box(screen: np.ndarray, b: int, tri: np.ndarray, height: int, width: int, near: np.float32) -> tuple:
    """Clipped pixel box (x0, y0, x1, y1) of one triangle; (0, 0, -1, -1), in no band, when culled."""
    empty = (0, 0, -1, -1)
    lo_x, lo_y, hi_x, hi_y = np.float32(np.inf), np.float32(np.inf), np.float32(-np.inf), np.float32(-np.inf)
    for k in range(3):
        x, y, z = screen[b, tri[k], 0], screen[b, tri[k], 1], screen[b, tri[k], 2]
        if not (z > near) or not (math.isfinite(x) and math.isfinite(y) and math.isfinite(z)):
            return empty
        lo_x, lo_y, hi_x, hi_y = min(lo_x, x), min(lo_y, y), max(hi_x, x), max(hi_y, y)
    x0 = max(math.ceil(lo_x - _HALF), 0)
    y0 = max(math.ceil(lo_y - _HALF), 0)
    x1 = min(math.floor(hi_x - _HALF), width - 1)
    y1 = min(math.floor(hi_y - _HALF), height - 1)
    if x1 < x0 or y1 < y0:
        return empty
    return (x0, y0, x1, y1)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def _rasterize(
    screen: np.ndarray,
    triangles: np.ndarray,
    height: int,
    width: int,
    near: np.float32,
    tri_id: np.ndarray,
    bary: np.ndarray,
    depth: np.ndarray,
) -> None:
    batch, faces = screen.shape[0], triangles.shape[0]
    bands = (height + BAND_ROWS - 1) // BAND_ROWS
    boxes = np.empty((batch, faces, 4), np.int64)
    for job in numba.prange(batch * faces):
        b, f = job // faces, job % faces
        boxes[b, f, 0], boxes[b, f, 1], boxes[b, f, 2], boxes[b, f, 3] = _box(
            screen, b, triangles[f], height, width, near
        )
    counts = np.zeros(batch * bands + 1, np.int64)
    for b in range(batch):
        for f in range(faces):
            for band in range(boxes[b, f, 1] // BAND_ROWS, boxes[b, f, 3] // BAND_ROWS + 1):
                counts[b * bands + band + 1] += 1
    starts = np.cumsum(counts)
    fill = starts[:-1].copy()
    binned = np.empty(starts[-1], np.int64)
    for b in range(batch):
        for f in range(faces):
            for band in range(boxes[b, f, 1] // BAND_ROWS, boxes[b, f, 3] // BAND_ROWS + 1):
                binned[fill[b * bands + band]] = f
                fill[b * bands + band] += 1
    for job in numba.prange(batch * bands):
        b, band = job // bands, job % bands
        row_lo, row_hi = band * BAND_ROWS, min(height, (band + 1) * BAND_ROWS) - 1
        for k in range(starts[job], starts[job + 1]):
            f = binned[k]
            _raster_triangle(
                screen,
                triangles,
                f,
                b,
                boxes[b, f, 0],
                max(boxes[b, f, 1], row_lo),
                boxes[b, f, 2],
                min(boxes[b, f, 3], row_hi),
                tri_id,
                bary,
                depth,
            )
    for b in numba.prange(batch):
        for y in range(height):
            for x in range(width):
                if tri_id[b, y, x] < 0:
                    depth[b, y, x] = _ZERO


@numba.njit(cache=True, error_model="numpy", inline="always")
def _raster_triangle(
    screen: np.ndarray,
    triangles: np.ndarray,
    f: int,
    b: int,
    col_lo: int,
    row_lo: int,
    col_hi: int,
    row_hi: int,
    tri_id: np.ndarray,
    bary: np.ndarray,
    depth: np.ndarray,
) -> None:
    """Depth-test triangle f over the pixel box [col_lo, col_hi] × [row_lo, row_hi]."""
    i0, i1, i2 = triangles[f, 0], triangles[f, 1], triangles[f, 2]
    x0, y0, z0 = screen[b, i0, 0], screen[b, i0, 1], screen[b, i0, 2]
    x1, y1, z1 = screen[b, i1, 0], screen[b, i1, 1], screen[b, i1, 2]
    x2, y2, z2 = screen[b, i2, 0], screen[b, i2, 1], screen[b, i2, 2]
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    if area == _ZERO:
        return
    sign = _ONE if area > _ZERO else -_ONE
    e0x, e0y, e1x, e1y, e2x, e2y = x2 - x1, y2 - y1, x0 - x2, y0 - y2, x1 - x0, y1 - y0
    for row in range(row_lo, row_hi + 1):
        py = np.float32(row) + _HALF
        r0, r1, r2 = e0x * (py - y1), e1x * (py - y2), e2x * (py - y0)
        for col in range(col_lo, col_hi + 1):
            px = np.float32(col) + _HALF
            n0 = r0 - e0y * (px - x1)
            n1 = r1 - e1y * (px - x2)
            n2 = r2 - e2y * (px - x0)
            if not (n0 * sign >= _ZERO and n1 * sign >= _ZERO and n2 * sign >= _ZERO):
                continue
            q0, q1, q2 = (n0 / area) / z0, (n1 / area) / z1, (n2 / area) / z2
            inverse_depth = q0 + q1 + q2
            z = _ONE / inverse_depth
            if not (z > _ZERO and math.isfinite(z)) or not (z < depth[b, row, col]):
                continue
            depth[b, row, col] = z
            tri_id[b, row, col] = f
            bary[b, row, col, 0] = q0 / inverse_depth
            bary[b, row, col, 1] = q1 / inverse_depth
            bary[b, row, col, 2] = q2 / inverse_depth


def rasterize_numba(
    screen_vertices: Tensor, triangles: Tensor, height: int, width: int, near: float = DEFAULT_NEAR
) -> Fragments:
    """Rasterize on the CPU with numba; same contract as :func:`rasterize_torch.rasterize_torch`."""
    check_raster_inputs(screen_vertices, triangles, height, width)
    if screen_vertices.device.type != "cpu":
        raise ValueError(f"the numba rasterizer needs CPU tensors, got {screen_vertices.device}")
    batch = screen_vertices.shape[0]
    screen = np.ascontiguousarray(screen_vertices.detach().numpy())
    faces = np.ascontiguousarray(triangles.detach().numpy().astype(np.int64))
    tri_id = np.full((batch, height, width), -1, np.int64)
    bary = np.zeros((batch, height, width, 3), np.float32)
    depth = np.full((batch, height, width), np.inf, np.float32)
    _rasterize(screen, faces, height, width, np.float32(near), tri_id, bary, depth)
    return Fragments(
        tri_id=torch.from_numpy(tri_id), bary=torch.from_numpy(bary), depth=torch.from_numpy(depth)
    )
