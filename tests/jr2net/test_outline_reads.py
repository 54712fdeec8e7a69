"""The outline's read correction: the oval landmarks read toward the source's own, nothing changes
at the fixed-surface anchors or far beyond the oval."""

from __future__ import annotations

import math

import pytest
import torch

from jr2net.compositing import pixel_centres, to_pixels
from jr2net.landmark_pinning import thin_plate_grid
from jr2net.outline_reads import (
    OUTLINE_FIXED_STEP,
    OUTLINE_GAIN,
    OUTLINE_SMOOTHING,
    outline_plan,
    outline_shift,
    oval_landmarks,
)

SIZE = 128


def _ring(count: int, radius: float) -> torch.Tensor:
    """(count, 2) points on a circle about the image's centre."""
    angles = torch.arange(count) * (2 * math.pi / count)
    return SIZE / 2 + radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)


def test_the_oval_is_mediapipes_36_outline_landmarks() -> None:
    oval = oval_landmarks()
    assert len(oval) == 36 and {10, 152, 234, 454} <= set(oval)  # forehead, chin, both cheeks


def test_nothing_moves_where_the_oval_already_reads_the_source_s_own_landmarks() -> None:
    reads = pixel_centres(SIZE, SIZE)
    oval = _ring(36, 40)
    shift = outline_shift(outline_plan(oval, _ring(12, 15), SIZE, SIZE), reads, oval.clone())
    assert shift.shape == (1, SIZE, SIZE, 2)
    assert float(shift.abs().max()) < 1e-3


def test_the_oval_reads_part_of_the_way_toward_its_landmarks_and_the_inner_anchors_stay() -> None:
    reads = pixel_centres(SIZE, SIZE)
    oval, inner = _ring(36, 40), _ring(12, 15)
    shift = outline_shift(outline_plan(oval, inner, SIZE, SIZE), reads, oval + torch.tensor([3.0, 0.0]))

    def at(point: torch.Tensor) -> torch.Tensor:
        column, row = (int(value) for value in point)
        return shift[0, row, column]

    for point in oval[::6]:
        assert float(at(point)[0]) == pytest.approx(3 * OUTLINE_GAIN, rel=0.2)
        assert abs(float(at(point)[1])) < 0.2
    for point in inner[::3]:
        assert float(at(point).abs().max()) < 0.15  # the fixed anchors keep their reads
    assert float(shift[0, :4, :4].abs().max()) < 0.05  # the frame's corner, far beyond the oval


def test_mismatched_landmarks_are_refused() -> None:
    oval = _ring(36, 40)
    with pytest.raises(ValueError, match="wanted"):
        outline_shift(outline_plan(oval, _ring(12, 15), SIZE, SIZE), pixel_centres(SIZE, SIZE), oval[:30])


def test_the_planned_response_is_the_spline_solved_on_the_frame_s_errors() -> None:
    """The plan keeps a unit error's response per oval landmark; summed with the frame's errors it
    is the spline through those errors (held at 0 by the fixed anchors), faded as planned."""
    oval, inner = _ring(36, 40), _ring(12, 15)
    errors = torch.randn(36, 2, generator=torch.Generator().manual_seed(0))
    plan = outline_plan(oval, inner, SIZE, SIZE)
    shift = outline_shift(plan, pixel_centres(SIZE, SIZE), oval + errors)
    held = inner[::OUTLINE_FIXED_STEP]
    values = torch.cat([errors, torch.zeros(len(held), 2)])
    smoothing = torch.full((len(values),), OUTLINE_SMOOTHING)
    spline = to_pixels(thin_plate_grid(torch.cat([oval, held]), values, SIZE, SIZE, smoothing), SIZE, SIZE)
    expected = OUTLINE_GAIN * spline * to_pixels(plan.fade, SIZE, SIZE)
    torch.testing.assert_close(shift, expected.permute(0, 2, 3, 1), atol=1e-4, rtol=1e-4)
