"""Prometheus metrics, labelled by tenant (the organisation id behind the API key).

* API: ``mixpeek_api_request_duration_seconds`` (histogram by tenant, method, route template,
  status; p50 / p95 / p99 and request rates derive from it) and ``mixpeek_api_errors_total``
  (by tenant, route, status class);
* realtime: ``mixpeek_realtime_request_duration_seconds`` (histogram by tenant and Serve
  application), recorded by the relay for every call (``/realtime``, retriever queries, rerank);
* ingestion, read from the metadata store at scrape time (so every API replica reports the
  same, and a restart loses nothing): ``mixpeek_ingest_queue_depth`` and
  ``mixpeek_ingest_queue_oldest_age_seconds`` (batches planned or running),
  ``mixpeek_ingest_batches`` (by status) and ``mixpeek_ingest_rows_total`` (ok / failed).

Ray and Serve export their own series (``ray_serve_*``, ``ray_node_*``) from Ray's metrics
endpoint; the dashboards in ``deploy/grafana`` use both.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from mixpeek_orchestration.storage.metadata import MetadataStore

logger = logging.getLogger(__name__)
ANONYMOUS = "anonymous"
TENANT: ContextVar[str] = ContextVar("mixpeek_tenant", default=ANONYMOUS)
"""The tenant of the request being served (set once its API key is resolved)."""

REGISTRY = CollectorRegistry(auto_describe=True)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
API_LATENCY = Histogram(
    "mixpeek_api_request_duration_seconds",
    "API request latency",
    ["tenant", "method", "route", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
API_ERRORS = Counter(
    "mixpeek_api_errors",
    "API answers with a 4xx or 5xx status",
    ["tenant", "route", "status_class"],
    registry=REGISTRY,
)
REALTIME_LATENCY = Histogram(
    "mixpeek_realtime_request_duration_seconds",
    "Realtime deployment calls through the relay, by Serve application",
    ["tenant", "deployment", "outcome"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
SERIES = (
    "mixpeek_api_request_duration_seconds",
    "mixpeek_api_errors_total",
    "mixpeek_realtime_request_duration_seconds",
    "mixpeek_ingest_queue_depth",
    "mixpeek_ingest_queue_oldest_age_seconds",
    "mixpeek_ingest_batches",
    "mixpeek_ingest_rows_total",
)


def record_api(tenant: str, method: str, route: str, status: int, seconds: float) -> None:
    API_LATENCY.labels(tenant, method, route, str(status)).observe(seconds)
    if status >= 400:
        API_ERRORS.labels(tenant, route, f"{status // 100}xx").inc()


def record_realtime(deployment: str, seconds: float, *, ok: bool) -> None:
    REALTIME_LATENCY.labels(TENANT.get(), deployment, "ok" if ok else "error").observe(seconds)


def ingest_summary(metadata: MetadataStore) -> dict[str, dict[str, Any]]:
    """Per tenant: batches by status, queue depth and oldest waiting age, rows ok / failed
    (one aggregation over ``ingest_batches``; ``mixpeek status`` prints the same)."""
    groups = metadata.collection("ingest_batches").aggregate(
        [
            {
                "$group": {
                    "_id": {"tenant": "$org_id", "status": "$status"},
                    "n": {"$sum": 1},
                    "oldest": {"$min": "$created_at"},
                    "ok": {"$sum": "$stats.completed"},
                    "failed": {"$sum": "$stats.failed"},
                }
            }
        ]
    )
    now = time.time()
    summary: dict[str, dict[str, Any]] = {}
    for group in groups:
        tenant = group["_id"].get("tenant") or ANONYMOUS
        status = str(group["_id"].get("status"))
        entry = summary.setdefault(
            tenant,
            {"batches": {}, "queue_depth": 0, "oldest_age_s": 0.0, "rows_ok": 0, "rows_failed": 0},
        )
        entry["batches"][status] = group["n"]
        entry["rows_ok"] += int(group.get("ok") or 0)
        entry["rows_failed"] += int(group.get("failed") or 0)
        if status in ("planned", "running"):
            entry["queue_depth"] += group["n"]
            age = now - _epoch(group.get("oldest"), default=now)
            entry["oldest_age_s"] = round(max(entry["oldest_age_s"], age), 1)
    return summary


def ingest_summaries(planes: Sequence[MetadataStore]) -> dict[str, dict[str, Any]]:
    """:func:`ingest_summary` of every data plane's store, merged; a store that does not answer
    is logged and left out (a scrape or a status never fails on one)."""
    summary: dict[str, dict[str, Any]] = {}
    for metadata in planes:  # organisations never span planes: no key is summed twice
        try:
            summary |= ingest_summary(metadata)
        except Exception as exc:
            logger.warning("ingestion metrics of %s unavailable: %s", metadata.database_name, exc)
    return summary


class IngestCollector(Collector):
    """Ingestion queue and batch outcomes per tenant, from ``ingest_batches`` of every data
    plane at scrape time."""

    def __init__(self, planes: Sequence[MetadataStore]) -> None:
        self.planes = planes

    def collect(self) -> Iterator[Any]:
        depth = GaugeMetricFamily(
            "mixpeek_ingest_queue_depth", "Ingestion batches waiting or running", labels=["tenant"]
        )
        age = GaugeMetricFamily(
            "mixpeek_ingest_queue_oldest_age_seconds",
            "Age of the oldest batch waiting or running",
            labels=["tenant"],
        )
        batches = GaugeMetricFamily(
            "mixpeek_ingest_batches", "Ingestion batches by status", labels=["tenant", "status"]
        )
        rows = CounterMetricFamily(
            "mixpeek_ingest_rows", "Rows processed by ingestion", labels=["tenant", "outcome"]
        )
        summary = ingest_summaries(self.planes)
        for tenant, entry in summary.items():
            for status, count in entry["batches"].items():
                batches.add_metric([tenant, status], count)
            rows.add_metric([tenant, "ok"], entry["rows_ok"])
            rows.add_metric([tenant, "failed"], entry["rows_failed"])
            depth.add_metric([tenant], entry["queue_depth"])
            age.add_metric([tenant], entry["oldest_age_s"])
        yield from (depth, age, batches, rows)


def _epoch(value: Any, *, default: float) -> float:
    from datetime import UTC, datetime

    if not isinstance(value, datetime):
        return default
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def metrics_text(planes: Sequence[MetadataStore] = ()) -> bytes:
    """The exposition text of every series (ingestion ones from the planes' metadata stores)."""
    from prometheus_client import generate_latest

    registry = REGISTRY
    if planes:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_Delegate(REGISTRY))
        registry.register(IngestCollector(planes))
    return generate_latest(registry)


class _Delegate(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()
