"""3D-aware geometric reenactment: the source face driven by another face's expression and pose.

For each driving frame the target geometry (source identity and albedo, driving expression and
pose) is rendered in the source view. Every target pixel's surface point is looked up on the
source mesh (eq. 2 of the paper with a per-pixel source point, so expression changes move the
texture too; for an unchanged expression it is exactly eq. 2's rigid warp), the source image is
sampled there, and the co-visibility mask says where the source actually saw that point. A
refiner turns that into the face (:class:`GeometricRefiner`: shading-ratio relighting, rendered
albedo where the source saw nothing, a dark mouth cavity); hair, neck and background follow a
flow extrapolated smoothly from the face, and the face is pasted back with a feathered mask
(:class:`GeometricRenderer`). A :class:`FrameRenderer` turns that warp into the output frame:
the geometric one, or the learned DCNet (:mod:`jr2net.dcnet_renderer`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from jr2net.camera import FLIP, euler_to_matrix, intrinsics, matrix_to_euler, project
from jr2net.compositing import extrapolate_flow, feather, sample
from jr2net.face_model import FaceModel
from jr2net.geometry import COVISIBILITY_TOLERANCE, depth_visible, face_geometry
from jr2net.lighting import LIGHT_PRESETS, light_preset
from jr2net.mesh_topology import CAPPED_HOLES, hole_caps
from jr2net.params import FaceParams
from jr2net.render import RenderMaps, interpolate, render_maps

MOTIONS = ("relative", "absolute")
LIGHT_MODES = ("source", "driving")
MOUTH_CAVITY = (0.30, 0.10, 0.10)
RATIO_RANGE = (0.4, 2.5)
RATIO_EPSILON = 0.05
CAVITY_STRETCH = (0.2, 0.6)  # source/target area ratio: all cavity below the first, none above the second
FEATHER_FRACTION = 0.015
FLOW_SPREAD_FRACTION = 0.5


@dataclass(frozen=True)
class Controls:
    """Overrides applied to every target frame (the control API).

    Attributes:
        expression: ``{name: weight}`` by ICT or ARKit name, replacing the driving weight.
        pitch, yaw, roll: absolute head angles in degrees, or ``None`` to follow the driving.
        light: a light preset name (see :data:`jr2net.lighting.LIGHT_PRESETS`), or ``None``.
    """

    expression: Mapping[str, float] = field(default_factory=dict)
    pitch: float | None = None
    yaw: float | None = None
    roll: float | None = None
    light: str | None = None

    def __post_init__(self) -> None:
        if self.light is not None and self.light not in LIGHT_PRESETS:
            raise ValueError(f"unknown light {self.light!r}; choose from {sorted(LIGHT_PRESETS)}")


@dataclass(frozen=True)
class SourceFace:
    """The source photo and what the reenactor precomputes from it (batch of one).

    Attributes:
        image: (1, 3, H, W) float image in [0, 1].
        params: source FaceParams, with albedo and light.
        camera_points: (1, V, 3) source vertices in the camera frame.
        depth: (1, H, W) rendered source depth (face and hole caps), 0 elsewhere.
        light_map: (1, 3, H, W) source irradiance map.
        normal_map: (1, 3, H, W) source view-frame normals, 0 off the mesh.
        region: the mesh region that is warped as face (``face_area`` for photos, whose hair the
            model does not cover; ``head_neck`` for the built-in avatar, which is all model).
    """

    image: Tensor
    params: FaceParams
    camera_points: Tensor
    depth: Tensor
    light_map: Tensor
    normal_map: Tensor
    region: str

    @functools.cached_property
    def image_and_light(self) -> Tensor:
        """(1, 6, H, W) the image and the light map, sampled together by the geometric refiner."""
        return torch.cat([self.image, self.light_map], dim=1)


@dataclass(frozen=True)
class RefinerInputs:
    """What a refiner gets for one target frame; maps are (1, C, H, W).

    Attributes:
        source: the source face.
        warped: source image sampled at each target pixel's source point.
        warped_light: source irradiance sampled there.
        covisible: 1 where the source saw the target pixel's surface point.
        target: the target render (mask, depth, normal, light, albedo, image).
        mouth: 1 on the mouth cap (the mouth interior).
        stretch: source area seen per target pixel area (1: unchanged; near 0: the source saw that
            surface squeezed, as in a closed mouth that the target opens).
    """

    source: SourceFace
    warped: Tensor
    warped_light: Tensor
    covisible: Tensor
    target: RenderMaps
    mouth: Tensor
    stretch: Tensor


class Refiner(Protocol):
    """Turns the warp into the face's pixels; the learned DCNet will be one."""

    def __call__(self, inputs: RefinerInputs) -> Tensor:
        """The face (1, 3, H, W) in [0, 1] (only pixels under ``inputs.target.mask`` are used)."""


