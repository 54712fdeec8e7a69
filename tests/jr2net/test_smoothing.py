"""One-Euro filter, its FaceParams smoother, and the jitter metric."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from jr2net.params import FaceParams, ParamLayout
from jr2net.smoothing import OneEuroConfig, OneEuroFilter, ParamsSmoother, jitter


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


def test_a_lead_takes_back_the_lag_of_a_steady_motion() -> None:
    config = OneEuroConfig(min_cutoff=2.0, beta=0.0)
    plain, leading = OneEuroFilter(config), OneEuroFilter(replace(config, lead=1.0))
    slope, time_constant = 0.5, 1 / (2 * math.pi * config.min_cutoff)
    for frame in range(90):
        time_s = frame / 30
        value = torch.tensor([slope * time_s])
        trailing, ahead = plain(value, time_s), leading(value, time_s)
    assert float(value - trailing) == pytest.approx(slope * time_constant, rel=1e-3)
    assert abs(float(value - ahead)) < 1e-3 * slope * time_constant


def test_reset_and_time_order() -> None:
    smoother = OneEuroFilter()
    smoother(torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match="increasing"):
        smoother(torch.ones(2), 1.0)
    smoother.reset()
    assert torch.equal(smoother(torch.ones(2), 0.5), torch.ones(2))


def test_face_params_smoother_filters_expression_and_pose_alone() -> None:
    """Like one filter over expression, rotation and translation side by side, the expression then
    kept in [0, 1]; the other fields pass through."""
    layout = ParamLayout(identity_count=3, expression_count=4, vertex_count=10)
    generator = torch.Generator().manual_seed(0)
    smoother, reference = ParamsSmoother(), OneEuroFilter()
    for step in range(10):
        params = FaceParams.neutral(layout, focal=900.0 + step).replace(
            expression=1.4 * torch.rand(1, 4, generator=generator) - 0.2,
            rotation=0.2 * torch.randn(1, 3, generator=generator),
            translation=torch.randn(1, 3, generator=generator),
        )
        smoothed = smoother(params, step / 30)
        expected = reference(
            torch.cat([params.expression, params.rotation, params.translation], 1), step / 30
        )
        assert torch.equal(smoothed.expression, expected[:, :4].clamp(0, 1))
        assert torch.equal(torch.cat([smoothed.rotation, smoothed.translation], 1), expected[:, 4:])
        assert smoothed.focal is params.focal and smoothed.identity is params.identity
        assert smoothed.light is params.light


def test_jitter_of_a_straight_line_is_zero() -> None:
    line = torch.linspace(0, 1, 20)[:, None].repeat(1, 3)
    assert jitter(line) < 1e-6
    with pytest.raises(ValueError, match="T >= 3"):
        jitter(torch.zeros(2, 3))
