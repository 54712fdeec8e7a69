"""Torch reference of the shading maps: interpolated normal and albedo, SH light map, image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.kernels.rasterize_torch import interpolate
from jr2net.kernels.sh import SH_TERMS, sh_monomials
from jr2net.kernels.shapes import check_tensor


@dataclass(frozen=True)
class ShadedMaps:
    """Per-pixel shading maps, channels last, zero on background.

    Attributes:
        normal: (B, H, W, 3) unit normals (normalised interpolated vertex normals).
        light: (B, H, W, 3) irradiance ``sh_monomials(normal) @ coefficients``.
        albedo: (B, H, W, 3) interpolated albedo.
        image: (B, H, W, 3) ``albedo · light``.
    """

    normal: Tensor
    light: Tensor
    albedo: Tensor
    image: Tensor


def check_maps_inputs(
    tri_id: Tensor, bary: Tensor, triangles: Tensor, normals: Tensor, albedo: Tensor, coefficients: Tensor
) -> None:
    """Validate the shared shading-map arguments (every backend calls this)."""
    dims = check_tensor("tri_id", tri_id, ("B", "H", "W"), dtype=torch.int64)
    check_tensor("bary", bary, ("B", "H", "W", 3), dims, dtype=torch.float32)
    check_tensor("triangles", triangles, ("F", 3), dims, dtype=(torch.int32, torch.int64))
    check_tensor("normals", normals, ("B", "V", 3), dims, dtype=torch.float32)
    check_tensor("albedo", albedo, ("B", "V", 3), dims, dtype=torch.float32)
    check_tensor("coefficients", coefficients, ("B", SH_TERMS, 3), dims, dtype=torch.float32)


def shade_maps_torch(
    tri_id: Tensor, bary: Tensor, triangles: Tensor, normals: Tensor, albedo: Tensor, coefficients: Tensor
) -> ShadedMaps:
    """Shading maps of rasterized meshes.

    Args:
        tri_id: (B, H, W) visible triangle per pixel, -1 on background.
        bary: (B, H, W, 3) perspective-correct barycentrics.
        triangles: (F, 3) vertex indices.
        normals: (B, V, 3) unit vertex normals (view frame).
        albedo: (B, V, 3) per-vertex albedo.
        coefficients: (B, 9, 3) irradiance coefficients in the :func:`sh_monomials` basis.

    Returns:
        :class:`ShadedMaps`; differentiable in ``bary``, ``normals``, ``albedo`` and ``coefficients``.
    """
    check_maps_inputs(tri_id, bary, triangles, normals, albedo, coefficients)
    visible = (tri_id >= 0)[..., None]
    normal = torch.nn.functional.normalize(interpolate(normals, triangles, tri_id, bary), dim=-1)
    light = (sh_monomials(normal) @ coefficients[:, None]) * visible
    albedo_map = interpolate(albedo, triangles, tri_id, bary)
    return ShadedMaps(normal=normal, light=light, albedo=albedo_map, image=albedo_map * light)
