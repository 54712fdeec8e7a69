"""Live figures of ``jr2net serve`` over WebRTC on loopback: several callers at webcam sizes, a soak.

    python -m bench.e2e_latency --out out/bench_e2e.json                     # 640x480, 1-3 callers, 60 s soak
    python -m bench.e2e_latency --out out/bench_e2e_720.json --frame 1280x720 --callers 1 --soak 0

aiortc clients send a shared talking clip (d3: head turns, blinks, an open mouth), pillarboxed to a
webcam's frame size, at 30 fps, or, as the page does, at most at the rate the server asks each
caller to send (its ``send_fps``, in the answer and ``/stats``; ``--no-follow-send-rate``: always
30), skipping the clip's frames in between; they record when each frame left and when each
reenacted frame arrived; the server (``jr2net serve`` in its own process, a photo as its source)
drives the photo.
The same clients against an echo server (``jr2net serve --echo``: the video sent straight back) in
the same run are the transport floor. For each number of callers at once (``--callers``), every
caller's:

- glass to glass per frame by pts (``median_ms`` / ``p99_ms``): each output carries its input's pts
  through the server, so every received frame is matched to the frame it came from; its legs (to
  the server, in it, back) come from the server's frame timeline (``GET /stats?session=&frames=1``,
  the machine's shared monotonic clock);
- motion lag: the driver's motion (its lip gap and eye openings from MediaPipe's landmarks, head
  yaw/pitch) reappears in the output; the lag that best aligns the two signals in sliding windows
  of a few seconds (over the signals the driver moved in each) adds the method's own lag
  (smoothing, fitting) to the pixels' delay. ``motion_lag_blendshapes`` reads the face through
  MediaPipe's jawOpen and blinks instead (the measure before 2026-12-06): its classifier read a
  moustached avatar's visibly open mouth as 0.03-0.10 (r 0.55 with the driver's), where the lip
  gap followed at r 0.97;
- fps received, and the time from the answer to the first frame;
- the server's admission model as the call ended (``capacity`` of ``GET /stats``: the fps it
  expects now and with one more caller, its CPU ms per frame, the cores other work keeps busy).

With the most callers, one more caller is offered mid-run (``--extra-caller``): its status and
reason (a 503 when it would push everyone below ``--min-fps``) are reported. While an admitted
extra caller runs, the others' frames are left out of their figures (fps, glass to glass): those
are the figures of that many callers; ``beside_extra`` gives them for the frames in its span.
Glass to glass is also given per second over a call's first :data:`START_S` seconds, and its p99
after them (a slow start shows there, apart from the steady state). Then a soak (``--soak`` s, one
caller): per-10 s medians of both measures and the server's resident memory (its process and the
pool's children) every second.

With ``--ray`` the same callers also run against ``jr2net serve --ray local`` (each call in its own
Ray actor on this machine, declaring ``--session-cpus``), in the same run, and the report compares
it with the plain server at each number of callers (``ray_vs_plain``): the cost of the Ray hop in
fps, glass to glass and time to the first frame (from the answer) and to the answer (the offer waits
for the call's own workers on a warm actor, or for a whole actor's start when none is warm).

    python -m bench.e2e_latency --out out/bench_e2e_ray.json --ray --callers 1,2 --soak 0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import aiohttp
import av
import numpy as np
import torch
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from bench.dcnet import letterbox
from bench.timing import write_report
from jr2net.assets import repository_root
from jr2net.commands.method import add_method_arguments, add_stage_mode_argument
from jr2net.commands.refiner import add_refiner_arguments
from jr2net.commands.serve import FILL, warm_calls
from jr2net.gaze import EYE_CORNERS, EYE_LIDS
from jr2net.media import iter_video_frames
from jr2net.realtime.rtp_framing import release_frames_on_marker
from jr2net.realtime.webrtc import limit_ice_to_loopback
from jr2net.tracking import Tracker

MEDIA = repository_root().parent / "shared" / "media" / "liveportrait"
CLIP = MEDIA / "driving" / "d3.mp4"
PHOTO = MEDIA / "source" / "s12.jpg"
BLENDSHAPES = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight")
LIP_GAP = (13, 14)  # MediaPipe mesh: the inner lips' middle points
OUTER_CORNERS = (EYE_CORNERS[0][0], EYE_CORNERS[1][0])  # the inter-ocular distance the lip gap is divided by
MOTION_MEASURES = {  # the report's name -> columns of _signals: face signals, then yaw and pitch
    "motion_lag": (3, 4, 5, 6, 7),
    "motion_lag_blendshapes": (0, 1, 2, 6, 7),
}
FPS = 30.0
STEP_S = 0.005
WINDOW_S = 4.0
MAX_LAG_S = 0.6
MIN_MOTION = (
    0.02  # a signal whose spread in a window is below this (blendshape units, ratios, radians) is still there
)
SERVER_START_S = 180.0
EXTRA_CALLER_AFTER_S = 4.0
START_S = 5.0  # a call's first seconds, reported per second


class _ClipTrack(MediaStreamTrack):
    """A camera playing ``frames`` at ``fps``; ``sent`` gets each frame's time (when it was sent, or
    when it was due where the camera skipped it). With :attr:`rate` below ``fps`` (the server's
    ``send_fps``, as the page caps its encoder) it sends at that rate, the clip's frame of the moment
    each time, and skips the others; at ``fps`` it sends every frame, catching up when late."""

    kind = "video"

    def __init__(self, frames: list[np.ndarray], fps: float, sent: list[float]) -> None:
        super().__init__()
        self.frames, self.fps, self.sent, self.index = frames, fps, sent, 0
        self.rate, self.frames_sent = fps, 0
        self.started: float | None = None  # when the call asked for the first frame
        self.next_at = 0.0

    async def recv(self) -> av.VideoFrame:
        if self.started is None:  # a camera's clock starts with its call, not before the answer
            self.started = self.next_at = time.monotonic()
        await asyncio.sleep(max(0.0, self.next_at - time.monotonic()))
        now = time.monotonic()
        capped = self.rate < self.fps
        if capped:  # the clip's frame of this moment; the ones before it were skipped
            due = min(math.floor((now - self.started) * self.fps), len(self.frames))
            while self.index < due:
                self.sent.append(self.started + self.index / self.fps)
                self.index += 1
        if self.index >= len(self.frames):
            self.stop()
            raise MediaStreamError
        frame = av.VideoFrame.from_ndarray(self.frames[self.index], format="rgb24")
        frame.pts, frame.time_base = round(self.index * 90000 / self.fps), Fraction(1, 90000)
        self.sent.append(now)
        self.index += 1
        self.frames_sent += 1
        on_time = self.started + self.index / self.fps
        self.next_at = max(on_time, now + 1.0 / self.rate) if capped else on_time
        return frame


def _tree_rss_mb(pid: int) -> float:
    """Resident memory (MB) of a process and all its descendants, from /proc."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
    return total / 1024


