"""3D-aware geometric reenactment: the source face driven by another face's expression and pose.

For each driving frame the target geometry (source identity and albedo, driving expression and
pose) is rendered in the source view. Every target pixel's surface point is looked up on the
source mesh (eq. 2 of the paper with a per-pixel source point, so expression changes move the
texture too; for an unchanged expression it is exactly eq. 2's rigid warp), the source image is
sampled there, and the co-visibility mask says where the source actually saw that point. A
refiner turns that into the face (:class:`GeometricRefiner`: shading-ratio relighting, rendered
albedo where the source saw nothing, a shadowed mouth interior); hair, ears and neck follow the head's
own motion (:mod:`jr2net.head_motion`), the background a flow extrapolated smoothly from the
head's, and the face is pasted back with a feathered mask (:class:`GeometricRenderer`). A
:class:`FrameRenderer` turns that warp into the output frame: the geometric one, or the learned
DCNet (:mod:`jr2net.dcnet_renderer`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from jr2net.avatar import REGION as AVATAR_REGION
from jr2net.avatar import draw_avatar
from jr2net.camera import FLIP, euler_to_matrix, intrinsics, matrix_to_euler
from jr2net.compositing import (
    extrapolate_flow,
    feather,
    gaussian_blur,
    pixel_centres,
    present,
    sample,
    to_pixels,
)
from jr2net.correspondence import MediapipeCorrespondence
from jr2net.eye_warp import EyeTriangles, eye_reads, eye_targets, opening_contours
from jr2net.eyelids import closed_lid_reads, skin_above_crease
from jr2net.face_model import FaceModel
from jr2net.gaze import IRIS_SMOOTHING, IrisAnchors, iris_anchors, iris_reads
from jr2net.geometry import COVISIBILITY_TOLERANCE, FaceGeometry, face_geometry
from jr2net.head_motion import HEAD_FLOW_DOWNSCALE, HeadFlow, PersonMasks, head_flow
from jr2net.image_io import to_uint8
from jr2net.landmark_pinning import (
    SPLINE_SMOOTHING,
    PinningFields,
    fields_from_grid,
    spline_anchors,
    thin_plate_grid,
    transfer_landmarks,
)
from jr2net.lid_transfer import transfer_lids
from jr2net.lighting import LIGHT_PRESETS, irradiance, light_preset
from jr2net.mesh_topology import CAPPED_HOLES, hole_caps
from jr2net.outline_reads import OutlinePlan, outline_plan, outline_shift, oval_landmarks
from jr2net.params import FaceParams
from jr2net.person_mask import person_masks
from jr2net.piecewise_affine import delaunay_triangles, triangle_reads
from jr2net.render import RenderMaps, render_maps
from jr2net.warp import mesh_correspondence

MOTIONS = ("relative", "absolute")
LIGHT_MODES = ("source", "driving")
CAVITY_SHADE = 0.6  # an opened mouth the source did not show open: the lips stretched over it, in shadow
RATIO_RANGE = (0.4, 2.5)
RATIO_EPSILON = 0.05
LIGHT_COLOUR_RANGE = (0.5, 2.0)  # each channel's share of the light's colour, over their mean
CAVITY_STRETCH = (0.2, 0.6)  # source/target area ratio: all cavity below the first, none above the second
FILL_ONSET = 1 / 32  # of the frame's longer side: how far into an unseen area the rendered fill is whole
CAVITY_SOFTNESS = 1 / 128  # of the frame's longer side: the σ of the blur that smooths the cavity's edge
FEATHER_FRACTION = 0.015
FLOW_SPREAD_FRACTION = 0.5
FLOW_NEAR_FRACTION = 0.05  # next to the face the flow's extension follows its edge (of the face's size)


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
            model does not cover); the built-in avatar's (:data:`jr2net.avatar.REGION`) marks a
            picture that is all model, which the reenactor draws from the model instead.
        landmarks: (478, 2) the tracker's landmarks on the source image (pixels), or None (the
            built-in avatar): with them the warp is pinned (:mod:`jr2net.landmark_pinning`).
        display: (1, 3, H', W') the source picture at the larger size frames are shown at, or None
            (``image``'s): the warp is computed at ``image``'s size and presented at this one
            (:func:`jr2net.compositing.present`, :func:`computed_at`).
    """

    image: Tensor
    params: FaceParams
    camera_points: Tensor
    depth: Tensor
    light_map: Tensor
    normal_map: Tensor
    region: str
    landmarks: Tensor | None = None
    display: Tensor | None = None

    @property
    def picture(self) -> Tensor:
        """(1, 3, H, W) the source picture at the size frames are shown at."""
        return self.image if self.display is None else self.display


