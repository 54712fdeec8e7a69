"""Tracking and fitting: latency per frame, and landmark accuracy against dlib.

    python -m bench.tracking --out out/bench_tracking.json

Latency: MediaPipe tracking (video mode) and the warm-started fitter, per 640×480 frame of a
shared talking clip (letterboxed), median and p99 ms. Accuracy: on the shared photos, the NME
(mean point error / outer-eye-corner distance) of ``landmarks68_2d`` against dlib's 68-point
predictor (``dlib-bin`` + ``face-recognition-models``, install with ``pip install -e .[bench]``),
beside the anchor of DESIGN.md: MediaPipe's own 478 points, each dlib point taken as its nearest
MediaPipe point. Frames where dlib finds no face are listed, not counted.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from bench.timing import write_report
from jr2net.assets import repository_root
from jr2net.dlib_reference import DlibModels
from jr2net.estimators import FrameEstimator
from jr2net.face_model import FaceModel
from jr2net.fitting import LandmarkFitter
from jr2net.media import iter_video_frames, read_image
from jr2net.reconstruct import Reconstructor, landmarks68_2d
from jr2net.tracking import Tracker

MEDIA = repository_root().parent / "shared" / "media"
CLIP = MEDIA / "liveportrait" / "driving" / "d12.mp4"
PHOTO_GLOBS = ("liveportrait/source/*.jpg", "liveportrait/driving/*.jpg", "deep3dfacerecon/*.jpg")


def letterbox(image: np.ndarray, height: int = 480, width: int = 640) -> np.ndarray:
    """Scale an RGB image to fit (height, width) and pad with grey, like a webcam frame."""
    from PIL import Image

    scale = min(height / image.shape[0], width / image.shape[1])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    resized = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
    canvas = np.full((height, width, 3), 96, np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = resized
    return canvas


def latency(model: FaceModel, frame_count: int) -> list[dict]:
    frames = [letterbox(image) for index, _, image in iter_video_frames(CLIP) if index < frame_count]
    fitter = LandmarkFitter(model)
    track_ms, fit_ms = [], []
    with Tracker(mode="video") as tracker:
        trackings = []
        for index, image in enumerate(frames):
            start = time.perf_counter()
            trackings.append(tracker.track(image, 40 * (index + 1)))
            track_ms.append((time.perf_counter() - start) * 1e3)
    faces = [t for t in trackings if t.face]
    identity = fitter.fit_identity(faces[:5])[0].identity
    previous = None
    for tracking in faces:
        start = time.perf_counter()
        previous = fitter.fit_frame(tracking, identity, previous)
        fit_ms.append((time.perf_counter() - start) * 1e3)
    runs = []
    for op, samples in (("tracker", track_ms[5:]), ("fitter_warm", fit_ms[1:])):
        runs.append(
            {
                "op": op,
                "size": "640x480",
                "median_ms": float(np.median(samples)),
                "p99_ms": float(np.percentile(samples, 99)),
                "repeats": len(samples),
            }
        )
    both = np.array(track_ms[5 : len(fit_ms) + 4]) + np.array(fit_ms[1 : len(track_ms) - 4])
    runs.append(
        {
            "op": "tracker+fitter",
            "size": "640x480",
            "median_ms": float(np.median(both)),
            "p99_ms": float(np.percentile(both, 99)),
            "repeats": len(both),
        }
    )
    return runs


def shared_photos() -> Iterator[tuple[str, np.ndarray]]:
    """The benchmark's photos of the shared media: (name relative to the media folder, RGB image)."""
    for path in sorted(p for pattern in PHOTO_GLOBS for p in MEDIA.glob(pattern)):
        yield str(path.relative_to(MEDIA)), read_image(path)


JAW_POINTS = 17  # dlib's first 17 of 68 points: the jaw line; the other 51 are the inner face


def landmark_errors(points: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """NME of (68, 2) image points against dlib's (68, 2): the mean point distance over the
    outer-eye-corner distance, over all points (``nme``), the jaw's (``jaw``) and the inner face's
    (``inner``)."""
    distances = np.linalg.norm(points - reference, axis=1) / np.linalg.norm(reference[36] - reference[45])
    return {
        "nme": float(distances.mean()),
        "jaw": float(distances[:JAW_POINTS].mean()),
        "inner": float(distances[JAW_POINTS:].mean()),
    }


def accuracy(
    model: FaceModel,
    estimator: FrameEstimator | None = None,
    images: Iterable[tuple[str, np.ndarray]] | None = None,
) -> dict:
    """NME against dlib, of the fitter or of ``estimator`` (e.g. RecNet), on named RGB ``images``
    (default: :func:`shared_photos`)."""
    try:
        dlib_models = DlibModels.load()
    except RuntimeError as error:
        raise SystemExit(f"{error} (or --skip-accuracy)") from error
    per_photo, skipped = [], []
    with Reconstructor(model, mode="image", estimator=estimator) as reconstructor:
        for name, image in shared_photos() if images is None else images:
            reference = dlib_models.landmarks68(image)
            result = reconstructor.image(image)
            if reference is None or result.params is None:
                skipped.append(name)
                continue
            with torch.no_grad():
                ours = landmarks68_2d(model, result.params, *image.shape[:2]).double().numpy()
            mediapipe = result.tracking.landmarks[:, :2].astype(np.float64)
            nearest = mediapipe[np.argmin(((reference[:, None] - mediapipe[None]) ** 2).sum(-1), axis=1)]
            fitted = landmark_errors(ours, reference)
            per_photo.append(
                {
                    "photo": name,
                    "nme_fitted": fitted["nme"],
                    "nme_mediapipe_nearest": landmark_errors(nearest, reference)["nme"],
                    "nme_fitted_jaw": fitted["jaw"],
                    "nme_fitted_inner": fitted["inner"],
                }
            )
    keys = ("nme_fitted", "nme_mediapipe_nearest", "nme_fitted_jaw", "nme_fitted_inner")
    return {
        "photos": per_photo,
        "skipped_no_dlib_face": skipped,
        "mean": {k: float(np.mean([p[k] for p in per_photo])) for k in keys},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON report path")
    parser.add_argument("--frames", type=int, default=150, help="clip frames timed")
    parser.add_argument("--skip-accuracy", action="store_true", help="latency only (no dlib needed)")
    args = parser.parse_args()
    model = FaceModel.load()
    runs = latency(model, args.frames)
    for run in runs:
        print(
            f"{run['op']:16s} {run['size']}  median {run['median_ms']:7.2f} ms  p99 {run['p99_ms']:7.2f} ms"
        )
    extra = {}
    if not args.skip_accuracy:
        extra["landmark_nme_vs_dlib"] = accuracy(model)
        means = extra["landmark_nme_vs_dlib"]["mean"]
        print("NME vs dlib: " + ", ".join(f"{k} {100 * v:.2f} %" for k, v in means.items()))
    write_report(args.out, runs, [torch.device("cpu")], extra)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
