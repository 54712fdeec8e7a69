"""Export RecNet to ONNX, and the engine cache of exported models.

    python -m jr2net.engines.onnx_export --out recnet.onnx           # the shipped weights

The graph maps ``images`` (B, 3, S, S) float32 RGB in [0, 1] to ``raw`` (B, D), batch dynamic;
decoding into parameters stays in torch (:meth:`jr2net.nets.recnet.RecNet.decode`), shared by
every runtime. Cached exports are keyed by the weights' sha256 and the opset, under
``$JR2NET_CACHE`` (default ``~/.cache/jr2net``)``/engines``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import warnings
from pathlib import Path

import torch

from jr2net.nets.checkpoint import load_weights
from jr2net.nets.recnet import CROP_SIZE, RecNet

OPSET = 17


def export_onnx(net: RecNet, path: Path, opset: int = OPSET) -> Path:
    """Write ``net`` (eval mode) as an ONNX model at ``path`` and check it; returns ``path``."""
    import onnx

    if opset < 17:
        raise ValueError(f"RecNet is exported with opset 17 or newer, got {opset}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.onnx")
    example = torch.zeros(1, 3, CROP_SIZE, CROP_SIZE)
    net = net.eval()
    # The legacy exporter warns about itself, and about the shape checks it traces as constants
    # (the batch axis is declared dynamic below; the other sizes are fixed by design).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            net,
            (example,),
            str(partial),
            input_names=["images"],
            output_names=["raw"],
            dynamic_axes={"images": {0: "batch"}, "raw": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    onnx.checker.check_model(str(partial))
    partial.replace(path)
    return path


def cache_folder() -> Path:
    """Where exported engines are kept: ``$JR2NET_CACHE/engines`` or ``~/.cache/jr2net/engines``."""
    return Path(os.environ.get("JR2NET_CACHE", Path.home() / ".cache" / "jr2net")) / "engines"


def cached_onnx(net: RecNet, weights: Path, opset: int = OPSET) -> Path:
    """The ONNX export of ``net``, loaded from ``weights``: exported on first use, then reused."""
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    path = cache_folder() / f"recnet-{net.architecture}-{digest}-opset{opset}.onnx"
    return path if path.is_file() else export_onnx(net, path, opset)


def main() -> None:
    parser = argparse.ArgumentParser(description="Export RecNet weights to ONNX.")
    parser.add_argument("--weights", type=Path, default=None, help="weights file (default: the shipped ones)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--opset", type=int, default=OPSET)
    args = parser.parse_args()
    print(f"wrote {export_onnx(load_weights(args.weights), args.out, args.opset)}")


if __name__ == "__main__":
    main()
