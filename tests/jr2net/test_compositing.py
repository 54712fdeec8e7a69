"""Compositing helpers: the Gaussian blur."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from jr2net.compositing import gaussian_blur


def test_gaussian_blur_keeps_mass_and_flat_images() -> None:
    impulse = torch.zeros(1, 3, 21, 21)
    impulse[0, :, 10, 10] = 1.0
    blurred = gaussian_blur(impulse, 1.0)
    assert blurred.shape == impulse.shape
    assert torch.allclose(blurred.sum(dim=(2, 3)), torch.ones(1, 3), atol=1e-5)
    assert blurred[0, 0, 10, 11] == pytest.approx(np.exp(-0.5) / (2 * np.pi), rel=0.02)
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.5), flat)
