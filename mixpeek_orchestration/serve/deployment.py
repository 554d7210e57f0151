"""The Ray Serve deployment hosting one plugin version's realtime handler.

A replica fetches its version's stored archive (verified, through the archive gate) and runs the
handler in a sandboxed plugin host it supervises
(:func:`~mixpeek_orchestration.plugins.fetch.open_stored_plugin`): the replica itself runs no
plugin code. Requests (``{"inputs": {...}, "parameters": {...}}``) go over the host's channel,
several at once; when the handler accepts lists (``predict_batch``), concurrent requests are
batched with ``@serve.batch``. A host that crashes fails the requests it held and is replaced.

This module imports Ray Serve; only the deployer and replicas import it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from mixpeek_orchestration.errors import ErrorCode, MixpeekError

logger = logging.getLogger("mixpeek.serve")
MAX_BATCH_SIZE = 32
BATCH_WAIT_S = 0.004


def _error(exc: BaseException) -> JSONResponse:
    if isinstance(exc, MixpeekError):
        body = exc.to_response()
        status = exc.http_status if exc.code is not ErrorCode.INVALID_REQUEST else 400
    else:
        body = {
            "detail": f"handler raised {type(exc).__name__}: {exc}",
            "code": "plugin_runtime_error",
        }
        status = 500
    return JSONResponse(body, status_code=status)


@serve.deployment(name="plugin", health_check_period_s=10, health_check_timeout_s=30)
class PluginDeployment:
    """One plugin version's realtime handler, loaded from its archive."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from mixpeek_orchestration.plugins.fetch import open_stored_plugin

        start = time.perf_counter()
        self.plugin_id = spec["plugin_id"]
        self.session = open_stored_plugin(spec)
        self.batch_capable = self.session.realtime()
        logger.info(
            "%s ready in %.2fs in a %s plugin host (batching: %s)",
            self.plugin_id,
            time.perf_counter() - start,
            self.session.backend,
            self.batch_capable,
        )

    async def __call__(self, request: Request) -> JSONResponse:
        """HTTP entry (the Serve proxy): ``{"inputs": {...}, "parameters": {...}}``."""
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse(
                {"detail": "body must be JSON {inputs, parameters}", "code": "invalid_request"},
                status_code=400,
            )
        if not isinstance(body, dict):
            return JSONResponse(
                {
                    "detail": "body must be an object {inputs, parameters}",
                    "code": "invalid_request",
                },
                status_code=400,
            )
        try:
            return JSONResponse(await self.infer(body.get("inputs"), body.get("parameters")))
        except Exception as exc:
            return _error(exc)

    async def infer(
        self, inputs: dict[str, Any] | None, parameters: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Answer one request; the entry for in-cluster callers holding a DeploymentHandle.

        Raises the handler's error (a :class:`MixpeekError` for bad input).
        """
        if not isinstance(inputs or {}, dict) or not isinstance(parameters or {}, dict):
            raise MixpeekError(ErrorCode.INVALID_REQUEST, "inputs and parameters must be objects")
        inputs, parameters = inputs or {}, parameters or {}
        if self.batch_capable and not parameters:
            result = await self._batched(inputs)
            if isinstance(result, Exception):
                raise result
            return result  # type: ignore[no-any-return]
        return await self.session.infer(inputs, parameters)

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _batched(self, inputs: list[dict[str, Any]]) -> list[Any]:
        try:
            return list(await self.session.infer_batch(inputs))
        except Exception as exc:  # one failure answers every request of the batch with it
            return [exc for _ in inputs]

    def check_health(self) -> None:
        """Healthy while the plugin host can be (re)started: a host that died is replaced on
        the next request, so only a replica that cannot start one again is unhealthy."""
        self.session.host.ensure_started()

    def __del__(self) -> None:
        session = getattr(self, "session", None)
        if session is not None:
            session.close()


def build_application(spec: dict[str, Any], *, options: dict[str, Any]) -> Any:
    """The Serve application of one plugin version, with its resources and autoscaling."""
    return PluginDeployment.options(**options).bind(spec)  # type: ignore[attr-defined]
