"""The reenactment methods the quality benchmark compares, by name.

A method takes the source (RGB uint8 (H, W, 3)) and the driving frames ``(index, time_s, RGB
uint8)`` (as :func:`jr2net.media.iter_video_frames` yields them) and yields one
:class:`MethodFrame` of the source's size per driving frame, in order, also where it found no
face in the driving frame (then it repeats its last output, or the source before any).

``geometric`` and ``dcnet`` are the same 3D path with the two frame renderers (``--refiner``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from bench.piecewise_warp import PiecewiseAffineWarp
from jr2net.commands.refiner import RefinerChoice
from jr2net.face_model import FaceModel
from jr2net.landmark_pinning import transfer_landmarks
from jr2net.reconstruct import Reconstructor
from jr2net.reenact import Reenactor
from jr2net.sources import computing_source, source_from_image
from jr2net.tracking import Tracker

DrivingFrame = tuple[int, float, np.ndarray]


@dataclass(frozen=True)
class MethodFrame:
    """One output frame: RGB uint8 (H, W, 3) of the source's size, and whether it was held (the
    method saw no face in its driving frame and repeated its last output or the source)."""

    image: np.ndarray
    held: bool


Method = Callable[[np.ndarray, Iterable[DrivingFrame]], Iterator[MethodFrame]]


def static(source: np.ndarray, driving: Iterable[DrivingFrame]) -> Iterator[MethodFrame]:
    """The source itself for every driving frame: the floor any method must clear."""
    for _ in driving:
        yield MethodFrame(source, held=False)


def warp2d(source: np.ndarray, driving: Iterable[DrivingFrame]) -> Iterator[MethodFrame]:
    """The source warped piecewise-affinely (:mod:`bench.piecewise_warp`) by MediaPipe landmarks.

    Target landmarks: the source's, moved by the driving landmarks' motion since the first driving
    frame with a face, that motion mapped into the source by the similarity (scale, rotation) fitted
    from that first frame's landmarks onto the source's. In self-reenactment (the source is that
    first frame, and MediaPipe gives identical landmarks for it in image and video mode) the
    similarity is the identity and the targets are the driving frame's own landmarks.
    """
    with Tracker(mode="image") as tracker:
        seen = tracker.track(source)
    if not seen.face:
        raise ValueError("warp2d: no face in the source")
    landmarks = seen.landmarks[:, :2].astype(np.float64)
    warp = PiecewiseAffineWarp(source, landmarks)
    reference: np.ndarray | None = None
    last = source
    clock_ms = -1
    with Tracker(mode="video") as tracker:
        for _, time_s, image in driving:
            clock_ms = max(round(time_s * 1000), clock_ms + 1)
            tracked = tracker.track(image, clock_ms)
            if not tracked.face:
                yield MethodFrame(last, held=True)
                continue
            points = tracked.landmarks[:, :2].astype(np.float64)
            if reference is None:
                reference = points
            last = warp(transfer_landmarks(landmarks, points, reference))
            yield MethodFrame(last, held=False)


@functools.cache
def face_model() -> FaceModel:
    """The ICT face model, loaded once."""
    return FaceModel.load()


def geometric(choice: RefinerChoice) -> Method:
    """The 3D path: the source reconstructed in image mode (:func:`jr2net.sources.source_from_image`)
    and prepared as the refiner computes it (:func:`jr2net.sources.computing_source`), the driving
    in video mode, each frame reenacted (relative motion, the source's light) by a
    :class:`jr2net.reenact.Reenactor` with the frame renderer ``choice()`` makes."""

    def reenact(source: np.ndarray, driving: Iterable[DrivingFrame]) -> Iterator[MethodFrame]:
        model = face_model()
        prepared = computing_source(model, source_from_image(model, source), choice.refiner)
        reenactor = Reenactor(model, prepared, renderer=choice())
        last = source
        with Reconstructor(model, mode="video") as reconstructor:
            for result in reconstructor.video(driving):
                if result.params is None:
                    yield MethodFrame(last, held=True)
                    continue
                last = reenactor(result.params, landmarks=result.tracking.landmarks).image
                yield MethodFrame(last, held=False)

    return reenact


REFINED = {name: RefinerChoice(name) for name in ("geometric", "dcnet")}  # the 3D methods' refiners
METHODS: dict[str, Method] = {
    "static": static,
    "warp2d": warp2d,
    **{name: geometric(choice) for name, choice in REFINED.items()},
}
