"""The media of the quality benchmark: clips and photos of people no training or tuning run used.

Self-reenactment clips: the shared LivePortrait driving clips and the training media's validation
clips (:func:`jr2net.training.crop_dataset.is_validation`). Cross-identity: source photos driven
by the shared clips.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from bench.reenact_methods import DrivingFrame
from jr2net.assets import repository_root
from jr2net.media import iter_video_frames, probe_video
from jr2net.training.crop_dataset import collection, is_validation

SHARED = repository_root().parent / "shared"
MEDIA = SHARED / "media"
TRAINING_VIDEOS = SHARED / "train" / "videos"
SHARED_CLIPS = ("d0", "d3", "d10", "d12", "d18", "d19")
SOURCES = (
    "liveportrait/source/s1.jpg",
    "liveportrait/source/s12.jpg",
    "liveportrait/source/s42.jpg",
    "liveportrait/driving/d19.jpg",
)
SAME_PERSON = ("liveportrait/driving/d19.jpg", "d18")  # the d18.mp4 person: the identity anchor


def shared_clips() -> list[Path]:
    """The shared driving clips (d0, d3, d10, d12, d18, d19)."""
    return [MEDIA / "liveportrait" / "driving" / f"{name}.mp4" for name in SHARED_CLIPS]


def validation_clips() -> list[Path]:
    """The training media's clips of held-out collections, by name."""
    return sorted(path for path in TRAINING_VIDEOS.glob("*.mp4") if is_validation(path.name))


def collection_clips(collections: tuple[str, ...]) -> list[Path]:
    """The training media's clips of ``collections`` (file-name prefixes), by name; a clear error
    for a collection with no clip or one held out for validation (those are the benchmark's)."""
    clips = []
    for name in collections:
        found = sorted(path for path in TRAINING_VIDEOS.glob("*.mp4") if collection(path.name) == name)
        if not found:
            raise ValueError(f"no training clip of the collection {name!r} in {TRAINING_VIDEOS}")
        if is_validation(found[0].name):
            raise ValueError(f"{name!r} is a validation collection: the benchmark's, not a decision set")
        clips += found
    return clips


def read_clip(path: Path, limit: int) -> list[DrivingFrame]:
    """The first ``limit`` frames ``(index, time_s, RGB uint8 (H, W, 3))`` of a clip, at its own size."""
    return list(itertools.islice(iter_video_frames(path), limit))


def clip_length(path: Path, limit: int) -> int:
    """How many frames :func:`read_clip` gives, by the container's count (for progress bars)."""
    return min(probe_video(path).frame_count or limit, limit)
