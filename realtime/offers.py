"""A caller's WebRTC offer answered on a peer connection (the front door checked it first:
:func:`jr2net.realtime.front_door.read_offer`). Shared by the single server and the Ray session
actors, so both take the same offers."""

from __future__ import annotations

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from jr2net.realtime.rtp_framing import release_frames_on_marker

TRACK_TIMEOUT_S = 30.0  # an answered offer whose video has not started by then is closed


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
