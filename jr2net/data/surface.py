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
    model: FaceModel, params: FaceParams, tri_id: Tensor, pixels: np.ndarray, snap: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Surface points under sub-pixel positions, expressed on the neutral mesh.

    Args:
        model: the face model.
        params: the (batch of one) FaceParams the image was rendered or fitted with.
        tri_id: (H, W) visible triangle per pixel of that render, -1 on background.
        pixels: (N, 2) image positions.
        snap: a position whose pixel is not a usable one (see below) is lifted at the centre of the
            nearest usable pixel within ``snap`` pixels instead, if any: an edge the tracker puts
            just beyond the mesh (the upper lids' margin, seen over the eye socket).

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
    facing = (normals[model.triangles].mean(dim=1)[:, 2] > MIN_FACING).numpy()
    hit = tri_id.numpy()
    usable_pixels = (hit >= 0) & (hit < face_triangles) & facing[np.clip(hit, 0, None)]
    points = np.zeros((len(pixels), 3))
    usable = np.zeros(len(pixels), dtype=bool)
    for i, position in enumerate(pixels):
        found = _usable_position(usable_pixels, np.asarray(position, dtype=np.float64), snap)
        if found is None:
            continue
        x, y = found
        face = int(hit[int(y), int(x)])
        corners = model.triangles[face]
        matrix = torch.cat([screen[corners, :2].T, torch.ones(1, 3, dtype=torch.float64)])
        weights = (
            torch.linalg.solve(matrix, torch.tensor([x, y, 1.0], dtype=torch.float64)) / screen[corners, 2]
        )
        weights = weights / weights.sum()
        usable[i] = True
        points[i] = (weights[:, None] * model.neutral[corners].double()).sum(0).numpy()
    return points, usable


def _usable_position(usable: np.ndarray, position: np.ndarray, snap: int) -> tuple[float, float] | None:
    """``position`` (x, y) if its pixel of the (H, W) ``usable`` map is set, else the centre of the
    nearest set pixel within ``snap`` pixels, else None."""
    height, width = usable.shape
    col, row = int(np.floor(position[0])), int(np.floor(position[1]))
    if 0 <= col < width and 0 <= row < height and usable[row, col]:
        return float(position[0]), float(position[1])
    if snap == 0:
        return None
    rows = slice(max(row - snap, 0), max(min(row + snap + 1, height), 0))
    cols = slice(max(col - snap, 0), max(min(col + snap + 1, width), 0))
    near_rows, near_cols = np.nonzero(usable[rows, cols])
    if len(near_rows) == 0:
        return None
    centres = np.stack([near_cols + cols.start + 0.5, near_rows + rows.start + 0.5], axis=1)
    nearest = centres[np.argmin(((centres - position) ** 2).sum(axis=1))]
    return float(nearest[0]), float(nearest[1])


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
