"""Fixtures of the live tests: the driving clip. Ray, once imported, stays on loopback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jr2net.realtime.ray_loopback import keep_ray_on_loopback
from tests.conftest import video_frames

keep_ray_on_loopback()  # Ray reads it as it is imported: before any test module imports it


@pytest.fixture(scope="module")
def driving(shared_media: Path) -> list[np.ndarray]:
    """The first 40 frames of a shared talking clip at 320²."""
    frames = video_frames(shared_media / "liveportrait/driving/d0.mp4", set(range(40)))
    return [np.asarray(Image.fromarray(frames[i]).resize((320, 320))) for i in sorted(frames)]
