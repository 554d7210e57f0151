"""What the code location draws: a snapshot of every plane's buckets, collections and plugin
versions, read when the definitions are built.

The definitions are a function of this snapshot (``plugin_assets.graph``). Its
:attr:`PlatformState.fingerprint` is what the ``platform_state_sensor`` compares with the
platform's current state: when a collection, bucket, plugin version or namespace comes or goes,
the fingerprints differ and the code location is reloaded (``plugin_assets.reload``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from mixpeek_orchestration.platform import Platform
from plugin_assets.resources import plane_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NamespaceRef:
    namespace_id: str
    namespace_name: str
    org_id: str
    org_name: str


@dataclass(frozen=True)
class BucketRef:
    plane: str
    namespace_id: str
    bucket_id: str
    bucket_name: str


@dataclass(frozen=True)
class VersionRef:
    plane: str
    namespace_id: str
    plugin_id: str
    name: str
    version: str
    sha256: str


@dataclass(frozen=True)
class CollectionRef:
    plane: str
    namespace_id: str
    collection_id: str
    collection_name: str
    description: str
    bucket_ids: tuple[str, ...]
    plugin_name: str
    plugin_id: str
    version: str
    feature_uris: tuple[str, ...]


@dataclass(frozen=True)
class PlatformState:
    """Every plane's namespaces, buckets, plugin versions and collections (sorted, so equal
    states have equal fingerprints). ``available`` is false when the control plane could not be
    read: the definitions then hold only the platform's own jobs until the next reload."""

    namespaces: tuple[NamespaceRef, ...] = ()
    buckets: tuple[BucketRef, ...] = ()
    versions: tuple[VersionRef, ...] = ()
    collections: tuple[CollectionRef, ...] = ()
    available: bool = True
    fingerprint: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        body = json.dumps(
            [
                self.available,
                [asdict(n) for n in self.namespaces],
                [asdict(b) for b in self.buckets],
                [asdict(v) for v in self.versions],
                [asdict(c) for c in self.collections],
            ],
            sort_keys=True,
        )
        object.__setattr__(self, "fingerprint", hashlib.sha256(body.encode()).hexdigest()[:16])

    @classmethod
    def of(
        cls,
        namespaces: Iterable[NamespaceRef],
        buckets: Iterable[BucketRef],
        versions: Iterable[VersionRef],
        collections: Iterable[CollectionRef],
    ) -> PlatformState:
        return cls(
            tuple(sorted(namespaces, key=lambda n: n.namespace_id)),
            tuple(sorted(buckets, key=lambda b: b.bucket_id)),
            tuple(sorted(versions, key=lambda v: (v.namespace_id, v.name, v.plugin_id))),
            tuple(sorted(collections, key=lambda c: c.collection_id)),
        )

    def collection(self, collection_id: str) -> CollectionRef | None:
        return next((c for c in self.collections if c.collection_id == collection_id), None)


def read_state(control: Platform) -> PlatformState:
    """The snapshot of every plane that answers (a plane that does not is logged and left
    out, as the sensors do: one unreachable tenant never hides the others)."""
    orgs = control.accounts.org_names()  # organisations live in the control plane ...
    namespaces: list[NamespaceRef] = []
    buckets: list[BucketRef] = []
    versions: list[VersionRef] = []
    collections: list[CollectionRef] = []
    for plane in control.planes.all():
        try:
            label = plane_name(plane)
            namespaces += [  # ... their namespaces in the plane that serves them
                NamespaceRef(
                    n.namespace_id, n.namespace_name, n.org_id, orgs.get(n.org_id, n.org_id)
                )
                for n in plane.accounts.every_namespace()
            ]
            buckets += [_bucket(label, b) for b in plane.buckets.all_buckets()]
            versions += [_version(label, v) for v in plane.registry.every_version()]
            collections += [_collection(label, c) for c in plane.collections.every()]
        except Exception as exc:
            log.error("data plane %s left out of the definitions: %s", plane.tenant, exc)
    known = {n.namespace_id for n in namespaces}
    return PlatformState.of(
        namespaces,
        [b for b in buckets if b.namespace_id in known],
        [v for v in versions if v.namespace_id in known],
        [c for c in collections if c.namespace_id in known],
    )


def _bucket(plane: str, doc: dict[str, Any]) -> BucketRef:
    return BucketRef(plane, doc["namespace_id"], doc["bucket_id"], doc["bucket_name"])


def _version(plane: str, doc: Any) -> VersionRef:
    return VersionRef(
        plane, doc["namespace_id"], doc["plugin_id"], doc["name"], doc["version"], doc["sha256"]
    )


def _collection(plane: str, doc: Any) -> CollectionRef:
    extractor = doc.get("feature_extractor") or {}
    return CollectionRef(
        plane,
        doc["namespace_id"],
        doc["collection_id"],
        doc["collection_name"],
        doc.get("description") or "",
        tuple(doc.get("source", {}).get("bucket_ids", [])),
        extractor.get("feature_extractor_name", ""),
        extractor.get("plugin_id", ""),
        extractor.get("version", ""),
        tuple(doc.get("feature_uris", [])),
    )
