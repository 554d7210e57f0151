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

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.engine import make_room
from mixpeek_orchestration.plugins.fetch import plugin_spec
from mixpeek_orchestration.serve.naming import app_name, route_prefix
from mixpeek_orchestration.tenancy.accounts import Caller, Namespace, now

if TYPE_CHECKING:
    from mixpeek_orchestration.platform import Platform

logger = logging.getLogger(__name__)

ESTIMATED_SECONDS = 60
ROLLOUT_TIMEOUT_S = 600.0


def serve_options(
    manifest: dict[str, Any], app: str, override: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Deployment options from the manifest's ``serve_config`` (autoscaling, resources), with
    the operator's ``override`` (the tenant's overrides file, SPEC §10) on top."""
    config = (manifest.get("serve_config") or {}) | (override or {})
    if override and ("min_replicas" in override or "max_replicas" in override):
        config.pop("num_replicas", None)  # the operator asked for autoscaling
    actor: dict[str, Any] = {"num_cpus": float(config.get("num_cpus", 1.0))}
    num_gpus = float(config.get("num_gpus", 0.0))
    if num_gpus:
        actor["num_gpus"] = num_gpus
    if config.get("memory_gb"):
        actor["memory"] = int(float(config["memory_gb"]) * 1024**3)
    options: dict[str, Any] = {"name": app, "ray_actor_options": actor, "max_ongoing_requests": 64}
    if config.get("num_replicas") is not None:
        options["num_replicas"] = int(config["num_replicas"])
    else:
        options["autoscaling_config"] = {
            "min_replicas": int(config.get("min_replicas", 1)),
            "max_replicas": int(config.get("max_replicas", 1)),
            "target_ongoing_requests": float(config.get("target_ongoing_requests", 2.0)),
            "downscale_delay_s": float(config.get("downscale_delay_s", 600.0)),
            "upscale_delay_s": float(config.get("upscale_delay_s", 5.0)),
        }
    return options


def initial_need(options: dict[str, Any]) -> dict[str, float]:
    """What a Serve application's first replicas ask of the cluster."""
    replicas = options.get("num_replicas") or (options.get("autoscaling_config") or {}).get(
        "min_replicas", 1
    )
    actor = options.get("ray_actor_options") or {}
    return {
        "CPU": float(actor.get("num_cpus", 1.0)) * max(1, int(replicas)),
        "GPU": float(actor.get("num_gpus", 0.0)) * max(1, int(replicas)),
    }


