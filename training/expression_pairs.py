"""The synthesised expression pairs (:mod:`jr2net.training.synth_expressions`) as training batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from jr2net.nets.recnet import crop_images


class PairSet:
    """A written pair set (crops, betas, which are large), read from its memory-mapped arrays."""

    def __init__(self, folder: Path) -> None:
        if not (folder / "crops.npy").is_file():
            raise FileNotFoundError(
                f"no expression pairs in {folder}: make them with python -m jr2net.training.synth_expressions"
            )
        self.crops = np.load(folder / "crops.npy", mmap_mode="r")
        self.betas = np.load(folder / "betas.npy")
        meta = json.loads((folder / "meta.json").read_text())
        self.large = np.array([pair["large"] for pair in meta["per_pair"]], dtype=bool)
        if not len(self.crops) == len(self.betas) == len(self.large):
            raise ValueError(f"{folder}: crops, betas and meta.json disagree on the number of pairs")

    def __len__(self) -> int:
        return len(self.betas)

    def batch(self, indices: np.ndarray, size: int) -> tuple[Tensor, Tensor]:
        """(B, 3, size, size) images in [0, 1] and (B, E) betas of the pairs at ``indices``."""
        ordered = np.sort(indices)  # a memory map reads in order
        images = crop_images(self.crops[ordered])
        if images.shape[-1] != size:
            images = torch.nn.functional.interpolate(
                images, size=(size, size), mode="bilinear", antialias=True
            )
        return images, torch.from_numpy(self.betas[ordered])
