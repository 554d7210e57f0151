"""Dagster resources wrapping the platform's adapters (one per external system).

Each resource is configured from ``MIXPEEK_*`` environment variables (shown by name, not value,
in the Dagster UI) and hands out the domain adapter through ``get_client()``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

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
        """The control plane (which is also the shared data plane), one per process: a sensor
        ticking every few seconds reuses its clients and its tenants' planes."""
        return _control_plane(self.data_dir, self.mongo_uri)

    def planes(self) -> list[Platform]:
        """The shared plane and every tenant's dedicated one: what a sensor walks."""
        return list(self.get_platform().planes.all())

    def plane(self, label: str) -> Platform:
        """The data plane named ``label`` (``shared``, or a dedicated tenant's name)."""
        return self.get_platform().planes.get(None if label == SHARED_PLANE else label)

    def plane_of_run(self, context: Any, holds: Callable[[Platform], bool]) -> Platform:
        """The data plane a run works in: the one its ``mixpeek/plane`` tag names (sensors set
        it), else the one that ``holds`` the run's record (a partition launched by hand)."""
        control = self.get_platform()
        tag = context.run.tags.get(PLANE_TAG)
        if tag is not None:
            return control.planes.get(None if tag == SHARED_PLANE else tag)
        for plane in control.planes.all():
            if holds(plane):
                return plane
        raise ValueError(f"no data plane holds the record of partition {context.partition_key}")


@lru_cache(maxsize=4)
def _control_plane(data_dir: str, mongo_uri: str) -> Platform:
    return Platform(load_settings(data_dir=data_dir, mongo_uri=mongo_uri))


T = TypeVar("T")
PLANE_TAG = "mixpeek/plane"
SHARED_PLANE = "shared"


def plane_name(plane: Platform) -> str:
    return plane.tenant or SHARED_PLANE


def across_planes(
    context: Any, platform: PlatformResource, work: Callable[[Platform], T], doing: str
) -> list[tuple[Platform, T]]:
    """``work(plane)`` for the shared plane, then each tenant's, with its result. A plane that
    fails is logged and left out: one unreachable plane never holds back the others."""
    done = []
    for plane in platform.planes():
        try:
            done.append((plane, work(plane)))
        except Exception as exc:
            context.log.error("data plane %s: %s failed: %s", plane_name(plane), doing, exc)
    return done


def plane_tags(plane: Platform, work: str) -> dict[str, str]:
    """Tags of a run in ``plane``: which plane, and its queue (``{queue_prefix}{work}``), which
    Dagster's run coordinator can limit per tenant (``tag_concurrency_limits``)."""
    return {
        PLANE_TAG: plane_name(plane),
        "mixpeek/queue": f"{plane.settings.queue_prefix}{work}",
    }
