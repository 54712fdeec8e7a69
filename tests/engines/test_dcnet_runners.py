"""DCNet's ONNX export runs in onnxruntime with the torch network's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jr2net.dense_conditions import CROP_SIZE, CROP_STEP
from jr2net.engines.dcnet_onnx import crop_sizes, export_crop_sizes, export_dcnet
from jr2net.engines.dcnet_runners import (
    DCNetRunnersBySize,
    OnnxDCNetRunner,
    TorchDCNetRunner,
    make_dcnet_runner,
)
from jr2net.nets.dcnet import CONDITION_CHANNELS, TEXTURE_CHANNELS, DCNet, DCNetConfig
from jr2net.nets.dcnet_checkpoint import save_dcnet

SIZE = 128


def _inputs(seed: int, size: int = SIZE) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.rand(1, len(TEXTURE_CHANNELS), size, size, generator=generator),
        torch.rand(1, len(CONDITION_CHANNELS), size, size, generator=generator),
        torch.rand(1, size, size, 2, generator=generator) * 2 - 1,
    )


@pytest.mark.parametrize("moved_background", [False, True])
def test_onnxruntime_matches_torch(tmp_path: Path, moved_background: bool) -> None:
    torch.manual_seed(0)
    net = DCNet(DCNetConfig(moved_background=moved_background)).eval()
    onnx_runner = OnnxDCNetRunner(export_dcnet(net, tmp_path / "dcnet.onnx", SIZE), threads=1)
    torch_runner = TorchDCNetRunner(net)
    for seed in range(2):
        inputs = _inputs(seed)
        for got, want in zip(onnx_runner(*inputs), torch_runner(*inputs), strict=True):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="128"):
        onnx_runner(*_inputs(0, 64))


def test_runner_choice_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "dcnet.pt"
    save_dcnet(DCNet(), weights, {})
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    assert isinstance(make_dcnet_runner("torch", weights), TorchDCNetRunner)
    runner = make_dcnet_runner("onnx", weights, threads=1, size=SIZE)
    assert isinstance(runner, OnnxDCNetRunner) and runner.size == SIZE
    with pytest.raises(ValueError, match="unknown DCNet runtime"):
        make_dcnet_runner("tensorrt", weights)
    with pytest.raises(FileNotFoundError, match="train_dcnet"):
        make_dcnet_runner("onnx", tmp_path / "missing.pt")


def test_runners_by_size_make_one_export_per_size_and_reuse_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "dcnet.pt"
    save_dcnet(DCNet(), weights, {})
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    runners = DCNetRunnersBySize("onnx", weights, threads=1)
    small, large = runners(64), runners(SIZE)
    assert (small.size, large.size) == (64, SIZE)
    assert runners(64) is small, "a size's runner is made once"
    assert len(list((tmp_path / "cache").rglob("*.onnx"))) == 2, "one export per size, on disk"
    image, alpha = small(*_inputs(0, 64))
    assert image.shape == (1, 3, 64, 64) and alpha.shape == (1, 1, 64, 64)
    next_session = DCNetRunnersBySize("onnx", weights, threads=1)
    assert next_session(64) is small, "the next session in the process reuses the onnxruntime session"
    assert DCNetRunnersBySize("onnx", weights, threads=2)(64) is not small, "other threads, another session"


def test_every_crop_size_is_exported_once_before_use(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a server does before its first caller: an export per crop size a source can ask for,
    on disk, and nothing more the second time."""
    weights = tmp_path / "dcnet.pt"
    save_dcnet(DCNet(), weights, {})
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    paths = export_crop_sizes(weights)
    assert len(paths) == len(crop_sizes()) == CROP_SIZE // CROP_STEP
    assert all(path.is_file() for path in paths)
    stamps = [path.stat().st_mtime_ns for path in paths]
    assert export_crop_sizes(weights) == paths
    assert [path.stat().st_mtime_ns for path in paths] == stamps, "cached exports are reused"
    runner = DCNetRunnersBySize("onnx", weights, threads=1)(CROP_STEP)
    assert runner.size == CROP_STEP
