"""Collection ingestion in Dagster: one dynamic partition per batch of objects, one sensor.

``collection_ingestion`` is partitioned by ingestion batch (``ib_{collection_id}_...``): each
partition is a set of objects one collection processes together, so the UI lists every batch of
every collection, with its run, metadata (rows ok / failed, throughput, plugin version, feature
URIs) and checks (vector dimensions, finite values, documents vs blobs). The
``bucket_objects_sensor`` plans batches for new objects (API uploads and files landing under a
bucket's prefix) and requests a run per batch; a batch whose run died is requested again.
Launching a partition by hand (or a backfill) re-processes it: documents are upserted, never
duplicated.
"""

import contextlib
import json
import threading
import time
from datetime import timedelta
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    DagsterRunStatus,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    asset,
    define_asset_job,
    in_process_executor,
    sensor,
)

from mixpeek_orchestration.platform.ingest_service import INGEST_ROUTE
from plugin_assets.resources import PlatformResource, across_planes, plane_name, plane_tags

ingest_batches_partitions = DynamicPartitionsDefinition(name="ingest_batches")
AHEAD_OBJECTS = 256  # batches this small start in the ingestion service before their run does
LOST_AHEAD_AFTER = timedelta(minutes=3)  # started ahead, and still no run nor outcome
AHEAD_TAG = "mixpeek/ahead"  # on runs whose batch the sensor started: the key of that job
WAIT_FOR_OBJECTS_S = 3.5  # within one sensor tick, ended well before the daemon's next loop (5 s)
POLL_S = 0.2
FINISHED_BADLY = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
BEAT_S = 5.0  # a run waiting for its batch says so this often ...
SILENT_AFTER = timedelta(seconds=45)  # ... and one silent this long lost its worker
ALIVE = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED}


@asset(
    partitions_def=ingest_batches_partitions,
    group_name="ingestion",
    kinds={"ray", "lancedb", "mongodb"},
    description="Documents and vectors of one batch of objects in one collection, produced by the "
    "collection's plugin version in the cluster's ingestion service.",
    check_specs=[
        AssetCheckSpec(
            "vector_dimensions",
            asset="collection_ingestion",
            description="Every stored vector has its feature's declared dimension.",
        ),
        AssetCheckSpec(
            "finite_values",
            asset="collection_ingestion",
            description="No stored vector holds NaN or infinity.",
        ),
        AssetCheckSpec(
            "documents_match_blobs",
            asset="collection_ingestion",
            description="One document per processed blob of the batch's objects.",
        ),
    ],
)
def collection_ingestion(context: AssetExecutionContext, platform: PlatformResource) -> Any:
    """The run records the batch; the ingestion service (in the cluster) does its work."""
    batch_id = context.partition_key
    stores = platform.plane_of_run(context, lambda plane: plane.planner.get(batch_id) is not None)
    ahead = context.run.tags.get(AHEAD_TAG)  # the sensor started it: collect that job
    if ahead:
        batch = stores.planner.attach(batch_id, context.run_id)
    else:
        batch = stores.planner.start(batch_id, context.run_id)
    if batch is None:
        raise ValueError(f"ingestion batch {batch_id} no longer exists")
    waiting = threading.Event()
    beats = threading.Thread(
        target=_beat, args=(stores.planner, batch_id, context.run_id, waiting), daemon=True
    )
    beats.start()
    try:
        answer = stores.serve.submit(
            INGEST_ROUTE,
            {"batch_id": batch_id, "run_id": context.run_id, "plane": plane_name(stores),
             "key": ahead},
        )  # fmt: skip
    except Exception as exc:
        stores.planner.finish(batch_id, status="failed", stats={}, error=str(exc))
        raise
    finally:
        waiting.set()
    report = answer["report"]
    completed, failed, rows = report["completed"], report["failed"], report["rows"]
    stores.planner.record(batch_id, report)
    if rows and completed == 0:
        raise RuntimeError(f"every row of {batch_id} failed; first errors: {report['errors'][:3]}")
    collection = stores.collections.by_id(batch["collection_id"]) or {}
    yield MaterializeResult(
        metadata={
            "collection_id": batch["collection_id"],
            "plugin_id": report["plugin_id"],
            "feature_uris": MetadataValue.json(collection.get("feature_uris", [])),
            "objects": report["objects"],
            "rows": rows,
            "rows_ok": completed,
            "rows_failed": failed,
            "vectors": report["vectors"],
            "rows_per_s": MetadataValue.float(float(report["rows_per_s"])),
            "duration_s": MetadataValue.float(round(report["seconds"], 2)),
            "first_block_s": MetadataValue.float(round(report["first_block_s"], 2)),
            "write_s": MetadataValue.float(round(report["write_seconds"], 2)),
            "actors_started": report["actors_started"],
            "actors_reused": report["actors_reused"],
            "steps": MetadataValue.json(report["steps"]),
            "first_errors": MetadataValue.json(report["errors"][:5]),
        }
    )
    for check in answer["checks"]:
        yield AssetCheckResult(
            check_name=check["check_name"],
            passed=check["passed"],
            severity=AssetCheckSeverity(check["severity"]),
            metadata={k: _metadata(v) for k, v in check["metadata"].items()},
        )


def _beat(planner: Any, batch_id: str, run_id: str, done: threading.Event) -> None:
    """Say the run is alive every :data:`BEAT_S` while it waits for the service."""
    while not done.wait(BEAT_S):
        with contextlib.suppress(Exception):  # a missed beat is not fatal; a minute of them is
            planner.beat(batch_id, run_id)


def _metadata(value: Any) -> Any:
    return MetadataValue.json(value) if isinstance(value, (dict, list)) else value