@dataclass(frozen=True)
class RefinerInputs:
    """What a refiner gets for one target frame; maps are (1, C, H, W).

    Attributes:
        source: the source face.
        warped: source image sampled at each target pixel's source point.
        covisible: 1 where the source saw the target pixel's surface point.
        target: the target render (mask, depth, normal, light, albedo, image).
        light: (1, 9, 3) the target's SH light.
        mouth: 1 on the mouth cap (the mouth interior).
        stretch: source area seen per target pixel area (1: unchanged; near 0: the source saw that
            surface squeezed, as in a closed mouth that the target opens).
    """

    source: SourceFace
    warped: Tensor
    covisible: Tensor
    target: RenderMaps
    light: Tensor
    mouth: Tensor
    stretch: Tensor


class Refiner(Protocol):
    """Turns the warp into the face's pixels; the learned DCNet will be one."""

    def __call__(self, inputs: RefinerInputs) -> Tensor:
        """The face (1, 3, H, W) in [0, 1] (only pixels under ``inputs.target.mask`` are used)."""


def _brightness(light: Tensor) -> Tensor:
    """The channel mean of a (1, 3, H, W) irradiance map, negative light clamped: (1, 1, H, W)."""
    return light.clamp(min=0).mean(dim=1, keepdim=True)


def _light_colour(light: Tensor, mask: Tensor) -> Tensor:
    """The colour of a (1, 3, H, W) irradiance map over ``mask`` (1, 1, H, W): its mean per channel
    over the channel mean, negative light clamped, each channel kept in :data:`LIGHT_COLOUR_RANGE`:
    (1, 3, 1, 1), all ones for white light."""
    lit = (light.clamp(min=0) * mask).sum(dim=(2, 3)) / mask.sum().clamp(min=1)
    colour = lit / lit.mean(dim=1, keepdim=True).clamp(min=RATIO_EPSILON)
    return colour.clamp(*LIGHT_COLOUR_RANGE)[..., None, None]


def irradiance_map(normals: Tensor, light: Tensor) -> Tensor:
    """The irradiance of ``light`` (1, 9, 3) at a (1, 3, H, W) normal map: (1, 3, H, W)."""
    flat = normals.flatten(2).transpose(1, 2)
    return irradiance(flat, light).transpose(1, 2).reshape(normals.shape)


def mouth_opening(mouth: Tensor, covisible: Tensor, stretch: Tensor) -> Tensor:
    """(1, 1, H, W) in [0, 1]: the part of the mouth cap ``mouth`` whose inside the source did not
    show open: where it did not see it (``covisible``) or saw it squeezed (``stretch`` below
    :data:`CAVITY_STRETCH`, a closed mouth the target opens), its edge blurred
    (:data:`CAVITY_SOFTNESS`)."""
    return _softened(mouth * torch.maximum(_squeezed(stretch), 1 - covisible))


def mouth_shown(mouth: Tensor, covisible: Tensor, stretch: Tensor) -> Tensor:
    """(1, 1, H, W) in [0, 1]: the rest of the mouth cap, whose inside the source showed open (its
    own teeth, say), its edge blurred alike: with :func:`mouth_opening` it makes the blurred cap."""
    return _softened(mouth * torch.minimum(1 - _squeezed(stretch), covisible))


def _squeezed(stretch: Tensor) -> Tensor:
    """1 where the source saw the surface squeezed (``stretch`` below :data:`CAVITY_STRETCH`), 0
    where it saw it whole, linear between."""
    low, high = CAVITY_STRETCH
    return ((high - stretch) / (high - low)).clamp(0, 1)


def _softened(cap: Tensor) -> Tensor:
    return gaussian_blur(cap, CAVITY_SOFTNESS * max(cap.shape[-2:]))


