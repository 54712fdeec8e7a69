"""Eq. 2 warp: identity, analytic shift, occlusion, and a real two-view check on the ICT head."""

from __future__ import annotations

import math

import pytest
import torch

from jr2net.camera import FLIP, euler_to_matrix, intrinsics
from jr2net.face_model import FaceModel
from jr2net.kernels.warp_torch import WarpInputs, warp_torch
from jr2net.params import FaceParams, ParamLayout
from jr2net.render import render_face
from jr2net.shapes import ShapeError
from jr2net.warp import relative_pose, warp

SIZE = 32


def _identity_pose(batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.eye(3).expand(batch, 3, 3).contiguous(), torch.zeros(batch, 3)


def test_identity_pose_returns_the_input() -> None:
    image = torch.rand(2, 3, SIZE, SIZE)
    depth = torch.full((2, SIZE, SIZE), 10.0)
    depth[:, :5] = 0.0
    matrix = intrinsics(torch.tensor([30.0, 30.0]), SIZE, SIZE)
    result = warp_torch(WarpInputs(image, depth, depth, matrix, matrix, *_identity_pose(2)))
    face = depth[:, None] > 0
    torch.testing.assert_close(result.image * face, image * face, atol=1e-5, rtol=0)
    assert torch.all(result.image[:, :, :5] == 0)
    assert torch.equal(result.covisible.bool(), face)
    assert torch.equal(result.valid.bool(), face)
    assert torch.all(result.grid[:, :5] == -1)


@pytest.mark.parametrize("shift", [3, -5])
def test_fronto_parallel_plane_shifts_analytically(shift: int) -> None:
    """A plane at depth Z translated by t_x moves by f·t_x/Z pixels."""
    focal, plane_depth = 40.0, 8.0
    image = torch.rand(1, 2, SIZE, SIZE)
    depth = torch.full((1, SIZE, SIZE), plane_depth)
    matrix = intrinsics(torch.tensor([focal]), SIZE, SIZE)
    translation = torch.tensor([[shift * plane_depth / focal, 0.0, 0.0]])
    result = warp_torch(WarpInputs(image, depth, depth, matrix, matrix, torch.eye(3)[None], translation))
    columns = torch.arange(SIZE)
    inside = (columns + shift >= 0) & (columns + shift < SIZE)
    expected = torch.zeros_like(image)
    expected[..., inside] = image[..., columns[inside] + shift]
    torch.testing.assert_close(result.image, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(result.grid[0, 0, :, 0], columns + 0.5 + shift, atol=1e-4, rtol=0)
    assert torch.equal(result.covisible[0, 0, 0].bool(), inside)


def test_covisibility_is_zero_where_the_source_is_occluded() -> None:
    image = torch.rand(1, 3, SIZE, SIZE)
    target_depth = torch.full((1, SIZE, SIZE), 10.0)
    source_depth = target_depth.clone()
    source_depth[:, 8:20, 4:12] = 6.0
    matrix = intrinsics(torch.tensor([30.0]), SIZE, SIZE)
    result = warp_torch(WarpInputs(image, source_depth, target_depth, matrix, matrix, *_identity_pose()))
    occluded = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    occluded[8:20, 4:12] = True
    assert torch.all(result.covisible[0, 0][occluded] == 0)
    assert torch.all(result.covisible[0, 0][~occluded] == 1)


def test_points_behind_the_source_camera_are_invalid() -> None:
    depth = torch.full((1, SIZE, SIZE), 5.0)
    matrix = intrinsics(torch.tensor([30.0]), SIZE, SIZE)
    behind = torch.tensor([[0, 0, -6.0]])
    result = warp_torch(
        WarpInputs(torch.rand(1, 1, SIZE, SIZE), depth, depth, matrix, matrix, torch.eye(3)[None], behind)
    )
    assert not result.valid.any() and not result.covisible.any() and torch.all(result.image == 0)


def test_relative_pose_maps_target_points_to_source_points() -> None:
    points = torch.randn(1, 20, 3)
    rotation_t, rotation_s = euler_to_matrix(torch.randn(2, 1, 3))
    translation_t, translation_s = torch.randn(2, 1, 3)
    in_target = points @ rotation_t.transpose(1, 2) + translation_t[:, None]
    in_source = points @ rotation_s.transpose(1, 2) + translation_s[:, None]
    rotation, translation = relative_pose(rotation_t, translation_t, rotation_s, translation_s)
    torch.testing.assert_close(in_target @ rotation.transpose(1, 2) + translation[:, None], in_source)


def test_wrong_shapes_name_the_argument() -> None:
    depth = torch.ones(1, SIZE, SIZE)
    matrix = intrinsics(torch.tensor([30.0]), SIZE, SIZE)
    image = torch.rand(1, 3, SIZE, SIZE)
    with pytest.raises(ShapeError, match="'source_depth'"):
        WarpInputs(image, torch.ones(1, 8, 8), depth, matrix, matrix, *_identity_pose())
    with pytest.raises(ShapeError, match="'translation'"):
        WarpInputs(image, depth, depth, matrix, matrix, torch.eye(3)[None], torch.zeros(3))
    with pytest.raises(ValueError, match="unknown kernel backend"):
        warp(WarpInputs(image, depth, depth, matrix, matrix, *_identity_pose()), backend="opengl")


def test_warps_one_rendered_view_of_the_head_into_another(face_model: FaceModel) -> None:
    """Warping the source view's albedo by the target depth reproduces the target's albedo."""
    size = 128
    base = FaceParams.neutral(ParamLayout.of(face_model), distance=50.0, focal=size * 50 / 30)
    texture = face_model.vertex_normals(face_model(base.identity, base.expression)) * 0.5 + 0.5
    base = base.replace(translation=torch.tensor([[0.0, 2.0, 50.0]]), albedo=texture)
    source = base.replace(rotation=torch.tensor([[0.0, math.radians(-25), 0.0]]))
    target = base.replace(rotation=torch.tensor([[0.05, math.radians(10), 0.0]]))
    source_maps = render_face(face_model, source, size, size, region="face_area")
    target_maps = render_face(face_model, target, size, size, region="face_area")
    placement = [FLIP @ euler_to_matrix(p.rotation) for p in (target, source)]
    rotation, translation = relative_pose(placement[0], target.translation, placement[1], source.translation)
    matrix = intrinsics(base.focal, size, size)
    source_image = torch.cat([source_maps.albedo, source_maps.mask], dim=1)
    depths = (source_maps.depth[:, 0], target_maps.depth[:, 0])
    result = warp(WarpInputs(source_image, *depths, matrix, matrix, rotation, translation))
    covisible = result.covisible[0, 0].bool()
    face = target_maps.mask[0, 0].bool()
    assert 0.5 < covisible.sum() / face.sum() < 0.98
    all_taps_on_face = result.image[0, 3] > 0.999
    error = (result.image[0, :3] - target_maps.albedo[0]).abs().amax(dim=0)[covisible & all_taps_on_face]
    assert error.median() < 0.01 and error.quantile(0.9) < 0.05
    hidden = face & ~covisible
    assert hidden[:, : size // 2].sum() > 2 * hidden[:, size // 2 :].sum(), (
        "the source turned its -x cheek away"
    )
