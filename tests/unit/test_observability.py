"""Request metrics and dashboards, without servers."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from mixpeek_orchestration.api.app import create_app
from mixpeek_orchestration.deploy.dashboards import dashboards
from mixpeek_orchestration.observability import SERIES
from mixpeek_orchestration.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def sample(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` with these labels (0 when there are none)."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items())
    )


def test_requests_are_timed_by_route_template_and_errors_counted(tmp_path: Path) -> None:
    app = create_app(load_settings(data_dir=tmp_path))
    route = "/v1/collections/{collection_id}/documents/count"
    count = "mixpeek_api_request_duration_seconds_count"
    with TestClient(app) as client:
        before = client.get("/metrics").text
        for _ in range(2):
            client.get("/v1/collections/col_123/documents/count")
        client.get("/no/such/route")
        after = client.get("/metrics").text
    # no usable key: the requests never reached a tenant; the route label holds no id
    assert (
        sample(after, count, route=route, tenant="anonymous")
        - sample(before, count, route=route, tenant="anonymous")
        == 2
    )
    assert "col_123" not in after
    errors = "mixpeek_api_errors_total"
    assert (
        sample(after, errors, route="unmatched", status_class="4xx")
        - sample(before, errors, route="unmatched", status_class="4xx")
        == 1
    )
    assert sample(after, "mixpeek_api_request_duration_seconds_bucket", route=route, le="+Inf")


def test_dashboards_are_generated_and_only_use_series_the_platform_exports() -> None:
    boards = dashboards()
    assert sorted(boards) == sorted(p.name for p in (REPO / "deploy" / "grafana").glob("*.json"))
    names = {"Mixpeek / Queue Health", "Mixpeek / Batch Status", "Mixpeek / API Latency",
             "Mixpeek / Cost & Usage", "Mixpeek / Error Rate"}  # fmt: skip
    assert {b["title"] for b in boards.values()} == names
    for name, board in boards.items():
        committed = json.loads((REPO / "deploy" / "grafana" / name).read_text())
        assert committed == json.loads(json.dumps(board)), f"regenerate deploy/grafana/{name}"
        for panel in board["panels"]:
            for target in panel["targets"]:
                used = set(
                    re.findall(
                        r"\b(mixpeek_[a-z_]+?)(?:_bucket|_count|_sum)?\b[{\[]", target["expr"]
                    )
                )
                assert used and used <= set(SERIES), (panel["title"], used)
                assert "$tenant" in target["expr"]
