"""Analysis-by-synthesis fitting of the face model to MediaPipe landmarks (Levenberg–Marquardt).

Identity is fitted once, jointly over K source frames; then each frame's expression, head pose and
focal are fitted with the identity fixed, warm-started from the previous frame, MediaPipe's
blendshapes (mapped onto ICT's expressions) serving as the first guess and as a weak prior.
Residuals are the 2D reprojection errors of the corresponded landmarks in units of the
inter-ocular distance, plus prior terms; expressions stay in [0, 1]. The residuals and their
analytic Jacobians are float64 numpy: the problem is small, and per-op overhead is what costs.

The solver's state for a frame is one vector of unknowns (E + 7,), laid out by
:class:`UnknownsLayout`: expression (E), Euler angles (3, radians), translation (3, cm) and log
focal (1). It stays inside this module: the public methods take and return FaceParams.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jr2net.camera import FLIP, matrix_to_euler
from jr2net.correspondence import MediapipeCorrespondence
from jr2net.face_model import FaceModel
from jr2net.lighting import light_preset
from jr2net.params import FaceParams
from jr2net.tracking import Tracking

_FLIP = FLIP.double().numpy()
Evaluation = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class FitterConfig:
    """Weights (squared-residual units of the inter-ocular distance) and iteration limits.

    LM stops after ``*_iterations`` steps or once a step lowers the cost by less than
    ``tolerance`` (relative). A frame warm-started from the previous one seldom gets there (88 of
    105 frames of d3 ran all of 10 steps, the cost still creeping down; at a tolerance of 1e-2 the
    median frame still took 7), so the frame's steps are capped at 7, which lost nothing: on the
    decision set (60 frames, the split DCNet, ``--cross 2``) face / full-frame PSNR went 26.48 /
    25.94 → 26.48 / 25.98 dB with DCNet and 26.26 / 25.29 → 26.28 / 25.38 with the geometric path,
    DCNet's cross-identity figures held (identity 0.272 → 0.271, blendshape r 0.471 → 0.472,
    head-angle r 0.841 → 0.842; the geometric path's 0.265 → 0.268, 0.472 → 0.468, 0.844 →
    0.839), the fitter's NME against dlib held (3.63 → 3.64 % on the shared photos, 3.68 → 3.68 %
    on the shared clips' frames), and the live reconstruct stage took 1.5 ms less at 640×480. At 5
    steps (3 ms less) a frame fitted 6 frames after the last one kept a median reprojection error
    of 0.023 inter-ocular distances, above the 0.02 every frame reaches at 7.
    """

    identity_prior: float = 3e-4
    expression_prior: float = 1e-4
    blendshape_prior: float = 2e-4
    focal_prior: float = 1e-2
    identity_iterations: int = 12
    frame_iterations: int = 7
    tolerance: float = 1e-3
    damping: float = 1e-3
    field_of_view_deg: float = 63.0


def rotation_and_derivatives(angles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`jr2net.camera.euler_to_matrix` and its derivatives by (pitch, yaw, roll): (3, 3), (3, 3, 3)."""
    (cx, cy, cz), (sx, sy, sz) = np.cos(angles), np.sin(angles)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    drx = np.array([[0, 0, 0], [0, -sx, -cx], [0, cx, -sx]])
    dry = np.array([[-sy, 0, cy], [0, 0, 0], [-cy, 0, -sy]])
    drz = np.array([[-sz, -cz, 0], [cz, -sz, 0], [0, 0, 0]])
    return rz @ ry @ rx, np.stack([rz @ ry @ drx, rz @ dry @ rx, drz @ ry @ rx])


@dataclass(frozen=True)
class UnknownsLayout:
    """Where a frame's fields lie in the solver's unknowns (E + 7,), and the one conversion between
    them and FaceParams.

    The conversion is exact both ways for float32 values: ``log(exp(x)) == x`` for every float32
    ``x`` in [2, 16) (a focal of 7.4 px to 8.9e6 px), so a frame warm-started from FaceParams
    resumes from exactly the unknowns that gave them.
    """

    expression: slice
    rotation: slice
    translation: slice
    log_focal: slice

    @classmethod
    def of(cls, expression_count: int) -> UnknownsLayout:
        """The layout for E = ``expression_count`` expressions."""
        sizes = {"expression": expression_count, "rotation": 3, "translation": 3, "log_focal": 1}
        starts = itertools.accumulate(sizes.values(), initial=0)
        return cls(**{name: slice(start, start + size) for (name, size), start in zip(sizes.items(), starts)})

    @property
    def size(self) -> int:
        """E + 7."""
        return self.log_focal.stop

    def to_params(self, identity: Tensor, unknowns: Tensor) -> FaceParams:
        """FaceParams (batch of one, frontal light) from an identity (1, I) and unknowns (E + 7,)."""
        return FaceParams(
            identity=identity.clone(),
            expression=unknowns[None, self.expression].clone(),
            rotation=unknowns[None, self.rotation].clone(),
            translation=unknowns[None, self.translation].clone(),
            focal=torch.exp(unknowns[self.log_focal]),
            light=light_preset("frontal")[None],
        )

    def from_params(self, params: FaceParams) -> np.ndarray:
        """The unknowns (E + 7,) float64 of a batch of one."""
        fields = [params.expression[0], params.rotation[0], params.translation[0], torch.log(params.focal)]
        return torch.cat(fields).double().numpy()


