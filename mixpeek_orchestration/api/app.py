"""The FastAPI application factory.

Run with ``uvicorn mixpeek_orchestration.api.app:create_app --factory``; settings come from the
``MIXPEEK_*`` environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from mixpeek_orchestration import __version__
from mixpeek_orchestration.api.errors import install_error_handlers
from mixpeek_orchestration.api.routes import (
    buckets,
    collections,
    documents,
    extractors,
    health,
    metrics,
    models,
    namespaces,
    organizations,
    plugins,
    realtime,
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
    app.include_router(collections.router)
    app.include_router(documents.router)
    app.include_router(tasks.router)
    app.include_router(extractors.router)
    app.include_router(retrievers.router)
    return app