class GeometricRefiner:
    """Relighting by the change of light, rendered albedo inside what the source never saw, and a
    shadowed mouth interior where the source saw none, or saw it squeezed (a closed mouth the target
    opens), its edge blurred (:data:`CAVITY_SOFTNESS`): the cap's mask moves by whole pixels and
    showed as stair-steps, more so at half size (:data:`jr2net.sources.COMPUTE_SCALES`).

    The interior is the warped source, the source's lips stretched over the opening, darkened by
    :data:`CAVITY_SHADE`: its texture (the lips' parting line, teeth a source showed) beat a flat
    colour on the eight training clips (face PSNR 25.78 → 25.92 dB against a dark red, every clip
    up or level; near-black scored 25.73), and it still reads as an opening; unshaded it scored
    26.02 but shows a wide-open mouth as lips.

    The ratio is the target light over the source's light at the same (target) normals: a new
    light (``--light driving``, a preset) changes the face's shading, a turned head under the
    source's own light does not. Relighting the turn too (target over the source's irradiance as
    the source saw it) lost 0.5 to 5 dB of face PSNR in self-reenactment on unseen people (d3, d10,
    tpsmm): a light fitted to one photo predicts how shading moves with the normal too poorly.
    Under the source's own light (the default) the ratio is 1 and is not computed. Light enters
    by its brightness (the channel mean of the irradiance): a light fitted to one photo can have a
    channel near or below zero on normals the photo barely constrains (inside the lips, say), and
    per-channel ratios or products then swing the colour. The rendered albedo takes the light's
    colour too, one for the whole face (:func:`_light_colour`): the albedo is the photo's colour
    with the light's colour divided out, and under the brightness alone a warm-lit face's fill (a
    turned cheek's edge by the ear) came out grey-blue. The rendered albedo fades in from the edge of
    where the source saw nothing over :data:`FILL_ONSET` of the frame: the warped source is the
    better guess near what the source saw, and a thin unseen band (a turned cheek's silhouette, a
    covisibility mask's pixel steps) keeps it; only a wide unseen area's inside is drawn.
    """

    def __call__(self, inputs: RefinerInputs) -> Tensor:
        target = _brightness(inputs.target.light)
        relit = inputs.warped
        if not torch.equal(inputs.light, inputs.source.params.light):
            unchanged = _brightness(irradiance_map(inputs.target.normal, inputs.source.params.light))
            relit = relit * ((target + RATIO_EPSILON) / (unchanged + RATIO_EPSILON)).clamp(*RATIO_RANGE)
        rendered = inputs.target.albedo * target * _light_colour(inputs.target.light, inputs.target.mask)
        unseen = feather(1 - inputs.covisible, FILL_ONSET * max(inputs.covisible.shape[-2:]))
        face = (1 - unseen) * relit + unseen * rendered
        cavity = CAVITY_SHADE * relit
        opening = mouth_opening(inputs.mouth, inputs.covisible, inputs.stretch)
        return (opening * cavity + (1 - opening) * face).clamp(0, 1)


