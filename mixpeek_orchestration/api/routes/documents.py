"""Documents of a whole namespace: ``/v1/documents...`` (the hosted namespace-wide view; the
per-collection routes live under ``/v1/collections/{id}/documents``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field, ValidationError

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.hosted import HostedRequest, ListParams, ListParamsDep
from mixpeek_orchestration.api.routes.collections import (
    DocumentChanges,
    DocumentList,
    DocumentOut,
    DocumentPage,
    document_page,
    update_document,
)
from mixpeek_orchestration.api.schemas import ErrorResponse
from mixpeek_orchestration.errors import ErrorCode, MixpeekError

router = APIRouter(
    prefix="/v1/documents",
    tags=["documents"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


@router.post(
    "/list",
    summary="List documents of the namespace's collections (all, or collection_ids)",
    response_model=DocumentPage,
)
async def list_documents(
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: DocumentList | None = None,
) -> dict[str, Any]:
    body = body or DocumentList()

    def listed() -> dict[str, Any]:
        if body.collection_ids:
            ids = [
                platform.collections.get(namespace, c)["collection_id"] for c in body.collection_ids
            ]
        else:
            ids = [c["collection_id"] for c in platform.collections.list(namespace)]
        return document_page(platform, namespace, ids, params, body)

    return await run_in_threadpool(listed)


class ListQuery(HostedRequest):
    key: str = Field(description="names this query's answer")
    request: dict[str, Any] = Field(description="a namespace-wide list request (as /list takes)")


class ListBatch(HostedRequest):
    queries: list[ListQuery] = Field(min_length=1, max_length=20)


class ListAnswer(BaseModel):
    key: str
    response: DocumentPage | None = None
    error: str | None = None


class ListBatchAnswer(BaseModel):
    results: list[ListAnswer]


@router.post(
    "/list/batch",
    summary="Several namespace-wide document lists at once, each answered or refused alone",
    response_model=ListBatchAnswer,
)
async def list_documents_batch(
    body: ListBatch, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    if len({q.key for q in body.queries}) < len(body.queries):
        raise MixpeekError(ErrorCode.INVALID_REQUEST, "each query needs its own key", field="key")
    results: list[dict[str, Any]] = []
    for query in body.queries:
        try:
            request = DocumentList.model_validate(query.request)
            page = await list_documents(namespace, platform, ListParams(), request)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            results.append({"key": query.key, "error": f"request.{where}: {first['msg']}"})
        except MixpeekError as exc:
            if exc.code.http_status >= 500:
                raise
            results.append({"key": query.key, "error": exc.detail})
        else:
            results.append({"key": query.key, "response": page})
    return {"results": results}


class BatchGet(HostedRequest):
    hosted_fields = frozenset({"return_presigned_urls"})

    document_ids: list[str] = Field(min_length=1, max_length=1000)


class BatchGot(BaseModel):
    documents: list[DocumentOut]
    not_found: list[str]


@router.post("/batch-get", summary="Documents by id, from any collection", response_model=BatchGot)
async def batch_get(
    body: BatchGet, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    found = await run_in_threadpool(platform.documents.find_many, namespace, body.document_ids)
    have = {d["document_id"] for d in found}
    return {"documents": found, "not_found": [i for i in body.document_ids if i not in have]}


@router.patch(
    "/{document_id}", summary="Merge fields into a document's metadata", response_model=DocumentOut
)
async def patch_document(
    document_id: str, changes: DocumentChanges, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await update_document(platform, namespace, None, document_id, changes, replace=False)


@router.put("/{document_id}", summary="Replace a document's metadata", response_model=DocumentOut)
async def put_document(
    document_id: str, changes: DocumentChanges, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await update_document(platform, namespace, None, document_id, changes, replace=True)


@router.get("/{document_id}", summary="Get a document by id alone", response_model=DocumentOut)
async def get_document(
    document_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.documents.find, namespace, document_id)
