"""Deploying plugin versions to Ray Serve: requests, rollouts, removal, the name alias.

The API only *requests* (``QUEUED``); a Dagster sensor hands each request to the
``plugin_deployment`` asset, which calls :meth:`Deployer.rollout`:

``QUEUED -> PENDING -> IN_PROGRESS -> DEPLOYED`` or ``FAILED`` (with ``error``).

Blue-green: every version is its own Serve application under its own route prefix, so rolling
out a new version never touches the one serving. The plugin's *name* alias (what
``/v1/inference`` and by-name calls use) moves to the new version only once its application is
``RUNNING``; a version that fails to start is removed again, marked ``FAILED`` with the reason,
and the alias keeps pointing at the previous version.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.compute.resources import make_room
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.fetch import plugin_spec
from mixpeek_orchestration.plugins.records import (
    DeploymentStatus,
    PluginVersion,
    app_name,
    route_prefix,
)
from mixpeek_orchestration.serve.options import initial_need, serve_options
from mixpeek_orchestration.storage.ids import now
from mixpeek_orchestration.tenancy.accounts import Caller, Namespace

if TYPE_CHECKING:
    from mixpeek_orchestration.compute.ray_cluster import RayCluster
    from mixpeek_orchestration.compute.serve import ServeCluster
    from mixpeek_orchestration.plugins.registry import PluginRegistry
    from mixpeek_orchestration.sandbox.config import SandboxConfig
    from mixpeek_orchestration.storage.metadata import MetadataStore
    from mixpeek_orchestration.storage.objects import ObjectStore
    from mixpeek_orchestration.tenancy.overrides import Overrides

logger = logging.getLogger(__name__)

ESTIMATED_SECONDS = 60
ROLLOUT_TIMEOUT_S = 600.0


class RemovalQueue:
    """Serve applications whose removal was asked for (``serve_removals``).

    Removals outlive the version's record (a deleted version, a deleted namespace), so they
    are kept apart, by application name, until the sensor has applied them.
    """

    def __init__(self, metadata: MetadataStore) -> None:
        self.removals = metadata.collection("serve_removals")

    def ensure_indexes(self) -> None:
        self.removals.create_index("app", unique=True)

    def add(self, app: str) -> None:
        self.removals.update_one(
            {"app": app}, {"$set": {"app": app, "requested_at": now()}}, upsert=True
        )

    def pending(self) -> list[str]:
        return [d["app"] for d in self.removals.find({}, {"app": 1})]

    def done(self, app: str) -> None:
        self.removals.delete_one({"app": app})


class Deployer:
    """Deployment state in the metadata store, and rollouts on the configured Serve cluster.

    Args:
        registry: the plugin versions whose ``deployment`` it records.
        removals: Serve applications waiting to be removed.
        objects: the object store replicas download archives from (by presigned URL).
        ray, serve: the cluster that hosts the applications.
        overrides: the operator's current overrides (read on every deploy).
        sandbox: how the replicas' plugin hosts are sandboxed.
        plane: the dedicated tenant whose plane this is (``None``: the shared plane).
    """

    def __init__(
        self,
        registry: PluginRegistry,
        removals: RemovalQueue,
        *,
        objects: ObjectStore,
        ray: RayCluster,
        serve: ServeCluster,
        overrides: Callable[[], Overrides],
        sandbox: SandboxConfig,
        plane: str | None = None,
    ) -> None:
        self.plane = plane
        self.registry = registry
        self.removals = removals
        self.objects = objects
        self.ray = ray
        self.serve = serve
        self.overrides = overrides
        self.sandbox = sandbox

    # -- requests (API) -------------------------------------------------------------------------

    def request_deploy(
        self, caller: Caller, namespace: Namespace, plugin_id: str, *, batch_only: bool = False
    ) -> dict[str, Any]:
        doc = self.registry.get_version(namespace, plugin_id)
        prefix = route_prefix(namespace.namespace_id, plugin_id)
        if batch_only:
            self.registry.update_deployment(namespace.namespace_id, plugin_id, mode="batch_only")
            return {
                "status": "not_deployed",
                "message": "Batch-only: the plugin runs in ingestion; no realtime endpoint is deployed.",
                "route_prefix": prefix,
                "estimated_completion_seconds": 0,
            }
        self.overrides().require_enabled(
            doc.get("name", ""), consequence="an operator must enable it before it is deployed"
        )
        if not doc.get("manifest", {}).get("has_realtime", False):
            raise MixpeekError(
                ErrorCode.INVALID_PLUGIN,
                f"{plugin_id} has no realtime.py; deploy it with ?deployment_type=batch_only",
                plugin_id=plugin_id,
            )
        self.registry.update_deployment(
            namespace.namespace_id,
            plugin_id,
            status=DeploymentStatus.QUEUED,
            desired="deployed",
            mode="realtime",
            requested_at=now(),
            requested_by=caller.key_prefix,
            error=None,
        )
        return {
            "status": "queued",
            "message": "Plugin queued for deployment. Will start within 30 seconds.",
            "route_prefix": prefix,
            "estimated_completion_seconds": ESTIMATED_SECONDS,
        }

    def request_removal(self, namespace: Namespace, plugin_id: str) -> bool:
        """Queue the removal of a version's Serve application; ``True`` if one was deployed."""
        doc = self.registry.get_version(namespace, plugin_id)
        had_app = DeploymentStatus.of(doc).holds_an_application
        self.registry.update_deployment(
            namespace.namespace_id,
            plugin_id,
            status=DeploymentStatus.NOT_DEPLOYED,
            desired="undeployed",
            removal_pending=had_app,
        )
        if had_app:
            self.removals.add(app_name(namespace.namespace_id, plugin_id))
        return had_app

    def remove_namespace(self, namespace: Namespace) -> list[str]:
        """Queue the removal of every Serve application of a namespace that is being deleted
        (whatever their versions' state says: an application is removed if it exists)."""
        apps = [
            app_name(namespace.namespace_id, doc["plugin_id"])
            for doc in self.registry.list_plugins(namespace)
        ]
        for app in apps:
            self.removals.add(app)
        return apps

    # -- work (Dagster) -------------------------------------------------------------------------

    def pending(self) -> list[PluginVersion]:
        return self.registry.with_deployment(DeploymentStatus.QUEUED)

    def pending_removals(self) -> list[str]:
        return self.removals.pending()

    def mark(
        self, namespace_id: str, plugin_id: str, status: DeploymentStatus, **fields: Any
    ) -> None:
        self.registry.update_deployment(namespace_id, plugin_id, status=status, **fields)

    def remove_apps(self, apps: list[str]) -> list[str]:
        from ray import serve

        self.ray.connect()
        running = set(serve.status().applications)
        removed = []
        for app in apps:
            if app in running:
                serve.delete(app)
                removed.append(app)
            self.removals.done(app)
        return removed

    def rollout(
        self,
        namespace_id: str,
        plugin_id: str,
        *,
        log: Callable[[str], None] = logger.info,
        timeout_s: float = ROLLOUT_TIMEOUT_S,
    ) -> dict[str, Any]:
        """Deploy one version and wait until it is healthy (or failed); returns the outcome."""
        from ray import serve

        from mixpeek_orchestration.serve.deployment import build_application

        doc = self.registry.version_record(namespace_id, plugin_id)
        if doc is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"{plugin_id} no longer exists")
        app = app_name(namespace_id, plugin_id)
        prefix = route_prefix(namespace_id, plugin_id)
        self.mark(namespace_id, plugin_id, DeploymentStatus.IN_PROGRESS, started_at=now())
        spec = plugin_spec(doc, self.objects, self.sandbox, plane=self.plane)
        override = self.overrides().for_extractor(doc.get("name", ""))
        options = serve_options(doc.get("manifest", {}), "plugin", override.serve_config())
        self.ray.connect()
        self.serve.start()
        make_room(initial_need(options))
        started = time.monotonic()
        log(f"deploying {app} at {prefix} with {options}")
        try:
            serve._run(
                build_application(spec, options=options),
                name=app,
                route_prefix=prefix,
                _blocking=False,
            )
            status, message = self._wait_running(app, timeout_s=timeout_s)
        except Exception as exc:  # the rollout itself failed (bad options, controller error)
            status, message = "DEPLOY_FAILED", f"{type(exc).__name__}: {exc}"
        elapsed = round(time.monotonic() - started, 1)
        if status != "RUNNING":
            error = _first_error(message)
            log(f"{app} failed after {elapsed}s: {error}")
            with contextlib.suppress(Exception):  # already gone
                serve.delete(app)
            self.mark(
                namespace_id, plugin_id, DeploymentStatus.FAILED, error=error, failed_at=now()
            )
            return {"status": DeploymentStatus.FAILED.value, "error": error, "seconds": elapsed}
        self.mark(
            namespace_id,
            plugin_id,
            DeploymentStatus.DEPLOYED,
            deployed_at=now(),
            error=None,
            route_prefix=prefix,
        )
        self.registry.move_alias(doc)
        log(f"{app} running after {elapsed}s")
        return {
            "status": DeploymentStatus.DEPLOYED.value,
            "seconds": elapsed,
            "route_prefix": prefix,
        }

    def _wait_running(self, app: str, *, timeout_s: float) -> tuple[str, str]:
        from ray import serve

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            status = serve.status().applications.get(app)
            # ApplicationStatus is a str enum: compare and report its value, not its repr.
            value = (
                str(getattr(status.status, "value", status.status)) if status is not None else ""
            )
            if value in ("RUNNING", "DEPLOY_FAILED", "UNHEALTHY"):
                assert status is not None
                messages = [status.message] + [
                    d.message for d in status.deployments.values() if d.message
                ]
                return value, "\n".join(m for m in messages if m)
            time.sleep(0.5)
        return (
            "TIMEOUT",
            f"not healthy after {timeout_s:.0f}s (are there enough CPUs / GPUs for its replicas?)",
        )

    def reconcile_after_restart(self) -> list[str]:
        """Queue again the DEPLOYED versions whose Serve application no longer exists."""
        try:
            routes = self.serve.routes()
        except Exception:  # Serve not reachable yet: try on the next tick
            return []
        live = {prefix.rstrip("/") for prefix in routes}
        requeued = []
        for doc in self.registry.with_deployment(DeploymentStatus.DEPLOYED):
            if route_prefix(doc["namespace_id"], doc["plugin_id"]) not in live:
                self.mark(
                    doc["namespace_id"],
                    doc["plugin_id"],
                    DeploymentStatus.QUEUED,
                    requested_at=now(),
                    reason="redeploy after restart",
                )
                requeued.append(doc["plugin_id"])
        return requeued


def _first_error(message: str) -> str:
    lines = [line for line in message.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line.strip()[:1000]
    return (lines[-1] if lines else "deployment failed")[:1000]
