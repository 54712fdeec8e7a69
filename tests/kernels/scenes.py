"""Inputs of the parity tests: random meshes with every awkward case, the ICT head, its two views."""

from __future__ import annotations

import math

import torch

from jr2net.camera import FLIP, euler_to_matrix, intrinsics, model_to_camera, project
from jr2net.face_model import FaceModel
from jr2net.geometry import face_geometry
from jr2net.kernels.correspond_torch import CorrespondInputs
from jr2net.kernels.rasterize_torch import rasterize_torch
from jr2net.kernels.warp_torch import WarpInputs
from jr2net.lighting import irradiance_coefficients, light_preset
from jr2net.params import FaceParams, ParamLayout
from jr2net.render import render_face
from jr2net.warp import relative_pose

POSES = [
    (0.0, 0.0, {}),
    (0.2, 35.0, {"jawOpen": 0.8}),
    (-0.1, -60.0, {"mouthSmileLeft": 1.0, "eyeBlinkRight": 1.0}),
]
YAW_PAIRS = [(0.0, 0.0), (-25.0, 15.0), (40.0, -30.0)]  # (source, target) yaws of the two views
RANDOM_HEIGHT, RANDOM_WIDTH = 48, 64  # the random meshes' image
TWO_VIEW_SIZE = 128  # the two ICT views' image


