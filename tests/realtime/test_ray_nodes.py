"""``jr2net serve --ray`` on a cluster of several Ray nodes (all on this machine's loopback, started
as Ray's own tests start theirs): calls spread over the nodes, a node that declares a GPU taking
the calls that declare part of one, a node lost and one joining, the front door killed and started
again as a new process while its call goes on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import ray
from ray.cluster_utils import Cluster

from jr2net.face_model import FaceModel
from jr2net.realtime.ray_cluster import NAMESPACE, SessionResources, named_actors, refusal
from jr2net.realtime.ray_server import WORKER_STOPPED, RayFrontDoor
from jr2net.realtime.ray_stage_hosts import STAGE_NAMESPACE
from jr2net.realtime.webrtc import limit_ice_to_loopback
from jr2net.reenact import SourceFace
from jr2net.sources import load_source
from jr2net.tracking import Tracker
from tests.realtime.webrtc_client import (
    ClipTrack,
    connect,
    each_got,
    offer_status,
    serve_app,
    server_stats,
    until,
)

FRAMES = 10  # reenacted frames a caller must get back
# Ray notices a lost node by missed health checks (every 3 s, 5 missed, by default); a cluster's
# operator may ask for quicker ones (RAY_health_check_period_ms and _failure_threshold on the head)
QUICK_HEALTH_CHECKS = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}
LOOPBACK = "127.0.0.1"
CLI = "import sys; from jr2net.cli import main; sys.exit(main(sys.argv[1:]))"


class Nodes:
    """A head node of 1 CPU and a second node of 1 CPU and 1 GPU (declared: Ray only counts it)."""

    def __init__(self) -> None:
        self.cluster = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "node_ip_address": LOOPBACK,
                "include_dashboard": False,
                "_system_config": QUICK_HEALTH_CHECKS,
            },
        )
        self.head_id = self.cluster.head_node.node_id
        self.gpu_node = self.add(num_gpus=1)

    def add(self, num_gpus: int = 0) -> ray._private.node.Node:
        """A node of 1 CPU (and ``num_gpus``) joins; it is alive when this returns."""
        return self.cluster.add_node(num_cpus=1, num_gpus=num_gpus, node_ip_address=LOOPBACK)


@pytest.fixture
def nodes() -> Iterator[Nodes]:
    limit_ice_to_loopback()
    started = Nodes()
    try:
        ray.init(address=started.cluster.address)
        yield started
    finally:
        ray.shutdown()
        started.cluster.shutdown()


@pytest.fixture(scope="module")
def avatar(face_model: FaceModel) -> SourceFace:
    return load_source(face_model, "model", 160)


def _front_door(
    face_model: FaceModel, avatar: SourceFace, resources: SessionResources, stage_mode: str = "thread"
) -> RayFrontDoor:
    """A front door placing each offer's own actor (none kept warm), stages in threads of each call's
    actor unless ``stage_mode`` is ``process`` (each node's shared hosts)."""
    return RayFrontDoor(
        face_model, avatar, 160, resources, "nodes", stage_mode=stage_mode, loopback_ice=True, warm=0
    )


def _nodes_with_hosts() -> set[str]:
    """The nodes that run shared stage hosts, by their hosts' names (``NODE_ID/KIND/INDEX``)."""
    return {name.split("/")[0] for name in named_actors(STAGE_NAMESPACE)}


def _freed(namespace: str, cpus: float) -> None:
    """Wait (30 s at most) for ``cpus`` CPUs and every GPU free and no actor left in ``namespace``."""
    deadline = time.monotonic() + 30

    def free() -> bool:
        available, total = ray.available_resources(), ray.cluster_resources()
        gpus_free = available.get("GPU", 0.0) == total.get("GPU", 0.0)
        return available.get("CPU", 0.0) == cpus and gpus_free and not named_actors(namespace)

    while not free():
        assert time.monotonic() < deadline, f"{ray.available_resources()}, left: {named_actors(namespace)}"
        time.sleep(0.1)


def _no_calls(door: RayFrontDoor) -> Callable[[], Awaitable[bool]]:
    """Whether ``door`` has no call left (for :func:`until`)."""

    async def done() -> bool:
        return not door.calls

    return done


def _longest_gap(arrivals: list[float], start: float, end: float) -> float:
    """The longest wait between frames arriving in ``[start, end]`` (its ends count as arrivals)."""
    inside = [start, *(t for t in arrivals if start < t < end), end]
    return float(np.diff(inside).max())


def test_calls_that_declare_part_of_a_gpu_share_the_node_that_has_one(
    nodes: Nodes, face_model: FaceModel, avatar: SourceFace, driving: list
) -> None:
    """Calls declaring 0.5 CPU and 0.5 GPU: two go to the GPU node, each given GPU 0, and get
    reenacted faces (the stages take the CPU path: this machine's GPU is only declared); a third is
    refused though the head has a CPU free; a session wanting 2 GPUs fits no node at all."""
    door = _front_door(face_model, avatar, SessionResources(cpus=0.5, gpus=0.5))

    async def calls(base: str) -> tuple:
        received: list[list[np.ndarray]] = [[], []]
        callers = [await connect(base, ClipTrack(driving), frames) for frames in received]
        await until(lambda: each_got(received, FRAMES), 90, f"{FRAMES} frames back to each caller")
        stats = await server_stats(base)
        async with aiohttp.ClientSession() as http:
            third = await offer_status(http, base, {})
        for client, _ in callers:
            await client.close()
        await until(_no_calls(door), 30, "both calls ended")
        return received, stats, third

    async def scenario() -> tuple:
        async with serve_app(door) as base:
            outcome = await calls(base)
        return outcome

    received, stats, (status, reason) = asyncio.run(scenario())
    _freed("nodes", 2.0)
    placed = stats["sessions"].values()
    assert {call["node_id"] for call in placed} == {nodes.gpu_node.node_id}, "both on the GPU node"
    assert [call["gpus"] for call in placed] == [["0"], ["0"]], "each given the node's GPU 0"
    by_id = {node["node_id"]: node for node in stats["cluster"]["nodes"]}
    assert by_id[nodes.gpu_node.node_id]["free_gpus"] == 0.0 and by_id[nodes.head_id]["gpus"] == 0.0
    assert by_id[nodes.head_id]["free_cpus"] == 1.0, "the head's CPU is free, but it has no GPU"
    assert status == 503 and "the cluster is full" in reason and "0.5 CPU and 0.5 GPU" in reason
    too_big = refusal(SessionResources(cpus=1, gpus=2), calls=0)
    assert too_big is not None and "no node of this Ray cluster (2 live) has 1 CPU and 2 GPU" in too_big
    with Tracker(mode="image") as tracker:
        for frames in received:
            assert tracker.track(np.ascontiguousarray(frames[-1])).face, "a reenacted face"


def test_a_lost_node_ends_its_call_only_and_a_node_that_joins_takes_the_next(
    nodes: Nodes, face_model: FaceModel, avatar: SourceFace, driving: list
) -> None:
    """Two 1-CPU calls land on the two nodes, each on its node's shared stage hosts. The GPU node is
    lost (its processes killed, the hosts there too): its caller is told its worker stopped, the
    other call goes on without a stall, and a third caller gets a 503 until a new node joins, where
    the next call then runs on new hosts there."""
    door = _front_door(face_model, avatar, SessionResources(cpus=1), stage_mode="process")

    async def calls(base: str) -> tuple:
        received: list[list[np.ndarray]] = [[], []]
        arrivals: list[list[float]] = [[], []]
        callers = [
            await connect(base, ClipTrack(driving), frames, arrivals=times)
            for frames, times in zip(received, arrivals)
        ]
        await until(lambda: each_got(received, FRAMES), 90, f"{FRAMES} frames back to each caller")
        placed = {door.calls[session].where["node_id"]: k for k, (_, session) in enumerate(callers)}
        lost, kept = placed[nodes.gpu_node.node_id], placed[nodes.head_id]
        hosted = await asyncio.to_thread(_nodes_with_hosts)
        lost_at = time.monotonic()
        await asyncio.to_thread(nodes.cluster.remove_node, nodes.gpu_node, False)

        async def told() -> bool:
            return "ended" in await server_stats(base, callers[lost][1])

        told_s = await until(told, 30, "the lost node's caller told")
        ended = (await server_stats(base, callers[lost][1]))["ended"]
        before = len(received[kept])
        await until(lambda: each_got([received[kept]], before + 2 * FRAMES), 30, "the other call going on")
        gap_before = _longest_gap(arrivals[kept], lost_at - 3.0, lost_at)
        gap_after = _longest_gap(arrivals[kept], lost_at, time.monotonic())
        async with aiohttp.ClientSession() as http:
            full = await offer_status(http, base, {})
        joined = nodes.add()  # on this thread: Ray's node start sets signal handlers
        late: list[np.ndarray] = []
        newcomer = await connect(base, ClipTrack(driving), late)
        await until(lambda: each_got([late], FRAMES), 90, "frames back to the caller on the new node")
        newcomer_node = door.calls[newcomer[1]].where["node_id"]
        hosted_after = await asyncio.to_thread(_nodes_with_hosts)
        for client, _ in [*callers, newcomer]:
            await client.close()
        await until(_no_calls(door), 30, "the calls ended")
        hosts = (hosted, hosted_after)
        return told_s, ended, gap_before, gap_after, full, newcomer_node == joined.node_id, hosts

    async def scenario() -> tuple:
        async with serve_app(door) as base:
            outcome = await calls(base)
        return outcome

    told_s, ended, gap_before, gap_after, (status, reason), on_joined, hosts = asyncio.run(scenario())
    _freed("nodes", 2.0)
    print(
        f"the lost node's caller was told after {told_s:.2f} s; the other call's longest wait between "
        f"frames: {gap_before:.2f} s in the 3 s before, {gap_after:.2f} s after"
    )
    assert ended["reason"] == WORKER_STOPPED and ended["worker_stopped"]
    assert gap_after < 2.0, "the other call went on without a stall"
    assert status == 503 and "the cluster is full" in reason, "one live node, taken"
    assert on_joined, "the next call runs on the node that joined"
    hosted, hosted_after = hosts
    assert hosted == {nodes.head_id, nodes.gpu_node.node_id}, "each node its own hosts"
    assert nodes.gpu_node.node_id not in hosted_after and len(hosted_after) == 2, "lost with it; new ones"


def _free_ports(count: int) -> list[int]:
    """``count`` different free loopback ports (held together while they are picked)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind((LOOPBACK, 0))
        return [probe.getsockname()[1] for probe in probes]


def _start_front_door(address: str, port: int, log: Path) -> subprocess.Popen:
    """``jr2net serve --ray ADDRESS`` as its own process, answering ``/stats`` (120 s at most)."""
    command = [
        *(sys.executable, "-c", CLI, "serve", "--ray", address, "--port", str(port)),
        *("--stages", "thread", "--warm-calls", "0", "--size", "160", "--session-cpus", "1"),
    ]
    process = subprocess.Popen(command, stdout=log.open("ab"), stderr=subprocess.STDOUT)

    async def answers() -> bool:
        assert process.poll() is None, f"the front door exited: {log.read_text()[-2000:]}"
        try:
            await server_stats(f"http://{LOOPBACK}:{port}")
        except aiohttp.ClientError:
            return False
        return True

    asyncio.run(until(answers, 120, "the front door answering"))
    return process


def test_a_front_door_killed_and_started_again_as_a_new_process_keeps_the_call(
    nodes: Nodes, driving: list, tmp_path: Path
) -> None:
    """The front door (``serve --ray ADDRESS``, a process of its own) is killed outright while a
    call runs: the call's frames keep coming (the media goes to its actor, not through the front
    door), and a front door started again on another port lists the call, and ends it when the
    caller leaves."""
    first, second = _free_ports(2)
    log = tmp_path / "front_door.log"
    door = _start_front_door(nodes.cluster.address, first, log)
    try:

        async def call() -> tuple:
            received: list[np.ndarray] = []
            client, session = await connect(f"http://{LOOPBACK}:{first}", ClipTrack(driving), received)
            await until(lambda: each_got([received], FRAMES), 90, f"{FRAMES} frames back")
            os.kill(door.pid, signal.SIGKILL)
            door.wait(10)
            wanted = len(received) + FRAMES
            await until(lambda: each_got([received], wanted), 30, "frames without a front door")
            again = await asyncio.to_thread(_start_front_door, nodes.cluster.address, second, log)
            try:
                adopted = await server_stats(f"http://{LOOPBACK}:{second}", session)
                await client.close()

                async def ended() -> bool:
                    return "ended" in await server_stats(f"http://{LOOPBACK}:{second}", session)

                await until(ended, 30, "the restarted front door seeing the call end")
                return adopted, (await server_stats(f"http://{LOOPBACK}:{second}", session))["ended"]
            finally:
                again.terminate()
                again.wait(30)

        adopted, ended = asyncio.run(call())
    finally:
        door.kill()
        door.wait(10)
    _freed(NAMESPACE, 2.0)
    assert adopted["you"]["name"] == "caller-1" and adopted["you"]["state"] == "connected"
    assert list(adopted["sessions"]) == ["caller-1"]
    assert ended["worker_stopped"] is False
