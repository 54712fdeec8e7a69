"""Stages in child processes: frames round-trip, the preload reaches the factory, failures surface
with their cause, children end."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import numpy as np
import pytest

from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.process_stage import StageProcess, StageProcessError, StageProcessPool


class _Invert:
    """A worker that inverts the image and reports its process and what it was built from."""

    def __init__(self, preloaded: object) -> None:
        self.preloaded = preloaded

    def __call__(self, frame: StagedFrame) -> StagedFrame:
        if frame.index < 0:
            raise ValueError("negative index")
        return replace(frame, image=255 - frame.image, payload=(os.getpid(), self.preloaded))


def _invert(preloaded: object) -> _Invert:
    return _Invert(preloaded)


def _broken(preloaded: object) -> _Invert:
    raise RuntimeError("no worker today")


def _missing_file(preloaded: object) -> _Invert:
    raise FileNotFoundError("weights.pt is not there")  # an OSError, unlike a broken pipe


def _preload() -> tuple[str, int]:
    return ("preloaded in", os.getpid())


def _failing_preload() -> None:
    raise RuntimeError("nothing to preload")


def _frame(index: int) -> StagedFrame:
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    return StagedFrame(image=image, index=index, pts=index * 3000, time_base=None, captured=time.monotonic())


def test_frames_round_trip_through_the_child() -> None:
    child = StageProcess(preload=_preload)
    with child:
        stage = child.build("invert", _invert)
        assert stage.name == "invert"
        for index in range(3):
            result = stage.work(_frame(index))
            assert result.index == index and result.pts == index * 3000
            np.testing.assert_array_equal(result.image, 255 - _frame(index).image)
            pid, preloaded = result.payload
            assert pid != os.getpid() and preloaded == ("preloaded in", pid)
    assert not child._process.is_alive()


def test_without_a_preload_the_factory_gets_none() -> None:
    with StageProcess() as child:
        assert child.build("invert", _invert).work(_frame(0)).payload[1] is None


def test_a_failing_preload_is_a_clear_error() -> None:
    with (
        StageProcess(preload=_failing_preload) as child,
        pytest.raises(StageProcessError, match="(?s)could not start.*nothing to preload"),
    ):
        child.build("invert", _invert)


def test_a_failing_frame_raises_with_its_traceback_and_the_child_goes_on() -> None:
    with StageProcess() as child:
        stage = child.build("invert", _invert)
        with pytest.raises(StageProcessError, match="(?s)invert stage failed.*negative index"):
            stage.work(_frame(-1))
        assert stage.work(_frame(1)).index == 1


@pytest.mark.parametrize(
    ("factory", "cause"), [(_broken, "no worker today"), (_missing_file, "weights.pt is not there")]
)
def test_a_factory_that_fails_is_a_clear_error(factory: object, cause: str) -> None:
    with StageProcess() as child, pytest.raises(StageProcessError, match=f"(?s)could not build.*{cause}"):
        child.build("broken", factory)


def test_a_dead_child_is_a_clear_error() -> None:
    with StageProcess() as child:
        stage = child.build("invert", _invert)
        pid = stage.work(_frame(0)).payload[0]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(StageProcessError, match="process exited"):
            stage.work(_frame(1))


def test_pool_hands_out_started_children_and_keeps_spares() -> None:
    pool = StageProcessPool(spare=1, preload=_preload)
    try:
        first, second = pool.take(2)
        assert pool.ready == 0, "a session's start must not pay for the next one's children"
        pool.refill()
        assert pool.ready == 1
        with first, second:
            payloads = [
                child.build(name, _invert).work(_frame(0)).payload
                for child, name in ((first, "a"), (second, "b"))
            ]
            assert payloads[0][0] != payloads[1][0]
            assert all(preloaded == ("preloaded in", pid) for pid, preloaded in payloads), (
                "the spare and the new child are preloaded alike"
            )
    finally:
        pool.close()
