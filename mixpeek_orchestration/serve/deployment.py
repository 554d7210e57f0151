"""The Ray Serve deployment hosting one plugin version's realtime handler.

A replica loads its version from the stored archive, verified and guarded
(:func:`~mixpeek_orchestration.plugins.fetch.open_stored_plugin`). Requests
(``{"inputs": {...}, "parameters": {...}}``) are answered by the handler; when it accepts lists
(``predict_batch``), concurrent requests are batched with ``@serve.batch``.

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
        self.runtime = open_stored_plugin(spec)
        adapter = self.runtime.realtime()
        if adapter is None:
            raise MixpeekError(
                ErrorCode.INVALID_PLUGIN, f"{self.plugin_id} has no realtime.py handler"
            )
        self.adapter = adapter
        logger.info(
            "%s ready in %.2fs (batching: %s)",
            self.plugin_id,
            time.perf_counter() - start,
            adapter.batch_capable,
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
        if self.adapter.batch_capable and not parameters:
            result = await self._batched(inputs)
            if isinstance(result, Exception):
                raise result
            return result  # type: ignore[no-any-return]
        return await self.adapter(inputs, parameters)

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_S)
    async def _batched(self, inputs: list[dict[str, Any]]) -> list[Any]:
        try:
            return list(await self.adapter.call_batch(inputs))
        except Exception as exc:  # one failure answers every request of the batch with it
            return [exc for _ in inputs]

    def check_health(self) -> None:
        if self.adapter is None:
            raise RuntimeError("no realtime handler")


def build_application(spec: dict[str, Any], *, options: dict[str, Any]) -> Any:
    """The Serve application of one plugin version, with its resources and autoscaling."""
    return PluginDeployment.options(**options).bind(spec)


def app_builder(args: dict[str, str]) -> Any:
    """Serve config entry point for rendered manifests (``import_path:
    mixpeek_orchestration.serve.deployment:app_builder``, ``args: {extractor: NAME}``).

    Resolves the extractor's active version in this data plane (``MIXPEEK_*`` settings of the
    Ray containers; ``args["namespace_id"]`` narrows it to one namespace) and builds its
    application; the config's ``deployments`` entry then sets replicas and resources.
    """
    from mixpeek_orchestration.platform import Platform
    from mixpeek_orchestration.plugins.fetch import plugin_spec
    from mixpeek_orchestration.serve.deployer import serve_options
    from mixpeek_orchestration.settings import load_settings

    platform = Platform(load_settings())
    query: dict[str, Any] = {"name": args["extractor"]}
    if args.get("namespace_id"):
        query["namespace_id"] = args["namespace_id"]
    plugin = platform.registry.plugins.find_one(query, sort=[("updated_at", -1)])
    if plugin is None:
        raise LookupError(f"no plugin named {args['extractor']!r} in this data plane")
    version = platform.registry.versions.find_one(
        {"namespace_id": plugin["namespace_id"], "plugin_id": plugin["active_plugin_id"]}
    )
    if version is None:
        raise LookupError(f"{plugin['active_plugin_id']} has no stored version")
    spec = plugin_spec(version, platform.objects)
    return build_application(spec, options=serve_options(version.get("manifest", {}), "plugin"))
