"""The shared worker pool: fair turns, sessions placed on the least-loaded host, its own state per
session; the admission model; the per-caller source store."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from jr2net.realtime import admission
from jr2net.realtime.admission import CallCost, CpuAccount, expected_fps, send_rate
from jr2net.realtime.fair_lock import FairLock
from jr2net.realtime.frames import StagedFrame
from jr2net.realtime.process_stage import StageProcessError
from jr2net.realtime.source_store import SourceStore, UnknownSource
from jr2net.realtime.threads import usable_cores
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


class _Closable:
    def __init__(self) -> None:
        self.closed = False

    def __call__(self, frame: StagedFrame) -> StagedFrame:
        return frame

    def close(self) -> None:
        self.closed = True


def test_a_closed_pool_opens_nothing_and_closes_what_it_was_building() -> None:
    """A call that hangs up as the server stops: the workers being built are closed, none after."""
    built: list[_Closable] = []

    def slow_worker(preloaded: object) -> _Closable:
        time.sleep(0.3)
        built.append(_Closable())
        return built[-1]

    factories = {"first": slow_worker, "second": slow_worker}
    pool = WorkerPool(["first", "second"], mode="thread", hosts=1)
    outcome: list[BaseException | object] = []

    def opening() -> None:
        try:
            outcome.append(pool.open("a", factories))
        except RuntimeError as error:
            outcome.append(error)

    thread = threading.Thread(target=opening)
    thread.start()
    time.sleep(0.1)  # the first worker is being built
    pool.close()
    thread.join()
    assert isinstance(outcome[0], RuntimeError) and "closed" in str(outcome[0])
    assert len(built) == 1 and built[0].closed, "the worker built as the pool closed is closed"
    with pytest.raises(RuntimeError, match="closed"):
        pool.open("b", factories)
    assert len(built) == 1, "nothing is built on a closed pool"


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


def test_callers_are_asked_to_send_a_little_faster_than_they_get_back() -> None:
    assert send_rate(10.0) == 12 and send_rate(7.6) == 10
    assert send_rate(29.0) == 30, "never more than a camera sends"
    assert send_rate(0.2) == 1, "never nothing"


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


class FakeMachine:
    """A ``/proc`` (the usable cores' busy time, stage hosts' CPU time) and clocks that a test sets."""

    def __init__(self, root: Path) -> None:
        self.root, self.at, self.server, self.busy, self.hosts = root, 0.0, 0.0, 0.0, {}

    def advance(self, seconds: float, server: float, others: float, hosts: dict[int, float]) -> None:
        """``seconds`` pass; the server uses ``server`` CPU seconds, each host its own, other
        programs ``others``."""
        self.at += seconds
        self.server += server
        for pid, used in hosts.items():
            self.hosts[pid] = self.hosts.get(pid, 0.0) + used
        self.busy += server + others + sum(hosts.values())
        tick = os.sysconf("SC_CLK_TCK")
        cores = usable_cores()
        lines = [f"cpu {round(self.busy * tick)} 0 0 0 0 0 0 0 0 0"]
        lines += [
            f"cpu{c} {round(self.busy * tick) if c == cores[0] else 0} 0 0 9 9 0 0 0 7 7" for c in cores
        ]
        (self.root / "stat").write_text("\n".join(lines) + "\n")
        for pid, used in self.hosts.items():
            (self.root / str(pid)).mkdir(exist_ok=True)
            (self.root / str(pid) / "stat").write_text(
                f"{pid} (host) S" + " 0" * 10 + f" {round(used * tick)} 0 0"
            )

    def monotonic(self) -> float:
        return self.at

    def process_time(self) -> float:
        return self.server


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeMachine:
    fake = FakeMachine(tmp_path)
    monkeypatch.setattr(admission, "PROC", tmp_path)
    monkeypatch.setattr(admission, "time", fake)
    return fake


def test_a_calls_cost_splits_frames_received_from_frames_delivered(machine: FakeMachine) -> None:
    """Two calls sending 30 fps, getting 12 back: the server process's CPU counts per frame
    received, the hosts' per frame delivered; before enough frames, or while a host cannot be read,
    the default."""
    account, default = CpuAccount(min_frames=30), CallCost(0.004, 0.05)
    assert account.cost(default) == default, "no sample yet"
    received = delivered = 0
    for second in range(4):
        machine.advance(1.0, server=0.36, others=0.0, hosts={7: 0.6, 8: 0.4})
        account.sample([7, 8], received, delivered, calls=2)
        received, delivered = received + 60, delivered + 24
        if second == 1:
            assert account.cost(default) == default, "24 frames delivered: too few"
    cost = account.cost(default)
    assert cost.per_received == pytest.approx(0.36 / 60, rel=0.02)
    assert cost.per_delivered == pytest.approx(1.0 / 24, rel=0.02)
    assert cost.received_rate == pytest.approx(30.0)
    machine.advance(1.0, server=0.36, others=0.0, hosts={7: 0.6, 8: 0.4})
    account.sample([7, 8, 2**22 + 1], received, delivered, calls=2)  # a pid that cannot exist
    assert account.cost(default) == default, "a host's CPU unread: no cost without it"


def test_in_thread_mode_all_of_the_servers_cpu_counts_per_frame_delivered(machine: FakeMachine) -> None:
    account = CpuAccount(min_frames=30)
    for frames in (0, 25, 50):
        machine.advance(1.0, server=1.0, others=0.0, hosts={})
        account.sample([], 2 * frames, frames, calls=1)
    cost = account.cost(CallCost(0.004, 0.05))
    assert cost.per_received == 0.0 and cost.per_delivered == pytest.approx(1.0 / 25, rel=0.02)


def test_other_programs_cores_an_idle_share_and_a_share_per_call(machine: FakeMachine) -> None:
    """0.2 cores busy with no call, 0.6 beside two calls: 0.2 a call more, so 0.8 with three; a
    host's own CPU is never counted as other work; a new host restarts the window."""
    account = CpuAccount()
    for _ in range(3):
        machine.advance(1.0, server=0.1, others=0.2, hosts={7: 0.5})
        account.sample([7], 0, 0, calls=0)
    assert account.foreign_cores() == pytest.approx(0.2, abs=0.02)
    assert account.foreign_cores(calls=3) == pytest.approx(0.2, abs=0.02), "no call yet: no share per call"
    for _ in range(12):  # the window holds ten samples: only calls now
        machine.advance(1.0, server=0.3, others=0.6, hosts={7: 0.9})
        account.sample([7], 0, 0, calls=2)
    assert account.foreign_cores() == pytest.approx(0.6, abs=0.02)
    assert account.foreign_cores(calls=3) == pytest.approx(0.8, abs=0.03)
    machine.advance(1.0, server=0.3, others=0.6, hosts={9: 2.0})  # a host replaced: its start-up
    account.sample([9], 0, 0, calls=2)
    assert account.foreign_cores() == 0.0, "one sample since the hosts changed"
    machine.advance(1.0, server=0.3, others=0.6, hosts={9: 0.9})
    account.sample([9], 0, 0, calls=2)
    assert account.foreign_cores() == pytest.approx(0.6, abs=0.02)


def test_the_idle_share_is_never_more_than_the_load_now(machine: FakeMachine) -> None:
    account = CpuAccount()
    for _ in range(3):
        machine.advance(1.0, server=0.1, others=1.0, hosts={})
        account.sample([], 0, 0, calls=0)
    for _ in range(12):  # the busy program stopped as the calls came
        machine.advance(1.0, server=0.5, others=0.1, hosts={})
        account.sample([], 0, 0, calls=1)
    assert account.foreign_cores(calls=2) == pytest.approx(0.1, abs=0.02), "not the stale idle 1.0 core"


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
