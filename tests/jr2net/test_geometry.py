"""One geometry pass: face_geometry against the camera chain written out, and the depth test."""

from __future__ import annotations

import math

import pytest
import torch

from jr2net.camera import euler_to_matrix, intrinsics, model_to_camera, project
from jr2net.face_model import FaceModel, vertex_normals
from jr2net.geometry import (
    COVISIBILITY_TOLERANCE,
    depth_visible,
    face_geometry,
    place_vertices,
)
from jr2net.kernels.warp_torch import DEFAULT_DEPTH_TOLERANCE
from jr2net.params import FaceParams, ParamLayout
from jr2net.shapes import ShapeError

HEIGHT, WIDTH = 96, 128


def _random_params(face_model: FaceModel, batch: int = 3) -> FaceParams:
    generator = torch.Generator().manual_seed(0)
    params = FaceParams.neutral(ParamLayout.of(face_model), batch, distance=60.0, focal=150.0)
    return params.replace(
        identity=torch.randn(batch, face_model.identity_count, generator=generator),
        expression=torch.rand(batch, face_model.expression_count, generator=generator) * 0.5,
        rotation=(torch.rand(batch, 3, generator=generator) - 0.5) * math.radians(60),
        translation=torch.tensor([0.0, 0.0, 60.0]) + torch.randn(batch, 3, generator=generator) * 3,
        focal=150.0 + torch.rand(batch, generator=generator) * 100,
    )


def test_face_geometry_is_the_camera_chain(face_model: FaceModel) -> None:
    params = _random_params(face_model)
    geometry = face_geometry(face_model, params, HEIGHT, WIDTH)
    rotation = euler_to_matrix(params.rotation)
    vertices = face_model(params.identity, params.expression)
    camera_points = model_to_camera(vertices, rotation, params.translation)
    matrix = intrinsics(params.focal, HEIGHT, WIDTH)
    torch.testing.assert_close(geometry.camera_points, camera_points, rtol=0, atol=0)
    torch.testing.assert_close(geometry.screen, project(camera_points, matrix), rtol=0, atol=0)
    normals = vertex_normals(vertices, face_model.triangles) @ rotation.transpose(1, 2)
    torch.testing.assert_close(geometry.view_normals, normals, rtol=0, atol=0)
    torch.testing.assert_close(geometry.intrinsics, matrix, rtol=0, atol=0)
    torch.testing.assert_close(geometry.rotation, rotation, rtol=0, atol=0)
    torch.testing.assert_close(geometry.view_normals.norm(dim=-1), torch.ones(3, face_model.vertex_count))


def test_known_shape_gives_the_same_geometry(face_model: FaceModel) -> None:
    params = _random_params(face_model)
    shape = face_model.identity_shape(params.identity)
    known = face_geometry(face_model, params, HEIGHT, WIDTH, shape)
    fresh = face_geometry(face_model, params, HEIGHT, WIDTH)
    assert torch.equal(known.screen, fresh.screen) and torch.equal(known.view_normals, fresh.view_normals)


def test_explicit_camera_and_other_points(face_model: FaceModel) -> None:
    params = _random_params(face_model, batch=2)
    vertices = face_model(params.identity, params.expression)
    rotation = euler_to_matrix(params.rotation)
    matrix = intrinsics(params.focal, 64, 64) * torch.tensor([0.5, 0.5, 1.0])[:, None]
    geometry = place_vertices(face_model, vertices, rotation, params.translation, matrix)
    torch.testing.assert_close(
        geometry.screen,
        project(model_to_camera(vertices, rotation, params.translation), matrix),
        rtol=0,
        atol=0,
    )
    torch.testing.assert_close(geometry.project(vertices[:, :5]), geometry.screen[:, :5])


def test_gradients_flow_to_every_parameter(face_model: FaceModel) -> None:
    params = _random_params(face_model, batch=2)
    leaves = {
        name: getattr(params, name).clone().requires_grad_()
        for name in ("identity", "expression", "rotation", "translation", "focal")
    }
    geometry = face_geometry(face_model, params.replace(**leaves), HEIGHT, WIDTH)
    (
        geometry.screen[..., :2].mean()
        + geometry.screen[..., 2].mean()
        + geometry.view_normals[..., 0].mean()
    ).backward()
    for name, leaf in leaves.items():
        assert torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0, name


def _depth_case() -> tuple[torch.Tensor, torch.Tensor, list[bool]]:
    """A 4 × 5 depth map with a surface at depth 10 on its left three columns, and points: in front,
    just behind within the tolerance, behind, outside the image (left, right, below), on background."""
    depth = torch.zeros(4, 5)
    depth[:, :3] = 10.0
    points = torch.tensor(
        [
            [1.5, 1.5, 9.0],
            [2.9, 3.2, 10.1],
            [0.5, 0.5, 10.5],
            [-0.1, 1.5, 5.0],
            [5.0, 1.5, 5.0],
            [1.5, 4.0, 5.0],
            [3.5, 1.5, 5.0],
        ]
    )
    return points, depth, [True, True, False, False, False, False, False]


def test_depth_visible_single_map() -> None:
    points, depth, expected = _depth_case()
    assert depth_visible(points, depth, COVISIBILITY_TOLERANCE).tolist() == expected


def test_depth_visible_batch_of_maps() -> None:
    points, depth, expected = _depth_case()
    maps = torch.stack([depth, torch.zeros_like(depth)])
    grid = torch.stack([points, points]).reshape(2, 7, 1, 3)
    visible = depth_visible(grid, maps, COVISIBILITY_TOLERANCE)
    assert visible.shape == (2, 7, 1)
    assert visible[0, :, 0].tolist() == expected and not visible[1].any()


def test_depth_visible_tolerance() -> None:
    points, depth, _ = _depth_case()
    assert not depth_visible(points[1:2], depth, 0.0).any()
    assert depth_visible(points[2:3], depth, 0.06).all()


def test_covisibility_tolerance_is_the_warp_kernels() -> None:
    assert COVISIBILITY_TOLERANCE == DEFAULT_DEPTH_TOLERANCE


def test_shape_errors_name_the_argument(face_model: FaceModel) -> None:
    with pytest.raises(ShapeError, match="'screen_points'"):
        depth_visible(torch.zeros(4, 2), torch.zeros(4, 5), COVISIBILITY_TOLERANCE)
    with pytest.raises(ShapeError, match="'screen_points'.*B=2"):
        depth_visible(torch.zeros(3, 4, 3), torch.zeros(2, 4, 5), COVISIBILITY_TOLERANCE)
    with pytest.raises(ShapeError, match="'depth_map'"):
        depth_visible(torch.zeros(4, 3), torch.zeros(5), COVISIBILITY_TOLERANCE)
    rotation, translation = torch.eye(3)[None], torch.zeros(1, 3)
    with pytest.raises(ShapeError, match="'vertices'"):
        place_vertices(face_model, torch.zeros(1, 10, 3), rotation, translation, torch.eye(3)[None])
    vertices = face_model.neutral[None]
    with pytest.raises(ShapeError, match="'camera_matrix'"):
        place_vertices(face_model, vertices, rotation, translation, torch.eye(3)[None].repeat(2, 1, 1))
    with pytest.raises(ShapeError, match="'translation'"):
        place_vertices(face_model, vertices, rotation, torch.zeros(1, 2), torch.eye(3)[None])
