"""The stage hosts a Ray node's calls share: real actors on a local Ray cluster (loopback only)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
import ray

from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.process_stage import StageProcessError
from jr2net.realtime.ray_cluster import named_actors
from jr2net.realtime.ray_stage_hosts import STAGE_NAMESPACE, NodeStageHost, host_name, node_host_factory
from jr2net.realtime.worker_pool import PooledSession, WorkerPool
from tests.realtime.test_process_stage import Unloadable, counter, failing_preload, invert

KINDS = ("negate", "count")


@pytest.fixture(scope="module")
def node_id() -> Iterator[str]:
    """A private Ray cluster of 2 CPUs on 127.0.0.1, no dashboard; its one node's id."""
    ray.init(address="local", num_cpus=2, include_dashboard=False)
    yield ray.get_runtime_context().get_node_id()
    ray.shutdown()


class _Call:
    """A stand-in for a call's session actor: its own pool on the node's shared hosts."""

    def __init__(self, node_id: str) -> None:
        self.pool = WorkerPool(KINDS, hosts=1, host_factory=node_host_factory(node_id))
        self.session = self._open()

    def frame(self, image: np.ndarray) -> tuple[np.ndarray, object]:
        """``image`` through both stages: the negated image and the session's frame count."""
        frame = StagedFrame(image, 0, None, None, time.monotonic())
        for stage in self.session.stages:
            frame = stage.work(frame)
        return frame.image, frame.payload

    def reopen(self) -> None:
        """Close the session's workers and open them again (a dead host is replaced first)."""
        self.session.close()
        self.session = self._open()

    def _open(self) -> PooledSession:
        return self.pool.open(
            ray.get_runtime_context().get_actor_name(), {"negate": invert, "count": counter}
        )


_REMOTE_CALL = ray.remote(num_cpus=0)(_Call)


def _call(node_id: str, name: str) -> ray.actor.ActorHandle:
    return _REMOTE_CALL.options(name=name, namespace="calls").remote(node_id)


def _host_stats(node_id: str, kind: str) -> dict[str, float | None]:
    return ray.get(ray.get_actor(host_name(node_id, kind, 0), STAGE_NAMESPACE).stats.remote())


def test_calls_on_a_node_share_its_hosts_each_with_its_own_workers(node_id: str) -> None:
    """Two calls' pools find the same host per stage kind (started once), each session keeps its
    own state there; a call whose actor was killed loses its workers there (its socket closed)."""
    image = np.full((4, 4, 3), 200, np.uint8)
    first, second = _call(node_id, "first"), _call(node_id, "second")
    outcomes = ray.get([first.frame.remote(image), second.frame.remote(image), first.frame.remote(image)])
    assert sorted(named_actors(STAGE_NAMESPACE)) == sorted(host_name(node_id, kind, 0) for kind in KINDS)
    assert all(np.array_equal(negated, 255 - image) for negated, _ in outcomes)
    assert [count for _, count in outcomes] == [1, 1, 2], "each session its own counter"
    stats = _host_stats(node_id, "count")
    assert stats["sessions"] == 2 and stats["frames"] == 3 and 0 < stats["frame_s"] < 1
    ray.kill(first)
    third = _call(node_id, "third")
    assert ray.get(third.frame.remote(image))[1] == 1
    deadline = time.monotonic() + 10  # closed as its process ends, a little after the kill
    while _host_stats(node_id, "count")["sessions"] != 2:
        assert time.monotonic() < deadline, "the killed call's worker is still open"
        time.sleep(0.05)
    ray.kill(second)
    ray.kill(third)


def test_a_host_that_dies_fails_its_calls_frames_and_is_replaced_on_the_next_open(node_id: str) -> None:
    image = np.zeros((2, 2, 3), np.uint8)
    call = _call(node_id, "survivor")
    ray.get(call.frame.remote(image))
    ray.kill(ray.get_actor(host_name(node_id, "count", 0), STAGE_NAMESPACE))
    deadline = time.monotonic() + 10  # Ray ends the actor's process a little after the kill
    with pytest.raises(StageProcessError, match="count stage's host on this node is gone"):
        while time.monotonic() < deadline:
            ray.get(call.frame.remote(image))
            time.sleep(0.05)
    ray.get(call.reopen.remote())
    assert ray.get(call.frame.remote(image))[1] == 1, "a new host, a new worker"
    ray.kill(call)


def test_a_host_whose_preload_fails_says_why(node_id: str) -> None:
    host = NodeStageHost("broken", failing_preload, node_id, 0)
    with pytest.raises(
        StageProcessError, match="(?s)broken stage's host on this node is gone.*nothing to preload"
    ):
        host.wait_started()
    assert not host.alive


def test_a_message_the_host_cannot_load_fails_that_call_only(node_id: str) -> None:
    host = NodeStageHost("negate", None, node_id, 0)
    with pytest.raises(StageProcessError, match="(?s)could not build.*cannot be loaded here"):
        host.open("unloadable", Unloadable())
    stage = host.open("fine", invert)
    image = np.full((2, 2, 3), 10, np.uint8)
    assert np.array_equal(stage.work(StagedFrame(image, 0, None, None, time.monotonic())).image, 255 - image)
    host.close()
