"""RecNet: reconstruction latency per image on each runtime, and landmark accuracy against the fitter.

    python -m bench.recnet --out out/bench_recnet.json

Latency, per aligned 224² crop of a shared photo: RecNet torch eager (batch 1) and onnxruntime
(batch 1, and 2: a crop and its flip) on the CPU, RecNet end to end (align, run, decode, place in
the image) with and without the flip average, RecAugNet (RecNet with ETNet's expression,
``--etnet-weights``) on onnxruntime (a crop and its flip) and end to end with the flip average,
all with as many onnxruntime threads as torch has, and beside them, measured in the same run, the
fitter on one photo (identity + frame) and warm (one frame). On a CUDA
device also torch eager, ``torch.compile`` and a CUDA graph at batch 1 and 8. Accuracy: the NME
of the 68 landmarks against dlib on the shared photos (``bench.tracking``'s protocol), of the
fitter and of RecNet (with and without the flip average), with MediaPipe's nearest points as the
anchor. ``--photos held-out`` measures it instead on the training media's validation split (photos
and clip frames of people never trained on), to choose between trained runs without choosing on
the benchmark's own photos; ``--photos clips`` on frames of the shared driving clips (people no run
trained on, as a live call sees them: video frames, not portraits).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.clips import shared_clips
from bench.timing import time_call, write_report
from bench.tracking import MEDIA, PHOTO_GLOBS, accuracy, shared_photos
from jr2net.alignment import align_face
from jr2net.engines.onnx_export import cached_onnx
from jr2net.engines.runners import OnnxRunner, TorchRunner
from jr2net.estimators import RecNetEstimator, RecNetPredictor
from jr2net.face_model import FaceModel
from jr2net.fitting import LandmarkFitter
from jr2net.media import read_image
from jr2net.nets.checkpoint import default_weights, load_weights, provenance
from jr2net.nets.etnet import default_etnet_weights
from jr2net.nets.recaugnet import RecAugNet, load_recaugnet
from jr2net.nets.recnet import CROP_SIZE, RecNet, crop_images
from jr2net.tracking import Tracker, Tracking
from jr2net.training.crop_cache import TRAIN_MEDIA, clip_frames, split_images


def _row(op: str, runtime: str, batch: int, timing: dict) -> dict:
    return {"op": op, "runtime": runtime, "batch": batch, **timing}


@dataclass(frozen=True)
class SharedFace:
    """The first shared photo (RGB uint8 (H, W, 3)), its tracking and its aligned crop (1, 3, S, S)."""

    photo: np.ndarray
    tracking: Tracking
    crop: torch.Tensor

    @classmethod
    def load(cls) -> SharedFace:
        photo = read_image(sorted(MEDIA.glob(PHOTO_GLOBS[0]))[0])
        with Tracker(mode="image") as tracker:
            tracking = tracker.track(photo)
        return cls(photo, tracking, crop_images(align_face(photo, tracking.landmarks, CROP_SIZE).image[None]))


def cpu_latency(model: FaceModel, net: RecNet, weights: Path, face: SharedFace, repeats: int) -> list[dict]:
    photo, tracking, crop = face.photo, face.tracking, face.crop
    cpu = torch.device("cpu")
    fitter = LandmarkFitter(model)
    (fitted,) = fitter.fit_identity([tracking])
    rows = []
    pair = torch.cat([crop, crop.flip(-1)])
    with (
        TorchRunner(net) as torch_runner,
        OnnxRunner(cached_onnx(net, weights), threads=torch.get_num_threads()) as ort,
    ):
        rows.append(
            _row(
                "recnet_small", "torch_eager_cpu", 1, time_call(lambda: torch_runner(crop), cpu, repeats, 10)
            )
        )
        for images in (crop, pair):
            rows.append(
                _row(
                    "recnet_small",
                    "onnxruntime_cpu",
                    len(images),
                    time_call(lambda images=images: ort(images), cpu, repeats, 10),
                )
            )
        for op, flip in (("recnet_small_end_to_end", True), ("recnet_small_end_to_end_no_flip", False)):
            predictor = RecNetPredictor(net, ort, model, flip_average=flip)
            rows.append(
                _row(
                    op,
                    "onnxruntime_cpu",
                    1,
                    time_call(lambda p=predictor: p.predict([(tracking, photo)]), cpu, repeats, 5),
                )
            )
    rows.append(
        _row("fitter_photo", "numpy", 1, time_call(lambda: fitter.fit_identity([tracking]), cpu, repeats, 3))
    )
    rows.append(
        _row(
            "fitter_warm_frame",
            "numpy",
            1,
            time_call(lambda: fitter.fit_frame(tracking, fitted.identity, fitted), cpu, repeats, 5),
        )
    )
    return rows


def recaugnet_latency(
    model: FaceModel, net: RecAugNet, weights: tuple[Path, Path], face: SharedFace, repeats: int
) -> list[dict]:
    """RecAugNet on onnxruntime on the CPU: a crop and its flip, and end to end with the flip average."""
    photo, tracking, crop = face.photo, face.tracking, face.crop
    pair = torch.cat([crop, crop.flip(-1)])
    cpu = torch.device("cpu")
    with OnnxRunner(cached_onnx(net, weights), threads=torch.get_num_threads()) as ort:
        predictor = RecNetPredictor(net, ort, model, flip_average=True)
        return [
            _row("recaugnet_small", "onnxruntime_cpu", 2, time_call(lambda: ort(pair), cpu, repeats, 10)),
            _row(
                "recaugnet_small_end_to_end",
                "onnxruntime_cpu",
                1,
                time_call(lambda: predictor.predict([(tracking, photo)]), cpu, repeats, 5),
            ),
        ]


def _cuda_rows(net: RecNet, compiled: torch.nn.Module, batch: int, repeats: int) -> list[dict]:
    device = torch.device("cuda")
    images = torch.rand(batch, 3, CROP_SIZE, CROP_SIZE, device=device)
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            net(images)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        net(images)
    return [
        _row("recnet_small", "torch_eager_cuda", batch, time_call(lambda: net(images), device, repeats, 20)),
        _row(
            "recnet_small",
            "torch_compile_cuda",
            batch,
            time_call(lambda: compiled(images), device, repeats, 20),
        ),
        _row("recnet_small", "cuda_graph", batch, time_call(graph.replay, device, repeats, 20)),
    ]


@torch.no_grad()
def cuda_latency(net: RecNet, repeats: int) -> list[dict]:
    """torch eager, torch.compile and a captured CUDA graph at batch 1 and 8 (only with a CUDA device)."""
    net = net.to(torch.device("cuda")).eval()
    compiled = torch.compile(net, mode="max-autotune-no-cudagraphs")
    return [row for batch in (1, 8) for row in _cuda_rows(net, compiled, batch, repeats)]


def accuracy_faces(photos: str, frames_per_clip: int) -> list[tuple[str, np.ndarray]]:
    """The named RGB faces the NME is measured on, for ``--photos``."""
    if photos == "benchmark":
        return list(shared_photos())
    if photos == "held-out":
        return split_images(TRAIN_MEDIA, frames_per_clip, "validation")
    return [
        (f"{path.stem}#{k}", image)
        for path in shared_clips()
        for k, image in enumerate(clip_frames(path, frames_per_clip))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON report path")
    parser.add_argument(
        "--weights", type=Path, default=None, help="RecNet weights (default: the shipped ones)"
    )
    parser.add_argument(
        "--etnet-weights",
        type=Path,
        default=None,
        help="RecAugNet's ETNet weights (default: $JR2NET_ETNET or the shipped ones)",
    )
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--skip-accuracy", action="store_true", help="latency only (no dlib needed)")
    parser.add_argument(
        "--photos",
        choices=("benchmark", "held-out", "clips"),
        default="benchmark",
        help="NME on the shared photos, on the training media's validation split (for choosing runs), "
        "or on frames of the shared driving clips",
    )
    parser.add_argument(
        "--held-out-frames",
        type=int,
        default=8,
        help="evenly spaced frames of each clip for --photos held-out and --photos clips",
    )
    args = parser.parse_args()
    model = FaceModel.load()
    weights = args.weights or default_weights()
    net = load_weights(weights)
    etnet_weights = args.etnet_weights or default_etnet_weights()
    augmented = load_recaugnet(weights, etnet_weights)
    face = SharedFace.load()
    runs = cpu_latency(model, net, weights, face, args.repeats)
    runs += recaugnet_latency(model, augmented, (weights, etnet_weights), face, args.repeats)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        runs += cuda_latency(load_weights(weights), args.repeats)
        devices.append(torch.device("cuda"))
    for run in runs:
        timing = f"median {run['median_ms']:8.3f} ms  p99 {run['p99_ms']:8.3f} ms"
        print(f"{run['op']:27s} {run['runtime']:20s} b{run['batch']}  {timing}")
    extra = {
        "weights": str(weights),
        "weights_provenance": provenance(weights),
        "etnet_weights": str(etnet_weights),
    }
    if not args.skip_accuracy:
        images = accuracy_faces(args.photos, args.held_out_frames)
        with OnnxRunner(cached_onnx(net, weights)) as runner:
            recnet, single = (
                accuracy(
                    model, RecNetEstimator(RecNetPredictor(net, runner, model, flip_average=flip)), images
                )
                for flip in (True, False)
            )
        with OnnxRunner(cached_onnx(augmented, (weights, etnet_weights))) as runner:
            recaugnet = accuracy(model, RecNetEstimator(RecNetPredictor(augmented, runner, model)), images)
        fitter = accuracy(model, images=images)
        fitted, anchor = fitter["mean"]["nme_fitted"], fitter["mean"]["nme_mediapipe_nearest"]
        ratio = recnet["mean"]["nme_fitted"] / fitted
        augmented_ratio = recaugnet["mean"]["nme_fitted"] / fitted
        extra["landmark_nme_vs_dlib"] = {
            "photos": args.photos,
            "fitter": fitter,
            "recnet": recnet,
            "recnet_no_flip": single,
            "recnet_over_fitter": ratio,
            "recaugnet": recaugnet,
            "recaugnet_over_fitter": augmented_ratio,
        }
        print(
            f"NME vs dlib ({args.photos}, {len(fitter['photos'])} faces): fitter {100 * fitted:.2f} %, "
            f"RecNet {100 * recnet['mean']['nme_fitted']:.2f} % "
            f"({ratio:.2f}×; without the flip {100 * single['mean']['nme_fitted']:.2f} %), "
            f"RecAugNet {100 * recaugnet['mean']['nme_fitted']:.2f} % ({augmented_ratio:.2f}×), "
            f"MediaPipe nearest {100 * anchor:.2f} %"
        )
    write_report(args.out, runs, devices, extra)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
