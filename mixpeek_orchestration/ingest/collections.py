"""Collections (SPEC §7): a plugin version applied to the objects of one or more buckets.

A collection pins its feature extractor to one registered plugin version; its parameters are
validated against that version's ``parameter_schema`` when the collection is created (or its
extractor changed), so a bad parameter is refused at the API, never discovered in a run.
"""

from __future__ import annotations

import builtins
import re
from datetime import datetime
from typing import Any, TypedDict

import jsonschema
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.buckets import Buckets
from mixpeek_orchestration.ingest.documents import Documents
from mixpeek_orchestration.plugins.records import FeatureRecord, PluginVersion
from mixpeek_orchestration.plugins.registry import PluginRegistry, check_version
from mixpeek_orchestration.sdk._manifest import plugin_id_for
from mixpeek_orchestration.storage.ids import new_id, now
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.scope import scope
from mixpeek_orchestration.tenancy.accounts import Namespace

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


class FeatureExtractor(TypedDict, total=False):
    """``collections.feature_extractor``: the plugin version a collection pins."""

    feature_extractor_name: str
    version: str
    plugin_id: str
    parameters: dict[str, Any]
    input_mappings: dict[str, str]


class Collection(TypedDict, total=False):
    """``collections``: a plugin version applied to the objects of some buckets."""

    org_id: str
    namespace_id: str
    collection_id: str
    collection_name: str
    description: str
    metadata: dict[str, Any]
    source: dict[str, Any]  # {"type": "bucket", "bucket_ids": [...]}
    feature_extractor: FeatureExtractor
    feature_uris: list[str]
    features: list[FeatureRecord]
    supported_input_types: list[str]
    input_schema: dict[str, Any] | None  # the version's, added for a run
    created_at: datetime
    updated_at: datetime


def check_parameters(schema: dict[str, Any] | None, parameters: dict[str, Any]) -> None:
    """Validate ``parameters`` against a plugin's ``parameter_schema`` (JSON Schema)."""
    if not isinstance(parameters, dict):
        raise MixpeekError(
            ErrorCode.INVALID_PARAMETERS,
            "feature_extractor.parameters must be an object",
            field="feature_extractor.parameters",
        )
    if schema is None:
        if parameters:
            raise MixpeekError(
                ErrorCode.INVALID_PARAMETERS,
                f"the plugin takes no parameters, got {sorted(parameters)}",
                field="feature_extractor.parameters",
            )
        return
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(parameters), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = ".".join(str(p) for p in first.path)
        raise MixpeekError(
            ErrorCode.INVALID_PARAMETERS,
            "feature_extractor.parameters"
            + (f".{where}" if where else "")
            + f": {first.message}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            field="feature_extractor.parameters" + (f".{where}" if where else ""),
        )


