"""Namespaces: ``/v1/namespaces``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from mixpeek_orchestration.api.deps import CallerDep, PlatformDep
from mixpeek_orchestration.api.hosted import HostedRequest, ListBody, ListParamsDep, listing
from mixpeek_orchestration.api.schemas import (
    ErrorResponse,
    NamespaceCreate,
    NamespaceList,
    NamespaceResponse,
    NamespaceUpdate,
)
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.tenancy.accounts import Namespace

router = APIRouter(
    prefix="/v1/namespaces",
    tags=["namespaces"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


def _out(namespace: Namespace) -> NamespaceResponse:
    return NamespaceResponse(
        namespace_id=namespace.namespace_id,
        namespace_name=namespace.namespace_name,
        description=namespace.description,
        created_at=namespace.created_at,
        llm_budget_usd=namespace.llm_budget_usd,
    )


@router.post("", response_model=NamespaceResponse)
async def create_namespace(
    body: NamespaceCreate, caller: CallerDep, platform: PlatformDep
) -> NamespaceResponse:
    """Create a namespace in the caller's organisation (200, as the hosted API answers)."""
    namespace = await run_in_threadpool(
        platform.accounts.create_namespace,
        caller,
        body.namespace_name,
        description=body.description,
    )
    return _out(namespace)


@router.get("", response_model=NamespaceList)
async def list_namespaces(
    caller: CallerDep, platform: PlatformDep, params: ListParamsDep
) -> dict[str, Any]:
    namespaces = await run_in_threadpool(platform.accounts.list_namespaces, caller)
    return listing([_out(n).model_dump() for n in namespaces], params)


@router.post("/list", response_model=NamespaceList)
async def list_namespaces_post(
    caller: CallerDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: ListBody = None,
) -> dict[str, Any]:
    """The namespaces, paged by the query or the body (the hosted list request)."""
    return await list_namespaces(caller, platform, params.merged(body))


@router.get("/{namespace_id}", response_model=NamespaceResponse)
async def get_namespace(
    namespace_id: str, caller: CallerDep, platform: PlatformDep
) -> NamespaceResponse:
    return _out(await run_in_threadpool(platform.accounts.resolve_namespace, caller, namespace_id))


class NamespaceStats(BaseModel):
    namespace_id: str
    bucket_count: int
    object_count: int
    collection_count: int
    document_count: int
    document_count_complete: bool = True


@router.get("/{namespace_id}/stats", response_model=NamespaceStats)
async def namespace_stats(
    namespace_id: str, caller: CallerDep, platform: PlatformDep
) -> NamespaceStats:
    """How many buckets, objects, collections and documents the namespace holds (counted now)."""

    def count() -> NamespaceStats:
        namespace = platform.accounts.resolve_namespace(caller, namespace_id)
        buckets, objects = platform.buckets.count_in(namespace)
        return NamespaceStats(
            namespace_id=namespace.namespace_id, bucket_count=buckets, object_count=objects,
            collection_count=platform.collections.count_in(namespace),
            document_count=platform.documents.count_in(namespace),
        )  # fmt: skip

    return await run_in_threadpool(count)


class StatsBatch(HostedRequest):
    namespace_ids: list[str] = Field(min_length=1, max_length=100)


class StatsOfNamespaces(BaseModel):
    stats: dict[str, NamespaceStats]
    not_found: list[str] = Field(description="requested namespaces the caller cannot see")


@router.post("/stats/batch", response_model=StatsOfNamespaces)
async def namespace_stats_batch(
    body: StatsBatch, caller: CallerDep, platform: PlatformDep
) -> StatsOfNamespaces:
    """The stats of several namespaces at once, keyed by the id or name asked for; one the
    caller cannot see is listed in ``not_found``, not answered."""
    stats, missing = {}, []
    for wanted in dict.fromkeys(body.namespace_ids):
        try:
            stats[wanted] = await namespace_stats(wanted, caller, platform)
        except MixpeekError as exc:
            if exc.code is not ErrorCode.NOT_FOUND:
                raise
            missing.append(wanted)
    return StatsOfNamespaces(stats=stats, not_found=missing)


class IndexesEnsured(BaseModel):
    namespace_id: str
    success: bool = True
    message: str


@router.post("/{namespace_id}/ensure-indexes", response_model=IndexesEnsured)
async def ensure_indexes(
    namespace_id: str, caller: CallerDep, platform: PlatformDep
) -> IndexesEnsured:
    """Create the metadata indexes the namespace's records rely on, if missing (idempotent;
    they are shared by the data plane's namespaces, and vector tables index themselves)."""
    namespace = await run_in_threadpool(platform.accounts.resolve_namespace, caller, namespace_id)
    await run_in_threadpool(platform.ensure_indexes)
    return IndexesEnsured(namespace_id=namespace.namespace_id, message="metadata indexes ensured")


@router.patch("/{namespace_id}", response_model=NamespaceResponse)
async def update_namespace(
    namespace_id: str, body: NamespaceUpdate, caller: CallerDep, platform: PlatformDep
) -> NamespaceResponse:
    """Rename a namespace or change its description or monthly LLM budget (only the fields
    sent; ``PUT`` does the same)."""
    changes = body.model_dump(exclude_unset=True)
    for field in ("namespace_name", "description"):
        if changes.get(field) is None:
            changes.pop(field, None)
    before = await run_in_threadpool(platform.accounts.resolve_namespace, caller, namespace_id)
    namespace = await run_in_threadpool(
        platform.accounts.update_namespace, caller, namespace_id, changes
    )
    for ref in (before.namespace_id, before.namespace_name):
        platform.lookups.forget_namespace(ref)
    return _out(namespace)


router.put("/{namespace_id}", response_model=NamespaceResponse)(update_namespace)


@router.delete("/{namespace_id}", response_model=NamespaceResponse)
async def delete_namespace(
    namespace_id: str, caller: CallerDep, platform: PlatformDep
) -> NamespaceResponse:
    """Delete a namespace and everything in it: plugins and their realtime deployments,
    buckets, objects and files, collections, documents and vectors, retrievers."""
    namespace, _ = await run_in_threadpool(platform.cascade.delete, caller, namespace_id)
    for ref in (namespace.namespace_id, namespace.namespace_name):
        platform.lookups.forget_namespace(ref)
    return _out(namespace)
