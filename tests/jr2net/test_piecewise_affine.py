"""Piecewise-affine reads: the triangulation, and triangles read by the affine map of their corners."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from jr2net.compositing import pixel_centres
from jr2net.piecewise_affine import delaunay_triangles, triangle_cover, triangle_reads


def _area(points: np.ndarray) -> float:
    following = np.roll(points, -1, axis=0)
    return 0.5 * float(np.sum(points[:, 0] * following[:, 1] - following[:, 0] * points[:, 1]))


def test_delaunay_tiles_the_hull_with_empty_circumcircles() -> None:
    points = np.random.default_rng(0).uniform(0, 30, (21, 2))
    triangles = delaunay_triangles(points)
    hull = cv2.convexHull(points.astype(np.float32))[:, 0].astype(np.float64)
    assert sum(abs(_area(points[list(t)])) for t in triangles) == pytest.approx(abs(_area(hull)))
    for a, b, c in points[triangles]:
        matrix = np.array([[*(p - c), float((p - c) @ (p - c))] for p in (a, b)])
        centre = np.linalg.solve(2 * matrix[:, :2], matrix[:, 2]) + c
        radius = np.linalg.norm(a - centre)
        assert (np.linalg.norm(points - centre, axis=1) >= radius - 1e-6).all()


def _scattered(count: int = 30) -> tuple[torch.Tensor, torch.Tensor]:
    """(count, 2) points scattered over a 40×50 patch and their Delaunay triangles."""
    points = np.random.default_rng(1).uniform((10, 12), (60, 52), (count, 2))
    return torch.from_numpy(points).float(), torch.from_numpy(delaunay_triangles(points))


def test_an_affine_motion_of_the_points_reads_exactly_affinely() -> None:
    source, triangles = _scattered()
    matrix, offset = torch.tensor([[1.1, 0.2], [-0.15, 0.9]]), torch.tensor([4.0, -3.0])
    targets = source @ matrix.T + offset
    points, inside = triangle_reads(source, triangles, targets, 70, 80)
    covered = inside[0, 0] > 0
    hull = cv2.convexHull(targets.numpy())[:, 0]
    assert covered.sum() > 0.95 * abs(_area(hull.astype(np.float64)))
    expected = (pixel_centres(70, 80)[0] - offset) @ torch.linalg.inv(matrix).T
    assert torch.allclose(points[0][covered], expected[covered], atol=1e-3)
    assert (points[0][~covered] == 0).all()


def test_a_frame_edge_crops_the_triangles_and_off_frame_reads_nothing() -> None:
    source, triangles = _scattered()
    whole_points, whole = triangle_reads(source, triangles, source, 70, 80)
    assert torch.equal(triangle_cover(triangles, source, 70, 80), whole)
    cropped_points, cropped = triangle_reads(source, triangles, source, 30, 40)
    assert torch.equal(cropped, whole[..., :30, :40])
    assert torch.equal(cropped_points, whole_points[:, :30, :40])
    points, inside = triangle_reads(source, triangles, source + 200, 70, 80)
    assert not inside.any() and not points.any()
    assert not triangle_cover(triangles, source + 200, 70, 80).any()


def test_targets_of_the_wrong_shape_are_refused() -> None:
    source, triangles = _scattered()
    with pytest.raises(ValueError, match="targets"):
        triangle_reads(source, triangles, source[:-1], 70, 80)
