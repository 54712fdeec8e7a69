"""The marker-bit jitter buffer: frames leave on their last packet, not one frame later."""

from __future__ import annotations

import asyncio

from aiortc import RTCPeerConnection
from aiortc.rtp import RtpPacket

from jr2net.realtime.rtp_framing import RECEIVER_BUFFER, MarkerJitterBuffer, release_frames_on_marker


def _packet(sequence: int, timestamp: int, data: bytes, marker: bool) -> RtpPacket:
    packet = RtpPacket(payload_type=96, sequence_number=sequence, timestamp=timestamp, marker=int(marker))
    packet._data = data
    return packet


def test_frame_leaves_with_its_marked_last_packet() -> None:
    buffer = MarkerJitterBuffer()
    assert buffer.add(_packet(100, 3000, b"ab", False)) == (False, None)
    _, frame = buffer.add(_packet(101, 3000, b"cd", True))
    assert frame is not None and frame.data == b"abcd" and frame.timestamp == 3000
    _, frame = buffer.add(_packet(102, 6000, b"ef", True))
    assert frame is not None and frame.data == b"ef" and frame.timestamp == 6000


def test_frame_with_a_missing_packet_waits() -> None:
    buffer = MarkerJitterBuffer()
    buffer.add(_packet(100, 3000, b"ab", False))
    assert buffer.add(_packet(102, 3000, b"ef", True)) == (False, None)
    _, frame = buffer.add(_packet(101, 3000, b"cd", False))  # the retransmission completes it
    assert frame is not None and frame.data == b"abcdef"


def test_padding_after_a_released_frame_makes_no_empty_frame() -> None:
    buffer = MarkerJitterBuffer()
    frames = []
    for packet in (
        _packet(65534, 3000, b"ab", False),
        _packet(65535, 3000, b"cd", True),
        _packet(0, 3000, b"", False),  # padding-only packets after the marker, across the wrap
        _packet(1, 3000, b"", False),
        _packet(2, 6000, b"ef", False),
        _packet(3, 6000, b"gh", True),
    ):
        _, frame = buffer.add(packet)
        if frame is not None:
            frames.append((frame.timestamp, frame.data))
    assert frames == [(3000, b"abcd"), (6000, b"efgh")]


def test_without_marker_the_next_timestamp_ends_the_frame() -> None:
    buffer = MarkerJitterBuffer()
    assert buffer.add(_packet(7, 90, b"x", False)) == (False, None)
    _, frame = buffer.add(_packet(8, 180, b"y", False))
    assert frame is not None and frame.data == b"x" and frame.timestamp == 90


def test_installed_on_video_receivers_only() -> None:
    async def transceivers() -> tuple[object, object]:
        peer = RTCPeerConnection()
        video, audio = peer.addTransceiver("video"), peer.addTransceiver("audio")
        release_frames_on_marker(peer)
        buffers = getattr(video.receiver, RECEIVER_BUFFER), getattr(audio.receiver, RECEIVER_BUFFER)
        await peer.close()
        return buffers

    video, audio = asyncio.run(transceivers())
    assert isinstance(video, MarkerJitterBuffer)
    assert not isinstance(audio, MarkerJitterBuffer)
