"""Aligned face crops, MediaPipe landmarks and fitter targets from the training media, cached once.

    python -m jr2net.training.crop_cache --out out/cache/recnet_crops.npz

Each clip of ``<train>/videos`` gives up to ``frames_per_clip`` evenly spaced frames, each photo of
``<train>/photos`` one crop. Every kept frame is tracked (MediaPipe, image mode, largest face),
cut to an aligned (S, S) crop (:mod:`jr2net.alignment`), and fitted by the landmark fitter: the
identity jointly over a clip's first frames with a face, each frame's expression, pose and focal
warm-started; a photo is fitted alone. Frames without a face are skipped and counted.

The cache is one ``.npz`` of arrays (N = crops):

- ``crops`` (N, S, S, 3) uint8, ``landmarks`` (N, 478, 2) float32 crop pixels,
- ``matrices`` (N, 2, 3) float64 image-to-crop affine maps, ``image_sizes`` (N, 2) int (H, W),
- ``identity`` (N, I) and ``frame`` (N, E + 7) float32 fitter results (expression and
  image-camera pose, :mod:`jr2net.training.cache_frame`), ``group`` (N,) int (one per clip or
  photo), ``source`` (N,) str (the file's name), ``crop_size`` () int.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from jr2net.alignment import align_face
from jr2net.assets import repository_root
from jr2net.face_model import FaceModel
from jr2net.fitting import LandmarkFitter
from jr2net.media import iter_video_frames, probe_video, read_image
from jr2net.params import FaceParams
from jr2net.tracking import Tracker, Tracking
from jr2net.training.cache_frame import frame_row
from jr2net.training.crop_dataset import is_validation

TRAIN_MEDIA = repository_root().parent / "shared" / "train"
DEFAULT_CACHE = Path("out/cache/recnet_crops.npz")


@dataclass(frozen=True)
class CropCacheConfig:
    """What the cache holds: frames per clip, identity frames per clip, crop size, optional limits."""

    frames_per_clip: int = 96
    identity_frames: int = 5
    crop_size: int = 224
    max_clips: int | None = None
    max_photos: int | None = None


@dataclass
class CachedCrop:
    """One entry of the cache (see the module's docstring for the fields)."""

    crop: np.ndarray
    landmarks: np.ndarray
    matrix: np.ndarray
    image_size: tuple[int, int]
    identity: np.ndarray
    frame: np.ndarray
    group: int
    source: str


def _evenly_spaced(count: int, wanted: int) -> set[int]:
    return {round(i * (count - 1) / max(wanted - 1, 1)) for i in range(min(count, wanted))}


def cached_crop(
    image: np.ndarray,
    tracking: Tracking,
    params: FaceParams,
    group: int,
    source: str,
    crop_size: int,
) -> CachedCrop:
    """The aligned crop of a tracked face with its landmarks in crop pixels and its targets: the
    identity and frame row of FaceParams (batch of one) in the image camera."""
    crop = align_face(image, tracking.landmarks, crop_size)
    return CachedCrop(
        crop=crop.image,
        landmarks=crop.to_crop(tracking.landmarks[:, :2].astype(np.float64)).astype(np.float32),
        matrix=crop.matrix,
        image_size=tracking.image_size,
        identity=params.identity[0].numpy(),
        frame=frame_row(params),
        group=group,
        source=source,
    )


def _crop_samples(
    images: list[np.ndarray],
    trackings: list[Tracking],
    fitter: LandmarkFitter,
    group: int,
    source: str,
    config: CropCacheConfig,
) -> list[CachedCrop]:
    """Fit the identity over the first frames, then every frame; one sample per frame with a face."""
    faces = [(image, t) for image, t in zip(images, trackings, strict=True) if t.face]
    if not faces:
        return []
    first = fitter.fit_identity([t for _, t in faces[: config.identity_frames]])
    identity, samples, previous = first[0].identity, [], None
    for index, (image, tracking) in enumerate(faces):
        params = first[index] if index < len(first) else fitter.fit_frame(tracking, identity, previous)
        previous = params
        samples.append(cached_crop(image, tracking, params, group, source, config.crop_size))
    return samples


def clip_frames(path: Path, wanted: int) -> list[np.ndarray]:
    """``wanted`` evenly spaced frames of a clip (all of them when it has fewer)."""
    count = probe_video(path).frame_count or sum(1 for _ in iter_video_frames(path))
    keep = _evenly_spaced(count, wanted)
    return [image for index, _, image in iter_video_frames(path) if index in keep]


def split_images(train_root: Path, frames_per_clip: int, split: str) -> list[tuple[str, np.ndarray]]:
    """(name, RGB image) of every photo and ``frames_per_clip`` evenly spaced frames of every clip
    of one split (``train`` or ``validation``, by person: :func:`~jr2net.training.crop_dataset.
    is_validation`), named ``<file>`` or ``<file>#<k>``."""
    if split not in ("train", "validation"):
        raise ValueError(f"unknown split {split!r}; choose train or validation")
    wanted = split == "validation"
    images = []
    for path in sorted((train_root / "videos").glob("*.mp4")):
        if is_validation(path.name) == wanted:
            images += [
                (f"{path.name}#{k}", image) for k, image in enumerate(clip_frames(path, frames_per_clip))
            ]
    for path in sorted((train_root / "photos").glob("*.jpg")):
        if is_validation(path.name) == wanted:
            images.append((path.name, read_image(path)))
    return images


def build_crop_cache(
    train_root: Path, output: Path, model: FaceModel, config: CropCacheConfig = CropCacheConfig()
) -> dict[str, int]:
    """Build the cache at ``output`` from ``train_root``'s videos and photos; returns counts."""
    clips = sorted((train_root / "videos").glob("*.mp4"))[: config.max_clips]
    photos = sorted((train_root / "photos").glob("*.jpg"))[: config.max_photos]
    if not clips and not photos:
        raise FileNotFoundError(f"no training media under {train_root} (expected videos/*.mp4, photos/*.jpg)")
    fitter = LandmarkFitter(model)
    samples: list[CachedCrop] = []
    skipped = 0
    with Tracker(mode="image") as tracker, tqdm(total=len(clips) + len(photos), desc="crop cache") as bar:
        for group, path in enumerate([*clips, *photos]):
            images = (
                clip_frames(path, config.frames_per_clip) if path.suffix == ".mp4" else [read_image(path)]
            )
            trackings = [tracker.track(image) for image in images]
            skipped += sum(not t.face for t in trackings)
            samples += _crop_samples(images, trackings, fitter, group, path.name, config)
            bar.update()
    if not samples:
        raise ValueError(f"no face found in any of the training media under {train_root}")
    write_cache(samples, output, config.crop_size)
    return {"crops": len(samples), "clips": len(clips), "photos": len(photos), "frames_without_face": skipped}


def write_cache(samples: list[CachedCrop], output: Path, crop_size: int) -> None:
    """Write ``samples`` as a cache ``.npz`` at ``output`` (whole or not at all)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_suffix(".partial.npz")
    np.savez(
        partial,
        crops=np.stack([s.crop for s in samples]),
        landmarks=np.stack([s.landmarks for s in samples]),
        matrices=np.stack([s.matrix for s in samples]),
        image_sizes=np.array([s.image_size for s in samples]),
        identity=np.stack([s.identity for s in samples]).astype(np.float32),
        frame=np.stack([s.frame for s in samples]).astype(np.float32),
        group=np.array([s.group for s in samples]),
        source=np.array([s.source for s in samples]),
        crop_size=np.array(crop_size),
    )
    partial.replace(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=TRAIN_MEDIA, help="folder with videos/ and photos/")
    parser.add_argument("--out", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--frames-per-clip", type=int, default=CropCacheConfig.frames_per_clip)
    args = parser.parse_args()
    torch.set_num_threads(1)
    counts = build_crop_cache(
        args.train, args.out, FaceModel.load(), CropCacheConfig(frames_per_clip=args.frames_per_clip)
    )
    print(f"wrote {args.out}: {counts}")


if __name__ == "__main__":
    main()
