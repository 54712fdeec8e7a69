"""Export DCNet to ONNX for a fixed crop size (batch dynamic).

    python -m jr2net.engines.dcnet_onnx --out dcnet.onnx           # the shipped weights

The graph maps ``texture`` (B, 9, S, S), ``conditions`` (B, 12, S, S) and ``grid`` (B, S, S, 2)
to ``image`` (B, 3, S, S) and ``alpha`` (B, 1 or 2, S, S) (:class:`jr2net.nets.dcnet.DCNet`); the
feature warp is ONNX's GridSample (opset 16 and newer).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from tqdm import tqdm

from jr2net.dense_conditions import CROP_SIZE, CROP_STEP
from jr2net.engines.onnx_export import OPSET, cached_path, export_module
from jr2net.nets.dcnet import CONDITION_CHANNELS, TEXTURE_CHANNELS, DCNet
from jr2net.nets.dcnet_checkpoint import default_dcnet_weights, load_dcnet

INPUTS = ["texture", "conditions", "grid"]
OUTPUTS = ["image", "alpha"]


def export_dcnet(net: DCNet, path: Path, size: int = CROP_SIZE, opset: int = OPSET) -> Path:
    """Write DCNet for S = ``size`` as an ONNX model at ``path`` and check it; returns ``path``."""
    examples = (
        torch.zeros(1, len(TEXTURE_CHANNELS), size, size),
        torch.zeros(1, len(CONDITION_CHANNELS), size, size),
        torch.zeros(1, size, size, 2),
    )
    axes = {name: {0: "batch"} for name in INPUTS + OUTPUTS}
    return export_module(net, examples, (INPUTS, OUTPUTS), path, opset, axes)


def cached_dcnet_onnx(net: DCNet, weights: Path, size: int = CROP_SIZE, opset: int = OPSET) -> Path:
    """The ONNX export of ``net``, loaded from ``weights``: exported on first use, then reused."""
    path = cached_path(f"dcnet-{size}", weights, opset)
    return path if path.is_file() else export_dcnet(net, path, size, opset)


def crop_sizes() -> list[int]:
    """Every crop side a source's window can ask for (``CropWindow.crop_size``)."""
    return list(range(CROP_STEP, CROP_SIZE + 1, CROP_STEP))


def export_crop_sizes(weights: Path | None = None, opset: int = OPSET) -> list[Path]:
    """DCNet's ONNX export for every crop size (:func:`crop_sizes`) of a weights file (default:
    ``$JR2NET_DCNET`` or the shipped), made where not yet cached: a server does this before its
    first caller, who would otherwise wait for the export of their source's crop size."""
    weights = default_dcnet_weights() if weights is None else weights
    paths = {size: cached_path(f"dcnet-{size}", weights, opset) for size in crop_sizes()}
    missing = [size for size, path in paths.items() if not path.is_file()]
    if missing:
        net = load_dcnet(weights)
        for size in tqdm(missing, desc="DCNet ONNX exports (once per weights)", unit="size"):
            export_dcnet(net, paths[size], size, opset)
    return list(paths.values())


def main() -> None:
    parser = argparse.ArgumentParser(description="Export DCNet weights to ONNX.")
    parser.add_argument("--weights", type=Path, default=None, help="weights file (default: the shipped ones)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--size", type=int, default=CROP_SIZE, help="the crop size S")
    parser.add_argument("--opset", type=int, default=OPSET)
    args = parser.parse_args()
    print(f"wrote {export_dcnet(load_dcnet(args.weights), args.out, args.size, args.opset)}")


if __name__ == "__main__":
    main()
