"""Which code made a result: the checkout's git commit, for benchmark reports and trained weights."""

from __future__ import annotations

import subprocess


def checkout_commit() -> str:
    """The checkout's commit hash, ``-dirty`` when files differ from it (untracked ones too),
    ``unknown`` outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        status = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head.stdout.strip() + ("-dirty" if status.stdout.strip() else "")
