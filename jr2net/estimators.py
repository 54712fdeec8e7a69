"""Per-frame estimators behind :class:`jr2net.reconstruct.Reconstructor`: the fitter, or RecNet
(or RecAugNet, read the same way).

An estimator gives FaceParams (batch of one): of the first of a few tracked faces with the
identity (1, I) they share, then of each frame with that identity. Their light is the method's
own (the fitter's a preset) and they have no albedo; the reconstructor estimates both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from jr2net.alignment import align_face
from jr2net.face_model import FaceModel
from jr2net.fitting import LandmarkFitter
from jr2net.mirror import FaceMirror
from jr2net.nets.recaugnet import RecAugNet
from jr2net.nets.recnet import CROP_SIZE, CropParams, RecNet, albedo_basis, crop_images
from jr2net.params import FaceParams
from jr2net.tracking import Tracking

Face = tuple[Tracking, np.ndarray]


class FrameEstimator(Protocol):
    """What the reconstructor needs from a method."""

    def identity(self, faces: list[Face]) -> FaceParams:
        """The first tracked face's FaceParams (the faces with their RGB images), with the identity
        (1, I) shared by all of them."""
        ...

    def frame(self, face: Face, identity: Tensor, previous: FaceParams | None) -> FaceParams:
        """One frame's FaceParams with the identity (1, I), warm-started from ``previous`` where useful."""
        ...


class FitterEstimator:
    """The landmark fitter (:class:`jr2net.fitting.LandmarkFitter`)."""

    def __init__(self, fitter: LandmarkFitter) -> None:
        self.fitter = fitter

    def identity(self, faces: list[Face]) -> FaceParams:
        return self.fitter.fit_identity([tracking for tracking, _ in faces])[0]

    def frame(self, face: Face, identity: Tensor, previous: FaceParams | None) -> FaceParams:
        return self.fitter.fit_frame(face[0], identity, previous)


class RecNetPredictor:
    """RecNet (or RecAugNet) on aligned crops of tracked faces, placed back into their images.

    Args:
        net: the network (its :meth:`~jr2net.nets.recnet.RecNet.decode` is used).
        run: the runner, (B, 3, S, S) crops -> (B, D) raw output (:mod:`jr2net.engines.runners`).
        model: the face model.
        flip_average: also run each crop flipped left to right and average the two estimates
            (the flipped one mirrored back): twice the network's work, a steadier estimate.
    """

    def __init__(
        self,
        net: RecNet | RecAugNet,
        run: Callable[[Tensor], Tensor],
        model: FaceModel,
        flip_average: bool = True,
    ) -> None:
        self.net = net
        self.run = run
        self.basis = albedo_basis(model.neutral)
        self.mirror = FaceMirror.of(model) if flip_average else None

    def _decode(self, images: Tensor) -> CropParams:
        if self.mirror is None:
            return self.net.decode(self.run(images).float())
        both = self.net.decode(self.run(torch.cat([images, images.flip(-1)])).float())
        plain, flipped = both.split(len(images))
        return plain.averaged(flipped.mirrored(self.mirror, images.shape[-1]))

    def predict(self, faces: list[Face], albedo: bool = True) -> FaceParams:
        """FaceParams (B faces, with light) of tracked faces in their images; with the per-vertex
        albedo unless ``albedo`` is False (a (V, 3) product per face that pose tracking does not need)."""
        if not faces or not all(tracking.face for tracking, _ in faces):
            raise ValueError("RecNet needs tracked faces (every Tracking with face=True)")
        crops = [align_face(image, tracking.landmarks, CROP_SIZE) for tracking, image in faces]
        images = crop_images(np.stack([crop.image for crop in crops]))
        with torch.no_grad():
            decoded = self._decode(images)
        matrices = torch.from_numpy(np.stack([crop.matrix for crop in crops]))
        sizes = torch.tensor([tracking.image_size for tracking, _ in faces])
        return decoded.to_face_params(matrices, sizes, self.basis if albedo else None)


class RecNetEstimator:
    """RecNet per frame; the identity is the mean of its per-face identities."""

    def __init__(self, predictor: RecNetPredictor) -> None:
        self.predictor = predictor

    def identity(self, faces: list[Face]) -> FaceParams:
        params = self.predictor.predict(faces, albedo=False)
        return params.select(0).replace(identity=params.identity.mean(0, keepdim=True))

    def frame(self, face: Face, identity: Tensor, previous: FaceParams | None) -> FaceParams:
        return self.predictor.predict([face], albedo=False).replace(identity=identity.clone())
