"""What a training run writes as it goes: its JSON-lines log and its resumable checkpoint."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch


def append_record(path: Path, record: dict) -> None:
    """Append one JSON line (values JSON cannot hold are written as their ``str``)."""
    with path.open("a") as stream:
        stream.write(json.dumps(record, default=str) + "\n")


def write_checkpoint(state: dict, path: Path) -> None:
    """``torch.save`` to a partial file, then moved over ``path``: a crash never leaves half a checkpoint."""
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def resume_or_start(checkpoint: Path, log: Path, resume: bool, device: torch.device) -> dict | None:
    """A resumed run's saved state, or None for a new run (whose old log is removed).

    Raises:
        FileNotFoundError: ``resume`` without a checkpoint to resume.
    """
    if not resume:
        log.unlink(missing_ok=True)
        return None
    if not checkpoint.is_file():
        raise FileNotFoundError(f"resume=true but there is no checkpoint at {checkpoint}")
    return torch.load(checkpoint, map_location=device, weights_only=False)


def run_origin(saved: dict | None, init: Path | None, provenance: Callable[[Path], dict]) -> dict | None:
    """The weights a run started from, as its saved weights name them: ``init``'s path and
    ``provenance(init)`` read when the run starts (None without ``init``), and taken from the
    checkpoint ``saved`` when it resumes, so a start file replaced during the run (shipped weights
    used as ``init``, say) is still named as it was.

    Raises:
        ValueError: ``saved`` is a checkpoint written before runs kept their origin.
    """
    if saved is None:
        return None if init is None else {"path": str(init), **provenance(init)}
    if "init" not in saved:
        raise ValueError(
            "the checkpoint does not say which weights its run started from; start the run again"
        )
    return saved["init"]
