"""DCNet's training pairs, computed once: same-identity (source frame, driving frame) of a clip.

    python -m jr2net.training.dcnet_pairs --out out/cache/dcnet_pairs

For every clip of the training media (``../shared/train/videos``): every frame reconstructed in
video mode (tracking, fitting, smoothing: what the live path does); ``--sources-per-clip`` evenly
spaced frames with a face become sources (light and albedo estimated, prepared as the reenactor
prepares a photo); each is driven by ``--pairs-per-source`` random other frames of its clip with
relative motion from the source frame itself (so the target is the driving frame's own pose and
expression on the source's identity), the warp pinned to the frames' landmarks as the live
path pins it (:mod:`jr2net.landmark_pinning`). A pair holds DCNet's inputs on the source's crop window
(:mod:`jr2net.dense_conditions`) and the true driving frame on that window.

Written to ``--out`` as memory-mappable ``.npy`` arrays (S = ``--crop-size``):
``textures`` (N_src, 9, S, S) fp16 (the source crop ‖ light ‖ normals), ``conditions``
(N, 12, S, S) fp16, ``grids`` (N, S, S, 2) fp16, ``truths`` (N, 3, S, S) uint8, ``pair_source``
(N,) int32, the rendered target ``renders`` (N, 3, S, S) and source ``source_renders``
(N_src, 3, S, S) uint8 (albedo · shading: the inputs of Table 5's rendered-image variant), and
``meta.json`` (the counts, the sources' clips and frames, which sources are validation people:
:func:`jr2net.training.crop_dataset.is_validation`, the command).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from jr2net.albedo import estimate_appearance
from jr2net.dense_conditions import CROP_SCALE, CROP_SIZE, SourceCrop, dense_conditions
from jr2net.face_model import FaceModel
from jr2net.media import iter_video_frames
from jr2net.nets.dcnet import CONDITION_CHANNELS, TEXTURE_CHANNELS
from jr2net.params import FaceParams
from jr2net.provenance import checkout_commit
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import Controls, Reenactor, TargetWarp, prepare_source
from jr2net.training.crop_cache import TRAIN_MEDIA
from jr2net.training.crop_dataset import is_validation

DEFAULT_PAIRS = Path("out/cache/dcnet_pairs")
MIN_FRAME_GAP = 5  # a driving frame at least this many frames from its source


@dataclass(frozen=True)
class PairConfig:
    """What the pair cache holds."""

    sources_per_clip: int = 4
    pairs_per_source: int = 8
    max_frames: int = 200  # the first frames of each clip that are reconstructed
    crop_size: int = CROP_SIZE
    crop_scale: float = CROP_SCALE
    seed: int = 0
    max_clips: int | None = None


@dataclass(frozen=True)
class ClipFace:
    """One clip frame with a face: RGB uint8 (H, W, 3), its FaceParams, its (478, 3) landmarks."""

    image: np.ndarray
    params: FaceParams
    landmarks: np.ndarray


class PairWriter:
    """Preallocated memory-mapped arrays, filled source by source and pair by pair."""

    def __init__(self, out: Path, sources: int, pairs: int, size: int) -> None:
        out.mkdir(parents=True, exist_ok=True)

        def array(name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
            return np.lib.format.open_memmap(out / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)

        self.textures = array("textures", (sources, len(TEXTURE_CHANNELS), size, size), np.float16)
        self.conditions = array("conditions", (pairs, len(CONDITION_CHANNELS), size, size), np.float16)
        self.grids = array("grids", (pairs, size, size, 2), np.float16)
        self.truths = array("truths", (pairs, 3, size, size), np.uint8)
        self.renders = array("renders", (pairs, 3, size, size), np.uint8)
        self.source_renders = array("source_renders", (sources, 3, size, size), np.uint8)
        self.pair_source = array("pair_source", (pairs,), np.int32)
        self.source_count = 0
        self.pair_count = 0

    def add_source(self, crop: SourceCrop, render: torch.Tensor) -> int:
        index = self.source_count
        self.textures[index] = crop.texture[0].numpy()
        self.source_renders[index] = _to_uint8(render[0])
        self.source_count += 1
        return index

    def add_pair(
        self,
        source: int,
        conditions: torch.Tensor,
        grid: torch.Tensor,
        truth: torch.Tensor,
        render: torch.Tensor,
    ) -> None:
        index = self.pair_count
        self.conditions[index] = conditions[0].numpy()
        self.grids[index] = grid[0].numpy()
        self.truths[index] = _to_uint8(truth[0])
        self.renders[index] = _to_uint8(render[0])
        self.pair_source[index] = source
        self.pair_count += 1

    def flush(self) -> None:
        arrays = (self.textures, self.conditions, self.grids, self.truths, self.renders, self.source_renders)
        for array in (*arrays, self.pair_source):
            array.flush()


def _to_uint8(image: torch.Tensor) -> np.ndarray:
    return (image.clamp(0, 1) * 255 + 0.5).byte().numpy()


def _image_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None] / 255.0


def _rendered(warp: TargetWarp, crop: SourceCrop) -> torch.Tensor:
    """(1, 3, S, S) the warp's target render (albedo · shading, 0 off the face) on the crop."""
    return crop.window.crop(warp.target.image, crop.size)