@dataclass(frozen=True)
class TargetWarp:
    """One target frame's warp of the source, what a :class:`FrameRenderer` turns into pixels.

    Attributes:
        source: the source face.
        target: the target render (mask, depth, normal, light, albedo, image).
        light: (1, 9, 3) the target's SH light.
        face_points: (1, H, W, 2) the eq. 2 source pixel of each target pixel's surface point
            (pixel positions, centres at +0.5; meaningful under ``target.mask``).
        covisible: (1, 1, H, W) 1 where the source saw the target pixel's surface point.
        mouth: (1, 1, H, W) 1 on the mouth cap (the mouth interior).
        source_points: (1, H, W, 2) where each target pixel samples the source image: the face's
            points, the head's own motion over hair, ears and neck (photos), spread smoothly over
            the background and fading to the pixel itself far from the head.
        screen: (1, V, 3) the target FaceParams' vertices on the image (pixels and depth), as
            rendered (before any pinning).
    """

    source: SourceFace
    target: RenderMaps
    light: Tensor
    face_points: Tensor
    covisible: Tensor
    mouth: Tensor
    source_points: Tensor
    screen: Tensor

    def pinned(self, fields: PinningFields) -> TargetWarp:
        """This warp with its target drawn at ``p + draw_shift(p)`` and every source point moved by
        ``read_shift`` (:mod:`jr2net.landmark_pinning`). Masks move by their nearest pixel, so
        they stay binary; the target's fragments are left as rendered (nothing reads them after
        the warp)."""
        height, width = self.target.mask.shape[-2:]
        shifted = pixel_centres(height, width) + fields.draw_shift.permute(0, 2, 3, 1)

        def moved(maps: Tensor, mode: str = "bilinear") -> Tensor:
            return sample(maps, shifted, "border", mode)

        def moved_points(points: Tensor) -> Tensor:
            return (moved(points.permute(0, 3, 1, 2)) + fields.read_shift).permute(0, 2, 3, 1)

        target = self.target
        shaded = moved(torch.cat([target.depth, target.normal, target.light, target.albedo, target.image], 1))
        depth, normal, light, albedo, image = shaded.split([1, 3, 3, 3, 3], dim=1)
        mask, covisible, mouth = moved(
            torch.cat([target.mask, self.covisible, self.mouth], 1), "nearest"
        ).split(1, dim=1)
        return TargetWarp(
            source=self.source,
            target=RenderMaps(mask, depth, normal, light, albedo, image, target.fragments),
            light=self.light,
            face_points=moved_points(
                torch.where(target.mask[:, 0, ..., None] > 0, self.face_points, self.source_points)
            ),
            covisible=covisible,
            mouth=mouth,
            source_points=moved_points(self.source_points),
            screen=self.screen,
        )

    def reading(self, points: Tensor, inside: Tensor) -> TargetWarp:
        """This warp with each target pixel where ``inside`` (1, 1, H, W) > 0 reading the source at
        ``points`` (1, H, W, 2) instead (the face's points and the spread ones alike)."""
        chosen = inside[:, 0, ..., None] > 0
        return replace(
            self,
            face_points=torch.where(chosen, points, self.face_points),
            source_points=torch.where(chosen, points, self.source_points),
        )

    def shifted_reads(self, shift: Tensor) -> TargetWarp:
        """This warp with every target pixel reading the source ``shift`` (1, H, W, 2) further."""
        return replace(self, face_points=self.face_points + shift, source_points=self.source_points + shift)

    def refiner_inputs(self) -> RefinerInputs:
        """What a :class:`Refiner` gets: the source image sampled at the face's points."""
        return RefinerInputs(
            source=self.source,
            warped=sample(self.source.image, self.face_points),
            covisible=self.covisible,
            target=self.target,
            light=self.light,
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


def _fixed_landmark_triangles(landmarks: Tensor, valid: Tensor) -> Tensor:
    """(F, 3) the Delaunay triangles of the (478, 2) source ``landmarks`` that are ``valid`` (478,)
    (a fixed surface point: no iris, no silhouette), as indices into ``landmarks``."""
    kept = np.flatnonzero(valid.numpy())
    return torch.from_numpy(kept[delaunay_triangles(landmarks.double().numpy()[kept])])


def prepare_source(
    model: FaceModel,
    image: np.ndarray,
    params: FaceParams,
    region: str = "face_area",
    landmarks: np.ndarray | None = None,
) -> SourceFace:
    """Precompute the source's render (depth and light map with the hole caps) for reenactment;
    ``landmarks`` (478, 2+) are the tracker's on ``image`` (None: the warp is not pinned)."""
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
        landmarks=None if landmarks is None else torch.tensor(landmarks[:, :2], dtype=torch.float32),
    )


def computed_at(model: FaceModel, source: SourceFace, scale: float) -> SourceFace:
    """``source`` prepared at ``scale`` (< 1) of its size for the warp, shown at its own size
    (:attr:`SourceFace.display`); ``source`` itself at a scale of 1 and for the built-in avatar
    (drawn from the model at its own size)."""
    if scale == 1 or source.region == AVATAR_REGION:
        return source
    if not 0 < scale < 1:
        raise ValueError(f"a computing scale is in (0, 1], got {scale}")
    height, width = source.image.shape[-2:]
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small = torch.nn.functional.interpolate(source.image, size=size, mode="area")
    factor = torch.tensor([size[1] / width, size[0] / height])
    params = source.params.replace(focal=source.params.focal * size[1] / width)
    landmarks = None if source.landmarks is None else (source.landmarks * factor).numpy()
    prepared = prepare_source(model, to_uint8(small[0]), params, source.region, landmarks)
    return replace(prepared, display=source.picture)


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


