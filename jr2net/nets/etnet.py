"""ETNet: the expression tracking network, ICT expression weights regressed from an aligned face crop.

The network sees a (B, 3, S, S) crop (RGB in [0, 1], :mod:`jr2net.alignment`, the crops RecNet
sees) and gives (B, E) expression weights in [0, 1]. It is trained on synthesised pairs of the
training people's faces with captured and large expressions (:mod:`jr2net.training.synth_expressions`)
with the paper's activation loss (:func:`activation_loss`), and is RecNet's expression head in
RecAugNet (:mod:`jr2net.nets.recaugnet`).

The shipped weights (``jr2net/data/etnet.pt``, a ``recnet_head`` on the shipped RecNet, trained on
the pairs and on RecNet's landmark term on real crops) were trained by this project's own
``jr2net.training.train_etnet``; ``$JR2NET_ETNET`` points at other weights.

Architectures: ``resnet34`` (the paper's ETNet), ``small`` (a MobileNetV2 at half width, the
real-time variant) and ``recnet_head``: a head on the small RecNet's own backbone, which it shares,
frozen (:meth:`ETNet.adopt_recnet`). Its head is RecNet's linear expression head plus a residual
MLP trained on the pairs, so it starts as RecNet's expression and RecAugNet runs the backbone once
(the cost of RecNet alone plus the MLP, against RecNet plus a second network for ``small``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.torch_version import TorchVersion

from jr2net.nets.backbones import MobileNetV2, resnet34
from jr2net.nets.checkpoint import float_state, half_state, read_weights_file
from jr2net.nets.recnet import ARCHITECTURES as RECNET_ARCHITECTURES
from jr2net.nets.recnet import CROP_SIZE, EXPRESSION_OFFSET, IMAGE_MEAN, IMAGE_STD, RecNet
from jr2net.shapes import check_tensor

WEIGHTS_FORMAT = "jr2net-etnet-1"
SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "etnet.pt"
TRAINING_COMMAND = "python -m jr2net.training.train_etnet"
ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "small": lambda: MobileNetV2(width=0.5),
    "resnet34": resnet34,
    "recnet_head": RECNET_ARCHITECTURES["small"],
}
RECNET_HEADS = {"recnet_head": "small"}  # the architectures that are heads on a RecNet's backbone
HEAD_HIDDEN = 256  # the residual MLP's hidden width


class ExpressionHead(nn.Module):
    """RecNet's linear expression head plus a residual MLP: (B, C) features -> (B, E) raw output.
    The MLP's last layer starts at zero, so an untrained head is the linear head alone."""

    def __init__(self, feature_size: int, expression_count: int, hidden: int = HEAD_HIDDEN) -> None:
        super().__init__()
        self.linear = nn.Linear(feature_size, expression_count)
        self.residual = nn.Sequential(
            nn.Linear(feature_size, hidden), nn.ReLU(), nn.Linear(hidden, expression_count)
        )
        nn.init.zeros_(self.residual[2].weight)
        nn.init.zeros_(self.residual[2].bias)

    def forward(self, features: Tensor) -> Tensor:
        return self.linear(features) + self.residual(features)


