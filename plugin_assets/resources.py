"""Dagster resources wrapping the platform's adapters (one per external system).

Each resource is configured from ``MIXPEEK_*`` environment variables (shown by name, not value,
in the Dagster UI) and hands out the domain adapter through ``get_client()``.
"""

from __future__ import annotations

from dagster import ConfigurableResource

from mixpeek_orchestration.compute.ray_cluster import RayCluster


class RayResource(ConfigurableResource):  # type: ignore[type-arg]
    """The Ray cluster that ingestion runs submit Ray Data jobs to."""

    address: str
    dashboard_url: str | None = None

    def get_client(self) -> RayCluster:
        return RayCluster(self.address, dashboard_url=self.dashboard_url or None)
