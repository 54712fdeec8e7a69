"""``POST /source``: a caller's photo, checked before any worker sees it, kept for the one call
whose offer names it (:class:`jr2net.realtime.source_store.SourceStore`).

A photo is checked here, in the process that took the request: its size, that it decodes as an
image (EXIF orientation applied, scaled to the working size) and that a face is found in it; only
the resulting :class:`jr2net.reenact.SourceFace` goes on to a session.
"""

from __future__ import annotations

import asyncio
import io

import numpy as np
from aiohttp import web
from PIL import Image, ImageOps, UnidentifiedImageError

from jr2net.face_model import FaceModel
from jr2net.media import MediaError
from jr2net.realtime.source_store import SourceStore
from jr2net.reenact import SourceFace
from jr2net.sources import MODEL_SOURCE, limit_size, load_source, source_from_image

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # room beside an uploaded image in its request (form fields, boundaries)


class SourceUploads:
    """The ``POST /source`` handler and the uploads waiting for their call.

    Args:
        model: the face model sources are fitted with.
        size: working size (longer side) of uploaded photos.
    """

    def __init__(self, model: FaceModel, size: int) -> None:
        self.model, self.size = model, size
        self.store = SourceStore()

    async def handle(self, request: web.Request) -> web.Response:
        """Multipart ``image`` (a face photo) or ``model`` (the built-in avatar) → ``{"source": id}``.

        Answers 400 without such a field, 413 over :data:`MAX_UPLOAD_BYTES`, 415 for what is not
        an image and 422 for an image without a usable face.
        """
        if not request.content_type.startswith("multipart/"):
            raise web.HTTPBadRequest(
                text="POST /source takes multipart form data with a field 'image' (or 'model')"
            )
        reader = await request.multipart()
        part = await reader.next()
        if part is None or part.name not in ("image", "model"):
            raise web.HTTPBadRequest(text="expected a form field 'image' (a face photo) or 'model'")
        if part.name == "model":
            source = await asyncio.to_thread(load_source, self.model, MODEL_SOURCE, self.size)
            return web.json_response({"source": self.store.put(source, client(request)), "kind": "model"})
        payload = await part.read(decode=False)
        if len(payload) > MAX_UPLOAD_BYTES:
            raise web.HTTPRequestEntityTooLarge(max_size=MAX_UPLOAD_BYTES, actual_size=len(payload))
        try:
            pixels = await asyncio.to_thread(_decode_upload, payload, self.size)
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as error:
            raise web.HTTPUnsupportedMediaType(text=f"not a readable image: {error}") from error
        try:
            source = await asyncio.to_thread(source_from_image, self.model, pixels, "upload")
        except (MediaError, ValueError) as error:
            raise web.HTTPUnprocessableEntity(text=str(error)) from error
        return web.json_response(
            {
                "source": self.store.put(source, client(request)),
                "kind": "upload",
                "size": list(pixels.shape[:2]),
            }
        )

    def take(self, key: str) -> SourceFace:
        """The upload ``key`` for the call that names it (see :meth:`SourceStore.take`).

        Raises:
            web.HTTPNotFound: no waiting upload has this id.
        """
        try:
            return self.store.take(key)
        except KeyError as error:
            raise web.HTTPNotFound(text=error.args[0]) from error


def client(request: web.Request) -> str:
    """Who sent a request, for per-client limits: its address."""
    return request.remote or "unknown"


def _decode_upload(payload: bytes, size: int) -> np.ndarray:
    """An uploaded image as RGB uint8, EXIF orientation applied, longer side at most ``size``."""
    with Image.open(io.BytesIO(payload)) as image:
        return np.array(limit_size(np.asarray(ImageOps.exif_transpose(image).convert("RGB")), size))
