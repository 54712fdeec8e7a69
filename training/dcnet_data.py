"""The DCNet pair cache (:mod:`jr2net.training.dcnet_pairs`) as training batches, split by person."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from jr2net.nets.dcnet import CONDITION_CHANNELS, TEXTURE_CHANNELS

SPLITS = ("train", "validation")
ABLATIONS = {  # the paper's Table 5 variants: the input channels each one blanks
    "none": ((), ()),  # dense conditions and the warped image (the shipped network)
    "dense": ((), tuple(range(3))),  # dense conditions only: no warped image
    "no_light": (tuple(range(3, 6)), tuple(range(6, 9))),  # no light maps, source or target
}
TEXTURE_NORMAL_X = TEXTURE_CHANNELS.index("normal_x")
CONDITION_NORMAL_X = CONDITION_CHANNELS.index("normal_x")
MASK = CONDITION_CHANNELS.index("mask")


@dataclass(frozen=True)
class PairBatch:
    """B pairs on their source's crop: ``texture`` (B, 9, S, S), ``conditions`` (B, 12, S, S),
    ``grid`` (B, S, S, 2) and the true driving crop ``truth`` (B, 3, S, S) in [0, 1]."""

    texture: Tensor
    conditions: Tensor
    grid: Tensor
    truth: Tensor

    @property
    def source_image(self) -> Tensor:
        """(B, 3, S, S) the source crop."""
        return self.texture[:, :3]

    @property
    def mask(self) -> Tensor:
        """(B, 1, S, S) the target face mask."""
        return self.conditions[:, MASK : MASK + 1]

    def to(self, device: torch.device) -> PairBatch:
        return PairBatch(
            *(value.to(device) for value in (self.texture, self.conditions, self.grid, self.truth))
        )

    def ablated(self, ablation: str) -> PairBatch:
        """The batch with the inputs an :data:`ABLATIONS` variant leaves out set to zero."""
        if ablation not in ABLATIONS:
            raise ValueError(f"unknown ablation {ablation!r}; choose from {sorted(ABLATIONS)}")
        texture_channels, condition_channels = ABLATIONS[ablation]
        texture, conditions = self.texture.clone(), self.conditions.clone()
        texture[:, list(texture_channels)] = 0
        conditions[:, list(condition_channels)] = 0
        return PairBatch(texture, conditions, self.grid, self.truth)

    def mirrored(self) -> PairBatch:
        """Every pair mirrored left to right (the normals' x and the grid's x change sign)."""
        texture, conditions = self.texture.flip(-1).clone(), self.conditions.flip(-1).clone()
        texture[:, TEXTURE_NORMAL_X] *= -1
        conditions[:, CONDITION_NORMAL_X] *= -1
        grid = self.grid.flip(-2) * torch.tensor([-1.0, 1.0])
        return PairBatch(texture, conditions, grid, self.truth.flip(-1))


class PairDataset:
    """One split of a pair cache: the pairs whose source clip is (or is not) a validation person's."""

    def __init__(self, root: Path, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {SPLITS}")
        meta_path = root / "meta.json"
        if not meta_path.is_file():
            raise FileNotFoundError(
                f"no DCNet pair cache at {root}; "
                f"build it with python -m jr2net.training.dcnet_pairs --out {root}"
            )
        meta = json.loads(meta_path.read_text())
        held_out = np.array([source["validation"] for source in meta["sources"]], dtype=bool)

        def load(name: str) -> np.ndarray:
            return np.load(root / f"{name}.npy", mmap_mode="r")

        self.textures, self.conditions = load("textures"), load("conditions")
        self.grids, self.truths = load("grids"), load("truths")
        pair_source = np.asarray(load("pair_source")[: meta["pair_count"]])
        self.pair_source = pair_source
        self.indices = np.flatnonzero(held_out[pair_source] == (split == "validation"))

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, positions: np.ndarray) -> PairBatch:
        """The pairs at ``positions`` (indices into this split)."""
        pairs = np.sort(self.indices[positions])
        sources = self.pair_source[pairs]

        def tensor(array: np.ndarray, index: np.ndarray) -> Tensor:
            return torch.from_numpy(np.stack([array[i] for i in index])).float()

        return PairBatch(
            texture=tensor(self.textures, sources),
            conditions=tensor(self.conditions, pairs),
            grid=tensor(self.grids, pairs),
            truth=tensor(self.truths, pairs) / 255.0,
        )

    def sample(self, rng: np.random.Generator, size: int, mirror: bool) -> PairBatch:
        """``size`` random pairs, mirrored as a whole half of the time when ``mirror``."""
        batch = self.batch(rng.choice(len(self), size=size, replace=len(self) < size))
        return batch.mirrored() if mirror and rng.random() < 0.5 else batch
