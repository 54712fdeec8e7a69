"""One-Euro filter and the jitter metric."""

from __future__ import annotations

import pytest
import torch

from jr2net.smoothing import OneEuroConfig, OneEuroFilter, jitter


def test_reduces_jitter_of_a_noisy_still_signal() -> None:
    generator = torch.Generator().manual_seed(0)
    noisy = 0.5 + 0.02 * torch.randn(120, 4, generator=generator)
    smoother = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=0.1))
    smoothed = torch.stack([smoother(row, t / 30) for t, row in enumerate(noisy)])
    assert jitter(smoothed) < 0.3 * jitter(noisy)
    assert (smoothed[60:].mean(0) - 0.5).abs().max() < 0.01


def test_follows_a_step_quickly_when_fast() -> None:
    smoother = OneEuroFilter(OneEuroConfig(min_cutoff=1.0, beta=5.0))
    values = [smoother(torch.tensor([0.0 if t < 10 else 1.0]), t / 30) for t in range(20)]
    assert float(values[9]) == 0.0
    assert float(values[14]) > 0.8


def test_reset_and_time_order() -> None:
    smoother = OneEuroFilter()
    smoother(torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="increasing"):
        smoother(torch.ones(2), 1.0)
    smoother.reset()
    assert torch.equal(smoother(torch.ones(2), 0.5), torch.ones(2))


def test_jitter_of_a_straight_line_is_zero() -> None:
    line = torch.linspace(0, 1, 20)[:, None].repeat(1, 3)
    assert jitter(line) < 1e-6
    with pytest.raises(ValueError, match="T >= 3"):
        jitter(torch.zeros(2, 3))