class GeometricRefiner:
    """Shading-ratio relighting, rendered albedo where the source saw nothing, and a dark mouth
    interior where the source saw none, or saw it squeezed (a closed mouth the target opens).

    Light enters by its brightness (the channel mean of the irradiance): a light fitted to one
    photo can have a channel near or below zero on normals the photo barely constrains (inside
    the lips, say), and per-channel ratios or products then swing the colour.
    """

    def __call__(self, inputs: RefinerInputs) -> Tensor:
        target = inputs.target.light.clamp(min=0).mean(dim=1, keepdim=True)
        seen = inputs.warped_light.clamp(min=0).mean(dim=1, keepdim=True)
        ratio = ((target + RATIO_EPSILON) / (seen + RATIO_EPSILON)).clamp(*RATIO_RANGE)
        relit = inputs.warped * ratio
        rendered = inputs.target.albedo * target
        face = inputs.covisible * relit + (1 - inputs.covisible) * rendered
        cavity = torch.tensor(MOUTH_CAVITY).view(1, 3, 1, 1) * target.clamp(max=1)
        low, high = CAVITY_STRETCH
        squeezed = ((high - inputs.stretch) / (high - low)).clamp(0, 1)
        opening = inputs.mouth * torch.maximum(squeezed, 1 - inputs.covisible)
        return (opening * cavity + (1 - opening) * face).clamp(0, 1)


@dataclass(frozen=True)
class TargetWarp:
    """One target frame's warp of the source, what a :class:`FrameRenderer` turns into pixels.

    Attributes:
        source: the source face.
        target: the target render (mask, depth, normal, light, albedo, image).
        face_points: (1, H, W, 2) the eq. 2 source pixel of each target pixel's surface point
            (pixel positions, centres at +0.5; meaningful under ``target.mask``).
        covisible: (1, 1, H, W) 1 where the source saw the target pixel's surface point.
        mouth: (1, 1, H, W) 1 on the mouth cap (the mouth interior).
        source_points: (1, H, W, 2) where each target pixel samples the source image: the face's
            points, spread smoothly over hair, neck and background and fading to the pixel itself
            far from the face.
    """

    source: SourceFace
    target: RenderMaps
    face_points: Tensor
    covisible: Tensor
    mouth: Tensor
    source_points: Tensor

    def refiner_inputs(self) -> RefinerInputs:
        """What a :class:`Refiner` gets: the source image and light sampled at the face's points."""
        warped, warped_light = sample(self.source.image_and_light, self.face_points).split(3, dim=1)
        return RefinerInputs(
            source=self.source,
            warped=warped,
            warped_light=warped_light,
            covisible=self.covisible,
            target=self.target,
            mouth=self.mouth,
            stretch=area_ratio(self.face_points),
        )


class FrameRenderer(Protocol):
    """Turns a target frame's warp into the whole output frame."""

    def __call__(self, warp: TargetWarp) -> Tensor:
        """The output frame (1, 3, H, W) in [0, 1], the source's size."""


class GeometricRenderer:
    """A :class:`Refiner`'s face pasted with a feathered mask over the source moved by the
    extrapolated flow (hair, neck and background)."""

    def __init__(self, refiner: Refiner | None = None) -> None:
        self.refiner = refiner or GeometricRefiner()

    def __call__(self, warp: TargetWarp) -> Tensor:
        face = self.refiner(warp.refiner_inputs())
        mask = warp.target.mask
        background = sample(warp.source.image, warp.source_points)
        alpha = feather(mask, FEATHER_FRACTION * max(mask.shape[-2:]))
        return alpha * face + (1 - alpha) * background


@dataclass(frozen=True)
class ReenactedFrame:
    """One output frame: the image, the masks that made it, and the target parameters."""

    image: np.ndarray
    face_mask: Tensor
    covisible: Tensor
    params: FaceParams


