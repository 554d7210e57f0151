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
