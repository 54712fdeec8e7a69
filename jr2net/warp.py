"""Warp facade: the eq. 2 view-synthesis warp and co-visibility mask, and the mesh's dense
correspondence of a target render with the source (kernels behind both).

``backend`` as in :mod:`jr2net.render`; the numba and CUDA kernels carry no gradients, so when a
gradient is wanted (source image or target depth require it) the torch reference runs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jr2net.kernels.correspond_torch import Correspondence, CorrespondInputs
from jr2net.kernels.dispatch import implementation, resolve_backend
from jr2net.kernels.fragments import Fragments
from jr2net.kernels.warp_torch import DEFAULT_DEPTH_TOLERANCE, WarpInputs, WarpResult

__all__ = ["Correspondence", "WarpInputs", "WarpResult", "mesh_correspondence", "relative_pose", "warp"]


def relative_pose(
    target_rotation: Tensor, target_translation: Tensor, source_rotation: Tensor, source_translation: Tensor
) -> tuple[Tensor, Tensor]:
    """Pose taking target-camera points to source-camera points for two placements of one object.

    With ``X_t = A_t v + b_t`` and ``X_s = A_s v + b_s`` (A: (B, 3, 3) camera-from-model rotations,
    b: (B, 3) translations), ``X_s = R X_t + t`` with ``R = A_s A_tᵀ`` and ``t = b_s - R b_t``.
    """
    rotation = source_rotation @ target_rotation.transpose(1, 2)
    translation = source_translation - (rotation @ target_translation[..., None])[..., 0]
    return rotation, translation


def warp(
    inputs: WarpInputs, depth_tolerance: float = DEFAULT_DEPTH_TOLERANCE, backend: str = "auto"
) -> WarpResult:
    """Eq. 2 warp of the source image into the target view (see :mod:`jr2net.kernels.warp_torch`)."""
    name = resolve_backend(backend, inputs.target_depth.device)
    if torch.is_grad_enabled() and (inputs.source_image.requires_grad or inputs.target_depth.requires_grad):
        name = "torch"
    return implementation("warp", name)(inputs, depth_tolerance)


def mesh_correspondence(
    fragments: Fragments,
    triangles: Tensor,
    source_points: Tensor,
    camera: Tensor,
    source_depth: Tensor,
    tolerance: float,
    backend: str = "auto",
) -> Correspondence:
    """Each pixel of a target render's source point and co-visibility, through the shared mesh (see
    :mod:`jr2net.kernels.correspond_torch`).

    Args:
        fragments: the target render's (B, H, W) triangle ids and (B, H, W, 3) barycentrics.
        triangles: (F, 3) the mesh's triangles.
        source_points: (B, V, 3) the source's vertices in its camera frame.
        camera: (B, 3, 3) the source intrinsics.
        source_depth: (B, Hs, Ws) the source's rendered depth.
        tolerance: relative depth slack of the co-visibility test.
    """
    name = resolve_backend(backend, fragments.tri_id.device)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (source_points, fragments.bary, camera)):
        name = "torch"
    inputs = CorrespondInputs(
        fragments.tri_id, fragments.bary, triangles, source_points, camera, source_depth
    )
    return implementation("correspond", name)(inputs, tolerance)
