"""``jr2net serve`` against a real aiortc client on loopback."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import threading
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiortc import RTCPeerConnection
from PIL import Image

from jr2net.commands.refiner import RefinerChoice
from jr2net.face_model import FaceModel
from jr2net.realtime.server import ReenactmentServer
from jr2net.realtime.webrtc import limit_ice_to_loopback
from jr2net.sources import limit_size, load_source
from jr2net.tracking import Tracker
from tests.realtime.webrtc_client import ClipTrack, connect, offer_status, serve_app


@pytest.fixture(scope="module")
def server(face_model: FaceModel) -> ReenactmentServer:
    limit_ice_to_loopback()
    # the client shares the server's process here, so admission control (tested on its own) is off
    return ReenactmentServer(face_model, load_source(face_model, "model", 160), 160, min_fps=0)


async def _one_call(
    base: str, server: ReenactmentServer, driving: list, refiner: str | None = None
) -> tuple[list[np.ndarray], dict, int, list[float]]:
    """Connect, collect 15 reenacted frames, read the stats, hang up; also the sessions left open
    after and when each driving frame was handed to the client's encoder."""
    received: list[np.ndarray] = []
    track = ClipTrack(driving)
    client, session = await connect(base, track, received, refiner)
    deadline = time.monotonic() + 40
    while len(received) < 15 and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    async with aiohttp.ClientSession() as http:
        stats = await (await http.get(f"{base}/stats?frames=1&session={session}")).json()
    await client.close()
    deadline = time.monotonic() + 15
    while session in server.sessions and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert session not in str({k: v for k, v in stats.items() if k != "you"}), "ids stay private"
    return received, stats.get("you", {}), len(server.sessions), track.handed


POOL_THREADS = ("ThreadPoolExecutor-", "asyncio_")  # executors' workers: started on demand, kept for reuse


def _call_threads() -> int:
    """Live threads other than executors' pooled workers (a pool may grow by one on any call
    until it is full, which is no leak)."""
    return sum(not thread.name.startswith(POOL_THREADS) for thread in threading.enumerate())


async def _wound_down() -> tuple[int, int]:
    """(threads, open files) once aiortc's and the pipeline's threads have wound down: when the
    counts have not changed for 1 s, waiting at most 10 s for that. Pooled workers are not counted."""
    deadline = time.monotonic() + 10
    counts, steady_since = None, time.monotonic()
    while True:
        now = (_call_threads(), len(os.listdir("/proc/self/fd")))
        if now != counts:
            counts, steady_since = now, time.monotonic()
        if time.monotonic() - steady_since >= 1.0 or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.1)


def test_frames_come_back_reenacted_and_sessions_are_freed(server: ReenactmentServer, driving: list) -> None:
    left_behind: list[tuple[int, int]] = []  # (threads, open files) after each call has ended

    async def scenario() -> list[tuple[list[np.ndarray], dict, int, list[float]]]:
        async with serve_app(server) as base:
            calls = []
            for _ in range(3):
                calls.append(await _one_call(base, server, driving))
                left_behind.append(await _wound_down())
            return calls

    calls = asyncio.run(scenario())
    # the first call may start threads that stay (a pool's); after that a call must leave none behind
    (threads, files), (last_threads, last_files) = left_behind[1], left_behind[2]
    assert last_threads <= threads and last_files <= files, f"threads and files grew: {left_behind}"
    with Tracker(mode="image") as tracker:
        for received, stats, open_sessions, handed in calls:
            assert len(received) >= 15, f"only {len(received)} frames came back"
            assert received[-1].shape == (160, 160, 3), "the reenacted avatar, not the input"
            assert stats["frames_out"] > 0 and "end_to_end" in stats["latency"]
            timeline = np.array(stats["frames"])  # (sent frames, 3): pts, captured, sent
            assert timeline.shape == (stats["frames_sent"], 3) and stats["first_pts"] == timeline[0, 0]
            assert (np.diff(timeline[:, 0]) > 0).all(), "each output carries its own input's pts"
            assert (timeline[:, 0] % 3600 == 0).all(), "pts are the client's (3600 per frame at 25 fps)"
            pts, captured, sent = timeline.T
            # aiortc's receiver counts pts from the first frame it got: the client's first, frame 0
            handed_out = np.array(handed)[(pts / 3600).round().astype(int)]
            assert (handed_out <= captured).all() and (captured <= sent).all(), (
                "each sent frame carries its own input's capture time: after the client handed that "
                "frame out, before the server sent its result"
            )
            assert tracker.track(np.ascontiguousarray(received[-1])).face
            assert open_sessions == 0, "a peer that leaves frees its session (and can call again)"


