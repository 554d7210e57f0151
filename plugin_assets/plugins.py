"""Plugins in Dagster: one asset per plugin, its versions as partitions; rollouts as a job.

``{org}/{namespace}/plugins/{name}`` is partitioned by the plugin's versions (``1.0.0``,
``1.1.0``, ...); the collections that pin a version are downstream of that partition. The
``plugin_version_sensor`` materialises every newly registered version, so each shows up with its
metadata (archive sha256 re-hashed from the object store, scan verdict and violations with the
current rules, features, feature URIs, parameter schema). Re-materialising a version re-scans
its stored archive (e.g. after the scanner changed) and records the new report on it.
"""

import hashlib
import json
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    DefaultSensorStatus,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    StaticPartitionsDefinition,
    asset,
    job,
    op,
    sensor,
)

from mixpeek_orchestration.plugins.archive import ArchiveRejected, open_plugin_archive
from mixpeek_orchestration.plugins.records import DeploymentStatus
from mixpeek_orchestration.plugins.registry import version_key
from mixpeek_orchestration.plugins.scanner import scan_directory
from mixpeek_orchestration.tenancy.accounts import Namespace
from plugin_assets.keys import Keys
from plugin_assets.resources import PlatformResource, across_planes, plane_name, plane_tags
from plugin_assets.state import PlatformState, VersionRef

ASSET_JOB = "__ASSET_JOB"


def plugin_asset(versions: list[VersionRef], keys: Keys) -> AssetsDefinition:
    """The asset of one plugin of one namespace; ``versions`` are its versions, oldest first."""
    first = versions[0]
    by_version = {v.version: v for v in sorted(versions, key=lambda v: version_key(v.version))}

    @asset(
        key=keys.plugin(first.namespace_id, first.name),
        partitions_def=StaticPartitionsDefinition(list(by_version)),
        group_name=keys.group(first.namespace_id),
        kinds={"python"},
        tags=keys.tags(first.namespace_id, first.plane),
        description=f"Plugin {first.name!r}: each partition is a registered version (its "
        "stored archive, re-hashed and re-scanned with the current rules).",
        metadata={"namespace_id": first.namespace_id, "plane": first.plane},
    )
    def plugin(context: AssetExecutionContext, platform: PlatformResource) -> MaterializeResult:
        return materialize_version(context, platform, by_version[context.partition_key])

    return plugin


def materialize_version(
    context: AssetExecutionContext, platform: PlatformResource, ref: VersionRef
) -> MaterializeResult:
    """Re-hash the stored archive, scan it with the current rules, record the report."""
    stores = platform.plane(ref.plane)
    doc = stores.registry.version_record(ref.namespace_id, ref.plugin_id)
    if doc is None:
        raise ValueError(f"plugin version {ref.name} {ref.version} no longer exists")
    digest, size = hashlib.sha256(), 0
    with stores.objects.open_read(doc["archive_key"]) as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    if digest.hexdigest() != doc["sha256"]:
        raise ValueError(
            f"archive of {doc['plugin_id']} changed: sha256 {digest.hexdigest()} != {doc['sha256']}"
        )
    namespace = Namespace(doc["namespace_id"], "", doc["org_id"], "", doc["created_at"])
    with stores.registry.download_archive(doc["archive_key"]) as (path, _sha256):
        try:
            with open_plugin_archive(path) as extracted:
                report = scan_directory(extracted.root)
                violations = [v.model_dump() for v in report.violations]
                passed, files = report.passed, report.files_scanned
        except ArchiveRejected as exc:
            violations, passed, files = [v.model_dump() for v in exc.violations], False, 0
    stores.registry.update_scan_report(namespace, doc["plugin_id"], violations)
    if not passed:
        context.log.warning(
            "%s no longer passes the scan: %d violations", doc["plugin_id"], len(violations)
        )
    table = "\n".join(
        f"| {v['severity']} | {v['file']}:{v['line']} | {v['message']} |" for v in violations
    )
    manifest = doc.get("manifest", {})
    return MaterializeResult(
        metadata={
            "plugin_id": doc["plugin_id"],
            "name": doc["name"],
            "version": doc["version"],
            "sha256": doc["sha256"],
            "size_bytes": MetadataValue.int(size),
            "object_key": doc["archive_key"],
            "files": MetadataValue.int(len(doc.get("files", {}))),
            "published_by": doc["created_by"],
            "message": doc.get("message", ""),
            "scan_passed": MetadataValue.bool(passed),
            "files_scanned": MetadataValue.int(files),
            "scan_errors": MetadataValue.int(sum(v["severity"] == "error" for v in violations)),
            "scan_warnings": MetadataValue.int(sum(v["severity"] == "warning" for v in violations)),
            "violations": MetadataValue.md(
                "| severity | where | message |\n|---|---|---|\n" + table if violations else "none"
            ),
            "feature_uris": MetadataValue.json(doc["feature_uris"]),
            "features": MetadataValue.json(doc["features"]),
            "parameter_schema": MetadataValue.json(manifest.get("parameter_schema") or {}),
            "supported_input_types": MetadataValue.json(manifest.get("supported_input_types", [])),
            "deployment_status": DeploymentStatus.of(doc).value,
            "published_at": doc["created_at"].isoformat(),
        }
    )