def _capped_triangles(model: FaceModel, region: str) -> tuple[Tensor, int]:
    face = model.region_triangles(region)
    return torch.cat([face, hole_caps(model).triangles]), face.shape[0]


def prepare_source(
    model: FaceModel, image: np.ndarray, params: FaceParams, region: str = "face_area"
) -> SourceFace:
    """Precompute the source's render (depth and light map with the hole caps) for reenactment."""
    if params.albedo is None:
        raise ValueError("the source FaceParams need an albedo (estimate it with jr2net.albedo)")
    height, width = image.shape[:2]
    triangles, _ = _capped_triangles(model, region)
    with torch.no_grad():
        geometry = face_geometry(model, params, height, width)
        screen, normals = geometry.screen, geometry.view_normals
        maps = render_maps(screen, normals, params.albedo, params.light, triangles, height, width)
    return SourceFace(
        image=torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None] / 255.0,
        params=params,
        camera_points=geometry.camera_points,
        depth=maps.depth[:, 0],
        light_map=maps.light,
        normal_map=maps.normal,
        region=region,
    )


def _image_placement(params: FaceParams) -> tuple[Tensor, Tensor]:
    """Where the head's origin projects, relative to the principal point (px), and its scale (px/cm).

    Both are what an image actually shows: a fit may trade focal against depth between frames,
    these two stay put.
    """
    scale = params.focal[:, None] / params.translation[:, 2:]
    return params.translation[:, :2] * scale, scale


def relative_target(source: FaceParams, driving: FaceParams, reference: FaceParams) -> FaceParams:
    """Source pose moved by the driving's motion since ``reference``, expression offsets likewise.

    Rotation: the driving's rotation since the reference, applied to the source's. Translation:
    the driving head's image motion (in units of its face size) and its change of apparent size,
    applied to the source in the source's image, at the source's focal length.
    """
    placement = [FLIP @ euler_to_matrix(p.rotation) for p in (source, driving, reference)]
    motion = placement[1] @ placement[2].transpose(1, 2)
    rotation = FLIP @ motion @ placement[0]
    (source_offset, source_scale), (driving_offset, driving_scale), (reference_offset, reference_scale) = (
        _image_placement(p) for p in (source, driving, reference)
    )
    target_scale = source_scale * driving_scale / reference_scale
    target_offset = source_offset + (driving_offset - reference_offset) * source_scale / reference_scale
    depth = source.focal[:, None] / target_scale
    return source.replace(
        expression=(source.expression + driving.expression - reference.expression).clamp(0, 1),
        rotation=matrix_to_euler(rotation),
        translation=torch.cat([target_offset / target_scale, depth], dim=1),
    )