class Collections:
    """Collections of every namespace, always queried within one namespace."""

    def __init__(
        self,
        metadata: MetadataStore,
        buckets: Buckets,
        registry: PluginRegistry,
        documents: Documents,
    ) -> None:
        self.collections = metadata.collection("collections")
        self.buckets = buckets
        self.registry = registry
        self.documents = documents

    def ensure_indexes(self) -> None:
        self.collections.create_index("collection_id", unique=True)
        self.collections.create_index(
            [("org_id", 1), ("namespace_id", 1), ("collection_name", 1)], unique=True
        )
        self.collections.create_index("source.bucket_ids")

    def _extractor(self, namespace: Namespace, spec: Any) -> tuple[FeatureExtractor, PluginVersion]:
        """The extractor block, checked, and the plugin version it pins."""
        if not isinstance(spec, dict) or not spec.get("feature_extractor_name"):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "feature_extractor.feature_extractor_name is required",
                field="feature_extractor.feature_extractor_name",
            )
        name = spec["feature_extractor_name"]
        version = spec.get("version")
        try:
            doc = (
                self.registry.get_version(namespace, plugin_id_for(name, check_version(version)))
                if version and version != "latest"
                else self.registry.active_version(namespace, name)
            )
        except MixpeekError as exc:
            if exc.code is ErrorCode.NOT_FOUND or exc.code is ErrorCode.INVALID_REQUEST:
                raise MixpeekError(
                    ErrorCode.NOT_FOUND,
                    f"feature extractor {name!r} version {version or 'latest'!r} is not a "
                    "published plugin in this namespace",
                    field="feature_extractor",
                ) from None
            raise
        parameters = spec.get("parameters") or spec.get("params") or {}  # hosted: either
        check_parameters(doc["manifest"].get("parameter_schema"), parameters)
        mappings = spec.get("input_mappings") or {}
        if not isinstance(mappings, dict):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "feature_extractor.input_mappings must map input fields to bucket properties",
                field="feature_extractor.input_mappings",
            )
        extractor = FeatureExtractor(
            feature_extractor_name=doc["name"],
            version=doc["version"],
            plugin_id=doc["plugin_id"],
            parameters=parameters,
            input_mappings=mappings,
        )
        return extractor, doc

    def create(
        self,
        namespace: Namespace,
        *,
        collection_name: str,
        source: Any,
        feature_extractor: Any,
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not COLLECTION_NAME.fullmatch(collection_name or ""):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"collection_name {collection_name!r} must be 1-63 letters, digits, '_', '.' or '-'",
                field="collection_name",
            )
        if not isinstance(source, dict) or source.get("type", "bucket") != "bucket":
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "source must be {type: 'bucket', bucket_ids: [...]}",
                field="source",
            )
        bucket_refs = source.get("bucket_ids") or []
        if not isinstance(bucket_refs, list) or not bucket_refs:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "source.bucket_ids must name at least one bucket",
                field="source.bucket_ids",
            )
        bucket_ids = [self.buckets.get_bucket(namespace, b)["bucket_id"] for b in bucket_refs]
        extractor, version = self._extractor(namespace, feature_extractor)
        doc = {
            **scope(namespace),
            "collection_id": new_id("col"),
            "collection_name": collection_name,
            "description": description,
            "metadata": metadata or {},
            "source": {"type": "bucket", "bucket_ids": bucket_ids},
            "feature_extractor": extractor,
            "feature_uris": version["feature_uris"],
            "features": version["features"],
            "supported_input_types": version["manifest"].get("supported_input_types", []),
            "created_at": now(),
            "updated_at": now(),
        }
        try:
            self.collections.insert_one(doc)
        except DuplicateKeyError:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"collection {collection_name!r} already exists",
                field="collection_name",
            ) from None
        doc.pop("_id", None)
        return doc

    def get(self, namespace: Namespace, collection: str) -> dict[str, Any]:
        """A collection by id or name."""
        doc = self.collections.find_one(
            {
                **scope(namespace),
                "$or": [{"collection_id": collection}, {"collection_name": collection}],
            },
            {"_id": 0},
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"collection {collection!r} not found", field="collection_id"
            )
        return doc

    def by_id(self, collection_id: str) -> Collection | None:
        return self.collections.find_one({"collection_id": collection_id}, {"_id": 0})  # type: ignore[return-value]

    def by_ids(self, collection_ids: list[str]) -> list[Collection]:
        """The collections of these ids that still exist, in the order given."""
        found = {
            c["collection_id"]: c
            for c in self.collections.find({"collection_id": {"$in": collection_ids}}, {"_id": 0})
        }
        return [found[c] for c in collection_ids if c in found]  # type: ignore[misc]

    def list(self, namespace: Namespace) -> list[Collection]:
        return list(
            self.collections.find(scope(namespace), {"_id": 0}).sort("created_at", ASCENDING)  # type: ignore[arg-type]
        )

    def count_in(self, namespace: Namespace) -> int:
        return self.collections.count_documents(scope(namespace))

    def every(self) -> builtins.list[Collection]:
        """Every collection of every namespace, with what the Dagster code location draws of
        it (names, sources, plugin version, feature URIs)."""
        projection = {
            "_id": 0, "org_id": 1, "namespace_id": 1, "collection_id": 1, "collection_name": 1,
            "description": 1, "source": 1, "feature_extractor": 1, "feature_uris": 1,
        }  # fmt: skip
        return list(self.collections.find({}, projection).sort("created_at", ASCENDING))  # type: ignore[arg-type]

    def sourced_from(self, bucket_id: str) -> builtins.list[Collection]:
        return list(self.collections.find({"source.bucket_ids": bucket_id}, {"_id": 0}))  # type: ignore[arg-type]

    def uris_in_use(self, namespace_id: str) -> set[str]:
        """The feature URIs the collections of a namespace store vectors under."""
        return {
            uri
            for c in self.collections.find({"namespace_id": namespace_id}, {"feature_uris": 1})
            for uri in c.get("feature_uris", [])
        }

    def delete_namespace(self, namespace: Namespace) -> int:
        """Remove every collection record of a namespace (its documents go separately)."""
        return self.collections.delete_many(scope(namespace)).deleted_count

    def update_details(
        self, namespace: Namespace, collection: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        """Change a collection's ``description`` or ``metadata`` (what is left out stays)."""
        doc = self.get(namespace, collection)
        update: dict[str, Any] = {
            k: changes[k] for k in ("description", "metadata") if k in changes
        }
        if update:
            update["updated_at"] = now()
            self.collections.update_one({"collection_id": doc["collection_id"]}, {"$set": update})
        return doc | update

    def set_extractor(
        self, namespace: Namespace, collection: str, feature_extractor: Any
    ) -> dict[str, Any]:
        """Pin another plugin version (or parameters); the caller then re-processes."""
        doc = self.get(namespace, collection)
        extractor, version = self._extractor(namespace, feature_extractor)
        update = {
            "feature_extractor": extractor,
            "feature_uris": version["feature_uris"],
            "features": version["features"],
            "supported_input_types": version["manifest"].get("supported_input_types", []),
            "updated_at": now(),
        }
        self.collections.update_one({"collection_id": doc["collection_id"]}, {"$set": update})
        return doc | update

    def delete(self, namespace: Namespace, collection: str) -> dict[str, Any]:
        """Remove the collection with its documents and vectors (the record first: a batch
        still writing sees it gone and takes back what it wrote)."""
        doc = self.get(namespace, collection)
        self.collections.delete_one({"collection_id": doc["collection_id"]})
        removed = self.documents.delete_collection(doc)
        return {
            "collection_id": doc["collection_id"],
            "deleted": True,
            "documents_deleted": removed,
        }
