"""The rasterizer's output: per-pixel triangle id, barycentrics and depth."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Fragments:
    """Visible surface per pixel (nearest triangle after the depth test).

    Attributes:
        tri_id: (B, H, W) int64 index into the triangle list, -1 where no triangle covers the pixel.
        bary: (B, H, W, 3) float32 perspective-correct barycentrics of the pixel centre, 0 on background.
        depth: (B, H, W) float32 camera depth of the pixel centre's surface point, 0 on background.
    """

    tri_id: Tensor
    bary: Tensor
    depth: Tensor

    @property
    def mask(self) -> Tensor:
        """(B, H, W) bool, True where a triangle is visible."""
        return self.tri_id >= 0
