"""ETNet: the expression tracking network, ICT expression weights regressed from an aligned face crop.

The network sees a (B, 3, S, S) crop (RGB in [0, 1], :mod:`jr2net.alignment`, the crops RecNet
sees) and gives (B, E) expression weights in [0, 1]. It is trained on synthesised pairs of the
training people's faces with captured and large expressions (:mod:`jr2net.training.synth_expressions`)
with the paper's activation loss (:func:`activation_loss`), and is to become RecNet's expression
head (RecAugNet).

Architectures: ``resnet34`` (the paper's ETNet) and ``small`` (a MobileNetV2 at half width, the
real-time variant).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from jr2net.nets.backbones import MobileNetV2, resnet34
from jr2net.nets.recnet import EXPRESSION_OFFSET, IMAGE_MEAN, IMAGE_STD
from jr2net.shapes import check_tensor

ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "small": lambda: MobileNetV2(width=0.5),
    "resnet34": resnet34,
}


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
        self.head = nn.Linear(self.backbone.feature_size, expression_count)
        nn.init.normal_(self.head.weight, std=1e-3)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, S, S) RGB crops in [0, 1] -> (B, E) weights in [0, 1] (near 0.05 before training)."""
        check_tensor("images", images, ("B", 3, "S", "S"))
        raw = self.head(self.backbone((images - IMAGE_MEAN) / IMAGE_STD))
        return torch.sigmoid(raw + EXPRESSION_OFFSET)


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
