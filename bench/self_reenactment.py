"""Self-reenactment against ground truth: each clip's first frame driven by the clip itself.

At the clip's own size, its first ``limit`` frames: every method gets frame 0 as the source and all
the frames as the driving, and frames 1.. are scored against the true frames (frame 0 is the
source itself, which ``static`` and ``warp2d`` give back exactly). Face: L1/PSNR/SSIM inside the
face region found on the TRUE frame (:mod:`bench.face_regions`, never the output's own mask); full:
over the whole frame. Every output frame is scored, held ones included (counted). Per clip the
mean over frames; over clips the mean and the worst clip by face PSNR, per method.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.clips import clip_length, read_clip
from bench.contact_sheet import tile
from bench.face_regions import DETECTORS, FaceRegion, FaceRegions
from bench.image_metrics import fidelity
from bench.reenact_methods import Method

KEYS = ("l1", "psnr", "ssim")


def _means(scores: list[dict[str, float]]) -> dict[str, float] | None:
    return {key: float(np.mean([s[key] for s in scores])) for key in KEYS} if scores else None


def _score_method(
    method: Method, frames: list, regions: list[FaceRegion], middle: int, bar: tqdm
) -> tuple[dict, Image.Image]:
    """One method on one clip: its mean face and full scores, held frames, and its middle-frame tile."""
    source = frames[0][2]
    face, full, held, middle_tile = [], [], 0, None
    for index, (output, (_, _, truth)) in enumerate(zip(method(source, iter(frames)), frames, strict=True)):
        if output.image.shape != source.shape:
            raise ValueError(f"a method gave a {output.image.shape} frame for a {source.shape} source")
        held += output.held
        if index == middle:
            middle_tile = tile(output.image)
        if index == 0:
            continue
        mask = regions[index].mask
        if mask is not None:
            face.append(fidelity(output.image, truth, mask))
        full.append(fidelity(output.image, truth, None))
        bar.update()
    return {"face": _means(face), "full": _means(full), "held_frames": held}, middle_tile


def score_clip(
    path: Path, methods: dict[str, Method], limit: int, finder: FaceRegions, bar: tqdm
) -> tuple[dict, list[Image.Image]]:
    """One clip: ``(report, contact-sheet tiles: the true middle frame and each method's)``."""
    frames = read_clip(path, limit)
    if len(frames) < 2:
        raise ValueError(f"{path}: self-reenactment needs at least 2 frames")
    bar.set_description(f"{path.stem[:24]} face regions")
    regions = [finder(truth) for _, _, truth in frames]
    bar.update(len(frames) - 1)
    middle = len(frames) // 2
    tiles = [tile(frames[middle][2], regions[middle].outline)]
    scores = {}
    for name, method in methods.items():
        bar.set_description(f"{path.stem[:24]} {name}")
        scores[name], middle_tile = _score_method(method, frames, regions, middle, bar)
        tiles.append(middle_tile)
    used = Counter(region.detector for region in regions[1:])
    report = {
        "path": str(path),
        "size": list(frames[0][2].shape[:2]),
        "frames": len(frames),
        "scored_frames": len(frames) - 1,
        "face_region_frames": {detector: used[detector] for detector in DETECTORS},
        "methods": scores,
    }
    return report, tiles


def summarise(clips: dict[str, dict]) -> dict:
    """Mean over clips and the worst clip by face PSNR, per method (over clips with a face region)."""
    names = next(iter(clips.values()))["methods"]
    mean, worst = {}, {}
    for name in names:
        runs = {
            clip: report["methods"][name] for clip, report in clips.items() if report["methods"][name]["face"]
        }
        mean[name] = {
            part: {key: float(np.mean([run[part][key] for run in runs.values()])) for key in KEYS}
            for part in ("face", "full")
        }
        clip = min(runs, key=lambda c: runs[c]["face"]["psnr"])
        worst[name] = {"clip": clip, **runs[clip]}
    return {"mean": mean, "worst": worst}


def self_reenactment(
    paths: list[Path], methods: dict[str, Method], limit: int
) -> tuple[dict, list[tuple[str, list[Image.Image]]]]:
    """Every clip scored by every method: the report and the contact-sheet rows."""
    total = sum((clip_length(path, limit) - 1) * (1 + len(methods)) for path in paths)
    clips, rows = {}, []
    with FaceRegions() as finder, tqdm(total=total, unit="frame", desc="self-reenactment") as bar:
        for path in paths:
            clips[path.stem], tiles = score_clip(path, methods, limit, finder, bar)
            rows.append((path.stem, tiles))
    return {"clips": clips, **summarise(clips)}, rows
