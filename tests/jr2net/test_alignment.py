"""Aligned face crops: eyes level, same scale, and the transform maps landmarks into the crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jr2net.alignment import LEFT_EYE, RIGHT_EYE, align_face
from jr2net.media import read_image
from jr2net.tracking import Tracker


@pytest.mark.parametrize("name,roll", [("liveportrait/source/s1.jpg", 0), ("deep3dfacerecon/000006.jpg", 25)])
def test_crop_is_aligned(shared_media: Path, name: str, roll: float) -> None:
    image = np.asarray(Image.fromarray(read_image(shared_media / name)).rotate(roll, expand=True))
    with Tracker(mode="image") as tracker:
        tracking = tracker.track(image)
        crop = align_face(image, tracking.landmarks, size=224)
        again = tracker.track(crop.image)
    assert crop.image.shape == (224, 224, 3) and again.face
    right, left = again.landmarks[list(RIGHT_EYE), :2].mean(0), again.landmarks[list(LEFT_EYE), :2].mean(0)
    assert abs(left[1] - right[1]) < 0.05 * 224, "eyes are level"
    assert 0.2 * 224 < left[0] - right[0] < 0.35 * 224, "eye distance is normalised"
    mapped = crop.to_crop(tracking.landmarks[:, :2])
    assert np.median(np.linalg.norm(mapped - again.landmarks[:, :2], axis=1)) < 0.02 * 224
    np.testing.assert_allclose(crop.to_image(mapped), tracking.landmarks[:, :2], atol=1e-3)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="RGB uint8"):
        align_face(np.zeros((10, 10), np.uint8), np.zeros((478, 3)))
    with pytest.raises(ValueError, match="478 landmarks"):
        align_face(np.zeros((10, 10, 3), np.uint8), np.zeros((68, 2)))
