"""The API's relay to realtime deployments: one place that calls Serve over HTTP.

One :class:`Relay` per API process keeps a pool of connections to Serve's proxies (aiohttp: a
loopback round trip to a small ASGI app took 0.24 ms against httpx's 0.71 ms here). A handler's
answer comes back as the bytes Serve sent: the API passes them on without decoding and encoding
a vector of floats again (:func:`wrapped` puts such an answer under a key, beside the API's
own fields).
"""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.observability import record_realtime

DEFAULT_TIMEOUT_S = 30.0  # also what a call waits for a deployment to scale up from zero
JSON = {"content-type": "application/json"}


class Relay:
    def __init__(self, *, connections: int = 256) -> None:
        self.connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:  # made in the serving event loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.connections, keepalive_timeout=30)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def raw(
        self,
        serve_url: str,
        prefix: str,
        inputs: dict[str, Any],
        parameters: dict[str, Any],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> tuple[bytes, float]:
        """POST ``{inputs, parameters}`` to a deployment; its answer (a JSON object, as sent)
        and the latency (ms).

        Raises:
            MixpeekError: ``realtime_error`` / ``component_unavailable`` when the deployment
                cannot answer; the handler's own 4xx / 5xx answers keep their status and
                ``detail``.
        """
        start = time.perf_counter()
        deployment = prefix.rsplit("/", 1)[-1]
        body = json.dumps({"inputs": inputs, "parameters": parameters})
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            for attempt in (1, 2):
                try:
                    async with self._client().post(
                        f"{serve_url}{prefix}", data=body, headers=JSON, timeout=timeout
                    ) as response:
                        status, content = response.status, await response.read()
                    break
                except aiohttp.ServerDisconnectedError:
                    if attempt == 2:  # a pooled connection the proxy had closed: once more
                        raise
        except TimeoutError:
            record_realtime(deployment, time.perf_counter() - start, ok=False)
            raise MixpeekError(
                ErrorCode.COMPONENT_UNAVAILABLE,
                f"No replica of the deployment at {prefix} answered within {timeout_s:.0f}s: "
                "it is starting from zero replicas (a cold start takes seconds) or every "
                "replica is busy; retry, or raise min_replicas / max_replicas",
                component="deployment",
            ) from None
        except aiohttp.ClientError as exc:
            record_realtime(deployment, time.perf_counter() - start, ok=False)
            raise MixpeekError(
                ErrorCode.COMPONENT_UNAVAILABLE,
                f"Ray Serve is not reachable at {serve_url}: {exc}",
                component="serve",
            ) from None
        latency_ms = (time.perf_counter() - start) * 1e3
        record_realtime(deployment, latency_ms / 1e3, ok=status < 400)
        if status >= 400:
            raise _error(prefix, status, content)
        if not content.lstrip().startswith(b"{"):
            raise MixpeekError(ErrorCode.REALTIME_ERROR, "Realtime handler answered a non-object")
        return content, latency_ms

    async def call(
        self,
        serve_url: str,
        prefix: str,
        inputs: dict[str, Any],
        parameters: dict[str, Any],
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> tuple[dict[str, Any], float]:
        """:meth:`raw`, decoded."""
        content, latency_ms = await self.raw(
            serve_url, prefix, inputs, parameters, timeout_s=timeout_s
        )
        try:
            answer = json.loads(content)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise MixpeekError(ErrorCode.REALTIME_ERROR, "Realtime handler answered a non-object")
        return answer, latency_ms


def wrapped(content: bytes, key: str, fields: dict[str, Any]) -> bytes:
    """A JSON object holding ``content`` (JSON bytes, untouched) under ``key``, and
    ``fields`` beside it: ``{"<key>": <content>, ...fields}``."""
    extra = json.dumps(fields)[1:-1].encode()
    return (
        b'{"' + key.encode() + b'": ' + content.strip() + (b", " + extra if extra else b"") + b"}"
    )


def _error(prefix: str, status: int, content: bytes) -> MixpeekError:
    try:
        body = json.loads(content)
    except ValueError:
        body = {"detail": content[:500].decode(errors="replace")}
    if status == 404 and not (isinstance(body, dict) and "code" in body):
        # Serve's own 404 (no application at the route), not a handler's answer
        return MixpeekError(ErrorCode.NOT_DEPLOYED, f"No realtime deployment answers at {prefix}")
    detail = body.get("detail", f"HTTP {status}") if isinstance(body, dict) else str(body)
    code = next(
        (c for c in ErrorCode if isinstance(body, dict) and c.value == body.get("code")),
        ErrorCode.REALTIME_ERROR,
    )
    return UpstreamError(code, f"Realtime handler error: {detail}", upstream_status=status)


class UpstreamError(MixpeekError):
    """A handler's error answer: keeps its status (a 400 for bad inputs stays a 400), while a
    crash (5xx) becomes a 502 from the API."""

    @property
    def http_status(self) -> int:
        status = int(self.fields["upstream_status"])
        return status if status < 500 else 502
