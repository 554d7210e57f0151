"""Buckets and objects: ``/v1/buckets...`` with the namespace in ``X-Namespace`` (SPEC §7).

Creating an object is what triggers ingestion: the ``bucket_objects_sensor`` picks it up and
runs every collection sourced from the bucket over it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.hosted import (
    HostedRequest,
    ListBody,
    ListParamsDep,
    envelope,
    listing,
)
from mixpeek_orchestration.api.routes.document_operations import (
    AggregationAnswer,
    AggregationRequest,
)
from mixpeek_orchestration.api.routes.tasks import TaskOut, task_out
from mixpeek_orchestration.api.schemas import Deleted, ErrorResponse, Lineage, ListPage
from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.ingest.buckets import BUCKET_NAME
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.retrieval.filters import store_query

router = APIRouter(
    prefix="/v1/buckets",
    tags=["buckets"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
    },
)


BUCKET_HOSTED_FIELDS = frozenset(
    {"unique_key", "storage_class", "destination", "ingest_filter", "source_adapter"}
)
"""Hosted bucket settings (deduplication keys, storage tiers, sync adapters) not used here."""


class BucketCreate(HostedRequest):
    hosted_fields = BUCKET_HOSTED_FIELDS

    bucket_name: str = Field(pattern=BUCKET_NAME.pattern)
    bucket_schema: dict[str, Any] = Field(
        description='{"properties": {"content": {"type": "text"}, "image": {"type": "image"}, '
        '"title": {"type": "string"}}}: blob properties (text, image, video, audio, pdf, json) '
        "and plain fields (string, number, integer, float, boolean, object, array, date, "
        "datetime) carried in an object's metadata"
    )
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class BucketUpdate(HostedRequest):
    """What a PATCH or PUT changes; fields left out stay."""

    hosted_fields = BUCKET_HOSTED_FIELDS

    bucket_name: str | None = Field(default=None, pattern=BUCKET_NAME.pattern)
    description: str | None = None
    metadata: dict[str, Any] | None = None
    bucket_schema: dict[str, Any] | None = Field(
        default=None, description="the whole schema: existing properties kept, new ones added"
    )


class BucketOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    bucket_id: str
    bucket_name: str
    namespace_id: str
    description: str = ""
    bucket_schema: dict[str, Any]
    metadata: dict[str, Any] = {}
    object_count: int
    total_size_bytes: int
    created_at: datetime
    updated_at: datetime | None = None


class BucketList(ListPage):
    results: list[BucketOut]


class UploadCreate(HostedRequest):
    hosted_fields = frozenset({"file_hash", "skip_duplicates"})

    filename: str
    content_type: str | None = None
    size_bytes: int | None = Field(
        default=None, ge=0, validation_alias=AliasChoices("size_bytes", "file_size_bytes")
    )
    presigned_url_expiration: int = Field(default=3600, ge=60, le=7 * 86400)
    create_object_on_confirm: bool = Field(
        default=True, description="make the object when the upload is confirmed"
    )
    blob_property: str | None = Field(default=None, description="the object's blob property")
    blob_type: str | None = None
    object_metadata: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)


class UploadOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    upload_id: str
    bucket_id: str
    filename: str
    content_type: str
    s3_key: str
    status: str
    presigned_url_expiration: int
    create_object_on_confirm: bool
    file_size_bytes: int | None = None
    object_id: str | None = None
    created_at: datetime
    expires_at: datetime


class UploadTicket(UploadOut):
    presigned_url: str
    upload_url: str
    method: str
    headers: dict[str, str]


class UploadStats(BaseModel):
    total_uploads: int
    total_size_bytes: int
    uploads_by_status: dict[str, int]
    avg_file_size_bytes: float
    unique_buckets: int


class UploadList(ListPage):
    results: list[UploadOut]
    stats: UploadStats


class ConfirmUpload(HostedRequest):
    hosted_fields = frozenset({"etag", "auto_submit_batch"})

    file_size_bytes: int | None = Field(default=None, ge=0)


class UploadConfirmed(BaseModel):
    upload_id: str
    status: str
    file_size_bytes: int | None = None
    completed_at: datetime | None = None
    object_id: str | None = None
    message: str = ""


BLOB_HOSTED_FIELDS = frozenset({"key_prefix", "canonicalize_source", "force_remirror"})


class BlobIn(HostedRequest):
    hosted_fields = BLOB_HOSTED_FIELDS

    property: str
    type: str | None = None
    data: Any = Field(default=None, description="inline text, JSON, or an http(s) URL")
    upload_id: str | None = Field(default=None, description="a file PUT to an upload URL")
    mime_type: str | None = None
    checksum: str | None = Field(default=None, description="'sha256:<hex>' of the blob's bytes")
    metadata: dict[str, Any] = Field(default_factory=dict)


class ObjectCreate(BaseModel):
    """An object's blobs and metadata. As in the hosted API, keys beside the known ones are
    the object's own fields: they join ``metadata``."""

    model_config = ConfigDict(extra="allow")

    blobs: list[BlobIn]
    metadata: dict[str, Any] = Field(default_factory=dict)
    key_prefix: str | None = None
    idempotency_key: str | None = Field(default=None, max_length=255)
    skip_duplicates: bool = False
    canonicalize_source: bool = True
    force_remirror: bool = False
    edges: list[dict[str, Any]] | None = None

    def all_metadata(self) -> dict[str, Any]:
        return {**(self.model_extra or {}), **self.metadata}


