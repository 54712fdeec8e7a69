"""Shared fixtures: the real face model, the devices to run ops on, and the shared media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from jr2net.assets import repository_root
from jr2net.face_model import FaceModel
from jr2net.media import iter_video_frames

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session")
def face_model() -> FaceModel:
    """The ICT face model found by the asset locator."""
    return FaceModel.load()


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Each available device: CPU always, CUDA when present."""
    return torch.device(request.param)


@pytest.fixture(scope="session")
def shared_media() -> Path:
    """``../shared/media`` beside the checkout (test media with provenance, never committed)."""
    folder = repository_root().parent / "shared" / "media"
    if not folder.is_dir():
        pytest.skip(f"shared media not found at {folder}")
    return folder


def video_frames(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    """Decode the frames with the given indices of a video."""
    frames = {}
    for index, _, image in iter_video_frames(path):
        if index in indices:
            frames[index] = image
        if len(frames) == len(indices):
            break
    return frames


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
