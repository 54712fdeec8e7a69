"""A stage host in a child process: frames round-trip, each session keeps its own worker, the
preload reaches the factories, failures surface with their cause, children end."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import numpy as np
import pytest

from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.process_stage import StageProcess, StageProcessError


class _Invert:
    """A worker that inverts the image and reports its process and what it was built from."""

    def __init__(self, preloaded: object) -> None:
        self.preloaded = preloaded

    def __call__(self, frame: StagedFrame) -> StagedFrame:
        if frame.index < 0:
            raise ValueError("negative index")
        return replace(frame, image=255 - frame.image, payload=(os.getpid(), self.preloaded))


def invert(preloaded: object) -> _Invert:
    return _Invert(preloaded)


class _Counter:
    """A worker with state: how many frames it has seen (``reset`` starts over)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, frame: StagedFrame) -> StagedFrame:
        self.count += 1
        return replace(frame, payload=self.count)

    def control(self, command: str) -> bool:
        assert command == "reset"
        self.count = 0
        return True


def counter(preloaded: object) -> _Counter:
    return _Counter()


def _broken(preloaded: object) -> _Invert:
    raise RuntimeError("no worker today")


def _missing_file(preloaded: object) -> _Invert:
    raise FileNotFoundError("weights.pt is not there")  # an OSError, unlike a broken pipe


def _explode() -> None:
    raise ImportError("this worker factory cannot be loaded here")


class Unloadable:
    """A worker factory that pickles but fails as the host loads it (one it cannot import, say)."""

    def __reduce__(self) -> tuple:
        return _explode, ()


def _preload() -> tuple[str, int]:
    return ("preloaded in", os.getpid())


def failing_preload() -> None:
    raise RuntimeError("nothing to preload")


def _frame(index: int) -> StagedFrame:
    image = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    return StagedFrame(image=image, index=index, pts=index * 3000, time_base=None, captured=time.monotonic())


def test_frames_round_trip_through_the_child() -> None:
    child = StageProcess("invert", preload=_preload)
    with child:
        stage = child.open("a", invert)
        assert stage.name == "invert"
        for index in range(3):
            result = stage.work(_frame(index))
            assert result.index == index and result.pts == index * 3000
            np.testing.assert_array_equal(result.image, 255 - _frame(index).image)
            pid, preloaded = result.payload
            assert pid != os.getpid() and preloaded == ("preloaded in", pid)
        assert child.costs.median() is not None and len(child.costs.seconds) == 3
    assert not child._process.is_alive()


def test_sessions_have_their_own_workers_in_one_child() -> None:
    with StageProcess("count") as child:
        first, second = child.open("a", counter), child.open("b", counter)
        counts = [stage.work(_frame(0)).payload for stage in (first, first, second, first)]
        assert counts == [1, 2, 1, 3], "each session's worker keeps its own state"
        assert child.control("b", "reset") is True
        assert second.work(_frame(0)).payload == 1 and first.work(_frame(0)).payload == 4
        child.close_worker("b")
        assert child.sessions == {"a"}
        with pytest.raises(StageProcessError, match="no worker for session b"):
            second.work(_frame(0))
        with pytest.raises(StageProcessError, match="already has a worker"):
            child.open("a", counter)
        assert first.work(_frame(0)).payload == 5, "a refused open leaves the session's worker as it was"


def test_without_a_preload_the_factory_gets_none() -> None:
    with StageProcess("invert") as child:
        assert child.open("a", invert).work(_frame(0)).payload[1] is None
        assert child.control("a", "reset") is False, "a worker without commands ignores them"


def test_a_failing_preload_is_a_clear_error() -> None:
    with (
        StageProcess("invert", preload=failing_preload) as child,
        pytest.raises(StageProcessError, match="(?s)could not start.*nothing to preload"),
    ):
        child.wait_started()


def test_a_failing_frame_raises_with_its_traceback_and_the_child_goes_on() -> None:
    with StageProcess("invert") as child:
        stage = child.open("a", invert)
        with pytest.raises(StageProcessError, match="(?s)invert stage failed.*negative index"):
            stage.work(_frame(-1))
        assert stage.work(_frame(1)).index == 1


@pytest.mark.parametrize(
    ("factory", "cause"),
    [
        (_broken, "no worker today"),
        (_missing_file, "weights.pt is not there"),
        (Unloadable(), "cannot be loaded here"),
    ],
)
def test_a_factory_that_fails_is_a_clear_error(factory: object, cause: str) -> None:
    with StageProcess("broken") as child:
        with pytest.raises(StageProcessError, match=f"(?s)could not build.*{cause}"):
            child.open("a", factory)
        assert child.sessions == set()
        assert child.open("b", invert).work(_frame(0)).index == 0, "the child serves other sessions on"


def test_a_dead_child_is_a_clear_error() -> None:
    with StageProcess("invert") as child:
        stage = child.open("a", invert)
        pid = stage.work(_frame(0)).payload[0]
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(StageProcessError, match="process exited"):
            stage.work(_frame(1))
