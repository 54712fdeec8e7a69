"""``jr2net serve``: an aiohttp + aiortc server that reenacts a browser's camera over WebRTC.

Routes: ``GET /`` the web page; ``POST /offer`` ``{"sdp", "type"}`` (and optionally ``"refiner"``,
one the server offers) → ``{"sdp", "type", "session"}``;
``POST /source`` (multipart ``image``, or ``model`` for the built-in avatar) sets the source for
the next sessions; ``GET /stats`` the refiners offered and per-session refiner, frame counts, fps
and latency (``?frames=1`` adds
the latest sent frames' ``[pts, captured, sent]`` in monotonic seconds, and the first one's
pts). Each peer is its own session (its own stages and pipeline); a peer that leaves frees
everything it held.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription
from PIL import Image, ImageOps, UnidentifiedImageError

from jr2net.face_model import FaceModel
from jr2net.media import MediaError
from jr2net.realtime.pipeline import Pipeline
from jr2net.realtime.process_stage import StageProcessPool
from jr2net.realtime.reenactment import (
    EstimatorFactory,
    ReenactmentStages,
    RendererFactory,
    load_stage_model,
)
from jr2net.realtime.rtp_framing import release_frames_on_marker
from jr2net.realtime.stage_modes import STAGE_MODES
from jr2net.realtime.webrtc import ReenactedTrack, TrackSource
from jr2net.reenact import Controls, SourceFace
from jr2net.sources import MODEL_SOURCE, limit_size, load_source, source_from_image

LOG = logging.getLogger("jr2net.serve")
PAGE = Path(__file__).resolve().parent / "static" / "index.html"
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # room beside an uploaded image in its request (form fields, boundaries)
SESSION_STOP_TIMEOUT_S = 10.0
MAX_OFFER_BYTES = 64 * 1024  # a browser's offer is a few KiB


@dataclass
class Session:
    """One connected peer and what it holds."""

    id: str
    peer: RTCPeerConnection
    outgoing: ReenactedTrack
    refiner: str
    pipeline: Pipeline | None = None
    task: asyncio.Task | None = None
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class ReenactmentServer:
    """The server's state: the model, the current source, and the live sessions."""

    def __init__(
        self,
        model: FaceModel,
        source: SourceFace,
        size: int,
        echo: bool = False,
        method: EstimatorFactory | None = None,
        stage_mode: str = "process",
        renderers: Mapping[str, RendererFactory] | None = None,
        default_renderer: str = "geometric",
    ) -> None:
        """``echo=True`` sends every peer its own video back unprocessed: the transport floor that
        the latency benchmark subtracts. ``method`` builds the reconstruct stage's estimator (None:
        the fitter); ``stage_mode`` runs each session's two stages in processes (two kept started
        for the next session) or threads. ``renderers``: the refiners an offer may name (its
        ``refiner`` field), by name, each building the reenact stage's frame renderer (default:
        only ``geometric``); ``default_renderer`` serves offers that name none."""
        if stage_mode not in STAGE_MODES:
            raise ValueError(f"unknown stage mode {stage_mode!r}; choose from {STAGE_MODES}")
        self.renderers: dict[str, RendererFactory | None] = (
            {"geometric": None} if renderers is None else dict(renderers)
        )
        if default_renderer not in self.renderers:
            raise ValueError(
                f"the default refiner {default_renderer!r} is not among {sorted(self.renderers)}"
            )
        self.default_renderer = default_renderer
        self.model, self.source, self.size, self.echo = model, source, size, echo
        self.method, self.stage_mode = method, stage_mode
        self.sessions: dict[str, Session] = {}
        self._processes: StageProcessPool | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES)
        app.router.add_get("/", self.index)
        app.router.add_post("/offer", self.offer)
        app.router.add_post("/source", self.set_source)
        app.router.add_get("/stats", self.stats)
        app.on_startup.append(self.startup)
        app.on_shutdown.append(self.shutdown)
        return app

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(), content_type="text/html")

    async def offer(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            description = RTCSessionDescription(sdp=str(data["sdp"]), type=str(data["type"]))
        except (ValueError, KeyError, TypeError) as error:
            raise web.HTTPBadRequest(text=f"expected JSON {{'sdp', 'type'}}: {error}") from error
        if description.type != "offer":
            raise web.HTTPBadRequest(text=f"expected an offer, got {description.type!r}")
        if len(description.sdp) > MAX_OFFER_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_OFFER_BYTES, actual_size=len(description.sdp))
        if not offers_video(description.sdp):
            raise web.HTTPBadRequest(
                text="the offer has no video to reenact (or its SDP has no media at all)"
            )
        refiner = data.get("refiner") or self.default_renderer
        if refiner not in self.renderers:
            raise web.HTTPBadRequest(
                text=f"unknown refiner {refiner!r}; this server offers {sorted(self.renderers)}"
            )
        peer = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        session = Session(str(uuid.uuid4()), peer, ReenactedTrack(asyncio.get_running_loop()), refiner)
        self.sessions[session.id] = session

        @peer.on("track")
        def on_track(track: object) -> None:
            if track.kind == "video" and session.task is None:
                peer.addTrack(session.outgoing)
                session.task = asyncio.create_task(self._run(session, track))

        @peer.on("connectionstatechange")
        async def on_state() -> None:
            if peer.connectionState in ("failed", "closed"):
                await self.close_session(session.id)

        try:
            await peer.setRemoteDescription(description)
            release_frames_on_marker(peer)
            await peer.setLocalDescription(await peer.createAnswer())
        except Exception as error:  # aiortc raises its own errors too (no common codec, bad state)
            await self.close_session(session.id)
            raise web.HTTPBadRequest(text=f"cannot answer this offer: {error}") from error
        answer = peer.localDescription
        return web.json_response({"sdp": answer.sdp, "type": answer.type, "session": session.id})

    async def _run(self, session: Session, track: object) -> None:
        """Run the session's pipeline; this task owns its stages and ends the session when done."""
        stages: ReenactmentStages | None = None
        try:
            if not self.echo:
                processes = None if self._processes is None else self._processes.take(2)
                stages = await asyncio.to_thread(
                    ReenactmentStages,
                    self.model,
                    self.method,
                    self.source,
                    Controls(),
                    self.stage_mode,
                    processes,
                    self.renderers[session.refiner],
                )
            session.pipeline = Pipeline(
                TrackSource(track), [] if stages is None else stages.stages, [session.outgoing]
            )
            await session.pipeline.run()
        except Exception:
            LOG.exception("session %s failed", session.id)
        finally:
            if stages is not None:
                await asyncio.to_thread(stages.close)
            busy = any(
                other.task is not None and not other.task.done()
                for other in self.sessions.values()
                if other is not session
            )
            if self._processes is not None and not busy:
                self._processes.refill()  # idle now: the next session's children start
            if session.id in self.sessions:
                asyncio.get_running_loop().create_task(self.close_session(session.id))

    async def close_session(self, session_id: str) -> None:
        """Stop a session's pipeline and peer connection and forget it.

        The pipeline is let finish (closing the peer ends its input track), never cancelled: a
        cancelled stage would leave its worker thread inside MediaPipe. The session's task closes
        the stages once its pipeline has returned.
        """
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        if session.pipeline is not None:
            session.pipeline.stop()
        session.outgoing.stop()
        await session.peer.close()
        if session.task is not None and session.task is not asyncio.current_task():
            await asyncio.wait({session.task}, timeout=SESSION_STOP_TIMEOUT_S)
        session.closed.set()

    async def set_source(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            raise web.HTTPBadRequest(
                text="POST /source takes multipart form data with a field 'image' (or 'model')"
            )
        reader = await request.multipart()
        part = await reader.next()
        if part is None or part.name not in ("image", "model"):
            raise web.HTTPBadRequest(text="expected a form field 'image' (a face photo) or 'model'")
        if part.name == "model":
            self.source = await asyncio.to_thread(load_source, self.model, MODEL_SOURCE, self.size)
            return web.json_response({"source": "model"})
        payload = await part.read(decode=False)
        if len(payload) > MAX_UPLOAD_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD_BYTES, actual_size=len(payload))
        try:
            pixels = await asyncio.to_thread(_decode_upload, payload, self.size)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
            raise web.HTTPUnsupportedMediaType(text=f"not a readable image: {error}") from error
        try:
            self.source = await asyncio.to_thread(source_from_image, self.model, pixels, "upload")
        except (MediaError, ValueError) as error:
            raise web.HTTPUnprocessableEntity(text=str(error)) from error
        return web.json_response({"source": "upload", "size": list(pixels.shape[:2])})

    async def stats(self, request: web.Request) -> web.Response:
        sessions = {}
        for session_id, session in self.sessions.items():
            summary = session.pipeline.summary() if session.pipeline is not None else {}
            sessions[session_id] = {
                "state": session.peer.connectionState,
                "refiner": session.refiner,
                "frames_sent": session.outgoing.frames_sent,
                **summary,
            }
            if request.query.get("frames") == "1":
                sessions[session_id]["frames"] = [list(row) for row in session.outgoing.timeline]
                sessions[session_id]["first_pts"] = session.outgoing.first_pts
        return web.json_response(
            {
                "sessions": sessions,
                "refiners": sorted(self.renderers),
                "default_refiner": self.default_renderer,
            }
        )

    async def startup(self, app: web.Application) -> None:
        """Start the first session's stage processes now (they take a few seconds to import)."""
        if self.stage_mode == "process" and not self.echo:
            self._processes = StageProcessPool(spare=2, preload=load_stage_model)

    async def shutdown(self, app: web.Application) -> None:
        pool, self._processes = self._processes, None  # first: ending sessions must not refill it
        await asyncio.gather(*(self.close_session(s) for s in list(self.sessions)))
        if pool is not None:
            await asyncio.to_thread(pool.close)


def offers_video(sdp: str) -> bool:
    """Whether an SDP offers a video stream that is not disabled (port 0)."""
    media = SessionDescription.parse(sdp).media
    return any(section.kind == "video" and section.port != 0 for section in media)


def _decode_upload(payload: bytes, size: int) -> np.ndarray:
    """An uploaded image as RGB uint8, EXIF orientation applied, longer side at most ``size``."""
    with Image.open(io.BytesIO(payload)) as image:
        return np.array(limit_size(np.asarray(ImageOps.exif_transpose(image).convert("RGB")), size))


def limit_ice_to_loopback() -> None:
    """Offer only 127.0.0.1 as ICE host candidate (aioice otherwise offers every interface)."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
