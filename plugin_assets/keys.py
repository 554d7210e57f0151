"""Asset keys and groups of a tenant's data: ``{org}/{namespace}/{kind}/{name}``.

A newcomer finds ``articles`` by typing its name in the asset catalog, and sees whose it is
from the key; each namespace is one group, so a tenant's graph reads on its own. Dagster names
allow only letters, digits and ``_``: other characters become ``_``, and a name that then
collides with another of the same namespace and kind gets its id's tail appended.
"""

from __future__ import annotations

import re

from dagster import AssetKey

from plugin_assets.state import BucketRef, CollectionRef, NamespaceRef, PlatformState

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_]")


def slug(text: str) -> str:
    return _NOT_A_NAME.sub("_", text) or "_"


def _renamed(name: str) -> bool:
    return slug(name) != name


def batches_partitions_name(collection_id: str) -> str:
    """The dynamic partitions (one per ingestion batch) of a collection's asset."""
    return f"batches_{collection_id}"


class Keys:
    """Every key and group of one :class:`PlatformState`, collisions resolved once."""

    def __init__(self, state: PlatformState) -> None:
        self.namespaces = {n.namespace_id: n for n in state.namespaces}
        self._taken: set[tuple[str, ...]] = set()
        # a name that is a Dagster name already keeps it; the others take what is left
        self.buckets = {
            b.bucket_id: self._key(b.namespace_id, "buckets", b.bucket_name, b.bucket_id)
            for b in sorted(state.buckets, key=lambda b: _renamed(b.bucket_name))
        }
        self.plugins: dict[tuple[str, str], AssetKey] = {}
        for v in sorted(state.versions, key=lambda v: _renamed(v.name)):
            if (v.namespace_id, v.name) not in self.plugins:
                self.plugins[(v.namespace_id, v.name)] = self._key(
                    v.namespace_id, "plugins", v.name, v.plugin_id
                )
        self.collections = {
            c.collection_id: self._key(
                c.namespace_id, "collections", c.collection_name, c.collection_id
            )
            for c in sorted(state.collections, key=lambda c: _renamed(c.collection_name))
        }

    def prefix(self, namespace_id: str) -> list[str]:
        ns = self.namespaces[namespace_id]
        return [slug(ns.org_name), slug(ns.namespace_name)]

    def group(self, namespace_id: str) -> str:
        return "__".join(self.prefix(namespace_id))

    def bucket(self, bucket: BucketRef | str) -> AssetKey:
        return self.buckets[bucket if isinstance(bucket, str) else bucket.bucket_id]

    def collection(self, collection: CollectionRef | str) -> AssetKey:
        return self.collections[
            collection if isinstance(collection, str) else collection.collection_id
        ]

    def plugin(self, namespace_id: str, name: str) -> AssetKey:
        return self.plugins[(namespace_id, name)]

    def tags(self, namespace_id: str, plane: str) -> dict[str, str]:
        ns: NamespaceRef = self.namespaces[namespace_id]
        return {  # tag values are at most 63 characters
            "mixpeek/org": slug(ns.org_name)[:63],
            "mixpeek/namespace": slug(ns.namespace_name)[:63],
            "mixpeek/plane": slug(plane)[:63],
        }

    def _key(self, namespace_id: str, kind: str, name: str, ident: str) -> AssetKey:
        path = (*self.prefix(namespace_id), kind, slug(name))
        if path in self._taken:
            path = (*path[:-1], f"{path[-1]}_{slug(ident)[-8:]}")
        self._taken.add(path)
        return AssetKey(list(path))
