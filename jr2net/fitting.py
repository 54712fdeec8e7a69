"""Analysis-by-synthesis fitting of the face model to MediaPipe landmarks (Levenberg–Marquardt).

Identity is fitted once, jointly over K source frames; then each frame's expression, head pose and
focal are fitted with the identity fixed, warm-started from the previous frame, MediaPipe's
blendshapes (mapped onto ICT's expressions) serving as the first guess and as a weak prior.
Residuals are the 2D reprojection errors of the corresponded landmarks in units of the
inter-ocular distance, plus prior terms; expressions stay in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.func import jacfwd

from jr2net.camera import FLIP, euler_to_matrix, matrix_to_euler
from jr2net.correspondence import MediapipeCorrespondence
from jr2net.face_model import FaceModel
from jr2net.lighting import light_preset
from jr2net.params import FaceParams
from jr2net.tracking import Tracking


@dataclass(frozen=True)
class FitterConfig:
    """Weights (squared-residual units of the inter-ocular distance) and iteration limits.

    LM stops after ``*_iterations`` steps or once a step lowers the cost by less than
    ``tolerance`` (relative): a warm-started frame usually needs two or three.
    """

    identity_prior: float = 3e-4
    expression_prior: float = 1e-4
    blendshape_prior: float = 2e-4
    focal_prior: float = 1e-2
    identity_iterations: int = 12
    frame_iterations: int = 10
    tolerance: float = 1e-3
    damping: float = 1e-3
    field_of_view_deg: float = 63.0


def _solve_step(jacobian: Tensor, residual: Tensor, damping: float) -> Tensor:
    """LM step ``-(JᵀJ + λ·diag(JᵀJ) + λ·I)⁻¹ Jᵀr`` in float64."""
    jacobian, residual = jacobian.double(), residual.double()
    normal = jacobian.T @ jacobian
    normal = normal + damping * (
        torch.diag(torch.diagonal(normal)) + torch.eye(normal.shape[0], dtype=normal.dtype)
    )
    return -torch.linalg.solve(normal, jacobian.T @ residual).float()


class LandmarkFitter:
    """Fits FaceParams to :class:`Tracking` results with the landmark correspondence."""

    def __init__(self, model: FaceModel, config: FitterConfig = FitterConfig()) -> None:
        self.model = model
        self.config = config
        self.correspondence = MediapipeCorrespondence.load(model)
        valid = self.correspondence.valid
        points = self.correspondence.landmark_points
        identity_count, expression_count = model.identity_count, model.expression_count
        self.landmark_index = torch.nonzero(valid)[:, 0]
        self.mean = points(model.neutral[None])[0, valid]
        self.identity_basis = points(model.id_basis.reshape(identity_count, -1, 3))[:, valid]
        self.expression_basis = points(model.exp_basis.reshape(expression_count, -1, 3))[:, valid]

    def _project(self, identity: Tensor, frame: Tensor, centre: Tensor) -> Tensor:
        """Projected landmarks (N, 2) of one frame's unknowns (E + 7,) with a fixed identity (I,)."""
        expression_count = self.model.expression_count
        expression, pose = frame[:expression_count], frame[expression_count:]
        points = (
            self.mean
            + torch.einsum("i,inc->nc", identity, self.identity_basis)
            + torch.einsum("e,enc->nc", expression, self.expression_basis)
        )
        rotation = FLIP @ euler_to_matrix(pose[:3])
        camera = points @ rotation.T + pose[3:6]
        return torch.exp(pose[6]) * camera[:, :2] / camera[:, 2:3] + centre

    def _frame_residual(
        self, frame: Tensor, identity: Tensor, target: Tensor, prior: Tensor, centre: Tensor, scale: float
    ) -> Tensor:
        config = self.config
        expression_count = self.model.expression_count
        reprojection = ((self._project(identity, frame, centre) - target) / scale).reshape(-1)
        expression = frame[:expression_count]
        return torch.cat(
            [
                reprojection,
                math.sqrt(config.expression_prior) * expression,
                math.sqrt(config.blendshape_prior) * (expression - prior[:expression_count]),
                math.sqrt(config.focal_prior) * (frame[-1:] - prior[-1:]),
            ]
        )

    def initial_frame(self, tracking: Tracking) -> Tensor:
        """First guess (E + 7,) from MediaPipe: mapped blendshapes, its head matrix, its field of view."""
        if not tracking.face:
            raise ValueError("cannot fit a frame without a face")
        scores = torch.from_numpy(tracking.blendshapes)[None]
        expression = self.correspondence.expression_from_blendshapes(scores)[0].clamp(0, 1)
        head = torch.from_numpy(tracking.head_matrix)
        u, _, vh = torch.linalg.svd(head[:3, :3])
        rotation = u @ vh
        translation = FLIP @ head[:3, 3]
        height = tracking.image_size[0]
        focal = 0.5 * height / math.tan(math.radians(self.config.field_of_view_deg) / 2)
        pose = torch.cat([matrix_to_euler(rotation), translation, torch.tensor([math.log(focal)])])
        return torch.cat([expression, pose])

    def _targets(self, tracking: Tracking) -> tuple[Tensor, Tensor, float]:
        height, width = tracking.image_size
        target = torch.from_numpy(tracking.landmarks[:, :2])[self.landmark_index]
        return target, torch.tensor([width / 2, height / 2]), tracking.inter_ocular

    def _lm(
        self, unknowns: Tensor, residual_fn: Callable[[Tensor], Tensor], iterations: int, bounded: list[slice]
    ) -> Tensor:
        """Levenberg–Marquardt on ``residual_fn``; slices in ``bounded`` stay in [0, 1]."""
        damping = self.config.damping
        residual = residual_fn(unknowns)
        cost = float((residual**2).sum())
        for _ in range(iterations):
            jacobian = jacfwd(residual_fn)(unknowns)
            improved = False
            for _ in range(6):
                candidate = unknowns + _solve_step(jacobian, residual, damping)
                for part in bounded:
                    candidate[part] = candidate[part].clamp(0, 1)
                candidate_residual = residual_fn(candidate)
                candidate_cost = float((candidate_residual**2).sum())
                if candidate_cost < cost:
                    improved = True
                    gain = (cost - candidate_cost) / max(cost, 1e-12)
                    unknowns, residual, cost, damping = (
                        candidate,
                        candidate_residual,
                        candidate_cost,
                        damping * 0.3,
                    )
                    break
                damping *= 10
            if not improved or gain < self.config.tolerance:
                break
        return unknowns

    def fit_frame(self, tracking: Tracking, identity: Tensor, previous: Tensor | None = None) -> Tensor:
        """Fit one frame's unknowns (E + 7,) with a fixed identity (I,); warm-start from ``previous``."""
        target, centre, scale = self._targets(tracking)
        prior = self.initial_frame(tracking)
        start = prior if previous is None else previous.clone()
        if previous is not None:
            prior = torch.cat([prior[:-1], previous[-1:]])

        def residual_fn(frame: Tensor) -> Tensor:
            return self._frame_residual(frame, identity, target, prior, centre, scale)

        return self._lm(
            start, residual_fn, self.config.frame_iterations, [slice(0, self.model.expression_count)]
        )

    def fit_identity(self, trackings: list[Tracking]) -> tuple[Tensor, list[Tensor]]:
        """Identity (I,) shared by K frames with faces, and each frame's unknowns (E + 7,)."""
        faces = [t for t in trackings if t.face]
        if not faces:
            raise ValueError("no frame with a face to fit the identity from")
        identity_count = self.model.identity_count
        frames = [self.fit_frame(t, torch.zeros(identity_count)) for t in faces]
        targets = [self._targets(t) for t in faces]
        priors = [self.initial_frame(t) for t in faces]
        width = frames[0].numel()

        def residual_fn(unknowns: Tensor) -> Tensor:
            identity = unknowns[:identity_count]
            parts = [math.sqrt(self.config.identity_prior * len(faces)) * identity]
            for k, (target, centre, scale) in enumerate(targets):
                frame = unknowns[identity_count + k * width : identity_count + (k + 1) * width]
                parts.append(self._frame_residual(frame, identity, target, priors[k], centre, scale))
            return torch.cat(parts)

        start = torch.cat([torch.zeros(identity_count), *frames])
        bounded = [
            slice(identity_count + k * width, identity_count + k * width + self.model.expression_count)
            for k in range(len(faces))
        ]
        fitted = self._lm(start, residual_fn, self.config.identity_iterations, bounded)
        identity = fitted[:identity_count]
        return identity, [
            fitted[identity_count + k * width : identity_count + (k + 1) * width] for k in range(len(faces))
        ]

    def to_params(self, identity: Tensor, frame: Tensor, light: str = "frontal") -> FaceParams:
        """FaceParams (batch of one) from an identity and a frame's unknowns."""
        expression_count = self.model.expression_count
        pose = frame[expression_count:]
        return FaceParams(
            identity=identity[None].clone(),
            expression=frame[None, :expression_count].clone(),
            rotation=pose[None, :3].clone(),
            translation=pose[None, 3:6].clone(),
            focal=torch.exp(pose[6:7]).clone(),
            light=light_preset(light)[None],
        )

    def reprojection_error(self, tracking: Tracking, identity: Tensor, frame: Tensor) -> Tensor:
        """Per-landmark 2D error (N,) in units of the inter-ocular distance."""
        target, centre, scale = self._targets(tracking)
        return (self._project(identity, frame, centre) - target).norm(dim=-1) / scale
