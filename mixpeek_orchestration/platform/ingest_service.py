"""The ingestion service: a Ray Serve application that runs ingestion batches in the cluster.

Every batch is still a Dagster run, with its partition, metadata and checks; the run does no
data work. It posts ``{batch_id, run_id, plane}`` to ``/ingest`` and waits for the report. The
service lives as long as the cluster: its stores' clients, the Ray API, remembered step plans
and the warm stage actors it feeds stay up between batches, so a batch costs its rows, not a
process's imports, a Ray driver's start and a Ray Data job's planning (measured in
``bench/ingest.py``). It reads the batch's objects, sends blocks straight to the warm stages,
and writes documents and vectors itself (:class:`~mixpeek_orchestration.ingest.engine.IngestionEngine`).

One service serves every data plane of its cluster (``plane`` names the tenant, as the run's
``mixpeek/plane`` tag does). Where the plane's stores are local directories (a local stack), its
replica runs on the head node, the one that sees them; elsewhere it may run anywhere.

A small batch (an upload or a few) is started **ahead of its run**: the sensor posts it with
``ahead`` as it requests the run, the service starts it at once and answers 202, and the run,
when Dagster has launched it (seconds: a process, its imports, the code location), collects the
same job by its run key and records its report. So an upload is searchable about a second after
it lands, not after a run's launch. A run that finds no job under its key (the service restarted,
a launch by hand, a retry) processes the batch itself. Jobs nobody collected are dropped after
:data:`UNCLAIMED_TTL_S`.

Started by ``mixpeek up`` (``platform/bootstrap.py``) and put back by the deployment sensor when a
restarted Ray lost it; rendered RayServices list it (``import_path:
mixpeek_orchestration.platform.ingest_service:app_builder``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.compute.serve import INGEST_APP, INGEST_ROUTE
from mixpeek_orchestration.errors import ErrorCode, MixpeekError

if TYPE_CHECKING:
    from mixpeek_orchestration.platform.root import Platform
    from mixpeek_orchestration.settings import MixpeekSettings

logger = logging.getLogger(__name__)

SHARED_PLANE = "shared"
HEAD_NODE = "node:__internal_head__"  # a resource only the head node offers
AHEAD_WORKERS = 2  # batches started ahead of their runs, at once (more wait their turn)
UNCLAIMED_TTL_S = 900.0  # a job started ahead whose run never came is forgotten after this


class AheadJobs:
    """Batches started ahead of their runs, by run key, until the run collects them."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(AHEAD_WORKERS, thread_name_prefix="ingest-ahead")
        self.jobs: dict[str, tuple[float, Future[dict[str, Any]]]] = {}
        self.lock = threading.Lock()

    def start(self, key: str, work: Any, *args: Any) -> None:
        with self.lock:
            now = time.monotonic()
            for stale in [k for k, (at, job) in self.jobs.items() if now - at > UNCLAIMED_TTL_S]:
                if self.jobs[stale][1].done():
                    del self.jobs[stale]
            if key not in self.jobs:
                self.jobs[key] = (now, self.pool.submit(work, *args))

    def take(self, key: str | None) -> Future[dict[str, Any]] | None:
        with self.lock:
            entry = self.jobs.pop(key, None) if key else None
        return entry[1] if entry else None


def local_stores(settings: MixpeekSettings) -> bool:
    """Whether the plane keeps objects or vectors in local directories (only the node that
    has them may write there)."""
    return settings.s3_bucket is None or "://" not in str(settings.vectors_uri or "")


def build_app(settings: MixpeekSettings) -> Any:
    from ray import serve
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    options: dict[str, Any] = {"num_cpus": 0}
    if local_stores(settings):
        options["resources"] = {HEAD_NODE: 0.001}

    @serve.deployment(
        name="ingest",
        max_ongoing_requests=64,
        ray_actor_options=options,
        health_check_period_s=10,
        health_check_timeout_s=30,
    )
    class IngestService:
        def __init__(self) -> None:
            from mixpeek_orchestration.platform.root import Platform
            from mixpeek_orchestration.settings import load_settings

            self.control = Platform(load_settings())
            self.ahead = AheadJobs()

        def plane(self, name: str | None) -> Platform:
            if name in (None, "", SHARED_PLANE):
                return self.control
            return self.control.planes.get(name)

        async def __call__(self, request: Request) -> JSONResponse:
            try:
                body = await request.json()
                if not isinstance(body, dict) or not isinstance(body.get("batch_id"), str):
                    raise MixpeekError(
                        ErrorCode.INVALID_REQUEST,
                        "body must be JSON {batch_id, run_id, plane, key, ahead}",
                        field="batch_id",
                    )
                plane, batch_id, key = (
                    self.plane(body.get("plane")),
                    body["batch_id"],
                    body.get("key"),
                )
                if body.get("ahead"):
                    if not isinstance(key, str):
                        raise MixpeekError(
                            ErrorCode.INVALID_REQUEST, "ahead needs the run's key", field="key"
                        )
                    self.ahead.start(key, run_batch, plane, batch_id, None, True)
                    return JSONResponse({"batch_id": batch_id, "started": True}, status_code=202)
                job = self.ahead.take(key)
                if job is not None:
                    answer = await asyncio.wrap_future(job)
                else:
                    answer = await asyncio.to_thread(run_batch, plane, batch_id, body.get("run_id"))
                return JSONResponse(answer)
            except MixpeekError as exc:
                return JSONResponse(exc.to_response(), status_code=exc.http_status)
            except Exception as exc:  # the run fails with this, and is retried
                logger.exception("ingestion of %s failed", locals().get("body"))
                error = MixpeekError(ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
                return JSONResponse(error.to_response(), status_code=500)

    return IngestService.bind()  # type: ignore[attr-defined]


def run_batch(
    platform: Platform, batch_id: str, run_id: str | None, record: bool = False
) -> dict[str, Any]:
    """Process one batch in ``platform``'s plane; its report and its checks. ``record``: also
    write its outcome on the batch (a batch started ahead, whose run may never come)."""
    from mixpeek_orchestration.ingest.checks import batch_checks

    batch = platform.planner.get(batch_id)
    if batch is None:
        raise MixpeekError(ErrorCode.NOT_FOUND, f"ingestion batch {batch_id} does not exist")
    try:
        report = platform.ingestion.run(batch, run_id=run_id)
    except Exception as exc:
        if record:
            platform.planner.finish(batch_id, status="failed", stats={}, error=str(exc))
        raise
    if record:
        platform.planner.record(batch_id, report.as_dict())
    collection = platform.collections.by_id(batch["collection_id"]) or {}
    checks = batch_checks(platform.documents, collection, batch, report) if report.rows else []
    return {"report": report.as_dict(), "checks": checks}


def app_builder(args: dict[str, str] | None = None) -> Any:
    """Serve config entry point: the service built from the ``MIXPEEK_*`` environment."""
    from mixpeek_orchestration.settings import load_settings

    return build_app(load_settings())


def deploy(platform: Platform) -> None:
    """Deploy (or update) the service on ``platform``'s Serve."""
    from ray import serve

    platform.serve.start()
    serve.run(
        build_app(platform.settings), name=INGEST_APP, route_prefix=INGEST_ROUTE, blocking=False
    )
