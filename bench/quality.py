"""Reenactment quality on people no run trained or tuned on, every method beside the baselines.

    python -m bench.quality --out out/bench_quality.json      # needs .[bench] (dlib, scipy)

Methods (:mod:`bench.reenact_methods`, ``--methods``): ``static`` (the source itself), ``warp2d``
(a 2D piecewise-affine landmark warp, :mod:`bench.piecewise_warp`), ``geometric`` (the 3D path)
and ``dcnet`` (the 3D path with DCNet, ``$JR2NET_DCNET`` or the shipped weights).

Self-reenactment (:mod:`bench.self_reenactment`): the shared driving clips and the training
media's validation clips, at their own size, first ``--frames`` frames; frame 0 is the source and
the clip drives it; the frames after it are scored against the true frames: L1/PSNR/SSIM inside
the face region found on the true frame by dlib (MediaPipe's face oval where dlib finds none) and
over the full frame; per clip, mean over clips, worst clip. Cross-identity
(:mod:`bench.cross_identity`): source photos driven by the shared clips: identity distance to the
source, blendshape and head-angle correlation with the driver, expression error. Throughput: each
3D path end to end (tracking, fitting, reenactment) on a 256² photo (s12.jpg).

Writes the JSON report and, beside it, two PNG contact sheets (``NAME.png``: true | methods at each
clip's middle frame, the scored face region outlined; ``NAME_cross.png``: driver | source | methods).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from bench.clips import MEDIA, read_clip, shared_clips, validation_clips
from bench.contact_sheet import contact_sheet
from bench.cross_identity import cross_identity, photo_pairs
from bench.image_metrics import fidelity, ssim
from bench.reenact_methods import METHODS, REFINED, face_model
from bench.self_reenactment import self_reenactment
from bench.timing import write_report
from jr2net.face_model import FaceModel
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import Reenactor
from jr2net.sources import computing_source, load_source

__all__ = ["fidelity", "main", "ssim"]  # the metrics stay importable from here


def throughput(model: FaceModel, frames: int, refiner: str) -> dict:
    """A 3D path end to end on the s12.jpg photo at 256 px (as the refiner computes it) driven by
    d12 at 256², ms per frame (a photo, not the built-in avatar, which is drawn from the model
    without a refiner)."""
    photo = load_source(model, str(MEDIA / "liveportrait" / "source" / "s12.jpg"), 256)
    source = computing_source(model, photo, refiner)
    reenactor = Reenactor(model, source, renderer=REFINED[refiner]())
    clip = MEDIA / "liveportrait" / "driving" / "d12.mp4"
    driving = [np.asarray(Image.fromarray(f).resize((256, 256))) for _, _, f in read_clip(clip, frames)]
    times = []
    with Reconstructor(model, mode="video") as reconstructor:
        stream = reconstructor.video((i, i / 30, f) for i, f in enumerate(driving))
        start = time.perf_counter()
        for result in stream:
            if result.params is not None:
                reenactor(result.params, landmarks=result.tracking.landmarks)
            now = time.perf_counter()
            times.append((now - start) * 1e3)
            start = now
    steady = times[10:]
    return {
        "op": f"{refiner}_path_end_to_end",
        "size": "256x256",
        "median_ms": float(np.median(steady)),
        "p99_ms": float(np.percentile(steady, 99)),
        "fps": 1000 / float(np.median(steady)),
        "repeats": len(steady),
    }


def _figure(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def self_summary(report: dict) -> list[str]:
    """The self-reenactment tables as text lines: per clip and method, the mean and the worst."""
    header = f"  {'method':<11}{'face PSNR':>10}{'SSIM':>7}{'L1':>7}{'full PSNR':>10}{'SSIM':>7}{'L1':>7}"
    lines = ["self-reenactment: face = dlib 68-point hull on the true frame (MediaPipe oval where none)"]

    def row(name: str, run: dict) -> str:
        face, full = run["face"], run["full"]
        held = f"  held {run['held_frames']}" if run.get("held_frames") else ""
        return (
            f"  {name:<11}{face['psnr']:>10.2f}{face['ssim']:>7.3f}{face['l1']:>7.3f}"
            f"{full['psnr']:>10.2f}{full['ssim']:>7.3f}{full['l1']:>7.3f}{held}"
        )

    for clip, clip_report in report["clips"].items():
        regions = clip_report["face_region_frames"]
        height, width = clip_report["size"]
        lines.append(
            f"{clip} ({width}x{height}): {clip_report['scored_frames']} frames scored of "
            f"{clip_report['frames']}; face region dlib {regions['dlib']}, MediaPipe "
            f"{regions['mediapipe']}, none {regions['none']}"
        )
        lines += [header] + [row(name, run) for name, run in clip_report["methods"].items()]
    lines += ["mean over clips", header] + [row(name, run) for name, run in report["mean"].items()]
    lines += ["worst clip (by face PSNR)", header]
    lines += [f"{row(name, run)}  {run['clip']}" for name, run in report["worst"].items()]
    return lines


def cross_summary(report: dict) -> list[str]:
    """The cross-identity table as text lines: per pair and method, and the means."""
    header = (
        f"{'pair':<24}{'method':<11}{'id dist':>8}{'shape r':>9}{'angle r':>9}{'expr err':>10}{'held':>6}"
    )
    lines = ["cross-identity (id dist: to the source; r: correlation with the driver)", header]

    def row(label: str, name: str, run: dict) -> str:
        return (
            f"{label:<24}{name:<11}{_figure(run['identity_distance'], 3):>8}"
            f"{_figure(run['blendshape_r'], 3):>9}{_figure(run['angle_r'], 3):>9}"
            f"{_figure(run['expression_error'], 4):>10}{run.get('held_frames', ''):>6}"
        )

    for pair in report["pairs"]:
        label = f"{Path(pair['source']).stem} x {pair['driving']}"
        for name, run in pair["methods"].items():
            lines.append(row(label, name, run))
    for name, run in report["mean"].items():
        lines.append(row("mean over pairs", name, run))
    anchor = report["same_person_anchor"]
    if anchor:
        lines.append(
            f"same person ({anchor['photo']} vs {anchor['clip']}): {_figure(anchor['identity_distance'], 3)}"
        )
    lines.append(f"source vs driver, mean: {_figure(report['mean_source_to_driver_distance'], 3)}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="JSON report path (the contact sheets go beside it)"
    )
    parser.add_argument("--frames", type=int, default=90, help="first frames of each clip (default 90)")
    parser.add_argument(
        "--methods", nargs="+", choices=sorted(METHODS), default=list(METHODS), help="default: all"
    )
    parser.add_argument(
        "--clips", nargs="+", metavar="STEM", help="only these clips (file stems), to develop"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    methods = {name: METHODS[name] for name in args.methods}
    wanted = set(args.clips) if args.clips else None
    self_clips = [p for p in shared_clips() + validation_clips() if wanted is None or p.stem in wanted]
    cross_clips = [p for p in shared_clips() if wanted is None or p.stem in wanted]
    runs = [throughput(face_model(), 90, name) for name in REFINED if name in methods]
    for run in runs:
        rate = f"{run['median_ms']:.1f} ms/frame median ({run['fps']:.1f} fps), p99 {run['p99_ms']:.1f}"
        print(f"{run['op']} 256²: {rate}")
    self_report, self_rows = self_reenactment(self_clips, methods, args.frames)
    print("\n".join(self_summary(self_report)))
    cross_report, cross_rows = cross_identity(photo_pairs(cross_clips), methods, args.frames)
    print("\n".join(cross_summary(cross_report)))
    sheets = {
        "self_reenactment": args.out.with_suffix(".png"),
        "cross_identity": args.out.with_name(f"{args.out.stem}_cross.png"),
    }
    sheets["self_reenactment"].parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(["true", *methods], self_rows).save(sheets["self_reenactment"])
    contact_sheet(["driver", "source", *methods], cross_rows).save(sheets["cross_identity"])
    elapsed = time.perf_counter() - started
    write_report(
        args.out,
        runs,
        [torch.device("cpu")],
        {
            "frames_limit": args.frames,
            "methods": list(methods),
            "self_reenactment": self_report,
            "cross_identity": cross_report,
            "contact_sheets": {name: str(path) for name, path in sheets.items()},
            "elapsed_s": elapsed,
        },
    )
    print(f"wrote {args.out} and {', '.join(str(p) for p in sheets.values())} in {elapsed / 60:.1f} min")


if __name__ == "__main__":
    main()
