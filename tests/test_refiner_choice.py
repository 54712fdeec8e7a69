"""The refiner choice builds DCNet on the onnxruntime threads it was given (the live stages' two)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from jr2net.commands.refiner import RefinerChoice
from jr2net.dcnet_renderer import DCNetRenderer
from jr2net.nets.dcnet import DCNet
from jr2net.nets.dcnet_checkpoint import save_dcnet
from jr2net.realtime.threads import LIVE_ONNX_THREADS, live_onnx_threads


def _onnx_threads(choice: RefinerChoice) -> int:
    renderer = choice()
    assert isinstance(renderer, DCNetRenderer)
    return renderer.runners(64).session.get_session_options().intra_op_num_threads


def test_dcnet_runs_on_the_threads_it_was_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "dcnet.pt"
    save_dcnet(DCNet(), weights, {})
    monkeypatch.setenv("JR2NET_CACHE", str(tmp_path / "cache"))
    assert _onnx_threads(RefinerChoice("dcnet", weights=weights, threads=2)) == 2
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert _onnx_threads(RefinerChoice("dcnet", weights=weights)) == 1
    finally:
        torch.set_num_threads(previous)


def test_live_onnx_threads_never_exceed_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("jr2net.realtime.threads.machine_cores", lambda: 1)
    assert live_onnx_threads() == 1
    monkeypatch.setattr("jr2net.realtime.threads.machine_cores", lambda: 16)
    assert live_onnx_threads() == LIVE_ONNX_THREADS
