"""Typed views of the plugin registry's records, as its methods return them.

Records stay plain mappings (they come from and go to the metadata store and the API as JSON),
and these ``TypedDict``s name their keys for readers and the type checker. Deployment status is
one vocabulary, :class:`DeploymentStatus`, written and compared nowhere as a bare string; a
version's Serve application and route are named once, by :func:`app_name` and
:func:`route_prefix`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import Enum
from typing import Any, TypedDict


def app_name(namespace_id: str, plugin_id: str) -> str:
    """The Serve application of a plugin version: ``custom_plugin_{ns}_{plugin_id}``
    (namespaced, so tenants never collide)."""
    return f"custom_plugin_{namespace_id}_{plugin_id}"


def route_prefix(namespace_id: str, plugin_id: str) -> str:
    """Where a version's realtime deployment answers: ``/inference/{app_name}`` (SPEC §5)."""
    return f"/inference/{app_name(namespace_id, plugin_id)}"


class DeploymentStatus(str, Enum):
    """Where a plugin version's realtime deployment stands.

    ``QUEUED -> PENDING -> IN_PROGRESS -> DEPLOYED``, or ``FAILED`` (with ``error``);
    ``NOT_DEPLOYED`` before a deploy request and after an undeploy.
    """

    NOT_DEPLOYED = "NOT_DEPLOYED"
    QUEUED = "QUEUED"
    PENDING = "PENDING"
    IN_PROGRESS = "IN_PROGRESS"
    DEPLOYED = "DEPLOYED"
    FAILED = "FAILED"

    @property
    def holds_an_application(self) -> bool:
        """A Serve application exists or is on its way (undeploying must remove it)."""
        return self in _WITH_APPLICATION

    @classmethod
    def of(cls, version: Mapping[str, Any]) -> DeploymentStatus:
        """The status recorded on a version (``NOT_DEPLOYED`` when it has none)."""
        return cls(version.get("deployment", {}).get("status", cls.NOT_DEPLOYED.value))


_WITH_APPLICATION = frozenset(
    {
        DeploymentStatus.QUEUED,
        DeploymentStatus.PENDING,
        DeploymentStatus.IN_PROGRESS,
        DeploymentStatus.DEPLOYED,
    }
)


class Deployment(TypedDict, total=False):
    """``plugin_versions.deployment``: the realtime deployment of one version."""

    status: str  # a DeploymentStatus value
    desired: str  # "deployed" | "undeployed"
    mode: str  # "realtime" | "batch_only"
    requested_at: datetime
    requested_by: str
    started_at: datetime
    deployed_at: datetime
    failed_at: datetime
    error: str | None
    route_prefix: str
    removal_pending: bool
    reason: str


class FeatureRecord(TypedDict, total=False):
    """One ``features`` entry of a manifest, as recorded on a version and a collection."""

    feature_name: str
    feature_type: str
    embedding_dim: int | None
    distance_metric: str
    description: str


class PluginVersion(TypedDict, total=False):
    """``plugin_versions``: one registered version of a plugin."""

    org_id: str
    namespace_id: str
    plugin_id: str
    name: str
    version: str
    manifest_version: str
    description: str
    message: str
    archive_key: str
    sha256: str
    size_bytes: int
    files: dict[str, str]
    manifest: dict[str, Any]
    features: list[FeatureRecord]
    feature_uris: list[str]
    warnings: list[dict[str, Any]]
    validation_status: str
    created_at: datetime
    created_by: str
    deployment: Deployment
    scan_report: dict[str, Any]
    is_active: bool