@dataclass
class _Server:
    base: str
    process: subprocess.Popen
    errors: list[str]  # its standard error so far

    def stats(self) -> dict:
        """Its ``GET /stats``.

        Raises:
            RuntimeError: it answered with an error (with the end of its standard error).
        """
        try:
            with urllib.request.urlopen(f"{self.base}/stats", timeout=5) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise RuntimeError(
                f"jr2net serve answered /stats with {error}: {''.join(self.errors)[-3000:]}"
            ) from error


@contextlib.contextmanager
def _serve(arguments: list[str]) -> Iterator[_Server]:
    """Run ``jr2net serve`` in its own process on a free loopback port, as a browser's server would
    be (its own interpreter and GIL); yields it once it answers (its pool warm)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "jr2net.cli", "serve", "--port", str(port), *arguments]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(server.stderr), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                reader.join(5)
                raise RuntimeError(f"jr2net serve exited with {server.returncode}: {''.join(errors)[-2000:]}")
            try:
                urllib.request.urlopen(f"{base}/stats", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jr2net serve did not answer within {SERVER_START_S} s") from None
                time.sleep(0.5)
        yield _Server(base, server, errors)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for_warm_actors(server: _Server, settled: int = 0) -> int:
    """Wait until a ``serve --ray`` front door has the warm actors it keeps ready, and at least
    ``settled`` (what it kept when it first settled: the previous group's calls ended and their
    resources went back to warm actors), at most :data:`SERVER_START_S`, so each group of callers
    starts as a caller would find a settled server; how many it keeps (0 for a plain server, which
    has none to wait for)."""
    deadline = time.monotonic() + SERVER_START_S
    while True:
        stats = server.stats()
        warm = stats.get("warm")
        if warm is None:
            return 0
        enough = not warm["room"] if warm["wanted"] == FILL else warm["placed"] >= warm["wanted"]
        if enough and warm["ready"] == warm["placed"] >= settled and not stats["sessions"]:
            return warm["placed"]
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"serve --ray had {warm['ready']} of {warm['wanted']} warm actors after {SERVER_START_S} s"
            )
        time.sleep(0.5)


async def _call(base: str, frames: list[np.ndarray], fps: float, follow_hint: bool) -> dict:
    """One caller: send ``frames`` at ``fps`` (with ``follow_hint``, at most at the ``send_fps`` the
    server asks for, read every second), keep what comes back; its offer's status too."""
    sent: list[float] = []
    received: list[tuple[float, int, np.ndarray]] = []
    client = RTCPeerConnection()
    camera = _ClipTrack(frames, fps, sent)
    client.addTrack(camera)
    release_frames_on_marker(client)  # a browser also plays a frame once its last packet is in
    pulls = []

    @client.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        async def pull() -> None:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                received.append((time.monotonic(), frame.pts, frame.to_ndarray(format="rgb24")))

        pulls.append(asyncio.ensure_future(pull()))

    await client.setLocalDescription(await client.createOffer())
    async with aiohttp.ClientSession() as http:
        offer = {"sdp": client.localDescription.sdp, "type": "offer"}
        offered = time.monotonic()
        response = await http.post(f"{base}/offer", json=offer)
        if response.status != 200:
            await client.close()
            return {"status": response.status, "reason": await response.text()}
        answer = await response.json()
        answered = time.monotonic()
        await client.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        hint = answer.get("send_fps")
        hints = [] if hint is None else [hint]
        asked_at = time.monotonic()
        while len(sent) < len(frames) and client.connectionState not in ("failed", "closed"):
            if follow_hint and hint is not None:
                camera.rate = min(fps, float(hint))
            await asyncio.sleep(0.1)
            if hint is not None and time.monotonic() - asked_at >= 1.0:
                asked_at = time.monotonic()
                asked = await http.get(f"{base}/stats?session={answer['session']}")
                hint = (await asked.json()).get("you", {}).get("send_fps", hint)
                hints.append(hint)
        await asyncio.sleep(1.0)
        reply = await http.get(f"{base}/stats?frames=1&session={answer['session']}")
        if reply.status != 200:
            raise RuntimeError(f"the server answered /stats with {reply.status}: {await reply.text()}")
        stats = await reply.json()
    await client.close()
    return {
        "status": 200,
        "sent": sent,
        "frames_sent": camera.frames_sent,
        "send_fps_hints": hints,  # the server's send_fps, from the answer on, one a second
        "received": received,
        "offered": offered,
        "answered": answered,
        "server": stats.get("you", {}),
        "capacity": stats.get("capacity"),
        "warning": answer.get("warning"),
    }


