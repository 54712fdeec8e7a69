"""RecNet: backbones, decoding, the crop camera, and weights on disk."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.camera import euler_to_matrix, intrinsics, model_to_camera, project
from jr2net.face_model import FaceModel
from jr2net.lighting import light_preset, sh_basis
from jr2net.mirror import FaceMirror
from jr2net.nets.backbones import MobileNetV2, resnet18, resnet50
from jr2net.nets.checkpoint import load_weights, save_weights
from jr2net.nets.crop_camera import (
    along_ray,
    camera_position,
    crop_intrinsics,
    crop_pose_to_image,
    image_pose_to_crop,
    ray_rotation,
    relative_to_ray,
)
from jr2net.nets.recnet import (
    CROP_SIZE,
    EXPRESSION_OFFSET,
    FACE_ANCHOR,
    TYPICAL_CENTRE,
    TYPICAL_DEPTH_RATIO,
    CropParams,
    RecNet,
    albedo_basis,
    albedo_from_coefficients,
)
from jr2net.params import DEFAULT_ALBEDO, ParamLayout
from jr2net.shapes import ShapeError


@pytest.mark.parametrize(("make", "features"), [(resnet18, 512), (resnet50, 2048), (MobileNetV2, 640)])
def test_backbones_pool_to_their_feature_size(make, features: int) -> None:
    net = make().eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, features) == (2, net.feature_size)


def test_decode_maps_each_slice_of_the_output_to_its_quantity(face_model: FaceModel) -> None:
    """The zero output (the untrained head) is the typical face: near-neutral, at the typical centre
    and depth, frontal light; known values in each slice decode through that slice's mapping."""
    net = RecNet(ParamLayout.of(face_model))
    identity, expression = torch.linspace(-1, 1, 100), torch.linspace(-2, 2, 53)
    rotation, centre, depth = torch.tensor([0.1, -0.2, 0.3]), torch.tensor([0.2, -0.4]), torch.tensor([0.7])
    light, albedo = torch.linspace(-1, 1, 27), torch.linspace(-1, 1, 30)
    known = torch.cat([identity, expression, rotation, centre, depth, light, albedo])
    decoded = net.decode(torch.stack([torch.zeros(net.output_size), known]))
    typical_centre, frontal = CROP_SIZE * torch.tensor(TYPICAL_CENTRE), light_preset("frontal")
    assert not decoded.identity[0].any() and not decoded.rotation[0].any()
    assert torch.allclose(decoded.expression[0], torch.sigmoid(torch.tensor(EXPRESSION_OFFSET)).expand(53))
    assert torch.allclose(decoded.centre[0], typical_centre)
    assert torch.isclose(decoded.depth_ratio[0], torch.tensor(TYPICAL_DEPTH_RATIO))
    assert torch.allclose(decoded.light[0], frontal) and not decoded.albedo_coefficients[0].any()
    assert torch.equal(decoded.identity[1], identity) and torch.equal(decoded.rotation[1], rotation)
    assert torch.allclose(decoded.expression[1], torch.sigmoid(expression + EXPRESSION_OFFSET))
    assert torch.allclose(decoded.centre[1], typical_centre + CROP_SIZE * centre / 2)
    assert torch.isclose(decoded.depth_ratio[1], TYPICAL_DEPTH_RATIO * depth.exp()[0])
    assert torch.allclose(decoded.light[1], frontal + 0.5 * light.reshape(9, 3))
    assert torch.allclose(decoded.albedo_coefficients[1], 0.2 * albedo.reshape(10, 3))


