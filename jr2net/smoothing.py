"""One-Euro filtering of per-frame FaceParams, and a jitter metric.

The One-Euro filter (Casiez et al. 2012) low-passes each value with a cut-off that rises with its
speed: still faces stay still, fast motion keeps little lag. A first-order low-pass trails a steady
motion by its time constant τ = 1 / (2π · cut-off); with a ``lead`` the filter's output is moved ahead
along its own speed estimate by that share of τ (its state stays the plain low-pass), which takes
back that share of the lag in steady motion at the price of some overshoot when the motion stops.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from jr2net.params import FaceParams

SMOOTHED_FIELDS = ("expression", "rotation", "translation")


@dataclass(frozen=True)
class OneEuroConfig:
    """Cut-off at rest (Hz), speed coefficient, the cut-off of the speed estimate (Hz), and the
    share of the low-pass's own lag the output is moved ahead by (0: the plain One-Euro filter)."""

    min_cutoff: float = 1.5
    beta: float = 0.3
    derivative_cutoff: float = 1.0
    lead: float = 0.0


def _time_constant(cutoff: Tensor | float) -> Tensor | float:
    return 1.0 / (2.0 * math.pi * cutoff)


def _alpha(cutoff: Tensor | float, elapsed: float) -> Tensor | float:
    return 1.0 / (1.0 + _time_constant(cutoff) / elapsed)


class OneEuroFilter:
    """Element-wise One-Euro filter over a stream of same-shaped tensors."""

    def __init__(self, config: OneEuroConfig = OneEuroConfig()) -> None:
        self.config = config
        self._value: Tensor | None = None
        self._speed: Tensor | None = None
        self._time: float | None = None

    def reset(self) -> None:
        """Forget the history (after a gap without a face, say)."""
        self._value = self._speed = self._time = None

    def __call__(self, value: Tensor, time_s: float) -> Tensor:
        """Filter ``value`` observed at ``time_s`` seconds (strictly increasing)."""
        if self._value is None or self._time is None:
            self._value, self._speed, self._time = value.clone(), torch.zeros_like(value), time_s
            return value.clone()
        elapsed = time_s - self._time
        if elapsed <= 0:
            raise ValueError(f"One-Euro filter needs increasing times, got {time_s} after {self._time}")
        speed = (value - self._value) / elapsed
        self._speed = self._speed + _alpha(self.config.derivative_cutoff, elapsed) * (speed - self._speed)
        cutoff = self.config.min_cutoff + self.config.beta * self._speed.abs()
        alpha = _alpha(cutoff, elapsed)
        self._value = self._value + alpha * (value - self._value)
        self._time = time_s
        if self.config.lead == 0:
            return self._value.clone()
        # The speed is the input's rate away from the filtered value (as the One-Euro filter has it):
        # 1/alpha times the motion's own in steady motion.
        return self._value + self.config.lead * _time_constant(cutoff) * alpha * self._speed


class ParamsSmoother:
    """One-Euro filters over the expression and head pose of a stream of FaceParams.

    The :data:`SMOOTHED_FIELDS` are filtered element-wise, the expression kept in [0, 1] after;
    identity, focal, light and albedo pass through.
    """

    def __init__(self, config: OneEuroConfig = OneEuroConfig()) -> None:
        self.filters = {name: OneEuroFilter(config) for name in SMOOTHED_FIELDS}

    def __call__(self, params: FaceParams, time_s: float) -> FaceParams:
        """``params`` observed at ``time_s`` seconds (strictly increasing), smoothed."""
        smoothed = {name: smooth(getattr(params, name), time_s) for name, smooth in self.filters.items()}
        smoothed["expression"] = smoothed["expression"].clamp(0, 1)
        return params.replace(**smoothed)


def jitter(series: Tensor) -> float:
    """Mean absolute second difference of a (T, D) series (frame-to-frame acceleration)."""
    if series.dim() != 2 or series.shape[0] < 3:
        raise ValueError(f"jitter needs a (T >= 3, D) series, got {tuple(series.shape)}")
    return float((series[2:] - 2 * series[1:-1] + series[:-2]).abs().mean())
