"""The page, the routes and the request checks of a front door: the single server's
(:mod:`jr2net.realtime.server`) and ``serve --ray``'s (:mod:`jr2net.realtime.ray_server`) serve
the same ones."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aiohttp import web
from aiortc import RTCSessionDescription
from aiortc.sdp import SessionDescription

from jr2net.realtime.reenactment import RendererFactory
from jr2net.realtime.uploads import MAX_UPLOAD_BYTES, MULTIPART_OVERHEAD_BYTES, SourceUploads

PAGE = Path(__file__).resolve().parent / "static" / "index.html"
MAX_OFFER_BYTES = 64 * 1024  # a browser's offer is a few KiB


@dataclass(frozen=True)
class Offer:
    """A checked offer: its description, the refiner it asks for, and the upload it names (an id;
    None for the server's default source)."""

    description: RTCSessionDescription
    refiner: str
    source: str | None


async def read_offer(request: web.Request, refiners: Collection[str], default_refiner: str) -> Offer:
    """The offer of a ``POST /offer`` request: JSON ``{"sdp", "type"}`` with video, optionally
    ``"refiner"`` (one of ``refiners``; default ``default_refiner``) and ``"source"``.

    Raises:
        web.HTTPBadRequest: not such JSON, not an offer, no video, or an unknown refiner.
        web.HTTPRequestEntityTooLarge: an SDP over :data:`MAX_OFFER_BYTES`.
    """
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
        raise web.HTTPBadRequest(text="the offer has no video to reenact (or its SDP has no media at all)")
    refiner = data.get("refiner") or default_refiner
    if not isinstance(refiner, str) or refiner not in refiners:
        raise web.HTTPBadRequest(text=f"unknown refiner {refiner!r}; this server offers {sorted(refiners)}")
    upload = data.get("source")
    return Offer(description, refiner, None if upload is None else str(upload))


def offers_video(sdp: str) -> bool:
    """Whether an SDP offers a video stream that is not disabled (port 0)."""
    media = SessionDescription.parse(sdp).media
    return any(section.kind == "video" and section.port != 0 for section in media)


class FrontDoor(Protocol):
    """What a front door answers: offers, uploads, recalibration and stats; started and stopped
    with its app."""

    uploads: SourceUploads

    async def offer(self, request: web.Request) -> web.Response: ...

    async def recalibrate(self, request: web.Request) -> web.Response: ...

    async def stats(self, request: web.Request) -> web.Response: ...

    async def startup(self, app: web.Application) -> None: ...

    async def shutdown(self, app: web.Application) -> None: ...


async def page(request: web.Request) -> web.Response:
    """``GET /``: the call page."""
    return web.Response(text=PAGE.read_text(), content_type="text/html")


async def requested_session(request: web.Request) -> str:
    """The session id a JSON ``{"session": ID}`` request body names (``POST /recalibrate``).

    Raises:
        web.HTTPBadRequest: the body is not such JSON.
    """
    try:
        return str((await request.json())["session"])
    except (ValueError, KeyError, TypeError) as error:
        raise web.HTTPBadRequest(text=f"expected JSON {{'session'}}: {error}") from error


def front_door_app(door: FrontDoor) -> web.Application:
    """The aiohttp app of ``door``: ``GET /`` (the page), ``POST /offer``, ``POST /source``,
    ``POST /recalibrate``, ``GET /stats``; uploads up to their limit."""
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD_BYTES)
    app.router.add_get("/", page)
    app.router.add_post("/offer", door.offer)
    app.router.add_post("/source", door.uploads.handle)
    app.router.add_post("/recalibrate", door.recalibrate)
    app.router.add_get("/stats", door.stats)
    app.on_startup.append(door.startup)
    app.on_shutdown.append(door.shutdown)
    return app


def refiner_table(
    renderers: Mapping[str, RendererFactory] | None, default: str
) -> dict[str, RendererFactory | None]:
    """The refiners a caller may choose, by name (None: the geometric path only), checked to hold
    ``default``."""
    table: dict[str, RendererFactory | None] = {"geometric": None} if renderers is None else dict(renderers)
    if default not in table:
        raise ValueError(f"the default refiner {default!r} is not among {sorted(table)}")
    return table
