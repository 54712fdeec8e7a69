"""Reenactment quality: self-reenactment fidelity and cross-identity transfer, JSON + contact sheet.

    python -m bench.quality --out out/bench_quality.json      # needs .[bench] for identity

Self-reenactment: each shared driving clip reenacts its own first frame and is compared with
itself, frame by frame: L1, PSNR and SSIM over the face region and the full frame. Cross
reenactment: source photos driven by the clips: expression error (mean |Δ| of MediaPipe's 52
blendshape scores, output vs driving), pose error (MediaPipe head rotation of the output against
the driving's, both relative to their first frames, degrees), identity similarity to the source
(cosine of dlib 128-D descriptors) beside the anchor of the same person's other picture (d19.jpg
vs d18.mp4), and temporal jitter of the output's landmarks against the driving's. Throughput: the
geometric path end to end (tracking, fitting, reenactment) on the 256² built-in avatar.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.timing import write_report
from jr2net.assets import repository_root
from jr2net.avatar import REGION as AVATAR_REGION
from jr2net.avatar import model_source
from jr2net.compositing import gaussian_blur
from jr2net.dlib_reference import DlibModels
from jr2net.face_model import FaceModel
from jr2net.media import iter_video_frames, read_image
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import Reenactor, prepare_source
from jr2net.smoothing import jitter
from jr2net.tracking import Tracker

MEDIA = repository_root().parent / "shared" / "media"
CLIPS = ("d0", "d3", "d10", "d12", "d18", "d19")
SOURCES = (
    "liveportrait/source/s1.jpg",
    "liveportrait/source/s12.jpg",
    "liveportrait/source/s42.jpg",
    "liveportrait/driving/d19.jpg",
)
SAME_PERSON = ("liveportrait/driving/d19.jpg", "d18")
WORKING_SIZE = 384


def ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean SSIM (Gaussian window σ=1.5, on luma) of two RGB uint8 images, over ``mask`` if given."""

    def luma(image: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[
            None, None
        ]

    x, y = luma(a), luma(b)
    mean_x, mean_y = gaussian_blur(x, 1.5), gaussian_blur(y, 1.5)
    var_x = gaussian_blur(x * x, 1.5) - mean_x**2
    var_y = gaussian_blur(y * y, 1.5) - mean_y**2
    covariance = gaussian_blur(x * y, 1.5) - mean_x * mean_y
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    value = ((2 * mean_x * mean_y + c1) * (2 * covariance + c2)) / (
        (mean_x**2 + mean_y**2 + c1) * (var_x + var_y + c2)
    )
    value = value[0, 0].numpy()
    return float(value[mask].mean() if mask is not None else value.mean())


def fidelity(output: np.ndarray, truth: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
    error = np.abs(output.astype(np.float64) - truth.astype(np.float64)) / 255.0
    selected = error[mask] if mask is not None else error.reshape(-1, 3)
    mse = float((selected**2).mean())
    return {
        "l1": float(selected.mean()),
        "psnr": 10 * math.log10(1 / mse) if mse > 0 else 99.0,
        "ssim": ssim(output, truth, mask),
    }


def _shrink(image: np.ndarray) -> np.ndarray:
    scale = WORKING_SIZE / max(image.shape[:2])
    if scale >= 1:
        return image
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS)).copy()


def _clip(name: str, limit: int) -> list[np.ndarray]:
    path = MEDIA / "liveportrait" / "driving" / f"{name}.mp4"
    return [_shrink(image) for index, _, image in iter_video_frames(path) if index < limit]


def _driving_params(model: FaceModel, frames: list[np.ndarray]) -> list:
    with Reconstructor(model, mode="video") as reconstructor:
        return [r.params for r in reconstructor.video((i, i / 30, f) for i, f in enumerate(frames))]


def self_reenactment(model: FaceModel, limit: int) -> dict:
    per_clip = {}
    for name in CLIPS:
        frames = _clip(name, limit)
        driving = _driving_params(model, frames)
        with Reconstructor(model, mode="image") as reconstructor:
            source = reconstructor.image(frames[0]).params
        reenactor = Reenactor(model, prepare_source(model, frames[0], source))
        face, full = [], []
        for image, params in zip(frames, driving):
            if params is None:
                continue
            result = reenactor(params)
            mask = result.face_mask[0, 0].numpy() > 0
            face.append(fidelity(result.image, image, mask))
            full.append(fidelity(result.image, image, None))
        per_clip[name] = {
            "frames": len(face),
            "face": {k: float(np.mean([f[k] for f in face])) for k in face[0]},
            "full": {k: float(np.mean([f[k] for f in full])) for k in full[0]},
        }
    keys = ("l1", "psnr", "ssim")
    return {
        "clips": per_clip,
        "mean_face": {k: float(np.mean([c["face"][k] for c in per_clip.values()])) for k in keys},
        "mean_full": {k: float(np.mean([c["full"][k] for c in per_clip.values()])) for k in keys},
    }


def _rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    cosine = (np.trace(a[:3, :3] @ b[:3, :3].T) - 1) / 2
    return math.degrees(math.acos(max(-1.0, min(1.0, cosine))))


def _relative(matrices: list[np.ndarray]) -> list[np.ndarray]:
    first = matrices[0][:3, :3]
    return [m[:3, :3] @ first.T for m in matrices]


