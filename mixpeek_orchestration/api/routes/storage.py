"""Signed upload and download URLs of the local object-store backend.

``PUT /v1/storage/{key}`` streams the request body to disk in chunks, enforcing the signed size
limit while streaming; ``GET`` streams the object back. Both need a valid, unexpired signature
issued by :meth:`LocalObjectStore.presign_put` / ``presign_get``. With the S3 backend clients use
S3's own presigned URLs and these routes answer 400.

Keys start with the organisation id (``{org_id}/{namespace_id}/...``), which routes a signed URL
to the data plane that issued it, and whose signing key must verify it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from mixpeek_orchestration.api.deps import ControlDep
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.storage.objects import CHUNK_SIZE, LocalObjectStore

router = APIRouter(prefix="/v1/storage", tags=["storage"])


class StoredObject(BaseModel):
    key: str
    size: int
    etag: str | None = None


def _local_store(control: Platform, key: str) -> LocalObjectStore:
    store = control.plane_for(key.partition("/")[0]).objects
    if not isinstance(store, LocalObjectStore):
        raise MixpeekError(
            ErrorCode.UNSUPPORTED_OPERATION,
            "Signed storage URLs are served by the API only for the local object store; "
            "this stack uses S3 presigned URLs",
        )
    return store


@router.put("/{key:path}", response_model=StoredObject)
async def upload(
    key: str,
    request: Request,
    control: ControlDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query()],
    max_bytes: Annotated[int | None, Query()] = None,
    content_type: Annotated[str, Query()] = "",
) -> StoredObject:
    """Receive an object's bytes at a signed URL."""
    store = await run_in_threadpool(_local_store, control, key)
    store.verify(
        "PUT",
        key,
        expires=expires,
        signature=signature,
        max_bytes=max_bytes,
        content_type=content_type,
    )
    declared = request.headers.get("content-length")
    if (
        max_bytes is not None
        and declared is not None
        and declared.isdigit()
        and int(declared) > max_bytes
    ):
        raise MixpeekError(
            ErrorCode.PAYLOAD_TOO_LARGE,
            f"Content-Length {declared} exceeds the limit of {max_bytes} bytes",
            max_bytes=max_bytes,
        )
    info = await store.receive(key, request.stream(), max_bytes=max_bytes)
    return StoredObject(key=info.key, size=info.size, etag=info.etag)


@router.get(
    "/{key:path}",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
            "description": "the object's bytes",
        }
    },
)
async def download(
    key: str,
    control: ControlDep,
    expires: Annotated[int, Query()],
    signature: Annotated[str, Query()],
) -> StreamingResponse:
    """Stream an object back from a signed URL."""
    store = await run_in_threadpool(_local_store, control, key)
    store.verify("GET", key, expires=expires, signature=signature)
    handle = store.open_read(key)

    def chunks():  # type: ignore[no-untyped-def]
        with handle:
            yield from iter(lambda: handle.read(CHUNK_SIZE), b"")

    return StreamingResponse(chunks(), media_type="application/octet-stream")
