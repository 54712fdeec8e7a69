"""Expression accuracy of the fitter, RecNet, ETNet and RecAugNet: on the held-out people's
synthesised pairs, and on real clips of people no run saw.

    python -m bench.expressions --pairs out/cache/expression_pairs_val --etnet out/train_etnet/etnet.pt \\
        --out out/bench_expressions.json

Every pair of the validation split (:mod:`jr2net.training.synth_expressions --split validation`:
people no run trains on) is a crop rendered with a known ICT expression β_gt. Each method reads
the crop as it would a live frame: the fitter (MediaPipe landmarks, one photo), RecNet (the
shipped weights, on the crop), ETNet (``--etnet``, default ``$JR2NET_ETNET`` or the shipped
weights, on the crop resized to its input size) and RecAugNet (that RecNet with that ETNet as its
expression head, on the crop as the commands run it: its figures are ETNet's up to rounding, a
check of that path). Reported per method, over all pairs and over the large and the ordinary ones
(:mod:`jr2net.training.expression_bank`): the mean absolute error over the 53 weights, the same
over the weights active in the truth (β_gt ≥ 0.3: what a large expression is made of), and the
pairs it found no face in; every method is scored on the pairs all of them found a face in.

Real faces (AED-style, no β_gt there): ``--frames-per-clip`` frames of each real clip (the training
media's validation people and the shared driving clips) are reconstructed by the fitter (identity,
pose, light, albedo); the face is rendered with the fitter's own expression and each network's
(each read from the frame's aligned crop, put on the fitter's face), and MediaPipe's 51 expression
blendshapes of each render are compared with those of the frame itself: the mean absolute
difference over all frames and over the frames with a large expression (a blendshape other than
gaze at 0.5 or more).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.timing import write_report
from jr2net.alignment import align_face
from jr2net.assets import repository_root
from jr2net.face_model import FaceModel
from jr2net.nets.checkpoint import load_weights
from jr2net.nets.etnet import default_etnet_weights, input_size, load_etnet
from jr2net.nets.recaugnet import RecAugNet
from jr2net.nets.recnet import crop_images
from jr2net.reconstruct import Reconstructor
from jr2net.render import render_face
from jr2net.tracking import Tracking
from jr2net.training.crop_cache import TRAIN_MEDIA, clip_frames
from jr2net.training.crop_dataset import is_validation
from jr2net.training.expression_pairs import PairSet

ACTIVE = 0.3  # a weight of the truth counts as active from here
LARGE_BLENDSHAPE = 0.5  # a real frame's expression is large when a blendshape other than gaze reaches this
SHARED_CLIPS = repository_root().parent / "shared" / "media" / "liveportrait" / "driving"
BACKGROUND = 0.5
CROP = 224


def _errors(
    predicted: np.ndarray, truth: np.ndarray, large: np.ndarray, scored: np.ndarray
) -> dict[str, float | int]:
    """MAE over all weights and over the truth's active ones, for all, large and ordinary pairs,
    over the ``scored`` pairs (those every method found a face in); ``no_face`` counts this one's misses."""
    found = scored & ~np.isnan(predicted).any(axis=1)
    difference = np.abs(predicted - truth)
    active = truth >= ACTIVE
    row: dict[str, float | int] = {"pairs": len(truth), "no_face": int(np.isnan(predicted).any(axis=1).sum())}
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


def real_clips() -> list[Path]:
    """The training media's validation people's clips and the shared driving clips."""
    held_out = [p for p in sorted((TRAIN_MEDIA / "videos").glob("*.mp4")) if is_validation(p.name)]
    return held_out + sorted(SHARED_CLIPS.glob("*.mp4"))


def _expression_blendshapes(seen: Tracking) -> dict[str, float] | None:
    """A tracked image's blendshapes but ``_neutral`` (51, by name), or None without a face."""
    if not seen.face:
        return None
    return {n: float(v) for n, v in zip(seen.blendshape_names, seen.blendshapes) if n != "_neutral"}


def _is_large(scores: dict[str, float]) -> bool:
    return any(v >= LARGE_BLENDSHAPE for n, v in scores.items() if not n.startswith("eyeLook"))


def _difference(scores: dict[str, float], truth: dict[str, float]) -> float:
    return float(np.mean([abs(scores[name] - value) for name, value in truth.items()]))


