"""RecAugNet: RecNet with ETNet as its expression head.

Both networks see the same aligned crop; the output is RecNet's raw (B, D) vector with its
expression slice replaced by ETNet's raw output, so RecNet's :meth:`~jr2net.nets.recnet.RecNet.decode`
(and everything built on it: the predictor, the runners, the ONNX export) reads RecAugNet as it
reads RecNet, and the decoded expression is exactly ETNet's.

An ETNet with a backbone of its own is trained on the crops resized to its input size (160² for
the ``small`` run) by
bilinear interpolation with antialiasing, and RecAugNet resizes them the same way inside
``forward``. ``F.interpolate(..., antialias=True)`` does not export to ONNX (opset 17 or 18: no
symbolic for ``aten::_upsample_bilinear2d_aa``), and plain bilinear resizing changes ETNet's
output: on 22 aligned crops of the shared photos by 0.006 per weight on average and up to 0.11
on one weight (its error on the held-out pairs is 0.068). The antialiased resize is a fixed
linear map along each axis, so it is applied as two matrix products (:func:`resize_matrix`),
which export as MatMul and agree with torch's resize to 2e-7.

An ETNet that is a head on RecNet's backbone (``recnet_head``, :meth:`ETNet.adopt_recnet`) sees
the crop itself, and the backbone runs once: RecNet's head and ETNet's read the same features.
It must have been trained on this RecNet's backbone; another one is refused.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from jr2net.nets.checkpoint import load_weights
from jr2net.nets.etnet import RECNET_HEADS, ETNet, check_head_input, input_size, load_etnet
from jr2net.nets.recnet import CROP_SIZE, CropParams, RecNet
from jr2net.params import ParamLayout
from jr2net.shapes import check_tensor


def resize_matrix(source: int, target: int) -> Tensor:
    """(target, source) matrix ``W`` with ``W @ X @ W.T`` = ``X`` (…, source, source) resized to
    (…, target, target) by ``F.interpolate(mode="bilinear", antialias=True)``."""
    basis = torch.eye(source, dtype=torch.float64).reshape(source, 1, 1, source)
    rows = nn.functional.interpolate(basis, size=(1, target), mode="bilinear", antialias=True)
    return rows.reshape(source, target).T.float().contiguous()


class RecAugNet(nn.Module):
    """RecNet whose expression comes from ETNet; ``forward`` gives RecNet's raw (B, D) output,
    ``decode`` the :class:`CropParams`.

    Args:
        recnet: the reconstruction network.
        etnet: the expression network, with as many expressions as ``recnet``'s layout.
        etnet_size: the crop size ETNet was trained at (its crops are resized to it).
    """

    def __init__(self, recnet: RecNet, etnet: ETNet, etnet_size: int) -> None:
        super().__init__()
        if etnet.expression_count != recnet.layout.expression_count:
            raise ValueError(
                f"ETNet gives {etnet.expression_count} expressions, RecNet's face model has "
                f"{recnet.layout.expression_count}"
            )
        if etnet.shares_recnet_backbone:
            _check_shared_backbone(recnet, etnet, etnet_size)
        self.recnet, self.etnet, self.etnet_size = recnet, etnet, etnet_size
        self.layout: ParamLayout = recnet.layout
        self.architecture: str = recnet.architecture
        identity, expression = recnet.layout.identity_count, recnet.layout.expression_count
        self.split_sizes = (identity, expression, recnet.output_size - identity - expression)
        self.register_buffer("resize", resize_matrix(CROP_SIZE, etnet_size), persistent=False)

    @property
    def output_size(self) -> int:
        return self.recnet.output_size

    def forward(self, images: Tensor) -> Tensor:
        """(B, 3, 224, 224) RGB crops in [0, 1] -> raw (B, D) output: RecNet's, with the (B, E)
        expression slice ETNet's raw output on the crops resized to its input size."""
        check_tensor("images", images, ("B", 3, CROP_SIZE, CROP_SIZE))
        if self.etnet.shares_recnet_backbone:
            features = self.recnet.features(images)
            identity, _, rest = self.recnet.head(features).split(self.split_sizes, dim=1)
            return torch.cat([identity, self.etnet.head(features), rest], dim=1)
        identity, _, rest = self.recnet(images).split(self.split_sizes, dim=1)
        small = images if self.etnet_size == CROP_SIZE else self.resize @ images @ self.resize.T
        return torch.cat([identity, self.etnet.raw(small), rest], dim=1)

    def decode(self, raw: Tensor) -> CropParams:
        """Raw (B, D) output -> :class:`CropParams`, as RecNet decodes it."""
        return self.recnet.decode(raw)


def _check_shared_backbone(recnet: RecNet, etnet: ETNet, etnet_size: int) -> None:
    """Refuse a ``recnet_head`` ETNet that was not trained on ``recnet``'s backbone, at its crop size."""
    check_head_input(etnet_size)
    ours, theirs = recnet.backbone.state_dict(), etnet.backbone.state_dict()
    if recnet.architecture != RECNET_HEADS[etnet.architecture] or any(
        not torch.equal(ours[name], theirs[name]) for name in ours
    ):
        raise ValueError(
            "this ETNet is a head on another RecNet's backbone: train one on this RecNet's "
            "(python -m jr2net.training.train_etnet --set architecture=recnet_head --set recnet=FILE), "
            "or give an ETNet with a backbone of its own (--etnet-weights)"
        )


def load_recaugnet(
    weights: Path | None = None, etnet_weights: Path | None = None, expected: ParamLayout | None = None
) -> RecAugNet:
    """A RecAugNet (float32, eval mode) from a RecNet and an ETNet weights file (default: each
    one's ``$JR2NET_RECNET`` / ``$JR2NET_ETNET`` or shipped weights).

    Raises:
        FileNotFoundError: either file is missing.
        ValueError: either is not that network's weights, they disagree on the expressions, or the
            RecNet was made for another face model than ``expected``.
    """
    recnet = load_weights(weights, expected)
    etnet, provenance = load_etnet(etnet_weights)
    return RecAugNet(recnet, etnet, input_size(provenance)).eval()
