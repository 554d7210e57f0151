"""Buckets and objects: ``/v1/buckets...`` with the namespace in ``X-Namespace`` (SPEC §7).

Creating an object is what triggers ingestion: the ``bucket_objects_sensor`` picks it up and
runs every collection sourced from the bucket over it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.schemas import ErrorResponse

router = APIRouter(
    prefix="/v1/buckets",
    tags=["buckets"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
    },
)


class BucketCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bucket_name: str
    bucket_schema: dict[str, Any] = Field(
        description='{"properties": {"content": {"type": "text"}, "image": {"type": "image"}}}'
    )
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class ListRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: int = Field(
        default=100, ge=1, le=1000, validation_alias=AliasChoices("limit", "page_size")
    )
    cursor: str | None = None


class UploadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str
    content_type: str | None = None
    size_bytes: int | None = Field(default=None, ge=0)


class BlobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    property: str
    type: str | None = None
    data: Any = Field(default=None, description="inline text, JSON, or an http(s) URL")
    upload_id: str | None = Field(default=None, description="a file PUT to an upload URL")
    mime_type: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ObjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    blobs: list[BlobIn]
    metadata: dict[str, Any] = Field(default_factory=dict)
    key_prefix: str | None = None


@router.post("", summary="Create a bucket")
async def create_bucket(
    body: BucketCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.buckets.create_bucket, namespace, **body.model_dump())


@router.post("/list", summary="List buckets")
async def list_buckets(namespace: HeaderNamespaceDep, platform: PlatformDep) -> dict[str, Any]:
    results = await run_in_threadpool(platform.buckets.list_buckets, namespace)
    return {"results": results, "total": len(results)}


@router.get("/{bucket_id}", summary="Get a bucket (by id or name)")
async def get_bucket(
    bucket_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.buckets.get_bucket, namespace, bucket_id)


@router.delete("/{bucket_id}", summary="Delete a bucket and its objects")
async def delete_bucket(
    bucket_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.operations.delete_bucket, namespace, bucket_id)


@router.post("/{bucket_id}/uploads", summary="A presigned URL to PUT one file to")
async def create_upload(
    bucket_id: str, body: UploadCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        platform.buckets.create_upload, namespace, bucket_id, **body.model_dump()
    )


@router.post("/{bucket_id}/objects", summary="Create an object (triggers ingestion)")
async def create_object(
    bucket_id: str, body: ObjectCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    blobs = [b.model_dump(exclude_none=True) for b in body.blobs]
    return await run_in_threadpool(
        platform.buckets.create_object,
        namespace,
        bucket_id,
        blobs=blobs,
        metadata=body.metadata,
        key_prefix=body.key_prefix,
    )


@router.post("/{bucket_id}/objects/list", summary="List objects (cursor pagination)")
async def list_objects(
    bucket_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    body: ListRequest | None = None,
) -> dict[str, Any]:
    body = body or ListRequest()
    return await run_in_threadpool(
        platform.buckets.list_objects, namespace, bucket_id, limit=body.limit, cursor=body.cursor
    )


@router.get("/{bucket_id}/objects/{object_id}", summary="Get an object")
async def get_object(
    bucket_id: str, object_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    bucket = await run_in_threadpool(platform.buckets.get_bucket, namespace, bucket_id)
    return await run_in_threadpool(
        platform.buckets.get_object, namespace, bucket["bucket_id"], object_id
    )


@router.delete("/{bucket_id}/objects/{object_id}", summary="Delete an object and its documents")
async def delete_object(
    bucket_id: str, object_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        platform.operations.delete_object, namespace, bucket_id, object_id
    )


@router.get("/{bucket_id}/objects/{object_id}/lineage", summary="Documents made from an object")
async def object_lineage(
    bucket_id: str, object_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        platform.operations.object_lineage, namespace, bucket_id, object_id
    )
