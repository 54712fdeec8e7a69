"""The shared worker pool: fair turns, sessions placed on the least-loaded host, its own state per
session; the admission model; the per-caller source store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace

import numpy as np
import pytest

from jr2net.realtime.admission import CallCost, CpuAccount, expected_fps
from jr2net.realtime.fair_lock import FairLock
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.process_stage import StageProcessError
from jr2net.realtime.source_store import SourceStore, UnknownSource
from jr2net.realtime.worker_pool import WorkerPool, hosts_per_stage


def _frame(index: int) -> StagedFrame:
    return StagedFrame(np.zeros((2, 2, 3), np.uint8), index, None, None, time.monotonic())


class _Slow:
    """Takes ``seconds`` per frame and stamps the frame with the host's sessions' worker id."""

    def __init__(self, name: str, seconds: float) -> None:
        self.name, self.seconds, self.frames = name, seconds, 0

    def __call__(self, frame: StagedFrame) -> StagedFrame:
        time.sleep(self.seconds)
        self.frames += 1
        return replace(frame, payload=(self.name, self.frames))


def _invert_worker(preloaded: object) -> object:
    return _Invert()


class _Invert:
    def __call__(self, frame: StagedFrame) -> StagedFrame:
        return replace(frame, image=255 - frame.image)


def test_the_fair_lock_serves_waiters_in_arrival_order() -> None:
    lock, order = FairLock(), []
    lock.acquire()
    threads = []
    for name in "abcd":
        thread = threading.Thread(target=lambda n=name: (lock.acquire(), order.append(n), lock.release()))
        thread.start()
        threads.append(thread)
        time.sleep(0.05)  # each is waiting before the next comes
    assert lock.acquire(timeout=0.05) is False, "a timed-out waiter gives up its turn"
    lock.release()
    for thread in threads:
        thread.join(5)
    assert order == list("abcd")
    with pytest.raises(RuntimeError, match="unheld"):
        lock.release()


def test_sessions_spread_over_hosts_and_take_turns() -> None:
    with WorkerPool(["first", "second"], mode="thread", hosts=2) as pool:
        sessions = [
            pool.open(
                f"s{k}", {"first": lambda _, k=k: _Slow(f"s{k}", 0.002), "second": lambda _: _Slow("x", 0.0)}
            )
            for k in range(3)
        ]
        assert sorted(len(h.sessions) for h in pool.hosts["first"]) == [1, 2], "least-loaded host first"
        shared = next(h for h in pool.hosts["first"] if len(h.sessions) == 2)
        sharing = [s for s in sessions if shared in s.hosts]
        served: dict[str, list[int]] = {s.key: [] for s in sharing}
        stop = time.monotonic() + 1.0

        def drive(session: object) -> None:
            while time.monotonic() < stop:
                name, count = session.stages[0].work(_frame(0)).payload
                served[name].append(count)

        threads = [threading.Thread(target=drive, args=(s,)) for s in sharing]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        counts = [len(values) for values in served.values()]
        assert min(counts) > 50 and max(counts) - min(counts) <= 2, f"turns are fair: {counts}"
        assert all(values == sorted(values) for values in served.values()), "a session's frames keep order"
        assert pool.load()["first"][0]["frame_ms"] is not None
        sessions[0].close()
        assert sum(len(h.sessions) for h in pool.hosts["first"]) == 2


def test_a_pool_refuses_missing_factories_and_frees_a_half_open_session() -> None:
    def broken(_: object) -> None:
        raise RuntimeError("cannot build")

    with WorkerPool(["first", "second"], mode="thread", hosts=1) as pool:
        with pytest.raises(ValueError, match="a worker factory for each"):
            pool.open("a", {"first": lambda _: _Slow("a", 0.0)})
        with pytest.raises(RuntimeError, match="cannot build"):
            pool.open("a", {"first": lambda _: _Slow("a", 0.0), "second": broken})
        assert all(not host.sessions for hosts in pool.hosts.values() for host in hosts)


def test_hosts_per_stage_grow_with_cores() -> None:
    assert [hosts_per_stage(c) for c in (1, 2, 4, 5, 8, 16)] == [1, 1, 1, 2, 3, 7]


def test_expected_fps_divides_each_host_among_its_callers_and_the_free_cores_among_all() -> None:
    stages = {"reconstruct": 0.020, "reenact": 0.030}
    one = {"reconstruct": [1], "reenact": [1]}
    delivered_only = CallCost(per_received=0.0, per_delivered=0.060)
    assert expected_fps(2, one, stages, delivered_only) == pytest.approx(2 / 0.060)  # the cores bind first
    assert expected_fps(2, one, stages, delivered_only, 0.5) == pytest.approx(1.5 / 0.060), "others' cores"
    assert expected_fps(2, one, stages, delivered_only, 3.0) == 0.0, "no core left"
    decoding = CallCost(per_received=0.010, per_delivered=0.080, received_rate=30.0)
    assert expected_fps(2, one, stages, decoding) == pytest.approx((2 - 0.3) / 0.080), "decoding first"
    three = {"reconstruct": [3], "reenact": [3]}
    assert expected_fps(2, three, stages, CallCost(0.0, 0.050)) == pytest.approx(1 / 0.090)  # the host binds
    four = {"reconstruct": [4], "reenact": [4]}
    cost = CallCost(0.0, 0.070)
    assert expected_fps(2, four, stages, cost) < 8.0 < expected_fps(2, three, stages, cost)
    uneven = {"reconstruct": [2, 0], "reenact": [1, 1]}
    assert expected_fps(16, uneven, stages, CallCost(0.0, 0.050)) == pytest.approx(1 / 0.040), "the busiest"
    leaving = {"reconstruct": [0], "reenact": [1]}  # a call that has closed one stage's worker so far
    assert expected_fps(2, leaving, stages, CallCost(0.0, 0.050)) == pytest.approx(1 / 0.030)
    with pytest.raises(ValueError):
        expected_fps(2, {"reconstruct": [0], "reenact": [0]}, stages, CallCost(0.0, 0.050))


def test_loads_place_extra_callers_as_open_would() -> None:
    with WorkerPool(["first"], mode="thread", hosts=3) as pool:
        pool.open("a", {"first": lambda _: _Slow("a", 0.0)})
        assert pool.loads() == {"first": [1, 0, 0]}
        assert pool.loads(extra=3) == {"first": [2, 1, 1]}


def test_concurrent_opens_spread_over_the_hosts() -> None:
    """Two sessions opening at once, each build slow, land on different hosts."""

    def slow_build(_: object) -> _Slow:
        time.sleep(0.3)
        return _Slow("s", 0.0)

    with WorkerPool(["first"], mode="thread", hosts=2) as pool:
        threads = [threading.Thread(target=pool.open, args=(k, {"first": slow_build})) for k in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(len(h.sessions) for h in pool.hosts["first"]) == [1, 1]


def test_a_dead_host_is_replaced_and_its_sessions_close_cleanly() -> None:
    with WorkerPool(["first", "second"], mode="process", hosts=1) as pool:
        doomed = pool.open("a", {"first": _invert_worker, "second": _invert_worker})
        doomed.stages[0].work(_frame(0))
        dead = pool.hosts["first"][0]
        os.kill(dead.pid, signal.SIGKILL)
        dead._process.join(5)
        with pytest.raises(StageProcessError):
            doomed.stages[0].work(_frame(1))
        doomed.close()  # the dead host is skipped, the live one frees its worker
        assert pool.hosts["second"][0].sessions == set()
        fresh = pool.open("b", {"first": _invert_worker, "second": _invert_worker})
        assert pool.hosts["first"][0] is not dead and pool.hosts["first"][0].alive
        assert fresh.stages[0].work(_frame(2)).index == 2
        assert pool.load()["first"][0]["alive"]


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_calls_cost_needs_frames_before_it_counts_and_splits_received_from_delivered() -> None:
    account, default = CpuAccount(min_frames=30), CallCost(0.004, 0.05)
    assert account.cost(default) == default, "no sample yet"
    account.sample([], received=0, delivered=0, calls=1)
    _spin(0.05)
    account.sample([], received=20, delivered=10, calls=1)
    assert account.cost(default) == default, "too few frames: the default"
    account.sample([], received=200, delivered=100, calls=1)
    cost = account.cost(default)
    assert cost.per_received == 0.0 and 0.0004 < cost.per_delivered < 0.01, "stages in this process"
    account.sample([2**22 + 1], received=300, delivered=200, calls=1)  # a host whose CPU cannot be read
    assert account.cost(default) == default
    with subprocess.Popen([sys.executable, "-c", SPINNER]) as host:
        time.sleep(0.3)
        hosts = CpuAccount(min_frames=30)
        hosts.sample([host.pid], received=0, delivered=0, calls=2)
        _spin(0.2)
        time.sleep(1.0)
        hosts.sample([host.pid], received=120, delivered=60, calls=2)
        host.kill()
    cost = hosts.cost(default)
    assert 0.001 < cost.per_received < 0.004, "this process's CPU per frame received"
    assert cost.per_delivered > 0.01, "the host's CPU per frame delivered"
    assert 10 < cost.received_rate < 60, "per call and second"


SPINNER = "import time\nend = time.time() + 5\nwhile time.time() < end: pass"


def test_a_busy_process_is_foreign_load_unless_it_is_a_host_and_grows_with_the_calls() -> None:
    """A child spinning keeps about one core busy: foreign to an account that does not know its
    pid, the account's own to one that does; after an idle spell, measured beside 2 calls, it
    comes to half of that per call."""
    blind, knowing = CpuAccount(), CpuAccount()
    blind.sample([], 0, 0, calls=0)
    time.sleep(0.5)
    blind.sample([], 0, 0, calls=0)
    assert blind.foreign_cores(calls=3) < 0.3, "nothing else runs: no call has brought any"
    with subprocess.Popen([sys.executable, "-c", SPINNER]) as spinner:
        time.sleep(0.3)
        knowing.sample([spinner.pid], 0, 0, calls=2)
        time.sleep(1.5)
        blind.sample([], 100, 100, calls=2)
        knowing.sample([spinner.pid], 100, 100, calls=2)
        spinner.kill()
    assert blind.foreign_cores() > 0.5, "the spinner's core is foreign"
    assert knowing.foreign_cores() < 0.3, "the spinner is the account's own"
    assert blind.foreign_cores(calls=3) == pytest.approx(1.5 * blind.foreign_cores(), rel=0.2), "per call"


def test_an_uploaded_source_serves_one_call_and_expires() -> None:
    store = SourceStore(ttl_s=0.2, max_pending=2)
    first, second = object(), object()
    key = store.put(first, "a")
    assert len(key) >= 20 and store.take(key) is first
    with pytest.raises(UnknownSource, match="already in a call"):
        store.take(key)
    store.restore(key, first, "a")
    assert store.take(key) is first
    old, newer, newest = store.put(first, "a"), store.put(second, "b"), store.put(first, "c")
    assert len(store) == 2, "the oldest waiting upload goes first"
    with pytest.raises(UnknownSource):
        store.take(old)
    time.sleep(0.25)
    with pytest.raises(UnknownSource):
        store.take(newer)
    assert len(store) == 0 and newest not in (old, newer)


def test_one_client_cannot_push_out_another_clients_upload() -> None:
    store = SourceStore(max_pending=10, max_per_client=2)
    theirs = store.put(object(), "10.0.0.2")
    mine = [store.put(object(), "10.0.0.1") for _ in range(5)]
    with pytest.raises(UnknownSource):
        store.take(mine[0])
    assert len(store) == 3, "two of mine, and theirs"
    store.take(theirs)
    store.take(mine[-1])
