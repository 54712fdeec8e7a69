"""Compositing helpers: the Gaussian blur and the flow's extension beyond the face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jr2net.compositing import extrapolate_flow, gaussian_blur
from jr2net.shapes import ShapeError


def test_gaussian_blur_keeps_mass_and_flat_images() -> None:
    impulse = torch.zeros(1, 3, 21, 21)
    impulse[0, :, 10, 10] = 1.0
    blurred = gaussian_blur(impulse, 1.0)
    assert blurred.shape == impulse.shape
    assert torch.allclose(blurred.sum(dim=(2, 3)), torch.ones(1, 3), atol=1e-5)
    assert blurred[0, 0, 10, 11] == pytest.approx(np.exp(-0.5) / (2 * np.pi), rel=0.02)
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.5), flat)


@pytest.mark.parametrize("shape", [(1, 2, 24, 32), (1, 2, 40, 600)], ids=["by matrices", "by convolutions"])
def test_gaussian_blur_matches_a_replicate_padded_convolution(shape: tuple[int, ...]) -> None:
    """Small images are blurred by matrix products, large ones by convolutions: both give the
    separable Gaussian with edges replicated, computed here with numpy."""
    sigma = 2.5
    image = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()

    def along(values: np.ndarray, axis: int) -> np.ndarray:
        padded = np.pad(values, [(radius, radius) if a == axis else (0, 0) for a in range(4)], mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=axis)
        return windows @ kernel

    expected = along(along(image.double().numpy(), 3), 2)
    np.testing.assert_allclose(gaussian_blur(image, sigma).numpy(), expected, atol=1e-6)


def test_extrapolated_flow_follows_the_mask_edge_with_a_near_spread() -> None:
    """A flow that varies across the mask (a head turning: x-flow growing left to right) extended
    beyond its right edge: the wide average alone jumps at the edge, the near spread does not, and
    both fade to nothing far away."""
    size = 128
    mask = torch.zeros(1, 1, size, size)
    mask[..., 32:96, 32:96] = 1.0
    columns = torch.arange(size, dtype=torch.float32)
    flow = torch.stack([columns.expand(size, size) / 8.0, torch.zeros(size, size)])[None]
    edge = float(flow[0, 0, 64, 95])
    wide = extrapolate_flow(flow, mask, sigma=32.0)
    near = extrapolate_flow(flow, mask, sigma=32.0, near_sigma=3.0)
    wide_jump, near_jump = (abs(float(spread[0, 0, 64, 97]) - edge) for spread in (wide, near))
    assert wide_jump > 2.0
    assert near_jump < 0.5 * wide_jump
    torch.testing.assert_close(near * mask, flow * mask)
    assert float(near[0, 0, 64, 127].abs()) < float(near[0, 0, 64, 97].abs())


def test_extrapolated_flow_takes_a_coarser_flow_around_the_mask() -> None:
    """A face flow of +5 px inside a small square, the head's -3 px known around it on a larger
    square at a quarter of the size: the face keeps its own, the ring between takes the head's, the
    far corner fades to nothing."""
    size, downscale = 128, 4
    mask = torch.zeros(1, 1, size, size)
    mask[..., 48:80, 48:80] = 1.0
    flow = torch.full((1, 2, size, size), 5.0)
    around_mask = torch.zeros(1, 1, size // downscale, size // downscale)
    around_mask[..., 6:26, 6:26] = 1.0
    around = (torch.full((1, 2, size // downscale, size // downscale), -3.0) * around_mask, around_mask)
    spread = extrapolate_flow(flow, mask, sigma=16.0, downscale=downscale, near_sigma=2.0, around=around)
    torch.testing.assert_close(spread * mask, flow * mask)
    assert abs(float(spread[0, 0, 64, 32]) + 3.0) < 0.3
    assert abs(float(spread[0, 1, 36, 64]) + 3.0) < 0.3
    assert abs(float(spread[0, 0, 0, 0])) < 0.5
    with pytest.raises(ShapeError, match="around"):
        extrapolate_flow(flow, mask, sigma=16.0, downscale=downscale, around=(around[0][..., :-1], around[1]))
