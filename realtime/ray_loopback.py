"""A private Ray cluster on this machine's loopback alone (``jr2net serve --ray local``, the tests).

Ray's single-machine mode (its default on macOS and Windows) puts every part of a cluster it starts
(GCS, raylet, workers) on 127.0.0.1; elsewhere they listen on every interface. Ray reads its switch
once, as it is imported, so it must be set before anything imports ray. This module imports
nothing of Ray's, so it can run first.
"""

from __future__ import annotations

import os
import sys

SINGLE_MACHINE_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"  # "0": single-machine mode, on loopback


def keep_ray_on_loopback() -> None:
    """Make a Ray cluster started by this process bind 127.0.0.1 only (this process's children too).

    Raises:
        RuntimeError: ray was imported already without the switch (too late to set it).
    """
    if sys.modules.get("ray") is not None and not ray_on_loopback():
        raise RuntimeError("keep_ray_on_loopback() must run before ray is imported")
    os.environ[SINGLE_MACHINE_SWITCH] = "0"


def ray_on_loopback() -> bool:
    """Whether a Ray cluster started by this process binds 127.0.0.1 only."""
    return os.environ.get(SINGLE_MACHINE_SWITCH) == "0"
