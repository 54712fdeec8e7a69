"""RecNet weights on disk: a small fp16 file with the architecture, layout and how it was made.

The shipped weights (``jr2net/data/recnet_small.pt``) were trained by this project's own
``jr2net.training.train_recnet``; ``$JR2NET_RECNET`` points at other weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from jr2net.nets.recnet import RecNet
from jr2net.params import ParamLayout

FORMAT = "jr2net.RecNet/1"
SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "recnet_small.pt"


def default_weights() -> Path:
    """``$JR2NET_RECNET`` if set, else the shipped small-variant weights."""
    return Path(os.environ.get("JR2NET_RECNET", SHIPPED_WEIGHTS))


def half_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """``net``'s state dict with its floating-point tensors in fp16 (what weights files hold)."""
    return {
        name: value.half() if value.is_floating_point() else value for name, value in net.state_dict().items()
    }


def float_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict read from a weights file with its floating-point tensors back in float32."""
    return {name: value.float() if value.is_floating_point() else value for name, value in state.items()}


def read_weights_file(path: Path, network: str, file_format: str, training: str, variable: str) -> dict:
    """The dict a weights file of ``network`` holds, checked to be of ``file_format``.

    Raises:
        FileNotFoundError: no file at ``path`` (the message says how to make one: ``training``, or
            the environment ``variable`` that points at other weights).
        ValueError: unreadable, or not a weights file of that format.
    """
    if not path.is_file():
        raise FileNotFoundError(
            f"{network} weights {path} are missing; train them with {training} "
            f"or set {variable} to a weights file"
        )
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise ValueError(f"{path} is not a readable {network} weights file: {error}") from error
    if not isinstance(saved, dict) or saved.get("format") != file_format:
        raise ValueError(f"{path} is not a {network} weights file (format {file_format!r} expected)")
    return saved


def save_weights(net: RecNet, path: Path, provenance: dict) -> None:
    """Write ``net``'s weights in fp16 with its architecture, layout and ``provenance`` (a JSON-able dict)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = half_state(net)
    layout = net.layout
    torch.save(
        {
            "format": FORMAT,
            "architecture": net.architecture,
            "layout": [layout.identity_count, layout.expression_count, layout.vertex_count],
            "state_dict": state,
            "provenance": provenance,
        },
        path,
    )


def load_weights(path: Path | None = None, expected: ParamLayout | None = None) -> RecNet:
    """A RecNet (float32, eval mode) from a file written by :func:`save_weights`.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a RecNet weights file, or made for another face model than ``expected``.
    """
    path = default_weights() if path is None else path
    saved = read_weights_file(
        path, "RecNet", FORMAT, "python -m jr2net.training.train_recnet", "JR2NET_RECNET"
    )
    layout = ParamLayout(*saved["layout"])
    if expected is not None and layout != expected:
        raise ValueError(f"{path} was trained for a face model with layout {layout}, this one has {expected}")
    net = RecNet(layout, saved["architecture"])
    net.load_state_dict(float_state(saved["state_dict"]))
    return net.eval()


def provenance(path: Path | None = None) -> dict:
    """How a weights file was made (the ``provenance`` given to :func:`save_weights`)."""
    return torch.load(default_weights() if path is None else path, map_location="cpu", weights_only=True)[
        "provenance"
    ]