collection_ingestion_job = define_asset_job(
    "collection_ingestion_job",
    selection=[collection_ingestion],
    partitions_def=ingest_batches_partitions,
    # one step: running it in the run worker saves spawning (and importing) a second process
    executor_def=in_process_executor,
)


@sensor(
    job=collection_ingestion_job,
    # under the daemon's 5 s loop: a tick that started a hair late is still due at the next
    # loop (at 5 s it would wait for the one after, 10 s)
    minimum_interval_seconds=4,
    default_status=DefaultSensorStatus.RUNNING,
    description="New objects in a bucket (API uploads and files landing under its prefix) -> "
    "batches and a run each for every collection sourced from it; interrupted runs are retried.",
)
def bucket_objects_sensor(
    context: SensorEvaluationContext, platform: PlatformResource
) -> SensorResult:
    # the shared plane, then each tenant's dedicated one
    ahead: set[str] = set()  # collections with a batch started ahead in this tick
    planned = across_planes(
        context, platform, lambda plane: _plan(context, plane, ahead), "planning"
    )
    requests = {r.run_key: r for _, (found, _) in planned for r in found}
    # The daemon looks at its sensors every 5 s. A tick waits within itself for the next
    # objects, polling, and plans them as they come: a small batch starts ahead of its run at
    # once, so an upload is processed a fraction of a second after it lands, not at the next
    # tick. A batch that waits for its run (a large one, a retry) ends the tick, so its run is
    # requested now.
    deadline = time.monotonic() + WAIT_FOR_OBJECTS_S
    while all(AHEAD_TAG in r.tags for r in requests.values()) and time.monotonic() < deadline:
        time.sleep(POLL_S)
        waiting = across_planes(
            context, platform, lambda plane: plane.planner.waiting_objects(), "polling"
        )
        if any(new for _, new in waiting):
            planned = across_planes(
                context,
                platform,
                lambda plane: _plan(context, plane, ahead, register_files=False),
                "planning",
            )
            requests |= {r.run_key: r for _, (found, _) in planned for r in found}
    run_requests = list(requests.values())
    cursors = {plane_name(plane): cursor for plane, (_, cursor) in planned}
    cursor = json.dumps(cursors, sort_keys=True)
    if not run_requests:
        return SensorResult(skip_reason=f"no new objects (cursors {cursor})", cursor=cursor)
    keys = [r.partition_key for r in run_requests if r.partition_key]
    return SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[ingest_batches_partitions.build_add_request(keys)],
        cursor=cursor,
    )


def _plan(
    context: SensorEvaluationContext, plane: Any, ahead: set[str], *, register_files: bool = True
) -> tuple[list[RunRequest], int]:
    """One plane's tick: retry batches whose run died, plan new objects into batches, and a
    run request per runnable batch, tagged with the plane and its queue. At most one batch per
    collection and tick starts ahead (``ahead`` holds those collections): later objects of the
    tick wait for a run together, so a stream of uploads makes a few runs, not one per poll."""
    planner = plane.planner
    for batch in planner.in_flight():  # runs that died (killed worker, cancelled) run again
        run = context.instance.get_run_by_id(batch["run_id"]) if batch.get("run_id") else None
        if run is not None and run.status in ALIVE and planner.silent_for(batch) > SILENT_AFTER:
            # its worker is gone (a killed stack, a lost pod): Dagster would show it running
            context.instance.report_run_failed(
                run, f"the run stopped reporting on batch {batch['batch_id']} (worker gone)"
            )
            run = context.instance.get_run_by_id(run.run_id)
        died = run is not None and run.status in FINISHED_BADLY
        lost = planner.lost_ahead(batch, after=LOST_AHEAD_AFTER)
        if (died or lost) and planner.retry(batch["batch_id"]):
            context.log.info(
                "batch %s: %s, queued again",
                batch["batch_id"],
                f"run {run.run_id} ended {run.status}" if died and run else "lost before its run",
            )
    tick = planner.tick(register_files=register_files)
    batches = planner.runnable()
    if batches:
        context.log.info(
            "%s: %d file(s) registered, %d object(s) planned into %d new batch(es); "
            "%d batch(es) to run",
            plane_name(plane), tick.files_registered, tick.objects_planned,
            len(tick.batches_created), len(batches),
        )  # fmt: skip
    tags = plane_tags(plane, "ingestion")
    requests = []
    for b in batches:
        key = f"{b['batch_id']}#{b.get('attempts', 0)}"
        run_tags = tags | {
            "mixpeek/kind": "ingestion",
            "mixpeek/collection_id": b["collection_id"],
            "mixpeek/reason": b["reason"],
        }
        if b["collection_id"] not in ahead and _start_ahead(context, plane, b, key):
            ahead.add(b["collection_id"])
            run_tags[AHEAD_TAG] = key
        requests.append(RunRequest(partition_key=b["batch_id"], run_key=key, tags=run_tags))
    return requests, tick.cursor


def _start_ahead(context: SensorEvaluationContext, plane: Any, batch: Any, key: str) -> bool:
    """Start a small first-attempt batch in the ingestion service now, so its documents do not
    wait for Dagster to launch its run; the run collects the job by ``key``. A batch too large,
    retried, or that the service would not take waits for its run as any other."""
    if batch.get("attempts", 0) or batch.get("size", len(batch["object_ids"])) > AHEAD_OBJECTS:
        return False
    if plane.planner.start(batch["batch_id"], None, if_planned=True) is None:
        return False
    try:
        plane.serve.submit(
            INGEST_ROUTE,
            {"batch_id": batch["batch_id"], "plane": plane_name(plane), "key": key, "ahead": True},
        )
    except Exception as exc:  # the run processes it, as if never started
        context.log.warning("batch %s: not started ahead of its run: %s", batch["batch_id"], exc)
    return True
