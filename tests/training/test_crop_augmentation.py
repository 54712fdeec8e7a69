"""Crop augmentation: turned, zoomed and shifted crops keep the fitted face on their landmarks;
colour, contrast, grey, blur and noise do what they say."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from jr2net.face_model import FaceModel
from jr2net.nets.recnet import RecNet, albedo_basis
from jr2net.params import ParamLayout
from jr2net.training.crop_augmentation import Augmentation, photometric
from jr2net.training.crop_dataset import CropDataset
from jr2net.training.recnet_losses import LossWeights, RecNetLosses
from tests.training.fitter_targets import fitter_targets

GEOMETRY_ONLY = Augmentation(zoom=0.15, shift=16.0, roll_degrees=20.0, colour=0.0, grey=0.0)
NOTHING = Augmentation(zoom=0.0, shift=0.0, roll_degrees=0.0, colour=0.0, contrast=0.0, grey=0.0)


def _pixels_at(images: Tensor, points: Tensor) -> Tensor:
    """Bilinear samples (B, C, N) of (B, C, S, S) images at crop pixels (B, N, 2)."""
    grid = (2 * points / images.shape[-1] - 1)[:, None]
    return torch.nn.functional.grid_sample(images, grid, align_corners=False)[:, :, 0]


def test_turned_crops_keep_the_fitted_face_on_their_landmarks(
    tiny_cache: Path, face_model: FaceModel
) -> None:
    """The fitter's targets, turned with the crop, land on the turned landmarks as closely as
    unturned; left unturned they miss by far."""
    data = CropDataset(tiny_cache, "all", skin_size=64, augmentation=GEOMETRY_ONLY)
    indices = np.arange(len(data))
    plain, moved = data.batch(indices), data.batch(indices, rng=np.random.default_rng(1))
    losses = RecNetLosses(face_model, albedo_basis(face_model.neutral), LossWeights(photometric=0.0), 64)
    base_light = RecNet(ParamLayout.of(face_model)).base_light
    plain_loss = losses(fitter_targets(plain, base_light), plain, base_light)["landmark"]
    moved_loss = losses(fitter_targets(moved, base_light), moved, base_light)["landmark"]
    assert moved_loss < 1.1 * plain_loss
    unturned = dataclasses.replace(moved, rotation=plain.rotation, anchor=plain.anchor)
    assert losses(fitter_targets(unturned, base_light), moved, base_light)["landmark"] > 3 * moved_loss


def test_turned_crops_carry_their_pixels_with_the_landmarks(tiny_cache: Path) -> None:
    data = CropDataset(tiny_cache, "all", augmentation=GEOMETRY_ONLY)
    indices = np.arange(len(data))
    plain, moved = data.batch(indices), data.batch(indices, rng=np.random.default_rng(2))
    assert not torch.allclose(plain.landmarks, moved.landmarks, atol=2.0)
    before, after = _pixels_at(plain.images, plain.landmarks), _pixels_at(moved.images, moved.landmarks)
    assert (before - after).abs().mean() < 0.01
    assert (before - before.roll(1, 0)).abs().mean() > 0.05


def test_no_strength_leaves_crops_alone(tiny_cache: Path) -> None:
    data = CropDataset(tiny_cache, "all", augmentation=NOTHING)
    indices = np.arange(4)
    plain, augmented = data.batch(indices), data.batch(indices, rng=np.random.default_rng(0))
    assert torch.allclose(plain.images, augmented.images, atol=1e-5)
    assert torch.allclose(plain.landmarks, augmented.landmarks, atol=1e-4)
    assert torch.allclose(plain.rotation, augmented.rotation, atol=1e-5)


def test_blur_and_noise_change_the_crops_as_drawn(tiny_cache: Path) -> None:
    images = CropDataset(tiny_cache, "all").batch(np.arange(4)).images
    rng = np.random.default_rng(0)
    blurred = photometric(images, rng, dataclasses.replace(NOTHING, blur=1.0))

    def detail(x: Tensor) -> float:
        """Mean absolute second difference along rows: what a blur takes away first."""
        return float((x[..., 2:] - 2 * x[..., 1:-1] + x[..., :-2]).abs().mean())

    assert detail(blurred) < 0.6 * detail(images)
    noisy = photometric(images, rng, dataclasses.replace(NOTHING, noise=0.1))
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
    assert 0.01 < float((noisy - images).std()) < 0.1
    grey = photometric(images, rng, dataclasses.replace(NOTHING, grey=1.0))
    assert torch.allclose(grey[:, 0], grey[:, 1]) and torch.allclose(grey[:, 1], grey[:, 2])
