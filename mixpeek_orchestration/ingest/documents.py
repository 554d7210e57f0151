"""Documents and their vectors: what ingestion writes, and how to read it back.

A document is one blob of one object processed by one collection, so its id is derived from
(collection, object, blob): re-processing replaces it, never duplicates it. Its vectors live in
the vector store, one table per namespace and feature URI, keyed by the same id.
"""

from __future__ import annotations

import builtins
import hashlib
import math
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import BulkWriteError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.aggregations import (
    aggregation_pipeline,
    aggregation_rows,
    distinct_pipeline,
    refused_by_store,
)
from mixpeek_orchestration.sdk._manifest import FeatureUri
from mixpeek_orchestration.storage.ids import new_id, now
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.pages import decode_position, page
from mixpeek_orchestration.storage.scope import scope
from mixpeek_orchestration.storage.vectors import VectorStore
from mixpeek_orchestration.tenancy.accounts import Namespace

if TYPE_CHECKING:
    import pyarrow as pa

# documents sort by their object's sequence, then id (an object's blobs share one number);
# list cursors hold both
KEYS = ("seq", "document_id")
STATUSES = ("pending", "processing", "completed", "partial", "failed")


def document_id(collection_id: str, object_id: str, blob_id: str) -> str:
    digest = hashlib.sha256(f"{collection_id}/{object_id}/{blob_id}".encode()).hexdigest()
    return f"doc_{digest[:24]}"


def vector_table(namespace_id: str, uri: str) -> str:
    """The vector table of one feature URI inside one namespace."""
    return FeatureUri.parse(uri).table_name(namespace_id)


def _flat_vectors(column: pa.ChunkedArray, dim: int) -> pa.Array:
    """The float32 values of a column of vectors (lists or fixed-size lists), row after row;
    a row of another length is refused naming the expected one."""
    import numpy as np
    import pyarrow as pa

    array = column.combine_chunks()
    if pa.types.is_fixed_size_list(array.type) and array.type.list_size == dim:
        return array.flatten().cast(pa.float32())
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        lengths = np.asarray(array.value_lengths().fill_null(0))
        if (lengths == dim).all():
            return array.flatten().cast(pa.float32())
        raise MixpeekError(
            ErrorCode.OUTPUT_INVALID,
            f"a vector has {int(lengths[lengths != dim][0])} values; the feature declares {dim}",
        )
    # anything else (objects pandas could not type): one row at a time
    values = np.asarray([np.asarray(v, dtype=np.float32) for v in array.to_pylist()])
    return pa.array(values.reshape(len(array) * dim), pa.float32())


