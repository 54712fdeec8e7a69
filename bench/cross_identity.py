"""Cross-identity reenactment: sources driven by clips of other people (no ground truth).

The benchmark's pairs (:func:`photo_pairs`): the source photos, scaled down to 512 px on the long
side (the reenact CLI's default working size), each driven by every shared clip, except d19.jpg ×
d18.mp4 (the same man), which is the identity anchor instead. A decision set's pairs
(:func:`clip_pairs`): each clip's first frame driven by the next clips of the set. Per pair and
method: the identity distance to the source (dlib 128-D descriptors, Euclidean; same person ≈
0.40, different ≈ 0.74), mean over :data:`IDENTITY_SAMPLES` evenly spaced output frames, beside
the source's own distance to the driver's first frame; and motion transfer of every output frame
against its driving frame (:mod:`bench.motion_transfer`: blendshape and head-angle correlation,
expression error).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from bench.clips import MEDIA, SAME_PERSON, SOURCES, clip_length, read_clip
from bench.contact_sheet import tile
from bench.motion_transfer import motion_row, motion_transfer
from bench.reenact_methods import DrivingFrame, Method
from jr2net.dlib_reference import DlibModels
from jr2net.media import read_image
from jr2net.sources import limit_size
from jr2net.tracking import Tracker

IDENTITY_SAMPLES = 6
WORKING_SIZE = 512
FIGURES = ("identity_distance", "blendshape_r", "angle_r", "expression_error")


def _sampled(count: int) -> set[int]:
    """:data:`IDENTITY_SAMPLES` evenly spaced frame indices of ``count`` frames (mid-interval)."""
    return {min(count - 1, int((k + 0.5) * count / IDENTITY_SAMPLES)) for k in range(IDENTITY_SAMPLES)}


def _distance(dlib: DlibModels, reference: np.ndarray | None, image: np.ndarray) -> float | None:
    """Euclidean distance of an image's face descriptor to ``reference``; None without either."""
    descriptor = dlib.descriptor(image)
    if reference is None or descriptor is None:
        return None
    return float(np.linalg.norm(descriptor - reference))