@dataclass(frozen=True)
class _Observation:
    """One tracked frame as the fitter needs it."""

    target: np.ndarray  # (N, 2) landmark pixels
    centre: np.ndarray  # (2,) principal point
    scale: float  # inter-ocular distance in pixels
    prior: np.ndarray  # (E + 7,) blendshape / focal prior


def _levenberg_marquardt(
    unknowns: np.ndarray,
    evaluate: Callable[[np.ndarray, bool], Evaluation],
    iterations: int,
    bounded: np.ndarray,
    config: FitterConfig,
) -> np.ndarray:
    """Minimise ‖r(x)‖²; ``evaluate(x, True)`` gives (r, J), ``evaluate(x, False)`` (r, None).

    ``bounded`` marks the unknowns kept in [0, 1].
    """
    damping = config.damping
    residual, jacobian = evaluate(unknowns, True)
    cost = float(residual @ residual)
    for _ in range(iterations):
        normal = jacobian.T @ jacobian
        gradient = jacobian.T @ residual
        accepted = False
        for _ in range(8):
            system = normal + damping * (np.diag(np.diag(normal)) + np.eye(len(unknowns)))
            candidate = unknowns - np.linalg.solve(system, gradient)
            candidate[bounded] = np.clip(candidate[bounded], 0.0, 1.0)
            candidate_residual, _ = evaluate(candidate, False)
            candidate_cost = float(candidate_residual @ candidate_residual)
            if candidate_cost < cost:
                accepted = True
                break
            damping *= 10.0
        if not accepted:
            break
        gain = (cost - candidate_cost) / max(cost, 1e-12)
        unknowns, cost, damping = candidate, candidate_cost, max(damping * 0.3, 1e-7)
        if gain < config.tolerance:
            break
        residual, jacobian = evaluate(unknowns, True)
    return unknowns


