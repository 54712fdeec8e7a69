"""DCNet's latency per 256² crop, and the DCNet frame renderer's whole step on a photo source.

    python -m bench.dcnet --out out/bench_dcnet.json [--weights FILE] [--threads 2]

Rows (median and p99 ms, CPU, ``--threads`` threads): the generator alone on onnxruntime and on
torch eager (batch 1, the crop size of the weights' export; and on torch eager on the CUDA device
when there is one); the generator on onnxruntime at batches of 1 to 3 crops (:data:`BATCHES`) of
the live crop (192²: a 256 px source's window) and of 256², with the time per crop, and on the
CUDA device at batches up to 8: whether callers' crops would gain from one batch across sessions
(on 2 CPU cores, 2 threads, they did not: 8.14 / 8.09 / 8.12 ms a 192² crop at batches of 1 / 2 /
3, 14.09 / 13.44 / 13.89 ms a 256² crop, while the first caller's crop waits for the whole batch);
and the whole renderer step of one
frame (dense conditions on the crop, the generator on onnxruntime, the paste) for a photo source
at 640×480 and 1280×720 (a shared photo letterboxed to the webcam size), beside the geometric
renderer's step on the same warp: their ratio is what DCNet costs the live path; and the warp
itself and its pinning to the landmarks (:mod:`jr2net.landmark_pinning`) at those sizes.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.clips import MEDIA
from bench.timing import time_call, write_report
from jr2net.dcnet_renderer import DCNetRenderer
from jr2net.dense_conditions import CROP_SIZE, SourceCrop, dense_conditions
from jr2net.engines.dcnet_runners import DCNetRunnersBySize, make_dcnet_runner
from jr2net.face_model import FaceModel
from jr2net.media import read_image
from jr2net.reenact import Controls, GeometricRenderer, Reenactor
from jr2net.sources import source_from_image

WEBCAM_SIZES = ((640, 480), (1280, 720))
PHOTO = "liveportrait/source/s12.jpg"
LIVE_CROP = 192  # the crop of a 256 px live source (its window's own size)
BATCHES = (1, 2, 3)  # crops per generator call, one per caller on a stage host
CUDA_BATCHES = (1, 2, 4, 8)


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """The photo scaled to fit ``width``×``height`` and centred on black (RGB uint8)."""
    from PIL import Image

    scale = min(width / image.shape[1], height / image.shape[0])
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    canvas = np.zeros((height, width, 3), np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    canvas[top : top + size[1], left : left + size[0]] = np.asarray(Image.fromarray(image).resize(size))
    return canvas


def generator_inputs(device: torch.device, batch: int = 1, size: int = CROP_SIZE) -> tuple[torch.Tensor, ...]:
    """Random generator inputs (the cost does not depend on the values): texture (B, 9, S, S),
    conditions (B, 12, S, S) and grid (B, S, S, 2) for B = ``batch``, S = ``size``."""
    return (
        torch.rand(batch, 9, size, size, device=device),
        torch.rand(batch, 12, size, size, device=device),
        torch.rand(batch, size, size, 2, device=device) * 2 - 1,
    )


def generator_rows(weights: Path | None, threads: int, repeats: int) -> list[dict]:
    """The generator alone, onnxruntime and torch, batch 1."""
    rows = []
    inputs = generator_inputs(torch.device("cpu"))
    for runtime in ("onnx", "torch"):
        runner = make_dcnet_runner(runtime, weights, threads=threads)
        timing = time_call(lambda runner=runner: runner(*inputs), torch.device("cpu"), repeats, 5)
        rows.append({"op": f"dcnet_generator_{runtime}", "size": f"{CROP_SIZE}x{CROP_SIZE}", **timing})
    return rows


def batch_row(op: str, runner: Callable, device: torch.device, batch: int, size: int, repeats: int) -> dict:
    """The generator on ``batch`` crops of ``size``² at once, with its time per crop."""
    inputs = generator_inputs(device, batch, size)
    timing = time_call(lambda: runner(*inputs), device, repeats, 5)
    per_crop = timing["median_ms"] / batch
    return {"op": op, "size": f"{size}x{size}", "batch": batch, "per_crop_ms": per_crop, **timing}


def batch_rows(weights: Path | None, threads: int, repeats: int) -> list[dict]:
    """The generator on onnxruntime at :data:`BATCHES`, the live crop and 256²."""
    runners = DCNetRunnersBySize("onnx", weights, threads=threads)
    cpu = torch.device("cpu")
    return [
        batch_row("dcnet_generator_onnx_batch", runners(size), cpu, batch, size, repeats)
        for size in (LIVE_CROP, CROP_SIZE)
        for batch in BATCHES
    ]


def cuda_generator_rows(weights: Path | None, repeats: int) -> list[dict]:
    """The generator alone on torch eager on the CUDA device, at :data:`CUDA_BATCHES` of 256²."""
    cuda = torch.device("cuda")
    runner = make_dcnet_runner("torch", weights)
    runner.net.to(cuda)
    return [
        batch_row("dcnet_generator_torch_cuda", runner, cuda, batch, CROP_SIZE, repeats)
        for batch in CUDA_BATCHES
    ]


def renderer_rows(model: FaceModel, weights: Path | None, threads: int, repeats: int) -> list[dict]:
    """One frame's renderer step, DCNet and geometric, for a photo source at webcam sizes."""
    rows = []
    photo = read_image(MEDIA / PHOTO)
    for width, height in WEBCAM_SIZES:
        source = source_from_image(model, letterbox(photo, width, height), PHOTO)
        reenactor = Reenactor(model, source)
        turned = source.params.replace(rotation=source.params.rotation + torch.tensor([[0.05, 0.15, 0.0]]))
        warp = reenactor.warp(turned)
        dcnet = DCNetRenderer(DCNetRunnersBySize("onnx", weights, threads=threads))
        crop = SourceCrop.of(source)
        assert source.landmarks is not None  # a photo source has the tracker's landmarks
        landmarks = source.landmarks.numpy()
        reenactor.pin(warp, Controls(), landmarks)  # the first landmarks are the reference
        moved = landmarks + np.array([2.0, 1.0], np.float32)
        steps = {
            "dcnet_conditions": lambda warp=warp, crop=crop: dense_conditions(warp, crop),
            "dcnet_renderer": lambda warp=warp, dcnet=dcnet: dcnet(warp),
            "geometric_renderer": lambda warp=warp: GeometricRenderer()(warp),
            "warp": lambda reenactor=reenactor, turned=turned: reenactor.warp(turned),
            "pin": lambda reenactor=reenactor, warp=warp, moved=moved: reenactor.pin(warp, Controls(), moved),
        }
        for name, step in steps.items():
            with torch.no_grad():
                timing = time_call(step, torch.device("cpu"), repeats, 3)
            rows.append({"op": name, "size": f"{width}x{height}", "source": PHOTO, **timing})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON report path")
    parser.add_argument("--weights", type=Path, help="DCNet weights (default: $JR2NET_DCNET or shipped)")
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads (default 2)")
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = generator_rows(args.weights, args.threads, args.repeats)
    rows += batch_rows(args.weights, args.threads, args.repeats)
    devices = [torch.device("cpu")]
    if torch.cuda.is_available():
        rows += cuda_generator_rows(args.weights, args.repeats)
        devices.append(torch.device("cuda"))
    rows += renderer_rows(FaceModel.load(), args.weights, args.threads, max(args.repeats // 2, 10))
    for row in rows:
        timing = f"median {row['median_ms']:7.2f} ms  p99 {row['p99_ms']:7.2f} ms"
        batch = f"  batch {row['batch']}: {row['per_crop_ms']:.2f} ms a crop" if "batch" in row else ""
        print(f"{row['op']:<28}{row['size']:>10}  {timing}{batch}")
    write_report(args.out, rows, devices, {"threads": args.threads})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