def _cosine(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def cross_reenactment(model: FaceModel, limit: int) -> tuple[dict, list[np.ndarray]]:
    try:
        identity = DlibModels.load()
    except RuntimeError:
        identity = None
    rows, sheet = [], []
    for source_name in SOURCES:
        source_image = _shrink(read_image(MEDIA / source_name))
        with Reconstructor(model, mode="image") as reconstructor:
            source_params = reconstructor.image(source_image).params
        source_descriptor = identity.descriptor(source_image) if identity else None
        for clip in CLIPS:
            if source_name == SAME_PERSON[0] and clip == SAME_PERSON[1]:
                continue
            frames = _clip(clip, limit)
            driving = _driving_params(model, frames)
            reenactor = Reenactor(model, prepare_source(model, source_image, source_params))
            outputs = [reenactor(p).image for p in driving if p is not None]
            kept = [f for f, p in zip(frames, driving) if p is not None]
            with Tracker(mode="image") as tracker:
                seen_out = [tracker.track(o) for o in outputs]
                seen_in = [tracker.track(f) for f in kept]
            pairs = [(o, i) for o, i in zip(seen_out, seen_in) if o.face and i.face]
            expression = float(np.mean([np.abs(o.blendshapes - i.blendshapes).mean() for o, i in pairs]))
            out_rot = _relative([o.head_matrix for o, _ in pairs])
            in_rot = _relative([i.head_matrix for _, i in pairs])
            pose = float(np.mean([_rotation_angle(a, b) for a, b in zip(out_rot, in_rot)]))
            out_points = torch.tensor(
                np.stack([o.landmarks[:, :2].reshape(-1) / o.inter_ocular for o, _ in pairs])
            )
            in_points = torch.tensor(
                np.stack([i.landmarks[:, :2].reshape(-1) / i.inter_ocular for _, i in pairs])
            )
            similarity = None
            if identity:
                sims = [
                    _cosine(source_descriptor, identity.descriptor(o))
                    for o in outputs[:: max(1, len(outputs) // 8)]
                ]
                sims = [s for s in sims if s is not None]
                similarity = float(np.mean(sims)) if sims else None
            rows.append(
                {
                    "source": source_name,
                    "driving": clip,
                    "frames": len(pairs),
                    "expression_error": expression,
                    "pose_error_deg": pose,
                    "identity_similarity": similarity,
                    "jitter_output": jitter(out_points),
                    "jitter_driving": jitter(in_points),
                }
            )
            sheet.append(
                np.concatenate(
                    [_tile(kept[len(kept) // 2]), _tile(source_image), _tile(outputs[len(outputs) // 2])], 1
                )
            )
    anchor = None
    if identity:
        person = identity.descriptor(_shrink(read_image(MEDIA / SAME_PERSON[0])))
        clip = _clip(SAME_PERSON[1], 1)[0]
        anchor = _cosine(person, identity.descriptor(clip))
    return {
        "pairs": rows,
        "same_person_anchor_similarity": anchor,
        "mean": {
            k: float(np.mean([r[k] for r in rows if r[k] is not None]))
            for k in (
                "expression_error",
                "pose_error_deg",
                "identity_similarity",
                "jitter_output",
                "jitter_driving",
            )
            if any(r[k] is not None for r in rows)
        },
    }, sheet


def _tile(image: np.ndarray, size: int = 160) -> np.ndarray:
    return np.asarray(Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR))


def throughput(model: FaceModel, frames: int) -> dict:
    image, params = model_source(model, 256)
    reenactor = Reenactor(model, prepare_source(model, image, params, region=AVATAR_REGION))
    driving = [np.asarray(Image.fromarray(f).resize((256, 256))) for f in _clip("d12", frames)]
    times = []
    with Reconstructor(model, mode="video") as reconstructor:
        stream = reconstructor.video((i, i / 30, f) for i, f in enumerate(driving))
        start = time.perf_counter()
        for result in stream:
            if result.params is not None:
                reenactor(result.params)
            now = time.perf_counter()
            times.append((now - start) * 1e3)
            start = now
    steady = times[10:]
    return {
        "op": "geometric_path_end_to_end",
        "size": "256x256",
        "median_ms": float(np.median(steady)),
        "p99_ms": float(np.percentile(steady, 99)),
        "fps": 1000 / float(np.median(steady)),
        "repeats": len(steady),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="JSON report path (the contact sheet goes beside it)"
    )
    parser.add_argument("--frames", type=int, default=60, help="frames per clip")
    args = parser.parse_args()
    model = FaceModel.load()
    run = throughput(model, 90)
    rate = f"{run['median_ms']:.1f} ms/frame median ({run['fps']:.1f} fps), p99 {run['p99_ms']:.1f}"
    print(f"geometric path 256²: {rate}")
    self_scores = self_reenactment(model, args.frames)
    print(
        "self-reenactment face:",
        {k: round(v, 4) for k, v in self_scores["mean_face"].items()},
        "full:",
        {k: round(v, 4) for k, v in self_scores["mean_full"].items()},
    )
    cross, sheet = cross_reenactment(model, args.frames)
    print(
        "cross-reenactment:",
        {k: round(v, 4) for k, v in cross["mean"].items()},
        "same-person anchor:",
        cross["same_person_anchor_similarity"],
    )
    sheet_path = args.out.with_suffix(".png")
    sheet_path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(sheet, 0)).save(sheet_path)
    write_report(
        args.out,
        [run],
        [torch.device("cpu")],
        {"self_reenactment": self_scores, "cross_reenactment": cross, "contact_sheet": str(sheet_path)},
    )
    print(f"wrote {args.out} and {sheet_path}")


if __name__ == "__main__":
    main()
