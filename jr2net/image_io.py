"""Writing images for people to look at."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch import Tensor

from jr2net.shapes import check_tensor


def to_uint8(image: Tensor) -> np.ndarray:
    """(C, H, W) float image in [0, 1] (C = 1 or 3) -> (H, W, 3) uint8, clamped."""
    check_tensor("image", image, ("C", "H", "W"))
    if image.shape[0] not in (1, 3):
        raise ValueError(f"argument 'image' needs 1 or 3 channels, got {image.shape[0]}")
    rgb = image.detach().float().clamp(0.0, 1.0).expand(3, -1, -1)
    return (rgb.permute(1, 2, 0).cpu().numpy() * 255.0 + 0.5).astype(np.uint8)


def save_png(path: Path, image: Tensor) -> Path:
    """Save a (C, H, W) [0, 1] image as PNG, creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(to_uint8(image)).save(path)
    return path
