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
from pathlib import Path

import torch
from torch import Tensor, nn

from jr2net.nets.backbones import MobileNetV2, resnet34
from jr2net.nets.checkpoint import float_state, half_state
from jr2net.nets.recnet import EXPRESSION_OFFSET, IMAGE_MEAN, IMAGE_STD
from jr2net.shapes import check_tensor

WEIGHTS_FORMAT = "jr2net-etnet-1"
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


def load_etnet(path: Path) -> tuple[ETNet, dict]:
    """An ETNet (float32, eval mode) and its provenance from a file written by :func:`save_etnet`.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not ETNet weights.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"no ETNet weights at {path}: train them with python -m jr2net.training.train_etnet"
        )
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(saved, dict) or saved.get("format") != WEIGHTS_FORMAT:
        raise ValueError(f"{path} is not an ETNet weights file ({WEIGHTS_FORMAT})")
    net = ETNet(saved["expression_count"], saved["architecture"])
    net.load_state_dict(float_state(saved["state"]))
    return net.eval(), saved["provenance"]
