"""FaceParams: the one currency between pipeline stages.

A frozen dataclass of batched tensors, sized from the face model: identity α, expression β,
head rotation (Euler radians), translation (cm, camera frame), focal (px), SH light (9×3) and an
optional per-vertex albedo. The JSON round trip is exact (float32).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.lighting import SH_COEFFICIENTS, light_preset
from jr2net.shapes import check_tensor

JSON_FORMAT = "jr2net.FaceParams/1"
DEFAULT_ALBEDO = (0.80, 0.58, 0.47)


@dataclass(frozen=True)
class ParamLayout:
    """Sizes of the model-dependent parameters."""

    identity_count: int
    expression_count: int
    vertex_count: int

    @classmethod
    def of(cls, model: torch.nn.Module) -> ParamLayout:
        """The layout of a :class:`~jr2net.face_model.FaceModel`."""
        return cls(model.identity_count, model.expression_count, model.vertex_count)


@dataclass(frozen=True)
class FaceParams:
    """Parameters of B faces.

    Attributes:
        identity: (B, I) identity coefficients.
        expression: (B, E) expression blendshape weights.
        rotation: (B, 3) Euler angles in radians (pitch, yaw, roll), see :mod:`jr2net.camera`.
        translation: (B, 3) camera-frame translation in cm.
        focal: (B,) focal length in pixels, principal point at the image centre.
        light: (B, 9, 3) SH light coefficients (view frame).
        albedo: (B, V, 3) linear RGB albedo per vertex, or ``None`` for the default skin tone.
    """

    identity: Tensor
    expression: Tensor
    rotation: Tensor
    translation: Tensor
    focal: Tensor
    light: Tensor
    albedo: Tensor | None = None

    def __post_init__(self) -> None:
        dims = check_tensor("identity", self.identity, ("B", "I"))
        check_tensor("expression", self.expression, ("B", "E"), dims)
        check_tensor("rotation", self.rotation, ("B", 3), dims)
        check_tensor("translation", self.translation, ("B", 3), dims)
        check_tensor("focal", self.focal, ("B",), dims)
        check_tensor("light", self.light, ("B", SH_COEFFICIENTS, 3), dims)
        if self.albedo is not None:
            check_tensor("albedo", self.albedo, ("B", "V", 3), dims)

    @property
    def batch_size(self) -> int:
        return self.identity.shape[0]

    @classmethod
    def neutral(
        cls,
        layout: ParamLayout,
        batch_size: int = 1,
        distance: float = 60.0,
        focal: float = 1000.0,
        light: str = "frontal",
    ) -> FaceParams:
        """Mean identity, no expression, frontal pose at ``distance`` cm, a named light preset."""
        return cls(
            identity=torch.zeros(batch_size, layout.identity_count),
            expression=torch.zeros(batch_size, layout.expression_count),
            rotation=torch.zeros(batch_size, 3),
            translation=torch.tensor([[0.0, 0.0, distance]]).repeat(batch_size, 1),
            focal=torch.full((batch_size,), float(focal)),
            light=light_preset(light).expand(batch_size, -1, -1).clone(),
        )

    def albedo_or_default(self, vertex_count: int) -> Tensor:
        """The per-vertex albedo, or the default skin tone: (B, V, 3)."""
        if self.albedo is not None:
            return self.albedo
        tone = torch.tensor(DEFAULT_ALBEDO, dtype=self.light.dtype, device=self.light.device)
        return tone.expand(self.batch_size, vertex_count, 3)

    def replace(self, **changes: Tensor | None) -> FaceParams:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def select(self, index: int) -> FaceParams:
        """The face at ``index`` as a batch of one."""
        return FaceParams(**{f.name: _take(getattr(self, f.name), index) for f in dataclasses.fields(self)})

    def to_json(self) -> dict:
        """A JSON-ready dict for a batch of one face (lists of floats; angles in radians)."""
        if self.batch_size != 1:
            raise ValueError(f"to_json needs a batch of one face, got {self.batch_size}; use select(i)")
        data: dict = {"format": JSON_FORMAT}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            data[field.name] = None if value is None else value[0].detach().cpu().tolist()
        return data

    @classmethod
    def from_json(cls, data: dict) -> FaceParams:
        """Inverse of :meth:`to_json`: a batch of one face."""
        if data.get("format") != JSON_FORMAT:
            raise ValueError(
                f"not a FaceParams JSON object (format {data.get('format')!r}, expected {JSON_FORMAT!r})"
            )
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in data]
        if missing:
            raise ValueError(f"FaceParams JSON lacks {missing}")
        values = {
            f.name: None if data[f.name] is None else torch.tensor([data[f.name]], dtype=torch.float32)
            for f in dataclasses.fields(cls)
        }
        return cls(**values)


def _take(value: Tensor | None, index: int) -> Tensor | None:
    return None if value is None else value[index : index + 1]
