"""Camera: rotations, projection, and the model-to-camera convention."""

from __future__ import annotations

import math

import pytest
import torch

from jr2net.camera import (
    euler_to_matrix,
    intrinsics,
    matrix_to_euler,
    matrix_to_rotation_6d,
    model_to_camera,
    project,
    rotation_6d_to_matrix,
    unproject,
)
from jr2net.shapes import ShapeError


def test_euler_round_trip() -> None:
    angles = (torch.rand(64, 3) - 0.5) * torch.tensor([3.0, 2.8, 6.0])
    matrices = euler_to_matrix(angles)
    torch.testing.assert_close(
        matrices @ matrices.transpose(1, 2), torch.eye(3).expand(64, 3, 3), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(matrix_to_euler(matrices), angles, atol=1e-4, rtol=0)


def test_6d_round_trip() -> None:
    matrices = euler_to_matrix(torch.randn(16, 3))
    torch.testing.assert_close(
        rotation_6d_to_matrix(matrix_to_rotation_6d(matrices)), matrices, atol=1e-5, rtol=0
    )
    assert torch.linalg.det(rotation_6d_to_matrix(torch.randn(8, 6))).sub(1).abs().max() < 1e-5


def test_yaw_turns_the_front_toward_plus_x() -> None:
    front = euler_to_matrix(torch.tensor([0.0, math.radians(90), 0.0])) @ torch.tensor([0.0, 0.0, 1.0])
    torch.testing.assert_close(front, torch.tensor([1.0, 0.0, 0.0]), atol=1e-6, rtol=0)


def test_project_unproject_round_trip() -> None:
    points = torch.randn(2, 50, 3) + torch.tensor([0.0, 0.0, 40.0])
    matrix = intrinsics(torch.tensor([500.0, 800.0]), 480, 640)
    screen = project(points, matrix)
    torch.testing.assert_close(unproject(screen, matrix), points, atol=1e-4, rtol=1e-5)
    assert torch.allclose(screen[..., 2], points[..., 2])


def test_project_is_the_pinhole_of_any_camera_matrix() -> None:
    points = torch.randn(3, 40, 3, dtype=torch.float64) + torch.tensor([0.0, 0.0, 30.0], dtype=torch.float64)
    matrix = torch.randn(3, 3, 3, dtype=torch.float64)  # skew and all: project makes no assumption
    matrix[:, 2] = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    homogeneous = points @ matrix.transpose(1, 2)
    expected = torch.cat([homogeneous[..., :2] / homogeneous[..., 2:], points[..., 2:]], dim=-1)
    torch.testing.assert_close(project(points, matrix), expected)


def test_principal_point_and_axes() -> None:
    matrix = intrinsics(torch.tensor([100.0]), 200, 300)
    screen = project(torch.tensor([[[0.0, 0.0, 10.0], [1.0, 1.0, 10.0]]]), matrix)
    torch.testing.assert_close(screen[0, 0, :2], torch.tensor([150.0, 100.0]))
    torch.testing.assert_close(screen[0, 1, :2], torch.tensor([160.0, 110.0]))


def test_frontal_face_in_front_of_camera() -> None:
    model_points = torch.tensor([[[0.0, 5.0, 10.0], [0.0, 0.0, 0.0]]])
    camera = model_to_camera(model_points, torch.eye(3)[None], torch.tensor([[0.0, 0.0, 60.0]]))
    assert camera[0, 0, 2] < camera[0, 1, 2]
    assert camera[0, 0, 1] < 0


def test_shape_errors() -> None:
    with pytest.raises(ShapeError, match="'camera_matrix'"):
        project(torch.zeros(1, 4, 3), torch.zeros(2, 3, 3))
    with pytest.raises(ValueError, match="'angles'"):
        euler_to_matrix(torch.zeros(4, 2))
