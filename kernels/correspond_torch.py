"""Torch reference of the reenactor's dense correspondence: each target pixel's point on the source.

Source and target are one mesh (the same vertices, two FaceParams), so a target pixel on the mesh
(``tri_id >= 0``, triangle (i, j, k), barycentrics (b0, b1, b2)) shows the surface point
``P = (P_i b0 + P_j b1) + P_k b2`` of the source's camera-frame vertices P. Its source pixel is
``x = ((X K00 + Y K01) + Z K02) / Z`` and ``y = ((X K10 + Y K11) + Z K12) / Z`` (K the source
intrinsics), its source depth Z. It is co-visible when its source pixel (``floor`` of x and y) lies
in the source depth map, the map has a surface there and ``Z <= D_s * limit``, ``limit = 1 +
tolerance`` rounded to float32 once. Off the mesh the point is 0 and not co-visible.

Every step is written elementwise in the order the numba and CUDA twins follow, so the backends
agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.kernels.rasterize_torch import gather_corners
from jr2net.kernels.shapes import check_tensor


@dataclass(frozen=True)
class Correspondence:
    """Where each target pixel's surface point lies on the source.

    Attributes:
        points: (B, H, W, 3) float32 source (x_px, y_px, depth), pixel centres at +0.5; 0 off the mesh.
        covisible: (B, 1, H, W) float32 1 where the source saw the point.
    """

    points: Tensor
    covisible: Tensor


@dataclass(frozen=True)
class CorrespondInputs:
    """What the correspondence needs (checked on construction; a clear error otherwise).

    Attributes:
        tri_id: (B, H, W) int64 the target's triangle per pixel, -1 off the mesh.
        bary: (B, H, W, 3) float32 its barycentrics.
        triangles: (F, 3) vertex indices.
        source_points: (B, V, 3) float32 the source's vertices in its camera frame.
        camera: (B, 3, 3) float32 the source intrinsics.
        source_depth: (B, Hs, Ws) float32 the source's rendered depth, 0 off its surface.
    """

    tri_id: Tensor
    bary: Tensor
    triangles: Tensor
    source_points: Tensor
    camera: Tensor
    source_depth: Tensor

    def __post_init__(self) -> None:
        dims = check_tensor("tri_id", self.tri_id, ("B", "H", "W"), dtype=torch.int64)
        check_tensor("bary", self.bary, ("B", "H", "W", 3), dims, dtype=torch.float32)
        check_tensor("triangles", self.triangles, ("F", 3))
        check_tensor("source_points", self.source_points, ("B", "V", 3), dims, dtype=torch.float32)
        check_tensor("camera", self.camera, ("B", 3, 3), dims, dtype=torch.float32)
        check_tensor("source_depth", self.source_depth, ("B", "Hs", "Ws"), dims, dtype=torch.float32)

    def tensors(self) -> list[Tensor]:
        """The inputs in kernel argument order, detached and contiguous, triangles as int64."""
        return [
            t.detach().contiguous()
            for t in (
                self.tri_id,
                self.bary,
                self.triangles.to(device=self.tri_id.device, dtype=torch.int64),
                self.source_points,
                self.camera,
                self.source_depth,
            )
        ]


def limit_factor(tolerance: float) -> float:
    """``1 + tolerance`` as the float32 every backend multiplies by."""
    return torch.tensor(1.0 + tolerance, dtype=torch.float32).item()


def correspond_torch(inputs: CorrespondInputs, tolerance: float) -> Correspondence:
    """Each target pixel's source point and co-visibility (see the module docstring); ``tolerance``
    is the relative depth slack of the co-visibility test."""
    tri_id, bary, source_depth = inputs.tri_id, inputs.bary, inputs.source_depth
    corners = gather_corners(inputs.source_points, inputs.triangles, tri_id)  # (B, H, W, 3, 3)
    point = corners[..., 0, :] * bary[..., 0:1] + corners[..., 1, :] * bary[..., 1:2]
    point = point + corners[..., 2, :] * bary[..., 2:3]
    x, y, z = point.unbind(-1)
    k = inputs.camera[:, None, None]  # (B, 1, 1, 3, 3)
    on_mesh = tri_id >= 0
    safe_z = torch.where(on_mesh, z, torch.ones_like(z))
    px = (x * k[..., 0, 0] + y * k[..., 0, 1] + z * k[..., 0, 2]) / safe_z
    py = (x * k[..., 1, 0] + y * k[..., 1, 1] + z * k[..., 1, 2]) / safe_z
    points = torch.where(on_mesh[..., None], torch.stack([px, py, z], dim=-1), torch.zeros_like(point))
    height, width = source_depth.shape[1:]
    inside = on_mesh & (px >= 0) & (px < width) & (py >= 0) & (py < height)
    column = px.floor().long().clamp(0, width - 1)
    row = py.floor().long().clamp(0, height - 1)
    batch = torch.arange(tri_id.shape[0], device=tri_id.device)[:, None, None]
    seen = source_depth[batch, row, column]
    covisible = inside & (seen > 0) & (z <= seen * limit_factor(tolerance))
    return Correspondence(points=points, covisible=covisible[:, None].float())
