"""``jr2net serve --ray``: real aiortc callers, a real local Ray cluster (2 CPUs, loopback only),
each call on its own actor."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import ray

from jr2net.cli import main
from jr2net.face_model import FaceModel
from jr2net.realtime.ray_cluster import SessionResources, named_actors
from jr2net.realtime.ray_server import START_TIMEOUT_S, WORKER_STOPPED, RayFrontDoor
from jr2net.realtime.ray_stage_hosts import STAGE_NAMESPACE
from jr2net.realtime.threads import machine_cores
from jr2net.realtime.webrtc import limit_ice_to_loopback
from jr2net.realtime.worker_pool import hosts_per_stage
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

CLUSTER_CPUS = 2
FRAMES = 10  # reenacted frames a caller must get back


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A private Ray cluster of 2 CPUs on 127.0.0.1 (the conftest keeps Ray on loopback), no dashboard."""
    limit_ice_to_loopback()
    ray.init(address="local", num_cpus=CLUSTER_CPUS, include_dashboard=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def avatar(face_model: FaceModel) -> SourceFace:
    return load_source(face_model, "model", 160)


def _front_door(face_model: FaceModel, avatar: SourceFace, namespace: str, warm: int | None) -> RayFrontDoor:
    """A front door whose calls each declare 1 CPU (two fit on the cluster), their stages on the
    node's shared hosts, ``warm`` actors kept warm."""
    return RayFrontDoor(
        face_model,
        avatar,
        160,
        SessionResources(cpus=1),
        namespace,
        loopback_ice=True,
        warm=warm,
    )


def _free_cpus() -> float:
    return ray.available_resources().get("CPU", 0.0)


async def _all_free() -> bool:
    return await asyncio.to_thread(_free_cpus) == CLUSTER_CPUS


def _sessions_on_hosts(kind: str) -> int:
    """The sessions with a worker on the node's shared hosts of stage ``kind``."""
    names = [name for name in named_actors(STAGE_NAMESPACE) if f"/{kind}/" in name]
    return sum(ray.get(ray.get_actor(name, STAGE_NAMESPACE).stats.remote())["sessions"] for name in names)


def _freed(namespace: str) -> None:
    """Wait (30 s at most) for every CPU of the cluster to be free and no actor left in ``namespace``."""
    deadline = time.monotonic() + 30
    while _free_cpus() != CLUSTER_CPUS or named_actors(namespace):
        assert time.monotonic() < deadline, f"{_free_cpus()} CPUs free, left: {named_actors(namespace)}"
        time.sleep(0.1)


def test_two_callers_run_on_two_actors_and_a_third_gets_a_503(
    cluster: None, face_model: FaceModel, avatar: SourceFace, driving: list
) -> None:
    """Two callers each get reenacted frames from their own actor (the first one kept warm for
    them); a third, beyond the cluster's 2 CPUs, gets a 503 with the reason; a second front door
    (a restart) finds both calls; hanging up and stopping the front door free the CPUs."""
    namespace = "two-callers"
    door = _front_door(face_model, avatar, namespace, warm=1)

    async def calls(base: str) -> tuple:
        async with aiohttp.ClientSession() as http:
            form = aiohttp.FormData()
            form.add_field("image", b"not an image", filename="upload.bin")
            bad_upload = (await http.post(f"{base}/source", data=form)).status
        received: list[list[np.ndarray]] = [[], []]
        callers = [await connect(base, ClipTrack(driving), frames) for frames in received]
        await until(lambda: each_got(received, FRAMES), 90, f"{FRAMES} frames back to each caller")
        stats = await server_stats(base, callers[0][1])
        hosts = await asyncio.to_thread(named_actors, STAGE_NAMESPACE)
        shared = await asyncio.to_thread(_sessions_on_hosts, "reenact")
        loaded = [  # a lambda travels by value: a function of this module would import it (and torch) there
            await door.calls[session].actor.__ray_call__.remote(
                lambda actor: {name for name in ("torch", "numba", "mediapipe", "cv2") if name in sys.modules}
            )
            for _, session in callers
        ]
        async with aiohttp.ClientSession() as http:
            third = await offer_status(http, base, {})
        restarted = _front_door(face_model, avatar, namespace, warm=1)
        async with serve_app(restarted) as second_base:
            adopted = await server_stats(second_base)
        pids = {door.calls[session].where["pid"] for _, session in callers}
        for client, _ in callers:
            await client.close()

        async def ended() -> bool:
            return not door.calls and len(door.warm_actors) == 1

        async def warm_again() -> bool:
            return door.warm_actors[0].is_ready

        await until(ended, 30, "both calls ended (and a warm actor back)")
        await until(warm_again, START_TIMEOUT_S, "the warm actor warmed up")
        after = await server_stats(base)
        return bad_upload, received, stats, third, adopted, pids, after, hosts, shared, loaded

    async def scenario() -> tuple:
        async with serve_app(door) as base:  # stops the front door after
            outcome = await calls(base)
        return outcome

    outcome = asyncio.run(scenario())
    bad_upload, received, stats, (status, reason), adopted, pids, after, hosts, shared, loaded = outcome
    assert bad_upload == 415, "an upload is checked at the front door, before any worker"
    with Tracker(mode="image") as tracker:
        for frames in received:
            assert len(frames) >= FRAMES and frames[-1].shape == (160, 160, 3), "the avatar's size"
            assert tracker.track(np.ascontiguousarray(frames[-1])).face, "a reenacted face"
    assert len(pids) == 2, "each call on its own actor"
    assert len(hosts) == 2 * hosts_per_stage(machine_cores()), "one pool of hosts on the node"
    assert shared == 2, "both calls' reenact workers on the node's shared hosts"
    assert loaded == [set(), set()], "a session actor only routes frames: its hosts load what computes"
    assert sorted(stats["sessions"]) == ["caller-1", "caller-2"]
    assert all(call["node"] == "127.0.0.1" for call in stats["sessions"].values())
    assert stats["you"]["name"] == "caller-1" and stats["you"]["frames_out"] > 0
    assert 1 <= stats["you"]["send_fps"] <= 30, "the rate to send at, from the node's shared hosts"
    assert all("send_fps" not in call for call in stats["sessions"].values()), "each caller's own"
    assert [node["free_cpus"] for node in stats["cluster"]["nodes"]] == [0.0]
    assert status == 503 and "the cluster is full" in reason and "1 CPU" in reason
    assert sorted(adopted["sessions"]) == ["caller-1", "caller-2"], "a restarted front door finds the calls"
    assert stats["warm"] == {"wanted": 1, "placed": 0, "ready": 0, "room": False}, (
        "no room for a warm actor while both calls run"
    )
    assert after["sessions"] == {} and after["warm"] == {"wanted": 1, "placed": 1, "ready": 1, "room": True}
    _freed(namespace)


def test_a_killed_worker_ends_its_call_only_and_frees_its_place(
    cluster: None, face_model: FaceModel, avatar: SourceFace, driving: list, shared_media: Path
) -> None:
    """``ray.kill`` of one call's actor: that caller is told its worker stopped, the other call
    goes on, and the caller reconnects (with the same photo) on the freed CPU (each offer places
    its own actor here). Then the node's shared reenact host is killed: both calls on it are told
    their worker stopped."""
    photo = shared_media / "liveportrait/source/s12.jpg"
    door = _front_door(face_model, avatar, "kill", warm=0)

    async def calls(base: str) -> tuple:
        async with aiohttp.ClientSession() as http:
            form = aiohttp.FormData()
            form.add_field("image", photo.read_bytes(), filename=photo.name)
            uploaded = (await (await http.post(f"{base}/source", data=form)).json())["source"]
        received: list[list[np.ndarray]] = [[], []]
        arrivals: list[float] = []  # the survivor's frames
        callers = [
            await connect(base, ClipTrack(driving), received[0], source=uploaded),
            await connect(base, ClipTrack(driving), received[1], arrivals=arrivals),
        ]
        await until(lambda: each_got(received, FRAMES), 90, f"{FRAMES} frames back to each caller")
        (_, killed), (_, survivor) = callers
        killed_at = time.monotonic()
        ray.kill(door.calls[killed].actor)

        async def told() -> bool:
            return "ended" in await server_stats(base, killed)

        told_s = await until(told, 10, "the killed worker's caller told")
        ended = (await server_stats(base, killed))["ended"]
        before = len(received[1])
        await until(lambda: each_got(received[1:], before + 2 * FRAMES), 30, "the other call going on")
        waits, ends = np.diff(arrivals), np.array(arrivals[1:])
        after, before_kill = ends > killed_at, (ends > killed_at - 2.0) & (ends <= killed_at)
        print(
            f"the other caller's longest wait between frames: {waits[after].max():.2f} s after the kill, "
            f"{waits[before_kill].max():.2f} s in the 2 s before"
        )

        async def alone() -> bool:
            return list((await server_stats(base))["sessions"]) == ["caller-2"]

        await until(alone, 5, "the killed call gone from /stats")
        survivor_stats = await server_stats(base, survivor)
        late: list[np.ndarray] = []
        newcomer = await connect(base, ClipTrack(driving), late, source=ended["source"])
        await until(lambda: each_got([late], FRAMES), 90, "frames back to the next caller")
        shared = await asyncio.to_thread(_sessions_on_hosts, "reenact")
        for name in await asyncio.to_thread(named_actors, STAGE_NAMESPACE):
            if "/reenact/" in name:
                ray.kill(ray.get_actor(name, STAGE_NAMESPACE))  # the node's shared host dies

        async def both_told() -> bool:
            return all(["ended" in await server_stats(base, s) for s in (survivor, newcomer[1])])

        await until(both_told, 10, "the calls on the dead host told")
        host_lost = [(await server_stats(base, s))["ended"] for s in (survivor, newcomer[1])]
        for client, _ in [*callers, newcomer]:
            await client.close()
        await until(_all_free, 30, "every call's CPU freed")
        return told_s, ended, survivor_stats, received[0][-1].shape, late[-1].shape, shared, host_lost

    async def scenario() -> tuple:
        async with serve_app(door) as base:  # stops the front door after
            outcome = await calls(base)
        return outcome

    told_s, ended, survivor_stats, photo_shape, reconnected_shape, shared, host_lost = asyncio.run(scenario())
    _freed("kill")
    print(f"the killed worker's caller was told after {told_s:.2f} s")
    assert ended["reason"] == WORKER_STOPPED and ended["worker_stopped"] and ended["source"]
    assert reconnected_shape == photo_shape != (160, 160, 3), "the reconnect has the same photo"
    assert survivor_stats["you"]["name"] == "caller-2" and survivor_stats["you"]["state"] == "connected"
    assert sorted(survivor_stats["sessions"]) == ["caller-2"], "the killed call is gone, the other stays"
    assert shared == 2, "the killed call's worker was closed on the shared host"
    assert all(lost["reason"] == WORKER_STOPPED and lost["worker_stopped"] for lost in host_lost), (
        "a dead stage host ends the calls on it as their worker stopping (a reconnect offered)"
    )


def test_warm_actors_filling_the_cluster_are_replaced_as_calls_end_not_as_they_start(
    cluster: None, face_model: FaceModel, avatar: SourceFace, driving: list
) -> None:
    """``warm=None`` (``--warm-calls fill``): as many warm actors as the cluster has room for (two
    of 1 CPU on 2 CPUs). The first one dies as it waits (its node lost, say): the next caller's offer
    passes over it to the other, and the dead one's CPU gets a new warm actor, but none starts
    beside the call (no room: the call holds the CPU its actor held); when the call ends, its freed
    CPU gets a new warm actor."""
    door = _front_door(face_model, avatar, "fill", warm=None)

    async def scenario() -> tuple:
        async with serve_app(door) as base:

            async def warm_now(placed: int) -> bool:
                warm = (await server_stats(base))["warm"]
                return warm["placed"] == warm["ready"] == placed and not warm["room"]

            await until(lambda: warm_now(2), START_TIMEOUT_S, "the cluster filled with ready warm actors")
            filled = (await server_stats(base))["warm"]
            ray.kill(door.warm_actors[0].actor)
            received: list[np.ndarray] = []
            client, _ = await connect(base, ClipTrack(driving), received)
            await until(lambda: each_got([received], FRAMES), 90, f"{FRAMES} frames back")
            await until(lambda: warm_now(1), START_TIMEOUT_S, "the dead actor's CPU warm again")
            await client.close()
            await until(lambda: warm_now(2), START_TIMEOUT_S, "a warm actor on the ended call's CPU")
            return filled

    filled = asyncio.run(scenario())
    _freed("fill")
    assert filled == {"wanted": "fill", "placed": 2, "ready": 2, "room": False}


def test_serve_options_of_the_other_mode_are_clear_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--session-gpus", "0.25"]) == 1
    assert "add --ray" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["serve", "--ray", "local", "--warm-calls", "many"])
    assert "expected a number of actors (0 or more) or 'fill', got 'many'" in capsys.readouterr().err
    assert main(["serve", "--ray", "local", "--min-fps", "10"]) == 1
    assert "--min-fps and --hosts size the single server" in capsys.readouterr().err


def test_serve_ray_without_ray_names_the_extra_to_install() -> None:
    """Where ray cannot be imported, ``serve --ray`` says which extra brings it (before any work)."""
    code = "import sys; sys.modules['ray'] = None; from jr2net.cli import main; sys.exit(main(sys.argv[1:]))"
    done = subprocess.run(
        [sys.executable, "-c", code, "serve", "--ray", "auto"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and 'pip install "jr2net[ray]"' in done.stderr
