"""The crop cache as training batches: crops, landmarks, crop cameras and fitter targets.

Fitter results are moved into each crop's camera once (:mod:`jr2net.nets.crop_camera`). The crops
are seen by the camera RecNet is run with, of the default focal (:func:`default_focal`), not the
fitter's: the fitter's face anchor keeps its crop pixel and its depth over the crop focal, its
rotation relative to the anchor's ray, so its image in the crop stays nearly the same. The
split is by source collection (the file-name prefix before the first ``_``), so the people of a
validation collection never appear in training. Batches pair each drawn crop with another crop
of the same clip where there is one, for the identity-consistency loss.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch import Tensor

from jr2net.mirror import MIRROR_X, FaceMirror, mirror_angles
from jr2net.nets.crop_camera import (
    camera_position,
    crop_intrinsics,
    default_focal,
    image_pose_to_crop,
    relative_to_ray,
)
from jr2net.nets.recnet import FACE_ANCHOR, crop_images
from jr2net.training.cache_frame import FrameColumns
from jr2net.training.crop_augmentation import Augmentation, CropSimilarity, photometric

# MediaPipe's face-oval contour (its FACEMESH_FACE_OVAL), in order around the face.
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
CACHE_FIELDS = ("crops", "landmarks", "matrices", "image_sizes", "identity", "frame", "group", "source")
VALIDATION_BUCKETS = 8  # one collection in this many goes to validation


@dataclass(frozen=True)
class CropBatch:
    """B training crops.

    Attributes:
        images: (B, 3, S, S) RGB in [0, 1].
        landmarks: (B, 478, 2) MediaPipe landmarks in crop pixels.
        intrinsics: (B, 3, 3) crop cameras (default focal).
        skin: (B, 1, R, R) face-oval mask at the photometric loss's resolution R.
        identity: (B, I), expression: (B, E), rotation: (B, 3) Euler angles relative to the
        viewing ray, anchor: (B, 3) crop-camera position of the face anchor: the fitter's results.
        pair: (B,) index of another crop of the same clip in the batch (itself when there is none).
    """

    images: Tensor
    landmarks: Tensor
    intrinsics: Tensor
    skin: Tensor
    identity: Tensor
    expression: Tensor
    rotation: Tensor
    anchor: Tensor
    pair: Tensor


def collection(source: str) -> str:
    """The source collection of a training file: its name up to the first ``_``."""
    return source.split("_", 1)[0]


def is_validation(source: str) -> bool:
    """Whether a file's collection is held out for validation (a stable hash of its name)."""
    return zlib.crc32(collection(source).encode()) % VALIDATION_BUCKETS == 0


def face_oval_mask(landmarks: np.ndarray, crop_size: int, size: int) -> np.ndarray:
    """(size, size) float32 mask of the face oval polygon of (478, 2) crop-pixel landmarks."""
    canvas = Image.new("L", (size, size), 0)
    points = landmarks[list(FACE_OVAL)] * (size / crop_size)
    ImageDraw.Draw(canvas).polygon([tuple(p) for p in points.tolist()], fill=255)
    return np.asarray(canvas, dtype=np.float32) / 255.0


