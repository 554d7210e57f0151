"""Ray Serve adapter: start Serve's HTTP proxy on a cluster, deploy applications, check health.

Serve's controller is a detached actor, so applications keep serving after the driver that
deployed them exits. The skeleton application (``/skeleton``) proves the realtime path end to end
before any plugin is deployed.
"""

from __future__ import annotations

from typing import Any

import httpx

from mixpeek_orchestration.compute.ray_cluster import RayCluster
from mixpeek_orchestration.health import ComponentHealth

SKELETON_APP = "skeleton"
SKELETON_ROUTE = "/skeleton"
INGEST_APP = "mixpeek-ingest"
INGEST_ROUTE = "/ingest"
"""The ingestion service (``platform/ingest_service.py``), which Dagster runs post batches to."""


class ServeCluster:
    """Ray Serve running on ``ray`` with its HTTP proxy at ``host:port``."""

    def __init__(self, ray: RayCluster, *, host: str, port: int) -> None:
        self.ray = ray
        self.host = host
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Start Serve (idempotent) with its proxy bound to this adapter's host and port."""
        from ray import serve

        self.ray.connect()
        serve.start(http_options={"host": self.host, "port": self.port})

    def deploy_skeleton(self) -> None:
        """Deploy the skeleton echo application at ``/skeleton``."""
        from ray import serve

        from mixpeek_orchestration.compute._skeleton_app import build_skeleton_app

        self.start()
        serve.run(build_skeleton_app(), name=SKELETON_APP, route_prefix=SKELETON_ROUTE)

    def replicas(self, app: str) -> int:
        """Running replicas of an application (0: scaled to zero, or not there)."""
        from ray import serve
        from ray.serve.schema import ReplicaState

        self.ray.connect()
        status = serve.status().applications.get(app)
        if status is None:
            return 0
        return sum(
            d.replica_states.get(ReplicaState.RUNNING, 0) for d in status.deployments.values()
        )

    def routes(self) -> dict[str, str]:
        response = httpx.get(f"{self.url}/-/routes", timeout=3.0)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def call(self, route: str, payload: dict[str, Any], *, timeout_s: float = 10.0) -> Any:
        response = httpx.post(f"{self.url}{route}", json=payload, timeout=timeout_s)
        response.raise_for_status()
        return response.json()

    def submit(
        self, route: str, payload: dict[str, Any], *, connect_timeout_s: float = 10.0
    ) -> Any:
        """POST ``payload`` to an application that may work a long time before it answers (no
        read timeout); its error answers raise with their ``detail`` and ``code``."""
        from mixpeek_orchestration.errors import ErrorCode, MixpeekError

        try:
            response = httpx.post(
                f"{self.url}{route}",
                json=payload,
                timeout=httpx.Timeout(connect_timeout_s, read=None),
            )
        except httpx.TransportError as exc:
            raise MixpeekError(
                ErrorCode.COMPONENT_UNAVAILABLE,
                f"Ray Serve is not reachable at {self.url}: {exc}",
                component="serve",
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text[:500]}
        if response.status_code == 404 and "code" not in body:
            raise MixpeekError(
                ErrorCode.COMPONENT_UNAVAILABLE,
                f"No Serve application answers at {route} (is the stack up to date?)",
                component="serve",
            )
        if response.status_code >= 400:
            code = body.get("code")
            known = {c.value: c for c in ErrorCode}
            raise MixpeekError(
                known.get(code, ErrorCode.INTERNAL_ERROR),
                str(body.get("detail") or f"{route} answered HTTP {response.status_code}"),
            )
        return body

    def health(self) -> ComponentHealth:
        response = httpx.get(f"{self.url}/-/healthz", timeout=3.0)
        if response.status_code != 200:
            return ComponentHealth.error(f"Serve proxy answered HTTP {response.status_code}")
        routes = self.routes()
        return ComponentHealth.ok(f"Serve proxy at {self.url}, {len(routes)} application(s)")
