"""The live reenactment stages: either stage can plan, with the same frames coming out."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jr2net.face_model import FaceModel
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.reenactment import DrivingFace, open_reenactment
from jr2net.realtime.reenactment_hosts import planning_stage, reenactment_pool
from jr2net.reenact import TargetPlan
from jr2net.sources import load_source
from tests.conftest import video_frames


def test_either_stage_plans_and_the_frames_are_the_same(face_model: FaceModel, shared_media: Path) -> None:
    """Two sessions of one source driven by the same real frames, one planning in the reconstruct
    stage (what DCNet gets) and one in the reenact stage (the geometric renderer's): the frame
    between the stages is a plan or the driving face (packed: a session never loads it), the
    frames out are the same, and only the planning stage takes ``recalibrate``."""
    clip = video_frames(shared_media / "liveportrait/driving/d0.mp4", set(range(6)))
    frames = [np.asarray(Image.fromarray(clip[i]).resize((256, 256))) for i in sorted(clip)]
    source = load_source(face_model, "model", 128)
    outputs: dict[str, list[np.ndarray]] = {}
    between: dict[str, set[type]] = {}
    taken: dict[str, list[bool]] = {}
    with reenactment_pool("thread", hosts=1) as pool:
        for planner in ("reconstruct", "reenact"):
            session = open_reenactment(pool, planner, source, planner=planner)
            outputs[planner], between[planner] = [], set()
            for index, image in enumerate(frames):
                frame = session.stages[0].work(StagedFrame(image, index, None, None, time.monotonic()))
                between[planner].add(type(frame.payload.unpack()))
                outputs[planner].append(session.stages[1].work(frame).image)
            taken[planner] = [host.control(planner, "recalibrate") for host in session.hosts]
            session.close()
        with pytest.raises(ValueError, match="planning stage"):
            open_reenactment(pool, "wrong", source, planner="sinks")
    assert between == {"reconstruct": {TargetPlan}, "reenact": {DrivingFace}}
    for planned_first, planned_late in zip(outputs["reconstruct"], outputs["reenact"], strict=True):
        assert np.abs(planned_first.astype(int) - planned_late.astype(int)).max() <= 1
    assert not np.array_equal(outputs["reenact"][0], outputs["reenact"][-1]), "the face moved"
    assert taken == {"reconstruct": [True, False], "reenact": [False, True]}
    assert (planning_stage("dcnet"), planning_stage("geometric")) == ("reconstruct", "reenact")
