"""Dagster resources wrapping the platform's adapters (one per external system).

Each resource is configured from ``MIXPEEK_*`` environment variables (shown by name, not value,
in the Dagster UI) and hands out the domain adapter through ``get_client()``.
"""

from __future__ import annotations

from dagster import ConfigurableResource

from mixpeek_orchestration.compute.ray_cluster import RayCluster
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.settings import load_settings


class RayResource(ConfigurableResource):  # type: ignore[type-arg]
    """The Ray cluster that ingestion runs submit Ray Data jobs to."""

    address: str
    dashboard_url: str | None = None

    def get_client(self) -> RayCluster:
        return RayCluster(self.address, dashboard_url=self.dashboard_url or None)


class PlatformResource(ConfigurableResource):  # type: ignore[type-arg]
    """The platform's stores (metadata, objects, vectors) for this stack.

    ``data_dir`` and ``mongo_uri`` come from the ``MIXPEEK_*`` environment ``mixpeek up`` gives
    the code location; everything else (S3, ...) is read from the same environment.
    """

    data_dir: str
    mongo_uri: str

    def get_platform(self) -> Platform:
        return Platform(load_settings(data_dir=self.data_dir, mongo_uri=self.mongo_uri))
