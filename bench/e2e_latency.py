"""Glass-to-glass latency of ``jr2net serve`` over WebRTC on loopback, beside an echo server.

    python -m bench.e2e_latency --out out/bench_e2e.json

An aiortc client sends a shared talking clip (d3: head turns, blinks, an open mouth) at its frame
rate and records when each frame left and when each reenacted frame arrived. The server runs as
its own process (``jr2net serve`` on a free loopback port), as it does beside a browser; the same
client against an echo server (``jr2net serve --echo``: the video sent straight back) in the same
run is the transport floor. Two measures (DESIGN.md, "Measuring glass-to-glass latency"):

- glass to glass per frame (the headline ``median_ms`` / ``p99_ms``): each output carries its
  input's pts through the server, so every received frame is matched to the frame it came from;
  its legs (to the server, in it, back to the client) come from the server's frame timeline
  (``GET /stats?frames=1``, the machine's shared monotonic clock).
- motion lag (``motion_lag``): the driver's motion (MediaPipe jawOpen, blinks, head yaw/pitch of
  each sent frame) reappears in the output; the lag that best aligns the two signals, in sliding
  windows of a few seconds, adds the method's own lag (smoothing, fitting) to the pixels' delay,
  and its peak correlation is a motion-transfer fidelity figure.

Also reported: the server's per-stage latency and achieved fps, the first and second halves'
medians (latency must not grow), and a histogram PNG of the per-frame times. ``--seconds``
longer than the clip loops it; ``--refiner dcnet`` and ``--source PHOTO`` set the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import aiohttp
import av
import numpy as np
import torch
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from PIL import Image, ImageDraw

from bench.timing import write_report
from jr2net.assets import repository_root
from jr2net.commands.method import add_method_arguments, add_stage_mode_argument
from jr2net.commands.refiner import add_refiner_arguments
from jr2net.media import iter_video_frames
from jr2net.realtime.rtp_framing import release_frames_on_marker
from jr2net.realtime.server import limit_ice_to_loopback
from jr2net.tracking import Tracker

CLIP = repository_root().parent / "shared" / "media" / "liveportrait" / "driving" / "d3.mp4"
SIGNALS = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight")
STEP_S = 0.005
WINDOW_S = 4.0
MAX_LAG_S = 0.6
SERVER_START_S = 120.0


class _ClipTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, frames: list[np.ndarray], fps: float, sent: list[float]) -> None:
        super().__init__()
        self.frames, self.fps, self.sent, self.index = frames, fps, sent, 0
        self.started = time.monotonic()

    async def recv(self) -> av.VideoFrame:
        if self.index >= len(self.frames):
            self.stop()
            raise MediaStreamError
        await asyncio.sleep(max(0.0, self.started + self.index / self.fps - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(self.frames[self.index], format="rgb24")
        frame.pts, frame.time_base = round(self.index * 90000 / self.fps), Fraction(1, 90000)
        self.sent.append(time.monotonic())
        self.index += 1
        return frame


@contextlib.contextmanager
def _serve(arguments: list[str]) -> Iterator[str]:
    """Run ``jr2net serve`` in its own process on a free loopback port, as a browser's server would
    be (its own interpreter and GIL); yields its base URL once it answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "jr2net.cli", "serve", "--port", str(port), *arguments]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                raise RuntimeError(
                    f"jr2net serve exited with {server.returncode}: {server.stderr.read()[-2000:]}"
                )
            try:
                urllib.request.urlopen(f"{base}/stats", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"jr2net serve did not answer within {SERVER_START_S} s") from None
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=30)


async def _call(base: str, frames: list[np.ndarray], fps: float) -> dict:
    sent: list[float] = []
    received: list[tuple[float, int, np.ndarray]] = []
    client = RTCPeerConnection()
    client.addTrack(_ClipTrack(frames, fps, sent))
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
                arrived = time.monotonic()
                received.append((arrived, frame.pts, frame.to_ndarray(format="rgb24")))

        pulls.append(asyncio.ensure_future(pull()))

    await client.setLocalDescription(await client.createOffer())
    async with aiohttp.ClientSession() as http:
        answer = await (
            await http.post(f"{base}/offer", json={"sdp": client.localDescription.sdp, "type": "offer"})
        ).json()
        await client.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type=answer["type"]))
        while len(sent) < len(frames):
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        stats = (await (await http.get(f"{base}/stats?frames=1")).json())["sessions"].get(
            answer["session"], {}
        )
    await client.close()
    return {"sent": sent, "received": received, "server": stats}


