"""Helpers of the data-generation scripts: lift image points onto a fitted mesh, snap to a mesh."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from jr2net.face_model import FaceModel
from jr2net.geometry import face_geometry
from jr2net.params import FaceParams

MIN_FACING = 0.3


def lift_to_neutral(
    model: FaceModel, params: FaceParams, tri_id: Tensor, pixels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Surface points under sub-pixel positions, expressed on the neutral mesh.

    Args:
        model: the face model.
        params: the (batch of one) FaceParams the image was rendered or fitted with.
        tri_id: (H, W) visible triangle per pixel of that render, -1 on background.
        pixels: (N, 2) image positions.

    Returns:
        ``(points, usable)``: (N, 3) points of the neutral mesh at the same surface location
        (triangle and perspective-correct barycentrics), and (N,) True where the pixel hits a
        face-area triangle that faces the camera.
    """
    height, width = tri_id.shape
    with torch.no_grad():
        geometry = face_geometry(model, params, height, width)
    screen, normals = geometry.screen[0].double(), geometry.view_normals[0]
    face_triangles = model.region_triangles("face_area").shape[0]
    points = np.zeros((len(pixels), 3))
    usable = np.zeros(len(pixels), dtype=bool)
    for i, (x, y) in enumerate(pixels):
        col, row = int(np.floor(x)), int(np.floor(y))
        if not (0 <= col < width and 0 <= row < height) or int(tri_id[row, col]) < 0:
            continue
        face = int(tri_id[row, col])
        corners = model.triangles[face]
        matrix = torch.cat([screen[corners, :2].T, torch.ones(1, 3, dtype=torch.float64)])
        weights = (
            torch.linalg.solve(matrix, torch.tensor([x, y, 1.0], dtype=torch.float64)) / screen[corners, 2]
        )
        weights = weights / weights.sum()
        usable[i] = face < face_triangles and float(normals[corners].mean(0)[2]) > MIN_FACING
        points[i] = (weights[:, None] * model.neutral[corners].double()).sum(0).numpy()
    return points, usable


def closest_on_mesh(points: Tensor, vertices: Tensor, triangles: Tensor) -> tuple[Tensor, Tensor]:
    """Nearest triangle and barycentrics of points near a mesh: (N, 3) -> (N,), (N, 3).

    Each point is projected onto every triangle's plane, its barycentrics clamped into the triangle;
    the triangle whose clamped point is nearest wins (exact enough for points on the surface).
    """
    a, b, c = (vertices[triangles[:, k]][None] for k in range(3))
    p = points[:, None]
    ab, ac, ap = b - a, c - a, p - a
    d00, d01, d11 = (ab * ab).sum(-1), (ab * ac).sum(-1), (ac * ac).sum(-1)
    d20, d21 = (ap * ab).sum(-1), (ap * ac).sum(-1)
    denominator = d00 * d11 - d01 * d01
    v = (d11 * d20 - d01 * d21) / denominator
    w = (d00 * d21 - d01 * d20) / denominator
    bary = torch.stack([1 - v - w, v, w], dim=-1).clamp(min=0)
    bary = bary / bary.sum(-1, keepdim=True)
    closest = bary[..., 0:1] * a + bary[..., 1:2] * b + bary[..., 2:3] * c
    best = ((closest - p) ** 2).sum(-1).argmin(dim=1)
    return best, bary[torch.arange(len(points)), best]