def plugin_version_sensor(state: PlatformState, keys: Keys) -> Any:
    """Materialise each version of ``state`` registered since the cursor. A version newer than
    the snapshot waits for the reload that adds its partition (``platform_state_sensor``)."""

    @sensor(
        job_name=ASSET_JOB,
        minimum_interval_seconds=5,
        default_status=DefaultSensorStatus.RUNNING,
        description="Newly registered plugin versions -> a materialisation of that version.",
    )
    def plugin_version_sensor(
        context: SensorEvaluationContext, platform: PlatformResource
    ) -> SensorResult:
        cursors = json.loads(context.cursor) if context.cursor else {}
        requests = []
        by_plane: dict[str, list[VersionRef]] = {}
        for v in state.versions:
            by_plane.setdefault(v.plane, []).append(v)
        for plane, versions in by_plane.items():
            new, cursors[plane] = _new_versions(versions, cursors.get(plane))
            requests += [
                RunRequest(
                    partition_key=v.version,
                    run_key=f"{v.namespace_id}__{v.plugin_id}",
                    asset_selection=[keys.plugin(v.namespace_id, v.name)],
                    tags=plane_tags(platform.plane(plane), "plugins") | {"mixpeek/kind": "plugins"},
                )
                for v in new
            ]
        if not requests:
            return SensorResult(skip_reason="no new plugin versions", cursor=json.dumps(cursors))
        return SensorResult(run_requests=requests, cursor=json.dumps(cursors))

    return plugin_version_sensor


def _new_versions(
    versions: list[VersionRef], cursor: list[str] | None
) -> tuple[list[VersionRef], list[str]]:
    """The versions not in ``cursor`` (the plugin ids already requested), and the next one. A
    fresh sensor (no cursor) requests every version of the snapshot once."""
    seen = set(cursor or [])
    new = [v for v in versions if v.plugin_id not in seen]
    return new, sorted(seen | {v.plugin_id for v in versions})


class RolloutConfig(Config):
    namespace_id: str
    plugin_id: str
    plane: str = "shared"


@op(description="Roll a version out to Ray Serve (QUEUED -> PENDING -> IN_PROGRESS -> "
    "DEPLOYED / FAILED), blue-green per version.")  # fmt: skip
def rollout(context: OpExecutionContext, config: RolloutConfig, platform: PlatformResource) -> None:
    stores = platform.plane(config.plane)
    outcome = stores.deployer.rollout(config.namespace_id, config.plugin_id, log=context.log.info)
    if outcome["status"] != DeploymentStatus.DEPLOYED.value:
        raise RuntimeError(f"{config.plugin_id} failed to deploy: {outcome['error']}")
    context.log.info(
        "%s: %s at %s in %.1f s",
        config.plugin_id, outcome["status"], outcome["route_prefix"], outcome["seconds"],
    )  # fmt: skip


@job(description="One rollout of a plugin version's realtime Serve application.")
def plugin_deployment_job() -> None:
    rollout()


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
    if not requests:
        return SensorResult(skip_reason="no deploy requests")
    return SensorResult(run_requests=requests)


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
        key = f"{doc['namespace_id']}__{doc['plugin_id']}"
        requested_at = doc["deployment"].get("requested_at")
        deployer.mark(doc["namespace_id"], doc["plugin_id"], DeploymentStatus.PENDING)
        config = RolloutConfig(
            namespace_id=doc["namespace_id"], plugin_id=doc["plugin_id"], plane=plane_name(plane)
        )
        requests.append(
            RunRequest(
                run_key=f"{key}@{requested_at}",
                run_config={"ops": {"rollout": {"config": config.model_dump()}}},
                tags=tags | {"mixpeek/plugin_id": doc["plugin_id"]},
            )
        )
    return requests