def test_decoded_faces_are_placed_where_the_crop_shows_them(face_model: FaceModel) -> None:
    """In the full image, the face anchor projects to the pixel the crop map takes onto the decoded
    crop centre; zero albedo coefficients give the default skin tone; without a basis, no albedo."""
    torch.manual_seed(0)
    net = RecNet(ParamLayout.of(face_model))
    decoded = net.decode(torch.randn(3, net.output_size))
    matrix = torch.tensor([[[0.5, 0.0, -10.0], [0.0, 0.5, -20.0]]]).double().repeat(3, 1, 1)
    size = torch.tensor([[480, 640]] * 3)
    params = decoded.to_face_params(matrix, size, albedo_basis(face_model.neutral))
    anchor = camera_position(params.rotation, params.translation, torch.tensor(FACE_ANCHOR))
    pixel = project(anchor[:, None], intrinsics(params.focal, 480, 640))[:, 0, :2].double()
    assert torch.allclose(pixel @ matrix[0, :, :2].T + matrix[0, :, 2], decoded.centre.double(), atol=1e-2)
    assert params.albedo.shape == (3, face_model.vertex_count, 3)
    plain = dataclasses.replace(decoded, albedo_coefficients=torch.zeros(3, 10, 3))
    tone = plain.to_face_params(matrix, size, albedo_basis(face_model.neutral)).albedo
    assert torch.allclose(tone, torch.tensor(DEFAULT_ALBEDO).expand_as(tone))
    without = decoded.to_face_params(matrix, size, None)
    assert without.albedo is None and torch.equal(without.translation, params.translation)


def test_recnet_rejects_wrong_inputs(face_model: FaceModel) -> None:
    net = RecNet(ParamLayout.of(face_model))
    with pytest.raises(ShapeError, match="images"):
        net(torch.rand(1, 3, 224, 200))
    with pytest.raises(ShapeError, match="raw"):
        net.decode(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="unknown RecNet architecture"):
        RecNet(ParamLayout.of(face_model), "vgg")


def _crop_matrix(angle: float, scale: float, shift: tuple[float, float]) -> torch.Tensor:
    c, s = math.cos(angle) * scale, math.sin(angle) * scale
    return torch.tensor([[[c, s, shift[0]], [-s, c, shift[1]]]], dtype=torch.float64)


def test_the_crop_camera_sees_the_image_through_the_crop_map(face_model: FaceModel) -> None:
    """Projecting with the crop camera and the crop-frame pose == mapping the image projection."""
    rotation, translation = torch.tensor([[0.2, -0.4, 0.15]]), torch.tensor([[6.0, -3.0, 55.0]])
    focal, size = torch.tensor([700.0]), torch.tensor([[480, 640]])
    matrix = _crop_matrix(0.3, 0.8, (-150.0, -40.0))
    vertices = face_model(torch.zeros(1, 100), torch.zeros(1, 53))[:, ::50]
    image_points = project(
        model_to_camera(vertices, euler_to_matrix(rotation), translation), intrinsics(focal, 480, 640)
    )[0, :, :2].double()
    mapped = image_points @ matrix[0, :, :2].T + matrix[0, :, 2]
    crop_rotation, crop_translation = image_pose_to_crop(rotation, translation, matrix)
    crop_points = project(
        model_to_camera(vertices, euler_to_matrix(crop_rotation), crop_translation),
        crop_intrinsics(matrix, size, focal).float(),
    )[0, :, :2]
    assert torch.allclose(crop_points.double(), mapped, atol=1e-2)
    back_rotation, back_translation = crop_pose_to_image(crop_rotation, crop_translation, matrix)
    assert torch.allclose(back_rotation, rotation, atol=1e-5)
    assert torch.allclose(back_translation, translation, atol=1e-4)


def test_crop_params_place_the_face_back_into_the_image(face_model: FaceModel) -> None:
    rotation, translation = torch.tensor([[0.1, 0.3, -0.2]]), torch.tensor([[-4.0, 2.0, 48.0]])
    focal, size, matrix = (
        torch.tensor([600.0]),
        torch.tensor([[480, 640]]),
        _crop_matrix(-0.2, 0.9, (-90.0, -60.0)),
    )
    crop_rotation, crop_translation = image_pose_to_crop(rotation, translation, matrix)
    camera = crop_intrinsics(matrix, size, focal).float()
    anchor = camera_position(crop_rotation, crop_translation, torch.tensor(FACE_ANCHOR))
    centre = project(anchor[:, None], camera)[:, 0, :2]
    decoded = CropParams(
        identity=torch.zeros(1, 100),
        expression=torch.zeros(1, 53),
        rotation=relative_to_ray(crop_rotation, anchor),
        centre=centre,
        depth_ratio=anchor[:, 2] / camera[:, 0, 0],
        light=torch.zeros(1, 9, 3),
        albedo_coefficients=torch.zeros(1, 10, 3),
    )
    params = decoded.to_face_params(matrix, size, albedo_basis(face_model.neutral), focal)
    assert torch.allclose(params.rotation, rotation, atol=1e-5)
    assert torch.allclose(params.translation, translation, atol=1e-3)


