"""Operations that span buckets, collections, documents and the planner.

Each takes the :class:`Platform` and one namespace; the API calls them as they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.tenancy.accounts import Namespace

if TYPE_CHECKING:
    from mixpeek_orchestration.platform import Platform


def reprocess_with(
    platform: Platform,
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
    before = platform.collections.get(namespace, collection)
    after = platform.collections.set_extractor(namespace, collection, feature_extractor)
    platform.documents.drop_stale_vectors(after, before["feature_uris"])
    planned = platform.planner.trigger(after) if reprocess else {"batches": [], "objects": 0}
    return after | {"reprocessing": planned}


def delete_bucket(platform: Platform, namespace: Namespace, bucket: str) -> dict[str, Any]:
    """Remove a bucket, its objects and files; refused while collections read from it."""
    from mixpeek_orchestration.errors import ErrorCode, MixpeekError

    bucket_id = platform.buckets.get_bucket(namespace, bucket)["bucket_id"]
    readers = [c["collection_name"] for c in platform.collections.sourced_from(bucket_id)]
    if readers:
        raise MixpeekError(
            ErrorCode.CONFLICT,
            f"bucket {bucket!r} is the source of collection(s) {readers}; delete them first",
            field="bucket_id",
        )
    return platform.buckets.delete_bucket(namespace, bucket_id)


def delete_collection(platform: Platform, namespace: Namespace, collection: str) -> dict[str, Any]:
    result = platform.collections.delete(namespace, collection)
    platform.planner.delete_collection(result["collection_id"])
    return result


def delete_object(
    platform: Platform, namespace: Namespace, bucket: str, object_id: str
) -> dict[str, Any]:
    """Remove an object, its stored files, and the documents and vectors made from it."""
    bucket_id = platform.buckets.get_bucket(namespace, bucket)["bucket_id"]
    platform.buckets.delete_object(namespace, bucket_id, object_id)
    removed = 0
    for doc in platform.documents.of_object(namespace, object_id):
        collection = platform.collections.by_id(doc["collection_id"])
        if collection is not None:
            platform.documents.delete(namespace, collection, doc["document_id"])
            removed += 1
    return {"object_id": object_id, "deleted": True, "documents_deleted": removed}


def object_lineage(
    platform: Platform, namespace: Namespace, bucket: str, object_id: str
) -> dict[str, Any]:
    """An object and every document made from it, in any collection."""
    bucket_id = platform.buckets.get_bucket(namespace, bucket)["bucket_id"]
    obj = platform.buckets.get_object(namespace, bucket_id, object_id)
    keep = ("document_id", "collection_id", "status", "feature_refs", "plugin_id", "source_blobs")
    documents = [
        {k: d.get(k) for k in keep} for d in platform.documents.of_object(namespace, object_id)
    ]
    return {"object": obj, "documents": documents}


def document_lineage(
    platform: Platform, namespace: Namespace, collection: str, document_id: str
) -> dict[str, Any]:
    """Object -> document -> feature URIs -> plugin version, and the run that wrote it."""
    col = platform.collections.get(namespace, collection)
    doc = platform.documents.get(namespace, col["collection_id"], document_id)
    version = platform.registry.get_version(namespace, doc["plugin_id"])
    obj = platform.buckets.objects.find_one({"object_id": doc["source_object_id"]}, {"_id": 0})
    batch = platform.planner.get(doc["batch_id"]) if doc.get("batch_id") else None
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
            "dagster_run_id": doc.get("run_id"),
            "dagster_partition": doc.get("batch_id"),
            "batch_status": batch["status"] if batch else None,
        },
    }
