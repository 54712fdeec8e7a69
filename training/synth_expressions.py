"""ETNet's training pairs: the training people's own faces driven to captured and large expressions.

    python -m jr2net.training.synth_expressions --out out/cache/expression_pairs
    python -m jr2net.training.synth_expressions --split validation --out out/cache/expression_pairs_val

For every photo and ``--frames-per-clip`` frames of every clip of one split (by person:
:func:`jr2net.training.crop_dataset.is_validation`), the face is reconstructed (shape, pose, light,
albedo) and prepared as a reenactment source; the reenactor then renders it with ``--per-source``
expressions in place of its own, keeping its shape, pose and light: half captured (the split's clips'
blendshape tracks), half large (:mod:`jr2net.training.expression_bank`). Each rendering is tracked
by MediaPipe, as a live frame would be, and aligned to a ``--crop-size`` crop
(:mod:`jr2net.alignment`); one MediaPipe finds no face in is skipped and counted. ``--refiner``
says what renders them: ``geometric`` (the default) or ``dcnet``, the learned generator
(``--dcnet-weights FILE``, default the shipped one), which fills the mouth, the eyes and the
face's edge instead of pasting the relit warp.

Written to ``--out``: ``crops.npy`` (N, S, S, 3) uint8, ``betas.npy`` (N, 53) float32 (the ICT
expression each crop was rendered with), ``meta.json`` (per pair its source and expression origin
and whether it is large or real; the counts, the split, the command and the commit) and
``contact_sheet.png`` (sources and some of their pairs, to look at).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm import tqdm

from jr2net.alignment import align_face
from jr2net.dcnet_renderer import DCNetRenderer
from jr2net.face_model import FaceModel
from jr2net.nets.checkpoint import provenance
from jr2net.nets.dcnet_checkpoint import default_dcnet_weights, load_dcnet
from jr2net.provenance import checkout_commit
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import FrameRenderer, GeometricRenderer, Reenactor, prepare_source
from jr2net.sources import limit_size
from jr2net.tracking import Tracker
from jr2net.training.crop_cache import TRAIN_MEDIA, split_images
from jr2net.training.crop_dataset import is_validation
from jr2net.training.expression_bank import CapturedFrame, Expression, captured_frames, large_expressions

DEFAULT_OUT = Path("out/cache/expression_pairs")
SPLITS = ("train", "validation")
SOURCE_SIZE = 512  # longest side a source is rendered at
SHEET_ROWS, SHEET_COLUMNS, SHEET_TILE = 8, 7, 112
RENDERERS = ("geometric", "dcnet")


@dataclass(frozen=True)
class SynthConfig:
    """What the pair set holds."""

    split: str = "train"
    per_source: int = 12
    frames_per_clip: int = 2
    capture_every: int = 10  # every n-th frame of each clip's blendshape track
    crop_size: int = 224
    seed: int = 0
    max_sources: int | None = None
    real_pairs: bool = False  # also the captured clip frames themselves, labelled by the blendshape map
    renderer: str = "geometric"  # what renders the pairs (one of RENDERERS)


@dataclass(frozen=True)
class ExpressionPair:
    """One rendered crop, the expression it was rendered with, and where both came from."""

    crop: np.ndarray
    expression: Expression
    source: str
    real: bool = False  # a real clip frame with its blendshape-mapped expression, not a rendering


def split_seed(config: SynthConfig) -> int:
    """The random seed of a split: the splits never share a sampled expression."""
    return config.seed * len(SPLITS) + SPLITS.index(config.split)


def expressions_for(
    model: FaceModel, bank: list[Expression], count: int, generator: np.random.Generator
) -> list[Expression]:
    """``count`` expressions for one source: half drawn from the captured ``bank``, the rest large
    ones sampled afresh (all large when the bank is empty)."""
    captured = count // 2 if bank else 0
    picks = (
        [bank[i] for i in generator.choice(len(bank), size=captured, replace=len(bank) < captured)]
        if captured
        else []
    )
    return picks + large_expressions(model, count - captured, generator)


def source_pairs(
    model: FaceModel,
    name: str,
    image: np.ndarray,
    expressions: list[Expression],
    reconstructor: Reconstructor,
    tracker: Tracker,
    crop_size: int,
    renderer: FrameRenderer,
) -> tuple[np.ndarray | None, list[ExpressionPair], int]:
    """The aligned crop of one source image and its pairs, and how many renderings had no face
    for MediaPipe; (None, [], 0) when the source itself has none."""
    image = limit_size(image, SOURCE_SIZE)
    result = reconstructor.image(image)
    if result.params is None:
        return None, [], 0
    source = prepare_source(model, image, result.params, landmarks=result.tracking.landmarks)
    reenactor = Reenactor(model, source, renderer=renderer)
    pairs, faceless = [], 0
    for expression in expressions:
        target = source.params.replace(expression=torch.from_numpy(expression.weights)[None])
        rendered = reenactor.render(target).image
        seen = tracker.track(np.ascontiguousarray(rendered))
        if not seen.face:
            faceless += 1
            continue
        crop = align_face(rendered, seen.landmarks[:, :2], crop_size).image
        pairs.append(ExpressionPair(crop, expression, name))
    own = align_face(image, result.tracking.landmarks[:, :2], crop_size).image
    return own, pairs, faceless


def contact_sheet(path: Path, rows: list[tuple[np.ndarray, list[ExpressionPair]]]) -> None:
    """Each row: a source crop, then some of its pairs, labelled with their expression's origin."""
    tile = SHEET_TILE
    sheet = Image.new("RGB", (SHEET_COLUMNS * tile, max(1, len(rows)) * (tile + 12)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (own, pairs) in enumerate(rows):
        top = r * (tile + 12)
        cells = [(own, "source")] + [(p.crop, p.expression.origin.split("#")[0][-18:]) for p in pairs]
        for c, (crop, label) in enumerate(cells[:SHEET_COLUMNS]):
            sheet.paste(Image.fromarray(crop).resize((tile, tile)), (c * tile, top))
            draw.text((c * tile + 2, top + tile), label, fill="black")
    sheet.save(path)


def real_pairs(frames: list[CapturedFrame], crop_size: int) -> list[ExpressionPair]:
    """Real clip frames as pairs: each aligned crop with the expression its blendshapes map to."""
    return [
        ExpressionPair(
            align_face(f.image, f.landmarks[:, :2], crop_size).image, f.expression, f.expression.origin, True
        )
        for f in frames
    ]


def pair_renderer(name: str, dcnet_weights: Path | None = None) -> FrameRenderer:
    """The frame renderer ``name`` (one of :data:`RENDERERS`); DCNet (``dcnet_weights``, default
    the shipped) runs in torch here, on each source's own crop size.

    Raises:
        ValueError: an unknown name, or DCNet weights that are no DCNet's.
        FileNotFoundError: no DCNet weights at ``dcnet_weights``.
    """
    if name not in RENDERERS:
        raise ValueError(f"unknown pair renderer {name!r}; choose from {RENDERERS}")
    if name == "geometric":
        return GeometricRenderer()
    net = load_dcnet(dcnet_weights)
    return DCNetRenderer(lambda size: net)


def dcnet_record(weights: Path | None) -> dict[str, object]:
    """Which DCNet weights rendered the pairs (default the shipped), and how they were made."""
    path = default_dcnet_weights() if weights is None else weights
    return {"weights": str(path), "provenance": provenance(path)}


def build_expression_pairs(
    model: FaceModel,
    images: list[tuple[str, np.ndarray]],
    bank: list[Expression],
    out: Path,
    config: SynthConfig,
    real: Sequence[ExpressionPair] = (),
    dcnet_weights: Path | None = None,
) -> dict[str, object]:
    """Render the pairs of ``images`` (named sources) into ``out`` with ``config.renderer`` (DCNet's
    weights: ``dcnet_weights``, default the shipped); the counts (as in meta.json)."""
    renderer = pair_renderer(config.renderer, dcnet_weights)
    generator = np.random.default_rng(split_seed(config))
    pairs: list[ExpressionPair] = []
    sheet_rows: list[tuple[np.ndarray, list[ExpressionPair]]] = []
    faceless_sources = faceless_renders = 0
    with Reconstructor(model, mode="image") as reconstructor, Tracker(mode="image") as tracker:
        for name, image in tqdm(images, desc="expression pairs", unit="source"):
            chosen = expressions_for(model, bank, config.per_source, generator)
            own, made, faceless = source_pairs(
                model, name, image, chosen, reconstructor, tracker, config.crop_size, renderer
            )
            if own is None:
                faceless_sources += 1
                continue
            faceless_renders += faceless
            pairs += made
            if len(sheet_rows) < SHEET_ROWS and made:
                sheet_rows.append((own, made))
    if not pairs:
        raise ValueError("no pair was made: no face found in the sources or in their renderings")
    pairs += real
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "crops.npy", np.stack([p.crop for p in pairs]))
    np.save(out / "betas.npy", np.stack([p.expression.weights for p in pairs]))
    contact_sheet(out / "contact_sheet.png", sheet_rows)
    counts = {
        "pairs": len(pairs),
        "large_pairs": sum(p.expression.large for p in pairs),
        "sources": len(images) - faceless_sources,
        "sources_without_face": faceless_sources,
        "renderings_without_face": faceless_renders,
        "captured_expressions": len(bank),
        "real_pairs": len(real),
    }
    meta = {
        **counts,
        "config": asdict(config),
        "renderer": config.renderer,
        "dcnet": dcnet_record(dcnet_weights) if config.renderer == "dcnet" else None,
        "expression_names": list(model.expression_names),
        "per_pair": [
            {
                "source": p.source,
                "expression": p.expression.origin,
                "large": p.expression.large,
                "real": p.real,
            }
            for p in pairs
        ],
        "command": " ".join(sys.argv),
        "commit": checkout_commit(),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})"
    )
    parser.add_argument("--train-media", type=Path, default=TRAIN_MEDIA, help="the training media's folder")
    parser.add_argument("--split", choices=SPLITS, default="train", help="whose faces (by person)")
    parser.add_argument(
        "--per-source", type=int, default=SynthConfig.per_source, help="pairs per source image"
    )
    parser.add_argument("--frames-per-clip", type=int, default=SynthConfig.frames_per_clip)
    parser.add_argument("--capture-every", type=int, default=SynthConfig.capture_every)
    parser.add_argument("--crop-size", type=int, default=SynthConfig.crop_size)
    parser.add_argument("--max-sources", type=int, help="stop after this many source images (a quick look)")
    parser.add_argument("--seed", type=int, default=SynthConfig.seed)
    parser.add_argument(
        "--real-pairs",
        action="store_true",
        help="also store the captured clip frames themselves, labelled by the blendshape map",
    )
    parser.add_argument(
        "--refiner",
        choices=RENDERERS,
        default=SynthConfig.renderer,
        help="what renders the pairs: geometric (relit warp, feathered paste) or dcnet (the learned "
        f"generator, in torch); default {SynthConfig.renderer}",
    )
    parser.add_argument("--dcnet-weights", type=Path, help="DCNet weights (default: the shipped ones)")
    args = parser.parse_args()
    try:
        pair_renderer(args.refiner, args.dcnet_weights)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    config = SynthConfig(
        args.split,
        args.per_source,
        args.frames_per_clip,
        args.capture_every,
        args.crop_size,
        args.seed,
        args.max_sources,
        args.real_pairs,
        args.refiner,
    )
    model = FaceModel.load()
    images = split_images(args.train_media, config.frames_per_clip, config.split)[: config.max_sources]
    clips = [
        p
        for p in sorted((args.train_media / "videos").glob("*.mp4"))
        if is_validation(p.name) == (config.split == "validation")
    ]
    print(f"{len(images)} source images, blendshape tracks of {len(clips)} clips", file=sys.stderr)
    frames = list(captured_frames(model, clips, config.capture_every))
    real = real_pairs(frames, config.crop_size) if config.real_pairs else []
    counts = build_expression_pairs(
        model, images, [f.expression for f in frames], args.out, config, real, args.dcnet_weights
    )
    print(json.dumps(counts))


if __name__ == "__main__":
    main()
