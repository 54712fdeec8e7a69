"""One geometry pass: model-frame vertices to camera points, screen points and view normals.

Every render, warp, light fit and landmark placement starts from the same chain (see
:mod:`jr2net.camera` for the frames): ``camera = FLIP · R · v + t``, ``screen = project(camera, K)``,
``view normals = normals(v) · Rᵀ`` (the head rotation without ``FLIP``: the view frame is the
camera frame with y and z flipped, x right, y up, z toward the camera, the frame of the SH light).
:func:`face_geometry` runs it for FaceParams, :func:`place_vertices` for any pose and camera.

:func:`depth_visible` is the depth test that goes with it: a point is visible in a rendered depth
map when it lies inside the image, on the rendered surface, and not behind it by more than a
relative tolerance. Each use names its tolerance here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.camera import euler_to_matrix, intrinsics, model_to_camera, project
from jr2net.face_model import FaceModel
from jr2net.params import FaceParams
from jr2net.shapes import ShapeError, check_tensor

COVISIBILITY_TOLERANCE = 0.02  # reenactment: the source saw a target pixel's surface point
ALBEDO_VISIBILITY_TOLERANCE = 0.03  # light and albedo: the photo saw a vertex
OUTLINE_VISIBILITY_TOLERANCE = 0.02  # 68 landmarks: a face vertex can be on the visible outline


@dataclass(frozen=True)
class FaceGeometry:
    """A batch of meshes placed in a camera.

    Attributes:
        camera_points: (B, V, 3) vertices in the camera frame (OpenCV: x right, y down, z forward).
        screen: (B, V, 3) (x_px, y_px, depth) of the vertices.
        view_normals: (B, V, 3) unit vertex normals in the view frame (x right, y up, z toward the
            camera).
        intrinsics: (B, 3, 3) the camera matrices ``screen`` was projected with.
        rotation: (B, 3, 3) head rotations (model frame).
        translation: (B, 3) camera-frame translations.
    """

    camera_points: Tensor
    screen: Tensor
    view_normals: Tensor
    intrinsics: Tensor
    rotation: Tensor
    translation: Tensor

    def project(self, points: Tensor) -> Tensor:
        """Screen points (B, N, 3) of other model-frame points (B, N, 3) under the same pose and camera."""
        return _camera_and_screen(points, self.rotation, self.translation, self.intrinsics)[1]


def _camera_and_screen(
    points: Tensor, rotation: Tensor, translation: Tensor, camera_matrix: Tensor
) -> tuple[Tensor, Tensor]:
    """Camera-frame and screen points (B, N, 3) of model-frame points (B, N, 3)."""
    camera_points = model_to_camera(points, rotation, translation)
    return camera_points, project(camera_points, camera_matrix)


def place_vertices(
    model: FaceModel, vertices: Tensor, rotation: Tensor, translation: Tensor, camera_matrix: Tensor
) -> FaceGeometry:
    """Place meshes of the model with an explicit pose and camera (differentiable).

    Args:
        model: the face model (its triangles give the normals).
        vertices: (B, V, 3) model-frame vertices.
        rotation: (B, 3, 3) head rotations.
        translation: (B, 3) camera-frame translations.
        camera_matrix: (B, 3, 3) intrinsics.
    """
    check_tensor("vertices", vertices, ("B", model.vertex_count, 3))
    camera_points, screen = _camera_and_screen(vertices, rotation, translation, camera_matrix)
    return FaceGeometry(
        camera_points=camera_points,
        screen=screen,
        view_normals=model.vertex_normals(vertices) @ rotation.transpose(1, 2),
        intrinsics=camera_matrix,
        rotation=rotation,
        translation=translation,
    )


def face_geometry(
    model: FaceModel, params: FaceParams, height: int, width: int, shape: Tensor | None = None
) -> FaceGeometry:
    """The faces of FaceParams in an image of ``height`` × ``width`` pixels (principal point at its
    centre), differentiable.

    Args:
        model: the face model.
        params: B faces.
        height, width: image size in pixels.
        shape: (B, V, 3) ``model.identity_shape(params.identity)`` when already known, or ``None``.
    """
    shape = model.identity_shape(params.identity) if shape is None else shape
    vertices = model.with_expression(shape, params.expression)
    camera_matrix = intrinsics(params.focal, height, width)
    return place_vertices(
        model, vertices, euler_to_matrix(params.rotation), params.translation, camera_matrix
    )


def _shape_error(name: str, wanted: str, value: object) -> ShapeError:
    got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
    return ShapeError(f"argument '{name}' must have shape {wanted}, got {got}")


def depth_visible(screen_points: Tensor, depth_map: Tensor, tolerance: float) -> Tensor:
    """Where points are visible in a rendered depth map.

    A point is visible when its pixel (``floor`` of x and y) lies inside the image, the map has
    a surface there (depth > 0), and the point's depth is at most the map's × ``1 + tolerance``.

    Args:
        screen_points: (B, ..., 3) (x_px, y_px, depth) with a batch of maps, or (..., 3) with one.
        depth_map: (B, H, W) or (H, W) rendered depth, 0 on background.
        tolerance: the relative depth slack (one of this module's ``*_TOLERANCE`` constants).

    Returns:
        (B, ...) or (...) bool.
    """
    if not isinstance(depth_map, Tensor) or depth_map.dim() not in (2, 3):
        raise _shape_error("depth_map", "(B, H, W) or (H, W)", depth_map)
    if depth_map.dim() == 2:
        if not isinstance(screen_points, Tensor) or screen_points.dim() < 1 or screen_points.shape[-1] != 3:
            raise _shape_error("screen_points", "(..., 3) with an (H, W) depth_map", screen_points)
        return depth_visible(screen_points[None], depth_map[None], tolerance)[0]
    batch, height, width = depth_map.shape
    if (
        not isinstance(screen_points, Tensor)
        or screen_points.dim() < 2
        or screen_points.shape[0] != batch
        or screen_points.shape[-1] != 3
    ):
        raise _shape_error("screen_points", f"(B, ..., 3) with B={batch}", screen_points)
    column, row = screen_points[..., 0].floor().long(), screen_points[..., 1].floor().long()
    inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
    index = torch.arange(batch, device=depth_map.device).reshape(batch, *[1] * (screen_points.dim() - 2))
    seen = depth_map[index, row.clamp(0, height - 1), column.clamp(0, width - 1)]
    return inside & (seen > 0) & (screen_points[..., 2] <= seen * (1 + tolerance))
