"""Export RecNet (or RecAugNet) to ONNX, and the engine cache of exported models.

    python -m jr2net.engines.onnx_export --out recnet.onnx           # the shipped weights

The graph maps ``images`` (B, 3, S, S) float32 RGB in [0, 1] to ``raw`` (B, D), batch dynamic;
decoding into parameters stays in torch (:meth:`jr2net.nets.recnet.RecNet.decode`), shared by
every runtime. Cached exports are keyed by the sha256 of the weights files (both of RecAugNet's)
and the opset, under ``$JR2NET_CACHE`` (default ``~/.cache/jr2net``)``/engines``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import warnings
from pathlib import Path

import torch

from jr2net.nets.checkpoint import load_weights
from jr2net.nets.recaugnet import RecAugNet
from jr2net.nets.recnet import CROP_SIZE, RecNet

OPSET = 17


def export_module(
    net: torch.nn.Module,
    examples: tuple[torch.Tensor, ...],
    names: tuple[list[str], list[str]],
    path: Path,
    opset: int = OPSET,
    dynamic_axes: dict[str, dict[int, str]] | None = None,
) -> Path:
    """Write ``net`` (eval mode) traced on ``examples`` as an ONNX model at ``path`` (``names``:
    the input and output names) and check it; returns ``path``."""
    import onnx

    if opset < 17:
        raise ValueError(f"the networks are exported with opset 17 or newer, got {opset}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.onnx")
    net = net.eval()
    # The legacy exporter warns about itself, and about the shape checks it traces as constants
    # (dynamic axes are declared; the other sizes are fixed by design).
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        warnings.simplefilter("ignore", category=DeprecationWarning)
        torch.onnx.export(
            net,
            examples,
            str(partial),
            input_names=names[0],
            output_names=names[1],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
        )
    onnx.checker.check_model(str(partial))
    partial.replace(path)
    return path


def export_onnx(net: RecNet | RecAugNet, path: Path, opset: int = OPSET) -> Path:
    """Write RecNet or RecAugNet (eval mode) as an ONNX model at ``path`` and check it; returns ``path``."""
    example = torch.zeros(1, 3, CROP_SIZE, CROP_SIZE)
    axes = {"images": {0: "batch"}, "raw": {0: "batch"}}
    return export_module(net, (example,), (["images"], ["raw"]), path, opset, axes)


def cache_folder() -> Path:
    """Where exported engines are kept: ``$JR2NET_CACHE/engines`` or ``~/.cache/jr2net/engines``."""
    return Path(os.environ.get("JR2NET_CACHE", Path.home() / ".cache" / "jr2net")) / "engines"


def cached_path(name: str, weights: Path | tuple[Path, ...], opset: int = OPSET) -> Path:
    """Where the ONNX export of the ``name`` network of a weights file (or of several, in order)
    is cached: by the sha256 of the file's bytes (of the files' bytes, one after the other)."""
    digest = hashlib.sha256()
    for path in (weights,) if isinstance(weights, Path) else weights:
        digest.update(path.read_bytes())
    return cache_folder() / f"{name}-{digest.hexdigest()[:16]}-opset{opset}.onnx"


def cached_onnx(net: RecNet | RecAugNet, weights: Path | tuple[Path, ...], opset: int = OPSET) -> Path:
    """The ONNX export of ``net``, loaded from ``weights`` (RecAugNet: its RecNet's and its
    ETNet's): exported on first use, then reused."""
    path = cached_path(f"{type(net).__name__.lower()}-{net.architecture}", weights, opset)
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
