"""Shared fixtures: the real face model and the devices to run ops on."""

from __future__ import annotations

import pytest
import torch

from jr2net.face_model import FaceModel

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session")
def face_model() -> FaceModel:
    """The ICT face model found by the asset locator."""
    return FaceModel.load()


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Each available device: CPU always, CUDA when present."""
    return torch.device(request.param)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
