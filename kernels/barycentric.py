"""Screen-space barycentrics of pixel centres, shared by the rasterizer and interpolation.

Conventions (every backend follows them bit for bit): pixel (i, j) has its centre at
(j + 0.5, i + 0.5); the edge functions are evaluated in float32 in the order written here; a
pixel is covered when the triangle is not degenerate (area != 0) and all three edge functions
have the area's sign or are zero (``n_i · sign(area) >= 0``, so no division decides coverage);
the screen barycentrics ``n_i / area`` are then made perspective-correct with the corners'
depths, and the surface depth is their harmonic blend.
"""

from __future__ import annotations

import torch
from torch import Tensor


def edge_barycentrics(corners: Tensor, px: Tensor, py: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Screen-space and perspective-correct barycentrics of points in triangles.

    Args:
        corners: (..., 3, 3) screen-space triangle corners (x_px, y_px, depth).
        px, py: (...) pixel-centre coordinates.

    Returns:
        ``(covered, bary, depth)``: (...) bool coverage, (..., 3) perspective-correct
        barycentrics and (...) depth. Uncovered points may have non-finite values; callers mask
        them out.
    """
    x0, y0, z0 = corners[..., 0, 0], corners[..., 0, 1], corners[..., 0, 2]
    x1, y1, z1 = corners[..., 1, 0], corners[..., 1, 1], corners[..., 1, 2]
    x2, y2, z2 = corners[..., 2, 0], corners[..., 2, 1], corners[..., 2, 2]
    area = (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)
    n0 = (x2 - x1) * (py - y1) - (y2 - y1) * (px - x1)
    n1 = (x0 - x2) * (py - y2) - (y0 - y2) * (px - x2)
    n2 = (x1 - x0) * (py - y0) - (y1 - y0) * (px - x0)
    sign = torch.sign(area).detach()
    covered = (area != 0) & (n0 * sign >= 0) & (n1 * sign >= 0) & (n2 * sign >= 0)
    q0, q1, q2 = (n0 / area) / z0, (n1 / area) / z1, (n2 / area) / z2
    inverse_depth = q0 + q1 + q2
    bary = torch.stack([q0 / inverse_depth, q1 / inverse_depth, q2 / inverse_depth], dim=-1)
    return covered, bary, 1.0 / inverse_depth


def pixel_centres(tri_id: Tensor) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates (px, py), each (B, H, W) float32, for a (B, H, W) id map."""
    _, height, width = tri_id.shape
    ys = torch.arange(height, device=tri_id.device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=tri_id.device, dtype=torch.float32) + 0.5
    py, px = torch.meshgrid(ys, xs, indexing="ij")
    return px.expand_as(tri_id), py.expand_as(tri_id)
