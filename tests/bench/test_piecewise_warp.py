"""The 2D landmark warp baseline: identity and affine motions are reproduced exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("scipy")

from bench.piecewise_warp import PiecewiseAffineWarp, border_points
from jr2net.compositing import sample

HEIGHT, WIDTH = 96, 120


def _image() -> np.ndarray:
    """A smooth colour image with some texture, (H, W, 3) uint8."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    channels = [
        128 + 100 * np.sin(xs / 7.0) * np.cos(ys / 9.0),
        128 + 90 * np.cos((xs + ys) / 11.0),
        40 + 1.5 * xs + 0.5 * ys,
    ]
    return np.clip(np.stack(channels, -1), 0, 255).round().astype(np.uint8)


def _landmarks() -> np.ndarray:
    """A face-like (N, 2) point set: three concentric ellipses and a centre, in the image middle."""
    rings = [
        (radius * 30 * np.cos(angles) + 60, radius * 25 * np.sin(angles) + 48)
        for radius, angles in ((1.0, np.linspace(0, 2 * np.pi, 40, endpoint=False)),
                               (0.66, np.linspace(0.1, 2 * np.pi + 0.1, 24, endpoint=False)),
                               (0.33, np.linspace(0.2, 2 * np.pi + 0.2, 12, endpoint=False)))
    ]  # fmt: skip
    points = [np.stack(ring, -1) for ring in rings]
    return np.concatenate([*points, [[60.0, 48.0]]])


def _inside_hull(points: np.ndarray) -> np.ndarray:
    """(H, W) True where a pixel centre lies inside the convex hull of (N, 2) points."""
    from scipy.spatial import ConvexHull

    equations = ConvexHull(points).equations
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    centres = np.stack([xs, ys], -1)
    return (centres @ equations[:, :2].T + equations[:, 2] < -1e-6).all(-1)


def _affine_image(image: np.ndarray, linear: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """The image moved by ``x -> linear x + offset``, sampled bilinearly like the warp."""
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH] + 0.5
    centres = np.stack([xs, ys], -1).astype(np.float64)
    source = (centres - offset) @ np.linalg.inv(linear).T
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float()
    moved = sample(tensor, torch.from_numpy(source.astype(np.float32))[None])
    return (moved[0].permute(1, 2, 0).clamp(0, 255) + 0.5).byte().numpy()


def test_identity_landmarks_give_the_identical_image() -> None:
    image, landmarks = _image(), _landmarks()
    np.testing.assert_array_equal(PiecewiseAffineWarp(image, landmarks)(landmarks), image)


def test_whole_pixel_shift_moves_the_face_exactly() -> None:
    image, landmarks = _image(), _landmarks()
    shift = np.array([3.0, -2.0])
    warped = PiecewiseAffineWarp(image, landmarks)(landmarks + shift)
    inside = _inside_hull(landmarks + shift)
    expected = np.roll(image, (-2, 3), axis=(0, 1))
    np.testing.assert_array_equal(warped[inside], expected[inside])


def test_affine_landmark_motion_gives_the_affinely_moved_image_inside_the_hull() -> None:
    image, landmarks = _image(), _landmarks()
    angle = np.radians(8.0)
    linear = 1.1 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    linear = linear @ np.array([[1.0, 0.08], [0.0, 0.95]])
    offset = np.array([60.0, 48.0]) - linear @ np.array([60.0, 48.0]) + np.array([2.3, -1.7])
    warped = PiecewiseAffineWarp(image, landmarks)(landmarks @ linear.T + offset)
    inside = _inside_hull(landmarks @ linear.T + offset)
    difference = np.abs(warped[inside].astype(int) - _affine_image(image, linear, offset)[inside])
    assert inside.sum() > 2500
    assert difference.max() <= 1  # float32 rounding of a sample that lands on a half level
    assert (difference == 0).mean() > 0.99


def test_border_points_are_corners_and_edge_midpoints() -> None:
    points = {tuple(p) for p in border_points(4, 6).tolist()}
    assert points == {(0, 0), (3, 0), (6, 0), (0, 2), (6, 2), (0, 4), (3, 4), (6, 4)}