@dataclass(frozen=True)
class PinningPlan:
    """One frame's landmark pinning as far as it is known before the warp: the thin-plate spline
    on the coarse grid (:mod:`jr2net.landmark_pinning`). The irises' read values need the warp's
    source points (:func:`jr2net.gaze.iris_reads`); the spline is linear in its values, so their
    share is kept as each iris anchor's response to a unit read value.

    Attributes:
        grid: (1, 4, rows, columns) draw ‖ read values with the irises reading nothing.
        iris_response: (1, 10, rows, columns) the read field of a unit read value at each iris anchor.
        irises: the iris anchors.
        eyes: (2·21, 2) where the eye openings' landmarks are drawn (:func:`jr2net.eye_warp.eye_targets`).
        landmarks: (478, 2) where the target's landmarks are drawn (pixels).
        outline: the outline's read correction (:mod:`jr2net.outline_reads`) but for the reads'
            errors, which need the warp.
    """

    grid: Tensor
    iris_response: Tensor
    irises: IrisAnchors
    eyes: Tensor
    landmarks: Tensor
    outline: OutlinePlan


@dataclass(frozen=True)
class TargetPlan:
    """Where one driving frame puts the source's face, decided from the driving FaceParams and
    landmarks alone (:meth:`Reenactor.plan`; a few hundred kB, so it can cross to another process)
    and drawn by :meth:`Reenactor.draw`.

    Attributes:
        params: the target FaceParams.
        screen: (1, V, 3) their vertices on the source image (pixels and depth).
        view_normals: (1, V, 3) their unit normals in the view frame.
        pinning: the landmark pinning, None where it does not apply.
    """

    params: FaceParams
    screen: Tensor
    view_normals: Tensor
    pinning: PinningPlan | None


