"""Prometheus metrics (``GET /metrics``) and the middleware timing every request."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST

from mixpeek_orchestration.api.deps import ControlDep
from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.observability import ANONYMOUS, metrics_text, record_api

router = APIRouter(tags=["observability"])
logger = logging.getLogger(__name__)


@router.get("/metrics", include_in_schema=False)
async def metrics(control: ControlDep) -> Response:
    """Every series, labelled by tenant, in the Prometheus text format (ingestion series from
    the shared plane and every dedicated one)."""

    def render() -> bytes:
        try:
            every = list(control.planes.all())
        except MixpeekError:  # no metadata store configured: the request series only
            every = []
        except Exception as exc:  # control plane unreachable: a scrape still answers
            logger.warning("tenant planes unavailable for /metrics: %s", exc)
            every = []
        return metrics_text(
            [plane.planner.summary for plane in every], [plane.llm_usage.summary for plane in every]
        )

    body = await run_in_threadpool(render)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """(ASGI) Times each HTTP request and counts error answers, by tenant and route template
    (``/v1/collections/{collection_id}``, never the ids themselves)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            tenant = scope.get("state", {}).get("tenant", ANONYMOUS)
            record_api(tenant, scope["method"], route, status, time.perf_counter() - start)