class ETNet(nn.Module):
    """Backbone + linear head + sigmoid: (B, 3, S, S) crops -> (B, E) expression weights in [0, 1].

    Args:
        expression_count: E, the face model's expressions.
        architecture: a key of :data:`ARCHITECTURES`.
    """

    def __init__(self, expression_count: int, architecture: str = "small") -> None:
        super().__init__()
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown ETNet architecture {architecture!r}; choose from {sorted(ARCHITECTURES)}"
            )
        self.expression_count, self.architecture = expression_count, architecture
        self.backbone = ARCHITECTURES[architecture]()
        self.head: nn.Module
        if self.shares_recnet_backbone:
            self.head = ExpressionHead(self.backbone.feature_size, expression_count)
        else:
            self.head = nn.Linear(self.backbone.feature_size, expression_count)
            nn.init.normal_(self.head.weight, std=1e-3)
            nn.init.zeros_(self.head.bias)

    @property
    def shares_recnet_backbone(self) -> bool:
        """Whether this ETNet is a head on a RecNet's backbone (``recnet_head``)."""
        return self.architecture in RECNET_HEADS

    def adopt_recnet(self, recnet: RecNet) -> None:
        """Take ``recnet``'s backbone and linear expression head, frozen (not trained, the backbone's
        batch norms kept in eval mode): a ``recnet_head`` ETNet's start.

        Raises:
            ValueError: this architecture is no RecNet head, or ``recnet`` is of another architecture
                or face model.
        """
        if not self.shares_recnet_backbone:
            raise ValueError(f"a {self.architecture!r} ETNet has a backbone of its own, not RecNet's")
        if recnet.architecture != RECNET_HEADS[self.architecture]:
            raise ValueError(
                f"a {self.architecture!r} ETNet is a head on the {RECNET_HEADS[self.architecture]!r} "
                f"RecNet, not on a {recnet.architecture!r} one"
            )
        if recnet.layout.expression_count != self.expression_count:
            raise ValueError(
                f"the RecNet gives {recnet.layout.expression_count} expressions, "
                f"this ETNet {self.expression_count}"
            )
        start = recnet.layout.identity_count
        rows = slice(start, start + self.expression_count)
        self.backbone.load_state_dict(recnet.backbone.state_dict())
        with torch.no_grad():
            self.head.linear.weight.copy_(recnet.head.weight[rows])
            self.head.linear.bias.copy_(recnet.head.bias[rows])
        for parameter in (*self.backbone.parameters(), *self.head.linear.parameters()):
            parameter.requires_grad_(False)
        self.train(self.training)

    def train(self, mode: bool = True) -> ETNet:
        """As :meth:`nn.Module.train`, but a shared RecNet backbone stays in eval mode."""
        super().train(mode)
        if self.shares_recnet_backbone:
            self.backbone.eval()
        return self

    def raw(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) RGB crops in [0, 1] -> the head's (B, E) output, before the offset and the
        sigmoid: what RecNet's expression slice of its raw output holds (its ``decode`` applies both)."""
        check_tensor("images", images, ("B", 3, "S", "S"))
        return self.head(self.backbone((images - IMAGE_MEAN) / IMAGE_STD))

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) RGB crops in [0, 1] -> (B, E) weights in [0, 1] (near 0.05 before training)."""
        return torch.sigmoid(self.raw(images) + EXPRESSION_OFFSET)


def activation_loss(predicted: Tensor, target: Tensor) -> Tensor:
    """The paper's activation loss ``max(β, β_gt) · |β − β_gt|``, summed over the expressions and
    averaged over the batch: an error counts in proportion to how active the blendshape is in either
    the prediction or the truth, so the few active weights of a large expression outweigh the many
    idle ones (an L1 loss would let the idle ones dominate).

    Args:
        predicted, target: (B, E) weights in [0, 1].
    """
    dims = check_tensor("predicted", predicted, ("B", "E"))
    check_tensor("target", target, ("B", "E"), dims)
    return (torch.maximum(predicted, target) * (predicted - target).abs()).sum(dim=1).mean()


def save_etnet(net: ETNet, path: Path, provenance: dict) -> None:
    """``net``'s fp16 weights with its architecture and how they were made (``provenance``; its
    ``input_size`` is the crop size the network was trained at)."""
    torch.save(
        {
            "format": WEIGHTS_FORMAT,
            "architecture": net.architecture,
            "expression_count": net.expression_count,
            "state": half_state(net),
            "provenance": provenance,
        },
        path,
    )


def default_etnet_weights() -> Path:
    """``$JR2NET_ETNET`` if set, else the shipped small-variant weights."""
    return Path(os.environ.get("JR2NET_ETNET", SHIPPED_WEIGHTS))


def load_etnet(path: Path | None = None) -> tuple[ETNet, dict]:
    """An ETNet (float32, eval mode) and its provenance from a file written by :func:`save_etnet`
    (default: :func:`default_etnet_weights`).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: unreadable, or not ETNet weights.
    """
    path = default_etnet_weights() if path is None else path
    # Files written before the trainer stored torch's version as a plain str hold a TorchVersion
    # (a str subclass); it is allowed here so that they load without unpickling arbitrary objects.
    with torch.serialization.safe_globals([TorchVersion]):
        saved = read_weights_file(path, "ETNet", WEIGHTS_FORMAT, TRAINING_COMMAND, "JR2NET_ETNET")
    net = ETNet(saved["expression_count"], saved["architecture"])
    net.load_state_dict(float_state(saved["state"]))
    return net.eval(), saved["provenance"]


def check_head_input(size: int) -> None:
    """Refuse a crop size other than RecNet's for an ETNet that is a head on RecNet's backbone.

    Raises:
        ValueError: ``size`` is not RecNet's crop size.
    """
    if size != CROP_SIZE:
        raise ValueError(
            f"an ETNet head on RecNet's backbone sees RecNet's {CROP_SIZE}² crop, not {size}² "
            f"(train it with --set input_size={CROP_SIZE})"
        )


def input_size(provenance: dict) -> int:
    """The crop size (pixels) an ETNet was trained at, from the provenance :func:`load_etnet` gives."""
    try:
        return int(provenance["config"]["input_size"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"ETNet weights without the crop size they were trained at: {error}") from error
