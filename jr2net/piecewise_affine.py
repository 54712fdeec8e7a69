"""Piecewise-affine reads: triangles of source landmarks drawn where the target puts them.

A set of source points is triangulated once (Delaunay, on the source); each triangle, drawn at its
corners' target positions, reads the source triangle by the affine map between the two. Inside
the triangles a motion of the points that is affine overall moves the image exactly affinely, and
each point reads exactly its source position, which a smooth field on a coarse grid only
approaches. The eye openings (:mod:`jr2net.eye_warp`) and the face between its fixed-surface
landmarks (:meth:`jr2net.reenact.Reenactor.pin`) read the source this way.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import Tensor

from jr2net.kernels.fragments import Fragments
from jr2net.render import interpolate, rasterize
from jr2net.shapes import check_tensor


def delaunay_triangles(points: np.ndarray) -> np.ndarray:
    """(F, 3) the Delaunay triangles of (N, 2) points, as indices (OpenCV's ``Subdiv2D``); of points
    that coincide, one is a corner."""
    low = np.floor(points.min(axis=0)) - 1
    span = np.ceil(points.max(axis=0) - low) + 2
    subdivision = cv2.Subdiv2D((int(low[0]), int(low[1]), int(span[0]), int(span[1])))
    subdivision.insert([(float(x), float(y)) for x, y in points])
    corners = subdivision.getTriangleList().reshape(-1, 3, 2)
    distances = np.linalg.norm(corners[:, :, None, :] - points[None, None].astype(np.float32), axis=-1)
    nearest = distances.argmin(axis=-1)
    known = (distances.min(axis=-1) < 1e-3).all(axis=1)  # not one of the outer, virtual vertices
    return nearest[known].astype(np.int64)


def triangle_reads(
    source: Tensor, triangles: Tensor, targets: Tensor, height: int, width: int
) -> tuple[Tensor, Tensor]:
    """Where each target pixel covered by a triangle reads the source.

    Args:
        source: (N, 2) the source points (pixels).
        triangles: (F, 3) triangles, indices into ``source``.
        targets: (N, 2) where each point is drawn (pixels).
        height, width: the frame's size.

    Returns:
        points: (1, H, W, 2) source pixels (meaningful where ``inside``).
        inside: (1, 1, H, W) 1 where a triangle covers the pixel, else 0.
    """
    check_tensor("targets", targets, (len(source), 2))
    points = torch.zeros(1, height, width, 2)
    inside = torch.zeros(1, 1, height, width)
    drawn = _drawn_in_box(triangles, targets, height, width)
    if drawn is not None:
        fragments, (top, bottom, left, right) = drawn
        mapped = interpolate(source.float()[None], triangles, fragments.tri_id, fragments.bary)
        points[:, top:bottom, left:right] = mapped
        inside[:, 0, top:bottom, left:right] = fragments.mask.float()
    return points, inside


def triangle_cover(triangles: Tensor, targets: Tensor, height: int, width: int) -> Tensor:
    """(1, 1, H, W) 1 where one of ``triangles`` (F, 3), drawn at ``targets`` (N, 2), covers the
    pixel, else 0: :func:`triangle_reads`' ``inside`` without the read points."""
    inside = torch.zeros(1, 1, height, width)
    drawn = _drawn_in_box(triangles, targets, height, width)
    if drawn is not None:
        fragments, (top, bottom, left, right) = drawn
        inside[:, 0, top:bottom, left:right] = fragments.mask.float()
    return inside


def _drawn_in_box(
    triangles: Tensor, targets: Tensor, height: int, width: int
) -> tuple[Fragments, tuple[int, int, int, int]] | None:
    """The triangles rasterised over the part of the frame their targets' box covers, and that box
    (top, bottom, left, right); None where it lies off the frame."""
    low = targets.min(dim=0).values.floor().clamp(min=0)
    high = targets.max(dim=0).values.ceil() + 1
    left, top = int(low[0]), int(low[1])
    right, bottom = min(int(high[0]), width), min(int(high[1]), height)
    if right <= left or bottom <= top:
        return None
    corner = torch.tensor([float(left), float(top)])
    screen = torch.cat([targets.float() - corner, torch.ones(len(targets), 1)], dim=1)[None]
    return rasterize(screen, triangles, bottom - top, right - left), (top, bottom, left, right)
