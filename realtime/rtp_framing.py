"""Release each received video frame as soon as its last RTP packet arrives.

aiortc's video jitter buffer finds a frame's end by the first packet of the *next* frame (a
timestamp change), so every aiortc receiver holds each frame for one frame interval: 33 ms at
30 fps in, and at a reenactment's lower output rate more still. Senders (aiortc and browsers
alike) set the RTP marker bit on a video frame's last packet; :class:`MarkerJitterBuffer` hands a
frame to the decoder when that packet completes it, and falls back to the timestamp change when
the marker never comes.
"""

from __future__ import annotations

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtp import RtpPacket

VIDEO_CAPACITY = 512  # packets, as aiortc's own video receiver
RECEIVER_BUFFER = "_RTCRtpReceiver__jitter_buffer"


class MarkerJitterBuffer(JitterBuffer):
    """aiortc's video jitter buffer, with frames also completed by the RTP marker bit."""

    def __init__(self) -> None:
        super().__init__(capacity=VIDEO_CAPACITY, is_video=True)
        self._released: int | None = None

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        self._drop_leftovers()
        packets: list[RtpPacket] = []
        for count in range(self.capacity):
            packet = self._packets[(self._origin + count) % self.capacity]
            if packet is None or (packets and packet.timestamp != packets[0].timestamp):
                break
            packets.append(packet)
            if packet.marker:
                frame = JitterFrame(data=b"".join(p._data for p in packets), timestamp=packet.timestamp)
                self.remove(count + 1)
                self._released = packet.timestamp
                return frame
        frame = super()._remove_frame(sequence_number)
        return frame if frame is not None and frame.data else None

    def _drop_leftovers(self) -> None:
        """Remove packets at the origin that belong to no frame still to come: padding after a
        released frame's marker (same timestamp, or no payload). Handed on alone they would make
        an empty frame, and an empty packet puts the VP8 decoder into end of stream for good."""
        while (packet := self._packets[self._origin % self.capacity]) is not None and (
            packet.timestamp == self._released or not packet._data
        ):
            self.remove(1)


def release_frames_on_marker(peer: RTCPeerConnection) -> None:
    """Give every video receiver of ``peer`` a :class:`MarkerJitterBuffer` (before media flows).

    Raises:
        RuntimeError: this aiortc keeps its jitter buffer elsewhere (the hook must be updated).
    """
    for transceiver in peer.getTransceivers():
        if transceiver.kind == "video":
            _install(transceiver.receiver)


def _install(receiver: RTCRtpReceiver) -> None:
    current = getattr(receiver, RECEIVER_BUFFER, None)
    if not isinstance(current, JitterBuffer):
        raise RuntimeError(
            "this aiortc version keeps no video jitter buffer where jr2net expects one "
            f"({RECEIVER_BUFFER}); update jr2net.realtime.rtp_framing"
        )
    if not isinstance(current, MarkerJitterBuffer):
        setattr(receiver, RECEIVER_BUFFER, MarkerJitterBuffer())