async def _callers(
    base: str, frames: list[np.ndarray], count: int, extra: bool, follow_hint: bool
) -> tuple[list[dict], dict | None]:
    """``count`` callers at once (each starting a fifth of a second after the previous); with
    ``extra``, one more offered a few seconds in, while they run; ``follow_hint`` as :func:`_call`."""

    async def staggered(k: int) -> dict:
        await asyncio.sleep(0.2 * k)
        return await _call(base, frames, FPS, follow_hint)

    async def late() -> dict:
        await asyncio.sleep(EXTRA_CALLER_AFTER_S)
        return await _call(base, frames[: round(3 * FPS)], FPS, follow_hint)

    jobs = [staggered(k) for k in range(count)] + ([late()] if extra else [])
    results = await asyncio.gather(*jobs)
    return list(results[:count]), (results[count] if extra else None)


def _frame_legs(call: dict, fps: float) -> dict[str, np.ndarray]:
    """Per received frame (ms): glass to glass, and its legs client -> server, in the server, and
    server -> client, from pts carried through (DESIGN.md, way 1).

    aiortc's receivers count pts from each stream's first frame, so the server's input pts is the
    sent frame's index times the frame interval, and the client's output pts is the server's minus
    that of the first frame the server sent. Client and server share the machine's monotonic clock.
    """
    timeline = {round(pts): (captured, sent) for pts, captured, sent in call["server"].get("frames", [])}
    if not timeline or call["server"].get("first_pts") is None:
        raise RuntimeError("the server reported no frame timeline (GET /stats?session=&frames=1)")
    first = round(call["server"]["first_pts"])
    interval = 90000 / fps
    rows = []
    for arrived, pts, _ in call["received"]:
        server_pts = pts + first
        index = round(server_pts / interval)
        if server_pts not in timeline or not 0 <= index < len(call["sent"]):
            continue
        captured, handed = timeline[server_pts]
        left = call["sent"][index]
        rows.append(
            (left - call["sent"][0], arrived - left, captured - left, handed - captured, arrived - handed)
        )
    if not rows:
        raise RuntimeError("no received frame matched a sent one by its pts")
    legs = np.array(rows) * 1e3
    return dict(zip(("sent_at", "glass_to_glass", "to_server", "in_server", "to_client"), legs.T))


