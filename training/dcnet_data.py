"""The DCNet pair cache (:mod:`jr2net.training.dcnet_pairs`) as training batches, split by person."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional

from jr2net.nets.dcnet import CONDITION_CHANNELS, TEXTURE_CHANNELS
from jr2net.reenact import area_ratio, mouth_shown
from jr2net.training.crop_dataset import collection

SPLITS = ("train", "validation")
WARPED = tuple(range(CONDITION_CHANNELS.index("warped_r"), CONDITION_CHANNELS.index("warped_b") + 1))
TEXTURE_MAPS = TEXTURE_CHANNELS.index("light_r")  # the first of the six map channels (light ‖ normals)
CONDITION_MAPS = CONDITION_CHANNELS.index("light_r")
TEXTURE_NORMAL_X = TEXTURE_CHANNELS.index("normal_x")
CONDITION_NORMAL_X = CONDITION_CHANNELS.index("normal_x")
COVISIBLE = CONDITION_CHANNELS.index("covisible")
MASK = CONDITION_CHANNELS.index("mask")
MOUTH = CONDITION_CHANNELS.index("mouth")


@dataclass(frozen=True)
class Ablation:
    """A variant of the paper's Table 5: the input channels it sets to zero and, for ``rendered``,
    the rendered images (source and target: albedo · shading) in place of the light and normal
    maps (their RGB in the light map's channels, the normal channels zero)."""

    blank_texture: tuple[int, ...] = ()
    blank_conditions: tuple[int, ...] = ()
    rendered: bool = False


ABLATIONS = {
    "none": Ablation(),  # dense conditions and the warped image (the shipped network)
    "dense": Ablation(blank_conditions=WARPED),  # dense conditions only: no warped image
    "no_light": Ablation(  # no light maps, source or target
        tuple(range(TEXTURE_MAPS, TEXTURE_MAPS + 3)), tuple(range(CONDITION_MAPS, CONDITION_MAPS + 3))
    ),
    "rendered": Ablation(blank_conditions=WARPED, rendered=True),  # the rendered image, no warped image
}
WITHOUT_WARPED_IMAGE = tuple(
    name for name, variant in ABLATIONS.items() if WARPED[0] in variant.blank_conditions
)


@dataclass(frozen=True)
class PairBatch:
    """B pairs on their source's crop: ``texture`` (B, 9, S, S), ``conditions`` (B, 12, S, S),
    ``grid`` (B, S, S, 2) and the true driving crop ``truth`` (B, 3, S, S) in [0, 1]; from a cache
    that holds them, the rendered target ``render`` and source ``source_render`` (B, 3, S, S) in
    [0, 1] (the ``rendered`` ablation's inputs), else None."""

    texture: Tensor
    conditions: Tensor
    grid: Tensor
    truth: Tensor
    render: Tensor | None = None
    source_render: Tensor | None = None

    @property
    def source_image(self) -> Tensor:
        """(B, 3, S, S) the source crop."""
        return self.texture[:, :3]

    @property
    def mask(self) -> Tensor:
        """(B, 1, S, S) the target face mask."""
        return self.conditions[:, MASK : MASK + 1]

    @property
    def mouth(self) -> Tensor:
        """(B, 1, S, S) the target's mouth interior."""
        return self.conditions[:, MOUTH : MOUTH + 1]

    @property
    def shown_mouth(self) -> Tensor:
        """(B, 1, S, S) in [0, 1]: the part of the target's mouth interior the source showed open,
        which the product keeps to the warped source (:func:`jr2net.dcnet_renderer.kept_mouth`); the
        stretch is the area ratio of the grid's map, source crop pixels per target crop pixel."""
        stretch = area_ratio(self.grid * (self.grid.shape[-2] / 2))
        return mouth_shown(self.mouth, self.conditions[:, COVISIBLE : COVISIBLE + 1], stretch)

    def to(self, device: torch.device) -> PairBatch:
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        return PairBatch(
            **{name: None if value is None else value.to(device) for name, value in values.items()}
        )

    def ablated(self, ablation: str) -> PairBatch:
        """The batch as an :data:`ABLATIONS` variant sees it."""
        if ablation not in ABLATIONS:
            raise ValueError(f"unknown ablation {ablation!r}; choose from {sorted(ABLATIONS)}")
        variant = ABLATIONS[ablation]
        texture, conditions = self.texture.clone(), self.conditions.clone()
        texture[:, list(variant.blank_texture)] = 0
        conditions[:, list(variant.blank_conditions)] = 0
        if variant.rendered:
            if self.render is None or self.source_render is None:
                raise ValueError(
                    f"the {ablation!r} ablation needs the rendered images, which this pair cache lacks: "
                    "rebuild it with python -m jr2net.training.dcnet_pairs"
                )
            texture[:, TEXTURE_MAPS:] = functional.pad(self.source_render, (0, 0, 0, 0, 0, 3))
            conditions[:, CONDITION_MAPS:] = functional.pad(self.render, (0, 0, 0, 0, 0, 3))
        return dataclasses.replace(self, texture=texture, conditions=conditions)

    def mirrored(self) -> PairBatch:
        """Every pair mirrored left to right (the normals' x and the grid's x change sign)."""
        texture, conditions = self.texture.flip(-1).clone(), self.conditions.flip(-1).clone()
        texture[:, TEXTURE_NORMAL_X] *= -1
        conditions[:, CONDITION_NORMAL_X] *= -1
        grid = self.grid.flip(-2) * torch.tensor([-1.0, 1.0])
        renders = (None if image is None else image.flip(-1) for image in (self.render, self.source_render))
        return PairBatch(texture, conditions, grid, self.truth.flip(-1), *renders)


class PairDataset:
    """One split of a pair cache: the pairs whose source clip is (or is not) a validation person's,
    less those of the ``exclude`` collections (file-name prefixes, :func:`collection`): people kept
    out of every split, a decision set that no run trains or validates on."""

    def __init__(self, root: Path, split: str, exclude: tuple[str, ...] = ()) -> None:
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
        collections = [collection(source["clip"]) for source in meta["sources"]]
        unknown = sorted(set(exclude) - set(collections))
        if unknown:  # a misspelt decision set would otherwise be trained on without a word
            raise ValueError(f"{root}: no pairs of the excluded collections {unknown}")
        excluded = np.isin(collections, exclude)

        def load(name: str) -> np.ndarray:
            return np.load(root / f"{name}.npy", mmap_mode="r")

        self.textures, self.conditions = load("textures"), load("conditions")
        self.grids, self.truths = load("grids"), load("truths")
        rendered = (root / "renders.npy").is_file() and (root / "source_renders.npy").is_file()
        self.renders = load("renders") if rendered else None
        self.source_renders = load("source_renders") if rendered else None
        pair_source = np.asarray(load("pair_source")[: meta["pair_count"]])
        self.pair_source = pair_source
        kept = (held_out[pair_source] == (split == "validation")) & ~excluded[pair_source]
        self.indices = np.flatnonzero(kept)

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, positions: np.ndarray) -> PairBatch:
        """The pairs at ``positions`` (indices into this split)."""
        pairs = np.sort(self.indices[positions])
        sources = self.pair_source[pairs]

        def tensor(array: np.ndarray, index: np.ndarray) -> Tensor:
            return torch.from_numpy(np.stack([array[i] for i in index])).float()

        def image(array: np.ndarray | None, index: np.ndarray) -> Tensor | None:
            return None if array is None else tensor(array, index) / 255.0

        return PairBatch(
            texture=tensor(self.textures, sources),
            conditions=tensor(self.conditions, pairs),
            grid=tensor(self.grids, pairs),
            truth=tensor(self.truths, pairs) / 255.0,
            render=image(self.renders, pairs),
            source_render=image(self.source_renders, sources),
        )

    def sample(self, rng: np.random.Generator, size: int, mirror: bool) -> PairBatch:
        """``size`` random pairs, mirrored as a whole half of the time when ``mirror``."""
        batch = self.batch(rng.choice(len(self), size=size, replace=len(self) < size))
        return batch.mirrored() if mirror and rng.random() < 0.5 else batch