class Reenactor:
    """Drives a :class:`SourceFace` with driving FaceParams.

    Args:
        model: the face model.
        source: the prepared source.
        motion: ``relative`` (driving motion since its first frame, applied to the source) or
            ``absolute`` (the driving's expression and head rotation as they are).
        light: ``source`` keeps the source's light, ``driving`` uses the driving frame's.
        renderer: turns the warp into the frame (default :class:`GeometricRenderer`).
    """

    def __init__(
        self,
        model: FaceModel,
        source: SourceFace,
        motion: str = "relative",
        light: str = "source",
        renderer: FrameRenderer | None = None,
    ) -> None:
        if motion not in MOTIONS:
            raise ValueError(f"unknown motion {motion!r}; choose from {MOTIONS}")
        if light not in LIGHT_MODES:
            raise ValueError(f"unknown light mode {light!r}; choose from {LIGHT_MODES}")
        self.model, self.source, self.motion, self.light = model, source, motion, light
        self.renderer = renderer or GeometricRenderer()
        self.triangles, self.face_triangle_count = _capped_triangles(model, source.region)
        caps = hole_caps(model)
        self.mouth_caps = caps.hole == CAPPED_HOLES.index("mouth")
        self.reference: FaceParams | None = None
        self._source_shape = model.identity_shape(source.params.identity)

    def target_params(self, driving: FaceParams, controls: Controls = Controls()) -> FaceParams:
        """The target FaceParams for one driving frame (the first one is the relative reference)."""
        source = self.source.params
        if self.reference is None:
            self.reference = driving
        if self.motion == "relative":
            target = relative_target(source, driving, self.reference)
        else:
            target = source.replace(expression=driving.expression.clone(), rotation=driving.rotation.clone())
        if self.light == "driving":
            target = target.replace(light=driving.light.clone())
        return apply_controls(self.model, target, controls)

    def __call__(self, driving: FaceParams, controls: Controls = Controls()) -> ReenactedFrame:
        return self.render(self.target_params(driving, controls))

    def render(self, target: FaceParams) -> ReenactedFrame:
        """Reenact the source with fully specified target FaceParams."""
        with torch.no_grad():
            warp = self.warp(target)
            image = self.renderer(warp)
        frame = (image[0].permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).byte().contiguous().numpy()
        return ReenactedFrame(
            image=frame, face_mask=warp.target.mask, covisible=warp.covisible, params=target
        )

    @torch.no_grad()
    def warp(self, target: FaceParams) -> TargetWarp:
        """The source warped to the target FaceParams: the target render, each target pixel's
        source point, co-visibility, and the flow spread over the whole frame."""
        source = self.source
        height, width = source.image.shape[-2:]
        same_identity = torch.equal(target.identity, source.params.identity)
        shape = self._source_shape if same_identity else None
        geometry = face_geometry(self.model, target, height, width, shape)
        screen, normals = geometry.screen, geometry.view_normals
        maps = render_maps(screen, normals, source.params.albedo, target.light, self.triangles, height, width)
        fragments = maps.fragments
        points = interpolate(source.camera_points, self.triangles, fragments.tri_id, fragments.bary)
        matrix = intrinsics(source.params.focal, height, width)
        source_pixels = project(points.reshape(1, -1, 3), matrix).reshape(1, height, width, 3)
        cap = (fragments.tri_id - self.face_triangle_count).clamp(min=0)
        mouth = ((fragments.tri_id >= self.face_triangle_count) & self.mouth_caps[cap]).float()[:, None]
        face_points = source_pixels[..., :2]
        return TargetWarp(
            source=source,
            target=maps,
            face_points=face_points,
            covisible=self._covisible(source_pixels, maps.mask),
            mouth=mouth,
            source_points=self._spread(maps.mask, face_points),
        )

    def _covisible(self, source_pixels: Tensor, mask: Tensor) -> Tensor:
        visible = depth_visible(source_pixels, self.source.depth, COVISIBILITY_TOLERANCE)
        return visible[:, None].float() * mask

    @staticmethod
    def _spread(mask: Tensor, source_pixels: Tensor) -> Tensor:
        """The face's source points (1, H, W, 2) extended over the frame by the extrapolated flow."""
        height, width = mask.shape[-2:]
        centres = pixel_centres(height, width)
        flow = (source_pixels - centres).permute(0, 3, 1, 2).contiguous()  # channels first: faster blurs
        face_size = math.sqrt(float(mask.sum())) or 1.0
        spread = extrapolate_flow(flow, mask, sigma=FLOW_SPREAD_FRACTION * face_size)
        return centres + spread.permute(0, 2, 3, 1)


def pixel_centres(height: int, width: int) -> Tensor:
    """(1, H, W, 2) pixel-centre positions (x, y), at +0.5."""
    ys = torch.arange(height, dtype=torch.float32) + 0.5
    xs = torch.arange(width, dtype=torch.float32) + 0.5
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]


def area_ratio(points: Tensor) -> Tensor:
    """|det| of the Jacobian of a per-pixel map (B, H, W, 2) -> (B, 1, H, W) (central differences)."""
    padded = torch.nn.functional.pad(points.permute(0, 3, 1, 2), (1, 1, 1, 1), mode="replicate")
    along_x = (padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]) / 2
    along_y = (padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]) / 2
    determinant = along_x[:, 0] * along_y[:, 1] - along_x[:, 1] * along_y[:, 0]
    return torch.nan_to_num(determinant.abs(), nan=1.0)[:, None]


def apply_controls(model: FaceModel, params: FaceParams, controls: Controls) -> FaceParams:
    """Override expression weights, head angles and light of FaceParams (batch of one)."""
    expression = params.expression.clone()
    for name, weight in controls.expression.items():
        expression[0, model.expression_indices(name)] = float(weight)
    angles = params.rotation.clone()
    for axis, degrees in enumerate((controls.pitch, controls.yaw, controls.roll)):
        if degrees is not None:
            angles[0, axis] = math.radians(degrees)
    light = params.light if controls.light is None else light_preset(controls.light)[None]
    return params.replace(expression=expression, rotation=angles, light=light)