class Reenactor:
    """Drives a :class:`SourceFace` with driving FaceParams.

    Args:
        model: the face model.
        source: the prepared source.
        motion: ``relative`` (driving motion since its first frame, applied to the source) or
            ``absolute`` (the driving's expression and head rotation as they are).
        light: ``source`` keeps the source's light, ``driving`` uses the driving frame's.
        renderer: turns the warp into the frame (default :class:`GeometricRenderer`).

    With the source's landmarks (:attr:`SourceFace.landmarks`) and each driving frame's, relative
    motion pins the warp to the landmarks (:mod:`jr2net.landmark_pinning`), unless the controls
    set the expression or the head's angles (the driver's landmarks no longer say where the face
    goes then). Pinned, the face between the source's fixed-surface landmarks reads the source
    piecewise-affinely where the source saw it (each landmark exactly its own source pixel, as a
    2D landmark warp reads it, where the coarse spline only approaches it); the 3D warp keeps
    what those landmarks do not bound: the cheeks out to the silhouette, the mouth's inside, and
    what the turned head brings into view.
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
        self.reference_landmarks: np.ndarray | None = None
        self._source_shape = model.identity_shape(source.params.identity)
        self._correspondence: MediapipeCorrespondence | None = None
        self._anchored: Tensor | None = None
        self._source_residual: Tensor | None = None
        self._eyes: EyeTriangles | None = None
        self._face_triangles: Tensor | None = None
        self._lid_gains: Tensor | None = None
        if source.landmarks is not None:
            self._correspondence = MediapipeCorrespondence.load(model)
            frontal = self._correspondence.landmark_points(model.neutral[None])[0, :, :2]
            self._anchored = spline_anchors(frontal, self._correspondence.valid)
            fitted = self._landmark_pixels(source.params, self._source_shape)
            self._source_residual = (source.landmarks - fitted)[self._anchored]
            self._eyes = EyeTriangles.of(source.landmarks.float())
            self._face_triangles = _fixed_landmark_triangles(source.landmarks, self._correspondence.valid)
            self._lid_gains = skin_above_crease(source.image, opening_contours(self._eyes.source))

    def recalibrate(self) -> None:
        """Make the next driving frame the neutral reference of relative motion (its FaceParams and
        landmarks), as if it were the first: for a driver whose first frame was not neutral."""
        self.reference, self.reference_landmarks = None, None

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

    def __call__(
        self, driving: FaceParams, controls: Controls = Controls(), landmarks: np.ndarray | None = None
    ) -> ReenactedFrame:
        """Reenact one driving frame; ``landmarks`` (478, 2+) are the tracker's on it (pixels)."""
        return self.draw(self.plan(driving, controls, landmarks))

    @torch.no_grad()
    def plan(
        self, driving: FaceParams, controls: Controls = Controls(), landmarks: np.ndarray | None = None
    ) -> TargetPlan:
        """Where one driving frame puts the face (the first one is the relative reference): the
        target FaceParams, their geometry and the landmark pinning's spline."""
        target = self.target_params(driving, controls)
        geometry = self._geometry(target)
        pinning = self._pinning_plan(geometry.screen, controls, landmarks)
        return TargetPlan(target, geometry.screen, geometry.view_normals, pinning)

    @property
    def draws_model(self) -> bool:
        """Whether the source is the built-in avatar, drawn from the model at each target (its
        picture is a render of it: exact, where a warp would smear what the picture saw edge-on),
        so the frame renderer is never used."""
        return self.source.region == AVATAR_REGION

    @torch.no_grad()
    def draw(self, plan: TargetPlan) -> ReenactedFrame:
        """The frame of a :meth:`plan` (of this reenactor's source; it may have been made by another
        reenactor of the same source and model, in another process)."""
        if self.draws_model:
            return self._model_frame(plan.params, plan.screen, plan.view_normals)
        warp = self._warp(plan.params, plan.screen, plan.view_normals)
        if plan.pinning is not None:
            warp = self._pinned(plan.pinning, warp)
        return self._frame(warp, plan.params)

    @torch.no_grad()
    def render(self, target: FaceParams) -> ReenactedFrame:
        """Reenact the source with fully specified target FaceParams (never pinned)."""
        if self.draws_model:
            geometry = self._geometry(target)
            return self._model_frame(target, geometry.screen, geometry.view_normals)
        return self._frame(self.warp(target), target)

    def _frame(self, warp: TargetWarp, target: FaceParams) -> ReenactedFrame:
        image = self.renderer(warp)
        if self.source.display is not None:
            image = present(image, warp.source_points, self.source.image, self.source.display)
        return ReenactedFrame(
            image=to_uint8(image[0]),
            face_mask=warp.target.mask,
            covisible=warp.covisible,
            params=target,
        )

    def _model_frame(self, target: FaceParams, screen: Tensor, normals: Tensor) -> ReenactedFrame:
        """The built-in avatar drawn with ``target`` from its vertices ``screen`` and ``normals``
        (1, V, 3) on the source image; every pixel of its head is known (co-visible)."""
        height, width = self.source.image.shape[-2:]
        image, mask = draw_avatar(self.model, target, screen, normals, height, width)
        return ReenactedFrame(image=to_uint8(image[0]), face_mask=mask, covisible=mask, params=target)

    @torch.no_grad()
    def pin(self, warp: TargetWarp, controls: Controls, landmarks: np.ndarray | None) -> TargetWarp:
        """``warp`` pinned to the driver's landmarks, or as it is where pinning does not apply (no
        source or driving landmarks, absolute motion, or controls that set the expression or the
        head's angles). The first driving landmarks seen are the reference of their motion. The
        irises then follow the driver's (:mod:`jr2net.gaze`)."""
        plan = self._pinning_plan(warp.screen, controls, landmarks)
        return warp if plan is None else self._pinned(plan, warp)

    def _pinning_plan(
        self, screen: Tensor, controls: Controls, landmarks: np.ndarray | None
    ) -> PinningPlan | None:
        """The pinning's spline for the target vertices ``screen`` (1, V, 3) and the driver's
        ``landmarks``, on every cell of the grid; None where pinning does not apply."""
        if landmarks is None or self._correspondence is None or self._source_residual is None:
            return None
        assert self._anchored is not None  # set with the source residual
        driving = np.asarray(landmarks, dtype=np.float64)[:, :2]
        if self.reference_landmarks is None:
            self.reference_landmarks = driving
        angles = (controls.pitch, controls.yaw, controls.roll)
        overridden = bool(controls.expression) or any(angle is not None for angle in angles)
        if self.motion != "relative" or overridden:
            return None
        assert self.source.landmarks is not None  # a source residual implies source landmarks
        source = self.source.landmarks.double().numpy()
        moved = transfer_landmarks(source, driving, self.reference_landmarks)
        pinned = torch.from_numpy(transfer_lids(moved, source, driving, self.reference_landmarks)).float()
        anchored = self._anchored
        draw = self._correspondence.landmark_points(screen)[0, :, :2] - pinned
        irises = iris_anchors(pinned, draw, anchored)
        count, iris_count = int(anchored.sum()), len(irises.positions)
        values = torch.zeros(count + iris_count, 4 + iris_count)
        values[:count, :2], values[:count, 2:4] = draw[anchored], self._source_residual
        values[count:, :2] = irises.draw
        values[count:, 4:] = torch.eye(iris_count)
        smoothing = torch.cat(
            [torch.full((count,), SPLINE_SMOOTHING), torch.full((iris_count,), IRIS_SMOOTHING)]
        )
        height, width = self.source.image.shape[-2:]
        anchors = torch.cat([pinned[anchored], irises.positions])
        grid = thin_plate_grid(anchors, values, height, width, smoothing=smoothing)
        assert self._eyes is not None  # set with the source residual
        outline = outline_plan(pinned[list(oval_landmarks())], pinned[anchored], height, width)
        return PinningPlan(grid[:, :4], grid[:, 4:], irises, eye_targets(pinned, self._eyes), pinned, outline)

    def _pinned(self, plan: PinningPlan, warp: TargetWarp) -> TargetWarp:
        """``warp`` pinned by ``plan`` (:meth:`_landmark_reads`), its outline read toward where the
        source's oval landmarks saw it (:mod:`jr2net.outline_reads`)."""
        read = self._landmark_reads(plan, warp)
        assert self.source.landmarks is not None  # as for the reads
        wanted = self.source.landmarks[list(oval_landmarks())]
        shift = outline_shift(plan.outline, read.source_points, wanted, self._moving_region)
        return read.shifted_reads(shift)

    def _landmark_reads(self, plan: PinningPlan, warp: TargetWarp) -> TargetWarp:
        """``warp`` bent by the pinning's fields of ``plan``; where the source saw the
        target, off the mouth cap, the face between the fixed-surface landmarks read
        piecewise-affinely (:mod:`jr2net.piecewise_affine`); its eye openings read so too
        (:mod:`jr2net.eye_warp`), its closing lids reading the skin above the crease
        (:mod:`jr2net.eyelids`)."""
        assert self._eyes is not None and self._face_triangles is not None  # set with the plan's source
        assert self.source.landmarks is not None
        height, width = warp.target.mask.shape[-2:]
        bent = warp.pinned(self._pinning_fields(plan, warp))
        points, covered = triangle_reads(
            self.source.landmarks.float(), self._face_triangles, plan.landmarks, height, width
        )
        seen = covered * (bent.covisible > 0.5).float() * (bent.mouth < 0.5).float()
        read = bent.reading(points, seen).reading(*eye_reads(self._eyes, plan.eyes, height, width))
        assert self._lid_gains is not None  # set with the eye triangles
        contours = opening_contours(self._eyes.source), opening_contours(plan.eyes)
        lids = closed_lid_reads(read.source_points, *contours, self._lid_gains)
        return read if lids is None else read.reading(*lids)

    def _pinning_fields(self, plan: PinningPlan, warp: TargetWarp) -> PinningFields:
        """The pinning's fields for ``warp``: the irises' read values (which need its source
        points) added through their responses, faded out away from the face."""
        assert self.source.landmarks is not None  # a pinning plan implies source landmarks
        reads = iris_reads(plan.irises, self.source.landmarks.float(), warp.source_points)
        iris_share = torch.einsum("bkhw,kc->bchw", plan.iris_response, reads)
        grid = torch.cat([plan.grid[:, :2], plan.grid[:, 2:] + iris_share], dim=1)
        return fields_from_grid(grid, warp.target.mask, self._moving_region)

    def _landmark_pixels(self, params: FaceParams, shape: Tensor) -> Tensor:
        """(478, 2) where ``params`` put MediaPipe's landmarks on the source image (pixels)."""
        assert self._correspondence is not None
        height, width = self.source.image.shape[-2:]
        screen = face_geometry(self.model, params, height, width, shape).screen
        return self._correspondence.landmark_points(screen)[0, :, :2]

    @torch.no_grad()
    def warp(self, target: FaceParams) -> TargetWarp:
        """The source warped to the target FaceParams: the target render, each target pixel's
        source point, co-visibility, and the flow spread over the whole frame."""
        geometry = self._geometry(target)
        return self._warp(target, geometry.screen, geometry.view_normals)

    def _geometry(self, target: FaceParams) -> FaceGeometry:
        """The target FaceParams' mesh on the source image."""
        height, width = self.source.image.shape[-2:]
        same_identity = torch.equal(target.identity, self.source.params.identity)
        shape = self._source_shape if same_identity else None
        return face_geometry(self.model, target, height, width, shape)

    def _warp(self, target: FaceParams, screen: Tensor, normals: Tensor) -> TargetWarp:
        """:meth:`warp` from the target's vertices ``screen`` and ``normals`` (1, V, 3)."""
        source = self.source
        height, width = source.image.shape[-2:]
        maps = render_maps(screen, normals, source.params.albedo, target.light, self.triangles, height, width)
        fragments = maps.fragments
        camera = intrinsics(source.params.focal, height, width)
        found = mesh_correspondence(
            fragments, self.triangles, source.camera_points, camera, source.depth, COVISIBILITY_TOLERANCE
        )
        cap = (fragments.tri_id - self.face_triangle_count).clamp(min=0)
        mouth = ((fragments.tri_id >= self.face_triangle_count) & self.mouth_caps[cap]).float()[:, None]
        face_points = found.points[..., :2]
        return TargetWarp(
            source=source,
            target=maps,
            light=target.light,
            face_points=face_points,
            covisible=found.covisible,
            mouth=mouth,
            source_points=self._spread(maps.mask, face_points, self._head_flow(target)),
            screen=screen,
        )

    @functools.cached_property
    def _person(self) -> PersonMasks | None:
        """Where the source photo shows the person, None for the built-in avatar; made on the first
        warp, so a reenactor that only plans (the live reconstruct stage's) never runs GrabCut."""
        if self.draws_model:
            return None
        return person_masks(self.source.image, self.source.params, self.source.depth)

    @functools.cached_property
    def _moving_region(self) -> Tensor | None:
        """(1, 1, H, W) in [0, 1]: where the source's frame may move (its person and the margin
        around it, soft at the edge), None where the person is not known (the built-in avatar)."""
        if self._person is None:
            return None
        height, width = self.source.image.shape[-2:]
        return to_pixels(self._person.near, height, width)

    def _head_flow(self, target: FaceParams) -> HeadFlow | None:
        """The head's flow beyond the face for ``target`` (:mod:`jr2net.head_motion`), None where
        the warped region is already the whole head (the built-in avatar)."""
        if self._person is None:
            return None
        height, width = self.source.image.shape[-2:]
        return head_flow(self.source.params, target, height, width, self._person)

    @staticmethod
    def _spread(mask: Tensor, source_pixels: Tensor, head: HeadFlow | None) -> Tensor:
        """The face's source points (1, H, W, 2) extended over the frame: by the head's own flow
        around the face where ``head`` is given, and the extrapolated flow beyond."""
        height, width = mask.shape[-2:]
        centres = pixel_centres(height, width)
        flow = (source_pixels - centres).permute(0, 3, 1, 2).contiguous()  # channels first: faster blurs
        face_size = math.sqrt(float(mask.sum())) or 1.0
        spread = extrapolate_flow(
            flow,
            mask,
            sigma=FLOW_SPREAD_FRACTION * face_size,
            downscale=HEAD_FLOW_DOWNSCALE,
            near_sigma=FLOW_NEAR_FRACTION * face_size,
            around=None if head is None else (head.flow, head.mask),
        )
        return centres + spread.permute(0, 2, 3, 1)


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
