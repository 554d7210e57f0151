"""Prometheus metrics, labelled by tenant (the organisation id behind the API key).

* API: ``mixpeek_api_request_duration_seconds`` (histogram by tenant, method, route template,
  status; p50 / p95 / p99 and request rates derive from it) and ``mixpeek_api_errors_total``
  (by tenant, route, status class);
* realtime: ``mixpeek_realtime_request_duration_seconds`` (histogram by tenant and Serve
  application), recorded by the relay for every call (``/realtime``, retriever queries, rerank);
* ingestion, read from the metadata store at scrape time (so every API replica reports the
  same, and a restart loses nothing): ``mixpeek_ingest_queue_depth`` and
  ``mixpeek_ingest_queue_oldest_age_seconds`` (batches planned or running, from each data
  plane's ingestion planner),
  ``mixpeek_ingest_batches`` (by status) and ``mixpeek_ingest_rows_total`` (ok / failed);
* LLM calls (``sdk.llm``), from each plane's usage records at scrape time:
  ``mixpeek_llm_calls_total`` (by outcome), ``mixpeek_llm_tokens_total`` (input / output),
  ``mixpeek_llm_cost_usd_total`` and ``mixpeek_llm_latency_seconds_total``, by tenant,
  namespace, plugin, provider and model.

Ray and Serve export their own series (``ray_serve_*``, ``ray_node_*``) from Ray's metrics
endpoint; the dashboards in ``deploy/grafana`` use both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

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
    "mixpeek_llm_calls_total",
    "mixpeek_llm_tokens_total",
    "mixpeek_llm_cost_usd_total",
    "mixpeek_llm_latency_seconds_total",
)


def record_api(tenant: str, method: str, route: str, status: int, seconds: float) -> None:
    API_LATENCY.labels(tenant, method, route, str(status)).observe(seconds)
    if status >= 400:
        API_ERRORS.labels(tenant, route, f"{status // 100}xx").inc()


def record_realtime(deployment: str, seconds: float, *, ok: bool) -> None:
    REALTIME_LATENCY.labels(TENANT.get(), deployment, "ok" if ok else "error").observe(seconds)


Summary = dict[str, dict[str, Any]]
"""Per tenant: ``batches`` by status, ``queue_depth``, ``oldest_age_s``, ``rows_ok``,
``rows_failed`` (what each data plane's ingestion planner reports)."""


def ingest_summaries(planes: Sequence[Callable[[], Summary]]) -> Summary:
    """Every data plane's ingestion summary, merged; a plane that does not answer is logged
    and left out (a scrape or a status never fails on one)."""
    summary: Summary = {}
    for read in planes:  # organisations never span planes: no key is summed twice
        try:
            summary |= read()
        except Exception as exc:
            logger.warning("ingestion metrics of a data plane unavailable: %s", exc)
    return summary


class IngestCollector(Collector):
    """Ingestion queue and batch outcomes per tenant, from ``ingest_batches`` of every data
    plane at scrape time."""

    def __init__(self, planes: Sequence[Callable[[], Summary]]) -> None:
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


class LLMCollector(Collector):
    """LLM calls per tenant, namespace, plugin, provider and model, from every data plane's
    ``llm_usage`` at scrape time."""

    def __init__(self, planes: Sequence[Callable[[], list[dict[str, Any]]]]) -> None:
        self.planes = planes

    def collect(self) -> Iterator[Any]:
        labels = ["tenant", "namespace", "plugin", "provider", "model"]
        calls = CounterMetricFamily(
            "mixpeek_llm_calls", "LLM calls made through sdk.llm", labels=[*labels, "outcome"]
        )
        tokens = CounterMetricFamily(
            "mixpeek_llm_tokens", "LLM tokens, by direction", labels=[*labels, "direction"]
        )
        cost = CounterMetricFamily("mixpeek_llm_cost_usd", "LLM cost in USD", labels=labels)
        latency = CounterMetricFamily(
            "mixpeek_llm_latency_seconds", "Time spent in LLM calls", labels=labels
        )
        for read in self.planes:
            try:
                rows = read()
            except Exception as exc:
                logger.warning("LLM usage of a data plane unavailable: %s", exc)
                continue
            for row in rows:
                key = [str(row.get(k) or "") for k in
                       ("org_id", "namespace_id", "plugin_id", "provider", "model")]  # fmt: skip
                calls.add_metric([*key, "ok"], row["calls"] - row["errors"])
                calls.add_metric([*key, "error"], row["errors"])
                tokens.add_metric([*key, "input"], row["input_tokens"])
                tokens.add_metric([*key, "output"], row["output_tokens"])
                cost.add_metric(key, row["cost_usd"])
                latency.add_metric(key, row["latency_ms_total"] / 1000)
        yield from (calls, tokens, cost, latency)


def metrics_text(
    planes: Sequence[Callable[[], Summary]] = (),
    llm: Sequence[Callable[[], list[dict[str, Any]]]] = (),
) -> bytes:
    """The exposition text of every series (ingestion and LLM ones from each plane)."""
    from prometheus_client import generate_latest

    registry = REGISTRY
    if planes or llm:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(_Delegate(REGISTRY))
        registry.register(IngestCollector(planes))
        registry.register(LLMCollector(llm))
    return generate_latest(registry)


class _Delegate(Collector):
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Any]:
        yield from self.registry.collect()