class Deployer:
    """Deployment state in the metadata store, and rollouts on the configured Serve cluster."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.versions = platform.registry.versions
        self.plugins = platform.registry.plugins

    # -- requests (API) -------------------------------------------------------------------------

    def request_deploy(
        self, caller: Caller, namespace: Namespace, plugin_id: str, *, batch_only: bool = False
    ) -> dict[str, Any]:
        doc = self.platform.registry.get_version(namespace, plugin_id)
        prefix = route_prefix(namespace.namespace_id, plugin_id)
        scope = {
            "org_id": namespace.org_id,
            "namespace_id": namespace.namespace_id,
            "plugin_id": plugin_id,
        }
        if batch_only:
            self.versions.update_one(scope, {"$set": {"deployment.mode": "batch_only"}})
            return {
                "status": "not_deployed",
                "message": "Batch-only: the plugin runs in ingestion; no realtime endpoint is deployed.",
                "route_prefix": prefix,
                "estimated_completion_seconds": 0,
            }
        if doc.get("name") in self.platform.overrides().disabled:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"{doc.get('name')} is disabled by this installation's overrides file "
                f"({self.platform.settings.overrides_file}); an operator must enable it first",
                plugin_id=plugin_id,
            )
        if not doc.get("manifest", {}).get("has_realtime", False):
            raise MixpeekError(
                ErrorCode.INVALID_PLUGIN,
                f"{plugin_id} has no realtime.py; deploy it with ?deployment_type=batch_only",
                plugin_id=plugin_id,
            )
        self.versions.update_one(
            scope,
            {
                "$set": {
                    "deployment.status": "QUEUED",
                    "deployment.desired": "deployed",
                    "deployment.mode": "realtime",
                    "deployment.requested_at": now(),
                    "deployment.requested_by": caller.key_prefix,
                    "deployment.error": None,
                }
            },
        )
        return {
            "status": "queued",
            "message": "Plugin queued for deployment. Will start within 30 seconds.",
            "route_prefix": prefix,
            "estimated_completion_seconds": ESTIMATED_SECONDS,
        }

    def request_removal(self, namespace: Namespace, plugin_id: str) -> bool:
        """Queue the removal of a version's Serve application; ``True`` if one was deployed."""
        doc = self.platform.registry.get_version(namespace, plugin_id)
        deployment = doc.get("deployment", {})
        had_app = deployment.get("status") in ("QUEUED", "PENDING", "IN_PROGRESS", "DEPLOYED")
        self.versions.update_one(
            {
                "org_id": namespace.org_id,
                "namespace_id": namespace.namespace_id,
                "plugin_id": plugin_id,
            },
            {
                "$set": {
                    "deployment.status": "NOT_DEPLOYED",
                    "deployment.desired": "undeployed",
                    "deployment.removal_pending": had_app,
                }
            },
        )
        if had_app:
            self._record_removal_intent(namespace, plugin_id)
        return had_app

    def _record_removal_intent(self, namespace: Namespace, plugin_id: str) -> None:
        """Removals survive the version's record (``delete``): keep them in their own collection."""
        self.platform.metadata.collection("serve_removals").update_one(
            {"app": app_name(namespace.namespace_id, plugin_id)},
            {"$set": {"app": app_name(namespace.namespace_id, plugin_id), "requested_at": now()}},
            upsert=True,
        )

    # -- work (Dagster) -------------------------------------------------------------------------

    def pending(self) -> list[dict[str, Any]]:
        return list(
            self.versions.find(
                {"deployment.status": "QUEUED"},
                {"namespace_id": 1, "plugin_id": 1, "deployment": 1},
            )
        )

    def pending_removals(self) -> list[str]:
        return [d["app"] for d in self.platform.metadata.collection("serve_removals").find({})]

    def mark(self, namespace_id: str, plugin_id: str, status: str, **fields: Any) -> None:
        update = {"deployment.status": status, **{f"deployment.{k}": v for k, v in fields.items()}}
        self.versions.update_one(
            {"namespace_id": namespace_id, "plugin_id": plugin_id}, {"$set": update}
        )

    def remove_apps(self, apps: list[str]) -> list[str]:
        from ray import serve

        self.platform.ray.connect()
        running = set(serve.status().applications)
        removed = []
        for app in apps:
            if app in running:
                serve.delete(app)
                removed.append(app)
            self.platform.metadata.collection("serve_removals").delete_one({"app": app})
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

        doc = self.versions.find_one({"namespace_id": namespace_id, "plugin_id": plugin_id})
        if doc is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"{plugin_id} no longer exists")
        app = app_name(namespace_id, plugin_id)
        prefix = route_prefix(namespace_id, plugin_id)
        self.mark(namespace_id, plugin_id, "IN_PROGRESS", started_at=now())
        spec = plugin_spec(doc, self.platform.objects)
        override = self.platform.overrides().for_extractor(doc.get("name", ""))
        options = serve_options(doc.get("manifest", {}), "plugin", override.serve_config())
        self.platform.ray.connect()
        self.platform.serve.start()
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
            self.mark(namespace_id, plugin_id, "FAILED", error=error, failed_at=now())
            return {"status": "FAILED", "error": error, "seconds": elapsed}
        self.mark(
            namespace_id, plugin_id, "DEPLOYED", deployed_at=now(), error=None, route_prefix=prefix
        )
        self._move_alias(doc)
        log(f"{app} running after {elapsed}s")
        return {"status": "DEPLOYED", "seconds": elapsed, "route_prefix": prefix}

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

    def _move_alias(self, doc: dict[str, Any]) -> None:
        """Point the plugin's name at this version if it is the active one (blue-green switch)."""
        self.plugins.update_one(
            {
                "org_id": doc["org_id"],
                "namespace_id": doc["namespace_id"],
                "name": doc["name"],
                "active_plugin_id": doc["plugin_id"],
            },
            {"$set": {"serving_plugin_id": doc["plugin_id"], "serving_since": now()}},
        )

    def reconcile_after_restart(self) -> list[str]:
        """Queue again the DEPLOYED versions whose Serve application no longer exists."""
        try:
            routes = self.platform.serve.routes()
        except Exception:  # Serve not reachable yet: try on the next tick
            return []
        live = {prefix.rstrip("/") for prefix in routes}
        requeued = []
        for doc in self.versions.find(
            {"deployment.status": "DEPLOYED"}, {"namespace_id": 1, "plugin_id": 1}
        ):
            if route_prefix(doc["namespace_id"], doc["plugin_id"]) not in live:
                self.mark(
                    doc["namespace_id"],
                    doc["plugin_id"],
                    "QUEUED",
                    requested_at=now(),
                    reason="redeploy after restart",
                )
                requeued.append(doc["plugin_id"])
        return requeued

    # -- serving (API) --------------------------------------------------------------------------

    def serving_version(self, namespace: Namespace, name: str) -> dict[str, Any]:
        """The version the plugin's name currently routes to."""
        plugin = self.plugins.find_one(
            {"org_id": namespace.org_id, "namespace_id": namespace.namespace_id, "name": name}
        )
        if plugin is None:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"Plugin {name!r} not found", name=name)
        plugin_id = plugin.get("serving_plugin_id")
        if not plugin_id:
            raise MixpeekError(
                ErrorCode.NOT_DEPLOYED,
                f"Plugin {name!r} has no deployed realtime version; POST .../plugins/{plugin['active_plugin_id']}/deploy",
                name=name,
            )
        return self.platform.registry.get_version(namespace, plugin_id)


def _first_error(message: str) -> str:
    lines = [line for line in message.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or "Exception" in line:
            return line.strip()[:1000]
    return (lines[-1] if lines else "deployment failed")[:1000]