def _mean(values: list[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return float(np.mean(present)) if present else None


def _score_method(
    method: Method,
    source: np.ndarray,
    frames: list[DrivingFrame],
    driver: np.ndarray,
    identity: tuple[DlibModels, np.ndarray | None],
    tracker: Tracker,
    bar: tqdm,
) -> tuple[dict, Image.Image]:
    """One method on one pair: its figures and its middle-frame tile."""
    dlib, reference = identity
    samples, middle = _sampled(len(frames)), len(frames) // 2
    rows, distances, held, middle_tile = [], [], 0, None
    for index, output in enumerate(method(source, iter(frames))):
        rows.append(motion_row(tracker, output.image))
        held += output.held
        if index in samples:
            distances.append(_distance(dlib, reference, output.image))
        if index == middle:
            middle_tile = tile(output.image)
        bar.update()
    if len(rows) != len(frames):
        raise ValueError(f"a method gave {len(rows)} frames for {len(frames)} driving frames")
    figures = {
        "identity_distance": _mean(distances),
        "identity_frames": sum(d is not None for d in distances),
        **motion_transfer(np.stack(rows), driver),
        "held_frames": held,
    }
    return figures, middle_tile


@dataclass(frozen=True)
class CrossPairs:
    """What a cross-identity run drives: ``sources`` by name (RGB uint8 (H, W, 3)), the ``pairs``
    (source name, driving clip) in the order they run, and optionally the ``anchor`` (source name,
    clip stem): the same person's source and clip, whose distance is the one to beat."""

    sources: dict[str, np.ndarray]
    pairs: list[tuple[str, Path]]
    anchor: tuple[str, str] | None = None


def photo_pairs(paths: list[Path]) -> CrossPairs:
    """The benchmark's pairs: every source photo (:data:`bench.clips.SOURCES`, at most
    :data:`WORKING_SIZE`) driven by every clip of ``paths``, except the same person's
    (:data:`bench.clips.SAME_PERSON`), the anchor."""
    sources = {name: limit_size(read_image(MEDIA / name), WORKING_SIZE) for name in SOURCES}
    pairs = [(name, path) for path in paths for name in SOURCES if (name, path.stem) != SAME_PERSON]
    return CrossPairs(sources, pairs, SAME_PERSON)


def clip_pairs(paths: list[Path], drivers_each: int) -> CrossPairs:
    """A decision set's pairs: each clip's first frame (at most :data:`WORKING_SIZE`), named by the
    clip's stem, driven by the ``drivers_each`` clips after it in ``paths`` (cyclically)."""
    if not 0 < drivers_each < len(paths):
        raise ValueError(
            f"each of {len(paths)} clips can be driven by 1 to {len(paths) - 1} others, not {drivers_each}"
        )
    sources = {path.stem: limit_size(read_clip(path, 1)[0][2], WORKING_SIZE) for path in paths}
    pairs = [
        (path.stem, paths[(index + step) % len(paths)])
        for index, path in enumerate(paths)
        for step in range(1, drivers_each + 1)
    ]
    return CrossPairs(sources, pairs)


def _anchor(
    dlib: DlibModels, anchor: tuple[str, str], reference: np.ndarray | None, frames: list[DrivingFrame]
) -> dict:
    """The same person's source (its descriptor ``reference``) against sampled frames of their clip:
    the distance to beat."""
    distances = [_distance(dlib, reference, frames[i][2]) for i in sorted(_sampled(len(frames)))]
    return {"photo": anchor[0], "clip": anchor[1], "identity_distance": _mean(distances)}


def cross_identity(
    cross: CrossPairs, methods: dict[str, Method], limit: int
) -> tuple[dict, list[tuple[str, list[Image.Image]]]]:
    """Every pair run by every method: the report and the contact-sheet rows (driver, source, methods)."""
    dlib = DlibModels.load()
    references = {name: dlib.descriptor(image) for name, image in cross.sources.items()}
    paths = list(dict.fromkeys(path for _, path in cross.pairs))
    total = sum(clip_length(path, limit) for path in paths) + sum(
        clip_length(path, limit) * len(methods) for _, path in cross.pairs
    )
    rows, sheet, anchor = [], [], None
    with Tracker(mode="image") as tracker, tqdm(total=total, unit="frame", desc="cross-identity") as bar:
        for path in paths:
            frames = read_clip(path, limit)
            bar.set_description(f"{path.stem} driver")
            driver = np.stack([motion_row(tracker, image) for _, _, image in frames])
            bar.update(len(frames))
            if cross.anchor and path.stem == cross.anchor[1]:
                anchor = _anchor(dlib, cross.anchor, references[cross.anchor[0]], frames)
            first = frames[0][2]
            for name in [name for name, driving in cross.pairs if driving == path]:
                source = cross.sources[name]
                scores, tiles = {}, [tile(frames[len(frames) // 2][2]), tile(source)]
                for method_name, method in methods.items():
                    bar.set_description(f"{Path(name).stem}×{path.stem} {method_name}")
                    identity = (dlib, references[name])
                    scores[method_name], middle = _score_method(
                        method, source, frames, driver, identity, tracker, bar
                    )
                    tiles.append(middle)
                rows.append(
                    {
                        "source": name,
                        "source_size": list(source.shape[:2]),
                        "driving": path.stem,
                        "frames": len(frames),
                        "source_to_driver_distance": _distance(dlib, references[name], first),
                        "methods": scores,
                    }
                )
                sheet.append((f"{Path(name).stem} x {path.stem}", tiles))
    mean = {
        method_name: {
            figure: _mean([row["methods"][method_name][figure] for row in rows]) for figure in FIGURES
        }
        for method_name in methods
    }
    report = {
        "pairs": rows,
        "mean": mean,
        "mean_source_to_driver_distance": _mean([row["source_to_driver_distance"] for row in rows]),
        "same_person_anchor": anchor,
    }
    return report, sheet
