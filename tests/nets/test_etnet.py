"""ETNet: shapes and range, its raw output, the activation loss, unknown architectures."""

from __future__ import annotations

import pytest
import torch

from jr2net.nets.etnet import ETNet, activation_loss, load_etnet
from jr2net.nets.recnet import EXPRESSION_OFFSET


@pytest.mark.parametrize("architecture", ["small", "resnet34"])
def test_weights_in_range_for_any_crop_size(architecture: str) -> None:
    net = ETNet(53, architecture).eval()
    with torch.no_grad():
        weights = net(torch.rand(2, 3, 96, 96))
    assert weights.shape == (2, 53) and (weights > 0).all() and (weights < 0.1).all(), (
        "near-neutral untrained"
    )


def test_the_weights_are_the_raw_output_decoded_as_recnets_expression() -> None:
    net, _ = load_etnet()  # trained: an untrained head's output is near zero everywhere
    images = torch.rand(2, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw, weights = net.raw(images), net(images)
    assert raw.shape == (2, 53) and raw.std() > 0.1
    assert torch.allclose(weights, torch.sigmoid(raw + EXPRESSION_OFFSET))


def test_the_activation_loss_weighs_active_blendshapes_more_than_idle_ones() -> None:
    target = torch.zeros(1, 4)
    target[0, 0] = 0.9
    assert activation_loss(target, target) == 0
    miss_active = target.clone()
    miss_active[0, 0] = 0.7  # 0.2 off an active weight
    miss_idle = target.clone()
    miss_idle[0, 1] = 0.2  # 0.2 off an idle one
    assert activation_loss(miss_active, target) == pytest.approx(0.9 * 0.2)
    assert activation_loss(miss_idle, target) == pytest.approx(0.2 * 0.2)
    with pytest.raises(ValueError):
        activation_loss(torch.zeros(2, 4), torch.zeros(2, 5))


def test_an_unknown_architecture_is_named() -> None:
    with pytest.raises(ValueError, match="resnet34"):
        ETNet(53, "vgg")
