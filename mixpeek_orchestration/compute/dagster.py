"""Dagster adapter: the webserver's health, the daemon's heartbeats, launching and watching runs.

Talks to a running Dagster webserver over its GraphQL API with plain HTTP, so the API process
does not import Dagster. The code location itself lives in ``plugin_assets``.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.health import ComponentHealth

CODE_LOCATION = "plugin_assets"
REPOSITORY = "__repository__"
TERMINAL_RUN_STATUSES = {"SUCCESS", "FAILURE", "CANCELED"}

_DAEMON_HEALTH = """
{ instance { daemonHealth { allDaemonStatuses { daemonType healthy required } } } }
"""
_ASSET_KEYS = "{ assetNodes { assetKey { path } } }"
_LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on Error { message }
  }
}
"""
_TERMINATE_RUN = """
mutation Terminate($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
    ... on RunNotFoundError { message }
  }
}
"""
_RUN_STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } ... on Error { message } }
}
"""


_MATERIALIZED = """
query Materialized($key: AssetKeyInput!, $limit: Int) {
  assetOrError(assetKey: $key) {
    __typename
    ... on Asset { assetMaterializations(limit: $limit) { partition runId timestamp } }
  }
}
"""


_ASSET_NODE = """
query Node($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode {
      groupName
      dependencyKeys { path }
      dependedByKeys { path }
      partitionKeys
      assetChecksOrError {
        __typename
        ... on AssetChecks { checks { name executionForLatestMaterialization { status } } }
      }
      assetObservations(limit: 1) {
        metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}
"""
_RELOAD_LOCATION = """
mutation Reload($name: String!) {
  reloadRepositoryLocation(repositoryLocationName: $name) {
    __typename
    ... on WorkspaceLocationEntry {
      locationOrLoadError { __typename ... on PythonError { message } }
    }
    ... on Error { message }
  }
}
"""
_LAUNCH_BACKFILL = """
mutation Backfill($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on Error { message }
  }
}
"""
_BACKFILL_STATUS = """
query Backfill($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename ... on PartitionBackfill { status } ... on Error { message }
  }
}
"""
_SENSOR_TICKS = """
query Ticks($selector: SensorSelector!, $after: Float, $limit: Int) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor {
      sensorState { ticks(afterTimestamp: $after, limit: $limit) { timestamp endTimestamp status } }
    }
    ... on Error { message }
  }
}
"""
BACKFILL_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


class DagsterWebserver:
    """A Dagster webserver at ``url`` (``http://host:port``)."""

    def __init__(self, url: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            timeout=self.timeout_s,
        )
        response.raise_for_status()
        body = response.json()
        if body.get("errors"):
            raise MixpeekError(
                ErrorCode.COMPONENT_UNAVAILABLE,
                f"Dagster GraphQL error: {body['errors'][0].get('message')}",
                component="dagster",
            )
        return body["data"]  # type: ignore[no-any-return]

    def server_info(self) -> dict[str, Any]:
        response = httpx.get(f"{self.url}/server_info", timeout=self.timeout_s)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def daemon_statuses(self) -> dict[str, bool]:
        data = self.graphql(_DAEMON_HEALTH)
        statuses = data["instance"]["daemonHealth"]["allDaemonStatuses"]
        return {s["daemonType"]: bool(s["healthy"]) for s in statuses if s["required"]}

    def asset_keys(self) -> list[str]:
        data = self.graphql(_ASSET_KEYS)
        return ["/".join(node["assetKey"]["path"]) for node in data["assetNodes"]]

    def materialized_partitions(self, asset_key: str, *, limit: int = 1000) -> list[str]:
        """Partitions of ``asset_key`` that have been materialised (newest first)."""
        data = self.graphql(_MATERIALIZED, {"key": {"path": asset_key.split("/")}, "limit": limit})
        node = data["assetOrError"]
        if node["__typename"] != "Asset":
            return []
        return [m["partition"] for m in node["assetMaterializations"] if m["partition"]]

    def asset_node(self, asset_key: str) -> dict[str, Any] | None:
        """An asset as the UI shows it: group, upstream and downstream keys, partitions, its
        checks' latest status (by name) and its latest observation's integer metadata
        (``None``: no such asset in the loaded definitions)."""
        data = self.graphql(_ASSET_NODE, {"key": {"path": asset_key.split("/")}})
        node = data["assetNodeOrError"]
        if node["__typename"] != "AssetNode":
            return None
        checks = node["assetChecksOrError"]
        return {
            "group": node["groupName"],
            "upstream": ["/".join(k["path"]) for k in node["dependencyKeys"]],
            "downstream": ["/".join(k["path"]) for k in node["dependedByKeys"]],
            "partitions": node["partitionKeys"],
            "checks": {
                c["name"]: (c["executionForLatestMaterialization"] or {}).get("status")
                for c in checks.get("checks", [])
            },
            "observed": {
                e["label"]: e["intValue"]
                for o in node["assetObservations"][:1]
                for e in o["metadataEntries"]
                if "intValue" in e
            },
        }

    def reload_location(self, name: str = CODE_LOCATION) -> None:
        """Reload a code location (the UI's "Reload" button); raises if it then fails to load."""
        result = self.graphql(_RELOAD_LOCATION, {"name": name})["reloadRepositoryLocation"]
        error = (result.get("locationOrLoadError") or {}).get("message") or result.get("message")
        if error:
            raise MixpeekError(
                ErrorCode.STACK_ERROR, f"code location {name} failed to load: {error}"
            )

    def backfill(self, asset_key: str, partitions: list[str] | None = None) -> str:
        """Materialise ``partitions`` of an asset (every partition when ``None``), as the UI's
        "Materialize all" does; returns the backfill id."""
        params: dict[str, Any] = {"assetSelection": [{"path": asset_key.split("/")}]}
        if partitions is None:
            params["allPartitions"] = True
        else:
            params["partitionNames"] = partitions
        result = self.graphql(_LAUNCH_BACKFILL, {"params": params})["launchPartitionBackfill"]
        if result["__typename"] != "LaunchBackfillSuccess":
            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                f"Dagster refused the backfill of {asset_key}: "
                f"{result.get('message', result['__typename'])}",
            )
        return result["backfillId"]  # type: ignore[no-any-return]

    def backfill_status(self, backfill_id: str) -> str:
        result = self.graphql(_BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        if result["__typename"] != "PartitionBackfill":
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"Dagster backfill {backfill_id}: {result.get('message')}"
            )
        return result["status"]  # type: ignore[no-any-return]

    def sensor_ticks(
        self, sensor: str, *, after: float | None = None, limit: int = 200
    ) -> list[dict[str, Any]]:
        """A sensor's ticks since ``after`` (a Unix time), newest first: ``timestamp``,
        ``endTimestamp`` (``None`` while it runs) and ``status``."""
        selector = {
            "repositoryLocationName": CODE_LOCATION,
            "repositoryName": REPOSITORY,
            "sensorName": sensor,
        }
        data = self.graphql(_SENSOR_TICKS, {"selector": selector, "after": after, "limit": limit})
        node = data["sensorOrError"]
        if node["__typename"] != "Sensor":
            raise MixpeekError(ErrorCode.NOT_FOUND, f"sensor {sensor}: {node.get('message')}")
        return node["sensorState"]["ticks"]  # type: ignore[no-any-return]

    def launch_job(self, job_name: str, *, run_config: dict[str, Any] | None = None) -> str:
        """Launch a job of the ``plugin_assets`` code location; returns the run id."""
        params = {
            "selector": {
                "repositoryLocationName": CODE_LOCATION,
                "repositoryName": REPOSITORY,
                "jobName": job_name,
            },
            "runConfigData": run_config or {},
        }
        result = self.graphql(_LAUNCH_RUN, {"params": params})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                f"Dagster refused to launch {job_name}: {result.get('message', result['__typename'])}",
            )
        return result["run"]["runId"]  # type: ignore[no-any-return]

    def run_status(self, run_id: str) -> str:
        result = self.graphql(_RUN_STATUS, {"runId": run_id})["runOrError"]
        if result["__typename"] != "Run":
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"Dagster run {run_id}: {result.get('message')}"
            )
        return result["status"]  # type: ignore[no-any-return]

    def terminate_run(self, run_id: str) -> None:
        """Ask Dagster to stop a run (its worker gets SIGTERM; the run ends CANCELED)."""
        result = self.graphql(_TERMINATE_RUN, {"runId": run_id})["terminateRun"]
        if result["__typename"] != "TerminateRunSuccess":
            raise MixpeekError(
                ErrorCode.STACK_ERROR,
                f"Dagster did not terminate run {run_id}: {result.get('message', result['__typename'])}",
            )

    def wait_for_run(self, run_id: str, *, timeout_s: float = 300.0, poll_s: float = 1.0) -> str:
        """Poll a run until it ends; returns its final status (``SUCCESS``, ``FAILURE``, ...)."""
        deadline = time.monotonic() + timeout_s
        while True:
            status = self.run_status(run_id)
            if status in TERMINAL_RUN_STATUSES:
                return status
            if time.monotonic() > deadline:
                raise MixpeekError(
                    ErrorCode.STACK_ERROR, f"Dagster run {run_id} still {status} after {timeout_s}s"
                )
            time.sleep(poll_s)

    def health(self) -> ComponentHealth:
        info = self.server_info()
        daemons = self.daemon_statuses()
        unhealthy = sorted(name for name, healthy in daemons.items() if not healthy)
        version = info.get("dagster_version", "?")
        if unhealthy:
            return ComponentHealth.error(
                f"webserver {version} up, daemon not healthy: {', '.join(unhealthy)}"
            )
        return ComponentHealth.ok(
            f"webserver {version} at {self.url}, {len(daemons)} daemons healthy"
        )
