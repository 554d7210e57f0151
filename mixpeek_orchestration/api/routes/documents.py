"""Documents of a whole namespace: ``/v1/documents...`` (the hosted namespace-wide view; the
per-collection routes live under ``/v1/collections/{id}/documents``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.hosted import ListParamsDep
from mixpeek_orchestration.api.routes.collections import (
    DocumentList,
    DocumentOut,
    DocumentPage,
    document_page,
)
from mixpeek_orchestration.api.schemas import ErrorResponse

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


@router.get("/{document_id}", summary="Get a document by id alone", response_model=DocumentOut)
async def get_document(
    document_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.documents.find, namespace, document_id)