class LandmarkFitter:
    """Fits FaceParams to :class:`Tracking` results with the landmark correspondence."""

    def __init__(self, model: FaceModel, config: FitterConfig = FitterConfig()) -> None:
        self.model = model
        self.config = config
        self.correspondence = MediapipeCorrespondence.load(model)
        valid = self.correspondence.valid
        points = self.correspondence.landmark_points
        identity_count, expression_count = model.identity_count, model.expression_count
        self.landmark_index = torch.nonzero(valid)[:, 0].numpy()
        with torch.no_grad():
            self.mean = points(model.neutral[None])[0, valid].double().numpy()
            self.identity_basis = (
                points(model.id_basis.reshape(identity_count, -1, 3))[:, valid].double().numpy()
            )
            self.expression_basis = (
                points(model.exp_basis.reshape(expression_count, -1, 3))[:, valid].double().numpy()
            )
        self.layout = UnknownsLayout.of(expression_count)
        # The bases component first, (3, N, E) and (3, N, I): the placement turns all of a basis's
        # points in one matrix product, and the camera-point derivatives come out in the layout
        # the projection's derivatives read.
        self._expression_directions = np.ascontiguousarray(self.expression_basis.transpose(2, 1, 0))
        self._identity_directions = np.ascontiguousarray(self.identity_basis.transpose(2, 1, 0))
        self._prior_rows = self._prior_jacobian()

    def _prior_jacobian(self) -> np.ndarray:
        """The prior residuals' Jacobian (2E + 1, E + 7), the same for every frame."""
        config, layout, expression_count = self.config, self.layout, self.model.expression_count
        priors = np.zeros((2 * expression_count + 1, layout.size))
        rows, columns = np.arange(expression_count), np.arange(layout.size)[layout.expression]
        priors[rows, columns] = math.sqrt(config.expression_prior)
        priors[expression_count + rows, columns] = math.sqrt(config.blendshape_prior)
        priors[-1, layout.log_focal] = math.sqrt(config.focal_prior)
        return priors

    def _observe(self, tracking: Tracking) -> _Observation:
        height, width = tracking.image_size
        return _Observation(
            target=tracking.landmarks[self.landmark_index, :2].astype(np.float64),
            centre=np.array([width / 2, height / 2]),
            scale=tracking.inter_ocular,
            prior=self._initial_unknowns(tracking).double().numpy(),
        )

    def _identity_points(self, identity: np.ndarray) -> np.ndarray:
        return self.mean + np.tensordot(identity, self.identity_basis, axes=1)

    def _project(self, base: np.ndarray, frame: np.ndarray, centre: np.ndarray) -> tuple:
        """Camera points (N, 3), projections (N, 2), placement (3, 3) and its angle derivatives."""
        layout = self.layout
        points = base + np.tensordot(frame[layout.expression], self.expression_basis, axes=1)
        rotation, derivatives = rotation_and_derivatives(frame[layout.rotation])
        placement = _FLIP @ rotation
        camera = points @ placement.T + frame[layout.translation]
        pixels = math.exp(frame[layout.log_focal][0]) * camera[:, :2] / camera[:, 2:3] + centre
        return points, camera, pixels, placement, derivatives

    def _evaluate_frame(
        self,
        base: np.ndarray,
        frame: np.ndarray,
        seen: _Observation,
        with_jacobian: bool,
        by_identity: bool = False,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Residual (2N + 2E + 1,) of one frame.

        With ``with_jacobian`` also its Jacobian by the frame's unknowns (rows, E + 7), and with
        ``by_identity`` the reprojection rows' Jacobian by the identity (2N, I).
        """
        config, layout = self.config, self.layout
        points, camera, pixels, placement, derivatives = self._project(base, frame, seen.centre)
        expression = frame[layout.expression]
        residual = np.concatenate(
            [
                ((pixels - seen.target) / seen.scale).reshape(-1),
                math.sqrt(config.expression_prior) * expression,
                math.sqrt(config.blendshape_prior) * (expression - seen.prior[layout.expression]),
                math.sqrt(config.focal_prior) * (frame[layout.log_focal] - seen.prior[layout.log_focal]),
            ]
        )
        if not with_jacobian:
            return residual, None, None
        focal = math.exp(frame[layout.log_focal][0])
        inverse_z = 1.0 / camera[:, 2]
        along = focal * inverse_z / seen.scale  # (N,) d(pixel)/d(camera x or y), inter-ocular units
        across = -along[:, None] * camera[:, :2] * inverse_z[:, None]  # (N, 2) d(pixel)/d(camera z)

        def pixel_derivatives(directions: np.ndarray, out: np.ndarray) -> None:
            """d(pixels)/d(parameter) of camera-point derivatives (3, N, K) into ``out`` (N, 2, K)."""
            out[:, 0] = along[:, None] * directions[0] + across[:, 0, None] * directions[2]
            out[:, 1] = along[:, None] * directions[1] + across[:, 1, None] * directions[2]

        def turned(directions: np.ndarray) -> np.ndarray:
            """A basis's directions (3, N, K) turned by the placement."""
            return (placement @ directions.reshape(3, -1)).reshape(directions.shape)

        count = len(points)
        jacobian = np.empty((2 * count + len(self._prior_rows), layout.size))
        reprojection = jacobian[: 2 * count].reshape(count, 2, layout.size)
        pixel_derivatives(turned(self._expression_directions), reprojection[..., layout.expression])
        turns = (_FLIP @ derivatives).reshape(9, 3) @ points.T  # (angle · 3 + axis, N)
        pixel_derivatives(turns.reshape(3, 3, count).transpose(1, 2, 0), reprojection[..., layout.rotation])
        translation = reprojection[..., layout.translation]
        translation[:, :, :2] = 0.0
        translation[:, 0, 0] = translation[:, 1, 1] = along
        translation[:, :, 2] = across
        reprojection[..., layout.log_focal] = (along[:, None] * camera[:, :2])[..., None]
        jacobian[2 * count :] = self._prior_rows
        if not by_identity:
            return residual, jacobian, None
        identity_jacobian = np.empty((count, 2, self.model.identity_count))
        pixel_derivatives(turned(self._identity_directions), identity_jacobian)
        return residual, jacobian, identity_jacobian.reshape(-1, self.model.identity_count)

    def _initial_unknowns(self, tracking: Tracking) -> Tensor:
        """First guess (E + 7,) from MediaPipe: mapped blendshapes, its head matrix, its field of view."""
        if not tracking.face:
            raise ValueError("cannot fit a frame without a face")
        scores = torch.from_numpy(tracking.blendshapes)[None]
        expression = self.correspondence.expression_from_blendshapes(scores)[0].clamp(0, 1)
        head = torch.from_numpy(tracking.head_matrix)
        u, _, vh = torch.linalg.svd(head[:3, :3])
        translation = FLIP @ head[:3, 3]
        focal = 0.5 * tracking.image_size[0] / math.tan(math.radians(self.config.field_of_view_deg) / 2)
        pose = torch.cat([matrix_to_euler(u @ vh), translation, torch.tensor([math.log(focal)])])
        return torch.cat([expression, pose])

    def initial_params(self, tracking: Tracking) -> FaceParams:
        """MediaPipe's first guess (batch of one, mean identity): its mapped blendshapes, head
        matrix and field of view."""
        identity = torch.zeros(1, self.model.identity_count)
        return self.layout.to_params(identity, self._initial_unknowns(tracking))

    def _fit_unknowns(self, tracking: Tracking, identity: np.ndarray, previous: np.ndarray | None) -> Tensor:
        """One frame's unknowns (E + 7,) with a fixed identity (I,), from ``previous`` unknowns
        (E + 7,) or else MediaPipe's guess."""
        seen = self._observe(tracking)
        start = seen.prior.copy() if previous is None else previous
        if previous is not None:
            seen.prior[self.layout.log_focal] = start[self.layout.log_focal]
        base = self._identity_points(identity)

        def evaluate(frame: np.ndarray, with_jacobian: bool) -> Evaluation:
            residual, jacobian, _ = self._evaluate_frame(base, frame, seen, with_jacobian)
            return residual, jacobian

        bounded = np.zeros(self.layout.size, dtype=bool)
        bounded[self.layout.expression] = True
        fitted = _levenberg_marquardt(start, evaluate, self.config.frame_iterations, bounded, self.config)
        return torch.from_numpy(fitted).float()

    def fit_frame(
        self, tracking: Tracking, identity: Tensor, previous: FaceParams | None = None
    ) -> FaceParams:
        """Fit one frame's expression, pose and focal with a fixed identity (1, I): FaceParams
        (batch of one, frontal light), warm-started from ``previous`` (its expression, pose, focal)."""
        start = None if previous is None else self.layout.from_params(previous)
        unknowns = self._fit_unknowns(tracking, identity[0].double().numpy(), start)
        return self.layout.to_params(identity, unknowns)

    def fit_identity(self, trackings: list[Tracking]) -> list[FaceParams]:
        """FaceParams (batch of one, frontal light) of each frame with a face, all with the one
        identity (1, I) fitted jointly over them."""
        faces = [t for t in trackings if t.face]
        if not faces:
            raise ValueError("no frame with a face to fit the identity from")
        identity_count, size, count = self.model.identity_count, self.layout.size, len(faces)
        observations = [self._observe(t) for t in faces]
        zeros = np.zeros(identity_count)
        frames = [self._fit_unknowns(t, zeros, None).double().numpy() for t in faces]
        prior_weight = math.sqrt(self.config.identity_prior * count)

        def evaluate(unknowns: np.ndarray, with_jacobian: bool) -> Evaluation:
            identity = unknowns[:identity_count]
            base = self._identity_points(identity)
            per_frame = unknowns[identity_count:].reshape(count, size)
            parts = [
                self._evaluate_frame(base, per_frame[k], seen, with_jacobian, by_identity=True)
                for k, seen in enumerate(observations)
            ]
            residual = np.concatenate([prior_weight * identity, *(p[0] for p in parts)])
            if not with_jacobian:
                return residual, None
            jacobian = np.zeros((len(residual), len(unknowns)))
            jacobian[:identity_count, :identity_count] = prior_weight * np.eye(identity_count)
            row = identity_count
            for k, (part_residual, by_frame, by_identity) in enumerate(parts):
                jacobian[
                    row : row + len(part_residual),
                    identity_count + k * size : identity_count + (k + 1) * size,
                ] = by_frame
                jacobian[row : row + len(by_identity), :identity_count] = by_identity
                row += len(part_residual)
            return residual, jacobian

        start = np.concatenate([np.zeros(identity_count), *frames])
        bounded = np.zeros(len(start), dtype=bool)
        bounded[identity_count:].reshape(count, size)[:, self.layout.expression] = True
        fitted = _levenberg_marquardt(start, evaluate, self.config.identity_iterations, bounded, self.config)
        identity = torch.from_numpy(fitted[:identity_count]).float()[None]
        per_frame = fitted[identity_count:].reshape(count, size)
        return [self.layout.to_params(identity, torch.from_numpy(frame).float()) for frame in per_frame]

    def reprojection_error(self, tracking: Tracking, params: FaceParams) -> Tensor:
        """Per-landmark 2D error (N,) of FaceParams (batch of one) in units of the inter-ocular distance."""
        seen = self._observe(tracking)
        base = self._identity_points(params.identity[0].double().numpy())
        pixels = self._project(base, self.layout.from_params(params), seen.centre)[2]
        return torch.from_numpy(np.linalg.norm(pixels - seen.target, axis=-1) / seen.scale).float()
