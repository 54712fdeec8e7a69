"""Torch reference rasterizer: exact, vectorised, the ground truth for the fast kernels.

Every (triangle, pixel) pair inside the triangle's clipped bounding box is a candidate; covered
candidates pack ``(float32 depth bits << 32) | triangle id`` into one int64 and the per-pixel
minimum wins (``scatter_reduce('amin')``), the same depth test the CUDA kernel does with a 64-bit
``atomicMin``: nearer wins, equal depth goes to the lower triangle id, no race.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jr2net.kernels.barycentric import edge_barycentrics, pixel_centres
from jr2net.kernels.fragments import Fragments
from jr2net.kernels.shapes import check_tensor

EMPTY_KEY = torch.iinfo(torch.int64).max
DEFAULT_NEAR = 1e-3


def check_raster_inputs(screen_vertices: Tensor, triangles: Tensor, height: int, width: int) -> None:
    """Validate the shared rasterizer arguments (every backend calls this)."""
    check_tensor("screen_vertices", screen_vertices, ("B", "V", 3), dtype=torch.float32)
    check_tensor("triangles", triangles, ("F", 3), dtype=(torch.int32, torch.int64))
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got height={height} width={width}")
    if triangles.numel() == 0:
        return
    if triangles.is_cuda:
        lowest, highest = (int(v) for v in torch.aminmax(triangles))
    else:
        indices = triangles.detach().numpy()  # numpy: no wake-up of torch's thread pool next to numba's
        lowest, highest = int(indices.min()), int(indices.max())
    if lowest < 0 or highest >= screen_vertices.shape[1]:
        raise ValueError(f"argument 'triangles' indexes outside the {screen_vertices.shape[1]} vertices")


def _candidate_counts(corners: Tensor, height: int, width: int, near: float) -> tuple[Tensor, ...]:
    """Clipped pixel bounding boxes (x0, y0, nx, ny) of (T, 3, 3) corners; empty for culled triangles."""
    xy = corners[..., :2]
    lo = torch.ceil(xy.min(dim=1).values - 0.5).clamp(min=0)
    hi = torch.floor(xy.max(dim=1).values - 0.5)
    hi = torch.minimum(hi, torch.tensor([width - 1.0, height - 1.0], device=corners.device))
    extent = (hi - lo + 1).clamp(min=0)
    in_front = (corners[..., 2] > near).all(dim=1) & torch.isfinite(corners).all(dim=(1, 2))
    extent = torch.where(in_front[:, None], extent, torch.zeros_like(extent)).long()
    return lo[:, 0].long(), lo[:, 1].long(), extent[:, 0], extent[:, 1]


def _scatter_chunk(
    keys: Tensor,
    corners: Tensor,
    tri_index: Tensor,
    batch_index: Tensor,
    box: tuple[Tensor, ...],
    size: tuple,
) -> None:
    """Test every candidate pixel of a chunk of triangles and min-reduce their keys into ``keys``."""
    x0, y0, nx, ny = box
    counts = nx * ny
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=keys.device), counts)
    if owner.numel() == 0:
        return
    first = torch.cumsum(counts, 0) - counts
    local = torch.arange(owner.numel(), device=keys.device) - first[owner]
    px = x0[owner] + local % nx[owner]
    py = y0[owner] + local // nx[owner]
    covered, _, depth = edge_barycentrics(corners[owner], px.float() + 0.5, py.float() + 0.5)
    covered &= (depth > 0) & torch.isfinite(depth)
    height, width = size
    pixel = (batch_index[owner] * height + py) * width + px
    depth_bits = depth.contiguous().view(torch.int32).long()
    key = (depth_bits << 32) | tri_index[owner]
    keys.scatter_reduce_(0, pixel[covered], key[covered], reduce="amin")


def rasterize_torch(
    screen_vertices: Tensor,
    triangles: Tensor,
    height: int,
    width: int,
    near: float = DEFAULT_NEAR,
    max_candidates: int = 1 << 22,
) -> Fragments:
    """Rasterize a batch of triangle meshes with a z-test.

    Args:
        screen_vertices: (B, V, 3) float32 (x_px, y_px, depth) from :func:`jr2net.camera.project`.
        triangles: (F, 3) vertex indices shared by the batch.
        height, width: output size in pixels.
        near: triangles with a corner at depth <= ``near`` are culled (no clipping).
        max_candidates: (triangle, pixel) pairs tested per chunk, bounding memory.

    Returns:
        :class:`Fragments` of shape (B, H, W); not differentiable (see :func:`screen_barycentrics`).
    """
    check_raster_inputs(screen_vertices, triangles, height, width)
    batch, face_count = screen_vertices.shape[0], triangles.shape[0]
    device = screen_vertices.device
    keys = torch.full((batch * height * width,), EMPTY_KEY, dtype=torch.int64, device=device)
    with torch.no_grad():
        corners = screen_vertices.detach()[:, triangles.long()].reshape(batch * face_count, 3, 3)
        tri_index = torch.arange(face_count, device=device).repeat(batch)
        batch_index = torch.arange(batch, device=device).repeat_interleave(face_count)
        box = _candidate_counts(corners, height, width, near)
        totals = torch.cumsum(box[2] * box[3], 0)
        start = 0
        while start < corners.shape[0]:
            done = int(totals[start - 1]) if start else 0
            stop = max(int(torch.searchsorted(totals, done + max_candidates, right=True)), start + 1)
            chunk = slice(start, stop)
            part = tuple(b[chunk] for b in box)
            _scatter_chunk(keys, corners[chunk], tri_index[chunk], batch_index[chunk], part, (height, width))
            start = stop
    tri_id = torch.where(keys == EMPTY_KEY, -1, keys & 0xFFFFFFFF).reshape(batch, height, width)
    bary, depth = screen_barycentrics(screen_vertices.detach(), triangles, tri_id)
    return Fragments(tri_id=tri_id, bary=bary, depth=depth)


def gather_corners(values: Tensor, triangles: Tensor, tri_id: Tensor) -> Tensor:
    """Per-vertex values at the corners of each pixel's triangle: (B, V, C) -> (B, H, W, 3, C).

    Background pixels (and every pixel of an empty mesh) get zeros.
    """
    batch, height, width = tri_id.shape
    if triangles.shape[0] == 0:
        return values.new_zeros(batch, height, width, 3, values.shape[-1])
    vertex_count, channels = values.shape[1:]
    faces = triangles.long()[tri_id.clamp(min=0)]  # (B, H, W, 3)
    offsets = torch.arange(batch, device=tri_id.device)[:, None, None, None] * vertex_count
    flat = torch.index_select(values.reshape(-1, channels), 0, (faces + offsets).reshape(-1))
    return flat.reshape(batch, height, width, 3, channels)


_STAND_IN = torch.tensor([[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 1.0, 0.0]])


def screen_barycentrics(screen_vertices: Tensor, triangles: Tensor, tri_id: Tensor) -> tuple[Tensor, Tensor]:
    """Perspective-correct barycentrics and depth of each pixel centre in its triangle.

    Recomputed in torch from ``tri_id`` so that gradients flow to ``screen_vertices`` whichever
    backend rasterized (the raster / interpolate split of nvdiffrast and pytorch3d).

    Args:
        screen_vertices: (B, V, 3) (x_px, y_px, depth).
        triangles: (F, 3) vertex indices.
        tri_id: (B, H, W) visible triangle per pixel, -1 on background.

    Returns:
        ``(bary, depth)``: (B, H, W, 3) and (B, H, W), zero on background.
    """
    dims = check_tensor("screen_vertices", screen_vertices, ("B", "V", 3))
    check_tensor("tri_id", tri_id, ("B", "H", "W"), dims, dtype=torch.int64)
    visible = tri_id >= 0
    corners = gather_corners(screen_vertices, triangles, tri_id)
    px, py = pixel_centres(tri_id)
    # Background pixels get a harmless triangle around their centre: masking their non-finite
    # values only after the division would still send NaN gradients back (0 · inf).
    stand_in = torch.stack([px, py, torch.ones_like(px)], dim=-1)[..., None, :] + _STAND_IN.to(corners)
    corners = torch.where(visible[..., None, None], corners, stand_in)
    _, bary, depth = edge_barycentrics(corners, px, py)
    bary = torch.where(visible[..., None], bary, torch.zeros_like(bary))
    depth = torch.where(visible, depth, torch.zeros_like(depth))
    return bary, depth


def interpolate(attributes: Tensor, triangles: Tensor, tri_id: Tensor, bary: Tensor) -> Tensor:
    """Barycentric interpolation of per-vertex attributes.

    Args:
        attributes: (B, V, C) per-vertex values.
        triangles: (F, 3) vertex indices.
        tri_id: (B, H, W) visible triangle per pixel, -1 on background.
        bary: (B, H, W, 3) barycentrics (from :func:`screen_barycentrics` for gradients).

    Returns:
        (B, H, W, C) interpolated values, zero on background. Differentiable in ``attributes``
        and ``bary``.
    """
    dims = check_tensor("attributes", attributes, ("B", "V", "C"))
    check_tensor("tri_id", tri_id, ("B", "H", "W"), dims, dtype=torch.int64)
    check_tensor("bary", bary, ("B", "H", "W", 3), dims)
    corners = gather_corners(attributes, triangles, tri_id)
    # The three products summed explicitly: a reduction over the size-3 corner axis is 3x slower.
    values = corners[..., 0, :] * bary[..., 0:1] + corners[..., 1, :] * bary[..., 1:2]
    values = values + corners[..., 2, :] * bary[..., 2:3]
    return torch.where((tri_id >= 0)[..., None], values, torch.zeros_like(values))
