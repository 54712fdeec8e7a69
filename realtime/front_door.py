"""The page, the routes and the request checks of a front door: the single server's
(:mod:`jr2net.realtime.server`) and ``serve --ray``'s (:mod:`jr2net.realtime.ray_server`) serve
the same ones."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from aiohttp import web

from jr2net.realtime.reenactment import RendererFactory
from jr2net.realtime.uploads import MAX_UPLOAD_BYTES, MULTIPART_OVERHEAD_BYTES, SourceUploads

PAGE = Path(__file__).resolve().parent / "static" / "index.html"


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
