"""The fitter's targets of a training batch, as RecNet's decoded output would give them."""

from __future__ import annotations

import torch

from jr2net.camera import project
from jr2net.nets.recnet import CropParams
from jr2net.training.crop_dataset import CropBatch


def fitter_targets(batch: CropBatch, base_light: torch.Tensor) -> CropParams:
    """The batch's fitter targets as RecNet's decoded output."""
    count = len(batch.images)
    return CropParams(
        batch.identity,
        batch.expression,
        batch.rotation,
        project(batch.anchor[:, None], batch.intrinsics)[:, 0, :2],
        batch.anchor[:, 2] / batch.intrinsics[:, 0, 0],
        base_light.reshape(1, 9, 3).repeat(count, 1, 1),
        torch.zeros(count, 10, 3),
    )
