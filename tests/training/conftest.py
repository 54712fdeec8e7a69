"""The tiny crop cache of real training media and the tiny expression pair set that the training
tests share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jr2net.assets import repository_root
from jr2net.face_model import FaceModel
from jr2net.media import read_image
from jr2net.training.crop_cache import CropCacheConfig, build_crop_cache
from jr2net.training.expression_bank import large_expressions
from jr2net.training.synth_expressions import SynthConfig, build_expression_pairs

TRAIN_MEDIA = repository_root().parent / "shared" / "train"
# Two collections held out for validation, two for training (see crop_dataset.is_validation).
PICKED = (
    "videos/tpsmm_assets_driving.mp4",
    "photos/prnet_TestImages_0.jpg",
    "videos/3ddfa1_obama.mp4",
    "photos/dlib_John_Salley_000179_02159509.jpg",
)


@pytest.fixture(scope="session")
def tiny_media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A training folder (videos/, photos/) with the four :data:`PICKED` files."""
    if not TRAIN_MEDIA.is_dir():
        pytest.skip(f"training media not found at {TRAIN_MEDIA}")
    root = tmp_path_factory.mktemp("train_media")
    for name in PICKED:
        (root / name).parent.mkdir(exist_ok=True)
        (root / name).symlink_to(TRAIN_MEDIA / name)
    return root


@pytest.fixture(scope="session")
def tiny_cache(tiny_media: Path) -> Path:
    cache = tiny_media / "cache.npz"
    counts = build_crop_cache(tiny_media, cache, FaceModel.load(), CropCacheConfig(frames_per_clip=4))
    assert counts == {"crops": 10, "clips": 2, "photos": 2, "frames_without_face": 0}
    return cache


@pytest.fixture(scope="session")
def expression_pairs(shared_media: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 synthesised expression pairs (64² crops) of two shared photos."""
    folder = tmp_path_factory.mktemp("expression_pairs")
    model = FaceModel.load()
    images = [
        (name, read_image(shared_media / "liveportrait/source" / name)) for name in ("s12.jpg", "s5.jpg")
    ]
    bank = large_expressions(model, 6, np.random.default_rng(1))
    build_expression_pairs(model, images, bank, folder, SynthConfig(per_source=4, crop_size=64))
    return folder
