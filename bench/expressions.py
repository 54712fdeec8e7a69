"""Expression accuracy on the held-out people's synthesised pairs: the fitter, RecNet and ETNet.

    python -m bench.expressions --pairs out/cache/expression_pairs_val --etnet out/train_etnet/etnet.pt \\
        --out out/bench_expressions.json

Every pair of the validation split (:mod:`jr2net.training.synth_expressions --split validation`:
people no run trains on) is a crop rendered with a known ICT expression β_gt. Each method reads
the crop as it would a live frame: the fitter (MediaPipe landmarks, one photo), RecNet (the
shipped weights, on the crop) and ETNet (``--etnet``). Reported per method, over all pairs and
over the large and the ordinary ones (:mod:`jr2net.training.expression_bank`): the mean absolute
error over the 53 weights, the same over the weights active in the truth (β_gt ≥ 0.3: what a large
expression is made of), and the pairs it found no face in.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.timing import write_report
from jr2net.face_model import FaceModel
from jr2net.nets.checkpoint import load_weights
from jr2net.nets.etnet import load_etnet
from jr2net.nets.recnet import crop_images
from jr2net.reconstruct import Reconstructor
from jr2net.training.train_etnet import PairSet

ACTIVE = 0.3  # a weight of the truth counts as active from here


def _errors(predicted: np.ndarray, truth: np.ndarray, large: np.ndarray) -> dict[str, float | int]:
    """MAE over all weights and over the truth's active ones, for all, large and ordinary pairs."""
    found = ~np.isnan(predicted).any(axis=1)
    difference = np.abs(predicted - truth)
    active = truth >= ACTIVE
    row: dict[str, float | int] = {"pairs": len(truth), "no_face": int((~found).sum())}
    for name, subset in (("all", found), ("large", found & large), ("ordinary", found & ~large)):
        row[f"mae_{name}"] = float(difference[subset].mean()) if subset.any() else float("nan")
        chosen = active & subset[:, None]
        row[f"mae_active_{name}"] = float(difference[chosen].mean()) if chosen.any() else float("nan")
    return row


def _fitter(model: FaceModel) -> Callable[[np.ndarray], np.ndarray]:
    reconstructor = Reconstructor(model, mode="image")

    def read(crop: np.ndarray) -> np.ndarray:
        result = reconstructor.image(np.ascontiguousarray(crop))
        if result.params is None:
            return np.full(model.expression_count, np.nan, np.float32)
        return result.params.expression[0].numpy()

    return read


def _network(
    net: torch.nn.Module, size: int, expression: Callable[[torch.Tensor], torch.Tensor]
) -> Callable[[np.ndarray], np.ndarray]:
    def read(crop: np.ndarray) -> np.ndarray:
        images = crop_images(crop[None])
        if images.shape[-1] != size:
            images = torch.nn.functional.interpolate(
                images, size=(size, size), mode="bilinear", antialias=True
            )
        with torch.no_grad():
            return expression(images)[0].numpy()

    return read


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=Path, required=True, help="the validation split's pair set")
    parser.add_argument("--etnet", type=Path, help="ETNet weights (left out without)")
    parser.add_argument("--out", type=Path, required=True, help="JSON report path")
    args = parser.parse_args()
    model = FaceModel.load()
    pairs = PairSet(args.pairs)
    recnet = load_weights()
    methods = {
        "fitter": _fitter(model),
        "recnet": _network(recnet, pairs.crops.shape[1], lambda x: recnet.decode(recnet(x)).expression),
    }
    if args.etnet is not None:
        etnet, provenance = load_etnet(args.etnet)
        methods["etnet"] = _network(etnet, int(provenance["config"]["input_size"]), etnet)
    runs = []
    for name, read in methods.items():
        predicted = np.stack([read(np.asarray(crop)) for crop in tqdm(pairs.crops, desc=name, unit="pair")])
        runs.append({"op": name, **_errors(predicted, pairs.betas, pairs.large)})
        row = runs[-1]
        print(
            f"{name:8s} MAE all {row['mae_all']:.4f} large {row['mae_large']:.4f} "
            f"ordinary {row['mae_ordinary']:.4f}; "
            f"on active weights all {row['mae_active_all']:.4f} large {row['mae_active_large']:.4f}; "
            f"no face {row['no_face']}/{row['pairs']}"
        )
    write_report(args.out, runs, [torch.device("cpu")], {"pairs": str(args.pairs), "etnet": str(args.etnet)})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
