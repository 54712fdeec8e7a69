"""The faces ``bench.recnet`` measures landmark NME on, per ``--photos`` choice."""

from __future__ import annotations

from bench.clips import SHARED_CLIPS
from bench.recnet import accuracy_faces


def test_the_clips_choice_takes_evenly_spaced_frames_of_every_shared_clip() -> None:
    faces = accuracy_faces("clips", 2)
    assert [name for name, _ in faces] == [f"{clip}#{k}" for clip in SHARED_CLIPS for k in (0, 1)]
    first, last = faces[0][1], faces[1][1]
    assert first.ndim == 3 and first.shape[2] == 3 and first.dtype.name == "uint8"
    assert (first != last).any(), "two different frames of the clip"
