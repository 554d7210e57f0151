"""Bounded-concurrency HTTP calls for ``ResourceType.API`` steps.

External APIs are called with many requests in flight rather than big batches. These helpers
send one JSON request per payload with at most ``max_concurrency`` in flight, retrying transient
failures, and return results in payload order (an exception object in place of a failed item,
so one bad row does not sink the batch). Network access still goes through the runtime guard:
only operator-allowed hosts can be reached.

Example:
    >>> results = post_json_many("https://api.example.com/v1/classify", [{"text": t} for t in texts],
    ...                          max_concurrency=8)
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

__all__ = ["apost_json_many", "post_json_many"]

_RETRYABLE = {429, 500, 502, 503, 504}


async def apost_json_many(
    url: str,
    payloads: Sequence[Mapping[str, Any]],
    *,
    max_concurrency: int = 8,
    timeout_s: float = 30.0,
    headers: Mapping[str, str] | None = None,
    retries: int = 2,
) -> list[Any]:
    """Async form of :func:`post_json_many`."""
    if max_concurrency < 1:
        raise ValueError(f"max_concurrency ({max_concurrency}) must be >= 1")
    from urllib.parse import urlparse

    from mixpeek_orchestration.errors import ErrorCode, MixpeekError
    from mixpeek_orchestration.sdk._context import context_or_none

    context = context_or_none()
    host = urlparse(url).hostname or ""
    if context is not None and not context.host.may_connect(host):
        # Say why up front: inside the HTTP stack the refusal would surface as a vague
        # "connection failed".
        refusal = MixpeekError(
            ErrorCode.BLOCKED_BY_GUARD,
            f"Blocked by the plugin runtime guard: network access to {host} is not allowed",
            action="network",
        )
        return [refusal for _ in payloads]
    semaphore = asyncio.Semaphore(max_concurrency)
    limits = httpx.Limits(
        max_connections=max_concurrency, max_keepalive_connections=max_concurrency
    )

    async with httpx.AsyncClient(
        timeout=timeout_s, headers=dict(headers or {}), limits=limits
    ) as client:

        async def one(payload: Mapping[str, Any]) -> Any:
            async with semaphore:
                for attempt in range(retries + 1):
                    try:
                        response = await client.post(url, json=dict(payload))
                        if response.status_code in _RETRYABLE and attempt < retries:
                            await asyncio.sleep(0.2 * 2**attempt)
                            continue
                        response.raise_for_status()
                        return response.json()
                    except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                        if attempt >= retries or isinstance(exc, httpx.HTTPStatusError):
                            return exc
                        await asyncio.sleep(0.2 * 2**attempt)
                return RuntimeError("unreachable")

        return list(await asyncio.gather(*(one(p) for p in payloads)))


def post_json_many(
    url: str,
    payloads: Sequence[Mapping[str, Any]],
    *,
    max_concurrency: int = 8,
    timeout_s: float = 30.0,
    headers: Mapping[str, str] | None = None,
    retries: int = 2,
) -> list[Any]:
    """POST one JSON body per payload, at most ``max_concurrency`` in flight.

    Args:
        url: the endpoint.
        payloads: one JSON object per request.
        max_concurrency: requests in flight at most.
        timeout_s: per-request timeout.
        headers: sent with every request (e.g. an ``Authorization`` from ``container.secrets``).
        retries: retries of transport errors and 429 / 5xx answers, with backoff.

    Returns:
        The decoded JSON answers in payload order; a failed item is the exception instead.
    """
    return asyncio.run(
        apost_json_many(
            url,
            payloads,
            max_concurrency=max_concurrency,
            timeout_s=timeout_s,
            headers=headers,
            retries=retries,
        )
    )