class CropDataset:
    """The cached crops of one split (``train`` or ``validation``), sampled into :class:`CropBatch`es.

    Args:
        path: the ``.npz`` made by :mod:`jr2net.training.crop_cache`.
        split: ``train``, ``validation`` or ``all``.
        skin_size: resolution R of the skin masks (the photometric loss's render size).
        mirror: the face model's mirror maps, to flip half the augmented crops left to right; no
            flips when ``None``.
        augmentation: how strongly :meth:`batch` augments crops when given a random generator.
        swaps: ``.npz`` files of identity swaps made by :mod:`jr2net.training.identity_swap`
            (same format), read beside the real crops; :attr:`synthetic` marks them.
        swap_share: the share of :meth:`draw`'s draws that are swaps (0 without ``swaps``).
    """

    def __init__(
        self,
        path: Path,
        split: str = "train",
        skin_size: int = 112,
        mirror: FaceMirror | None = None,
        augmentation: Augmentation = Augmentation(),
        swaps: Sequence[Path] = (),
        swap_share: float = 0.0,
    ) -> None:
        if split not in ("train", "validation", "all"):
            raise ValueError(f"unknown split {split!r}; choose train, validation or all")
        if not 0.0 <= swap_share < 1.0 or (swap_share and not swaps):
            raise ValueError(f"swap_share must lie in [0, 1) and needs a swaps file, got {swap_share}")
        parts = [_read_cache(path, split, "python -m jr2net.training.crop_cache")]
        if not len(parts[0]["crops"]):
            raise ValueError(f"the {split} split of {path} is empty")
        for swap_path in swaps:
            part = _read_cache(swap_path, split, "python -m jr2net.training.identity_swap")
            if part["crop_size"] != parts[0]["crop_size"]:
                raise ValueError(
                    f"{swap_path} holds {part['crop_size']}² crops, {path} {parts[0]['crop_size']}²"
                )
            part["group"] = part["group"] + max(p["group"].max(initial=-1) for p in parts) + 1
            parts.append(part)
        data = {name: np.concatenate([part[name] for part in parts]) for name in CACHE_FIELDS}
        self.synthetic = np.arange(len(data["crops"])) >= len(parts[0]["crops"])
        self.swap_share = swap_share if self.synthetic.any() else 0.0
        self.crop_size = int(parts[0]["crop_size"])
        self.skin_size = skin_size
        self.mirror = mirror
        self.augmentation = augmentation
        self.crops = data["crops"]
        self.landmarks = data["landmarks"]
        self.groups = data["group"]
        self.sources = data["source"]
        frame = FrameColumns.of(torch.from_numpy(data["frame"]))
        matrices = torch.from_numpy(data["matrices"])
        self.identity = torch.from_numpy(data["identity"])
        self.expression = frame.expression
        crop_rotation, crop_translation = image_pose_to_crop(frame.rotation, frame.translation, matrices)
        anchor = camera_position(crop_rotation, crop_translation, torch.tensor(FACE_ANCHOR))
        self.rotation = relative_to_ray(crop_rotation, anchor)
        sizes = torch.from_numpy(data["image_sizes"])
        focal = default_focal(sizes[:, 0].double())
        depth_scale = (focal / torch.exp(frame.log_focal.double())).float()
        self.anchor = anchor * torch.stack([torch.ones_like(depth_scale)] * 2 + [depth_scale], dim=-1)
        self.intrinsics = crop_intrinsics(matrices, sizes, focal).float()
        self._members = {int(g): np.flatnonzero(self.groups == g) for g in np.unique(self.groups)}
        self._group_sizes = np.array([len(self._members[int(g)]) for g in self.groups], dtype=np.float64)

    def __len__(self) -> int:
        return len(self.crops)

    def batch(
        self, indices: np.ndarray, pair: np.ndarray | None = None, rng: np.random.Generator | None = None
    ) -> CropBatch:
        """The crops at ``indices`` (B,) as a batch; ``pair`` (B,) as in :class:`CropBatch`.

        With ``rng``, each crop is augmented as :attr:`augmentation` says
        (:mod:`jr2net.training.crop_augmentation`: zoomed, turned and shifted, with the landmarks,
        the crop camera and the 3D pose following exactly; colour, contrast, grey, blur, noise)
        and, with :attr:`mirror`, half of them flipped left to right (both crops of a pair alike,
        so they keep one identity).
        """
        index = torch.from_numpy(np.asarray(indices))
        images = crop_images(self.crops[indices])
        landmarks = torch.from_numpy(self.landmarks[indices])
        intrinsics = self.intrinsics[index]
        rotation, anchor = self.rotation[index], self.anchor[index]
        if rng is not None:
            similarity = CropSimilarity.draw(rng, len(index), self.augmentation, self.crop_size)
            images = photometric(similarity.images(images), rng, self.augmentation)
            landmarks = similarity.points(landmarks)
            intrinsics = similarity.intrinsics(intrinsics)
            rotation, anchor = similarity.pose(rotation, anchor)
        skin = np.stack(
            [face_oval_mask(points, self.crop_size, self.skin_size) for points in landmarks.numpy()]
        )
        batch = CropBatch(
            images=images,
            landmarks=landmarks,
            intrinsics=intrinsics,
            skin=torch.from_numpy(skin)[:, None],
            identity=self.identity[index],
            expression=self.expression[index],
            rotation=rotation,
            anchor=anchor,
            pair=torch.arange(len(index)) if pair is None else torch.from_numpy(pair),
        )
        if rng is None or self.mirror is None:
            return batch
        flip = torch.from_numpy(rng.random(len(index)) < 0.5)
        first_of_pair = torch.minimum(torch.arange(len(index)), batch.pair)
        return mirrored(batch, self.mirror, flip[first_of_pair])

    def draw(self, rng: np.random.Generator, count: int, group_balance: float = 0.0) -> np.ndarray:
        """(count,) random crop indices, each drawn with a probability proportional to
        ``n ** -group_balance``, n the number of crops of its clip (1 for a photo).

        0 draws every crop alike, so a clip's many near-identical frames outweigh the photos' many
        people; 1 draws every clip or photo alike. Identity swaps, when there are some, make
        :attr:`swap_share` of the draws, weighed among themselves alike. Without replacement where
        there are enough crops.
        """
        if not 0.0 <= group_balance <= 1.0:
            raise ValueError(f"group_balance must lie in [0, 1], got {group_balance}")
        weight = self._group_sizes**-group_balance
        if self.swap_share:
            swapped = weight * self.synthetic
            weight = (1 - self.swap_share) * (weight - swapped) / (weight - swapped).sum()
            weight += self.swap_share * swapped / swapped.sum()
        return rng.choice(len(self), count, replace=len(self) < count, p=weight / weight.sum())

    def sample(self, rng: np.random.Generator, batch_size: int, group_balance: float = 0.0) -> CropBatch:
        """A random augmented batch of B crops: B/2 drawn by :meth:`draw`, each with a partner from
        its clip."""
        if batch_size < 2 or batch_size % 2:
            raise ValueError(f"batch_size must be even and at least 2, got {batch_size}")
        half = batch_size // 2
        first = self.draw(rng, half, group_balance)
        partners = []
        for index in first:
            members = self._members[int(self.groups[index])]
            others = members[members != index]
            partners.append(rng.choice(others) if len(others) else rng.integers(len(self)))
        indices = np.concatenate([first, np.array(partners)])
        pair = np.concatenate([np.arange(half, batch_size), np.arange(half)])
        same = self.groups[indices] == self.groups[indices[pair]]
        return self.batch(indices, np.where(same, pair, np.arange(batch_size)), rng)


