"""A caller's WebRTC offer: read and checked from its ``POST /offer``, then answered on a peer
connection. Shared by the single server and the Ray session actors, so both take the same offers."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription

from jr2net.realtime.rtp_framing import release_frames_on_marker

MAX_OFFER_BYTES = 64 * 1024  # a browser's offer is a few KiB
TRACK_TIMEOUT_S = 30.0  # an answered offer whose video has not started by then is closed


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


def new_peer() -> RTCPeerConnection:
    """A peer connection for one caller (host candidates only: no STUN or TURN server)."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))


async def answer_offer(peer: RTCPeerConnection, description: RTCSessionDescription) -> RTCSessionDescription:
    """Take the caller's offer on ``peer`` and return its answer (video frames are released to the
    decoder as soon as their last packet is in).

    Raises:
        Exception: aiortc's own errors too (no common codec, a bad state): the offer cannot be taken.
    """
    await peer.setRemoteDescription(description)
    release_frames_on_marker(peer)
    await peer.setLocalDescription(await peer.createAnswer())
    return peer.localDescription
