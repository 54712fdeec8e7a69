"""SH light and per-vertex albedo from a photo and fitted FaceParams (lighting divided out).

Visible skin vertices (in front of the rendered depth, facing the camera) sample the image; SH
light is the least-squares fit of their colours with the default skin tone as mean albedo;
albedo is colour / irradiance, visibility-weighted, smoothed over the mesh, and the mean skin
albedo where the photo does not see the surface.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jr2net.face_model import FaceModel
from jr2net.geometry import ALBEDO_VISIBILITY_TOLERANCE, depth_visible, face_geometry
from jr2net.lighting import irradiance, irradiance_basis, light_from_irradiance_coefficients
from jr2net.params import DEFAULT_ALBEDO, FaceParams
from jr2net.render import render_face

MIN_FACING = 0.25
SMOOTHING_STEPS = 4


@dataclass(frozen=True)
class AppearanceEstimate:
    """Light (9, 3), albedo (V, 3) and the per-vertex visibility weight (V,) they came from."""

    light: Tensor
    albedo: Tensor
    visibility: Tensor


def _bilinear(image: Tensor, xy: Tensor) -> Tensor:
    """Sample (H, W, 3) at (N, 2) pixel positions (centres at +0.5), border clamped."""
    height, width = image.shape[:2]
    grid = (xy / torch.tensor([width, height]) * 2 - 1)[None, None]
    sampled = torch.nn.functional.grid_sample(
        image.permute(2, 0, 1)[None], grid, mode="bilinear", padding_mode="border", align_corners=False
    )
    return sampled[0, :, 0].T


def _neighbour_average(values: Tensor, weights: Tensor, triangles: Tensor, steps: int) -> Tensor:
    """Weighted averaging of (V, C) values with their mesh neighbours, ``steps`` times."""
    edges = torch.cat([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    edges = torch.cat([edges, edges.flip(1)])
    for _ in range(steps):
        total = (values * weights[:, None]).index_add(
            0, edges[:, 0], values[edges[:, 1]] * weights[edges[:, 1], None]
        )
        mass = weights.index_add(0, edges[:, 0], weights[edges[:, 1]])
        values = torch.where(mass[:, None] > 0, total / mass.clamp(min=1e-8)[:, None], values)
    return values


def estimate_appearance(model: FaceModel, params: FaceParams, image: np.ndarray) -> AppearanceEstimate:
    """Estimate SH light and per-vertex albedo of the fitted face in an RGB uint8 photo."""
    height, width = image.shape[:2]
    photo = torch.tensor(image, dtype=torch.float32) / 255.0
    with torch.no_grad():
        geometry = face_geometry(model, params, height, width)
        maps = render_face(model, params, height, width, region="face_area", geometry=geometry)
    screen, normals = geometry.screen[0], geometry.view_normals[0]
    unoccluded = depth_visible(screen, maps.depth[0, 0], ALBEDO_VISIBILITY_TOLERANCE)
    facing = normals[:, 2].clamp(min=0)
    skin = torch.zeros(model.vertex_count, dtype=torch.bool)
    skin[model.region_vertices("narrow_face")] = True
    visibility = (unoccluded & skin & (facing > MIN_FACING)).float() * facing
    if int((visibility > 0).sum()) < 50:
        raise ValueError("too little of the face is visible to estimate light and albedo")
    colours = _bilinear(photo, screen[:, :2])
    basis = irradiance_basis(normals)
    weight = visibility.sqrt()[:, None]
    # QR ("gels", full rank: thousands of visible vertices for nine coefficients) gives the same
    # light on every run; the default pivoted solver varied by ~1e-5 between runs.
    solution = torch.linalg.lstsq(basis * weight, colours * weight, driver="gels").solution
    tone = torch.tensor(DEFAULT_ALBEDO)
    light = light_from_irradiance_coefficients(solution / tone)
    shading = irradiance(normals[None], light[None])[0].clamp(min=0.05)
    raw = (colours / shading).clamp(0, 1)
    mean_skin = (raw * visibility[:, None]).sum(0) / visibility.sum()
    albedo = torch.where((visibility > 0)[:, None], raw, mean_skin.expand_as(raw))
    albedo = _neighbour_average(albedo, visibility + 1e-3, model.triangles, SMOOTHING_STEPS)
    return AppearanceEstimate(light=light, albedo=albedo.clamp(0, 1), visibility=visibility)
