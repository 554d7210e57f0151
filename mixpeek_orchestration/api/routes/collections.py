"""Collections, their documents and lineage: ``/v1/collections...`` (SPEC §7, §9)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.schemas import ErrorResponse

router = APIRouter(
    prefix="/v1/collections",
    tags=["collections"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)


class CollectionCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    collection_name: str
    source: dict[str, Any] = Field(description='{"type": "bucket", "bucket_ids": ["bkt_..."]}')
    feature_extractor: dict[str, Any] = Field(
        description='{"feature_extractor_name": "...", "version": "1.0.0", "parameters": {}}'
    )
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class CollectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feature_extractor: dict[str, Any]
    reprocess: bool = Field(default=True, description="re-process every object with it")


class DocumentList(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(
        default=100, ge=1, le=1000, validation_alias=AliasChoices("limit", "page_size")
    )
    cursor: str | None = None
    filters: dict[str, Any] = Field(
        default_factory=dict, description="status, source_object_id, bucket_id"
    )


@router.post("", summary="Create a collection")
async def create_collection(
    body: CollectionCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.collections.create, namespace, **body.model_dump())


@router.post("/list", summary="List collections")
async def list_collections(namespace: HeaderNamespaceDep, platform: PlatformDep) -> dict[str, Any]:
    results = await run_in_threadpool(platform.collections.list, namespace)
    return {"results": results, "total": len(results)}


@router.get("/{collection_id}", summary="Get a collection (by id or name)")
async def get_collection(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.collections.get, namespace, collection_id)


@router.patch("/{collection_id}", summary="Pin another plugin version or parameters")
async def update_collection(
    collection_id: str, body: CollectionUpdate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        platform.operations.reprocess_with,
        namespace,
        collection_id,
        body.feature_extractor,
        reprocess=body.reprocess,
    )


@router.delete("/{collection_id}", summary="Delete a collection with its documents and vectors")
async def delete_collection(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.operations.delete_collection, namespace, collection_id)


@router.post("/{collection_id}/trigger", summary="Re-process every object of the collection")
async def trigger_collection(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def trigger() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        planned = platform.planner.trigger(collection)
        return {"collection_id": collection["collection_id"], "status": "queued", **planned}

    return await run_in_threadpool(trigger)


@router.get("/{collection_id}/features", summary="The collection's feature URIs")
async def collection_features(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    collection = await run_in_threadpool(platform.collections.get, namespace, collection_id)
    extractor = collection["feature_extractor"]
    return {
        "collection_id": collection["collection_id"],
        "features": [
            {**feature, "feature_uri": uri, "plugin_id": extractor["plugin_id"]}
            for feature, uri in zip(collection["features"], collection["feature_uris"], strict=True)
        ],
    }


@router.post("/{collection_id}/documents/list", summary="List documents (cursor pagination)")
async def list_documents(
    collection_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    body: DocumentList | None = None,
) -> dict[str, Any]:
    body = body or DocumentList()

    def listing() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        return platform.documents.list(
            namespace,
            collection["collection_id"],
            limit=body.limit,
            cursor=body.cursor,
            filters=body.filters,
        )

    return await run_in_threadpool(listing)


@router.get("/{collection_id}/documents/count", summary="Documents by status")
async def count_documents(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def count() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        return platform.documents.count(namespace, collection["collection_id"])

    return await run_in_threadpool(count)


@router.get("/{collection_id}/documents/{document_id}", summary="Get a document")
async def get_document(
    collection_id: str, document_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def get() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        return platform.documents.get(namespace, collection["collection_id"], document_id)

    return await run_in_threadpool(get)


@router.delete("/{collection_id}/documents/{document_id}", summary="Delete a document")
async def delete_document(
    collection_id: str, document_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def delete() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        return platform.documents.delete(namespace, collection, document_id)

    return await run_in_threadpool(delete)


@router.get(
    "/{collection_id}/documents/{document_id}/lineage",
    summary="Object -> document -> feature URIs -> plugin version",
)
async def document_lineage(
    collection_id: str, document_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        platform.operations.document_lineage, namespace, collection_id, document_id
    )
