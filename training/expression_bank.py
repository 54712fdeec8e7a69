"""The expressions ETNet's training pairs are made with: captured tracks and sampled large ones.

Two kinds (issue 23, the paper's synthesised large-expression data):

- **captured**: the MediaPipe blendshape tracks of the training clips, frame by frame, mapped to
  ICT's 53 expressions (:class:`jr2net.correspondence.MediapipeCorrespondence`): what people do
  while talking (with the frames themselves: real faces labelled by that map);
- **large**: expressions the trackers handle worst, sampled from presets (:data:`LARGE_PRESETS`:
  puckers, cheek puffs, a wide jaw, one-sided smiles and sneers, closed and squinting eyes, raised
  and lowered brows), each at a random strength from its range, one or two presets at once.

Each expression keeps where it came from (``clip.mp4#frame`` or ``large:preset+preset``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from jr2net.correspondence import MediapipeCorrespondence
from jr2net.face_model import FaceModel
from jr2net.media import iter_video_frames
from jr2net.tracking import Tracker

LARGE_PRESETS: Mapping[str, Mapping[str, tuple[float, float]]] = {
    "pucker": {"mouthPucker": (0.7, 1.0), "mouthFunnel": (0.0, 0.4)},
    "cheek_puff": {"cheekPuff": (0.6, 1.0), "mouthClose": (0.2, 0.5)},
    "wide_jaw": {"jawOpen": (0.7, 1.0), "mouthStretch_L": (0.2, 0.6), "mouthStretch_R": (0.2, 0.6)},
    "smile_left": {"mouthSmile_L": (0.7, 1.0), "cheekSquint_L": (0.3, 0.8), "eyeSquint_L": (0.2, 0.6)},
    "smile_right": {"mouthSmile_R": (0.7, 1.0), "cheekSquint_R": (0.3, 0.8), "eyeSquint_R": (0.2, 0.6)},
    "sneer_left": {"noseSneer_L": (0.6, 1.0), "mouthUpperUp_L": (0.4, 0.9)},
    "sneer_right": {"noseSneer_R": (0.6, 1.0), "mouthUpperUp_R": (0.4, 0.9)},
    "eyes_closed": {"eyeBlink_L": (0.8, 1.0), "eyeBlink_R": (0.8, 1.0)},
    "wink_left": {"eyeBlink_L": (0.8, 1.0), "cheekSquint_L": (0.2, 0.6)},
    "squint": {
        "eyeSquint_L": (0.6, 1.0),
        "eyeSquint_R": (0.6, 1.0),
        "browDown_L": (0.2, 0.6),
        "browDown_R": (0.2, 0.6),
    },
    "brows_up": {
        "browInnerUp": (0.6, 1.0),
        "browOuterUp_L": (0.5, 1.0),
        "browOuterUp_R": (0.5, 1.0),
        "eyeWide_L": (0.3, 0.8),
        "eyeWide_R": (0.3, 0.8),
    },
    "jaw_side": {"jawLeft": (0.5, 1.0), "jawOpen": (0.1, 0.4), "mouthLeft": (0.3, 0.7)},
    "frown": {"mouthFrown_L": (0.6, 1.0), "mouthFrown_R": (0.6, 1.0), "mouthShrugLower": (0.3, 0.8)},
}
LARGE_THRESHOLD = 0.6  # an expression is "large" when a weight that shapes the face reaches this
GAZE_PREFIX = "eyeLook"  # gaze turns the eyes more than it shapes the face: it never makes one large


@dataclass(frozen=True)
class Expression:
    """One expression: (E,) ICT weights in [0, 1], where it came from, and whether it is large."""

    weights: np.ndarray
    origin: str
    large: bool


def expression(model: FaceModel, weights: np.ndarray, origin: str) -> Expression:
    """An :class:`Expression`, large when a weight other than gaze reaches :data:`LARGE_THRESHOLD`."""
    shaping = [not name.startswith(GAZE_PREFIX) for name in model.expression_names]
    large = bool((weights[shaping] >= LARGE_THRESHOLD).any())
    return Expression(weights.astype(np.float32), origin, large)


def large_expressions(model: FaceModel, count: int, generator: np.random.Generator) -> list[Expression]:
    """``count`` freshly sampled large expressions: one preset, or two that touch different weights."""
    names = sorted(LARGE_PRESETS)
    expressions = []
    while len(expressions) < count:
        chosen = [names[generator.integers(len(names))]]
        if generator.random() < 0.35:
            other = names[generator.integers(len(names))]
            if not set(LARGE_PRESETS[other]) & set(LARGE_PRESETS[chosen[0]]):
                chosen.append(other)
        weights: dict[str, float] = {}
        for preset in chosen:
            for name, (low, high) in LARGE_PRESETS[preset].items():
                weights[name] = float(generator.uniform(low, high))
        expressions.append(
            expression(model, model.expression_vector(weights).numpy(), "large:" + "+".join(chosen))
        )
    return expressions


@dataclass(frozen=True)
class CapturedFrame:
    """A clip frame with a face: its (H, W, 3) RGB pixels, (478, 3) tracked landmarks and expression."""

    image: np.ndarray
    landmarks: np.ndarray
    expression: Expression


def captured_frames(model: FaceModel, clips: Iterable[Path], every: int) -> Iterator[CapturedFrame]:
    """Every ``every``-th frame with a face of each clip, its tracked blendshapes mapped to ICT weights."""
    correspondence = MediapipeCorrespondence.load(model)
    with Tracker(mode="image") as tracker:
        for path in clips:
            for index, _, image in iter_video_frames(path):
                if index % every:
                    continue
                seen = tracker.track(image)
                if not seen.face:
                    continue
                scores = dict(zip(seen.blendshape_names, seen.blendshapes))
                ordered = torch.tensor([[scores.get(n, 0.0) for n in correspondence.blendshape_names]])
                weights = correspondence.expression_from_blendshapes(ordered)[0].clamp(0, 1)
                captured = expression(model, weights.numpy(), f"{path.name}#{index}")
                yield CapturedFrame(image, seen.landmarks, captured)


def captured_expressions(model: FaceModel, clips: Iterable[Path], every: int) -> list[Expression]:
    """The expressions of :func:`captured_frames`."""
    return [frame.expression for frame in captured_frames(model, clips, every)]
