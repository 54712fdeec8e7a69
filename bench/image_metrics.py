"""Image fidelity of an output frame against the true frame: L1, PSNR and SSIM, over a region or all."""

from __future__ import annotations

import math

import numpy as np
import torch

from jr2net.compositing import gaussian_blur


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM (Gaussian window σ=1.5, on luma) of two RGB uint8 images, over ``mask`` if given."""

    def luma(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[
            None, None
        ]

    x, y = luma(a), luma(b)
    mean_x, mean_y = gaussian_blur(x, 1.5), gaussian_blur(y, 1.5)
    var_x = gaussian_blur(x * x, 1.5) - mean_x**2
    var_y = gaussian_blur(y * y, 1.5) - mean_y**2
    covariance = gaussian_blur(x * y, 1.5) - mean_x * mean_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    value = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    value = value[0, 0].numpy()
    return float(value[mask].mean() if mask is not None else value.mean())


def fidelity(output: np.ndarray, truth: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
    """L1 (mean |Δ| / 255), PSNR (dB; 99 when identical) and SSIM of two RGB uint8 (H, W, 3) images,
    over the (H, W) bool ``mask``, or the whole frame when it is None."""
    error = np.abs(output.astype(np.float64) - truth.astype(np.float64)) / 255.0
    selected = error[mask] if mask is not None else error.reshape(-1, 3)
    mse = float((selected**2).mean())
    return {
        "l1": float(selected.mean()),
        "psnr": 10 * math.log10(1 / mse) if mse > 0 else 99.0,
        "ssim": ssim(output, truth, mask),
    }
