"""How well a cross-identity output follows its driver: MediaPipe blendshapes and head angles over time.

Each frame is read by MediaPipe (image mode) into one row: the 52 blendshape scores and the head's
pitch, yaw and roll (degrees, from the rotation of its head matrix), NaN where no face. Output
and driver rows are compared on the frames where both have a face: the Pearson correlation over
time of each signal that varies in the driver (blendshape std ≥ 0.02, angle std ≥ 1°; an output
that holds such a signal constant correlates 0), and the expression error, the mean |Δ| of the
blendshape scores.
"""

from __future__ import annotations

import numpy as np
import torch

from jr2net.camera import matrix_to_euler
from jr2net.tracking import Tracker

BLENDSHAPES = 52
ANGLES = ("pitch", "yaw", "roll")
VARYING_BLENDSHAPE_STD = 0.02
VARYING_ANGLE_STD_DEG = 1.0


def motion_row(tracker: Tracker, image: np.ndarray) -> np.ndarray:
    """(52 + 3,) blendshape scores and head pitch, yaw, roll in degrees of an RGB uint8 frame; NaN
    without a face."""
    seen = tracker.track(np.ascontiguousarray(image))
    if not seen.face:
        return np.full(BLENDSHAPES + len(ANGLES), np.nan)
    u, _, vh = np.linalg.svd(seen.head_matrix[:3, :3].astype(np.float64))
    angles = matrix_to_euler(torch.from_numpy(u @ vh)).numpy()
    return np.concatenate([seen.blendshapes.astype(np.float64), np.degrees(angles)])


def _correlation(output: np.ndarray, driver: np.ndarray, varying: float) -> float | None:
    """Pearson correlation of two (T,) signals; None when the driver's std is below ``varying``."""
    if driver.std() < varying:
        return None
    return 0.0 if np.ptp(output) == 0 else float(np.corrcoef(output, driver)[0, 1])


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def motion_transfer(output: np.ndarray, driver: np.ndarray) -> dict:
    """Transfer figures of output vs driver motion rows, both (T, 52 + 3) from :func:`motion_row`:
    mean blendshape and head-angle correlations (None when nothing varies, or under 3 frames
    with both faces), each angle's, and the expression error."""
    both = ~np.isnan(output).any(axis=1) & ~np.isnan(driver).any(axis=1)
    output, driver = output[both], driver[both]
    enough = len(output) >= 3
    shapes = [
        _correlation(out, drive, VARYING_BLENDSHAPE_STD) if enough else None
        for out, drive in zip(output[:, :BLENDSHAPES].T, driver[:, :BLENDSHAPES].T)
    ]
    angles = {
        name: _correlation(output[:, column], driver[:, column], VARYING_ANGLE_STD_DEG) if enough else None
        for column, name in enumerate(ANGLES, start=BLENDSHAPES)
    }
    return {
        "frames": int(both.sum()),
        "blendshape_r": _mean(shapes),
        "blendshapes_varying": sum(value is not None for value in shapes),
        "angle_r": _mean(list(angles.values())),
        "angle_r_each": angles,
        "expression_error": (
            float(np.abs(output[:, :BLENDSHAPES] - driver[:, :BLENDSHAPES]).mean()) if enough else None
        ),
    }
