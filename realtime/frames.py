"""The frame that travels through the realtime pipeline, with its timestamps."""

from __future__ import annotations

import time
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
