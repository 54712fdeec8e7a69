"""RecNet's self-supervised losses (and the optional distillation from the fitter).

- photometric: the face rendered through the differentiable renderer against the crop, L1 on the
  skin (rendered skin region ∩ MediaPipe's face oval), at a reduced resolution;
- landmark: MediaPipe's landmarks against the model's corresponded surface points, projected by
  the crop camera, in units of the crop size;
- regularisation of identity, expression, albedo and light;
- identity consistency: two crops of one clip predict one identity;
- distillation: the fitter's identity and expression; pose distillation: its crop-camera pose
  (rotation relative to the viewing ray, the anchor's crop pixel and depth ratio).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.camera import euler_to_matrix, model_to_camera, project
from jr2net.correspondence import MediapipeCorrespondence
from jr2net.face_model import FaceModel
from jr2net.geometry import FaceGeometry, place_vertices
from jr2net.nets.recnet import CropParams, albedo_from_coefficients
from jr2net.render import render_maps
from jr2net.training.crop_dataset import CropBatch


@dataclass(frozen=True)
class LossWeights:
    """Weights of the terms; a zero weight skips the term (and its rendering, for photometric)."""

    photometric: float = 1.0
    landmark: float = 20.0
    identity_prior: float = 1e-3
    expression_prior: float = 1e-3
    albedo_prior: float = 1e-2
    light_prior: float = 1e-3
    identity_consistency: float = 1e-2
    distillation: float = 1.0
    pose_distillation: float = 10.0
    expression_distillation_scale: float = 10.0  # expression against identity (1) within distillation


class RecNetLosses:
    """Computes the weighted terms for a batch; one instance holds the model-dependent constants.

    Args:
        model: the face model.
        basis: (V, K) albedo basis (:func:`jr2net.nets.recnet.albedo_basis`).
        weights: the loss weights.
        render_size: resolution of the photometric loss (the crops are area-downsampled to it).
    """

    def __init__(self, model: FaceModel, basis: Tensor, weights: LossWeights, render_size: int) -> None:
        self.model = model
        self.basis = basis
        self.weights = weights
        self.render_size = render_size
        self.correspondence = MediapipeCorrespondence.load(model)
        self.valid = self.correspondence.valid
        self.skin_triangles = model.region_triangles("narrow_face")

    def __call__(self, predicted: CropParams, batch: CropBatch, base_light: Tensor) -> dict[str, Tensor]:
        """Weighted terms by name, and ``total``; each a scalar tensor."""
        crop_size = batch.images.shape[-1]
        vertices, rotation, translation, intrinsic = self._placement(predicted, batch)
        render_intrinsic = intrinsic.clone()
        render_intrinsic[:, :2] *= self.render_size / crop_size
        geometry = place_vertices(self.model, vertices, rotation, translation, render_intrinsic)
        terms = {"landmark": self._landmark(geometry.camera_points, intrinsic, batch, crop_size)}
        if self.weights.photometric:
            terms["photometric"] = self._photometric(geometry, predicted, batch)
        terms["identity_prior"] = predicted.identity.square().mean()
        terms["expression_prior"] = predicted.expression.square().mean()
        terms["albedo_prior"] = predicted.albedo_coefficients.square().mean()
        terms["light_prior"] = (predicted.light.reshape(len(vertices), -1) - base_light).square().mean()
        terms["identity_consistency"] = (predicted.identity - predicted.identity[batch.pair]).square().mean()
        if self.weights.distillation:
            identity = (predicted.identity - batch.identity).square().mean()
            expression = (predicted.expression - batch.expression).square().mean()
            terms["distillation"] = identity + self.weights.expression_distillation_scale * expression
        if self.weights.pose_distillation:
            terms["pose_distillation"] = self._pose_distillation(predicted, batch, crop_size)
        weighted = {name: getattr(self.weights, name) * value for name, value in terms.items()}
        weighted["total"] = sum(weighted.values())
        return weighted

    def landmark(self, predicted: CropParams, batch: CropBatch) -> Tensor:
        """The landmark term alone, unweighted: the mean distance of MediaPipe's landmarks from the
        projected surface points, in units of the crop size (no render, no mesh normals)."""
        vertices, rotation, translation, intrinsic = self._placement(predicted, batch)
        camera_points = model_to_camera(vertices, rotation, translation)
        return self._landmark(camera_points, intrinsic, batch, batch.images.shape[-1])

    def _placement(self, predicted: CropParams, batch: CropBatch) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The predicted faces' vertices (B, V, 3), rotations (B, 3, 3) and translations (B, 3) in
        the crop camera, and its intrinsics (B, 3, 3)."""
        vertices = self.model(predicted.identity, predicted.expression)
        intrinsic = batch.intrinsics.to(vertices)
        angles, translation = predicted.crop_pose(intrinsic[:, 0, 0], intrinsic[:, :2, 2])
        return vertices, euler_to_matrix(angles), translation, intrinsic

    def _landmark(self, camera_points: Tensor, intrinsic: Tensor, batch: CropBatch, crop_size: int) -> Tensor:
        points = self.correspondence.landmark_points(camera_points)[:, self.valid]
        pixels = project(points, intrinsic)[..., :2]
        target = batch.landmarks[:, self.valid].to(pixels)
        return (pixels - target).norm(dim=-1).mean() / crop_size

    def _photometric(self, geometry: FaceGeometry, predicted: CropParams, batch: CropBatch) -> Tensor:
        """L1 on the skin of ``geometry`` (projected at :attr:`render_size`) against the crops."""
        size = self.render_size
        if batch.skin.shape[-1] != size:
            raise ValueError(
                f"skin masks are {batch.skin.shape[-1]}² but the photometric loss renders {size}²"
            )
        screen, normals = geometry.screen, geometry.view_normals
        albedo = albedo_from_coefficients(self.basis, predicted.albedo_coefficients)
        maps = render_maps(screen, normals, albedo, predicted.light, self.skin_triangles, size, size)
        target = torch.nn.functional.interpolate(batch.images, size=(size, size), mode="area")
        mask = maps.mask * batch.skin
        return ((maps.image - target).abs() * mask).sum() / (3 * mask.sum()).clamp(min=1.0)

    def _pose_distillation(self, predicted: CropParams, batch: CropBatch, crop_size: int) -> Tensor:
        intrinsic = batch.intrinsics.to(predicted.centre)
        target_centre = project(batch.anchor[:, None].to(intrinsic), intrinsic)[:, 0, :2]
        target_ratio = batch.anchor[:, 2] / intrinsic[:, 0, 0]
        return (
            (predicted.rotation - batch.rotation).square().mean()
            + ((predicted.centre - target_centre) / crop_size).square().mean()
            + torch.log(predicted.depth_ratio / target_ratio).square().mean()
        )