class CountedRenderers:
    """A refiner's renderer factory that counts the renderers it builds (stages in threads)."""

    def __init__(self, choice: RefinerChoice) -> None:
        self.choice, self.built = choice, 0

    def __call__(self) -> object:
        self.built += 1
        return self.choice()


def test_the_default_refiner_dcnet_is_warmed_up_and_an_offer_without_one_gets_it(
    face_model: FaceModel, driving: list
) -> None:
    """With DCNet the default, the pool's warm-up already runs DCNet (its stage times are what
    admission assumes first), and an offer naming no refiner gets DCNet's frames (shipped weights)."""
    dcnet = CountedRenderers(RefinerChoice("dcnet"))
    renderers = {"geometric": RefinerChoice("geometric"), "dcnet": dcnet}
    source = load_source(face_model, "model", 160)
    server = ReenactmentServer(
        face_model, source, 160, stage_mode="thread", renderers=renderers, default_renderer="dcnet"
    )

    async def scenario() -> tuple[int, tuple[list[np.ndarray], dict, int, list[float]]]:
        async with serve_app(server) as base:
            warmed = dcnet.built
            return warmed, await _one_call(base, server, driving)

    warmed, (received, stats, open_sessions, _) = asyncio.run(scenario())
    assert warmed >= 1 and server.warm_seconds["reenact"] > 0, "the warm-up ran DCNet before any call"
    assert len(received) >= 15 and received[-1].shape == (160, 160, 3)
    assert stats["refiner"] == "dcnet" and open_sessions == 0


def test_a_client_without_video_is_refused_at_once(server: ReenactmentServer) -> None:
    """An offer with only a data channel has nothing to reenact: a 400 that says so, no session."""

    async def scenario() -> tuple[int, str]:
        async with serve_app(server) as base:
            client = RTCPeerConnection()
            client.createDataChannel("no-video")
            await client.setLocalDescription(await client.createOffer())
            offer = {"sdp": client.localDescription.sdp, "type": "offer"}
            async with aiohttp.ClientSession() as http:
                response = await http.post(f"{base}/offer", json=offer)
                answer = response.status, await response.text()
            await client.close()
            return answer

    before = set(server.sessions)
    status, text = asyncio.run(asyncio.wait_for(scenario(), 30))
    assert status == 400 and "no video" in text
    assert set(server.sessions) == before


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_bad_requests_are_rejected(server: ReenactmentServer, shared_media: Path) -> None:
    async def post(base: str, field: str, payload: bytes) -> int:
        form = aiohttp.FormData()
        form.add_field(field, payload, filename="upload.bin")
        async with aiohttp.ClientSession() as http:
            return (await http.post(f"{base}/source", data=form)).status

    async def codec_less_offer() -> str:
        peer = RTCPeerConnection()
        peer.addTransceiver("video")
        await peer.setLocalDescription(await peer.createOffer())
        await peer.close()
        return re.sub(r"a=rtpmap:(\d+) [\w-]+/90000", r"a=rtpmap:\1 NOPE/90000", peer.localDescription.sdp)

    async def audio_only_offer() -> str:
        peer = RTCPeerConnection()
        peer.addTransceiver("audio")
        await peer.setLocalDescription(await peer.createOffer())
        await peer.close()
        return peer.localDescription.sdp

    async def scenario() -> list[int]:
        async with serve_app(server) as base:
            before = set(server.sessions)
            async with aiohttp.ClientSession() as http:
                bad_offer = (await http.post(f"{base}/offer", data=b"not json")).status
                offer = {"sdp": await codec_less_offer(), "type": "offer"}
                no_common_codec = (await http.post(f"{base}/offer", json=offer)).status
                not_multipart = (await http.post(f"{base}/source", data=b"x")).status
                garbage = (
                    await http.post(f"{base}/offer", json={"sdp": "v=0\r\nnot sdp", "type": "offer"})
                ).status
                offer = {"sdp": await audio_only_offer(), "type": "offer"}
                audio_only = (await http.post(f"{base}/offer", json=offer)).status
                offer = {"sdp": "v=0\r\n" + "a=x\r\n" * 20000, "type": "offer"}
                huge = (await http.post(f"{base}/offer", json=offer)).status
                offer = {"sdp": await codec_less_offer(), "type": "offer", "refiner": "nope"}
                unknown_refiner = await http.post(f"{base}/offer", json=offer)
                assert "geometric" in await unknown_refiner.text()
                stats = await (await http.get(f"{base}/stats")).json()
            assert stats["refiners"] == ["geometric"] and stats["default_refiner"] == "geometric"
            assert set(server.sessions) == before, "a refused offer leaves no session behind"
            return [
                bad_offer,
                garbage,
                audio_only,
                huge,
                no_common_codec,
                unknown_refiner.status,
                not_multipart,
                await post(base, "image", b"plain text, not an image"),
                await post(base, "image", _png(np.full((64, 64, 3), 90, np.uint8))),
                await post(base, "image", (shared_media / "liveportrait/source/s12.jpg").read_bytes()),
                await post(base, "model", b"1"),
            ]

    assert asyncio.run(scenario()) == [400, 400, 400, 413, 400, 400, 400, 415, 422, 200, 200]


