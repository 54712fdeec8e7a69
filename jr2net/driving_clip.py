"""A synthetic driving clip: the face model acting a scripted expression and head-turn sequence,
rendered with the project's renderer, so a demo or test needs no third-party media.

The script, in fractions of the clip's length: a neutral frontal hold; the jaw opens and closes; a
smile with a blink; a head turn (yaw +20° then −20°, pitch up then down a little) with a second blink;
and a neutral frontal hold again. Each track is eased between its keyframes (cosine ease: zero
velocity at every key), so the motion is smooth and the clip is the same on every run.

The driver is framed like the built-in avatar (:mod:`jr2net.avatar`: same camera, light, skin and
background) but has an identity of its own, so a reenacted avatar is visibly not the driver.
MediaPipe tracks it in every frame (``tests/jr2net/test_driving_clip.py``).
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from jr2net.avatar import portrait_params, render_portrait
from jr2net.face_model import FaceModel
from jr2net.media import VideoWriter
from jr2net.params import FaceParams

Keyframes = tuple[tuple[float, float], ...]  # (phase in [0, 1], value), phases increasing

EXPRESSION_KEYS: dict[str, Keyframes] = {  # names as FaceModel.expression_vector takes them
    "jawOpen": ((0.10, 0.0), (0.20, 0.7), (0.30, 0.0)),
    "mouthSmile": ((0.30, 0.0), (0.40, 0.8), (0.50, 0.0)),  # both halves, _L and _R
    "eyeBlink": ((0.39, 0.0), (0.42, 1.0), (0.45, 0.0), (0.71, 0.0), (0.74, 1.0), (0.77, 0.0)),
}
YAW_KEYS_DEG: Keyframes = ((0.50, 0.0), (0.62, 20.0), (0.78, -20.0), (0.90, 0.0))
PITCH_KEYS_DEG: Keyframes = ((0.50, 0.0), (0.62, -6.0), (0.78, 6.0), (0.90, 0.0))  # positive: face down
IDENTITY_SEED = 0
IDENTITY_SCALE = 0.8  # standard deviations of the driver's identity coefficients


def eased(keys: Keyframes, phases: np.ndarray) -> np.ndarray:
    """A keyframed track at (N,) phases -> (N,) values: cosine-eased between keys, held outside them."""
    times = np.array([t for t, _ in keys])
    values = np.array([v for _, v in keys])
    segment = np.clip(np.searchsorted(times, phases, side="right") - 1, 0, len(keys) - 2)
    start, stop = times[segment], times[segment + 1]
    progress = np.clip((phases - start) / (stop - start), 0.0, 1.0)
    weight = 0.5 - 0.5 * np.cos(math.pi * progress)
    return values[segment] + (values[segment + 1] - values[segment]) * weight


def driver_identity(model: FaceModel) -> torch.Tensor:
    """The driver's (1, I) identity coefficients: fixed, and not the avatar's mean face."""
    generator = torch.Generator().manual_seed(IDENTITY_SEED)
    return IDENTITY_SCALE * torch.randn(1, model.identity_count, generator=generator)


def driving_params(model: FaceModel, size: int, frames: int) -> list[FaceParams]:
    """The scripted sequence as ``frames`` FaceParams (each a batch of one, with albedo), framed for a
    (size, size) image; frame 0 is neutral and frontal, frame ``frames - 1`` ends the script."""
    if frames < 2:
        raise ValueError(f"a driving clip needs at least 2 frames, got {frames}")
    phases = np.linspace(0.0, 1.0, frames)
    weights = {name: eased(keys, phases) for name, keys in EXPRESSION_KEYS.items()}
    angles = np.radians(np.stack([eased(PITCH_KEYS_DEG, phases), eased(YAW_KEYS_DEG, phases)], axis=1))
    base = portrait_params(model, size)
    base = base.replace(
        identity=driver_identity(model), albedo=base.albedo_or_default(model.vertex_count).clone()
    )
    return [
        base.replace(
            expression=model.expression_vector({name: float(w[i]) for name, w in weights.items()})[None],
            rotation=torch.tensor([[angles[i, 0], angles[i, 1], 0.0]], dtype=torch.float32),
        )
        for i in range(frames)
    ]


def render_driving_clip(
    model: FaceModel, path: Path, size: int = 320, seconds: float = 5.0, fps: int = 30
) -> Path:
    """Render the scripted sequence to an H.264 MP4 of ``round(seconds * fps)`` (size, size) frames at
    ``fps``; returns ``path``. About 10 ms a frame at 320² on one CPU core, plus encoding."""
    frames = round(seconds * fps)
    with VideoWriter(path, Fraction(fps), size, size) as writer:
        for params in tqdm(
            driving_params(model, size, frames), desc="driving clip", unit="frame", delay=3, leave=False
        ):
            writer.write(render_portrait(model, params, size))
    return Path(path)
