"""Retrievers: ``/v1/retrievers...`` with the namespace in ``X-Namespace`` (SPEC §8)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.schemas import ErrorResponse

router = APIRouter(
    prefix="/v1/retrievers",
    tags=["retrievers"],
    responses={
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)


class RetrieverCreate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    retriever_name: str
    collection_identifiers: list[str] = Field(description="collection ids or names")
    stages: list[dict[str, Any]] = Field(
        description='[{"stage_name": "search", "config": {"stage_id": "feature_search", '
        '"parameters": {"searches": [{"feature_uri": "...", "query": {"input_mode": "text", '
        '"value": "{{INPUT.q}}"}}]}}}]'
    )
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class RetrieverUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection_identifiers: list[str] | None = None
    stages: list[dict[str, Any]] | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None


class ExecuteRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    inputs: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)


@router.post("", summary="Create a retriever")
async def create_retriever(
    body: RetrieverCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.retrievers.create, namespace, **body.model_dump())


@router.post("/list", summary="List retrievers")
async def list_retrievers(namespace: HeaderNamespaceDep, platform: PlatformDep) -> dict[str, Any]:
    results = await run_in_threadpool(platform.retrievers.list, namespace)
    return {"results": results, "total": len(results)}


@router.get("/{retriever_id}", summary="Get a retriever (by id or name)")
async def get_retriever(
    retriever_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.retrievers.get, namespace, retriever_id)


@router.patch("/{retriever_id}", summary="Change a retriever's stages or collections")
async def update_retriever(
    retriever_id: str, body: RetrieverUpdate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    return await run_in_threadpool(platform.retrievers.update, namespace, retriever_id, changes)


@router.delete("/{retriever_id}", summary="Delete a retriever")
async def delete_retriever(
    retriever_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.retrievers.delete, namespace, retriever_id)


@router.post("/{retriever_id}/execute", summary="Run a retriever's stages for some inputs")
async def execute_retriever(
    retriever_id: str,
    request: Request,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    body: ExecuteRequest | None = None,
) -> dict[str, Any]:
    body = body or ExecuteRequest()
    retriever = await run_in_threadpool(platform.retrievers.get, namespace, retriever_id)
    executor = request.app.state.retrieval(platform)
    return await executor.execute(namespace, retriever, body.inputs, body.settings)  # type: ignore[no-any-return]
