"""The Ray cluster that ``jr2net serve --ray`` places calls on: joining it, what one call declares,
and Ray's view of whether one more call fits.

A call runs on one node, so it fits when some live node has the session's resources free (Ray's
per-node accounting; a fraction of a GPU counts as such). Ray does the placement itself; this
only turns its view into the front door's answer (a 503 with the reason, before any actor waits).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import ray
from ray._private.state import available_resources_per_node  # a DeveloperAPI: ray has no public one

from jr2net.realtime.ray_loopback import ray_on_loopback

NAMESPACE = "jr2net"  # the Ray namespace of the calls' named actors: a new front door finds them there
LOCAL = "local"  # --ray local: a private cluster on this machine's loopback, ending with the front door
ADDRESS_HELP = (
    "'auto' (the cluster this machine runs or joined: `ray start --head` / `ray start --address`), "
    "'local' (a private one-machine cluster on 127.0.0.1 that ends with the server) or HOST:PORT "
    "(a cluster's head)"
)


@dataclass(frozen=True)
class SessionResources:
    """What one call declares to Ray: CPUs and GPUs (fractions allowed) on the node that runs it."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.cpus <= 0:
            raise ValueError(f"a session needs some CPU (--session-cpus > 0), got {self.cpus:g}")
        if self.gpus < 0:
            raise ValueError(f"--session-gpus must not be negative, got {self.gpus:g}")
        if self.gpus > 1 and self.gpus != int(self.gpus):
            raise ValueError(f"Ray takes a fraction of one GPU or whole GPUs, got {self.gpus:g}")

    def options(self) -> dict[str, float]:
        """The actor options that declare them."""
        return {"num_cpus": self.cpus, "num_gpus": self.gpus}

    def fits(self, resources: Mapping[str, float]) -> bool:
        """Whether a node with these ``resources`` (Ray's names: ``CPU``, ``GPU``) can take a call."""
        return resources.get("CPU", 0.0) >= self.cpus and resources.get("GPU", 0.0) >= self.gpus

    def __str__(self) -> str:
        gpu = f" and {self.gpus:g} GPU" if self.gpus else ""
        return f"{self.cpus:g} CPU{gpu}"


def connect(address: str, namespace: str = NAMESPACE) -> None:
    """Join the Ray cluster at ``address`` (see :data:`ADDRESS_HELP`); no dashboard is started.

    Raises:
        RuntimeError: ``local`` without :func:`jr2net.realtime.ray_loopback.keep_ray_on_loopback`
            first (its parts would listen on every interface).
        ConnectionError: no cluster at ``address`` (``auto`` with none running here, say).
    """
    if address == LOCAL:
        if not ray_on_loopback():
            raise RuntimeError("a private Ray cluster needs keep_ray_on_loopback() before ray is imported")
        ray.init(address=LOCAL, include_dashboard=False, namespace=namespace)
    else:
        ray.init(address=address, namespace=namespace)


def refusal(resources: SessionResources, calls: int) -> str | None:
    """Why no node of the cluster can take one more call now (for a 503), or None if one can."""
    nodes = [node for node in ray.nodes() if node["Alive"]]
    if not any(resources.fits(node["Resources"]) for node in nodes):
        return (
            f"no node of this Ray cluster ({len(nodes)} live) has {resources} for a call; add one "
            f"(`ray start --address HEAD:PORT` on a machine that has it) or declare less per session"
        )
    if not any(resources.fits(free) for free in available_resources_per_node().values()):
        return (
            f"the cluster is full: no node has {resources} free for one more call ({calls} running); "
            f"try again later"
        )
    return None


def cluster_view(resources: SessionResources) -> dict[str, object]:
    """The live nodes (id, address, CPUs and GPUs in all and free) and what one session declares."""
    free = available_resources_per_node()
    nodes = []
    for node in ray.nodes():
        if not node["Alive"]:
            continue
        total, available = node["Resources"], free.get(node["NodeID"], {})
        nodes.append(
            {
                "node_id": node["NodeID"],
                "address": node["NodeManagerAddress"],
                "cpus": total.get("CPU", 0.0),
                "gpus": total.get("GPU", 0.0),
                "free_cpus": available.get("CPU", 0.0),
                "free_gpus": available.get("GPU", 0.0),
                "fits_one_more": resources.fits(available),
            }
        )
    return {"nodes": nodes, "session": {"cpus": resources.cpus, "gpus": resources.gpus}}


def named_actors(namespace: str) -> list[str]:
    """The names of the live named actors in ``namespace``."""
    return [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["namespace"] == namespace
    ]
