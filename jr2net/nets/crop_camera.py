"""The camera of an aligned face crop, and head poses moved between the image and its crop.

An aligned crop is a similarity ``crop = s · Rot(θ) · pixel + b`` of the image (see
:mod:`jr2net.alignment`). Seen through the crop, the image camera (focal f, principal point c)
becomes a camera with focal ``s · f`` and principal point ``A(c)``, rolled by θ about its optical
axis. So a head pose carries over exactly: camera-frame points rotate by ``Rz(θ)``, i.e.
``t_crop = Rz(θ) · t`` and ``R_crop = FLIP · Rz(θ) · FLIP · R`` (``camera = FLIP · R · v + t``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from jr2net.camera import FLIP, euler_to_matrix, matrix_to_euler
from jr2net.shapes import check_tensor

DEFAULT_FIELD_OF_VIEW_DEG = 63.0


def default_focal(image_height: Tensor) -> Tensor:
    """The focal (B,) in pixels assumed for images (B,) high: the fitter's start, a 63° field of view."""
    return 0.5 * image_height / math.tan(math.radians(DEFAULT_FIELD_OF_VIEW_DEG) / 2)


def crop_roll(matrix: Tensor) -> Tensor:
    """The camera-frame rotation (B, 3, 3) ``Rz(θ)`` and scale s (B,) of (B, 2, 3) crop matrices."""
    check_tensor("matrix", matrix, ("B", 2, 3))
    scale = matrix[:, 0, :2].norm(dim=-1)
    rotation = torch.zeros(matrix.shape[0], 3, 3, dtype=matrix.dtype, device=matrix.device)
    rotation[:, :2, :2] = matrix[:, :, :2] / scale[:, None, None]
    rotation[:, 2, 2] = 1.0
    return rotation, scale


def crop_intrinsics(matrix: Tensor, image_size: Tensor, focal: Tensor) -> Tensor:
    """Intrinsics (B, 3, 3) of the crop camera.

    Args:
        matrix: (B, 2, 3) image-to-crop affine maps.
        image_size: (B, 2) image (height, width).
        focal: (B,) image focal in pixels.
    """
    _, scale = crop_roll(matrix)
    centre = torch.stack([image_size[:, 1], image_size[:, 0]], dim=-1).to(matrix) / 2
    principal = (matrix[:, :, :2] @ centre[:, :, None])[..., 0] + matrix[:, :, 2]
    intrinsic = torch.zeros(matrix.shape[0], 3, 3, dtype=matrix.dtype, device=matrix.device)
    intrinsic[:, 0, 0] = intrinsic[:, 1, 1] = scale * focal.to(matrix)
    intrinsic[:, :2, 2] = principal
    intrinsic[:, 2, 2] = 1.0
    return intrinsic


def _model_roll(roll: Tensor) -> Tensor:
    flip = FLIP.to(roll)
    return flip @ roll @ flip


def image_pose_to_crop(rotation: Tensor, translation: Tensor, matrix: Tensor) -> tuple[Tensor, Tensor]:
    """Euler angles (B, 3) and translation (B, 3) of the image camera -> the crop camera's."""
    roll, _ = crop_roll(matrix)
    roll = roll.to(rotation)
    crop_rotation = _model_roll(roll) @ euler_to_matrix(rotation)
    return matrix_to_euler(crop_rotation), (roll @ translation[:, :, None])[..., 0]


def crop_pose_to_image(rotation: Tensor, translation: Tensor, matrix: Tensor) -> tuple[Tensor, Tensor]:
    """Inverse of :func:`image_pose_to_crop`."""
    roll, _ = crop_roll(matrix)
    roll = roll.to(rotation).transpose(1, 2)
    image_rotation = _model_roll(roll) @ euler_to_matrix(rotation)
    return matrix_to_euler(image_rotation), (roll @ translation[:, :, None])[..., 0]


def camera_position(rotation: Tensor, translation: Tensor, point: Tensor) -> Tensor:
    """Camera-frame position (B, 3) of the model-frame ``point`` (3,) on heads at Euler angles
    ``rotation`` (B, 3) and translation (B, 3): ``FLIP · R · point + t``."""
    return (FLIP.to(rotation) @ euler_to_matrix(rotation)) @ point.to(rotation) + translation


def ray_rotation(translation: Tensor) -> Tensor:
    """The camera-frame rotation (B, 3, 3) taking the optical axis onto the ray to ``translation`` (B, 3).

    The smallest such rotation (its axis is perpendicular to both): a face seen off the optical
    axis looks, in a crop around it, like a face on the axis turned by this rotation.
    """
    direction = torch.nn.functional.normalize(translation, dim=-1)
    axis = torch.stack([-direction[:, 1], direction[:, 0], torch.zeros_like(direction[:, 0])], dim=-1)
    sine, cosine = axis.norm(dim=-1), direction[:, 2]
    unit = axis / sine.clamp(min=1e-12)[:, None]
    zero = torch.zeros_like(sine)
    cross = torch.stack(
        [zero, -unit[:, 2], unit[:, 1], unit[:, 2], zero, -unit[:, 0], -unit[:, 1], unit[:, 0], zero], dim=-1
    ).reshape(-1, 3, 3)
    identity = torch.eye(3, dtype=translation.dtype, device=translation.device).expand_as(cross)
    return identity + sine[:, None, None] * cross + (1 - cosine)[:, None, None] * (cross @ cross)


def along_ray(rotation: Tensor, translation: Tensor) -> Tensor:
    """Euler angles (B, 3) relative to the viewing ray of a head at ``translation`` -> camera-frame angles."""
    return matrix_to_euler(_model_roll(ray_rotation(translation)) @ euler_to_matrix(rotation))


def relative_to_ray(rotation: Tensor, translation: Tensor) -> Tensor:
    """Inverse of :func:`along_ray`."""
    return matrix_to_euler(_model_roll(ray_rotation(translation)).transpose(1, 2) @ euler_to_matrix(rotation))
