"""Operations that span buckets, collections, documents and the planner.

:class:`IngestOperations` is handed the repositories it coordinates; the API calls its methods
as they are, one namespace at a time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.buckets import LIVE
from mixpeek_orchestration.ingest.documents import checked_vectors, metadata_changes
from mixpeek_orchestration.ingest.engine import processed_blobs
from mixpeek_orchestration.ingest.exports import export_collection
from mixpeek_orchestration.ingest.imports import mapping_errors, reconstruct
from mixpeek_orchestration.storage.ids import aware, now
from mixpeek_orchestration.tenancy.accounts import Namespace

if TYPE_CHECKING:
    from mixpeek_orchestration.ingest.buckets import Buckets
    from mixpeek_orchestration.ingest.collections import Collections
    from mixpeek_orchestration.ingest.documents import Documents
    from mixpeek_orchestration.ingest.planner import IngestPlanner
    from mixpeek_orchestration.plugins.registry import PluginRegistry


class IngestOperations:
    def __init__(
        self,
        buckets: Buckets,
        collections: Collections,
        documents: Documents,
        planner: IngestPlanner,
        registry: PluginRegistry,
    ) -> None:
        self.buckets = buckets
        self.collections = collections
        self.documents = documents
        self.planner = planner
        self.registry = registry

    def create_collection(self, namespace: Namespace, **spec: Any) -> dict[str, Any]:
        """Create a collection and process the objects its buckets already hold (objects made
        afterwards reach it through the planner, like every collection's)."""
        collection = self.collections.create(namespace, **spec)
        if self.buckets.holds_objects(collection["source"]["bucket_ids"]):
            planned = self.planner.trigger(collection, task_type="api_collections_trigger")
            return collection | {"backfill": planned}
        return collection

    def reprocess_with(
        self,
        namespace: Namespace,
        collection: str,
        feature_extractor: dict[str, Any],
        *,
        reprocess: bool = True,
    ) -> dict[str, Any]:
        """Pin another plugin version (or parameters) and re-process every object with it.

        The old version's vectors of this collection are removed; its documents are replaced as
        each object is processed again (their ids do not change).
        """
        before = self.collections.get(namespace, collection)
        after = self.collections.set_extractor(namespace, collection, feature_extractor)
        self.documents.drop_stale_vectors(after, before["feature_uris"])
        planned = self.planner.trigger(after) if reprocess else {"batches": [], "objects": 0}
        return after | {"reprocessing": planned}

    def delete_bucket(self, namespace: Namespace, bucket: str) -> dict[str, Any]:
        """Remove a bucket, its objects and files; refused while collections read from it."""
        bucket_id = self.buckets.get_bucket(namespace, bucket)["bucket_id"]
        readers = [c["collection_name"] for c in self.collections.sourced_from(bucket_id)]
        if readers:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"bucket {bucket!r} is the source of collection(s) {readers}; delete them first",
                field="bucket_id",
            )
        return self.buckets.delete_bucket(namespace, bucket_id)

    def delete_collection(self, namespace: Namespace, collection: str) -> dict[str, Any]:
        result = self.collections.delete(namespace, collection)
        self.planner.delete_collection(result["collection_id"])
        return result

    def delete_object(self, namespace: Namespace, bucket: str, object_id: str) -> dict[str, Any]:
        """Remove an object, its stored files, and the documents and vectors made from it."""
        bucket_id = self.buckets.get_bucket(namespace, bucket)["bucket_id"]
        self.buckets.delete_object(namespace, bucket_id, object_id)
        removed = 0
        for doc in self.documents.of_object(namespace, object_id):
            collection = self.collections.by_id(doc["collection_id"])
            if collection is not None:
                self.documents.delete(namespace, collection, doc["document_id"])
                removed += 1
        return {"object_id": object_id, "deleted": True, "documents_deleted": removed}

    def soft_delete_objects(
        self,
        namespace: Namespace,
        bucket: str,
        object_ids: list[str],
        *,
        reason: str,
        lifecycle_state: str = "disabled",
        source: str = "bulk_purge",
    ) -> dict[str, Any]:
        """Take objects out of every collection: marked with ``lifecycle_state`` (kept, with
        their files, never processed again) and their documents and vectors removed from each
        collection sourced from the bucket."""
        if lifecycle_state in LIVE:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"a soft delete sets a state other than {lifecycle_state!r}",
                field="lifecycle_state",
            )
        bucket_id = self.buckets.get_bucket(namespace, bucket)["bucket_id"]
        found = self.buckets.soft_delete(
            namespace, bucket_id, object_ids, reason=reason, lifecycle_state=lifecycle_state,
            source=source,
        )  # fmt: skip
        touched = 0
        for collection in self.collections.list(namespace):
            if bucket_id not in collection["source"]["bucket_ids"] or not found:
                continue
            gone = self.documents.delete_many(
                namespace, collection, match={"source_object_id": {"$in": found}}
            )
            touched += bool(gone)
        return {"soft_deleted": len(found), "requested": len(object_ids), "collections": touched}

    def object_lineage(self, namespace: Namespace, bucket: str, object_id: str) -> dict[str, Any]:
        """An object and every document made from it, in any collection."""
        bucket_id = self.buckets.get_bucket(namespace, bucket)["bucket_id"]
        obj = self.buckets.get_object(namespace, bucket_id, object_id)
        keep = (
            "document_id",
            "collection_id",
            "status",
            "feature_refs",
            "plugin_id",
            "source_blobs",
        )
        documents = [
            {k: d.get(k) for k in keep} for d in self.documents.of_object(namespace, object_id)
        ]
        return {"object": obj, "documents": documents}

    def reconcile(self, namespace: Namespace, collection: str, *, limit: int) -> dict[str, Any]:
        """Which of the collection's source objects have no completed document, and why: no
        document yet (``no_document``), none of its blobs for this plugin (``skipped``), or a
        document that ``failed`` or is still ``processing``; at most ``limit`` of them, oldest
        first."""
        col = self.collections.get(namespace, collection)
        bucket_ids = col["source"]["bucket_ids"]
        source = [object_id for _, object_id in self.buckets.object_ids_in(bucket_ids)]
        made = self.documents.statuses_by_object(col["collection_id"])
        documents = self.documents.count(namespace, col["collection_id"])["total"]
        undone = [o for o in source if made.get(o, ("",))[0] not in ("completed", "partial")]
        objects = {o["object_id"]: o for o in self.buckets.objects_by_id(undone)}
        unfinished = []
        for object_id in undone:  # in sequence order: the oldest first
            status, error = made.get(object_id, (None, None))
            if status is None:
                obj = objects.get(object_id)
                reason = "no_document" if obj and processed_blobs(col, obj) else "skipped"
            else:
                reason = "failed" if status == "failed" else "processing"
            unfinished.append((object_id, reason, status, error))
        shown = unfinished[:limit]
        stamp = now()
        discrepancies = []
        for object_id, reason, status, error in shown:
            obj = objects.get(object_id, {})
            created = obj.get("created_at")
            discrepancies.append({
                "object_id": object_id, "bucket_id": obj.get("bucket_id"), "reason": reason,
                "status": status, "error": error,
                "age_seconds": round((stamp - aware(created)).total_seconds(), 1) if created else None,
            })  # fmt: skip
        produced = sum(1 for o in source if o in made)
        return {
            "collection_id": col["collection_id"],
            "source_object_count": len(source),
            "produced_object_count": produced,
            "document_count": documents,
            "delta": len(source) - produced,
            "discrepancies": discrepancies,
            "discrepancies_truncated": len(unfinished) > limit,
            "unfinished_count": len(unfinished),
            "limit": limit,
        }

    def export(self, namespace: Namespace, collection: str, **options: Any) -> dict[str, Any]:
        """The collection's documents (and vectors) as a file in the object store
        (``ingest/exports.py``)."""
        col = self.collections.get(namespace, collection)
        return export_collection(self.documents, self.buckets.store, namespace, col, **options)

    def import_record(
        self,
        namespace: Namespace,
        collection: str,
        record: dict[str, Any],
        mapping: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """One record of another system as a document of the collection, through a mapping
        (``ingest/imports.py``); a mapping that cannot be used is refused whole (422, the
        first reason named), a record whose vectors do not fit is reported, not written."""
        col = self.collections.get(namespace, collection)
        known = {
            f["feature_name"]: int(f["embedding_dim"])
            for f in col["features"]
            if f.get("feature_type", "embedding") == "embedding" and f.get("embedding_dim")
        }
        problems = mapping_errors(mapping, known_dims=known)
        if problems:
            first = problems[0]
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"mapping of {first['field']!r}: {first['error']}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                field="mapping",
            )
        doc = reconstruct(record, mapping)
        errors = checked_vectors(col, doc["vectors"])[1]
        try:
            metadata_changes({"metadata": doc["metadata"]}, held=())
        except MixpeekError as exc:
            errors.append({"field": "metadata", "error": exc.detail})
        answer = {"reconstructed": 1, "dry_run": dry_run, "warnings": [],
                  "errors": [{"row": 0, "error": e["error"]} for e in errors]}  # fmt: skip
        if errors or dry_run:
            return answer | {"imported": 0, "skipped": 1 if errors else 0}
        made = self.documents.create(namespace, col, **doc)
        return answer | {"imported": 1, "skipped": 0, "document_ids": [made["document_id"]]}

    def document_lineage(
        self, namespace: Namespace, collection: str, document_id: str
    ) -> dict[str, Any]:
        """Object -> document -> feature URIs -> plugin version, and the run that wrote it."""
        col = self.collections.get(namespace, collection)
        doc = self.documents.get(namespace, col["collection_id"], document_id)
        version = self.registry.get_version(namespace, doc["plugin_id"])
        obj = self.buckets.object_by_id(doc["source_object_id"])
        batch = self.planner.get(doc["batch_id"]) if doc.get("batch_id") else None
        return {
            "document_id": document_id,
            "collection": {
                "collection_id": col["collection_id"],
                "collection_name": col["collection_name"],
            },
            "object": obj,
            "source_blobs": doc["source_blobs"],
            "feature_uris": doc["feature_refs"],
            "plugin": {
                "plugin_id": version["plugin_id"],
                "name": version["name"],
                "version": version["version"],
                "sha256": version["sha256"],
            },
            "ingestion": {
                "batch_id": doc.get("batch_id"),
                # None: processed ahead of any run (a runless materialization of the partition)
                "dagster_run_id": doc.get("run_id") or (batch or {}).get("run_id"),
                "dagster_partition": doc.get("batch_id"),
                "batch_status": batch["status"] if batch else None,
            },
        }
