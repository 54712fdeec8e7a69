"""Synthetic training crops: real training faces rendered again with another training face's shape.

    python -m jr2net.training.identity_swap         # out/cache/recnet_swaps.npz
    python -m jr2net.training.train_recnet --set swaps=out/cache/recnet_swaps.npz

RecNet fits the people it was trained on far better than new ones: from a few hundred people it
learns who someone is, and the shape that goes with them, more than the shape it sees. Here each
training photo and a few frames of each training clip are tracked and fitted (the landmark fitter,
then light and per-vertex albedo, :mod:`jr2net.albedo`), and the geometric reenactor
(:class:`jr2net.reenact.Reenactor`) renders the face again with the identity of another training
face (moved 50-100 % of the way from its own), and for ``--expression-share`` of the variants (half
by default) with that face's expression too, optionally turned by a few degrees (``--pitch``,
``--yaw``): the same skin, hair, light and background on another shape, in another pose. The render
is tracked again and cropped like any training image; its targets are the parameters it was
rendered with, exact by construction. Variants in which MediaPipe finds no face are skipped and
counted. Only the training split (:func:`jr2net.training.crop_dataset.is_validation`) is used, for
faces and for shapes, so no validation person is seen. The file has the crop cache's format
(:mod:`jr2net.training.crop_cache`).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from jr2net.albedo import estimate_appearance
from jr2net.face_model import FaceModel
from jr2net.fitting import LandmarkFitter
from jr2net.params import FaceParams
from jr2net.reenact import Reenactor, prepare_source
from jr2net.tracking import Tracker, Tracking
from jr2net.training.crop_cache import TRAIN_MEDIA, CachedCrop, cached_crop, split_images, write_cache

DEFAULT_SWAPS = Path("out/cache/recnet_swaps.npz")


@dataclass(frozen=True)
class SwapConfig:
    """How many variants of which faces, and how far their shapes move."""

    variants: int = 3
    frames_per_clip: int = 4
    least_blend: float = 0.5
    expression_share: float = 0.5
    pitch_degrees: float = 0.0
    yaw_degrees: float = 0.0
    crop_size: int = 224
    seed: int = 0
    max_sources: int | None = None


@dataclass(frozen=True)
class FittedFace:
    """A training face: its image, tracking and fitted parameters (with light and albedo)."""

    image: np.ndarray
    tracking: Tracking
    params: FaceParams
    source: str


def fit_face(
    model: FaceModel, fitter: LandmarkFitter, tracker: Tracker, image: np.ndarray, source: str
) -> FittedFace | None:
    """Track and fit one image (None without a face)."""
    tracking = tracker.track(image)
    if not tracking.face:
        return None
    (params,) = fitter.fit_identity([tracking])
    appearance = estimate_appearance(model, params, image)
    params = params.replace(light=appearance.light[None], albedo=appearance.albedo[None])
    return FittedFace(image, tracking, params, source)


def swapped_target(
    face: FittedFace, donor: FittedFace, blend: float, with_expression: bool, turn: torch.Tensor
) -> FaceParams:
    """``face``'s parameters with its identity moved ``blend`` of the way to ``donor``'s (and the
    donor's expression when ``with_expression``), its Euler angles moved by ``turn`` (3,) radians:
    the FaceParams to render, in the image camera."""
    identity = face.params.identity + blend * (donor.params.identity - face.params.identity)
    expression = donor.params.expression if with_expression else face.params.expression
    rotation = face.params.rotation + turn.to(face.params.rotation)
    return face.params.replace(identity=identity, expression=expression, rotation=rotation)


def _turn(rng: np.random.Generator, limits: np.ndarray) -> torch.Tensor:
    """(3,) Euler angles (radians) drawn within ± ``limits`` (degrees); none drawn for no limits,
    so swaps without turns draw the same numbers as before turns existed."""
    return torch.from_numpy(np.radians(rng.uniform(-1, 1, 3) * limits if limits.any() else limits))


def build_swaps(
    train_root: Path, output: Path, model: FaceModel, config: SwapConfig = SwapConfig()
) -> dict[str, int]:
    """Write the synthetic crops of ``train_root``'s training split to ``output``; returns counts."""
    images = split_images(train_root, config.frames_per_clip, "train")[: config.max_sources]
    if not images:
        raise FileNotFoundError(f"no training-split media under {train_root} (videos/*.mp4, photos/*.jpg)")
    rng = np.random.default_rng(config.seed)
    limits = np.array([config.pitch_degrees, config.yaw_degrees, 0.0])
    fitter = LandmarkFitter(model)
    samples: list[CachedCrop] = []
    with Tracker(mode="image") as tracker:
        faces = [
            face
            for name, image in tqdm(images, desc="fit training faces")
            if (face := fit_face(model, fitter, tracker, image, name)) is not None
        ]
        if len(faces) < 2:
            raise ValueError(f"identity swaps need at least two training faces, found {len(faces)}")
        lost = 0
        with tqdm(total=len(faces) * config.variants, desc="identity swaps") as bar:
            for index, face in enumerate(faces):
                reenactor = Reenactor(model, prepare_source(model, face.image, face.params))
                for variant in range(config.variants):
                    other = int(rng.integers(len(faces) - 1))
                    donor = faces[other + (other >= index)]
                    target = swapped_target(
                        face,
                        donor,
                        rng.uniform(config.least_blend, 1.0),
                        rng.random() < config.expression_share,
                        _turn(rng, limits),
                    )
                    rendered = reenactor.render(target).image
                    tracking = tracker.track(rendered)
                    bar.update()
                    if not tracking.face:
                        lost += 1
                        continue
                    samples.append(
                        cached_crop(
                            rendered,
                            tracking,
                            target,
                            len(samples),
                            f"{face.source}#swap{variant}",
                            config.crop_size,
                        )
                    )
    if not samples:
        raise ValueError("MediaPipe found no face in any identity swap")
    write_cache(samples, output, config.crop_size)
    return {"faces": len(faces), "crops": len(samples), "variants_without_face": lost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=Path, default=TRAIN_MEDIA, help="folder with videos/ and photos/")
    parser.add_argument("--out", type=Path, default=DEFAULT_SWAPS)
    parser.add_argument("--variants", type=int, default=SwapConfig.variants, help="swaps per face")
    parser.add_argument("--frames-per-clip", type=int, default=SwapConfig.frames_per_clip)
    parser.add_argument(
        "--expression-share",
        type=float,
        default=SwapConfig.expression_share,
        help="share of the swaps that take the donor's expression too",
    )
    parser.add_argument(
        "--pitch", type=float, default=SwapConfig.pitch_degrees, help="turn heads by up to ± this (degrees)"
    )
    parser.add_argument(
        "--yaw", type=float, default=SwapConfig.yaw_degrees, help="turn heads by up to ± this (degrees)"
    )
    parser.add_argument("--seed", type=int, default=SwapConfig.seed)
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = SwapConfig(
        variants=args.variants,
        frames_per_clip=args.frames_per_clip,
        expression_share=args.expression_share,
        pitch_degrees=args.pitch,
        yaw_degrees=args.yaw,
        seed=args.seed,
    )
    print(f"wrote {args.out}: {build_swaps(args.train, args.out, FaceModel.load(), config)}")


if __name__ == "__main__":
    main()