def test_the_face_anchor_sits_amid_the_landmarks_of_the_mean_shape(face_model: FaceModel) -> None:
    """RecNet places the face by a point at its front, where the tracked landmarks are, not by the
    head's origin behind it."""
    neutral = face_model(torch.zeros(1, 100), torch.zeros(1, 53))[0, face_model.landmarks68]
    assert torch.allclose(neutral.mean(0), torch.tensor(FACE_ANCHOR), atol=1.0)
    assert neutral[:, 2].mean() > 8.0


def test_the_face_anchor_keeps_its_pixel_and_size_whatever_the_focal(face_model: FaceModel) -> None:
    """Decoded with a focal twice as long, the anchor projects to the same crop pixel and the face
    keeps nearly its size: the head's origin moves back with the focal, its front stays in place."""
    vertices = face_model(torch.zeros(1, 100), torch.zeros(1, 53))[:, face_model.landmarks68]
    decoded = CropParams(
        identity=torch.zeros(1, 100),
        expression=torch.zeros(1, 53),
        rotation=torch.tensor([[0.1, 0.3, 0.0]]),
        centre=torch.tensor([[115.0, 135.0]]),
        depth_ratio=torch.tensor([0.105]),
        light=torch.zeros(1, 9, 3),
        albedo_coefficients=torch.zeros(1, 10, 3),
    )
    spreads = []
    for focal in (300.0, 600.0):
        camera = intrinsics(torch.tensor([focal]), CROP_SIZE, CROP_SIZE)
        angles, translation = decoded.crop_pose(camera[:, 0, 0], camera[:, :2, 2])
        anchor = camera_position(angles, translation, torch.tensor(FACE_ANCHOR))
        assert torch.allclose(project(anchor[:, None], camera)[0, 0, :2], decoded.centre[0], atol=1e-3)
        points = project(model_to_camera(vertices, euler_to_matrix(angles), translation), camera)[0, :, :2]
        spreads.append((points - points.mean(0)).norm(dim=-1).mean())
    assert abs(spreads[1] / spreads[0] - 1) < 0.05


def test_mirrored_crop_params_show_the_face_in_the_flipped_crop(face_model: FaceModel) -> None:
    """The mirrored estimate, placed in the flipped crop (principal point at its centre), puts each
    vertex where its mirror vertex was, flipped; mirroring twice gives the estimate back."""
    torch.manual_seed(2)
    mirror = FaceMirror.of(face_model)
    params = CropParams(
        identity=torch.randn(1, 100),
        expression=0.5 * torch.rand(1, 53),
        rotation=torch.tensor([[0.2, 0.3, 0.1]]),
        centre=torch.tensor([[100.0, 130.0]]),
        depth_ratio=torch.tensor([0.1]),
        light=torch.randn(1, 9, 3),
        albedo_coefficients=torch.randn(1, 10, 3),
    )
    camera = intrinsics(torch.tensor([500.0]), CROP_SIZE, CROP_SIZE)

    def screen(face: CropParams) -> torch.Tensor:
        angles, translation = face.crop_pose(camera[:, 0, 0], camera[:, :2, 2])
        vertices = face_model(face.identity, face.expression)
        return project(model_to_camera(vertices, euler_to_matrix(angles), translation), camera)[0, :, :2]

    expected = screen(params)[mirror.vertex] * torch.tensor([-1.0, 1.0]) + torch.tensor([CROP_SIZE, 0.0])
    assert (screen(params.mirrored(mirror)) - expected).norm(dim=-1).mean() < 0.2  # px
    flipped = params.mirrored(mirror)
    basis = albedo_basis(face_model.neutral)
    assert torch.allclose(
        albedo_from_coefficients(basis, flipped.albedo_coefficients),
        albedo_from_coefficients(basis, params.albedo_coefficients)[:, mirror.vertex],
        atol=1e-2,  # ICT's mesh is symmetric to 0.005 cm
    )
    normals = torch.nn.functional.normalize(torch.randn(50, 3), dim=-1)
    assert torch.allclose(
        sh_basis(normals * torch.tensor([-1.0, 1.0, 1.0])) @ flipped.light[0],
        sh_basis(normals) @ params.light[0],
        atol=1e-5,
    )
    twice = flipped.mirrored(mirror)
    assert torch.allclose(twice.light, params.light) and torch.allclose(twice.centre, params.centre)
    assert torch.allclose(twice.albedo_coefficients, params.albedo_coefficients)
    assert torch.allclose(params.averaged(twice).rotation, params.rotation)


