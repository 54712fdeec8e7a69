"""``bench.decision_set``: self-reenactment on the training clips of collections a run kept out."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("scipy")

from bench import decision_set
from bench.clips import TRAINING_VIDEOS, collection_clips


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
