"""What ``GET /stats`` says of one call, wherever it runs (the single server or a Ray session actor)."""

from __future__ import annotations

from jr2net.realtime.pipeline import Pipeline
from jr2net.realtime.webrtc import ReenactedTrack


def call_stats(
    state: str, refiner: str | None, pipeline: Pipeline | None, outgoing: ReenactedTrack
) -> dict[str, object]:
    """A call's figures: its peer connection's ``state``, its refiner, frames sent, drops at each
    hand-off (the encoder's too) and the pipeline's summary (fps, first frame, latency) once it runs."""
    summary = pipeline.summary() if pipeline is not None else {}
    dropped = dict(summary.pop("dropped", {}))
    dropped["before the encoder"] = outgoing.dropped
    return {
        "state": state,
        "refiner": refiner,
        "frames_sent": outgoing.frames_sent,
        "dropped": dropped,
        **summary,
    }


def frame_timeline(outgoing: ReenactedTrack) -> dict[str, object]:
    """The latest sent frames' ``[pts, captured, sent]`` (monotonic seconds of the machine the call
    runs on) and the first sent frame's pts."""
    return {"frames": [list(row) for row in outgoing.timeline], "first_pts": outgoing.first_pts}