def test_weights_round_trip_in_fp16(face_model: FaceModel, tmp_path: Path) -> None:
    torch.manual_seed(1)
    net = RecNet(ParamLayout.of(face_model)).eval()
    path = tmp_path / "recnet.pt"
    save_weights(net, path, {"command": "test"})
    loaded = load_weights(path, ParamLayout.of(face_model))
    images = torch.rand(2, 3, CROP_SIZE, CROP_SIZE)
    with torch.no_grad():
        for value in net.state_dict().values():
            if value.is_floating_point():
                value.copy_(value.half().float())
        assert torch.allclose(loaded(images), net(images), atol=1e-5)
    assert path.stat().st_size < 30 * 2**20


def test_weights_loading_fails_clearly(face_model: FaceModel, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="train them with"):
        load_weights(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable RecNet weights file"):
        load_weights(tmp_path / "junk.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a RecNet weights file"):
        load_weights(tmp_path / "other.pt")
    save_weights(RecNet(ParamLayout(100, 53, 10)), tmp_path / "small_model.pt", {})
    with pytest.raises(ValueError, match="another face model|layout"):
        load_weights(tmp_path / "small_model.pt", ParamLayout.of(face_model))


def test_albedo_basis_is_smooth_and_starts_with_a_constant(face_model: FaceModel) -> None:
    basis = albedo_basis(face_model.neutral)
    assert basis.shape == (face_model.vertex_count, 10)
    assert torch.equal(basis[:, 0], torch.ones(face_model.vertex_count))
    assert basis.abs().max() <= 1.0 + 1e-6 and np.linalg.matrix_rank(basis.numpy()) == 10


def test_ray_rotation_turns_the_optical_axis_onto_the_ray() -> None:
    translation = torch.tensor([[10.0, -20.0, 50.0], [0.0, 0.0, 40.0], [-3.0, 1.0, 60.0]])
    rotation = ray_rotation(translation)
    direction = torch.nn.functional.normalize(translation, dim=-1)
    assert torch.allclose(rotation @ torch.tensor([0.0, 0.0, 1.0]), direction, atol=1e-6)
    assert torch.allclose(rotation @ rotation.transpose(1, 2), torch.eye(3).expand(3, 3, 3), atol=1e-6)
    assert torch.allclose(rotation[1], torch.eye(3)), "on the axis nothing turns"
    angles = torch.tensor([[0.1, -0.3, 0.2], [0.0, 0.0, 0.0], [-0.2, 0.4, 0.0]])
    assert torch.allclose(relative_to_ray(along_ray(angles, translation), translation), angles, atol=1e-5)


def test_an_off_axis_face_looks_turned_by_its_ray(face_model: FaceModel) -> None:
    """A frontal (ray-relative) face moved off the axis shows the same side as one turned by the ray:
    its landmarks, relative to their centre and scaled by depth, match a centred face turned by it."""
    vertices = face_model(torch.zeros(1, 100), torch.zeros(1, 53))[:, face_model.landmarks68]
    off_axis = torch.tensor([[30.0, 0.0, 60.0]])
    turned = along_ray(torch.zeros(1, 3), off_axis)
    seen = model_to_camera(vertices, euler_to_matrix(turned), off_axis)
    ray = ray_rotation(off_axis)[0]
    in_ray_frame = (seen - off_axis[:, None]) @ ray  # the face as seen along its ray
    centred = model_to_camera(vertices, torch.eye(3)[None], torch.zeros(1, 3))
    assert torch.allclose(in_ray_frame, centred, atol=1e-4)