def _photo(path: Path, size: int) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(limit_size(np.asarray(image.convert("RGB")), size))


def test_two_callers_each_get_their_own_photo(
    server: ReenactmentServer, driving: list, shared_media: Path
) -> None:
    """Each caller uploads a photo and names it in the offer: each gets their own face back, the
    upload serves that one call only, and recalibrating is per call."""
    photos = [shared_media / "liveportrait/source" / name for name in ("s12.jpg", "s5.jpg")]

    async def call(base: str, photo: Path) -> tuple[list[np.ndarray], int, int, int]:
        async with aiohttp.ClientSession() as http:
            form = aiohttp.FormData()
            form.add_field("image", photo.read_bytes(), filename=photo.name)
            uploaded = await (await http.post(f"{base}/source", data=form)).json()
        received: list[np.ndarray] = []
        client, session = await connect(base, ClipTrack(driving), received, source=uploaded["source"])
        deadline = time.monotonic() + 40
        while len(received) < 10 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        async with aiohttp.ClientSession() as http:
            recalibrated = (await http.post(f"{base}/recalibrate", json={"session": session})).status
            stranger = (await http.post(f"{base}/recalibrate", json={"session": "guess"})).status
            second, _ = await offer_status(http, base, {"source": uploaded["source"]})
        await client.close()
        return received, recalibrated, stranger, second

    async def scenario() -> list[tuple[list[np.ndarray], int, int, int]]:
        async with serve_app(server) as base:
            return list(await asyncio.gather(*(call(base, photo) for photo in photos)))

    results = asyncio.run(scenario())
    own = [_photo(photo, 160) for photo in photos]
    for k, (received, recalibrated, stranger, second) in enumerate(results):
        assert len(received) >= 10, f"caller {k} got {len(received)} frames"
        last = received[-1].astype(float)
        assert last.shape == own[k].shape, "the caller's own photo's size, not the other's"
        other = np.asarray(Image.fromarray(own[1 - k]).resize(last.shape[1::-1])).astype(float)
        assert np.abs(last - own[k]).mean() < np.abs(last - other).mean(), "their own face"
        assert (recalibrated, stranger, second) == (200, 404, 404), "per call; an upload serves one call"


def test_a_first_caller_under_the_floor_is_warned_and_the_next_one_gets_a_503(face_model: FaceModel) -> None:
    """The floor protects the callers on: a lone caller under it is taken and told what to expect;
    a second one, which would push the first under it too, gets a 503 and leaves nothing behind."""
    source = load_source(face_model, "model", 160)
    server = ReenactmentServer(face_model, source, 160, stage_mode="thread", min_fps=1000.0)

    async def scenario() -> tuple[tuple[int, str], tuple[int, str], int, dict]:
        async with serve_app(server) as base:
            async with aiohttp.ClientSession() as http:
                first = await offer_status(http, base, {})
                second = await offer_status(http, base, {})
                sessions = len(server.sessions)
                stats = await (await http.get(f"{base}/stats")).json()
            return first, second, sessions, stats

    (status, text), (refused, reason), sessions, stats = asyncio.run(scenario())
    assert status == 200, text
    answer = json.loads(text)
    warning = answer["warning"]
    assert 1 <= answer["send_fps"] <= 30, "the rate to send at, as the page caps its encoder"
    assert "this call only about" in warning and "below this server's floor of 1000 fps" in warning
    assert refused == 503 and "each of the 2 would get" in reason and "floor of 1000 fps" in reason
    assert sessions == 1, "the refused offer left no session"
    assert server.sessions == {}, "the server's shutdown closed the first caller's session"
    capacity = stats["capacity"]
    assert capacity["min_fps"] == 1000 and 1 < capacity["expected_fps_with_one_more"] < 1000
    assert all(ms > 0 for ms in capacity["stage_ms"].values()), "the warm-up measured both stages"
    assert [len(hosts) for hosts in stats["pool"].values()] == [1, 1]
