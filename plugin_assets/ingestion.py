"""Collection ingestion in Dagster: one asset per collection, partitioned by its batches.

Each collection is an asset (``{org}/{namespace}/collections/{name}``) downstream of the
buckets it reads and of the plugin version it pins (``plugin_assets.graph``); its partitions are
its ingestion batches, so its page lists its own batches with their runs, metadata (rows ok /
failed, throughput, plugin version, archive sha, feature URIs, a sample document's lineage) and
checks (vector dimensions, finite values, documents vs blobs, freshness). The
``bucket_objects_sensor`` plans batches for new objects (API uploads and files landing under a
bucket's prefix) and records each bucket's object count as an observation of its asset. A small
batch is processed at once in the ingestion service, ahead of any run, and the sensor records
its outcome as a runless materialization of its partition, with the same metadata and checks a
run would report; a large batch, a retry, and a batch that failed ahead get a run each. A batch
whose run died is requested again. Materialising partitions by hand (or a backfill) re-processes
them in runs: documents are upserted, never duplicated.
"""

import contextlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetMaterialization,
    AssetObservation,
    AssetsDefinition,
    DagsterRunStatus,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SpecificPartitionsPartitionMapping,
    asset,
    sensor,
)

from mixpeek_orchestration.ingest.planner import TickResult
from mixpeek_orchestration.platform.ingest_service import INGEST_ROUTE
from mixpeek_orchestration.storage.ids import aware, now
from plugin_assets.keys import Keys, batches_partitions_name
from plugin_assets.resources import (
    PLANE_TAG,
    PlatformResource,
    across_planes,
    plane_name,
    plane_tags,
)
from plugin_assets.state import CollectionRef, PlatformState