def _frame_legs(call: dict, fps: float) -> dict[str, np.ndarray]:
    """Per received frame (ms): glass to glass, and its legs client -> server, in the server, and
    server -> client, from pts carried through (DESIGN.md, way 1).

    aiortc's receivers count pts from each stream's first frame, so the server's input pts is the
    sent frame's index times the frame interval, and the client's output pts is the server's minus
    that of the first frame the server sent. Client and server share the machine's monotonic clock.
    """
    timeline = {round(pts): (captured, sent) for pts, captured, sent in call["server"].get("frames", [])}
    if not timeline or call["server"].get("first_pts") is None:
        raise RuntimeError("the server reported no frame timeline (GET /stats?frames=1)")
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


def _signals(tracker: Tracker, images: list[np.ndarray]) -> np.ndarray:
    """(N, S) motion signals per image (NaN where no face): blendshapes and head yaw/pitch."""
    rows = []
    for image in images:
        seen = tracker.track(np.ascontiguousarray(image))
        if not seen.face:
            rows.append([np.nan] * (len(SIGNALS) + 2))
            continue
        scores = [seen.blendshapes[seen.blendshape_names.index(name)] for name in SIGNALS]
        rotation = seen.head_matrix[:3, :3]
        rows.append([*scores, np.arctan2(rotation[0, 2], rotation[2, 2]), np.arcsin(-rotation[1, 2])])
    return np.array(rows, dtype=np.float64)


