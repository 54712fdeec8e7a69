"""The quality benchmark's scoring: face regions, motion transfer, the summary over clips."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")

from bench.face_regions import hull_region
from bench.motion_transfer import BLENDSHAPES, motion_transfer
from bench.self_reenactment import summarise


def test_hull_region_is_the_pixels_whose_centres_lie_inside() -> None:
    points = np.array([[2.0, 1.0], [6.0, 1.0], [6.0, 4.0], [2.0, 4.0], [4.0, 2.0]])
    region = hull_region(points, 6, 8, "dlib")
    expected = np.zeros((6, 8), bool)
    expected[1:4, 2:6] = True  # centres 1.5..3.5 and 2.5..5.5
    np.testing.assert_array_equal(region.mask, expected)
    assert len(region.outline) == 4 and region.detector == "dlib"


def _rows(frames: int, seed: int) -> np.ndarray:
    generator = np.random.default_rng(seed)
    rows = np.zeros((frames, BLENDSHAPES + 3))
    rows[:, :4] = generator.uniform(0, 1, (frames, 4))
    rows[:, BLENDSHAPES] = generator.uniform(-10, 10, frames)
    return rows


def test_an_output_that_copies_the_driver_correlates_one() -> None:
    driver = _rows(20, 0)
    figures = motion_transfer(driver.copy(), driver)
    assert figures["blendshape_r"] == pytest.approx(1.0)
    assert figures["blendshapes_varying"] == 4
    assert figures["angle_r"] == pytest.approx(1.0)
    assert figures["angle_r_each"]["yaw"] is None  # constant in the driver
    assert figures["expression_error"] == 0.0


def test_a_still_output_correlates_zero_and_faceless_frames_are_dropped() -> None:
    driver = _rows(20, 1)
    still = np.repeat(driver[:1], 20, axis=0)
    still[3] = np.nan
    figures = motion_transfer(still, driver)
    assert figures["frames"] == 19
    assert figures["blendshape_r"] == 0.0 and figures["angle_r"] == 0.0
    assert figures["expression_error"] > 0


def _run(psnr: float) -> dict:
    scores = {"l1": 0.1, "psnr": psnr, "ssim": 0.5}
    return {"face": scores, "full": scores, "held_frames": 0}


def test_summarise_means_over_clips_and_names_the_worst() -> None:
    clips = {
        "a": {"methods": {"static": _run(20.0), "warp2d": _run(30.0)}},
        "b": {"methods": {"static": _run(16.0), "warp2d": _run(31.0)}},
    }
    summary = summarise(clips)
    assert summary["mean"]["static"]["face"]["psnr"] == pytest.approx(18.0)
    assert summary["worst"]["static"]["clip"] == "b"
    assert summary["worst"]["warp2d"]["clip"] == "a"
