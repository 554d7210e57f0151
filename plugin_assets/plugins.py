"""Plugin versions in Dagster: one dynamic partition per version, three assets, one sensor.

``plugin_archive`` -> ``plugin_scan_report`` -> ``plugin_version``, partitioned by
``{namespace_id}__{plugin_id}``. The ``plugin_version_sensor`` turns every newly confirmed version
into a partition and a run, so each version shows up in the UI with its lineage and metadata
(sha256, violations, features, feature URIs, parameter schema). Re-materialising
``plugin_scan_report`` for a partition re-scans the stored archive with the current rules (e.g.
after the scanner changed) and records the new report on the version.
"""

import json
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    DefaultSensorStatus,
    DynamicPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    asset,
    define_asset_job,
    sensor,
)

from mixpeek_orchestration.plugins.archive import ArchiveRejected, open_plugin_archive
from mixpeek_orchestration.plugins.records import DeploymentStatus
from mixpeek_orchestration.plugins.scanner import scan_directory
from mixpeek_orchestration.tenancy.accounts import Namespace
from plugin_assets.resources import PlatformResource, across_planes, plane_name, plane_tags

plugin_versions_partitions = DynamicPartitionsDefinition(name="plugin_versions")
SEPARATOR = "__"


def partition_key(namespace_id: str, plugin_id: str) -> str:
    return f"{namespace_id}{SEPARATOR}{plugin_id}"


def _find(plane: Any, key: str) -> dict[str, Any] | None:
    namespace_id, _, plugin_id = key.partition(SEPARATOR)
    return plane.registry.version_record(namespace_id, plugin_id)  # type: ignore[no-any-return]


def _version(
    context: AssetExecutionContext, platform: PlatformResource
) -> tuple[Any, Namespace, dict[str, Any]]:
    """The data plane, namespace and record of the partition's plugin version."""
    key = context.partition_key
    stores = platform.plane_of_run(context, lambda plane: _find(plane, key) is not None)
    doc = _find(stores, key)
    if doc is None:
        raise ValueError(f"plugin version {key} no longer exists")
    namespace = Namespace(doc["namespace_id"], "", doc["org_id"], "", doc["created_at"])
    return stores, namespace, doc


