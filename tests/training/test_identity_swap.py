"""Identity swaps: training faces rendered with another face's shape, with exact targets, read
beside the real crops."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.face_model import FaceModel
from jr2net.nets.recnet import RecNet, albedo_basis
from jr2net.params import ParamLayout
from jr2net.training.crop_dataset import CropDataset, is_validation
from jr2net.training.identity_swap import SwapConfig, build_swaps
from jr2net.training.recnet_losses import LossWeights, RecNetLosses
from tests.training.fitter_targets import fitter_targets


@pytest.fixture(scope="module")
def tiny_swaps(tiny_media: Path, face_model: FaceModel) -> Path:
    path = tiny_media / "swaps.npz"
    config = SwapConfig(variants=2, frames_per_clip=2, pitch_degrees=10.0, yaw_degrees=6.0)
    counts = build_swaps(tiny_media, path, face_model, config)
    # the training split of the tiny media: one clip (two frames) and one photo
    assert counts == {"faces": 3, "crops": 6, "variants_without_face": 0}
    return path


def test_swaps_come_from_the_training_split_with_new_shapes(tiny_swaps: Path, tiny_cache: Path) -> None:
    swaps, real = np.load(tiny_swaps), np.load(tiny_cache)
    assert not any(is_validation(source) for source in swaps["source"])
    assert all("#swap" in source for source in swaps["source"])
    real_identities = real["identity"][[not is_validation(s) for s in real["source"]]]
    nearest = np.abs(swaps["identity"][:, None] - real_identities[None]).sum(-1).min(1)
    assert (nearest > 1e-3).all(), "every swap has a shape none of the real crops has"


def test_the_rendered_parameters_land_on_the_swaps_tracked_landmarks(
    tiny_swaps: Path, face_model: FaceModel
) -> None:
    """MediaPipe, run again on the render (another shape, turned), finds its landmarks where the
    targets put them."""
    data = CropDataset(tiny_swaps, "all", skin_size=64)
    batch = data.batch(np.arange(len(data)))
    losses = RecNetLosses(face_model, albedo_basis(face_model.neutral), LossWeights(photometric=0.0), 64)
    base_light = RecNet(ParamLayout.of(face_model)).base_light
    fitted = losses(fitter_targets(batch, base_light), batch, base_light)
    assert fitted["landmark"] / LossWeights().landmark < 0.012  # < 1.2 % of the crop


def test_swaps_make_their_share_of_the_draws_and_stay_out_of_validation(
    tiny_cache: Path, tiny_swaps: Path
) -> None:
    data = CropDataset(tiny_cache, "train", swaps=(tiny_swaps, tiny_swaps), swap_share=0.3)
    assert data.synthetic.sum() == 12 and len(set(data.groups[data.synthetic])) == 12  # files' groups apart
    assert set(data.groups[data.synthetic]).isdisjoint(data.groups[~data.synthetic])
    rng = np.random.default_rng(0)
    drawn = np.concatenate([data.draw(rng, 1, 1.0) for _ in range(4000)])
    assert abs(data.synthetic[drawn].mean() - 0.3) < 0.03
    validation = CropDataset(tiny_cache, "validation", swaps=(tiny_swaps,), swap_share=0.3)
    assert not validation.synthetic.any()
    with pytest.raises(ValueError, match="swap_share"):
        CropDataset(tiny_cache, "train", swap_share=0.3)
    with pytest.raises(FileNotFoundError, match="identity_swap"):
        CropDataset(tiny_cache, "train", swaps=(tiny_swaps.with_name("missing.npz"),))
    assert torch.isfinite(data.batch(np.flatnonzero(data.synthetic), rng=rng).images).all()
