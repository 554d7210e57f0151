"""Batches started ahead of any run: one job per key, each beating while it is held."""

from __future__ import annotations

import threading
import time

from mixpeek_orchestration.platform.ingest_service import AheadJobs


def wait_until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_a_job_starts_once_per_key_and_is_forgotten_when_done() -> None:
    jobs, calls, gate = AheadJobs(lambda key: None), [], threading.Event()

    def work(batch_id: str) -> None:
        calls.append(batch_id)
        gate.wait(5)

    assert jobs.start("shared/ib_1", work, "ib_1")
    assert not jobs.start("shared/ib_1", work, "ib_1")  # an overlapping tick: still one job
    assert jobs.held() == ["shared/ib_1"]
    gate.set()
    wait_until(lambda: jobs.held() == [])
    assert calls == ["ib_1"]
    assert jobs.start("shared/ib_1", work, "ib_1")  # done: the key may start again (a retry)
    wait_until(lambda: jobs.held() == [])


def test_held_jobs_beat_queued_or_running_and_stop_when_done() -> None:
    beats: list[str] = []
    jobs, gate = AheadJobs(beats.append, beat_s=0.02), threading.Event()
    for key in ("shared/a", "shared/b", "shared/c"):  # two workers: c waits its turn
        jobs.start(key, gate.wait, 5)
    wait_until(lambda: {"shared/a", "shared/b", "shared/c"} <= set(beats))
    gate.set()
    wait_until(lambda: jobs.held() == [])
    beats.clear()
    time.sleep(0.1)
    assert beats == []


def test_a_failing_job_or_beat_does_not_stop_the_others() -> None:
    def beat(key: str) -> None:
        raise RuntimeError("metadata server away")

    jobs = AheadJobs(beat, beat_s=0.01)

    def fail() -> None:
        raise RuntimeError("actor died")

    jobs.start("shared/bad", fail)
    done = threading.Event()
    jobs.start("shared/good", done.set)
    assert done.wait(5)
    wait_until(lambda: jobs.held() == [])