def _medians_by_window(times_ms: np.ndarray, values: np.ndarray, window_s: float = 10.0) -> list[float]:
    """Median of ``values`` in consecutive windows of their (sorted) send times: growth shows here."""
    bins = (times_ms // (window_s * 1e3)).astype(int)
    return [float(np.median(values[bins == k])) for k in range(bins.max() + 1) if (bins == k).any()]


def _distance(points: np.ndarray, pair: tuple[int, int]) -> float:
    """The distance between two of ``points`` ((478, 2) MediaPipe landmarks)."""
    return float(np.linalg.norm(points[pair[0]] - points[pair[1]]))


def _signals(tracker: Tracker, images: list[np.ndarray]) -> np.ndarray:
    """(N, 8) motion signals per image (NaN where no face): the :data:`BLENDSHAPES`, the lip gap
    over the inter-ocular distance, each eye's lid gap over its width, head yaw and pitch."""
    rows = []
    for image in images:
        seen = tracker.track(np.ascontiguousarray(image))
        if not seen.face:
            rows.append([np.nan] * (len(BLENDSHAPES) + 5))
            continue
        scores = [seen.blendshapes[seen.blendshape_names.index(name)] for name in BLENDSHAPES]
        points = seen.landmarks[:, :2]
        lips = _distance(points, LIP_GAP) / _distance(points, OUTER_CORNERS)
        eyes = [
            _distance(points, lids) / _distance(points, corners)
            for lids, corners in zip(EYE_LIDS, EYE_CORNERS, strict=True)
        ]
        rotation = seen.head_matrix[:3, :3]
        pose = [np.arctan2(rotation[0, 2], rotation[2, 2]), np.arcsin(-rotation[1, 2])]
        rows.append([*scores, lips, *eyes, *pose])
    return np.array(rows, dtype=np.float64)


def _series(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(G, S) each signal of ``values`` (N, S) at ``times`` interpolated onto ``grid`` (G,), its
    missing (NaN) values left out; zeros where fewer than 3 are known."""
    columns = []
    for column in values.T:
        ok = np.isfinite(column)
        columns.append(np.interp(grid, times[ok], column[ok]) if ok.sum() > 2 else np.zeros_like(grid))
    return np.stack(columns, axis=1)


def _standardised(series: np.ndarray) -> np.ndarray:
    """(G, S) each column of ``series`` at zero mean and unit spread."""
    return (series - series.mean(axis=0)) / (series.std(axis=0) + 1e-9)


def _lags(
    sent_t: np.ndarray, sent_v: np.ndarray, got_t: np.ndarray, got_v: np.ndarray
) -> list[tuple[float, float, float]]:
    """(window start s, lag s, peak correlation) per window: the delay that best aligns output
    motion with input, over the signals the driver moved in that window (a spread of at least
    :data:`MIN_MOTION`); a window where none moved tells no lag and is left out.

    A still signal, standardised, is its tracker noise at full weight: on d3 the jaw, shut for a
    window (spread 0.002), put its best alignment at 255-325 ms and pulled the window's lag with it."""
    start, stop = max(sent_t[0], got_t[0] - MAX_LAG_S), min(sent_t[-1], got_t[-1] - MAX_LAG_S)
    results = []
    shifts = np.arange(0, round(MAX_LAG_S / STEP_S) + 1)
    window_start = start
    while window_start + WINDOW_S <= stop:
        grid = np.arange(window_start, window_start + WINDOW_S, STEP_S)
        sent = _series(sent_t, sent_v, grid)
        moving = sent.std(axis=0) >= MIN_MOTION
        if moving.any():
            reference, got = _standardised(sent[:, moving]), got_v[:, moving]
            scores = [
                float((reference * _standardised(_series(got_t, got, grid + shift * STEP_S))).mean())
                for shift in shifts
            ]
            best = int(np.argmax(scores))
            results.append((float(window_start - start), best * STEP_S, scores[best]))
        window_start += WINDOW_S / 2
    return results


def _extra_span(extra: dict | None) -> tuple[float, float] | None:
    """When an admitted extra caller shared the machine (monotonic seconds, from its offer to its
    last frame back); None when there was none or it was refused."""
    if extra is None or extra["status"] != 200:
        return None
    last = extra["received"][-1][0] if extra["received"] else extra["answered"]
    return extra["offered"], max(last, extra["answered"])


def _outside(times: np.ndarray, span: tuple[float, float] | None) -> np.ndarray:
    """(N,) bool: which of ``times`` fall outside ``span`` (all without one)."""
    if span is None:
        return np.ones(len(times), dtype=bool)
    return (times < span[0]) | (times > span[1])


def _fps(arrivals: np.ndarray, span: tuple[float, float] | None) -> float:
    """Frames per second over the arrivals outside ``span``, its length taken out of the time."""
    kept = arrivals[_outside(arrivals, span)]
    if len(kept) < 2:
        return 0.0
    elapsed = arrivals[-1] - arrivals[0]
    if span is not None:
        elapsed -= max(0.0, min(span[1], arrivals[-1]) - max(span[0], arrivals[0]))
    return (len(kept) - 1) / elapsed if elapsed > 0 else 0.0


def _motion_lag(
    sent_t: np.ndarray, sent_v: np.ndarray, got_t: np.ndarray, got_v: np.ndarray
) -> dict[str, object]:
    """The motion lag (ms) of the output's signals ``got_v`` at ``got_t`` behind the driver's
    ``sent_v`` at ``sent_t`` (see :func:`_lags`): median, p99 and each window's."""
    lags = _lags(sent_t, sent_v, got_t, got_v)
    delays = np.array([lag for _, lag, _ in lags]) * 1e3
    return {
        "median_ms": float(np.median(delays)) if len(delays) else None,
        "p99_ms": float(np.percentile(delays, 99)) if len(delays) else None,
        "windows": len(lags),
        "median_ms_per_window": [float(d) for d in delays],
        "window_starts_s": [start for start, _, _ in lags],
        "peak_correlation_median": float(np.median([c for _, _, c in lags])) if lags else None,
    }


def _describe(
    tracker: Tracker, call: dict, sent_values: np.ndarray, extra_span: tuple[float, float] | None = None
) -> dict[str, object]:
    """One caller's figures: fps, first frame, glass to glass by pts and by motion lag (ms).

    fps, glass to glass and its legs count only the frames that arrived outside ``extra_span``
    (while an extra caller shared the machine); ``beside_extra`` gives the two for the frames
    inside it. Motion lag is measured in windows over the whole call."""
    received = call["received"]
    if len(received) < 2:
        return {"frames_sent": call["frames_sent"], "frames_received": len(received), "fps": 0.0}
    arrivals = np.array([t for t, _, _ in received])
    legs = _frame_legs(call, FPS)
    glass, sent_at = legs.pop("glass_to_glass"), legs.pop("sent_at")
    alone = _outside(call["sent"][0] + (sent_at + glass) / 1e3, extra_span)
    early = alone & (sent_at < START_S * 1e3)
    later = alone & (sent_at >= START_S * 1e3)
    sent_times = np.array(call["sent"]) - call["sent"][0]
    got_values = _signals(tracker, [image for _, _, image in received])
    motion = {
        name: _motion_lag(
            sent_times,
            sent_values[: len(sent_times), list(columns)],
            arrivals - call["sent"][0],
            got_values[:, list(columns)],
        )
        for name, columns in MOTION_MEASURES.items()
    }
    described = {
        "frames_sent": call["frames_sent"],
        "send_fps_hints": call["send_fps_hints"],
        "frames_received": len(received),
        "fps": _fps(arrivals, extra_span),
        "first_frame_s": float(arrivals[0] - call["answered"]),
        "offer_s": float(call["answered"] - call["offered"]),
        "median_ms": float(np.median(glass[alone])),
        "p99_ms": float(np.percentile(glass[alone], 99)),
        "median_ms_per_10s": _medians_by_window(sent_at[alone], glass[alone]),
        "median_ms_per_1s_first_5s": _medians_by_window(sent_at[early], glass[early], 1.0),
        "p99_ms_after_5s": float(np.percentile(glass[later], 99)) if later.any() else None,
        "legs_ms": {
            leg: {"median": float(np.median(values[alone])), "p99": float(np.percentile(values[alone], 99))}
            for leg, values in legs.items()
        },
        **motion,
        "server": {key: value for key, value in call["server"].items() if key != "frames"},
        "capacity": call["capacity"],  # the server's admission model as the call ended
        "warning": call["warning"],  # what the answer told a first caller under the floor
    }
    if extra_span is not None:
        inside = arrivals[~_outside(arrivals, extra_span)]
        described["beside_extra"] = {
            "seconds": extra_span[1] - extra_span[0],
            "fps": len(inside) / (extra_span[1] - extra_span[0]),
            "median_ms": float(np.median(glass[~alone])) if (~alone).any() else None,
        }
    return described


def _print(label: str, caller: dict) -> None:
    beside = caller.get("beside_extra")
    extra = f"; beside the extra caller {beside['fps']:.1f} fps" if beside else ""
    if "median_ms" not in caller:
        print(f"{label:28s} {caller['frames_received']}/{caller['frames_sent']} frames back")
        return
    motion = caller["motion_lag"]
    lag = "n/a" if motion["median_ms"] is None else f"{motion['median_ms']:.0f}/{motion['p99_ms']:.0f}"
    print(
        f"{label:28s} {caller['fps']:5.1f} fps, first frame {caller['first_frame_s']:.2f} s, "
        f"glass to glass {caller['median_ms']:.0f}/{caller['p99_ms']:.0f} ms (p50/p99), "
        f"motion lag {lag} ms, frames {caller['frames_received']}/{caller['frames_sent']}"
        f"{extra}"
    )
    if caller.get("warning"):
        print(f"{'':28s} warned: {caller['warning']}")


def _group(callers: list[dict]) -> dict[str, float | int]:
    """One number of callers at once, summed up: mean fps, the median of their glass-to-glass
    medians, the worst p99, the slowest first frame and offer, and how many were refused."""
    served = [caller for caller in callers if "median_ms" in caller]
    if not served:
        return {"refused": len(callers)}
    return {
        "fps": float(np.mean([caller["fps"] for caller in served])),
        "median_ms": float(np.median([caller["median_ms"] for caller in served])),
        "p99_ms": float(max(caller["p99_ms"] for caller in served)),
        "first_frame_s": float(max(caller["first_frame_s"] for caller in served)),
        "offer_s": float(max(caller["offer_s"] for caller in served)),
        "refused": len(callers) - len(served),
    }


def _compare(plain: dict[str, float | int], ray: dict[str, float | int]) -> dict[str, object]:
    """The Ray server's figures beside the plain one's, with the relative change of each (%)."""
    change = {
        key: 100.0 * (ray[key] / plain[key] - 1.0)
        for key in ("fps", "median_ms", "p99_ms")
        if key in plain and key in ray and plain[key]
    }
    return {"plain": plain, "ray": ray, "change_percent": change}


def _soak(arguments: list[str], frames: list[np.ndarray], follow_hint: bool) -> tuple[dict, list[float]]:
    """One caller for the frames' length; the server's RSS (MB) every second meanwhile."""
    rss: list[float] = []
    with _serve(arguments) as server:
        done = threading.Event()

        def sample() -> None:
            while not done.wait(1.0):
                rss.append(_tree_rss_mb(server.process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        call = asyncio.run(_call(server.base, frames, FPS, follow_hint))
        done.set()
        sampler.join()
    return call, rss


def _frame_size(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.lower().split("x"))
    return width, height


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, required=True, help="JSON report path")
    parser.add_argument(
        "--frame", type=_frame_size, default=(640, 480), help="sent frame size (default 640x480)"
    )
    parser.add_argument("--callers", default="1,2,3", help="numbers of callers at once (default 1,2,3)")
    parser.add_argument(
        "--seconds", type=float, default=12.0, help="seconds each caller sends (the clip loops)"
    )
    parser.add_argument("--soak", type=float, default=60.0, help="soak seconds, one caller (0: none)")
    parser.add_argument(
        "--extra-caller",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="offer one more caller during the largest group (default on)",
    )
    parser.add_argument("--min-fps", type=float, default=8.0, help="the server's --min-fps (default 8)")
    parser.add_argument(
        "--follow-send-rate",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="send at most at the server's send_fps, as the page does (default on; off: always 30 fps)",
    )
    parser.add_argument("--hosts", type=int, help="the server's --hosts (default: its own, by cores)")
    parser.add_argument(
        "--ray",
        action="store_true",
        help="also serve the callers with serve --ray local (a Ray actor per call) and compare",
    )
    parser.add_argument(
        "--session-cpus",
        type=float,
        default=0.5,
        help="with --ray: the CPUs each call declares (default 0.5: four calls on two cores)",
    )
    parser.add_argument(
        "--warm-calls",
        type=warm_calls,
        default=FILL,
        help=f"with --ray: the warm actors it keeps, a number or {FILL} (all the cluster has room for; "
        "the default)",
    )
    parser.add_argument("--size", type=int, default=256, help="the server's --size")
    parser.add_argument("--source", default=str(PHOTO), help="the server's source (default: a shared photo)")
    add_method_arguments(parser)
    add_refiner_arguments(parser)
    add_stage_mode_argument(parser)
    args = parser.parse_args()
    if args.seconds < 2 * WINDOW_S:
        parser.error(
            f"--seconds must be at least {2 * WINDOW_S:g}: motion lag is measured in {WINDOW_S:g} s windows"
        )
    counts = sorted({int(c) for c in args.callers.split(",")})
    limit_ice_to_loopback()
    width, height = args.frame
    clip = [letterbox(image, width, height) for _, _, image in iter_video_frames(CLIP)]
    frames = [clip[index % len(clip)] for index in range(round(args.seconds * FPS))]
    method = ["--method", args.method, "--runtime", args.runtime, "--stages", args.stages]
    method += [] if args.weights is None else ["--weights", str(args.weights)]
    method += [] if args.etnet_weights is None else ["--etnet-weights", str(args.etnet_weights)]
    method += ["--refiner", args.refiner, "--dcnet-runtime", args.dcnet_runtime]
    method += [] if args.dcnet_weights is None else ["--dcnet-weights", str(args.dcnet_weights)]
    common = ["--source", args.source, "--size", str(args.size)]
    servers = {
        "reenactment": [*common, *method, "--min-fps", str(args.min_fps)]
        + ([] if args.hosts is None else ["--hosts", str(args.hosts)]),
        "echo": [*common, "--echo"],
    }
    if args.ray:
        servers["ray"] = [
            *common,
            *method,
            "--ray",
            "local",
            "--session-cpus",
            str(args.session_cpus),
            "--warm-calls",
            str(args.warm_calls),
        ]
    groups: dict[str, dict[int, list[dict]]] = {name: {} for name in servers}
    extras: dict[str, dict | None] = {}
    for name, arguments in servers.items():
        with _serve(arguments) as server:
            settled = 0
            for count in counts:
                settled = _wait_for_warm_actors(server, settled)
                extra = args.extra_caller and name == "reenactment" and count == counts[-1]
                calls, extras_call = asyncio.run(
                    _callers(server.base, frames, count, extra, args.follow_send_rate)
                )
                groups[name][count] = calls
                extras[name] = extras_call if extra else extras.get(name)
    soak_call, rss = (None, [])
    if args.soak > 0:
        soak_frames = [clip[index % len(clip)] for index in range(round(args.soak * FPS))]
        soak_call, rss = _soak(servers["reenactment"], soak_frames, args.follow_send_rate)
    report: dict[str, object] = {}
    runs = []
    summaries: dict[str, dict[int, dict[str, float | int]]] = {name: {} for name in groups}
    with Tracker(mode="image") as tracker:
        sent_values = _signals(tracker, frames)
        for name, by_count in groups.items():
            for count, calls in by_count.items():
                described = []
                span = _extra_span(extras[name]) if count == counts[-1] and name in extras else None
                for k, call in enumerate(calls):
                    if call["status"] != 200:
                        described.append({"status": call["status"], "reason": call["reason"]})
                        refusal = f"refused {call['status']}: {call['reason']}"
                        print(f"{name} {count} callers, #{k + 1}: {refusal}")
                        continue
                    described.append(_describe(tracker, call, sent_values, span))
                    _print(f"{name} {count} callers, #{k + 1}", described[-1])
                runs.append({"op": f"{name}_{count}_callers", "callers": described})
                summaries[name][count] = _group(described)
        if args.ray:
            report["ray_vs_plain"] = {
                count: _compare(summaries["reenactment"][count], summaries["ray"][count]) for count in counts
            }
            for count, compared in report["ray_vs_plain"].items():
                print(f"{count} caller(s), plain -> ray: {compared['plain']} -> {compared['ray']}")
        if extras.get("reenactment") is not None:
            extra = extras["reenactment"]
            report["extra_caller"] = (
                {"status": extra["status"], "reason": extra.get("reason")}
                if extra["status"] != 200
                else {"status": 200, "frames_received": len(extra["received"])}
            )
            print(f"one more caller beside {counts[-1]}: {report['extra_caller']}")
        if soak_call is not None:
            soak_values = _signals(tracker, soak_frames)
            soak = _describe(tracker, soak_call, soak_values)
            lag = np.array(soak["motion_lag"]["median_ms_per_window"])
            tens = np.array(soak["motion_lag"]["window_starts_s"]) // 10
            soak["motion_lag_median_ms_per_10s"] = [float(np.median(lag[tens == k])) for k in np.unique(tens)]
            soak["rss_mb"] = rss
            soak["rss_growth_mb"] = float(rss[-1] - rss[min(5, len(rss) - 1)]) if rss else None
            runs.append({"op": "soak", **soak})
            _print("soak", soak)
            print(
                f"soak per 10 s medians: glass {[round(v) for v in soak['median_ms_per_10s']]} ms, "
                f"motion lag {[round(v) for v in soak['motion_lag_median_ms_per_10s']]} ms; "
                f"RSS {rss[0]:.0f} -> {rss[-1]:.0f} MB"
                if rss
                else ""
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report |= {
        "frame": f"{width}x{height}",
        "callers": counts,
        "min_fps": args.min_fps,
        "follow_send_rate": args.follow_send_rate,
        "hosts": args.hosts,
        "method": args.method,
        "runtime": args.runtime,
        "stages": args.stages,
        "refiner": args.refiner,
        "source": args.source,
        "seconds": args.seconds,
        "soak_s": args.soak,
        "session_cpus": args.session_cpus if args.ray else None,
        "warm_calls": args.warm_calls if args.ray else None,
    }
    write_report(args.out, runs, [torch.device("cpu")], report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
