"""The API's relay to realtime deployments: one place that calls Serve over HTTP."""

from __future__ import annotations

import time
from typing import Any

import httpx

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.observability import record_realtime

DEFAULT_TIMEOUT_S = 30.0


async def call_deployment(
    client: httpx.AsyncClient,
    serve_url: str,
    prefix: str,
    inputs: dict[str, Any],
    parameters: dict[str, Any],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> tuple[dict[str, Any], float]:
    """POST ``{inputs, parameters}`` to a deployment; returns its answer and the latency (ms).

    Raises:
        MixpeekError: ``realtime_error`` / ``component_unavailable`` when the deployment cannot
            answer; the handler's own 4xx / 5xx answers keep their status and ``detail``.
    """
    start = time.perf_counter()
    deployment = prefix.rsplit("/", 1)[-1]
    try:
        response = await client.post(
            f"{serve_url}{prefix}",
            json={"inputs": inputs, "parameters": parameters},
            timeout=timeout_s,
        )
    except httpx.TimeoutException:
        record_realtime(deployment, time.perf_counter() - start, ok=False)
        raise MixpeekError(
            ErrorCode.REALTIME_ERROR,
            f"The deployment at {prefix} did not answer within {timeout_s:.0f}s",
        ) from None
    except httpx.TransportError as exc:
        record_realtime(deployment, time.perf_counter() - start, ok=False)
        raise MixpeekError(
            ErrorCode.COMPONENT_UNAVAILABLE,
            f"Ray Serve is not reachable at {serve_url}: {exc}",
            component="serve",
        ) from None
    latency_ms = (time.perf_counter() - start) * 1e3
    record_realtime(deployment, latency_ms / 1e3, ok=response.status_code < 400)
    try:
        body = response.json()
    except ValueError:
        body = {"detail": response.text[:500]}
    if response.status_code == 404:
        raise MixpeekError(ErrorCode.NOT_DEPLOYED, f"No realtime deployment answers at {prefix}")
    if response.status_code >= 400:
        detail = (
            body.get("detail", f"HTTP {response.status_code}")
            if isinstance(body, dict)
            else str(body)
        )
        code = next(
            (c for c in ErrorCode if isinstance(body, dict) and c.value == body.get("code")),
            ErrorCode.REALTIME_ERROR,
        )
        raise UpstreamError(
            code, f"Realtime handler error: {detail}", upstream_status=response.status_code
        )
    if not isinstance(body, dict):
        raise MixpeekError(ErrorCode.REALTIME_ERROR, "Realtime handler answered a non-object")
    return body, latency_ms


class UpstreamError(MixpeekError):
    """A handler's error answer: keeps its status (a 400 for bad inputs stays a 400), while a
    crash (5xx) becomes a 502 from the API."""

    @property
    def http_status(self) -> int:
        status = int(self.fields["upstream_status"])
        return status if status < 500 else 502
