"""Where RecNet's and RecAugNet's landmark error against dlib comes from.

    python -m bench.nme_sources --photos clips --out out/bench_nme_sources.json

Each face is reconstructed by the fitter and by each network (flip-averaged, onnxruntime, as
``bench.recnet`` runs them); the network's parameters then take the fitter's head pose
(rotation, translation, focal), identity or expression, one, two or all three groups at a time,
and the 68 landmarks of each hybrid are scored against dlib's (NME of the outer-eye-corner
distance, ``bench.tracking``'s protocol). The fitter's groups fit one another, so a swap is not
a clean attribution: the network's expression beside the fitter's pose and identity says how far
a better expression alone could take the network, the fitter's pose and expression beside the
network's identity how far its identity holds it back. Faces as ``bench.recnet --photos``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
from collections.abc import Iterable
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.recnet import accuracy_faces
from bench.timing import write_report
from bench.tracking import landmark_errors
from jr2net.dlib_reference import DlibModels
from jr2net.engines.onnx_export import cached_onnx
from jr2net.engines.runners import OnnxRunner
from jr2net.estimators import FitterEstimator, FrameEstimator, RecNetEstimator, RecNetPredictor
from jr2net.face_model import FaceModel
from jr2net.fitting import LandmarkFitter
from jr2net.nets.checkpoint import default_weights, load_weights
from jr2net.nets.etnet import default_etnet_weights
from jr2net.nets.recaugnet import load_recaugnet
from jr2net.params import FaceParams
from jr2net.reconstruct import landmarks68_2d
from jr2net.tracking import Tracker

GROUPS = {
    "pose": ("rotation", "translation", "focal"),
    "identity": ("identity",),
    "expression": ("expression",),
}
SWAPS = tuple(swap for count in range(len(GROUPS) + 1) for swap in itertools.combinations(GROUPS, count))


def swap_name(swap: tuple[str, ...]) -> str:
    """``"none"``, or the fitter's groups in a swap joined by ``+``."""
    return "+".join(swap) or "none"


def hybrid(network: FaceParams, fitter: FaceParams, swap: tuple[str, ...]) -> FaceParams:
    """``network``'s parameters (B faces) with the fitter's groups named in ``swap`` in their place."""
    unknown = set(swap) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown parameter groups {sorted(unknown)}; choose from {sorted(GROUPS)}")
    fields = [field for group in swap for field in GROUPS[group]]
    return dataclasses.replace(network, **{field: getattr(fitter, field) for field in fields})


def estimate_all(
    estimators: dict[str, FrameEstimator], images: list[tuple[str, np.ndarray]]
) -> dict[str, dict[str, FaceParams | None]]:
    """Per estimator, each named RGB image's parameters (pose, identity, expression; no light or
    albedo, which place no landmark), None without a face; each image tracked once for all."""
    found: dict[str, dict[str, FaceParams | None]] = {label: {} for label in estimators}
    with Tracker(mode="image") as tracker:
        for name, image in tqdm(images, desc="reconstruct", unit="face", leave=False):
            tracking = tracker.track(image)
            for label, estimator in estimators.items():
                found[label][name] = estimator.identity([(tracking, image)]) if tracking.face else None
    return found


def nme_sources(
    model: FaceModel,
    images: Iterable[tuple[str, np.ndarray]],
    fitted: dict[str, FaceParams | None],
    networks: dict[str, dict[str, FaceParams | None]],
    references: dict[str, np.ndarray | None],
) -> dict:
    """Per network, the NME (all, jaw, inner) of every swap on every face both it and the fitter
    and dlib saw, and their means; the fitter's own beside them."""
    report: dict = {"fitter": {}, "networks": {name: {"faces": []} for name in networks}, "skipped": []}
    fitter_rows = []
    for name, image in images:
        fitter, reference = fitted[name], references[name]
        params = {net: found[name] for net, found in networks.items()}
        if fitter is None or reference is None or any(p is None for p in params.values()):
            report["skipped"].append(name)
            continue
        size = image.shape[:2]
        fitter_rows.append(_errors(model, fitter, size, reference))
        for net, network in params.items():
            assert network is not None
            row = {
                swap_name(swap): _errors(model, hybrid(network, fitter, swap), size, reference)
                for swap in SWAPS
            }
            report["networks"][net]["faces"].append({"face": name, **row})
    if not fitter_rows:
        raise SystemExit("no face was seen by dlib, the fitter and every network")
    report["fitter"] = _mean(fitter_rows)
    for net in networks:
        faces = report["networks"][net]["faces"]
        report["networks"][net]["mean"] = {
            swap_name(swap): _mean([face[swap_name(swap)] for face in faces]) for swap in SWAPS
        }
    return report


def _errors(
    model: FaceModel, face: FaceParams, size: tuple[int, int], reference: np.ndarray
) -> dict[str, float]:
    """:func:`bench.tracking.landmark_errors` of one face's 68 landmarks on an image of ``size`` (H, W)."""
    with torch.no_grad():
        points = landmarks68_2d(model, face, *size).double().numpy()
    return landmark_errors(points, reference)


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON report path")
    parser.add_argument("--photos", choices=("benchmark", "held-out", "clips"), default="benchmark")
    parser.add_argument(
        "--held-out-frames", type=int, default=8, help="frames of each clip (held-out, clips)"
    )
    parser.add_argument("--weights", type=Path, default=None, help="RecNet weights (default: the shipped)")
    parser.add_argument(
        "--etnet-weights",
        type=Path,
        default=None,
        help="ETNet weights (default: $JR2NET_ETNET or the shipped)",
    )
    args = parser.parse_args()
    model = FaceModel.load()
    dlib = DlibModels.load()
    images = accuracy_faces(args.photos, args.held_out_frames)
    weights = args.weights or default_weights()
    etnet_weights = args.etnet_weights or default_etnet_weights()
    networks = {"recnet": load_weights(weights), "recaugnet": load_recaugnet(weights, etnet_weights)}
    keys = {"recnet": weights, "recaugnet": (weights, etnet_weights)}
    with ExitStack() as stack:
        estimators: dict[str, FrameEstimator] = {"fitter": FitterEstimator(LandmarkFitter(model))}
        for label, net in networks.items():
            runner = stack.enter_context(OnnxRunner(cached_onnx(net, keys[label])))
            estimators[label] = RecNetEstimator(RecNetPredictor(net, runner, model))
        found = estimate_all(estimators, images)
    fitted = found.pop("fitter")
    references = {name: dlib.landmarks68(image) for name, image in images}
    report = nme_sources(model, images, fitted, found, references)
    fitter = report["fitter"]["nme"]
    print(f"{len(images) - len(report['skipped'])} faces ({args.photos}); fitter NME {100 * fitter:.2f} %")
    print(f"{'fitter groups swapped in':28s}" + "".join(f"{net:>22s}" for net in networks))
    for swap in SWAPS:
        cells = []
        for net in networks:
            figures = report["networks"][net]["mean"][swap_name(swap)]
            cells.append(f"{100 * figures['nme']:6.2f} % ({figures['nme'] / fitter:4.2f}×)")
        print(f"{swap_name(swap):28s}" + "".join(f"{cell:>22s}" for cell in cells))
    extra = {"photos": args.photos, "weights": str(weights), "etnet_weights": str(etnet_weights), **report}
    write_report(args.out, [], [torch.device("cpu")], extra)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
