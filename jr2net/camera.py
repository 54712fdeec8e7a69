"""Pinhole camera, rotations (Euler and 6D) and the model-to-camera transform.

Camera frame: OpenCV convention (x right, y down, z forward, depth = z > 0). The face model's frame
has +y up and +z toward a frontal camera, so ``camera = FLIP · (R · model) + t`` with
``FLIP = diag(1, -1, -1)``; a frontal face at distance d has ``R = I`` and ``t = (0, 0, d)``.
Pixel coordinates: x to the right, y down, pixel (i, j) covers [j, j+1) × [i, i+1), its centre at
(j + 0.5, i + 0.5).
"""

from __future__ import annotations

import torch
from torch import Tensor

from jr2net.shapes import check_tensor

FLIP = torch.tensor([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]])


def euler_to_matrix(angles: Tensor) -> Tensor:
    """Rotation matrices from Euler angles in radians.

    Args:
        angles: (..., 3) = (pitch about x, yaw about y, roll about z); ``R = Rz(roll) Ry(yaw) Rx(pitch)``.
            Right-hand rule about the model axes: positive pitch turns the face down, positive yaw
            turns it toward its left (image right in a frontal view), positive roll tilts the top of
            the head toward image left.

    Returns:
        (..., 3, 3) rotation matrices.
    """
    if angles.shape[-1] != 3:
        raise ValueError(f"argument 'angles' must have shape (..., 3), got {tuple(angles.shape)}")
    pitch, yaw, roll = angles.unbind(-1)
    cx, sx, cy, sy, cz, sz = pitch.cos(), pitch.sin(), yaw.cos(), yaw.sin(), roll.cos(), roll.sin()
    one, zero = torch.ones_like(pitch), torch.zeros_like(pitch)
    rx = torch.stack([one, zero, zero, zero, cx, -sx, zero, sx, cx], -1).reshape(*pitch.shape, 3, 3)
    ry = torch.stack([cy, zero, sy, zero, one, zero, -sy, zero, cy], -1).reshape(*pitch.shape, 3, 3)
    rz = torch.stack([cz, -sz, zero, sz, cz, zero, zero, zero, one], -1).reshape(*pitch.shape, 3, 3)
    return rz @ ry @ rx


def matrix_to_euler(matrix: Tensor) -> Tensor:
    """Inverse of :func:`euler_to_matrix` for |yaw| < 90°: (..., 3, 3) -> (..., 3) radians."""
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"argument 'matrix' must have shape (..., 3, 3), got {tuple(matrix.shape)}")
    yaw = torch.asin((-matrix[..., 2, 0]).clamp(-1.0, 1.0))
    pitch = torch.atan2(matrix[..., 2, 1], matrix[..., 2, 2])
    roll = torch.atan2(matrix[..., 1, 0], matrix[..., 0, 0])
    return torch.stack([pitch, yaw, roll], -1)


def rotation_6d_to_matrix(rotation_6d: Tensor) -> Tensor:
    """Continuous 6D rotation (Zhou et al. 2019, the first two columns) -> matrix: (..., 6) -> (..., 3, 3)."""
    if rotation_6d.shape[-1] != 6:
        raise ValueError(f"argument 'rotation_6d' must have shape (..., 6), got {tuple(rotation_6d.shape)}")
    a1, a2 = rotation_6d[..., :3], rotation_6d[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rotation_6d(matrix: Tensor) -> Tensor:
    """The first two columns of a rotation matrix: (..., 3, 3) -> (..., 6)."""
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"argument 'matrix' must have shape (..., 3, 3), got {tuple(matrix.shape)}")
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def intrinsics(focal: Tensor, height: int, width: int) -> Tensor:
    """Pinhole intrinsics with the principal point at the image centre.

    Args:
        focal: (B,) focal length in pixels.
        height, width: image size in pixels.

    Returns:
        (B, 3, 3) matrices ``[[f, 0, W/2], [0, f, H/2], [0, 0, 1]]``.
    """
    check_tensor("focal", focal, ("B",))
    matrix = torch.zeros(focal.shape[0], 3, 3, dtype=focal.dtype, device=focal.device)
    matrix[:, 0, 0] = focal
    matrix[:, 1, 1] = focal
    matrix[:, 0, 2] = width / 2
    matrix[:, 1, 2] = height / 2
    matrix[:, 2, 2] = 1.0
    return matrix


def model_to_camera(vertices: Tensor, rotation: Tensor, translation: Tensor) -> Tensor:
    """Rigidly place model-frame points in the camera frame.

    Args:
        vertices: (B, N, 3) model-frame points.
        rotation: (B, 3, 3) head rotation (model frame).
        translation: (B, 3) camera-frame translation (z is the distance in front of the camera).

    Returns:
        (B, N, 3) camera-frame points ``FLIP · R · v + t``.
    """
    dims = check_tensor("vertices", vertices, ("B", "N", 3))
    check_tensor("rotation", rotation, ("B", 3, 3), dims)
    check_tensor("translation", translation, ("B", 3), dims)
    placed = FLIP.to(rotation) @ rotation
    return vertices @ placed.transpose(1, 2) + translation[:, None, :]


def project(points: Tensor, camera_matrix: Tensor) -> Tensor:
    """Camera-frame points to screen space: (B, N, 3), (B, 3, 3) -> (B, N, 3) = (x_px, y_px, depth)."""
    dims = check_tensor("points", points, ("B", "N", 3))
    check_tensor("camera_matrix", camera_matrix, ("B", 3, 3), dims)
    depth = points[..., 2:3]
    # points @ K^T, written out: a batched matmul with an inner size of 3 is several times slower.
    columns = camera_matrix[:, None, :2, :]  # (B, 1, 2, 3): the rows of K that give x and y
    pixels = points[..., 0:1] * columns[..., 0] + points[..., 1:2] * columns[..., 1]
    pixels = pixels + depth * columns[..., 2]
    return torch.cat([pixels / depth, depth], dim=-1)


def unproject(screen: Tensor, camera_matrix: Tensor) -> Tensor:
    """Screen-space (x_px, y_px, depth) back to camera-frame points: (B, N, 3) -> (B, N, 3)."""
    dims = check_tensor("screen", screen, ("B", "N", 3))
    check_tensor("camera_matrix", camera_matrix, ("B", 3, 3), dims)
    depth = screen[..., 2:3]
    pixels = torch.cat([screen[..., :2], torch.ones_like(depth)], dim=-1)
    return (pixels @ torch.linalg.inv(camera_matrix).transpose(1, 2)) * depth