def _plain(value: Any) -> Any:
    """A JSON / BSON-safe copy of a processor output value."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# fields the platform writes on every document: a metadata change may not name them
PLATFORM_FIELDS = frozenset(
    {"document_id", "org_id", "namespace_id", "collection_id", "bucket_id", "source_object_id",
     "seq", "source_blobs", "feature_refs", "plugin_id", "feature_extractor", "outputs",
     "status", "errors", "batch_id", "run_id", "created_at", "updated_at", "source_type"}
)  # fmt: skip


def metadata_changes(changes: Mapping[str, Any], *, held: Iterable[str]) -> dict[str, Any]:
    """The metadata fields a change sets: ``{"metadata": {...}}`` and any other key (the
    hosted form puts them at the document's root); a key in ``held`` (the platform's
    fields, or those a document holds) is refused, named."""
    changes = dict(changes)
    given = changes.pop("metadata", None)
    if given is not None and not isinstance(given, dict):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, "metadata must be an object", field="metadata"
        )
    held = set(held)
    for key in {**changes, **(given or {})}:
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"metadata field {key!r} may not be empty or start with $",
                field="metadata",
            )
    system = sorted(k for k in changes if k in held)
    if system:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"fields {system} are written by the platform; change the document's metadata",
            field=system[0],
        )
    return {**changes, **(given or {})}


def checked_vectors(
    collection: Mapping[str, Any], vectors: Mapping[str, Any]
) -> tuple[dict[str, tuple[str, Any]], builtins.list[dict[str, str]]]:
    """The vectors of a document brought in whole, by feature name: ``(uri, float32
    array)``; and what is wrong with the others (``{field, error}`` each): a key that is no
    embedding feature of the collection (by name or URI), a vector that is not the feature's
    number of finite numbers."""
    import numpy as np

    embeddings = {
        f["feature_name"]: (f, uri)
        for f, uri in zip(collection["features"], collection["feature_uris"], strict=True)
        if f.get("feature_type", "embedding") == "embedding" and f.get("embedding_dim")
    }
    by_uri = {uri: name for name, (_, uri) in embeddings.items()}
    checked: dict[str, tuple[str, Any]] = {}
    violations = []
    for given, values in vectors.items():
        name = by_uri.get(given, given)
        if name not in embeddings:
            violations.append({
                "field": f"vectors.{given}",
                "error": f"vectors {given!r} is not an embedding feature of the collection "
                f"(one of {sorted(embeddings)} or their URIs)",
            })  # fmt: skip
            continue
        feature, uri = embeddings[name]
        dim = int(feature["embedding_dim"])
        try:
            array = np.asarray(values, dtype=np.float32) if isinstance(values, list) else None
        except (TypeError, ValueError):
            array = None
        if array is None or array.shape != (dim,) or not np.isfinite(array).all():
            violations.append(
                {
                    "field": f"vectors.{given}",
                    "error": f"vectors {given!r} must be {dim} finite numbers",
                }
            )
            continue
        checked[name] = (uri, array)
    return checked, violations


class Documents:
    def __init__(self, metadata: MetadataStore, vectors: VectorStore) -> None:
        self.documents = metadata.collection("documents")
        self.vectors = vectors

    def ensure_indexes(self) -> None:
        self.documents.create_index("document_id", unique=True)
        self.documents.create_index([("collection_id", 1), ("seq", 1)])
        self.documents.create_index([("collection_id", 1), ("source_object_id", 1)])
        self.documents.create_index("source_object_id")

    # -- writes (ingestion) ---------------------------------------------------------------------

    def write(
        self,
        collection: Mapping[str, Any],
        table: pa.Table,
        *,
        objects: dict[str, dict[str, Any]],
        output_fields: Iterable[str],
        batch_id: str,
        run_id: str | None,
    ) -> dict[str, int]:
        """Upsert one processed block: a document per row, vectors for the rows that succeeded.

        Returns counts of completed and failed rows and of vectors written.
        """
        import pyarrow as pa

        from mixpeek_orchestration.batch.steps import ERROR_COLUMN, error_code

        features = collection["features"]
        uris = collection["feature_uris"]
        extractor = collection["feature_extractor"]
        names = set(table.column_names)
        fields = [f for f in output_fields if f in names]
        # after the Arrow round trip a missing error may be null or NaN: only text counts
        raw_errors = (
            table.column(ERROR_COLUMN).to_pylist() if ERROR_COLUMN in names else [None] * len(table)
        )
        errors = [e if isinstance(e, str) else None for e in raw_errors]
        ok = pa.array([e is None for e in errors], pa.bool_())
        ids = table.column("document_id").to_pylist()
        object_ids = table.column("object_id").to_pylist()
        failed_ids = [ids[i] for i, e in enumerate(errors) if e is not None]
        columns = {
            name: table.column(name).to_pylist()
            for name in ("blob_id", "blob_property", "blob_type", "mime_type", *fields)
        }
        stamp = now()
        plugin = {
            "feature_extractor_name": extractor["feature_extractor_name"],
            "version": extractor["version"],
        }
        writes = []
        for i, doc_id in enumerate(ids):
            obj = objects[object_ids[i]]
            error = errors[i]
            doc = {
                "org_id": collection["org_id"],
                "namespace_id": collection["namespace_id"],
                "collection_id": collection["collection_id"],
                "bucket_id": obj["bucket_id"],
                "source_object_id": object_ids[i],
                "seq": obj["seq"],
                "source_blobs": [
                    {
                        "blob_id": columns["blob_id"][i],
                        "property": columns["blob_property"][i],
                        "type": columns["blob_type"][i],
                        "mime_type": columns["mime_type"][i],
                    }
                ],
                "metadata": obj.get("metadata", {}),
                "feature_refs": [] if error else list(uris),
                "plugin_id": extractor["plugin_id"],
                "feature_extractor": dict(plugin),
                "outputs": {} if error else {f: _plain(columns[f][i]) for f in fields},
                "status": "failed" if error else "completed",
                "errors": [{"message": error, "code": error_code(error)}] if error else [],
                "batch_id": batch_id,
                "run_id": run_id,
                "updated_at": stamp,
            }
            writes.append((doc_id, doc))
        vectors = 0
        succeeded = table.filter(ok) if failed_ids else table
        for feature, uri in zip(features, uris, strict=True):
            name = feature["feature_name"]
            if feature.get("feature_type", "embedding") != "embedding":
                continue  # a label or score: in the document's outputs, not a vector table
            target = vector_table(collection["namespace_id"], uri)
            if failed_ids:
                self.vectors.delete(target, {"id": failed_ids})
            if not succeeded.num_rows or name not in names:
                continue
            dim = int(feature.get("embedding_dim") or 0)
            values = _flat_vectors(succeeded.column(name), dim)
            data = pa.table(
                {
                    "id": succeeded.column("document_id").cast(pa.string()),
                    "vector": pa.FixedSizeListArray.from_arrays(values, dim),
                    "collection_id": pa.array(
                        [collection["collection_id"]] * succeeded.num_rows, pa.string()
                    ),
                    "object_id": succeeded.column("object_id").cast(pa.string()),
                }
            )
            vectors += self.vectors.upsert(target, data)
        # documents last: a completed document always has its vectors in place
        self._upsert_documents(writes, stamp)
        return {
            "completed": len(ids) - len(failed_ids),
            "failed": len(failed_ids),
            "vectors": vectors,
        }

    def _upsert_documents(self, writes: list[tuple[str, dict[str, Any]]], stamp: Any) -> None:
        """Insert one batch's documents; those that already exist are updated instead.

        Inserting first and updating what the unique index refused costs a first ingestion
        nothing extra (no lookup of thousands of ids), and a re-run one refused insert per
        document.
        """
        if not writes:
            return
        fresh = [doc | {"document_id": doc_id, "created_at": stamp} for doc_id, doc in writes]
        existing: set[str] = set()
        try:
            self.documents.insert_many(fresh, ordered=False)
        except BulkWriteError as exc:
            existing = {
                fresh[e["index"]]["document_id"]
                for e in exc.details.get("writeErrors", [])
                if e.get("code") == 11000
            }
            if len(existing) < len(exc.details.get("writeErrors", [])):
                raise
        updates = [
            UpdateOne(
                {"document_id": doc_id},
                {"$set": doc, "$setOnInsert": {"document_id": doc_id, "created_at": stamp}},
                upsert=True,
            )
            for doc_id, doc in writes
            if doc_id in existing
        ]
        if updates:
            self.documents.bulk_write(updates, ordered=False)

    def delete_collection(self, collection: Mapping[str, Any]) -> int:
        """Remove a collection's documents and its rows in every feature table."""
        for uri in collection["feature_uris"]:
            self.vectors.delete(
                vector_table(collection["namespace_id"], uri),
                {"collection_id": collection["collection_id"]},
            )
        return self.documents.delete_many(
            {"collection_id": collection["collection_id"]}
        ).deleted_count

    def withdraw(self, collection: Mapping[str, Any], *, uris_in_use: set[str]) -> None:
        """Take back what a write stored for a collection deleted while it ran: its documents,
        its vector rows, and a vector table the write created again that no remaining collection
        of the namespace uses."""
        self.delete_collection(collection)
        for uri in set(collection["feature_uris"]) - uris_in_use:
            table = vector_table(collection["namespace_id"], uri)
            if self.vectors.has_table(table) and not self.vectors.count(table):
                self.vectors.drop(table)

    def drop_stale_vectors(self, collection: dict[str, Any], previous_uris: list[str]) -> None:
        """After a collection moves to another plugin version, its old feature rows go."""
        for uri in set(previous_uris) - set(collection["feature_uris"]):
            self.vectors.delete(
                vector_table(collection["namespace_id"], uri),
                {"collection_id": collection["collection_id"]},
            )

    # -- reads ----------------------------------------------------------------------------------

    def list(
        self,
        namespace: Namespace,
        collection_id: str | list[str],
        *,
        limit: int = 100,
        cursor: str | None = None,
        filters: dict[str, Any] | None = None,
        match: dict[str, Any] | None = None,
        offset: int = 0,
    ) -> dict[str, Any]:
        """A page of a collection's (or several collections') documents in the order they were made: after ``cursor``,
        or from ``offset``; ``filters`` picks by status, source object or bucket, ``match`` is
        a metadata-store query (a hosted filter translated by the caller)."""
        limit = max(1, min(limit, 1000))
        query: dict[str, Any] = {
            **scope(namespace),
            "collection_id": (
                {"$in": collection_id} if isinstance(collection_id, list) else collection_id
            ),
        }
        for key in ("status", "source_object_id", "bucket_id"):
            if filters and filters.get(key):
                query[key] = filters[key]
        if match:
            query = {"$and": [query, match]}
        position = decode_position(cursor, KEYS)
        page_query = dict(query)
        if position is not None:
            seq, last_id = position["seq"], position["document_id"]
            after = {"$or": [{"seq": {"$gt": seq}}, {"seq": seq, "document_id": {"$gt": last_id}}]}
            page_query = {"$and": [query, after]}
        found = self.documents.find(page_query, {"_id": 0}).sort([(key, ASCENDING) for key in KEYS])
        if offset and position is None:
            found = found.skip(offset)
        items = list(found.limit(limit + 1))
        return page(items, limit, KEYS) | {"total": self.documents.count_documents(query)}

    def find_many(
        self, namespace: Namespace, doc_ids: builtins.list[str]
    ) -> builtins.list[dict[str, Any]]:
        """The namespace's documents of these ids (any collection), in the order given."""
        found = {
            d["document_id"]: d
            for start in range(0, len(doc_ids), 500)
            for d in self.documents.find(
                {**scope(namespace), "document_id": {"$in": doc_ids[start : start + 500]}},
                {"_id": 0},
            )
        }
        return [found[i] for i in doc_ids if i in found]

    def count_in(self, namespace: Namespace) -> int:
        return self.documents.count_documents(scope(namespace))

    def find(self, namespace: Namespace, doc_id: str) -> dict[str, Any]:
        """A document of any collection of the namespace, by its id alone."""
        doc = self.documents.find_one({**scope(namespace), "document_id": doc_id}, {"_id": 0})
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"document {doc_id!r} not found", field="document_id"
            )
        return doc

    def get(self, namespace: Namespace, collection_id: str, doc_id: str) -> dict[str, Any]:
        doc = self.documents.find_one(
            {**scope(namespace), "collection_id": collection_id, "document_id": doc_id}, {"_id": 0}
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"document {doc_id!r} not found", field="document_id"
            )
        return doc

    def count(self, namespace: Namespace, collection_id: str, **filters: Any) -> dict[str, int]:
        base = {**scope(namespace), "collection_id": collection_id}
        by_status = {
            group["_id"]: group["n"]
            for group in self.documents.aggregate(
                [{"$match": base}, {"$group": {"_id": "$status", "n": {"$sum": 1}}}]
            )
        }
        return {"total": sum(by_status.values())} | {s: by_status.get(s, 0) for s in STATUSES}

    def update_metadata(
        self, namespace: Namespace, doc: dict[str, Any], changes: dict[str, Any], *, replace: bool
    ) -> dict[str, Any]:
        """Set a document's own fields (hosted: fields at its root): ``metadata`` and any key
        the document does not hold are its metadata, merged (``replace``: replacing it); a
        field the platform wrote (``status``, ``feature_refs`` ...) is refused, named. Its
        vectors do not change (they hold no metadata)."""
        fields = metadata_changes(changes, held=doc)
        metadata = fields if replace else {**(doc.get("metadata") or {}), **fields}
        self.documents.update_one(
            {**scope(namespace), "document_id": doc["document_id"]},
            {"$set": {"metadata": metadata, "updated_at": now()}},
        )
        return self.find(namespace, doc["document_id"])

    def delete(
        self, namespace: Namespace, collection: Mapping[str, Any], doc_id: str
    ) -> dict[str, Any]:
        self.get(namespace, collection["collection_id"], doc_id)
        self._delete_ids(namespace, collection, [doc_id])
        return {"document_id": doc_id, "deleted": True}

    def _delete_ids(
        self, namespace: Namespace, collection: Mapping[str, Any], ids: builtins.list[str]
    ) -> None:
        """Remove documents of one collection with their vectors, vectors first (so a search
        never finds a vector whose document is gone)."""
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for uri in collection["feature_uris"]:
                self.vectors.delete(vector_table(namespace.namespace_id, uri), {"id": chunk})
            self.documents.delete_many(
                {**scope(namespace), "collection_id": collection["collection_id"],
                 "document_id": {"$in": chunk}}
            )  # fmt: skip

    def create(
        self,
        namespace: Namespace,
        collection: Mapping[str, Any],
        *,
        metadata: dict[str, Any],
        vectors: dict[str, builtins.list[float]],
        source_object_id: str | None = None,
    ) -> dict[str, Any]:
        """A document brought in whole (the hosted create): its metadata, and a vector per
        embedding feature named by feature name or URI, of the feature's dimension. A feature
        given no vector leaves the document out of that feature's searches; nothing is
        written when any vector is refused."""
        import pyarrow as pa

        metadata = metadata_changes({"metadata": metadata}, held=())
        checked, violations = checked_vectors(collection, vectors)
        if violations:
            raise MixpeekError(ErrorCode.INVALID_REQUEST, violations[0]["error"], field="vectors")
        doc_id, stamp = new_id("doc", 12), now()
        for uri, array in checked.values():  # vectors first, as ingestion writes them
            self.vectors.upsert(
                vector_table(namespace.namespace_id, uri),
                pa.table(
                    {
                        "id": [doc_id],
                        "vector": pa.FixedSizeListArray.from_arrays(pa.array(array), len(array)),
                        "collection_id": [collection["collection_id"]],
                        "object_id": [source_object_id or ""],
                    }
                ),
            )
        extractor = collection["feature_extractor"]
        self.documents.insert_one(
            {
                **scope(namespace),
                "document_id": doc_id,
                "collection_id": collection["collection_id"],
                "bucket_id": None,
                "source_object_id": source_object_id,
                "seq": time.time_ns(),  # after every object's documents, in creation order
                "source_blobs": [],
                "metadata": metadata,
                "feature_refs": [uri for uri, _ in checked.values()],
                "plugin_id": extractor["plugin_id"],
                "feature_extractor": {
                    "feature_extractor_name": extractor["feature_extractor_name"],
                    "version": extractor["version"],
                },
                "outputs": {},
                "status": "completed",
                "errors": [],
                "source_type": "api",
                "batch_id": None,
                "run_id": None,
                "created_at": stamp,
                "updated_at": stamp,
            }
        )
        return self.find(namespace, doc_id)

    # -- batch changes (hosted /documents/batch, /documents/bulk) -------------------------------

    def delete_many(
        self,
        namespace: Namespace,
        collection: Mapping[str, Any],
        *,
        doc_ids: builtins.list[str] | None = None,
        match: dict[str, Any] | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Delete the given documents (each one that is not in the collection fails alone,
        named) or every document matching a store query; one result per document."""
        base = {**scope(namespace), "collection_id": collection["collection_id"]}
        if doc_ids is not None:
            query = {**base, "document_id": {"$in": list(dict.fromkeys(doc_ids))}}
        else:
            query = {"$and": [base, match or {}]}
        found = [d["document_id"] for d in self.documents.find(query, {"_id": 0, "document_id": 1})]
        self._delete_ids(namespace, collection, found)
        results = [{"document_id": i, "success": True} for i in found]
        missing = [i for i in dict.fromkeys(doc_ids or []) if i not in set(found)]
        return results + [
            {"document_id": i, "success": False, "error": f"document {i!r} not found"}
            for i in missing
        ]

    def update_each(
        self,
        namespace: Namespace,
        collection_id: str,
        updates: builtins.list[tuple[str, dict[str, Any]]],
    ) -> builtins.list[dict[str, Any]]:
        """Merge each ``(document_id, fields)`` into that document's metadata; a document that
        is missing, or fields the platform writes, fail that update alone, named."""
        held = {
            d["document_id"]: d
            for d in self.documents.find(
                {**scope(namespace), "collection_id": collection_id,
                 "document_id": {"$in": [i for i, _ in updates]}},
                {"_id": 0},
            )
        }  # fmt: skip
        results, writes, stamp = [], [], now()
        for doc_id, changes in updates:
            doc = held.get(doc_id)
            if doc is None:
                results.append(
                    {"document_id": doc_id, "success": False,
                     "error": f"document {doc_id!r} not found"}
                )  # fmt: skip
                continue
            try:
                fields = metadata_changes(changes, held=doc)
            except MixpeekError as exc:
                results.append({"document_id": doc_id, "success": False, "error": exc.detail})
                continue
            doc["metadata"] = {**(doc.get("metadata") or {}), **fields}
            writes.append(
                UpdateOne(
                    {"document_id": doc_id},
                    {"$set": {"metadata": doc["metadata"], "updated_at": stamp}},
                )
            )
            results.append({"document_id": doc_id, "success": True})
        if writes:
            self.documents.bulk_write(writes, ordered=True)
        return results

    def update_matching(
        self,
        namespace: Namespace,
        collection_id: str,
        match: dict[str, Any],
        changes: dict[str, Any],
    ) -> int:
        """Merge the same fields into the metadata of every document matching a store query;
        the number changed."""
        fields = metadata_changes(changes, held=PLATFORM_FIELDS)
        if not fields:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, "update_data names no field to set", field="update_data"
            )
        for key in fields:
            if "." in key:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"metadata field {key!r} may not hold a dot here (it would be a path)",
                    field="update_data",
                )
        result = self.documents.update_many(
            {"$and": [{**scope(namespace), "collection_id": collection_id}, match]},
            {"$set": {**{f"metadata.{k}": v for k, v in fields.items()}, "updated_at": now()}},
        )
        return int(result.modified_count)

    # -- analytics ------------------------------------------------------------------------------

    def distinct(
        self,
        namespace: Namespace,
        collection_id: str,
        field: str,
        *,
        match: dict[str, Any] | None = None,
        limit: int | None = None,
    ) -> dict[str, Any]:
        """The values of one field over a collection's documents (those matching the store
        query ``match``) with how many hold each, most frequent first; ``total_distinct``
        counts them all, ``limit`` or not."""
        base = {**scope(namespace), "collection_id": collection_id}
        rows = [{"$limit": limit}] if limit else []
        pipeline = [  # one pass: the values (limited) and how many there are in all
            *distinct_pipeline(base, field, match or {}, None),
            {"$facet": {"total": [{"$count": "n"}], "rows": rows or [{"$match": {}}]}},
        ]
        with refused_by_store():
            (faceted,) = self.documents.aggregate(pipeline)
        return {
            "field": field,
            "values": [{"value": row["_id"], "count": row["count"]} for row in faceted["rows"]],
            "total_distinct": faceted["total"][0]["n"] if faceted["total"] else 0,
        }

    def aggregate(
        self,
        namespace: Namespace,
        collection_id: str,
        body: dict[str, Any],
        match: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A hosted aggregation (group_by, aggregations, having, range buckets, sort, limit)
        over a collection's documents (those matching the store query ``match``)."""
        pipeline = aggregation_pipeline(
            {**scope(namespace), "collection_id": collection_id}, match or {}, body
        )
        with refused_by_store():
            results = aggregation_rows(list(self.documents.aggregate(pipeline)))
        return {"results": results, "total_groups": len(results)}

    def diagnostics(
        self, namespace: Namespace, collection: Mapping[str, Any], doc_id: str
    ) -> dict[str, Any]:
        """Why a document is (or is not) found by search: its status and errors, and whether
        each feature index of its collection really holds its vector."""
        doc = self.get(namespace, collection["collection_id"], doc_id)
        missing = [
            uri
            for feature, uri in zip(collection["features"], collection["feature_uris"], strict=True)
            if feature.get("feature_type", "embedding") == "embedding"
            and uri in (doc.get("feature_refs") or [])
            and not self.vectors.count(
                vector_table(namespace.namespace_id, uri), filters={"id": [doc_id]}
            )
        ]
        status = doc.get("status")
        if status != "completed":
            errors = "; ".join(e.get("message", "") for e in doc.get("errors") or [])
            reason = f"its status is {status}" + (f": {errors}" if errors else "")
        elif missing:
            reason = f"its vector is missing from {missing}; reprocess its object"
        else:
            reason = f"completed, with its vectors in {len(doc.get('feature_refs') or [])} indexes"
        failures = [
            {"source": "ingestion", "object_id": doc.get("source_object_id"), "status": status,
             "error": e.get("message")}
            for e in doc.get("errors") or []
        ]  # fmt: skip
        history = [
            {"source": "ingestion", "timestamp": str(doc.get("created_at")),
             "detail": {"batch_id": doc.get("batch_id"), "run_id": doc.get("run_id")}},
        ]  # fmt: skip
        if doc.get("updated_at") and doc.get("updated_at") != doc.get("created_at"):
            history.append({"source": "update", "timestamp": str(doc["updated_at"]), "detail": {}})
        return {
            "document_id": doc_id,
            "collection_id": collection["collection_id"],
            "source_object_id": doc.get("source_object_id"),
            "visibility_reason": {
                "searchable": status == "completed" and not missing,
                "reason": reason,
                "source_object_id": doc.get("source_object_id"),
            },
            "recent_failures": {
                "failures": failures,
                "reason": None if failures else "no failure recorded",
            },
            "diagnostic_history": {"entries": history},
            "status": status,
            "missing_vectors": missing,
        }

    def statuses_by_object(self, collection_id: str) -> dict[str, tuple[str, str | None]]:
        """Each source object of a collection's documents: its document's status and first
        error (an object with several blobs: its least finished document)."""
        rank = {
            s: i for i, s in enumerate(("failed", "pending", "processing", "partial", "completed"))
        }
        out: dict[str, tuple[str, str | None]] = {}
        for doc in self.documents.find(
            {"collection_id": collection_id, "source_object_id": {"$ne": None}},
            {"_id": 0, "source_object_id": 1, "status": 1, "errors": 1},
        ):
            errors = doc.get("errors") or []
            mine = (doc["status"], errors[0].get("message") if errors else None)
            held = out.get(doc["source_object_id"])
            if held is None or rank.get(mine[0], 0) < rank.get(held[0], 0):
                out[doc["source_object_id"]] = mine
        return out

    def of_object(self, namespace: Namespace, object_id: str) -> builtins.list[dict[str, Any]]:
        return list(
            self.documents.find({**scope(namespace), "source_object_id": object_id}, {"_id": 0})
        )

    def ids_matching(
        self, collection_ids: builtins.list[str], query: dict[str, Any], *, limit: int
    ) -> builtins.list[str]:
        """Ids of at most ``limit`` documents of these collections matching a metadata-store
        ``query`` (a retrieval filter pushed down)."""
        cursor = self.documents.find(
            {"collection_id": {"$in": collection_ids}, **query}, {"_id": 0, "document_id": 1}
        ).limit(limit)
        return [d["document_id"] for d in cursor]

    def by_ids(self, ids: builtins.list[str]) -> dict[str, dict[str, Any]]:
        """Documents by id, as search results show them (no bookkeeping fields)."""
        if not ids:
            return {}
        return {
            d["document_id"]: d
            for d in self.documents.find(
                {"document_id": {"$in": ids}}, {"_id": 0, "seq": 0, "batch_id": 0, "run_id": 0}
            )
        }

    def count_of_batch(
        self, collection_id: str, batch_id: str, seq_range: tuple[int, int] | None = None
    ) -> int:
        """Documents an ingestion batch wrote (counted by batch, not by a long ``$in``; within
        the batch's sequence range, when given, so the count reads the batch, not the
        collection)."""
        query: dict[str, Any] = {"collection_id": collection_id, "batch_id": batch_id}
        if seq_range is not None:
            query["seq"] = {"$gte": seq_range[0], "$lte": seq_range[1]}
        return self.documents.count_documents(query)

    def one_of_batch(self, collection_id: str, batch_id: str) -> str | None:
        """The id of one document an ingestion batch wrote (a sample to follow its lineage)."""
        doc = self.documents.find_one(
            {"collection_id": collection_id, "batch_id": batch_id}, {"_id": 0, "document_id": 1}
        )
        return doc["document_id"] if doc else None

    def vectors_of_objects(
        self, collection: Mapping[str, Any], uri: str, object_ids: builtins.list[str]
    ) -> Any:
        """The stored vectors (an Arrow table with ``vector``) of some objects for one
        feature of a collection: what the ingestion checks read back."""
        return self.vectors.rows(
            vector_table(collection["namespace_id"], uri),
            filters={"collection_id": collection["collection_id"], "object_id": object_ids},
            columns=["id", "vector"],
        )

    def delete_namespace(self, namespace: Namespace) -> int:
        """Every document of a namespace and every vector table of it (its tables are named
        ``{namespace_id}__...``)."""
        for table in self.vectors.table_names():
            if table.startswith(f"{namespace.namespace_id}__"):
                self.vectors.drop(table)
        return self.documents.delete_many(scope(namespace)).deleted_count
