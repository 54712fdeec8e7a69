"""The live benchmark counts a group's frames without the extra caller's span, and reads motion from
real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.e2e_latency import (
    MIN_MOTION,
    MOTION_MEASURES,
    STEP_S,
    _extra_span,
    _fps,
    _lags,
    _outside,
    _signals,
)
from jr2net.tracking import Tracker
from tests.conftest import video_frames


def test_fps_leaves_out_the_span_an_extra_caller_shared() -> None:
    alone = np.arange(0.0, 4.0, 1 / 30)
    shared = np.arange(4.0, 7.0, 1 / 10)  # the extra caller slows everyone to 10 fps
    after = np.arange(7.0, 12.0, 1 / 30)
    arrivals = np.concatenate([alone, shared, after])
    span = (3.99, 7.0)
    assert abs(_fps(arrivals, span) - 30.0) < 1.0
    assert _fps(arrivals, None) < 25.0, "counted over the whole call, the shared span drags it down"
    assert _outside(np.array([1.0, 5.0, 8.0]), span).tolist() == [True, False, True]
    assert _outside(np.array([5.0]), None).tolist() == [True]


def test_the_extra_span_runs_from_its_offer_to_its_last_frame_and_none_when_refused() -> None:
    extra = {"status": 200, "offered": 4.0, "answered": 4.1, "received": [(4.5, 0, None), (7.2, 3, None)]}
    assert _extra_span(extra) == (4.0, 7.2)
    assert _extra_span({"status": 200, "offered": 4.0, "answered": 4.1, "received": []}) == (4.0, 4.1)
    assert _extra_span({"status": 503, "reason": "full"}) is None
    assert _extra_span(None) is None


def _smooth_noise(times: np.ndarray, seed: int) -> np.ndarray:
    """A smooth random signal of unit spread over ``times`` (a random walk, averaged over 0.2 s)."""
    walk = np.cumsum(np.random.default_rng(seed).normal(size=len(times)))
    smooth = np.convolve(walk, np.ones(6) / 6, mode="same")
    return (smooth - smooth.mean()) / smooth.std()


def test_motion_lag_counts_only_the_signals_the_driver_moved() -> None:
    """The jaw moves and comes back 0.1 s later; two blink signals stay shut, their tracker noise
    (well under MIN_MOTION) aligning best 0.4 s later. Every window finds the jaw's 0.1 s: the
    still signals, standardised, would have counted as much as the moving one."""
    sent_t = np.arange(0, 20, 1 / 30)
    got_t = sent_t + 0.05
    motion = 0.3 * _smooth_noise(sent_t, 0)
    still = 0.2 * MIN_MOTION * _smooth_noise(sent_t, 1)

    def at(times: np.ndarray, delay: float, signal: np.ndarray) -> np.ndarray:
        return np.interp(times - delay, sent_t, signal)

    sent = np.stack([motion, still, still], axis=1)
    got = np.stack([at(got_t, 0.1, motion), at(got_t, 0.4, still), at(got_t, 0.4, still)], axis=1)
    lags = _lags(sent_t, sent, got_t, got)
    assert len(lags) >= 7
    assert all(abs(lag - 0.1) <= STEP_S for _, lag, _ in lags)
    assert [start for start, _, _ in lags] == sorted(start for start, _, _ in lags)


def test_a_window_where_nothing_moved_tells_no_lag() -> None:
    times = np.arange(0, 10, 1 / 30)
    still = np.full((len(times), 3), 0.1)
    assert _lags(times, still, times + 0.05, still) == []


def test_the_motion_signals_read_a_mouth_opening_and_a_squint_from_the_landmarks(shared_media: Path) -> None:
    """d3's frames: shut and open mouth (291, 309), eyes open and squinting (180, 240). The lip gap
    and the eye openings (landmark ratios) move the way the face did; a frame without a face is NaN."""
    frames = video_frames(shared_media / "liveportrait/driving/d3.mp4", {180, 240, 291, 309})
    images = [frames[index] for index in (180, 240, 291, 309)] + [np.zeros((64, 64, 3), np.uint8)]
    with Tracker(mode="image") as tracker:
        signals = _signals(tracker, images)
    squint, mouth, empty = signals[[0, 1]], signals[[2, 3]], signals[4]
    lips, eyes = MOTION_MEASURES["motion_lag"][0], list(MOTION_MEASURES["motion_lag"][1:3])
    assert mouth[1, lips] > mouth[0, lips] + 0.1, "the open mouth's lip gap"
    assert (squint[1, eyes] < 0.7 * squint[0, eyes]).all(), "both eyes narrower in the squint"
    assert np.isnan(empty).all()
