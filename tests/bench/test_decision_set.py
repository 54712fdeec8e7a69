"""``bench.decision_set``: self-reenactment on the training clips of collections a run kept out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("scipy")

from bench import decision_set
from bench.clips import SAME_PERSON, SOURCES, TRAINING_VIDEOS, collection_clips, shared_clips
from bench.cross_identity import WORKING_SIZE, clip_pairs, photo_pairs


@pytest.fixture(autouse=True)
def _training_media() -> None:
    if not TRAINING_VIDEOS.is_dir():
        pytest.skip(f"training media not found at {TRAINING_VIDEOS}")


def test_a_collection_gives_all_of_its_clips_and_nothing_else() -> None:
    clips = collection_clips(("retalk", "synctalk"))
    assert [clip.name.split("_")[0] for clip in clips] == ["retalk"] * 4 + ["synctalk"]
    with pytest.raises(ValueError, match="no training clip"):
        collection_clips(("retalkk",))
    with pytest.raises(ValueError, match="validation collection"):
        collection_clips(("tpsmm",))  # the benchmark's people decide nothing


def test_the_report_scores_each_clip_beside_the_static_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "decision.json"
    argv = ["decision_set", "--out", str(out), "--collections", "synctalk", "--frames", "4"]
    monkeypatch.setattr(sys, "argv", [*argv, "--methods", "static", "warp2d"])
    decision_set.main()
    report = json.loads(out.read_text())
    assert report["collections"] == ["synctalk"] and report["commit"]
    clip = report["self_reenactment"]["clips"]["synctalk_short_demo"]
    assert clip["scored_frames"] == 3
    static, warped = clip["methods"]["static"], clip["methods"]["warp2d"]
    assert 10 < static["face"]["psnr"] < warped["face"]["psnr"] < 60  # the warp follows the driver


def test_a_validation_collection_is_refused_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["decision_set", "--out", str(tmp_path / "x.json"), "--collections", "vexpress"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        decision_set.main()
    assert "validation collection" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_each_clip_is_driven_by_the_next_ones_and_the_count_is_checked() -> None:
    clips = collection_clips(("latentsync",))
    cross = clip_pairs(clips, 2)
    assert set(cross.sources) == {clip.stem for clip in clips} and cross.anchor is None
    assert [(source, driving.stem) for source, driving in cross.pairs] == [
        (clips[0].stem, clips[1].stem),
        (clips[0].stem, clips[2].stem),
        (clips[1].stem, clips[2].stem),
        (clips[1].stem, clips[0].stem),
        (clips[2].stem, clips[0].stem),
        (clips[2].stem, clips[1].stem),
    ]
    assert all(max(image.shape[:2]) <= WORKING_SIZE for image in cross.sources.values())
    for count in (0, 3):
        with pytest.raises(ValueError, match="driven by 1 to 2 others"):
            clip_pairs(clips, count)


def test_the_benchmark_pairs_leave_the_same_person_out_as_the_anchor() -> None:
    cross = photo_pairs(shared_clips())
    assert len(cross.pairs) == len(SOURCES) * len(shared_clips()) - 1
    assert cross.anchor == SAME_PERSON
    assert all((source, driving.stem) != SAME_PERSON for source, driving in cross.pairs)


def test_cross_identity_on_the_decision_people_scores_each_pair(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "decision.json"
    argv = ["decision_set", "--out", str(out), "--collections", "latentsync", "--frames", "3"]
    monkeypatch.setattr(sys, "argv", [*argv, "--cross", "1", "--methods", "static", "warp2d"])
    decision_set.main()
    cross = json.loads(out.read_text())["cross_identity"]
    assert [(pair["source"], pair["driving"]) for pair in cross["pairs"]] == [
        ("latentsync_demo1_video", "latentsync_demo2_video"),
        ("latentsync_demo2_video", "latentsync_demo3_video"),
        ("latentsync_demo3_video", "latentsync_demo1_video"),
    ]
    for pair in cross["pairs"]:
        static, warped = pair["methods"]["static"], pair["methods"]["warp2d"]
        assert static["identity_distance"] == 0.0  # the source itself
        assert 0.0 < warped["identity_distance"] < pair["source_to_driver_distance"]
    assert cross["same_person_anchor"] is None
