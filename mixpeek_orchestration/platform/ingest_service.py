"""The ingestion service: a Ray Serve application that runs ingestion batches in the cluster.

Every batch is a partition of its collection's Dagster asset, with its metadata and checks. A
run does no data work: it posts ``{batch_id, run_id, plane}`` to ``/ingest`` and waits for the
report. The
service lives as long as the cluster: its stores' clients, the Ray API, remembered step plans
and the warm stage actors it feeds stay up between batches, so a batch costs its rows, not a
process's imports, a Ray driver's start and a Ray Data job's planning (measured in
``bench/ingest.py``). It reads the batch's objects, sends blocks straight to the warm stages,
and writes documents and vectors itself (:class:`~mixpeek_orchestration.ingest.engine.IngestionEngine`).

One service serves every data plane of its cluster (``plane`` names the tenant, as the run's
``mixpeek/plane`` tag does). Where the plane's stores are local directories (a local stack), its
replica runs on the head node, the one that sees them; elsewhere it may run anywhere.

A small batch (an upload or a few) is started **ahead of any run**: the sensor posts it with
``ahead`` and its key, the service answers 202 and processes it at once, and records its outcome
and checks on the batch; the sensor then records them in Dagster as a runless materialization of
the batch's partition. So an upload is searchable a fraction of a second after it lands, and
costs no run (a process, its imports, the code location: seconds of CPU on a small machine). The
service says every :data:`BEAT_S` that it still holds each such batch (queued or running), so a
batch whose service went away is queued again, for a run. A batch that raised, or whose every
row failed, goes back to the queue too: its run shows the failure where users look.

Started by ``mixpeek up`` (``platform/bootstrap.py``) and put back by the deployment sensor when a
restarted Ray lost it; rendered RayServices list it (``import_path:
mixpeek_orchestration.platform.ingest_service:app_builder``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
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
AHEAD_WORKERS = 2  # batches started ahead of any run, at once (more wait their turn)
BEAT_S = 5.0  # the service says this often that it still holds each batch started ahead


class AheadJobs:
    """Batches started ahead of any run, by key (one job per key), while they are queued or
    running; ``beat(key)`` is called every ``beat_s`` for each of them."""

    def __init__(self, beat: Callable[[str], None], *, beat_s: float = BEAT_S) -> None:
        self.pool = ThreadPoolExecutor(AHEAD_WORKERS, thread_name_prefix="ingest-ahead")
        self.jobs: dict[str, Future[Any]] = {}
        self.lock = threading.Lock()
        self._beat, self.beat_s = beat, beat_s
        threading.Thread(target=self._beats, name="ingest-ahead-beats", daemon=True).start()

    def start(self, key: str, work: Callable[..., Any], *args: Any) -> bool:
        """Queue ``work(*args)`` under ``key``; ``False``: a job of that key is held already."""
        with self.lock:
            if key in self.jobs:
                return False
            job = self.pool.submit(work, *args)
            self.jobs[key] = job
        job.add_done_callback(lambda _: self._forget(key, job))
        return True

    def held(self) -> list[str]:
        with self.lock:
            return list(self.jobs)

    def _forget(self, key: str, job: Future[Any]) -> None:
        with self.lock:
            if self.jobs.get(key) is job:
                del self.jobs[key]

    def _beats(self) -> None:
        while True:
            time.sleep(self.beat_s)
            for key in self.held():
                try:
                    self._beat(key)
                except Exception:  # a missed beat is not fatal; many of them are
                    logger.warning("could not say the service holds %s", key, exc_info=True)


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
            self.ahead = AheadJobs(self.beat)

        def beat(self, key: str) -> None:
            plane, batch_id = key.split("/", 1)
            self.plane(plane).planner.beat(batch_id, None)

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
                        "body must be JSON {batch_id, run_id, plane, ahead}",
                        field="batch_id",
                    )
                label, batch_id = body.get("plane") or SHARED_PLANE, body["batch_id"]
                plane = self.plane(label)
                if body.get("ahead"):
                    started = self.ahead.start(f"{label}/{batch_id}", run_ahead, plane, batch_id)
                    return JSONResponse({"batch_id": batch_id, "started": started}, status_code=202)
                answer = await asyncio.to_thread(run_batch, plane, batch_id, body.get("run_id"))
                return JSONResponse(answer)
            except MixpeekError as exc:
                return JSONResponse(exc.to_response(), status_code=exc.http_status)
            except Exception as exc:  # the run fails with this, and is retried
                logger.exception("ingestion of %s failed", locals().get("body"))
                error = MixpeekError(ErrorCode.INTERNAL_ERROR, f"{type(exc).__name__}: {exc}")
                return JSONResponse(error.to_response(), status_code=500)

    return IngestService.bind()  # type: ignore[attr-defined]


def run_batch(platform: Platform, batch_id: str, run_id: str | None) -> dict[str, Any]:
    """Process one batch in ``platform``'s plane; its report and its checks."""
    from mixpeek_orchestration.ingest.checks import batch_checks

    batch = platform.planner.get(batch_id)
    if batch is None:
        raise MixpeekError(ErrorCode.NOT_FOUND, f"ingestion batch {batch_id} does not exist")
    report = platform.ingestion.run(batch, run_id=run_id)
    collection = platform.collections.by_id(batch["collection_id"]) or {}
    checks = batch_checks(platform.documents, collection, batch, report) if report.rows else []
    return {"report": report.as_dict(), "checks": checks}


def run_ahead(platform: Platform, batch_id: str) -> None:
    """Process a batch started ahead of any run and record its outcome and checks on it (the
    sensor reports them to Dagster). One that raised, or whose every row failed, is queued
    again, for a run."""
    try:
        answer = run_batch(platform, batch_id, None)
    except Exception:
        logger.exception("batch %s, started ahead, failed: queued for a run", batch_id)
        platform.planner.retry(batch_id)
        return
    report = answer["report"]
    if report["rows"] and report["completed"] == 0:
        logger.warning("every row of %s failed ahead of its run: queued for a run", batch_id)
        platform.planner.retry(batch_id)
        return
    platform.planner.record(batch_id, report, answer["checks"])


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
