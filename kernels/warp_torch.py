"""Torch reference of the eq. 2 view-synthesis warp with co-visibility (JR2Net, PAPER.md).

For each target pixel p_t with rendered target depth D_t(p_t) > 0:
``p_s ~ K_s · (R · D_t(p_t) · K_t⁻¹ · p_t + t)``; the source image is sampled bilinearly at p_s
(zero outside the image, ``grid_sample`` with ``align_corners=False``: pixel centres at +0.5) and
non-face target pixels are zero. The target pixel is co-visible when p_s lands on a source face
pixel whose depth (nearest pixel) is not in front of the warped point by more than the tolerance:
``z_s <= D_s(p_s) · (1 + depth_tolerance)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.kernels.shapes import check_tensor

INVALID_COORDINATE = -1.0
DEFAULT_DEPTH_TOLERANCE = 0.02
DEFAULT_NEAR = 1e-3


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


def check_warp_inputs(
    source_image: Tensor,
    source_depth: Tensor,
    target_depth: Tensor,
    target_intrinsics: Tensor,
    source_intrinsics: Tensor,
    rotation: Tensor,
    translation: Tensor,
) -> None:
    """Validate the shared warp arguments (every backend calls this)."""
    dims = check_tensor("source_image", source_image, ("B", "C", "Hs", "Ws"), dtype=torch.float32)
    check_tensor("source_depth", source_depth, ("B", "Hs", "Ws"), dims, dtype=torch.float32)
    check_tensor("target_depth", target_depth, ("B", "H", "W"), dims, dtype=torch.float32)
    check_tensor("target_intrinsics", target_intrinsics, ("B", 3, 3), dims, dtype=torch.float32)
    check_tensor("source_intrinsics", source_intrinsics, ("B", 3, 3), dims, dtype=torch.float32)
    check_tensor("rotation", rotation, ("B", 3, 3), dims, dtype=torch.float32)
    check_tensor("translation", translation, ("B", 3), dims, dtype=torch.float32)


def warp_torch(
    source_image: Tensor,
    source_depth: Tensor,
    target_depth: Tensor,
    target_intrinsics: Tensor,
    source_intrinsics: Tensor,
    rotation: Tensor,
    translation: Tensor,
    depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE,
) -> WarpResult:
    """Warp a source image into the target view by the target depth (eq. 2).

    Args:
        source_image: (B, C, Hs, Ws) image or features of the source view.
        source_depth: (B, Hs, Ws) rendered source depth, 0 on background.
        target_depth: (B, H, W) rendered target depth, 0 on background.
        target_intrinsics, source_intrinsics: (B, 3, 3) pinhole matrices K_t and K_s.
        rotation, translation: (B, 3, 3) and (B, 3), the relative pose taking target-camera points
            to source-camera points: ``X_s = R · X_t + t``.
        depth_tolerance: relative depth slack of the co-visibility test.

    Returns:
        :class:`WarpResult`; differentiable in ``source_image`` and ``target_depth``.
    """
    check_warp_inputs(
        source_image, source_depth, target_depth, target_intrinsics, source_intrinsics, rotation, translation
    )
    batch, height, width = target_depth.shape
    source_height, source_width = source_image.shape[-2:]
    ys = torch.arange(height, device=target_depth.device, dtype=torch.float32) + 0.5
    xs = torch.arange(width, device=target_depth.device, dtype=torch.float32) + 0.5
    py, px = torch.meshgrid(ys, xs, indexing="ij")
    pixels = torch.stack([px, py, torch.ones_like(px)], dim=-1).reshape(1, -1, 3)
    rays = pixels @ torch.linalg.inv(target_intrinsics).transpose(1, 2)
    points = rays * target_depth.reshape(batch, -1, 1)
    source_points = points @ rotation.transpose(1, 2) + translation[:, None, :]
    projected = source_points @ source_intrinsics.transpose(1, 2)
    z_source = projected[..., 2]
    valid = (target_depth.reshape(batch, -1) > 0) & (z_source > DEFAULT_NEAR)
    safe_z = torch.where(valid, z_source, torch.ones_like(z_source))
    grid = projected[..., :2] / safe_z[..., None]
    grid = torch.where(valid[..., None], grid, torch.full_like(grid, INVALID_COORDINATE))
    scale = torch.tensor([2.0 / source_width, 2.0 / source_height], device=grid.device)
    normalised = (grid * scale - 1.0).reshape(batch, height, width, 2)
    sampled = torch.nn.functional.grid_sample(
        source_image, normalised, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    valid_map = valid.reshape(batch, 1, height, width).float()
    column = torch.floor(grid[..., 0]).long()
    row = torch.floor(grid[..., 1]).long()
    inside = valid & (column >= 0) & (column < source_width) & (row >= 0) & (row < source_height)
    flat_index = row.clamp(0, source_height - 1) * source_width + column.clamp(0, source_width - 1)
    seen_depth = torch.gather(source_depth.reshape(batch, -1), 1, flat_index)
    covisible = inside & (seen_depth > 0) & (z_source <= seen_depth * (1.0 + depth_tolerance))
    return WarpResult(
        grid=grid.reshape(batch, height, width, 2),
        image=sampled * valid_map,
        valid=valid_map,
        covisible=covisible.reshape(batch, 1, height, width).float(),
    )
