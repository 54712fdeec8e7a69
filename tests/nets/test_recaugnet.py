"""RecAugNet: RecNet's output with ETNet's expression, the resize inside it, one backbone pass for an
ETNet head on RecNet's backbone, and its weights files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from torch.nn.functional import interpolate

from jr2net.face_model import FaceModel
from jr2net.nets.checkpoint import SHIPPED_WEIGHTS, load_weights
from jr2net.nets.etnet import SHIPPED_WEIGHTS as SHIPPED_ETNET
from jr2net.nets.etnet import ETNet, default_etnet_weights, load_etnet, save_etnet
from jr2net.nets.recaugnet import RecAugNet, load_recaugnet, resize_matrix
from jr2net.nets.recnet import CROP_SIZE, RecNet
from jr2net.params import ParamLayout
from jr2net.shapes import ShapeError

ETNET_LOG = SHIPPED_ETNET.with_name("etnet_log.jsonl")


def _antialiased(images: torch.Tensor, size: int) -> torch.Tensor:
    """What ETNet was trained on: the crops resized as ``training.expression_pairs.PairSet`` does."""
    return interpolate(images, size=(size, size), mode="bilinear", antialias=True)


@pytest.fixture(scope="module")
def net() -> RecAugNet:
    return load_recaugnet(SHIPPED_WEIGHTS, SHIPPED_ETNET)


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(3, 3, CROP_SIZE, CROP_SIZE, generator=torch.Generator().manual_seed(0))


def test_output_is_recnets_with_etnets_expression(net: RecAugNet, images: torch.Tensor) -> None:
    """Every slice but the expression is RecNet's own; the expression slice is ETNet's raw output on
    the crops resized as in its training, so the decoded expression is ETNet's (to the rounding of
    a resize done another way: 1e-4 on these noise crops, which the network amplifies)."""
    with torch.no_grad():
        raw, recnet_raw = net(images), net.recnet(images)
        small = _antialiased(images, net.etnet_size)
        etnet_raw, etnet_weights = net.etnet.raw(small), net.etnet(small)
    identity, expression = net.layout.identity_count, net.layout.expression_count
    end = identity + expression
    assert raw.shape == (3, net.output_size) == recnet_raw.shape
    assert torch.equal(raw[:, :identity], recnet_raw[:, :identity])
    assert torch.equal(raw[:, end:], recnet_raw[:, end:])
    assert (raw[:, identity:end] - etnet_raw).abs().max() < 1e-3
    decoded, recnet_decoded = net.decode(raw), net.recnet.decode(recnet_raw)
    assert (decoded.expression - etnet_weights).abs().max() < 1e-4
    assert (decoded.expression - recnet_decoded.expression).abs().max() > 0.01, "not RecNet's expression"
    for field in dataclasses.fields(decoded):
        if field.name != "expression":
            assert torch.equal(getattr(decoded, field.name), getattr(recnet_decoded, field.name)), field.name


@pytest.mark.parametrize("target", [160, 112, 224])
def test_the_resize_is_torchs_antialiased_bilinear(target: int) -> None:
    matrix = resize_matrix(CROP_SIZE, target)
    images = torch.rand(2, 3, CROP_SIZE, CROP_SIZE)
    assert matrix.shape == (target, CROP_SIZE)
    assert (matrix @ images @ matrix.T - _antialiased(images, target)).abs().max() < 1e-5


def test_an_etnet_trained_at_the_crop_size_sees_the_crop_itself(face_model: FaceModel) -> None:
    torch.manual_seed(0)
    full = RecAugNet(load_weights(SHIPPED_WEIGHTS), ETNet(face_model.expression_count), CROP_SIZE).eval()
    images = torch.rand(2, 3, CROP_SIZE, CROP_SIZE)
    with torch.no_grad():
        expression = full.decode(full(images)).expression
        assert torch.allclose(expression, full.etnet(images))


def test_wrong_inputs_and_mismatched_networks_are_refused(net: RecAugNet, face_model: FaceModel) -> None:
    with pytest.raises(ShapeError, match="images"):
        net(torch.rand(1, 3, 160, 160))
    with pytest.raises(ValueError, match="ETNet gives 52 expressions"):
        RecAugNet(net.recnet, ETNet(52), 160)
    with pytest.raises(ValueError, match="layout"):
        load_recaugnet(SHIPPED_WEIGHTS, SHIPPED_ETNET, ParamLayout(99, 53, face_model.vertex_count))


def test_the_shipped_etnet_is_small_and_says_how_it_was_made() -> None:
    assert SHIPPED_ETNET.stat().st_size <= 5 * 2**20
    etnet, provenance = load_etnet(SHIPPED_ETNET)
    assert etnet.architecture == "recnet_head" and etnet.expression_count == 53
    assert "train_etnet" in provenance["command"] and provenance["config"]["input_size"] == "224"
    assert load_recaugnet(SHIPPED_WEIGHTS, SHIPPED_ETNET).etnet.shares_recnet_backbone, (
        "on the shipped RecNet"
    )
    last = json.loads(ETNET_LOG.read_text().splitlines()[-1])
    assert last["step"] + 1 == int(provenance["config"]["steps"])
    assert last["expression_mae"] == pytest.approx(provenance["validation"]["expression_mae"])


def test_jr2net_etnet_points_at_other_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "etnet.pt"
    save_etnet(ETNet(53), path, {"config": {"input_size": "96"}})
    monkeypatch.setenv("JR2NET_ETNET", str(path))
    assert default_etnet_weights() == path
    assert load_recaugnet(SHIPPED_WEIGHTS).etnet_size == 96


def test_missing_or_unreadable_etnet_weights_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"ETNet weights .* are missing.*JR2NET_ETNET"):
        load_recaugnet(SHIPPED_WEIGHTS, tmp_path / "none.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(SHIPPED_ETNET.read_bytes()[:5000])
    with pytest.raises(ValueError, match="not a readable ETNet weights file"):
        load_recaugnet(SHIPPED_WEIGHTS, corrupt)
    with pytest.raises(ValueError, match="not a ETNet weights file"):
        load_recaugnet(SHIPPED_WEIGHTS, SHIPPED_WEIGHTS)
    unsized = tmp_path / "unsized.pt"
    save_etnet(ETNet(53), unsized, {"command": "test"})
    with pytest.raises(ValueError, match="crop size"):
        load_recaugnet(SHIPPED_WEIGHTS, unsized)


def _head_on(recnet: RecNet) -> ETNet:
    """A recnet_head ETNet on ``recnet``'s backbone, its residual set to noise (so it is not RecNet)."""
    etnet = ETNet(recnet.layout.expression_count, "recnet_head")
    etnet.adopt_recnet(recnet)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in etnet.head.residual.parameters():
            parameter.copy_(0.05 * torch.randn(parameter.shape, generator=generator))
    return etnet.eval()


