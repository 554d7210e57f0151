"""Jobs started ahead of their runs: one per key, collected once, forgotten when unclaimed."""

from __future__ import annotations

import threading

import pytest

from mixpeek_orchestration.platform import ingest_service
from mixpeek_orchestration.platform.ingest_service import AheadJobs


def test_a_job_starts_once_per_key_and_its_run_collects_its_answer() -> None:
    jobs, calls, gate = AheadJobs(), [], threading.Event()

    def work(batch_id: str) -> dict[str, str]:
        calls.append(batch_id)
        gate.wait(5)
        return {"batch_id": batch_id}

    jobs.start("ib_1#0", work, "ib_1")
    jobs.start("ib_1#0", work, "ib_1")  # the same tick, retried: still one job
    gate.set()
    job = jobs.take("ib_1#0")
    assert job is not None and job.result(5) == {"batch_id": "ib_1"}
    assert calls == ["ib_1"]
    assert jobs.take("ib_1#0") is None  # collected once; a second run processes by itself
    assert jobs.take(None) is None and jobs.take("ib_2#0") is None


def test_a_failed_job_hands_its_error_to_the_run() -> None:
    jobs = AheadJobs()

    def work() -> dict[str, str]:
        raise RuntimeError("actor died")

    jobs.start("ib_1#0", work)
    job = jobs.take("ib_1#0")
    assert job is not None
    with pytest.raises(RuntimeError, match="actor died"):
        job.result(5)


def test_jobs_whose_run_never_came_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = AheadJobs()
    jobs.start("old#0", dict)
    jobs.jobs["old#0"][1].result(5)
    monkeypatch.setattr(ingest_service, "UNCLAIMED_TTL_S", -1.0)
    jobs.start("new#0", dict)
    assert set(jobs.jobs) == {"new#0"}