def _resample(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    columns = []
    for column in values.T:
        ok = np.isfinite(column)
        series = np.interp(grid, times[ok], column[ok]) if ok.sum() > 2 else np.zeros_like(grid)
        columns.append((series - series.mean()) / (series.std() + 1e-9))
    return np.stack(columns, axis=1)


def _lags(
    sent_t: np.ndarray, sent_v: np.ndarray, got_t: np.ndarray, got_v: np.ndarray
) -> list[tuple[float, float]]:
    """(lag s, peak correlation) per window: the delay that best aligns output motion with input."""
    start, stop = max(sent_t[0], got_t[0] - MAX_LAG_S), min(sent_t[-1], got_t[-1] - MAX_LAG_S)
    results = []
    shifts = np.arange(0, round(MAX_LAG_S / STEP_S) + 1)
    window_start = start
    while window_start + WINDOW_S <= stop:
        grid = np.arange(window_start, window_start + WINDOW_S, STEP_S)
        reference = _resample(sent_t, sent_v, grid)
        scores = [
            float((reference * _resample(got_t, got_v, grid + shift * STEP_S)).mean()) for shift in shifts
        ]
        best = int(np.argmax(scores))
        results.append((best * STEP_S, scores[best]))
        window_start += WINDOW_S / 2
    return results


def _histogram(path: Path, reenact: np.ndarray, echo: np.ndarray) -> None:
    """Per-frame glass-to-glass times (ms) of the reenactment and the echo, as bars."""
    width, height, bins = 640, 320, np.arange(0, MAX_LAG_S * 1e3 + 10, 10)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    for values, colour, offset in ((reenact, (200, 60, 60), 0), (echo, (60, 60, 200), 4)):
        counts, _ = np.histogram(values, bins=bins)
        scale = (height - 40) / max(1, counts.max())
        for k, count in enumerate(counts):
            x = 20 + k * (width - 40) / len(counts) + offset
            draw.rectangle([x, height - 20 - count * scale, x + 4, height - 20], fill=colour)
    draw.text((20, 5), "glass to glass per frame (ms): red reenactment, blue echo; 0-600 ms", fill="black")
    image.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--out", type=Path, required=True, help="JSON report path (the histogram goes beside it)"
    )
    parser.add_argument("--seconds", type=float, default=12.0, help="seconds sent (the clip loops)")
    parser.add_argument("--size", type=int, default=256, help="reenactment size")
    parser.add_argument("--source", default="model", help="the server's source: 'model' or a photo")
    add_method_arguments(parser)
    add_refiner_arguments(parser)
    add_stage_mode_argument(parser)
    args = parser.parse_args()
    if args.seconds < 2 * WINDOW_S:
        parser.error(
            f"--seconds must be at least {2 * WINDOW_S:g}: latency is measured in {WINDOW_S:g} s windows"
        )
    limit_ice_to_loopback()
    fps = 30.0
    clip = [np.asarray(Image.fromarray(image).resize((320, 320))) for _, _, image in iter_video_frames(CLIP)]
    frames = [clip[index % len(clip)] for index in range(round(args.seconds * fps))]  # looped if short
    method = ["--method", args.method, "--runtime", args.runtime, "--stages", args.stages]
    method += [] if args.weights is None else ["--weights", str(args.weights)]
    method += ["--refiner", args.refiner, "--dcnet-runtime", args.dcnet_runtime]
    method += [] if args.dcnet_weights is None else ["--dcnet-weights", str(args.dcnet_weights)]
    calls = {}
    for name, extra in (("reenactment", method), ("echo", ["--echo"])):
        with _serve(["--source", args.source, "--size", str(args.size), *extra]) as base:
            calls[name] = asyncio.run(_call(base, frames, fps))
    report_lags = {}
    with Tracker(mode="image") as tracker:
        sent_values = _signals(tracker, frames)
        for name, call in calls.items():
            sent_times = np.array(call["sent"]) - call["sent"][0]
            got_times = np.array([t for t, _, _ in call["received"]]) - call["sent"][0]
            got_values = _signals(tracker, [image for _, _, image in call["received"]])
            report_lags[name] = _lags(sent_times, sent_values[: len(sent_times)], got_times, got_values)
    runs, per_frame = [], {}
    for name, lags in report_lags.items():
        legs = _frame_legs(calls[name], fps)
        per_frame[name] = glass = legs.pop("glass_to_glass")
        sent_at = legs.pop("sent_at")
        delays = np.array([lag for lag, _ in lags]) * 1e3
        runs.append(
            {
                "op": f"glass_to_glass_{name}",
                "median_ms": float(np.median(glass)),
                "p99_ms": float(np.percentile(glass, 99)),
                "first_half_median_ms": float(np.median(glass[: len(glass) // 2])),
                "second_half_median_ms": float(np.median(glass[len(glass) // 2 :])),
                "median_ms_per_10s": _medians_by_window(sent_at, glass),
                "legs_ms": {
                    leg: {"median": float(np.median(values)), "p99": float(np.percentile(values, 99))}
                    for leg, values in legs.items()
                },
                "motion_lag": {
                    "median_ms": float(np.median(delays)),
                    "p99_ms": float(np.percentile(delays, 99)),
                    "windows": len(lags),
                    "first_half_median_ms": float(np.median(delays[: len(delays) // 2])),
                    "second_half_median_ms": float(np.median(delays[len(delays) // 2 :])),
                    "peak_correlation_median": float(np.median([c for _, c in lags])),
                },
                "frames_sent": len(calls[name]["sent"]),
                "frames_received": len(calls[name]["received"]),
                "server": {key: value for key, value in calls[name]["server"].items() if key != "frames"},
            }
        )
        run, motion = runs[-1], runs[-1]["motion_lag"]
        leg_text = ", ".join(f"{leg} {v['median']:.0f}" for leg, v in run["legs_ms"].items())
        print(
            f"{name:12s} glass to glass median {run['median_ms']:.0f} ms, p99 {run['p99_ms']:.0f} ms "
            f"({leg_text}); motion lag median {motion['median_ms']:.0f} ms, p99 {motion['p99_ms']:.0f} ms, "
            f"correlation {motion['peak_correlation_median']:.2f}; "
            f"frames {run['frames_received']}/{run['frames_sent']}"
        )
    histogram = args.out.with_suffix(".png")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    _histogram(histogram, per_frame["reenactment"], per_frame["echo"])
    extra = {
        "histogram": str(histogram),
        "method": args.method,
        "runtime": args.runtime,
        "stages": args.stages,
        "refiner": args.refiner,
        "source": args.source,
        "seconds": args.seconds,
    }
    write_report(args.out, runs, [torch.device("cpu")], extra)
    print(f"wrote {args.out} and {histogram}")


if __name__ == "__main__":
    main()
