"""Cross-identity reenactment: source photos driven by the shared clips (no ground truth).

Sources larger than 512 px are scaled down to 512 on the long side (the reenact CLI's default
working size). Every source × clip pair runs except d19.jpg × d18.mp4 (the same man), which is
the identity anchor instead. Per pair and method: the identity distance to the source (dlib 128-D
descriptors, Euclidean; same person ≈ 0.40, different ≈ 0.74), mean over
:data:`IDENTITY_SAMPLES` evenly spaced output frames, beside the source's own distance to the
driver's first frame; and motion transfer of every output frame against its driving frame
(:mod:`bench.motion_transfer`: blendshape and head-angle correlation, expression error).
"""

from __future__ import annotations

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


def _anchor(dlib: DlibModels, photo: np.ndarray, frames: list[DrivingFrame]) -> dict:
    """The same person's photo against sampled frames of their clip: the distance to beat."""
    reference = dlib.descriptor(photo)
    distances = [_distance(dlib, reference, frames[i][2]) for i in sorted(_sampled(len(frames)))]
    return {"photo": SAME_PERSON[0], "clip": SAME_PERSON[1], "identity_distance": _mean(distances)}


def cross_identity(
    paths: list[Path], methods: dict[str, Method], limit: int
) -> tuple[dict, list[tuple[str, list[Image.Image]]]]:
    """Every pair run by every method: the report and the contact-sheet rows (driver, source, methods)."""
    dlib = DlibModels.load()
    sources = {name: limit_size(read_image(MEDIA / name), WORKING_SIZE) for name in SOURCES}
    references = {name: dlib.descriptor(image) for name, image in sources.items()}
    pairs = [(name, path) for path in paths for name in SOURCES if (name, path.stem) != SAME_PERSON]
    total = sum(clip_length(path, limit) for path in paths) + sum(
        clip_length(path, limit) * len(methods) for _, path in pairs
    )
    rows, sheet, anchor = [], [], None
    with Tracker(mode="image") as tracker, tqdm(total=total, unit="frame", desc="cross-identity") as bar:
        for path in paths:
            frames = read_clip(path, limit)
            bar.set_description(f"{path.stem} driver")
            driver = np.stack([motion_row(tracker, image) for _, _, image in frames])
            bar.update(len(frames))
            if path.stem == SAME_PERSON[1]:
                anchor = _anchor(dlib, sources[SAME_PERSON[0]], frames)
            first = frames[0][2]
            for name, source in sources.items():
                if (name, path.stem) == SAME_PERSON:
                    continue
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
