"""The live smoothing's trade: how much jitter each One-Euro setting removes, and how much lag it adds.

    python -m bench.live_smoothing --out out/bench_live_smoothing.json

Each clip is reconstructed as the live path does it (video mode, the live fitter), once without
smoothing and once per setting (the fitter warm-starts from the smoothed frame, so each setting is
its own pass). A frame's motion is its 68 model landmarks on the image (pixels), in units of the
clip's median inter-ocular distance (IOD). Per setting and clip:

- ``jitter``: the mean absolute second difference of those points (% IOD per frame²), the shake a
  viewer sees on a still face; ``jitter_ratio``: over the unsmoothed pass's.
- ``lag_ms``: the delay τ at which the unsmoothed points, delayed by τ, best match the smoothed ones
  (least squares, τ in steps of 1 ms, linear interpolation between frames): what the setting adds
  to the motion lag of ``bench.e2e_latency``.

Clips: ``--clips train`` (training people: where a setting may be chosen), ``held-out`` (the
shared clips and the validation people: where it is reported).
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.clips import TRAINING_VIDEOS, read_clip, shared_clips, validation_clips
from bench.timing import write_report
from jr2net.face_model import FaceModel
from jr2net.geometry import face_geometry
from jr2net.realtime.reenactment import LIVE_FITTER, LIVE_SMOOTHING
from jr2net.reconstruct import Reconstructor
from jr2net.smoothing import OneEuroConfig, jitter
from jr2net.training.crop_dataset import is_validation

MAX_LAG_MS = 200
OUTER_EYE_CORNERS = (36, 45)  # of the 68 landmarks


def candidate_settings() -> dict[str, OneEuroConfig]:
    """The live setting and its neighbours: no lead, faster rest cut-offs, a stronger speed term,
    a shorter and a longer lead."""
    plain = replace(LIVE_SMOOTHING, lead=0.0)
    return {
        "live": LIVE_SMOOTHING,
        "4Hz": plain,
        "6Hz": replace(plain, min_cutoff=6.0),
        "8Hz": replace(plain, min_cutoff=8.0),
        "4Hz_beta1.5": replace(plain, beta=1.5),
        "lead1": replace(LIVE_SMOOTHING, lead=1.0),
        "lead3": replace(LIVE_SMOOTHING, lead=3.0),
    }


def landmark_track(model: FaceModel, frames: list, smoothing: OneEuroConfig | None) -> np.ndarray | None:
    """(T, 68, 2) the 68 model landmarks on the image for each frame, reconstructed live-style;
    None when a frame has no face (the series would have a gap)."""
    height, width = frames[0][2].shape[:2]
    points = []
    with Reconstructor(model, mode="video", smoothing=smoothing, fitter=LIVE_FITTER) as reconstructor:
        for result in reconstructor.video(iter(frames)):
            if result.params is None:
                return None
            with torch.no_grad():
                screen = face_geometry(model, result.params, height, width).screen
            points.append(screen[0, model.landmarks68, :2].numpy())
    return np.stack(points)


def delayed(track: np.ndarray, delay_frames: float) -> np.ndarray:
    """``track`` (T, ...) delayed by a fractional number of frames (the first frame held)."""
    times = np.arange(len(track)) - delay_frames
    before = np.clip(np.floor(times).astype(int), 0, len(track) - 1)
    after = np.clip(before + 1, 0, len(track) - 1)
    weight = np.clip(times - np.floor(times), 0, 1).reshape(-1, *([1] * (track.ndim - 1)))
    weight = np.where((times < 0).reshape(weight.shape), 0.0, weight)
    return (1 - weight) * track[before] + weight * track[after]


def lag_ms(raw: np.ndarray, smoothed: np.ndarray, frame_ms: float) -> float:
    """The delay (ms) of ``raw`` that best matches ``smoothed``, both (T, 68, 2)."""
    delays = np.arange(0, MAX_LAG_MS + 1)
    errors = [float(((delayed(raw, delay / frame_ms) - smoothed) ** 2).mean()) for delay in delays]
    return float(delays[int(np.argmin(errors))])


def clip_paths(which: str) -> list[Path]:
    """The clips of ``train`` (training people) or ``held-out`` (shared clips, validation people)."""
    if which == "held-out":
        return shared_clips() + validation_clips()
    return [path for path in sorted(TRAINING_VIDEOS.glob("*.mp4")) if not is_validation(path.name)][:8]


def jitter_percent(track: np.ndarray, iod: float) -> float:
    """The jitter of a (T, 68, 2) track in % of the inter-ocular distance ``iod`` (px)."""
    return 100 * jitter(torch.from_numpy(track.reshape(len(track), -1) / iod))


def measure(model: FaceModel, path: Path, frame_count: int, settings: dict[str, OneEuroConfig]) -> dict:
    """One clip's jitter and lag for each setting, beside the unsmoothed pass."""
    frames = read_clip(path, frame_count)
    frame_ms = 1000 * (frames[-1][1] - frames[0][1]) / max(len(frames) - 1, 1)
    raw = landmark_track(model, frames, None)
    if raw is None:
        return {"clip": path.stem, "skipped": "a frame without a face"}
    corners = raw[:, list(OUTER_EYE_CORNERS)]
    iod = float(np.median(np.linalg.norm(corners[:, 0] - corners[:, 1], axis=-1)))
    raw_jitter = jitter_percent(raw, iod)
    row: dict = {"clip": path.stem, "frames": len(frames), "frame_ms": frame_ms, "iod_px": iod}
    row["unsmoothed"] = {"jitter": raw_jitter}
    for name, config in settings.items():
        track = landmark_track(model, frames, config)
        if track is None:
            row[name] = {"skipped": "a frame without a face"}
            continue
        value = jitter_percent(track, iod)
        row[name] = {
            "jitter": value,
            "jitter_ratio": value / raw_jitter,
            "lag_ms": lag_ms(raw, track, frame_ms),
            "config": asdict(config),
        }
    return row


def summary(rows: list[dict], settings: dict[str, OneEuroConfig]) -> dict:
    """Per setting, the median over clips of jitter, jitter ratio and lag."""
    measured = [row for row in rows if "skipped" not in row]
    result = {}
    for name in settings:
        values = [row[name] for row in measured if "skipped" not in row[name]]
        result[name] = {
            key: float(np.median([value[key] for value in values]))
            for key in ("jitter", "jitter_ratio", "lag_ms")
        }
    result["unsmoothed"] = {"jitter": float(np.median([row["unsmoothed"]["jitter"] for row in measured]))}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("out/bench_live_smoothing.json"))
    parser.add_argument("--clips", choices=("train", "held-out"), default="held-out")
    parser.add_argument("--frames", type=int, default=150, help="the first frames of each clip")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = FaceModel.load()
    settings = candidate_settings()
    rows = []
    for path in tqdm(clip_paths(args.clips), desc="clips", unit="clip"):
        rows.append(measure(model, path, args.frames, settings))
        row = rows[-1]
        if "skipped" not in row:
            print(
                row["clip"],
                " ".join(
                    f"{name}: jitter ×{row[name]['jitter_ratio']:.2f} lag {row[name]['lag_ms']:.0f} ms"
                    for name in settings
                    if "skipped" not in row[name]
                ),
                flush=True,
            )
    medians = summary(rows, settings)
    write_report(args.out, rows, [torch.device("cpu")], {"clips": args.clips, "median": medians})
    for name, values in medians.items():
        print(name, " ".join(f"{key} {value:.2f}" for key, value in values.items()))


if __name__ == "__main__":
    main()
