"""Renderer facade: the one door from ``jr2net`` into ``kernels`` for rasterization and maps.

``backend`` is ``auto`` (CUDA for CUDA tensors when CuPy works, numba for CPU tensors), ``cuda``,
``numba`` or ``torch`` (the reference). The kernels give fragments; when a gradient is wanted,
barycentrics are recomputed from ``tri_id`` and the maps shaded in torch, so gradients reach
vertex positions, normals, albedo and light on every backend. Without gradients the maps come from
the backend's own shading kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.face_model import FaceModel
from jr2net.geometry import FaceGeometry, face_geometry
from jr2net.kernels.dispatch import BACKENDS, implementation, resolve_backend
from jr2net.kernels.fragments import Fragments
from jr2net.kernels.maps_torch import shade_maps_torch
from jr2net.kernels.rasterize_torch import interpolate, screen_barycentrics
from jr2net.lighting import irradiance_coefficients
from jr2net.params import FaceParams
from jr2net.shapes import check_tensor

__all__ = ["BACKENDS", "Fragments", "RenderMaps", "interpolate", "rasterize", "render_face", "render_maps"]


def rasterize(
    screen_vertices: Tensor, triangles: Tensor, height: int, width: int, backend: str = "auto"
) -> Fragments:
    """Rasterize (B, V, 3) screen-space vertices with (F, 3) triangles into (B, H, W) fragments."""
    name = resolve_backend(backend, screen_vertices.device)
    return implementation("rasterize", name)(screen_vertices, triangles, height, width)


@dataclass(frozen=True)
class RenderMaps:
    """Rendered maps of a batch of meshes, channels first; background pixels are 0.

    Attributes:
        mask: (B, 1, H, W) 1 where the mesh is visible.
        depth: (B, 1, H, W) camera depth.
        normal: (B, 3, H, W) unit normals in the view frame (x right, y up, z toward the camera).
        light: (B, 3, H, W) SH irradiance (the light map).
        albedo: (B, 3, H, W) interpolated albedo.
        image: (B, 3, H, W) shaded image ``albedo · light``.
        fragments: the rasterizer output the maps were made from.
    """

    mask: Tensor
    depth: Tensor
    normal: Tensor
    light: Tensor
    albedo: Tensor
    image: Tensor
    fragments: Fragments


def _channels_first(values: Tensor) -> Tensor:
    """(B, H, W, C) -> (B, C, H, W), laid out channels first: convolutions, pooling and resizing
    of a permuted (channels-last) view take slower paths (up to 5x for bilinear resizing)."""
    return values.permute(0, 3, 1, 2).contiguous()


def render_maps(
    screen_vertices: Tensor,
    view_normals: Tensor,
    albedo: Tensor,
    light: Tensor,
    triangles: Tensor,
    height: int,
    width: int,
    backend: str = "auto",
) -> RenderMaps:
    """Depth, normal, light, albedo and shaded maps of meshes.

    Args:
        screen_vertices: (B, V, 3) (x_px, y_px, depth).
        view_normals: (B, V, 3) unit vertex normals in the view frame.
        albedo: (B, V, 3) per-vertex albedo.
        light: (B, 9, 3) SH light in the view frame.
        triangles: (F, 3) vertex indices.
        height, width: output size.
        backend: kernel backend (see the module docstring).
    """
    dims = check_tensor("screen_vertices", screen_vertices, ("B", "V", 3))
    check_tensor("view_normals", view_normals, ("B", "V", 3), dims)
    check_tensor("albedo", albedo, ("B", "V", 3), dims)
    check_tensor("light", light, ("B", 9, 3), dims)
    name = resolve_backend(backend, screen_vertices.device)
    fragments = implementation("rasterize", name)(screen_vertices.detach(), triangles, height, width)
    coefficients = irradiance_coefficients(light)
    inputs = (screen_vertices, view_normals, albedo, light)
    if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        bary, depth = screen_barycentrics(screen_vertices, triangles, fragments.tri_id)
        shaded = shade_maps_torch(fragments.tri_id, bary, triangles, view_normals, albedo, coefficients)
    else:
        depth = fragments.depth
        shade = implementation("shade_maps", name)
        shaded = shade(
            fragments.tri_id, fragments.bary, triangles, view_normals, albedo.contiguous(), coefficients
        )
    return RenderMaps(
        mask=fragments.mask[:, None].float(),
        depth=depth[:, None],
        normal=_channels_first(shaded.normal),
        light=_channels_first(shaded.light),
        albedo=_channels_first(shaded.albedo),
        image=_channels_first(shaded.image),
        fragments=fragments,
    )


def render_face(
    model: FaceModel,
    params: FaceParams,
    height: int,
    width: int,
    region: str = "head_neck",
    backend: str = "auto",
    geometry: FaceGeometry | None = None,
) -> RenderMaps:
    """Render the face model with FaceParams (camera principal point at the image centre).

    ``geometry``: the params' :func:`~jr2net.geometry.face_geometry` at this size when the caller
    already has it (its screen points and view normals are rendered), or ``None``.
    """
    geometry = face_geometry(model, params, height, width) if geometry is None else geometry
    albedo = params.albedo_or_default(model.vertex_count)
    triangles = model.region_triangles(region)
    return render_maps(
        geometry.screen, geometry.view_normals, albedo, params.light, triangles, height, width, backend
    )
