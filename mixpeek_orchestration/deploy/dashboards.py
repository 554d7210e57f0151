"""Grafana dashboards over the platform's Prometheus series, one per operator question.

``deploy/grafana/*.json`` are generated from here (``python -m
mixpeek_orchestration.deploy.dashboards deploy/grafana``) and a test keeps them equal, so a
renamed series cannot leave a dashboard silently empty. Every panel filters by the ``$tenant``
variable (the organisation id label).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

T = '{tenant=~"$tenant"}'
TS = 'tenant=~"$tenant"'


def _panel(title: str, exprs: dict[str, str], unit: str, index: int) -> dict[str, Any]:
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": (index % 2) * 12, "y": (index // 2) * 8},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (legend, expr) in enumerate(exprs.items())
        ],
    }


def _dashboard(
    uid: str, title: str, panels: list[tuple[str, dict[str, str], str]]
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["mixpeek"],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "tenant",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(mixpeek_api_request_duration_seconds_count, tenant)",
                    "includeAll": True,
                    "multi": True,
                },
            ]
        },
        "panels": [_panel(t, e, u, i) for i, (t, e, u) in enumerate(panels)],
    }


def _quantiles(metric: str, by: str) -> dict[str, str]:
    return {
        f"p{q} {{{{{by}}}}}": f"histogram_quantile(0.{q}, sum by (le, {by}) (rate({metric}_bucket{T}[5m])))"
        for q in (50, 95, 99)
    }


def dashboards() -> dict[str, dict[str, Any]]:
    rate_all = f"sum by (tenant) (rate(mixpeek_api_request_duration_seconds_count{T}[5m]))"
    return {
        "queue-health.json": _dashboard("mixpeek-queue-health", "Mixpeek / Queue Health", [
            ("Batches waiting or running", {"{{tenant}}": f"mixpeek_ingest_queue_depth{T}"}, "short"),
            ("Oldest waiting batch", {"{{tenant}}": f"mixpeek_ingest_queue_oldest_age_seconds{T}"}, "s"),
        ]),
        "batch-status.json": _dashboard("mixpeek-batch-status", "Mixpeek / Batch Status", [
            ("Batches by status", {"{{status}}": f"sum by (status) (mixpeek_ingest_batches{T})"}, "short"),
            ("Rows per second", {"{{outcome}}": f"sum by (outcome) (rate(mixpeek_ingest_rows_total{T}[5m]))"}, "short"),
            ("Failed rows (share)", {"failed": f'sum(rate(mixpeek_ingest_rows_total{{{TS},outcome="failed"}}[15m])) / sum(rate(mixpeek_ingest_rows_total{T}[15m]))'}, "percentunit"),
        ]),
        "api-latency.json": _dashboard("mixpeek-api-latency", "Mixpeek / API Latency", [
            ("API latency by route", _quantiles("mixpeek_api_request_duration_seconds", "route"), "s"),
            ("Realtime latency by deployment", _quantiles("mixpeek_realtime_request_duration_seconds", "deployment"), "s"),
            ("Requests per second", {"{{tenant}}": rate_all}, "reqps"),
        ]),
        "cost-usage.json": _dashboard("mixpeek-cost-usage", "Mixpeek / Cost & Usage", [
            ("API requests (24 h)", {"{{tenant}}": f"sum by (tenant) (increase(mixpeek_api_request_duration_seconds_count{T}[24h]))"}, "short"),
            ("Rows ingested (24 h)", {"{{tenant}}": f"sum by (tenant) (increase(mixpeek_ingest_rows_total{T}[24h]))"}, "short"),
            ("Realtime calls (24 h)", {"{{deployment}}": f"sum by (deployment) (increase(mixpeek_realtime_request_duration_seconds_count{T}[24h]))"}, "short"),
            ("Realtime compute seconds (24 h)", {"{{deployment}}": f"sum by (deployment) (increase(mixpeek_realtime_request_duration_seconds_sum{T}[24h]))"}, "s"),
            ("LLM cost, USD (24 h)", {"{{namespace}} {{plugin}} {{model}}": f"sum by (namespace, plugin, model) (increase(mixpeek_llm_cost_usd_total{T}[24h]))"}, "currencyUSD"),
            ("LLM tokens (24 h)", {"{{model}} {{direction}}": f"sum by (model, direction) (increase(mixpeek_llm_tokens_total{T}[24h]))"}, "short"),
            ("LLM errors (24 h)", {"{{plugin}}": f'sum by (plugin) (increase(mixpeek_llm_calls_total{{{TS},outcome="error"}}[24h]))'}, "short"),
        ]),
        "error-rate.json": _dashboard("mixpeek-error-rate", "Mixpeek / Error Rate", [
            ("5xx share", {"{{tenant}}": f'sum by (tenant) (rate(mixpeek_api_errors_total{{{TS},status_class="5xx"}}[5m])) / {rate_all}'}, "percentunit"),
            ("Errors per second by route", {"{{route}} {{status_class}}": f"sum by (route, status_class) (rate(mixpeek_api_errors_total{T}[5m]))"}, "reqps"),
            ("Realtime errors per second", {"{{deployment}}": f'sum by (deployment) (rate(mixpeek_realtime_request_duration_seconds_count{{{TS},outcome="error"}}[5m]))'}, "reqps"),
        ]),
    }  # fmt: skip


def write(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, board in dashboards().items():
        path = out / name
        path.write_text(json.dumps(board, indent=2, sort_keys=True) + "\n")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write(Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/grafana")):
        print(written)
