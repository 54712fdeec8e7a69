"""The frame that travels through the realtime pipeline, with its timestamps."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np


@dataclass(frozen=True)
class StagedFrame:
    """One video frame and what the stages made of it.

    Attributes:
        image: (H, W, 3) RGB uint8 pixels (the input's, then each stage's output), or None
            between a stage that has read them and one that makes new ones (nobody copies pixels
            that nobody reads).
        index: position in the source stream.
        pts: presentation timestamp in ``time_base`` units, carried unchanged to the output.
        time_base: seconds per ``pts`` unit.
        captured: ``time.monotonic()`` when the source produced the frame.
        stamps: ``(stage, time.monotonic())`` pairs, one per finished stage, in order.
        payload: what a stage passes on besides pixels (reconstruction results, say).
    """

    image: np.ndarray | None
    index: int
    pts: int | None
    time_base: Fraction | None
    captured: float
    stamps: tuple[tuple[str, float], ...] = ()
    payload: object | None = None

    def stamped(self, stage: str, **changes: object) -> StagedFrame:
        """A copy with ``changes`` applied and ``stage`` stamped now."""
        return replace(self, stamps=(*self.stamps, (stage, time.monotonic())), **changes)

    def stage_latencies(self) -> dict[str, float]:
        """Seconds each stage took (from the previous stamp, the first from capture)."""
        latencies, previous = {}, self.captured
        for stage, when in self.stamps:
            latencies[stage] = when - previous
            previous = when
        return latencies


@dataclass(frozen=True)
class PendingFrame:
    """A source's frame whose pixels are made only when a stage takes it.

    A decoded webcam frame costs about 1–2 ms to convert to scaled RGB, and a caller sends 30
    frames a second whatever the stages manage: when they deliver 8, 22 conversions a second
    would be thrown away with the frames the first :class:`~jr2net.realtime.handoff.LatestSlot`
    drops. The pipeline calls ``develop`` in a worker thread, for taken frames only, so the
    conversion also stays off the event loop.

    Attributes:
        develop: makes the frame's :class:`StagedFrame` (its pixels, index, pts, capture time).
    """

    develop: Callable[[], StagedFrame]


def developed(frame: StagedFrame | PendingFrame) -> StagedFrame:
    """``frame`` with its pixels: a pending frame is developed, a staged one is returned as is."""
    return frame.develop() if isinstance(frame, PendingFrame) else frame
