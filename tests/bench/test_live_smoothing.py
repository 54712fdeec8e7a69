"""The live smoothing benchmark's lag estimate: a known delay is found, and a real One-Euro lags."""

from __future__ import annotations

import numpy as np
import torch

from bench.live_smoothing import delayed, lag_ms
from jr2net.smoothing import OneEuroConfig, OneEuroFilter


def moving_track(frames: int = 120, frame_ms: float = 40.0) -> np.ndarray:
    """(T, 68, 2) points swaying at 0.7 Hz, each with its own phase."""
    times = np.arange(frames)[:, None, None] * frame_ms / 1000
    phases = np.linspace(0, 3, 68 * 2).reshape(1, 68, 2)
    return 50 * np.sin(2 * np.pi * 0.7 * times + phases)


def test_a_known_delay_is_found() -> None:
    track = moving_track()
    assert lag_ms(track, delayed(track, 37 / 40), 40.0) == 37.0
    assert lag_ms(track, track, 40.0) == 0.0


def test_a_slower_one_euro_filter_lags_more() -> None:
    track = moving_track()

    def filtered(cutoff: float) -> np.ndarray:
        smooth = OneEuroFilter(OneEuroConfig(min_cutoff=cutoff, beta=0.0))
        frames = [smooth(torch.from_numpy(frame), 0.04 * index).numpy() for index, frame in enumerate(track)]
        return np.stack(frames)

    slow, fast = lag_ms(track, filtered(1.5), 40.0), lag_ms(track, filtered(6.0), 40.0)
    assert 15.0 < fast < slow
