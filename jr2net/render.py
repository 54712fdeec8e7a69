"""Renderer facade: the one door from ``jr2net`` into ``kernels`` for rasterization and maps.

``rasterize`` picks a backend (only the torch reference exists so far); everything after the
rasterizer (barycentrics, interpolation, shading) runs in torch so gradients reach vertex positions
and attributes on every backend.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.camera import euler_to_matrix, intrinsics, model_to_camera, project
from jr2net.face_model import FaceModel, vertex_normals
from jr2net.kernels.fragments import Fragments
from jr2net.kernels.rasterize_torch import interpolate, rasterize_torch, screen_barycentrics
from jr2net.lighting import irradiance_basis
from jr2net.params import FaceParams
from jr2net.shapes import check_tensor

BACKENDS = ("torch",)

__all__ = ["BACKENDS", "Fragments", "RenderMaps", "interpolate", "rasterize", "render_face", "render_maps"]


def rasterize(
    screen_vertices: Tensor, triangles: Tensor, height: int, width: int, backend: str = "torch"
) -> Fragments:
    """Rasterize (B, V, 3) screen-space vertices with (F, 3) triangles into (B, H, W) fragments."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown rasterizer backend {backend!r}; available: {BACKENDS}")
    return rasterize_torch(screen_vertices, triangles, height, width)


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
    return values.permute(0, 3, 1, 2)


def render_maps(
    screen_vertices: Tensor,
    view_normals: Tensor,
    albedo: Tensor,
    light: Tensor,
    triangles: Tensor,
    height: int,
    width: int,
    backend: str = "torch",
) -> RenderMaps:
    """Depth, normal, light, albedo and shaded maps of meshes.

    Args:
        screen_vertices: (B, V, 3) (x_px, y_px, depth).
        view_normals: (B, V, 3) unit vertex normals in the view frame.
        albedo: (B, V, 3) per-vertex albedo.
        light: (B, 9, 3) SH light in the view frame.
        triangles: (F, 3) vertex indices.
        height, width: output size.
        backend: rasterizer backend.
    """
    dims = check_tensor("screen_vertices", screen_vertices, ("B", "V", 3))
    check_tensor("view_normals", view_normals, ("B", "V", 3), dims)
    check_tensor("albedo", albedo, ("B", "V", 3), dims)
    check_tensor("light", light, ("B", 9, 3), dims)
    fragments = rasterize(screen_vertices.detach(), triangles, height, width, backend)
    bary, depth = screen_barycentrics(screen_vertices, triangles, fragments.tri_id)
    visible = fragments.mask[..., None]
    normal = torch.nn.functional.normalize(
        interpolate(view_normals, triangles, fragments.tri_id, bary), dim=-1
    )
    shading = (irradiance_basis(normal) @ light[:, None]) * visible
    albedo_map = interpolate(albedo, triangles, fragments.tri_id, bary)
    return RenderMaps(
        mask=_channels_first(visible.float()),
        depth=depth[:, None],
        normal=_channels_first(normal),
        light=_channels_first(shading),
        albedo=_channels_first(albedo_map),
        image=_channels_first(albedo_map * shading),
        fragments=fragments,
    )


def render_face(
    model: FaceModel,
    params: FaceParams,
    height: int,
    width: int,
    region: str = "head_neck",
    backend: str = "torch",
) -> RenderMaps:
    """Render the face model with FaceParams (camera principal point at the image centre)."""
    rotation = euler_to_matrix(params.rotation)
    vertices = model(params.identity, params.expression)
    view_normals = vertex_normals(vertices, model.triangles) @ rotation.transpose(1, 2)
    camera_points = model_to_camera(vertices, rotation, params.translation)
    screen = project(camera_points, intrinsics(params.focal, height, width))
    albedo = params.albedo_or_default(model.vertex_count)
    triangles = model.region_triangles(region)
    return render_maps(screen, view_normals, albedo, params.light, triangles, height, width, backend)
