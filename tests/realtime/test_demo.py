"""``jr2net demo``: the live pipeline on the built-in driving clip and avatar, written side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jr2net.cli import main
from jr2net.media import iter_video_frames, probe_video


def test_demo_writes_driving_beside_the_avatar_drawn_from_the_model(tmp_path: Path, capsys: object) -> None:
    output, stats = tmp_path / "demo.mp4", tmp_path / "stats.json"
    argv = ["demo", "-o", str(output), "--seconds", "2", "--size", "160", "--stats", str(stats)]
    assert main([*argv, "--stages", "thread"]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert "drawn from the face model" in captured.err
    assert f"wrote {output}" in printed and "reconstruct" in printed and "reenact" in printed
    info = probe_video(output)
    assert (info.width, info.height) == (640, 320), "the 320² driving clip beside the avatar scaled to 320"
    summary = json.loads(stats.read_text())
    assert summary["frames_out"] >= 20 and {"reconstruct", "reenact"} <= set(summary["latency"])
    frames = [image for _, _, image in iter_video_frames(output)]
    driving, result = frames[-1][:, :320].astype(float), frames[-1][:, 320:].astype(float)
    assert np.abs(driving - result).mean() > 3, "the avatar, not the driver copied"
    first_results = np.stack([frame[:, 320:] for frame in frames[:5]]).astype(float)
    later = np.stack([frame[:, 320:] for frame in frames[len(frames) // 4 :]]).astype(float)
    assert np.abs(later - first_results.mean(axis=0)).mean(axis=(1, 2, 3)).max() > 2, "the avatar moves"
