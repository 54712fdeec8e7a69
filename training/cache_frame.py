"""The crop cache's ``frame`` rows: a face's expression and image-camera pose, one row per crop.

A row (E + 7,) float32 holds FaceParams' expression (E), Euler angles (3, radians), translation
(3, cm, image camera) and the log of its focal (1, px); :func:`frame_row` writes rows and
:class:`FrameColumns` reads them, so the layout of the cache files is named in this one place.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from jr2net.params import FaceParams

POSE_SIZE = 7  # Euler angles (3), translation (3), log focal (1)


def frame_row(params: FaceParams) -> np.ndarray:
    """The row (E + 7,) float32 of a batch of one."""
    fields = [params.expression[0], params.rotation[0], params.translation[0], torch.log(params.focal)]
    return torch.cat(fields).numpy()


@dataclass(frozen=True)
class FrameColumns:
    """N rows by field: expression (N, E), rotation (N, 3), translation (N, 3), log_focal (N,)."""

    expression: Tensor
    rotation: Tensor
    translation: Tensor
    log_focal: Tensor

    @classmethod
    def of(cls, rows: Tensor) -> FrameColumns:
        """The fields of rows (N, E + 7)."""
        expression, rotation, translation, log_focal = rows.split([rows.shape[1] - POSE_SIZE, 3, 3, 1], dim=1)
        return cls(expression, rotation, translation, log_focal[:, 0])
