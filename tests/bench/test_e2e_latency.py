"""The live benchmark counts a group's frames without the extra caller's span."""

from __future__ import annotations

import numpy as np

from bench.e2e_latency import _extra_span, _fps, _outside


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
