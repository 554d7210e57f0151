"""The FastAPI application factory.

Run with ``uvicorn mixpeek_orchestration.api.app:create_app --factory``; settings come from the
``MIXPEEK_*`` environment.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi

from mixpeek_orchestration import __version__
from mixpeek_orchestration.api.errors import install_error_handlers
from mixpeek_orchestration.api.routes import (
    buckets,
    collections,
    document_operations,
    documents,
    extractors,
    health,
    metrics,
    models,
    namespaces,
    organizations,
    plugins,
    realtime,
    retriever_executions,
    retrievers,
    storage,
    tasks,
)
from mixpeek_orchestration.api.routes.metrics import MetricsMiddleware
from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.retrieval.execute import RetrieverExecutor
from mixpeek_orchestration.serve.relay import Relay
from mixpeek_orchestration.settings import MixpeekSettings, load_settings

logger = logging.getLogger(__name__)


def create_app(settings: MixpeekSettings | None = None) -> FastAPI:
    """Build the API for ``settings`` (read from the environment when omitted)."""
    settings = settings or load_settings()
    logging.basicConfig(level=settings.log_level)
    platform = Platform(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            await run_in_threadpool(platform.ensure_indexes)
        except MixpeekError as exc:  # metadata not configured: /healthz says so
            logger.warning("metadata indexes not ensured: %s", exc.detail)
        except Exception as exc:
            logger.warning("metadata indexes not ensured (is the metadata server up?): %s", exc)
        app.state.relay = relay = Relay()

        executors: dict[str | None, tuple[Platform, RetrieverExecutor]] = {}

        def retrieval(plane: Platform) -> RetrieverExecutor:
            """One executor per data plane, calling that plane's Serve with its query cache."""
            held = executors.get(plane.tenant)
            if held is None or held[0] is not plane:  # a new plane (its config changed)
                serve_url = plane.settings.serve_url

                async def call(
                    prefix: str, inputs: dict[str, Any], parameters: dict[str, Any]
                ) -> dict[str, Any]:
                    answer, _ = await relay.call(serve_url, prefix, inputs, parameters)
                    return answer

                held = executors[plane.tenant] = (plane, plane.retrieval(call))
            return held[1]

        app.state.retrieval = retrieval
        yield
        await relay.close()
        platform.close()

    app = FastAPI(
        title="Mixpeek (self-hosted)",
        version=__version__,
        description="Custom feature-extraction plugins over multimodal data.",
        lifespan=lifespan,
    )
    app.state.platform = platform
    app.add_middleware(MetricsMiddleware)
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(storage.router)
    app.include_router(namespaces.router)
    app.include_router(organizations.router)
    app.include_router(models.router)
    app.include_router(models.namespace_router)
    app.include_router(plugins.router)
    app.include_router(realtime.router)
    app.include_router(buckets.router)
    app.include_router(document_operations.router)  # before /documents/{document_id}
    app.include_router(collections.router)
    app.include_router(documents.router)
    app.include_router(tasks.router)
    app.include_router(extractors.router)
    app.include_router(retriever_executions.router)  # before /{retriever_id}
    app.include_router(retrievers.router)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


ERROR_STATUSES = {
    "400": "Bad request",
    "403": "Not allowed (a signed URL that does not verify)",
    "401": "No or a wrong API key",
    "404": "Not found",
    "409": "Conflicts with the current state",
    "413": "Too large",
    "422": "Invalid request (the fields named in error.details)",
    "503": "A component of the stack is unavailable",
}
"""The errors any route may answer, all in the one error envelope (``ErrorResponse``)."""


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, with every error answer described as what it is: the hosted error
    envelope (FastAPI would describe a 422 as its own ``HTTPValidationError``)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    envelope = {"$ref": "#/components/schemas/ErrorResponse"}
    for operations in schema["paths"].values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses[status] = {
                    "description": responses.get(status, {}).get("description", description),
                    "content": {"application/json": {"schema": envelope}},
                }
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    _link_created_records(schema)
    app.openapi_schema = schema
    return schema


PATH_PARAM = re.compile(r"\{([^}]+)\}")


def _link_created_records(schema: dict[str, Any]) -> None:
    """OpenAPI links from each create (``POST /v1/buckets``) to the operations on what it made
    (``GET / PATCH / DELETE /v1/buckets/{bucket_id}``), each path parameter taken from the
    created record, else from the create's own path: clients and stateful fuzzing follow
    them to real records instead of guessing ids."""
    components = schema["components"]["schemas"]
    paths = schema["paths"]
    for path, operations in paths.items():
        create = operations.get("post")
        answer = ((create or {}).get("responses", {}).get("200") or {}).get("content", {})
        ref = answer.get("application/json", {}).get("schema", {}).get("$ref", "")
        fields = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
        if not fields:
            continue
        own = set(PATH_PARAM.findall(path))
        for target, target_operations in paths.items():
            rest = target[len(path) :]
            if not target.startswith(path + "/") or not PATH_PARAM.fullmatch(rest.strip("/")):
                continue
            params = PATH_PARAM.findall(target)
            if any(p not in fields and p not in own for p in params):
                continue
            for method, operation in target_operations.items():
                link = {
                    "operationId": operation["operationId"],
                    "parameters": {
                        p: f"$response.body#/{p}" if p in fields else f"$request.path.{p}"
                        for p in params
                    },
                }
                create["responses"]["200"].setdefault("links", {})[
                    f"{method}_{operation['operationId']}"
                ] = link
