"""Health reports shared by every adapter, the API's ``/healthz`` and ``mixpeek status``."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Literal

from pydantic import BaseModel

HealthStatus = Literal["ok", "error"]


class ComponentHealth(BaseModel):
    """The health of one component: ``ok`` or ``error`` with a short detail."""

    status: HealthStatus
    detail: str = ""
    latency_ms: float | None = None

    @classmethod
    def ok(cls, detail: str = "") -> ComponentHealth:
        return cls(status="ok", detail=detail)

    @classmethod
    def error(cls, detail: str) -> ComponentHealth:
        return cls(status="error", detail=detail)


def timed_check(check: Callable[[], ComponentHealth]) -> ComponentHealth:
    """Run one check, turning any exception into an ``error`` report and timing it."""
    start = time.perf_counter()
    try:
        report = check()
    except Exception as exc:  # a health check reports failures, it never raises
        report = ComponentHealth.error(f"{type(exc).__name__}: {exc}")
    return report.model_copy(update={"latency_ms": round((time.perf_counter() - start) * 1e3, 1)})


def check_all(
    checks: Mapping[str, Callable[[], ComponentHealth]], *, timeout_s: float = 10.0
) -> dict[str, ComponentHealth]:
    """Run health checks concurrently; a check still running after ``timeout_s`` is an error."""
    pool = ThreadPoolExecutor(max_workers=max(len(checks), 1), thread_name_prefix="health")
    futures = {name: pool.submit(timed_check, check) for name, check in checks.items()}
    wait(futures.values(), timeout=timeout_s)
    # A hung check must not hold the caller: leave its thread behind rather than join it.
    pool.shutdown(wait=False, cancel_futures=True)
    reports = {}
    for name, future in futures.items():
        if future.done():
            reports[name] = future.result()
        else:
            reports[name] = ComponentHealth.error(f"health check timed out after {timeout_s}s")
    return reports