@asset(
    partitions_def=plugin_versions_partitions,
    group_name="plugins",
    kinds={"python"},
    description="The stored archive of a plugin version, re-hashed from the object store.",
)
def plugin_archive(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
    import hashlib

    stores, _, doc = _version(context, platform)
    digest = hashlib.sha256()
    size = 0
    with stores.objects.open_read(doc["archive_key"]) as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    if digest.hexdigest() != doc["sha256"]:
        raise ValueError(
            f"archive of {doc['plugin_id']} changed: sha256 {digest.hexdigest()} != {doc['sha256']}"
        )
    return MaterializeResult(
        metadata={
            "plugin_id": doc["plugin_id"],
            "sha256": doc["sha256"],
            "size_bytes": MetadataValue.int(size),
            "object_key": doc["archive_key"],
            "files": MetadataValue.int(len(doc.get("files", {}))),
            "published_by": doc["created_by"],
            "message": doc.get("message", ""),
        }
    )


@asset(
    partitions_def=plugin_versions_partitions,
    group_name="plugins",
    deps=[plugin_archive],
    kinds={"python"},
    description="Archive gate and security scan of the stored archive, with the current rules.",
)
def plugin_scan_report(
    context: AssetExecutionContext, platform: PlatformResource
) -> MaterializeResult:
    stores, namespace, doc = _version(context, platform)
    with stores.registry.download_archive(doc["archive_key"]) as (path, _sha256):
        try:
            with open_plugin_archive(path) as extracted:
                report = scan_directory(extracted.root)
                violations = [v.model_dump() for v in report.violations]
                passed, files = report.passed, report.files_scanned
        except ArchiveRejected as exc:
            violations, passed, files = [v.model_dump() for v in exc.violations], False, 0
    stores.registry.update_scan_report(namespace, doc["plugin_id"], violations)
    table = "\n".join(
        f"| {v['severity']} | {v['file']}:{v['line']} | {v['message']} |" for v in violations
    )
    if not passed:
        context.log.warning(
            "%s no longer passes the scan: %d violations", doc["plugin_id"], len(violations)
        )
    return MaterializeResult(
        metadata={
            "passed": MetadataValue.bool(passed),
            "files_scanned": MetadataValue.int(files),
            "errors": MetadataValue.int(sum(v["severity"] == "error" for v in violations)),
            "warnings": MetadataValue.int(sum(v["severity"] == "warning" for v in violations)),
            "violations": MetadataValue.md(
                "| severity | where | message |\n|---|---|---|\n" + table if violations else "none"
            ),
        }
    )


@asset(
    partitions_def=plugin_versions_partitions,
    group_name="plugins",
    deps=[plugin_scan_report],
    kinds={"python"},
    description="A registered plugin version: features, feature URIs, parameter schema.",
)
def plugin_version(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
    _, _, doc = _version(context, platform)
    manifest = doc.get("manifest", {})
    return MaterializeResult(
        metadata={
            "plugin_id": doc["plugin_id"],
            "name": doc["name"],
            "version": doc["version"],
            "namespace_id": doc["namespace_id"],
            "org_id": doc["org_id"],
            "sha256": doc["sha256"],
            "feature_uris": MetadataValue.json(doc["feature_uris"]),
            "features": MetadataValue.json(doc["features"]),
            "parameter_schema": MetadataValue.json(manifest.get("parameter_schema") or {}),
            "supported_input_types": MetadataValue.json(manifest.get("supported_input_types", [])),
            "deployment_status": DeploymentStatus.of(doc).value,
            "published_at": doc["created_at"].isoformat(),
        }
    )


plugin_assets_job = define_asset_job(
    "plugin_version_job",
    selection=[plugin_archive, plugin_scan_report, plugin_version],
    partitions_def=plugin_versions_partitions,
)


@sensor(
    job=plugin_assets_job,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Newly confirmed plugin versions -> a partition and a run each.",
)
def plugin_version_sensor(
    context: SensorEvaluationContext, platform: PlatformResource
) -> SensorResult:
    cursors = json.loads(context.cursor) if context.cursor else {}
    requests, keys = [], []
    found = across_planes(
        context,
        platform,
        lambda plane: _new_versions(plane, cursors.get(plane_name(plane))),
        "reading versions",
    )
    for plane, (new, cursor) in found:
        cursors[plane_name(plane)] = cursor
        tags = plane_tags(plane, "plugins")
        requests += [RunRequest(partition_key=key, run_key=key, tags=tags) for key in new]
        keys += new
    if not requests:
        return SensorResult(skip_reason="no new plugin versions", cursor=json.dumps(cursors))
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[plugin_versions_partitions.build_add_request(keys)],
        cursor=json.dumps(cursors),
    )


def _new_versions(plane: Any, cursor: dict[str, Any] | None) -> tuple[list[str], dict[str, Any]]:
    """Partition keys of one plane's versions confirmed since ``cursor``, and the next cursor
    (the newest ``created_at`` and the keys seen at it)."""
    from datetime import datetime

    cursor = cursor or {"after": None, "seen": []}
    after = datetime.fromisoformat(cursor["after"]) if cursor["after"] else None
    docs = plane.registry.versions_since(after)
    seen = set(cursor["seen"])
    keys = [partition_key(d["namespace_id"], d["plugin_id"]) for d in docs]
    new = [key for key in keys if key not in seen]
    if not new:
        return [], cursor
    newest = docs[-1]["created_at"]
    at_newest = [key for key, d in zip(keys, docs, strict=True) if d["created_at"] == newest]
    return new, {"after": newest.isoformat(), "seen": at_newest}


PLUGIN_ASSET_KEYS = [
    AssetKey("plugin_archive"),
    AssetKey("plugin_scan_report"),
    AssetKey("plugin_version"),
]


@asset(
    partitions_def=plugin_versions_partitions,
    group_name="plugins",
    deps=[plugin_version],
    kinds={"ray"},
    description="A version's realtime Serve application: each materialisation is a rollout "
    "(QUEUED -> PENDING -> IN_PROGRESS -> DEPLOYED / FAILED), blue-green per version.",
)
def plugin_deployment(
    context: AssetExecutionContext, platform: PlatformResource
) -> MaterializeResult:
    stores, _, _ = _version(context, platform)
    namespace_id, _, plugin_id = context.partition_key.partition(SEPARATOR)
    outcome = stores.deployer.rollout(namespace_id, plugin_id, log=context.log.info)
    if outcome["status"] != DeploymentStatus.DEPLOYED.value:
        raise RuntimeError(f"{plugin_id} failed to deploy: {outcome['error']}")
    return MaterializeResult(
        metadata={
            "status": outcome["status"],
            "route_prefix": outcome["route_prefix"],
            "rollout_seconds": MetadataValue.float(outcome["seconds"]),
        }
    )


plugin_deployment_job = define_asset_job(
    "plugin_deployment_job",
    selection=[plugin_deployment],
    partitions_def=plugin_versions_partitions,
)
serve_removal_job_name = "serve_removal_job"


@sensor(
    job=plugin_deployment_job,
    minimum_interval_seconds=5,
    default_status=DefaultSensorStatus.RUNNING,
    description="Deploy requests (QUEUED) -> a rollout run each; queued removals are applied; "
    "DEPLOYED versions missing after a restart are queued again.",
)
def plugin_deployment_sensor(
    context: SensorEvaluationContext, platform: PlatformResource
) -> SensorResult:
    requests = [
        request
        for _, found in across_planes(
            context, platform, lambda plane: _deploy_requests(context, plane), "deploy requests"
        )
        for request in found
    ]
    serves: set[str] = set()  # one ingestion service per Serve (planes may share a cluster)
    across_planes(
        context, platform, lambda plane: _ensure_ingest_service(context, plane, serves), "ingest"
    )
    keys = [r.partition_key for r in requests if r.partition_key]
    if not requests:
        return SensorResult(skip_reason="no deploy requests")
    return SensorResult(
        run_requests=requests,
        dynamic_partitions_requests=[plugin_versions_partitions.build_add_request(keys)],
    )


def _ensure_ingest_service(context: SensorEvaluationContext, plane: Any, seen: set[str]) -> None:
    """Deploy the ingestion service where a restarted Ray lost it."""
    from mixpeek_orchestration.platform import ingest_service

    if plane.serve.url in seen:
        return
    seen.add(plane.serve.url)
    try:
        routes = {prefix.rstrip("/") for prefix in plane.serve.routes()}
    except Exception:  # Serve not reachable yet: the next tick looks again
        return
    if ingest_service.INGEST_ROUTE not in routes:
        context.log.info("the ingestion service is missing at %s: deploying it", plane.serve.url)
        ingest_service.deploy(plane)


def _deploy_requests(context: SensorEvaluationContext, plane: Any) -> list[RunRequest]:
    """One plane's removals applied, lost deployments re-queued, and a rollout run request per
    queued deploy (marked PENDING)."""
    deployer = plane.deployer
    removals = deployer.pending_removals()
    if removals:
        removed = deployer.remove_apps(removals)
        context.log.info("removed Serve applications: %s", removed)
    requeued = deployer.reconcile_after_restart()
    if requeued:
        context.log.info("re-deploying after a restart: %s", requeued)
    requests = []
    tags = plane_tags(plane, "deploy")
    for doc in deployer.pending():
        key = partition_key(doc["namespace_id"], doc["plugin_id"])
        requested_at = doc["deployment"].get("requested_at")
        deployer.mark(doc["namespace_id"], doc["plugin_id"], DeploymentStatus.PENDING)
        requests.append(RunRequest(partition_key=key, run_key=f"{key}@{requested_at}", tags=tags))
    return requests