ASSET_JOB = "__ASSET_JOB"  # Dagster's implicit job of every asset: runs select one collection
AHEAD_OBJECTS = 256  # batches this small run in the ingestion service without a Dagster run
TICK_BUDGET_S = 3.0  # a tick, waiting for objects and handing Dagster its runs, ends within this
# (the daemon then writes its events and creates its runs: the rest of the 4 s interval)
RUN_SUBMIT_S = 0.5  # what the daemon takes to create and queue one run (SQLite storage, measured)
MAX_RUNS_PER_TICK = 6  # the rest are requested by the next ticks (their batches stay planned)
POLL_S = 0.2
FINISHED_BADLY = {DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
BEAT_S = 5.0  # a run waiting for its batch says so this often ...
SILENT_AFTER = timedelta(seconds=45)  # ... and one silent this long lost its worker (a run's,
# or the ingestion service holding a batch started ahead)
ALIVE = {DagsterRunStatus.STARTING, DagsterRunStatus.STARTED}
FRESH_WITHIN = timedelta(minutes=10)  # an upload waiting longer makes its collection stale
SERVICE_CHECKS = {
    "vector_dimensions": "Every stored vector has its feature's declared dimension.",
    "finite_values": "No stored vector holds NaN or infinity.",
    "documents_match_blobs": "One document per processed blob of the batch's objects.",
}
FRESH_CHECK = "fresh"


def collection_asset(collection: CollectionRef, keys: Keys) -> AssetsDefinition:
    """The asset of one collection: reads its buckets, made by its plugin version."""
    key = keys.collection(collection)
    deps = [AssetDep(keys.bucket(b)) for b in collection.bucket_ids if b in keys.buckets]
    if (collection.namespace_id, collection.plugin_name) in keys.plugins:
        deps.append(
            AssetDep(
                keys.plugin(collection.namespace_id, collection.plugin_name),
                partition_mapping=SpecificPartitionsPartitionMapping([collection.version]),
            )
        )
    checks = [
        AssetCheckSpec(name, asset=key, description=text) for name, text in SERVICE_CHECKS.items()
    ]
    checks.append(
        AssetCheckSpec(
            FRESH_CHECK,
            asset=key,
            description=f"No upload waits more than {FRESH_WITHIN.total_seconds() / 60:.0f} "
            "minutes to be ingested (last ingestion vs last upload).",
        )
    )

    @asset(
        key=key,
        partitions_def=DynamicPartitionsDefinition(
            name=batches_partitions_name(collection.collection_id)
        ),
        group_name=keys.group(collection.namespace_id),
        deps=deps,
        check_specs=checks,
        kinds={"ray", "lancedb"},
        tags=keys.tags(collection.namespace_id, collection.plane),
        description=collection.description
        or f"Documents and vectors of {collection.collection_name!r}: "
        f"{collection.plugin_name} {collection.version} over its buckets' objects.",
        metadata={
            "collection_id": collection.collection_id,
            "namespace_id": collection.namespace_id,
            "plugin": f"{collection.plugin_name} {collection.version}",
            "plugin_id": collection.plugin_id,
            "feature_uris": MetadataValue.json(list(collection.feature_uris)),
            "plane": collection.plane,
        },
    )
    def ingest(context: AssetExecutionContext, platform: PlatformResource) -> Any:
        """The run records the batch; the ingestion service (in the cluster) does its work."""
        yield from ingest_batch(context, platform, collection)

    return ingest


def ingest_batch(
    context: AssetExecutionContext, platform: PlatformResource, ref: CollectionRef
) -> Any:
    batch_id = context.partition_key
    stores = platform.plane(ref.plane)
    if stores.planner.start(batch_id, context.run_id) is None:
        raise ValueError(f"ingestion batch {batch_id} no longer exists")
    waiting = threading.Event()
    beats = threading.Thread(
        target=_beat, args=(stores.planner, batch_id, context.run_id, waiting), daemon=True
    )
    beats.start()
    try:
        answer = stores.serve.submit(
            INGEST_ROUTE,
            {"batch_id": batch_id, "run_id": context.run_id, "plane": plane_name(stores)},
        )
    except Exception as exc:
        stores.planner.finish(batch_id, status="failed", stats={}, error=str(exc))
        raise
    finally:
        waiting.set()
    report = answer["report"]
    stores.planner.record(batch_id, report)
    if report["rows"] and report["completed"] == 0:
        raise RuntimeError(f"every row of {batch_id} failed; first errors: {report['errors'][:3]}")
    yield MaterializeResult(metadata=_batch_metadata(stores, ref, batch_id, report))
    for check in answer["checks"]:
        yield AssetCheckResult(
            check_name=check["check_name"],
            passed=check["passed"],
            severity=AssetCheckSeverity(check["severity"]),
            metadata={k: _metadata(v) for k, v in check["metadata"].items()},
        )
    yield AssetCheckResult(check_name=FRESH_CHECK, **_freshness(stores, ref.collection_id))


def _batch_metadata(
    stores: Any, ref: CollectionRef, batch_id: str, report: dict[str, Any]
) -> dict[str, Any]:
    """What a batch's materialization says, from a run or recorded by the sensor."""
    version = stores.registry.version_record(ref.namespace_id, report["plugin_id"]) or {}
    return {
        "plugin": f"{version.get('name', ref.plugin_name)} {version.get('version', '?')}",
        "plugin_id": report["plugin_id"],
        "archive_sha256": version.get("sha256", ""),
        "feature_uris": MetadataValue.json(list(ref.feature_uris)),
        "objects": report["objects"],
        "rows": report["rows"],
        "rows_ok": report["completed"],
        "rows_failed": report["failed"],
        "vectors": report["vectors"],
        "rows_per_s": MetadataValue.float(float(report["rows_per_s"])),
        "duration_s": MetadataValue.float(round(report["seconds"], 2)),
        "first_block_s": MetadataValue.float(round(report["first_block_s"], 2)),
        "write_s": MetadataValue.float(round(report["write_seconds"], 2)),
        "actors_started": report["actors_started"],
        "actors_reused": report["actors_reused"],
        "steps": MetadataValue.json(report["steps"]),
        "first_errors": MetadataValue.json(report["errors"][:5]),
        **_sample_lineage(stores, ref, batch_id),
    }


def _sample_lineage(stores: Any, ref: CollectionRef, batch_id: str) -> dict[str, Any]:
    """A document the batch wrote, and where the API answers its lineage (object -> document
    -> feature URIs -> plugin version)."""
    sample = stores.documents.one_of_batch(ref.collection_id, batch_id)
    if sample is None:
        return {}
    url = (
        f"{stores.settings.public_url or stores.settings.api_url}/v1/collections/"
        f"{ref.collection_id}/documents/{sample}/lineage"
    )
    return {"sample_document_id": sample, "sample_lineage": MetadataValue.url(url)}


def _freshness(stores: Any, collection_id: str) -> dict[str, Any]:
    """The freshness check of a collection now: passed while no batch of it has waited longer
    than :data:`FRESH_WITHIN` since it was planned."""
    waiting, oldest = stores.planner.backlog(collection_id)
    age = (now() - oldest).total_seconds() if oldest else 0.0
    return {
        "passed": age <= FRESH_WITHIN.total_seconds(),
        "severity": AssetCheckSeverity.WARN,
        "metadata": {
            "batches_waiting": waiting,
            "oldest_waiting_s": MetadataValue.float(round(age, 1)),
            "checked_at": now().isoformat(),
        },
    }


def _beat(planner: Any, batch_id: str, run_id: str, done: threading.Event) -> None:
    """Say the run is alive every :data:`BEAT_S` while it waits for the service."""
    while not done.wait(BEAT_S):
        with contextlib.suppress(Exception):  # a missed beat is not fatal; a minute of them is
            planner.beat(batch_id, run_id)


def _metadata(value: Any) -> Any:
    return MetadataValue.json(value) if isinstance(value, (dict, list)) else value


def bucket_objects_sensor(state: PlatformState, keys: Keys) -> Any:
    """The sensor over the collections of ``state`` (the snapshot these definitions were built
    from). A collection created since waits for the reload that gives it an asset
    (``platform_state_sensor``), a few seconds."""
    stale_reported: dict[str, float] = {}  # collection -> when its stale check was last sent
    first_tick = [True]  # this process observes every bucket once, then those that took objects

    @sensor(
        job_name=ASSET_JOB,
        # under the daemon's 5 s loop: a tick that started a hair late is still due at the next
        # loop (at 5 s it would wait for the one after, 10 s)
        minimum_interval_seconds=4,
        default_status=DefaultSensorStatus.RUNNING,
        description="New objects in a bucket (API uploads and files landing under its prefix) -> "
        "batches for every collection sourced from it: small ones processed at once in the "
        "ingestion service and recorded here as materializations of their partitions, the "
        "others a run each; interrupted batches are retried; each bucket's object count is "
        "observed.",
    )
    def bucket_objects_sensor(
        context: SensorEvaluationContext, platform: PlatformResource
    ) -> SensorResult:
        started = time.monotonic()
        previous = json.loads(context.cursor) if context.cursor else {}
        observed: dict[str, int] = (
            previous.get("observed", {}) if isinstance(previous, dict) else {}
        )
        events: list[Any] = []
        requests: dict[str, RunRequest] = {}
        partitions: dict[str, list[str]] = {}  # collection -> new partitions (batches)
        cursors: dict[str, int] = {}
        held = [False]  # a batch waits for its collection's batch running ahead

        def plan(plane: Any, register_files: bool = True) -> None:
            found = _plan(context, plane, keys, register_files=register_files)
            changed = None if first_tick[0] else list(found.tick.uploads)
            events.extend(_observe_buckets(plane, keys, changed, observed))
            requests.update({r.run_key: r for r in found.runs if r.run_key})
            for collection_id, batch_id in found.ahead:
                partitions.setdefault(collection_id, []).append(batch_id)
            held[0] = held[0] or found.held
            cursors[plane_name(plane)] = found.tick.cursor

        # the shared plane, then each tenant's dedicated one
        across_planes(context, platform, plan, "planning")
        first_tick[0] = False

        # The daemon looks at its sensors every 5 s. A tick waits within itself for the next
        # objects, polling, and plans them as they come: a small batch is processed at once in
        # the ingestion service, so an upload is searchable a fraction of a second after it
        # lands, not at the next tick. A batch that waits for a run (a large one, a retry) ends
        # the tick, so its run is requested now; so does the time the daemon will take to
        # queue the runs asked.
        def may_wait() -> bool:
            submit = RUN_SUBMIT_S * min(len(requests), MAX_RUNS_PER_TICK)
            return time.monotonic() - started + submit + POLL_S < TICK_BUDGET_S

        while not requests and may_wait():
            time.sleep(POLL_S)
            new_objects = across_planes(
                context, platform, lambda plane: plane.planner.waiting_objects(), "polling"
            )
            if held[0] or any(new for _, new in new_objects):
                held[0] = False
                across_planes(
                    context, platform, lambda plane: plan(plane, register_files=False), "planning"
                )
        events += _stale_checks(context, platform, state, keys, stale_reported)
        events += _report_ahead(context, platform, state, keys)
        run_requests = list(requests.values())[:MAX_RUNS_PER_TICK]
        asked: dict[str, list[str]] = {}
        for r in run_requests:
            asked.setdefault(r.tags[PLANE_TAG], []).append(r.partition_key or "")
            partitions.setdefault(r.tags["mixpeek/collection_id"], []).append(r.partition_key or "")
        for label, batch_ids in asked.items():
            platform.plane(label).planner.requested(batch_ids)
        cursor = json.dumps({"planes": cursors, "observed": observed}, sort_keys=True)
        new_partitions = [
            DynamicPartitionsDefinition(name=batches_partitions_name(c)).build_add_request(k)
            for c, k in partitions.items()
        ]
        if not run_requests:
            return SensorResult(
                skip_reason=f"no runs to ask for (planned up to {cursors})",
                cursor=cursor,
                asset_events=events,
                dynamic_partitions_requests=new_partitions,
            )
        return SensorResult(
            run_requests=run_requests,
            dynamic_partitions_requests=new_partitions,
            asset_events=events,
            cursor=cursor,
        )

    return bucket_objects_sensor


@dataclass
class Planned:
    """What one plane's planning pass found."""

    tick: TickResult
    runs: list[RunRequest]  # batches that wait for a run
    ahead: list[tuple[str, str]]  # (collection, batch) started in the service, no run
    held: bool  # a small batch waits for its collection's batch running ahead


def _plan(
    context: SensorEvaluationContext, plane: Any, keys: Keys, *, register_files: bool = True
) -> Planned:
    """One plane's pass: retry batches whose run (or whose service) died, plan new objects
    into batches, and start each small first-attempt batch of a collection these definitions
    hold in the ingestion service, ahead of any run; the others get a run request each,
    tagged with the plane and its queue. A collection has one batch running ahead at a time:
    objects arriving meanwhile gather into its next batch, which starts when that one is done,
    so a stream of uploads makes a few batches, not one per poll."""
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
        lost = planner.lost_ahead(batch, after=SILENT_AFTER)
        if (died or lost) and planner.retry(batch["batch_id"]):
            context.log.info(
                "batch %s: %s, queued again",
                batch["batch_id"],
                f"run {run.run_id} ended {run.status}" if died and run else "its service went away",
            )
    tick = planner.tick(register_files=register_files)
    batches = [b for b in planner.runnable() if b["collection_id"] in keys.collections]
    found = Planned(tick=tick, runs=[], ahead=[], held=False)
    if not batches:
        return found
    busy = planner.running_ahead()
    tags = plane_tags(plane, "ingestion")
    for b in batches:
        if b.get("attempts", 0) == 0 and b.get("size", len(b["object_ids"])) <= AHEAD_OBJECTS:
            if b["collection_id"] in busy:
                found.held = True
                continue
            if _start_ahead(context, plane, b):
                busy.add(b["collection_id"])
                found.ahead.append((b["collection_id"], b["batch_id"]))
                continue
        found.runs.append(_request(b, tags, keys))
    context.log.info(
        "%s: %d file(s) registered, %d object(s) planned into %d new batch(es); "
        "%d started ahead, %d to run",
        plane_name(plane), tick.files_registered, tick.objects_planned,
        len(tick.batches_created), len(found.ahead), len(found.runs),
    )  # fmt: skip
    return found


def _request(batch: Any, tags: dict[str, str], keys: Keys) -> RunRequest:
    """The run of one batch, keyed by its attempt (Dagster launches a run key once)."""
    return RunRequest(
        partition_key=batch["batch_id"],
        run_key=f"{batch['batch_id']}#{batch.get('attempts', 0)}",
        tags=tags
        | {
            "mixpeek/kind": "ingestion",
            "mixpeek/collection_id": batch["collection_id"],
            "mixpeek/reason": batch["reason"],
        },
        asset_selection=[keys.collection(batch["collection_id"])],
    )


def _report_ahead(
    context: SensorEvaluationContext,
    platform: PlatformResource,
    state: PlatformState,
    keys: Keys,
) -> list[Any]:
    """The outcome of each batch processed ahead of any run since the last tick, as a run
    would report it: a materialization of its partition (its metadata) and its checks."""
    events: list[Any] = []

    def report(plane: Any) -> None:
        batches = plane.planner.unreported()
        for batch in batches:
            ref = state.collection(batch["collection_id"])
            if ref is None or batch["collection_id"] not in keys.collections:
                continue
            key, partition = keys.collection(ref), batch["batch_id"]
            events.append(
                AssetMaterialization(
                    asset_key=key,
                    partition=partition,
                    metadata=_batch_metadata(plane, ref, partition, batch["stats"]),
                    tags={"mixpeek/processed": "ahead", "mixpeek/reason": batch["reason"]},
                )
            )
            fresh = _freshness(plane, ref.collection_id)
            for check in [*batch.get("checks", []), {"check_name": FRESH_CHECK, **fresh}]:
                events.append(
                    AssetCheckEvaluation(
                        asset_key=key,
                        check_name=check["check_name"],
                        passed=check["passed"],
                        severity=AssetCheckSeverity(check["severity"]),
                        metadata={k: _metadata(v) for k, v in check["metadata"].items()},
                        partition=partition,
                    )
                )
        plane.planner.reported([b["batch_id"] for b in batches])

    across_planes(context, platform, report, "reporting")
    return events


def _observe_buckets(
    plane: Any, keys: Keys, changed: list[str] | None, observed: dict[str, int]
) -> list[AssetObservation]:
    """An observation (object count, last upload) of each bucket of ``changed`` (every bucket
    of the plane: ``None``) whose count is not the one last observed."""
    wanted = [b for b in changed if b in keys.buckets] if changed is not None else None
    if wanted == []:
        return []
    events = []
    for bucket_id, (count, last) in plane.buckets.object_stats(wanted).items():
        if bucket_id not in keys.buckets or observed.get(bucket_id) == count:
            continue
        observed[bucket_id] = count
        events.append(
            AssetObservation(
                asset_key=keys.bucket(bucket_id),
                metadata={
                    "objects": MetadataValue.int(count),
                    "last_upload": MetadataValue.timestamp(aware(last)),
                    "bucket_id": bucket_id,
                },
            )
        )
    return events


def _stale_checks(
    context: SensorEvaluationContext,
    platform: PlatformResource,
    state: PlatformState,
    keys: Keys,
    reported: dict[str, float],
) -> list[Any]:
    """A failed freshness check for each collection whose oldest waiting batch is older than
    :data:`FRESH_WITHIN` (once per such window: a run's own check passes it again)."""
    events = []
    cutoff = now() - FRESH_WITHIN
    for plane, old in across_planes(
        context, platform, lambda plane: plane.planner.waiting_since(cutoff), "freshness"
    ):
        for collection_id in old:
            ref = state.collection(collection_id)
            last = reported.get(collection_id, 0.0)
            if ref is None or time.monotonic() - last < FRESH_WITHIN.total_seconds():
                continue
            reported[collection_id] = time.monotonic()
            result = _freshness(plane, collection_id)
            events.append(
                AssetCheckEvaluation(
                    asset_key=keys.collection(ref),
                    check_name=FRESH_CHECK,
                    passed=result["passed"],
                    severity=result["severity"],
                    metadata=result["metadata"],
                )
            )
    return events


def _start_ahead(context: SensorEvaluationContext, plane: Any, batch: Any) -> bool:
    """Start a batch in the ingestion service now, without a run (or find it started by an
    overlapping tick); ``False``: the service would not take it, a run processes it."""
    if plane.planner.start(batch["batch_id"], None, if_planned=True) is None:
        return True
    try:
        plane.serve.submit(
            INGEST_ROUTE, {"batch_id": batch["batch_id"], "plane": plane_name(plane), "ahead": True}
        )
    except Exception as exc:
        context.log.warning("batch %s: not started ahead: %s", batch["batch_id"], exc)
        plane.planner.retry(batch["batch_id"])
        return False
    return True
