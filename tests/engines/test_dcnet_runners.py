"""DCNet's ONNX export runs in onnxruntime with the torch network's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jr2net.engines.dcnet_onnx import export_dcnet
from jr2net.engines.dcnet_runners import OnnxDCNetRunner, TorchDCNetRunner, make_dcnet_runner
from jr2net.nets.dcnet import CONDITION_CHANNELS, TEXTURE_CHANNELS, DCNet
from jr2net.nets.dcnet_checkpoint import save_dcnet

SIZE = 128


def _inputs(seed: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.rand(1, len(TEXTURE_CHANNELS), SIZE, SIZE, generator=generator),
        torch.rand(1, len(CONDITION_CHANNELS), SIZE, SIZE, generator=generator),
        torch.rand(1, SIZE, SIZE, 2, generator=generator) * 2 - 1,
    )


def test_onnxruntime_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = DCNet().eval()
    onnx_runner = OnnxDCNetRunner(export_dcnet(net, tmp_path / "dcnet.onnx", SIZE), threads=1)
    torch_runner = TorchDCNetRunner(net)
    for seed in range(2):
        inputs = _inputs(seed)
        for got, want in zip(onnx_runner(*inputs), torch_runner(*inputs), strict=True):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
    small = [value[..., :64, :64] if value.shape[-1] == SIZE else value[:, :64, :64] for value in _inputs(0)]
    with pytest.raises(ValueError, match="128"):
        onnx_runner(*small)


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