def random_mesh(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """400 random triangles over a 64x48 image: some huge, degenerate, behind the camera or off screen.

    Returns:
        (2, 1200, 3) float32 screen vertices and (400, 3) int64 triangles.
    """
    generator = torch.Generator().manual_seed(seed)
    centres = torch.rand(2, 400, 1, 3, generator=generator) * torch.tensor([80.0, 64.0, 9.0]) - torch.tensor(
        [8.0, 8.0, -1.0]
    )
    spread = torch.rand(2, 400, 1, 1, generator=generator) ** 4 * 30
    corners = centres + torch.randn(2, 400, 3, 3, generator=generator) * spread * torch.tensor(
        [1.0, 1.0, 0.05]
    )
    corners[:, :20, 2, :2] = corners[:, :20, 0, :2]
    corners[:, 20:40, 1, 2] = -1.0
    return corners.reshape(2, 1200, 3).contiguous(), torch.arange(1200).reshape(400, 3)


def ict_vertices(face_model: FaceModel, expression: dict) -> torch.Tensor:
    """(1, V, 3) model-frame vertices of the mean identity with an expression (ARKit name -> weight)."""
    return face_model(
        torch.zeros(1, face_model.identity_count), face_model.expression_vector(expression)[None]
    )


def ict_screen(face_model: FaceModel, pitch: float, yaw: float, expression: dict, size: int) -> torch.Tensor:
    """(1, V, 3) screen vertices of the ICT head at a pose (pitch in radians, yaw in degrees), size² image."""
    rotation = euler_to_matrix(torch.tensor([[pitch, math.radians(yaw), 0.0]]))
    camera = model_to_camera(ict_vertices(face_model, expression), rotation, torch.tensor([[0.0, 2.0, 60.0]]))
    return project(camera, intrinsics(torch.tensor([size * 60 / 34]), size, size))


def ict_shading_inputs(
    face_model: FaceModel, pitch: float, yaw: float, expression: dict, size: int
) -> tuple[torch.Tensor, ...]:
    """The shading maps' arguments for the ICT head at a pose: (tri_id (1, H, W), bary (1, H, W, 3),
    triangles (F, 3), normals (1, V, 3), random albedo (1, V, 3), side-light coefficients (1, 9, 3))."""
    fragments = rasterize_torch(
        ict_screen(face_model, pitch, yaw, expression, size), face_model.triangles, size, size
    )
    normals = face_model.vertex_normals(ict_vertices(face_model, expression))
    albedo = torch.rand(1, face_model.vertex_count, 3, generator=torch.Generator().manual_seed(3))
    coefficients = irradiance_coefficients(light_preset("side")[None])
    return fragments.tri_id, fragments.bary, face_model.triangles, normals, albedo, coefficients


def _two_renders(face_model: FaceModel, yaw_source: float, yaw_target: float) -> tuple[FaceParams, ...]:
    """Source and target FaceParams (the target's jaw open) of the ICT head at two yaws, 128², and
    their torch renders: (source, target, source maps, target maps)."""
    base = FaceParams.neutral(ParamLayout.of(face_model), distance=50.0, focal=TWO_VIEW_SIZE * 50 / 30)
    base = base.replace(translation=torch.tensor([[0.0, 2.0, 50.0]]))
    source = base.replace(rotation=torch.tensor([[0.0, math.radians(yaw_source), 0.0]]))
    target = base.replace(
        rotation=torch.tensor([[0.1, math.radians(yaw_target), 0.0]]),
        expression=face_model.expression_vector({"jawOpen": 0.6})[None],
    )
    with torch.no_grad():
        maps = [
            render_face(face_model, p, TWO_VIEW_SIZE, TWO_VIEW_SIZE, backend="torch")
            for p in (source, target)
        ]
    return source, target, *maps


def two_views(face_model: FaceModel, yaw_source: float, yaw_target: float) -> WarpInputs:
    """Warp inputs between two renders of the ICT head (target with an open jaw), 128², 8 channels."""
    size = TWO_VIEW_SIZE
    source, target, source_maps, target_maps = _two_renders(face_model, yaw_source, yaw_target)
    placement = [FLIP @ euler_to_matrix(p.rotation) for p in (target, source)]
    rotation, translation = relative_pose(placement[0], target.translation, placement[1], source.translation)
    features = torch.rand(1, 5, size, size, generator=torch.Generator().manual_seed(4))
    matrix = intrinsics(source.focal, size, size)
    return WarpInputs(
        source_image=torch.cat([source_maps.image, features], dim=1),
        source_depth=source_maps.depth[:, 0],
        target_depth=target_maps.depth[:, 0],
        target_intrinsics=matrix,
        source_intrinsics=matrix,
        rotation=rotation,
        translation=translation,
    )


def tied_mesh(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`random_mesh` with every triangle listed twice (ids f and f + 400): every covered pixel is
    an exact depth tie, which the lower id must win whatever order the depth test runs in."""
    screen, triangles = random_mesh(seed)
    return screen, torch.cat([triangles, triangles])


def random_shading_inputs(seed: int) -> tuple[torch.Tensor, ...]:
    """The shading maps' arguments on :func:`random_mesh`: its fragments (2, 48, 64), random
    unnormalised normals (2, 1200, 3), albedo (2, 1200, 3) and SH coefficients (2, 9, 3)."""
    screen, triangles = random_mesh(seed)
    fragments = rasterize_torch(screen, triangles, RANDOM_HEIGHT, RANDOM_WIDTH)
    generator = torch.Generator().manual_seed(seed + 100)
    normals = torch.randn(screen.shape, generator=generator)
    albedo = torch.rand(screen.shape, generator=generator)
    coefficients = torch.randn(2, 9, 3, generator=generator)
    return fragments.tri_id, fragments.bary, triangles, normals, albedo, coefficients


def random_warp_inputs(seed: int) -> WarpInputs:
    """Warp inputs on :func:`random_mesh`'s depth (2, 48, 64), target and source, a random 4-channel
    source image and a random small relative pose: pixels off the face, behind the camera, outside
    the source image, occluded and seen."""
    screen, triangles = random_mesh(seed)
    depth = rasterize_torch(screen, triangles, RANDOM_HEIGHT, RANDOM_WIDTH).depth
    generator = torch.Generator().manual_seed(seed + 200)
    matrix = intrinsics(torch.tensor([60.0, 60.0]), RANDOM_HEIGHT, RANDOM_WIDTH)
    return WarpInputs(
        source_image=torch.rand(2, 4, RANDOM_HEIGHT, RANDOM_WIDTH, generator=generator),
        source_depth=depth.flip(0).contiguous(),
        target_depth=depth,
        target_intrinsics=matrix,
        source_intrinsics=matrix,
        rotation=euler_to_matrix(torch.randn(2, 3, generator=generator) * 0.2),
        translation=torch.randn(2, 3, generator=generator),
    )


def random_correspond_inputs(seed: int) -> CorrespondInputs:
    """Correspondence on :func:`random_mesh`'s fragments (2, 48, 64): random source points (some
    behind the camera, some projecting outside the image), and the mesh's depth flipped as the
    source depth, so points are seen, occluded and off the source's surface."""
    screen, triangles = random_mesh(seed)
    fragments = rasterize_torch(screen, triangles, RANDOM_HEIGHT, RANDOM_WIDTH)
    generator = torch.Generator().manual_seed(seed + 300)
    points = torch.randn(2, 1200, 3, generator=generator) * torch.tensor([2.0, 2.0, 1.5])
    points[..., 2] += 5.0
    points[:, :30, 2] = -2.0  # behind the camera
    camera = intrinsics(torch.tensor([60.0, 45.0]), RANDOM_HEIGHT, RANDOM_WIDTH)
    return CorrespondInputs(
        fragments.tri_id, fragments.bary, triangles, points, camera, fragments.depth.flip(0).contiguous()
    )


def ict_correspondence(face_model: FaceModel, yaw_source: float, yaw_target: float) -> CorrespondInputs:
    """Correspondence between two renders of the ICT head (the target's jaw open), 128², as the
    reenactor computes it: the target's fragments, the source's camera-frame vertices and depth."""
    source, _, source_maps, target_maps = _two_renders(face_model, yaw_source, yaw_target)
    with torch.no_grad():
        points = face_geometry(face_model, source, TWO_VIEW_SIZE, TWO_VIEW_SIZE).camera_points
    return CorrespondInputs(
        target_maps.fragments.tri_id,
        target_maps.fragments.bary,
        face_model.triangles,
        points,
        intrinsics(source.focal, TWO_VIEW_SIZE, TWO_VIEW_SIZE),
        source_maps.depth[:, 0].contiguous(),
    )