def reconstruct_clip(model: FaceModel, path: Path, max_frames: int) -> list[ClipFace]:
    """The first ``max_frames`` frames of a clip that have a face, reconstructed."""
    frames = []
    for index, time_s, image in iter_video_frames(path):
        if index >= max_frames:
            break
        frames.append((index, time_s, image))
    with Reconstructor(model, mode="video") as reconstructor:
        results = list(reconstructor.video(frames))
    return [
        ClipFace(frames[r.index][2], r.params, r.tracking.landmarks) for r in results if r.params is not None
    ]


def clip_pairs(
    model: FaceModel, path: Path, config: PairConfig, writer: PairWriter, rng: np.random.Generator
) -> list[dict]:
    """Add one clip's sources and pairs to ``writer``; returns the sources' descriptions."""
    faces = reconstruct_clip(model, path, config.max_frames)
    if len(faces) <= MIN_FRAME_GAP:
        return []
    count = min(config.sources_per_clip, len(faces))
    described = []
    for position in np.linspace(0, len(faces) - 1, count).round().astype(int):
        face = faces[position]
        appearance = estimate_appearance(model, face.params, face.image)
        params = face.params.replace(light=appearance.light[None], albedo=appearance.albedo[None])
        source = prepare_source(model, face.image, params, landmarks=face.landmarks)
        crop = SourceCrop.of(source, config.crop_size, config.crop_scale)
        reenactor = Reenactor(model, source)
        index = writer.add_source(crop, _rendered(reenactor.warp(params), crop))
        reenactor.target_params(params)  # the source frame is the relative-motion reference
        reenactor.reference_landmarks = face.landmarks[:, :2].astype(np.float64)
        choices = [k for k in range(len(faces)) if abs(k - position) >= MIN_FRAME_GAP]
        drivers = rng.choice(choices, size=min(config.pairs_per_source, len(choices)), replace=False)
        for driver in drivers:
            driving = faces[driver]
            target = reenactor.target_params(driving.params)
            warp = reenactor.pin(reenactor.warp(target), Controls(), driving.landmarks)
            dense = dense_conditions(warp, crop)
            truth = crop.window.crop(_image_tensor(driving.image), config.crop_size)
            writer.add_pair(index, dense.conditions, dense.grid, truth, _rendered(warp, crop))
        described.append(
            {
                "clip": path.name,
                "frame_rank": int(position),
                "validation": is_validation(path.name),
                "pairs": len(drivers),
            }
        )
    return described


def build_pairs(
    config: PairConfig, out: Path, videos: Path = TRAIN_MEDIA / "videos", command: str = ""
) -> dict:
    """Build the pair cache in ``out``; returns its ``meta.json`` content."""
    paths = sorted(videos.glob("*.mp4"))[: config.max_clips]
    if not paths:
        raise FileNotFoundError(f"no .mp4 clips in {videos}")
    model = FaceModel.load()
    most_sources = len(paths) * config.sources_per_clip
    writer = PairWriter(out, most_sources, most_sources * config.pairs_per_source, config.crop_size)
    rng = np.random.default_rng(config.seed)
    sources: list[dict] = []
    with torch.no_grad(), tqdm(paths, unit="clip", desc="DCNet pairs") as bar:
        for path in bar:
            bar.set_postfix(clip=path.stem[:20], pairs=writer.pair_count)
            sources += clip_pairs(model, path, config, writer, rng)
    writer.flush()
    meta = {
        "config": {**asdict(config)},
        "sources": sources,
        "source_count": writer.source_count,
        "pair_count": writer.pair_count,
        "commit": checkout_commit(),
        "command": command,
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_PAIRS)
    parser.add_argument("--videos", type=Path, default=TRAIN_MEDIA / "videos")
    parser.add_argument("--sources-per-clip", type=int, default=PairConfig.sources_per_clip)
    parser.add_argument("--pairs-per-source", type=int, default=PairConfig.pairs_per_source)
    parser.add_argument("--max-frames", type=int, default=PairConfig.max_frames)
    parser.add_argument("--crop-size", type=int, default=PairConfig.crop_size)
    parser.add_argument("--max-clips", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    config = PairConfig(
        sources_per_clip=args.sources_per_clip,
        pairs_per_source=args.pairs_per_source,
        max_frames=args.max_frames,
        crop_size=args.crop_size,
        seed=args.seed,
        max_clips=args.max_clips,
    )
    meta = build_pairs(
        config, args.out, args.videos, " ".join(["python -m jr2net.training.dcnet_pairs", *sys.argv[1:]])
    )
    print(f"wrote {meta['pair_count']} pairs of {meta['source_count']} sources to {args.out}")


if __name__ == "__main__":
    main()
