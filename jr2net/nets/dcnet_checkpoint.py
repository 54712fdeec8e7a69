"""DCNet weights on disk: a small fp16 file with the network's widths and how it was made.

The shipped weights (``jr2net/data/dcnet.pt``) were trained by this project's own
``jr2net.training.train_dcnet``; ``$JR2NET_DCNET`` points at other weights.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from jr2net.nets.checkpoint import float_state, half_state, read_weights_file
from jr2net.nets.dcnet import DCNet, DCNetConfig

FORMAT = "jr2net.DCNet/1"
SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "data" / "dcnet.pt"
TRAINING_COMMAND = "python -m jr2net.training.train_dcnet"


def default_dcnet_weights() -> Path:
    """``$JR2NET_DCNET`` if set, else the shipped real-time weights."""
    return Path(os.environ.get("JR2NET_DCNET", SHIPPED_WEIGHTS))


def save_dcnet(net: DCNet, path: Path, provenance: dict) -> None:
    """Write ``net``'s weights in fp16 with its config and ``provenance`` (a JSON-able dict)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    config = {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in dataclasses.asdict(net.config).items()
    }
    torch.save(
        {"format": FORMAT, "config": config, "state_dict": half_state(net), "provenance": provenance}, path
    )


def load_dcnet(path: Path | None = None) -> DCNet:
    """A DCNet (float32, eval mode) from a file written by :func:`save_dcnet`.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not a DCNet weights file.
    """
    path = default_dcnet_weights() if path is None else path
    saved = read_weights_file(path, "DCNet", FORMAT, TRAINING_COMMAND, "JR2NET_DCNET")
    config = DCNetConfig(
        **{
            name: tuple(value) if isinstance(value, list) else value
            for name, value in saved["config"].items()
        }
    )
    net = DCNet(config)
    net.load_state_dict(float_state(saved["state_dict"]))
    return net.eval()


def starting_state(path: Path, config: DCNetConfig) -> dict[str, torch.Tensor]:
    """The weights of the DCNet file at ``path`` as the start of a run that trains ``config``: the
    same widths and inputs; a file without the moved-background mask gives that mask's share a
    zero output channel, so it starts at a half everywhere and the rest of the network as trained.

    Raises:
        ValueError: the file's network differs from ``config`` in anything else.
    """
    start = load_dcnet(path)
    if start.config not in (config, dataclasses.replace(config, moved_background=False)):
        raise ValueError(f"init={path} holds a DCNet of {start.config}; this run trains {config}")
    state = start.state_dict()
    if start.config != config:
        state["out.weight"] = torch.cat([state["out.weight"], torch.zeros_like(state["out.weight"][:1])])
        state["out.bias"] = torch.cat([state["out.bias"], torch.zeros_like(state["out.bias"][:1])])
    return state


def dcnet_provenance(path: Path | None = None) -> dict:
    """How a DCNet weights file was made."""
    path = default_dcnet_weights() if path is None else path
    return torch.load(path, map_location="cpu", weights_only=True)["provenance"]
