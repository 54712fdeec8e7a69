"""Torch reference of the eq. 2 view-synthesis warp with co-visibility (JR2Net, PAPER.md).

For each target pixel p_t with rendered target depth D_t(p_t) > 0:
``p_s ~ K_s · (R · D_t(p_t) · K_t⁻¹ · p_t + t)``, evaluated as ``h = (M · p_t) · D_t + m`` with
``M = K_s R K_t⁻¹`` and ``m = K_s t`` (:func:`warp_matrices`, shared by every backend). The source
is sampled bilinearly at ``p_s = h_xy / h_z`` (pixel centres at +0.5, zero outside the image) and
non-face target pixels are zero. The target pixel is co-visible when p_s lands on a source face
pixel whose depth (the pixel containing p_s) is not in front of the warped point by more than the
tolerance: ``h_z <= D_s(p_s) · (1 + depth_tolerance)``.

Every step is written elementwise in the order the numba and CUDA twins follow, so the backends
agree to float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from jr2net.kernels.shapes import check_tensor

INVALID_COORDINATE = -1.0
DEFAULT_DEPTH_TOLERANCE = 0.02
NEAR = 1e-3


@dataclass(frozen=True)
class WarpResult:
    """Output of the eq. 2 warp.

    Attributes:
        grid: (B, H, W, 2) float32 source pixel coordinates (x, y) of each target pixel, -1 where
            the target pixel is not valid.
        image: (B, C, H, W) warped source image, zero where not valid.
        valid: (B, 1, H, W) float32 1 where the target pixel has depth and lands in front of the
            source camera.
        covisible: (B, 1, H, W) float32 1 where the target pixel is also visible in the source view.
    """

    grid: Tensor
    image: Tensor
    valid: Tensor
    covisible: Tensor


@dataclass(frozen=True)
class WarpInputs:
    """What every warp backend takes, validated on construction.

    Attributes:
        source_image: (B, C, Hs, Ws) image or features of the source view.
        source_depth: (B, Hs, Ws) rendered source depth, 0 on background.
        target_depth: (B, H, W) rendered target depth, 0 on background.
        target_intrinsics, source_intrinsics: (B, 3, 3) pinhole matrices K_t and K_s.
        rotation, translation: (B, 3, 3) and (B, 3), the relative pose taking target-camera points
            to source-camera points: ``X_s = R · X_t + t``.
    """

    source_image: Tensor
    source_depth: Tensor
    target_depth: Tensor
    target_intrinsics: Tensor
    source_intrinsics: Tensor
    rotation: Tensor
    translation: Tensor

    def __post_init__(self) -> None:
        dims = check_tensor("source_image", self.source_image, ("B", "C", "Hs", "Ws"), dtype=torch.float32)
        check_tensor("source_depth", self.source_depth, ("B", "Hs", "Ws"), dims, dtype=torch.float32)
        check_tensor("target_depth", self.target_depth, ("B", "H", "W"), dims, dtype=torch.float32)
        check_tensor("target_intrinsics", self.target_intrinsics, ("B", 3, 3), dims, dtype=torch.float32)
        check_tensor("source_intrinsics", self.source_intrinsics, ("B", 3, 3), dims, dtype=torch.float32)
        check_tensor("rotation", self.rotation, ("B", 3, 3), dims, dtype=torch.float32)
        check_tensor("translation", self.translation, ("B", 3), dims, dtype=torch.float32)

    def to(self, device: torch.device | str) -> WarpInputs:
        """The same inputs on another device."""
        return WarpInputs(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    def matrices(self) -> tuple[Tensor, Tensor]:
        """``M = K_s R K_t⁻¹`` (B, 3, 3) and ``m = K_s t`` (B, 3), float32 (see :func:`warp_matrices`)."""
        return warp_matrices(self.target_intrinsics, self.source_intrinsics, self.rotation, self.translation)


def warp_matrices(
    target_intrinsics: Tensor, source_intrinsics: Tensor, rotation: Tensor, translation: Tensor
) -> tuple[Tensor, Tensor]:
    """``M = K_s R K_t⁻¹`` (B, 3, 3) and ``m = K_s t`` (B, 3), float32, computed once per call."""
    matrix = source_intrinsics.double() @ rotation.double() @ torch.linalg.inv(target_intrinsics.double())
    offset = (source_intrinsics.double() @ translation.double()[..., None])[..., 0]
    return matrix.float().contiguous(), offset.float().contiguous()


def _row(matrix: Tensor, offset: Tensor, k: int, px: Tensor, py: Tensor, depth: Tensor) -> Tensor:
    """Row k of ``(M · p) · D + m``: (B,) coefficients broadcast over (B, H, W) pixels."""
    m0, m1, m2 = (matrix[:, k, j, None, None] for j in range(3))
    return (m0 * px + m1 * py + m2) * depth + offset[:, k, None, None]


def bilinear_zero_padded(image: Tensor, sx: Tensor, sy: Tensor) -> Tensor:
    """Sample (B, C, Hs, Ws) at continuous pixel coordinates (B, H, W) (centres at +0.5), zero outside."""
    batch, channels, height, width = image.shape
    ux, uy = sx - 0.5, sy - 0.5
    x0, y0 = torch.floor(ux), torch.floor(uy)
    ax, ay = ux - x0, uy - y0
    x0, y0 = x0.long(), y0.long()
    flat = image.reshape(batch, channels, height * width)
    total = None
    for dx, dy, weight in (
        (0, 0, (1 - ax) * (1 - ay)),
        (1, 0, ax * (1 - ay)),
        (0, 1, (1 - ax) * ay),
        (1, 1, ax * ay),
    ):
        col, row = x0 + dx, y0 + dy
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
        index = (row.clamp(0, height - 1) * width + col.clamp(0, width - 1)).reshape(batch, 1, -1)
        tap = torch.gather(flat, 2, index.expand(batch, channels, -1)).reshape(batch, channels, *sx.shape[1:])
        term = tap * torch.where(inside, weight, torch.zeros_like(weight))[:, None]
        total = term if total is None else total + term
    return total


def warp_torch(inputs: WarpInputs, depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE) -> WarpResult:
    """Warp a source image into the target view by the target depth (eq. 2).

    Args:
        inputs: images, depths, intrinsics and relative pose (see :class:`WarpInputs`).
        depth_tolerance: relative depth slack of the co-visibility test.

    Returns:
        :class:`WarpResult`; differentiable in the source image and the target depth.
    """
    source_image, source_depth, target_depth = inputs.source_image, inputs.source_depth, inputs.target_depth
    batch, height, width = target_depth.shape
    source_height, source_width = source_depth.shape[1:]
    matrix, offset = inputs.matrices()
    ys = torch.arange(height, device=target_depth.device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=target_depth.device, dtype=torch.float32) + 0.5
    py, px = torch.meshgrid(ys, xs, indexing="ij")
    hx, hy, hz = (_row(matrix, offset, k, px, py, target_depth) for k in range(3))
    valid = (target_depth > 0) & (hz > NEAR)
    safe_z = torch.where(valid, hz, torch.ones_like(hz))
    sx = torch.where(valid, hx / safe_z, torch.full_like(hx, INVALID_COORDINATE))
    sy = torch.where(valid, hy / safe_z, torch.full_like(hy, INVALID_COORDINATE))
    sampled = bilinear_zero_padded(source_image, sx, sy) * valid[:, None]
    column, row = torch.floor(sx).long(), torch.floor(sy).long()
    inside = valid & (column >= 0) & (column < source_width) & (row >= 0) & (row < source_height)
    flat_index = row.clamp(0, source_height - 1) * source_width + column.clamp(0, source_width - 1)
    seen_depth = torch.gather(source_depth.reshape(batch, -1), 1, flat_index.reshape(batch, -1)).reshape(
        hz.shape
    )
    limit = seen_depth * torch.tensor(1.0 + depth_tolerance, dtype=torch.float32)
    covisible = inside & (seen_depth > 0) & (hz <= limit)
    return WarpResult(
        grid=torch.stack([sx, sy], dim=-1),
        image=sampled,
        valid=valid[:, None].float(),
        covisible=covisible[:, None].float(),
    )
