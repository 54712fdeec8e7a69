"""RecNet: FaceParams regressed from an aligned face crop.

The network sees a (B, 3, S, S) crop (RGB in [0, 1], :mod:`jr2net.alignment`) and outputs one raw
vector per face; :meth:`RecNet.decode` turns it into :class:`CropParams`, the face in the crop's
camera (:mod:`jr2net.nets.crop_camera`): identity, expression in [0, 1], Euler angles relative to
the viewing ray, where the face anchor (:data:`FACE_ANCHOR`) projects in the crop, its depth over
the crop focal (the apparent size: the crop alone cannot tell distance from focal), SH light and
albedo coefficients over a smooth basis.
:meth:`CropParams.to_face_params` places the face back into the full image.

Architectures: ``resnet50`` (the paper's RecNet), ``resnet18`` and ``small`` (a MobileNetV2 at
half width, the real-time variant).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from jr2net.lighting import SH_COEFFICIENTS, light_preset
from jr2net.mirror import FaceMirror, mirror_angles
from jr2net.nets.backbones import MobileNetV2, resnet18, resnet50
from jr2net.nets.crop_camera import (
    along_ray,
    camera_position,
    crop_intrinsics,
    crop_pose_to_image,
    default_focal,
)
from jr2net.params import DEFAULT_ALBEDO, FaceParams, ParamLayout
from jr2net.shapes import check_tensor

ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "small": lambda: MobileNetV2(width=0.5),
    "resnet18": resnet18,
    "resnet50": resnet50,
}
ALBEDO_BASIS_SIZE = 10
CROP_SIZE = 224
# The point RecNet places the face by: the centre of the tracked landmarks on the mean shape (ICT
# model frame, cm), not the head's origin 10 cm behind the face. Placed by its origin, the face's
# apparent size depends on the focal length, which a crop cannot show and the fitter's targets vary
# (0.9-2.7× the default); placed by its front, it hardly does.
FACE_ANCHOR = (0.0, 0.0, 10.3)
# Where a face of the training crops typically sits: its anchor at this fraction of the crop, its
# depth over the crop focal (cm per crop pixel at the face) this ratio; the network predicts
# offsets from them.
TYPICAL_CENTRE = (0.5, 0.61)
TYPICAL_DEPTH_RATIO = 0.105
EXPRESSION_OFFSET = -3.0  # sigmoid(-3) ≈ 0.05: a near-neutral face before training
IMAGE_MEAN, IMAGE_STD = 0.5, 0.25
# Signs a left-right mirror gives the SH light terms (x, xy, xz flip; :mod:`jr2net.lighting`'s
# order) and the albedo basis terms (x, xy, xz flip; :func:`albedo_basis`'s order).
LIGHT_MIRROR = (1.0, 1.0, 1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 1.0)
ALBEDO_MIRROR = (1.0, -1.0, 1.0, 1.0, 1.0, 1.0, 1.0, -1.0, 1.0, -1.0)


@dataclass(frozen=True)
class CropParams:
    """RecNet's decoded output for B faces, in the crop camera.

    Attributes:
        identity: (B, I) identity coefficients.
        expression: (B, E) expression weights in [0, 1].
        rotation: (B, 3) Euler angles (radians) relative to the viewing ray through the face
            anchor (what a crop shows: an off-axis face looks turned by the ray's angle).
        centre: (B, 2) crop pixel where the face anchor (:data:`FACE_ANCHOR`) projects.
        depth_ratio: (B,) camera depth of the face anchor over the crop focal.
        light: (B, 9, 3) SH light.
        albedo_coefficients: (B, K, 3) coefficients of :func:`albedo_basis`.
    """

    identity: Tensor
    expression: Tensor
    rotation: Tensor
    centre: Tensor
    depth_ratio: Tensor
    light: Tensor
    albedo_coefficients: Tensor

    def crop_pose(self, crop_focal: Tensor, principal: Tensor) -> tuple[Tensor, Tensor]:
        """The head's Euler angles (B, 3) and translation (B, 3) in the crop camera of focal (B,)
        and principal point (B, 2)."""
        depth = self.depth_ratio * crop_focal
        anchor = torch.cat([(self.centre - principal) * self.depth_ratio[:, None], depth[:, None]], dim=-1)
        rotation = along_ray(self.rotation, anchor)
        point = torch.tensor(FACE_ANCHOR, dtype=anchor.dtype, device=anchor.device)
        return rotation, anchor - camera_position(rotation, torch.zeros_like(anchor), point)

    def mirrored(self, mirror: FaceMirror, crop_size: int = CROP_SIZE) -> CropParams:
        """The face seen in the left-right flip of its crop (``crop_size`` pixels wide)."""
        signs = {"dtype": self.light.dtype, "device": self.light.device}
        return CropParams(
            identity=mirror.mirror_identity(self.identity),
            expression=mirror.mirror_expression(self.expression),
            rotation=mirror_angles(self.rotation),
            centre=torch.stack([crop_size - self.centre[:, 0], self.centre[:, 1]], dim=-1),
            depth_ratio=self.depth_ratio,
            light=self.light * torch.tensor(LIGHT_MIRROR, **signs)[:, None],
            albedo_coefficients=self.albedo_coefficients * torch.tensor(ALBEDO_MIRROR, **signs)[:, None],
        )

    def split(self, size: int) -> tuple[CropParams, ...]:
        """The faces in groups of ``size`` (the last may be smaller), as ``torch.split`` does."""
        fields = [getattr(self, field.name).split(size) for field in dataclasses.fields(self)]
        return tuple(CropParams(*parts) for parts in zip(*fields))

    def averaged(self, other: CropParams) -> CropParams:
        """The mean of two estimates of the same faces, field by field."""
        return CropParams(
            **{
                field.name: 0.5 * (getattr(self, field.name) + getattr(other, field.name))
                for field in dataclasses.fields(self)
            }
        )

    def to_face_params(
        self, matrix: Tensor, image_size: Tensor, basis: Tensor | None, focal: Tensor | None = None
    ) -> FaceParams:
        """FaceParams in the full image.

        Args:
            matrix: (B, 2, 3) image-to-crop maps of the crops.
            image_size: (B, 2) image (height, width).
            basis: (V, K) :func:`albedo_basis` of the face model, or ``None`` to leave the
                per-vertex albedo out (``albedo=None``: the default skin tone).
            focal: (B,) image focal in pixels; :func:`default_focal` when ``None``.
        """
        focal = default_focal(image_size[:, 0].float()) if focal is None else focal
        intrinsic = crop_intrinsics(matrix.double(), image_size.double(), focal.double()).to(self.rotation)
        rotation, translation = crop_pose_to_image(
            *self.crop_pose(intrinsic[:, 0, 0], intrinsic[:, :2, 2]), matrix
        )
        return FaceParams(
            identity=self.identity,
            expression=self.expression,
            rotation=rotation,
            translation=translation,
            focal=focal.to(self.rotation),
            light=self.light,
            albedo=None if basis is None else albedo_from_coefficients(basis, self.albedo_coefficients),
        )


def crop_images(crops: np.ndarray) -> Tensor:
    """RecNet's input from uint8 RGB crops: (B, S, S, 3) -> (B, 3, S, S) float32 in [0, 1]."""
    return torch.from_numpy(np.require(crops, requirements=["C", "W"])).permute(0, 3, 1, 2).float() / 255.0


def albedo_basis(neutral: Tensor) -> Tensor:
    """Smooth albedo basis (V, 10): the monomials of degree ≤ 2 of the normalised mean-shape coordinates.

    Args:
        neutral: (V, 3) mean shape.
    """
    check_tensor("neutral", neutral, ("V", 3))
    centred = neutral - neutral.mean(0)
    x, y, z = (centred / centred.abs().amax(0)).unbind(-1)
    return torch.stack([torch.ones_like(x), x, y, z, x * x, y * y, z * z, x * y, y * z, x * z], dim=-1)


def albedo_from_coefficients(basis: Tensor, coefficients: Tensor) -> Tensor:
    """Per-vertex albedo (B, V, 3) in [0, 1]: the default skin tone plus ``basis @ coefficients``."""
    check_tensor("coefficients", coefficients, ("B", basis.shape[1], 3))
    tone = torch.tensor(DEFAULT_ALBEDO, dtype=coefficients.dtype, device=coefficients.device)
    return (tone + torch.einsum("vk,bkc->bvc", basis.to(coefficients), coefficients)).clamp(0, 1)


class RecNet(nn.Module):
    """Backbone + linear head; ``forward`` gives the raw (B, D) output, ``decode`` the CropParams.

    Args:
        layout: identity and expression counts of the face model.
        architecture: a key of :data:`ARCHITECTURES`.
    """

    def __init__(self, layout: ParamLayout, architecture: str = "small") -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown RecNet architecture {architecture!r}; choose from {sorted(ARCHITECTURES)}"
            )
        self.layout = layout
        self.architecture = architecture
        self.sizes = (
            layout.identity_count,
            layout.expression_count,
            3,
            2,
            1,
            SH_COEFFICIENTS * 3,
            ALBEDO_BASIS_SIZE * 3,
        )
        self.backbone = ARCHITECTURES[architecture]()
        self.head = nn.Linear(self.backbone.feature_size, sum(self.sizes))
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("base_light", light_preset("frontal").reshape(-1), persistent=False)
        self.register_buffer("typical_centre", torch.tensor(TYPICAL_CENTRE), persistent=False)

    @property
    def output_size(self) -> int:
        return sum(self.sizes)

    def features(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) RGB crops in [0, 1] -> the backbone's pooled (B, C) features."""
        check_tensor("images", images, ("B", 3, "S", "S"))
        return self.backbone((images - IMAGE_MEAN) / IMAGE_STD)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) RGB crops in [0, 1] -> raw (B, D) output."""
        return self.head(self.features(images))

    def decode(self, raw: Tensor) -> CropParams:
        """Raw (B, D) output -> :class:`CropParams` (of a :data:`CROP_SIZE` crop)."""
        check_tensor("raw", raw, ("B", self.output_size))
        identity, expression, rotation, centre, depth, light, albedo = torch.split(raw, self.sizes, dim=1)
        return CropParams(
            identity=identity,
            expression=torch.sigmoid(expression + EXPRESSION_OFFSET),
            rotation=rotation,
            centre=CROP_SIZE * (self.typical_centre + centre / 2),
            depth_ratio=TYPICAL_DEPTH_RATIO * torch.exp(depth[:, 0]),
            light=(self.base_light + 0.5 * light).reshape(-1, SH_COEFFICIENTS, 3),
            albedo_coefficients=0.2 * albedo.reshape(-1, ALBEDO_BASIS_SIZE, 3),
        )
