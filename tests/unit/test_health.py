from __future__ import annotations

import time

from mixpeek_orchestration.health import ComponentHealth, check_all


def test_check_all_reports_errors_and_timeouts_without_raising() -> None:
    def boom() -> ComponentHealth:
        raise ConnectionError("refused")

    def slow() -> ComponentHealth:
        time.sleep(3)
        return ComponentHealth.ok()

    start = time.monotonic()
    reports = check_all({"good": ComponentHealth.ok, "bad": boom, "slow": slow}, timeout_s=0.5)
    assert time.monotonic() - start < 2
    assert reports["good"].status == "ok" and reports["good"].latency_ms is not None
    assert reports["bad"].status == "error" and "refused" in reports["bad"].detail
    assert reports["slow"].status == "error" and "timed out" in reports["slow"].detail