class ObjectUpdate(BaseModel):
    """What a PATCH (merging metadata) or a PUT (replacing it) changes; as at creation, keys
    beside the known ones are metadata fields."""

    model_config = ConfigDict(extra="allow")

    key_prefix: str | None = None
    metadata: dict[str, Any] | None = None
    skip_duplicates: bool | None = None

    def all_metadata(self) -> dict[str, Any] | None:
        extra = self.model_extra or {}
        if self.metadata is None and not extra:
            return None
        return {**extra, **(self.metadata or {})}


class BlobOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    blob_id: str
    property: str
    type: str


class ObjectOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    object_id: str
    bucket_id: str
    namespace_id: str
    key_prefix: str = ""
    metadata: dict[str, Any] = {}
    blobs: list[BlobOut]
    created_at: datetime


class ObjectList(ListPage):
    results: list[ObjectOut]


def _with_usage(platform: Platform, buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    usage = platform.buckets.usage([b["bucket_id"] for b in buckets])
    return [
        {**b, "object_count": usage.get(b["bucket_id"], (0, 0))[0],
         "total_size_bytes": usage.get(b["bucket_id"], (0, 0))[1]}
        for b in buckets
    ]  # fmt: skip


@router.post("", summary="Create a bucket", response_model=BucketOut)
async def create_bucket(
    body: BucketCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def create() -> dict[str, Any]:
        return _with_usage(
            platform, [platform.buckets.create_bucket(namespace, **body.model_dump())]
        )[0]

    return await run_in_threadpool(create)


@router.get("", summary="List buckets", response_model=BucketList)
async def list_buckets(
    namespace: HeaderNamespaceDep, platform: PlatformDep, params: ListParamsDep
) -> dict[str, Any]:
    def listed() -> dict[str, Any]:
        return listing(_with_usage(platform, platform.buckets.list_buckets(namespace)), params)

    return await run_in_threadpool(listed)


@router.post(
    "/list", summary="List buckets (paged by the query or the body)", response_model=BucketList
)
async def list_buckets_post(
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: ListBody = None,
) -> dict[str, Any]:
    return await list_buckets(namespace, platform, params.merged(body))


@router.get("/{bucket_id}", summary="Get a bucket (by id or name)", response_model=BucketOut)
async def get_bucket(
    bucket_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def get() -> dict[str, Any]:
        return _with_usage(platform, [platform.buckets.get_bucket(namespace, bucket_id)])[0]

    return await run_in_threadpool(get)


@router.patch(
    "/{bucket_id}", summary="Change a bucket (PUT does the same)", response_model=BucketOut
)
async def update_bucket(
    bucket_id: str, body: BucketUpdate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}

    def update() -> dict[str, Any]:
        updated = platform.buckets.update_bucket(namespace, bucket_id, changes)
        return _with_usage(platform, [updated])[0]

    return await run_in_threadpool(update)


router.put("/{bucket_id}", summary="Change a bucket", response_model=BucketOut)(update_bucket)


@router.delete("/{bucket_id}", summary="Delete a bucket and its objects", response_model=Deleted)
async def delete_bucket(
    bucket_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.operations.delete_bucket, namespace, bucket_id)


@router.post(
    "/{bucket_id}/uploads",
    summary="A presigned URL to PUT one file to",
    response_model=UploadTicket,
)
async def create_upload(
    bucket_id: str, body: UploadCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: platform.buckets.create_upload(
            namespace,
            bucket_id,
            filename=body.filename,
            content_type=body.content_type,
            size_bytes=body.size_bytes,
            expires_in=body.presigned_url_expiration,
            create_object_on_confirm=body.create_object_on_confirm,
            blob_property=body.blob_property,
            object_metadata=body.object_metadata,
            metadata=body.metadata,
        )
    )


class UploadsBatch(HostedRequest):
    uploads: list[UploadCreate] = Field(min_length=1, max_length=500)
    shared_metadata: dict[str, Any] = Field(default_factory=dict)
    shared_object_metadata: dict[str, Any] = Field(default_factory=dict)


class UploadTickets(BaseModel):
    uploads: list[UploadTicket]
    total: int


@router.post(
    "/{bucket_id}/uploads/batch",
    summary="Presigned URLs for many files at once (all or none: a bad one refuses the batch)",
    response_model=UploadTickets,
)
async def create_uploads_batch(
    bucket_id: str, body: UploadsBatch, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def create_all() -> dict[str, Any]:
        bucket = platform.buckets.get_bucket(namespace, bucket_id)
        for index, item in enumerate(body.uploads):  # checked first: nothing made if one is bad
            if item.blob_property is not None:
                platform.buckets.blob_property(
                    bucket, item.blob_property, field=f"uploads[{index}].blob_property"
                )
        tickets = [
            platform.buckets.create_upload(
                namespace,
                bucket["bucket_id"],
                filename=item.filename,
                content_type=item.content_type,
                size_bytes=item.size_bytes,
                expires_in=item.presigned_url_expiration,
                create_object_on_confirm=item.create_object_on_confirm,
                blob_property=item.blob_property,
                object_metadata=body.shared_object_metadata | item.object_metadata,
                metadata=body.shared_metadata | item.metadata,
            )
            for item in body.uploads
        ]
        return {"uploads": tickets, "total": len(tickets)}

    return await run_in_threadpool(create_all)


@router.post("/{bucket_id}/uploads/list", summary="List uploads", response_model=UploadList)
async def list_uploads(
    bucket_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: ListBody = None,
) -> dict[str, Any]:
    uploads = await run_in_threadpool(platform.buckets.list_uploads, namespace, bucket_id)
    sizes = [u.get("file_size_bytes") or 0 for u in uploads]
    by_status: dict[str, int] = {}
    for upload in uploads:
        by_status[upload["status"]] = by_status.get(upload["status"], 0) + 1
    stats = {
        "total_uploads": len(uploads),
        "total_size_bytes": sum(sizes),
        "uploads_by_status": by_status,
        "avg_file_size_bytes": sum(sizes) / len(sizes) if sizes else 0.0,
        "unique_buckets": 1 if uploads else 0,
    }
    return listing(uploads, params.merged(body)) | {"stats": stats}


@router.get("/{bucket_id}/uploads/{upload_id}", summary="Get an upload", response_model=UploadOut)
async def get_upload(
    bucket_id: str, upload_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.buckets.get_upload, namespace, bucket_id, upload_id)


@router.post(
    "/{bucket_id}/uploads/{upload_id}/confirm",
    summary="Confirm a file arrived (and make its object if the upload asked)",
    response_model=UploadConfirmed,
)
async def confirm_upload(
    bucket_id: str,
    upload_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    body: ConfirmUpload | None = None,
) -> dict[str, Any]:
    size = body.file_size_bytes if body else None
    return await run_in_threadpool(
        lambda: platform.buckets.confirm_upload(
            namespace, bucket_id, upload_id, file_size_bytes=size
        )
    )


class Confirmation(ConfirmUpload):
    upload_id: str


class ConfirmBatch(HostedRequest):
    confirmations: list[Confirmation] = Field(min_length=1, max_length=1000)


class BatchConfirmed(BaseModel):
    task_id: str
    status: str
    confirmations_count: int
    task: TaskOut
    message: str


@router.post(
    "/{bucket_id}/uploads/confirm/batch",
    summary="Confirm many uploads at once; each one stands alone, the task holds the outcome",
    response_model=BatchConfirmed,
)
async def confirm_uploads(
    bucket_id: str,
    body: ConfirmBatch,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    policy: Annotated[
        str | None, Query(description="accepted; objects are always inserted")
    ] = None,
) -> dict[str, Any]:
    def confirm() -> dict[str, Any]:
        bucket = platform.buckets.get_bucket(namespace, bucket_id)
        confirmed, failed = [], []
        for item in body.confirmations:
            try:
                done = platform.buckets.confirm_upload(
                    namespace, bucket["bucket_id"], item.upload_id,
                    file_size_bytes=item.file_size_bytes,
                )  # fmt: skip
                confirmed.append({"upload_id": item.upload_id, "object_id": done.get("object_id")})
            except MixpeekError as exc:
                if exc.code.http_status >= 500:
                    raise
                failed.append({"upload_id": item.upload_id, "error": exc.detail})
        status = "FAILED" if not confirmed else "COMPLETED_WITH_ERRORS" if failed else "COMPLETED"
        task = platform.planner.record_task(
            namespace, "api_buckets_uploads_batch_confirm", status=status,
            inputs={"bucket_id": bucket["bucket_id"], "upload_ids": [c.upload_id for c in body.confirmations]},
            outputs={"confirmed": confirmed, "failed": failed},
            error="; ".join(f"{f['upload_id']}: {f['error']}" for f in failed) or None,
        )  # fmt: skip
        return {
            "task_id": task["task_id"],
            "status": status,
            "confirmations_count": len(body.confirmations),
            "task": task_out(task),
            "message": f"{len(confirmed)} of {len(body.confirmations)} uploads confirmed",
        }

    return await run_in_threadpool(confirm)


@router.delete(
    "/{bucket_id}/uploads/{upload_id}",
    summary="Delete an upload and its file",
    status_code=204,
    response_class=Response,
)
async def delete_upload(
    bucket_id: str, upload_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> Response:
    await run_in_threadpool(platform.buckets.delete_upload, namespace, bucket_id, upload_id)
    return Response(status_code=204)


@router.post(
    "/{bucket_id}/objects",
    summary="Create an object (triggers ingestion)",
    response_model=ObjectOut,
)
async def create_object(
    bucket_id: str, body: ObjectCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    blobs = [b.model_dump(exclude_none=True) for b in body.blobs]
    return await run_in_threadpool(
        lambda: platform.buckets.create_object(
            namespace,
            bucket_id,
            blobs=blobs,
            metadata=body.all_metadata(),
            key_prefix=body.key_prefix,
            idempotency_key=body.idempotency_key,
        )
    )


class ObjectsBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    objects: list[ObjectCreate] = Field(min_length=1, max_length=1000)


class ObjectFailed(BaseModel):
    object_index: int
    error: str
    error_type: str


class ObjectsBatchDone(BaseModel):
    succeeded: list[ObjectOut]
    failed: list[ObjectFailed]
    total_requested: int
    succeeded_count: int
    failed_count: int


@router.post(
    "/{bucket_id}/objects/batch",
    summary="Create many objects: each stands alone (a refused one is listed, the rest made)",
    response_model=ObjectsBatchDone,
)
async def create_objects_batch(
    bucket_id: str, body: ObjectsBatch, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def create_all() -> dict[str, Any]:
        bucket = platform.buckets.get_bucket(namespace, bucket_id)
        succeeded, failed = [], []
        for index, item in enumerate(body.objects):
            try:
                made = platform.buckets.create_object(
                    namespace, bucket["bucket_id"],
                    blobs=[b.model_dump(exclude_none=True) for b in item.blobs],
                    metadata=item.all_metadata(), key_prefix=item.key_prefix,
                    idempotency_key=item.idempotency_key,
                )  # fmt: skip
                succeeded.append(made | {"object_index": index})
            except MixpeekError as exc:
                failed.append(
                    {"object_index": index, "error": exc.detail, "error_type": str(exc.code.value)}
                )
        return {
            "succeeded": succeeded, "failed": failed, "total_requested": len(body.objects),
            "succeeded_count": len(succeeded), "failed_count": len(failed),
        }  # fmt: skip

    return await run_in_threadpool(create_all)


@router.get("/{bucket_id}/objects", summary="List objects", response_model=ObjectList)
async def list_objects(
    bucket_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep, params: ListParamsDep
) -> dict[str, Any]:
    found = await run_in_threadpool(
        lambda: platform.buckets.list_objects(
            namespace, bucket_id, limit=params.limit, cursor=params.cursor, offset=params.offset
        )
    )
    return envelope(
        found["results"],
        total=found["total"],
        limit=params.limit,
        next_cursor=found["pagination"]["next_cursor"],
        offset=0 if params.cursor else params.offset,
    )


@router.post(
    "/{bucket_id}/objects/list",
    summary="List objects (paged by the query or the body)",
    response_model=ObjectList,
)
async def list_objects_post(
    bucket_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: ListBody = None,
) -> dict[str, Any]:
    return await list_objects(bucket_id, namespace, platform, params.merged(body))


class SoftDelete(HostedRequest):
    object_ids: list[str] = Field(min_length=1, max_length=10_000)
    reason: str = Field(min_length=1, max_length=500)
    lifecycle_state: str = "disabled"
    source: str = "bulk_purge"


class SoftDeleted(BaseModel):
    soft_deleted: int = Field(description="objects of the bucket marked")
    requested: int
    collections: int = Field(description="collections whose documents of them were removed")


@router.post(
    "/{bucket_id}/objects/bulk-soft-delete",
    summary="Take objects out of every collection (kept, never processed again)",
    response_model=SoftDeleted,
)
async def bulk_soft_delete(
    bucket_id: str, body: SoftDelete, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: platform.operations.soft_delete_objects(
            namespace, bucket_id, body.object_ids, reason=body.reason,
            lifecycle_state=body.lifecycle_state, source=body.source,
        )
    )  # fmt: skip


@router.post(
    "/{bucket_id}/objects/aggregate",
    summary="Group a bucket's objects and compute count / sum / avg ... per group",
    response_model=AggregationAnswer,
)
async def aggregate_objects(
    bucket_id: str, body: AggregationRequest, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def aggregate() -> dict[str, Any]:
        answer = platform.buckets.aggregate_objects(
            namespace, bucket_id, body.model_dump(exclude_none=True), store_query(body.filters)
        )
        return answer | {"query_info": {"bucket": bucket_id}}

    return await run_in_threadpool(aggregate)


@router.get("/{bucket_id}/objects/{object_id}", summary="Get an object", response_model=ObjectOut)
async def get_object(
    bucket_id: str, object_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    bucket = await run_in_threadpool(platform.buckets.get_bucket, namespace, bucket_id)
    return await run_in_threadpool(
        platform.buckets.get_object, namespace, bucket["bucket_id"], object_id
    )


@router.patch(
    "/{bucket_id}/objects/{object_id}",
    summary="Change an object's key prefix or merge metadata into it",
    response_model=ObjectOut,
)
async def patch_object(
    bucket_id: str,
    object_id: str,
    body: ObjectUpdate,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: platform.buckets.update_object(
            namespace, bucket_id, object_id,
            key_prefix=body.key_prefix, metadata=body.all_metadata(),
        )
    )  # fmt: skip


@router.put(
    "/{bucket_id}/objects/{object_id}",
    summary="Change an object's key prefix or replace its metadata",
    response_model=ObjectOut,
)
async def put_object(
    bucket_id: str,
    object_id: str,
    body: ObjectUpdate,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: platform.buckets.update_object(
            namespace, bucket_id, object_id,
            key_prefix=body.key_prefix, metadata=body.all_metadata(), replace_metadata=True,
        )
    )  # fmt: skip


@router.delete(
    "/{bucket_id}/objects/{object_id}",
    summary="Delete an object and its documents (204; X-Documents-Deleted counts them)",
    status_code=204,
    response_class=Response,
)
async def delete_object(
    bucket_id: str, object_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> Response:
    deleted = await run_in_threadpool(
        platform.operations.delete_object, namespace, bucket_id, object_id
    )
    return Response(
        status_code=204, headers={"X-Documents-Deleted": str(deleted["documents_deleted"])}
    )


@router.get(
    "/{bucket_id}/objects/{object_id}/lineage",
    summary="Documents made from an object",
    response_model=Lineage,
)
async def object_lineage(
    bucket_id: str, object_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        platform.operations.object_lineage, namespace, bucket_id, object_id
    )