def real_face_errors(
    model: FaceModel, clips: list[Path], per_clip: int, readers: dict[str, Callable[[np.ndarray], np.ndarray]]
) -> list[dict[str, object]]:
    """Per method (``fitter`` and each crop reader), the blendshape error of renders of real frames."""
    differences: dict[str, list[float]] = {"fitter": [], **{name: [] for name in readers}}
    large: list[bool] = []
    with Reconstructor(model, mode="image") as reconstructor:
        tracker = reconstructor.tracker  # image mode: renders are tracked as the frame was
        for path in tqdm(clips, desc="real clips", unit="clip"):
            for frame in clip_frames(path, per_clip):
                result = reconstructor.image(frame)
                truth = _expression_blendshapes(result.tracking)
                if result.params is None or truth is None:
                    continue
                crop = align_face(frame, result.tracking.landmarks[:, :2], CROP).image
                expressions = {"fitter": result.params.expression}
                expressions |= {name: torch.from_numpy(read(crop))[None] for name, read in readers.items()}
                rendered = {}
                for name, expression in expressions.items():
                    with torch.no_grad():
                        maps = render_face(
                            model, result.params.replace(expression=expression), *frame.shape[:2]
                        )
                    image = maps.image[0] * maps.mask[0] + BACKGROUND * (1 - maps.mask[0])
                    pixels = (image.permute(1, 2, 0) * 255).byte().numpy()
                    rendered[name] = _expression_blendshapes(tracker.track(np.ascontiguousarray(pixels)))
                if any(scores is None for scores in rendered.values()):
                    continue
                large.append(_is_large(truth))
                for name, scores in rendered.items():
                    differences[name].append(_difference(scores, truth))
    chosen = np.array(large, dtype=bool)
    rows = []
    for name, values in differences.items():
        values_array = np.array(values)
        rows.append(
            {
                "op": f"real_{name}",
                "frames": len(values),
                "large_frames": int(chosen.sum()),
                "blendshape_error_all": float(values_array.mean()) if len(values) else float("nan"),
                "blendshape_error_large": float(values_array[chosen].mean())
                if chosen.any()
                else float("nan"),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pairs", type=Path, required=True, help="the validation split's pair set")
    parser.add_argument(
        "--etnet", type=Path, default=None, help="ETNet weights (default: $JR2NET_ETNET or the shipped ones)"
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON report path")
    parser.add_argument("--frames-per-clip", type=int, default=8, help="real frames per clip (0: none)")
    args = parser.parse_args()
    model = FaceModel.load()
    pairs = PairSet(args.pairs)
    recnet = load_weights()
    methods = {
        "fitter": _fitter(model),
        "recnet": _network(recnet, pairs.crops.shape[1], lambda x: recnet.decode(recnet(x)).expression),
    }
    etnet_weights = default_etnet_weights() if args.etnet is None else args.etnet
    etnet, provenance = load_etnet(etnet_weights)
    methods["etnet"] = _network(etnet, input_size(provenance), etnet)
    recaugnet = RecAugNet(recnet, etnet, input_size(provenance)).eval()
    methods["recaugnet"] = _network(
        recaugnet, pairs.crops.shape[1], lambda x: recaugnet.decode(recaugnet(x)).expression
    )
    predictions = {
        name: np.stack([read(np.asarray(crop)) for crop in tqdm(pairs.crops, desc=name, unit="pair")])
        for name, read in methods.items()
    }
    found = np.all(
        [~np.isnan(p).any(axis=1) for p in predictions.values()], axis=0
    )  # every method: same pairs
    runs = []
    for name, predicted in predictions.items():
        runs.append({"op": name, **_errors(predicted, pairs.betas, pairs.large, found)})
        row = runs[-1]
        print(
            f"{name:9s} MAE all {row['mae_all']:.4f} large {row['mae_large']:.4f} "
            f"ordinary {row['mae_ordinary']:.4f}; "
            f"on active weights all {row['mae_active_all']:.4f} large {row['mae_active_large']:.4f}; "
            f"no face {row['no_face']}/{row['pairs']}"
        )
    if args.frames_per_clip:
        readers = {name: read for name, read in methods.items() if name != "fitter"}
        for row in real_face_errors(model, real_clips(), args.frames_per_clip, readers):
            runs.append(row)
            print(
                f"{row['op']:12s} blendshape error of the render against the frame: "
                f"all {row['blendshape_error_all']:.4f}, large {row['blendshape_error_large']:.4f} "
                f"({row['frames']} frames, {row['large_frames']} large)"
            )
    extra = {"pairs": str(args.pairs), "etnet": str(etnet_weights)}
    write_report(args.out, runs, [torch.device("cpu")], extra)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
