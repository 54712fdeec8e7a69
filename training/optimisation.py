"""What the training scripts share: the learning-rate schedule, AdamW's groups, EMA, the device."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def warmup_cosine(peak: float, floor: float, warmup_steps: int, steps: int, step: int) -> float:
    """Linear warm-up to ``peak``, then cosine decay to ``floor`` (a fraction of the peak) at ``steps``."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(steps - warmup_steps, 1)
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def parameter_groups(net: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """AdamW's parameter groups: ``weight_decay`` on the conv and linear weights (the parameters of
    two or more dimensions), none on the biases and the norm layers' scales and shifts, which
    decay would only pull towards zero."""
    parameters = list(net.parameters())
    return [
        {"params": [p for p in parameters if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.ndim < 2], "weight_decay": 0.0},
    ]


def weight_average(net: nn.Module, decay: float) -> AveragedModel | None:
    """An exponential moving average of ``net``'s parameters and buffers (None for a decay of 0):
    what a run validates and saves, a steadier network than the last step's."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema_decay must lie in [0, 1), got {decay}")
    if not decay:
        return None
    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when there is one, else the CPU) or a torch device name."""
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)