def test_a_head_on_recnets_backbone_shares_one_pass_of_it(images: torch.Tensor) -> None:
    recnet = load_weights(SHIPPED_WEIGHTS)
    etnet = _head_on(recnet)
    net = RecAugNet(recnet, etnet, CROP_SIZE).eval()
    calls = {"recnet": 0, "etnet": 0}
    hooks = [
        module.backbone.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
        for name, module in (("recnet", recnet), ("etnet", etnet))
    ]
    with torch.no_grad():
        raw = net(images)
    for hook in hooks:
        hook.remove()
    assert calls == {"recnet": 1, "etnet": 0}
    with torch.no_grad():
        recnet_raw, etnet_raw = recnet(images), etnet.raw(images)
    identity, expression = net.layout.identity_count, net.layout.expression_count
    end = identity + expression
    assert torch.allclose(raw[:, :identity], recnet_raw[:, :identity], atol=1e-5)
    assert torch.allclose(raw[:, end:], recnet_raw[:, end:], atol=1e-5)
    assert torch.allclose(raw[:, identity:end], etnet_raw, atol=1e-5)
    assert (raw[:, identity:end] - recnet_raw[:, identity:end]).abs().max() > 0.01, "not RecNet's expression"


def test_a_head_on_another_recnets_backbone_is_refused() -> None:
    recnet = load_weights(SHIPPED_WEIGHTS)
    other = load_weights(SHIPPED_WEIGHTS)
    with torch.no_grad():
        next(other.backbone.parameters()).add_(0.01)
    with pytest.raises(ValueError, match="another RecNet's backbone"):
        RecAugNet(recnet, _head_on(other), CROP_SIZE)
    with pytest.raises(ValueError, match="sees RecNet's 224² crop, not 160²"):
        RecAugNet(recnet, _head_on(recnet), 160)
