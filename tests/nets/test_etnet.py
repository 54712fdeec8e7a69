"""ETNet: shapes and range, its raw output, the activation loss, unknown architectures, and the head
on RecNet's frozen backbone."""

from __future__ import annotations

import pytest
import torch

from jr2net.nets.checkpoint import SHIPPED_WEIGHTS as SHIPPED_RECNET
from jr2net.nets.checkpoint import load_weights
from jr2net.nets.etnet import ETNet, activation_loss, load_etnet
from jr2net.nets.recnet import CROP_SIZE, EXPRESSION_OFFSET, RecNet


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


@pytest.fixture(scope="module")
def recnet() -> RecNet:
    return load_weights(SHIPPED_RECNET)


def test_a_recnet_head_starts_as_recnets_expression_and_trains_only_its_residual(recnet: RecNet) -> None:
    net = ETNet(53, "recnet_head")
    net.adopt_recnet(recnet)
    images = torch.rand(2, 3, CROP_SIZE, CROP_SIZE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(net.eval()(images), recnet.decode(recnet(images)).expression, atol=1e-6)
    trainable = {name for name, parameter in net.named_parameters() if parameter.requires_grad}
    assert trainable == {f"head.residual.{layer}.{kind}" for layer in (0, 2) for kind in ("weight", "bias")}
    net.train()
    assert not net.backbone.training and net.head.training, "the shared backbone's batch norms stay fixed"
    optimiser = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    activation_loss(net(images), torch.full((2, 53), 0.5)).backward()
    optimiser.step()
    for name, value in recnet.backbone.state_dict().items():
        assert torch.equal(net.backbone.state_dict()[name], value), f"{name} moved"
    assert net.head.residual[2].weight.abs().max() > 0, "the residual learned"


def test_only_a_recnet_head_adopts_a_recnet_and_only_the_one_it_is_made_for(recnet: RecNet) -> None:
    with pytest.raises(ValueError, match="backbone of its own"):
        ETNet(53, "small").adopt_recnet(recnet)
    with pytest.raises(ValueError, match="'small' RecNet, not on a 'resnet18'"):
        ETNet(53, "recnet_head").adopt_recnet(RecNet(recnet.layout, "resnet18"))
    with pytest.raises(ValueError, match="gives 53 expressions, this ETNet 52"):
        ETNet(52, "recnet_head").adopt_recnet(recnet)