def _read_cache(path: Path, split: str, builder: str) -> dict:
    """The per-crop arrays of a cache file kept to ``split``, and its ``crop_size``."""
    if not path.is_file():
        raise FileNotFoundError(f"crop cache {path} is missing; build it with {builder}")
    data = np.load(path)
    held_out = np.array([is_validation(s) for s in data["source"]], dtype=bool)
    keep = np.ones_like(held_out) if split == "all" else held_out == (split == "validation")
    return {name: data[name][keep] for name in CACHE_FIELDS} | {"crop_size": int(data["crop_size"])}


def mirrored(batch: CropBatch, mirror: FaceMirror, flip: Tensor) -> CropBatch:
    """``batch`` with the crops where ``flip`` (B,) bool is set flipped left to right: their pixels,
    skin masks, landmarks (renumbered) and camera, and the fitter's targets of the mirrored face."""
    size = batch.images.shape[-1]
    intrinsics = batch.intrinsics.clone()
    intrinsics[:, 0, 2] = size - intrinsics[:, 0, 2]

    def pick(plain: Tensor, flipped: Tensor) -> Tensor:
        return torch.where(flip.reshape(-1, *[1] * (plain.dim() - 1)), flipped, plain)

    return dataclasses.replace(
        batch,
        images=pick(batch.images, batch.images.flip(-1)),
        landmarks=pick(batch.landmarks, mirror.mirror_landmarks(batch.landmarks, size)),
        intrinsics=pick(batch.intrinsics, intrinsics),
        skin=pick(batch.skin, batch.skin.flip(-1)),
        identity=pick(batch.identity, mirror.mirror_identity(batch.identity)),
        expression=pick(batch.expression, mirror.mirror_expression(batch.expression)),
        rotation=pick(batch.rotation, mirror_angles(batch.rotation)),
        anchor=pick(batch.anchor, batch.anchor * torch.tensor(MIRROR_X)),
    )
