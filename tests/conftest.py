"""Shared fixtures: the real face model, the devices to run ops on, and the shared media."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from jr2net.assets import repository_root
from jr2net.face_model import FaceModel
from jr2net.media import iter_video_frames

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def process_thread_settings() -> Iterator[None]:
    """Undo what a command run in-process (``jr2net live``) sets for the whole process."""
    threads, interval = torch.get_num_threads(), sys.getswitchinterval()
    yield
    torch.set_num_threads(threads)
    sys.setswitchinterval(interval)


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


def asymmetric_frames(count: int, height: int = 48, width: int = 80) -> list[np.ndarray]:
    """``count`` RGB uint8 (height, width, 3) frames no flip or turn maps onto themselves: red ramps left
    to right, green top to bottom, a blue block marks the top-left corner, and frame k is shifted k*4
    pixels right (smooth enough for H.264 to keep within a few levels)."""
    x = np.linspace(0, 255, width)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height)[:, None].repeat(width, 1)
    block = np.zeros((height, width))
    block[: height // 3, : width // 4] = 255
    pattern = np.stack([x, y, block], axis=-1).round().astype(np.uint8)
    return [np.roll(pattern, 4 * k, axis=1) for k in range(count)]


def write_rotated_clip(path: Path, frames: list[np.ndarray], degrees: int) -> None:
    """An H.264 MP4 of RGB uint8 (H, W, 3) frames at 25 fps whose display matrix says to turn them
    ``degrees`` counter-clockwise, as a phone stores portrait video; skips where PyAV cannot write one."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=Fraction(25))
        if not hasattr(stream, "set_display_rotation"):
            pytest.skip(f"PyAV {av.__version__} cannot write a display matrix (needs 18)")
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.set_display_rotation(degrees)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
