"""Retrievers: ``/v1/retrievers...`` with the namespace in ``X-Namespace`` (SPEC §8)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.hosted import HostedRequest, ListBody, ListParamsDep, listing
from mixpeek_orchestration.api.schemas import Deleted, ErrorResponse, ListPage
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.retrieval.retrievers import RETRIEVER_NAME
from mixpeek_orchestration.tenancy.accounts import Namespace

logger = logging.getLogger(__name__)

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


RETRIEVER_HOSTED_FIELDS = frozenset(
    {"visibility", "marketplace_listing_id", "requires_subscription", "input_schema",
     "budget_limits", "tags", "display_config"}
)  # fmt: skip
"""Hosted retriever settings (publishing, budgets, display) with no meaning here."""


class RetrieverCreate(HostedRequest):
    hosted_fields = RETRIEVER_HOSTED_FIELDS

    retriever_name: str = Field(pattern=RETRIEVER_NAME.pattern)
    collection_identifiers: list[str] = Field(description="collection ids or names")
    stages: list[dict[str, Any]] = Field(
        description='[{"stage_name": "search", "config": {"stage_id": "feature_search", '
        '"parameters": {"searches": [{"feature_uri": "...", "query": {"input_mode": "text", '
        '"value": "{{INPUT.q}}"}}]}}}]'
    )
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class RetrieverUpdate(HostedRequest):
    hosted_fields = RETRIEVER_HOSTED_FIELDS

    retriever_name: str | None = Field(default=None, pattern=RETRIEVER_NAME.pattern)
    collection_identifiers: list[str] | None = None
    stages: list[dict[str, Any]] | None = None
    description: str | None = None
    metadata: dict[str, Any] | None = None


EXECUTE_HOSTED_FIELDS = frozenset(
    {"stream", "expand", "skip_cache", "return_presigned_urls", "return_vectors", "write_token",
     "consistency", "target_collection_id", "explain", "pagination", "input_schema",
     "budget_limits"}
)  # fmt: skip
"""Hosted execution options: streaming, presigned URLs, write-back, explain plans."""


class ExecuteRequest(HostedRequest):
    hosted_fields = EXECUTE_HOSTED_FIELDS

    inputs: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(default=None, ge=0, description="at most this many documents")
    filters: dict[str, Any] | None = Field(
        default=None, description="not applied here: put filters in a stage's parameters"
    )

    def checked_settings(self) -> dict[str, Any]:
        if self.filters:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "execute-time filters are not applied here: give them in a stage's parameters "
                "(feature_search and attribute_filter take filters)",
                field="filters",
            )
        return self.settings | ({"limit": self.limit} if self.limit is not None else {})


class AdhocExecuteRequest(ExecuteRequest):
    stages: list[dict[str, Any]]
    collection_identifiers: list[str] | None = Field(
        default=None, description="collection ids or names (default: every collection)"
    )


class StageOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    stage_name: str
    config: dict[str, Any]
    parameters: dict[str, Any] = Field(description="the stage's parameters (as in config)")


class RetrieverOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    retriever_id: str
    retriever_name: str
    description: str = ""
    metadata: dict[str, Any] = {}
    collection_ids: list[str]
    collection_identifiers: list[str]
    stages: list[StageOut]
    fusion: str | None = None
    created_at: datetime
    updated_at: datetime | None = None


class RetrieverPatched(RetrieverOut):
    retriever: RetrieverOut = Field(description="the hosted envelope around the same fields")


class RetrieverList(ListPage):
    results: list[RetrieverOut]


class ExecuteOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    execution_id: str
    retriever_id: str | None
    status: str
    documents: list[dict[str, Any]]
    stage_statistics: dict[str, Any] = Field(
        description='{"stages": {stage_name: {input_count, output_count, duration_ms, ...}}, '
        '"total_time_ms": ...}'
    )
    total_duration_ms: float


def record(
    background: BackgroundTasks, platform: Platform, namespace: Namespace,
    retriever: dict[str, Any], answer: dict[str, Any], inputs: dict[str, Any],
) -> None:  # fmt: skip
    """Keep an execution in the history once its answer is sent (never on its path); a
    history that cannot be written costs a warning, never the answer already sent."""

    def keep() -> None:
        try:
            platform.retrievers.history.record(
                namespace, answer, inputs, retriever["collection_ids"]
            )
        except Exception:
            logger.warning("execution %s not recorded", answer["execution_id"], exc_info=True)

    background.add_task(keep)


def retriever_out(doc: dict[str, Any]) -> dict[str, Any]:
    """A retriever as both worlds read it (hosted: ``collection_identifiers``, ``fusion`` and
    each stage's ``parameters``)."""
    return doc | {
        "collection_identifiers": doc["collection_ids"],
        "fusion": None,
        "stages": [
            stage | {"parameters": stage["config"].get("parameters") or {}}
            for stage in doc["stages"]
        ],
    }


@router.post("", summary="Create a retriever", response_model=RetrieverOut)
async def create_retriever(
    body: RetrieverCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    created = await run_in_threadpool(platform.retrievers.create, namespace, **body.model_dump())
    return retriever_out(created)


@router.get("", summary="List retrievers", response_model=RetrieverList)
async def list_retrievers(
    namespace: HeaderNamespaceDep, platform: PlatformDep, params: ListParamsDep
) -> dict[str, Any]:
    results = await run_in_threadpool(platform.retrievers.list, namespace)
    return listing([retriever_out(r) for r in results], params)


@router.post(
    "/list",
    summary="List retrievers (paged by the query or the body)",
    response_model=RetrieverList,
)
async def list_retrievers_post(
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: ListBody = None,
) -> dict[str, Any]:
    return await list_retrievers(namespace, platform, params.merged(body))


@router.post(
    "/execute",
    summary="Run stages given in the request, without a stored retriever",
    response_model=ExecuteOut,
)
async def execute_adhoc(
    body: AdhocExecuteRequest,
    request: Request,
    background: BackgroundTasks,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    settings = body.checked_settings()
    retriever = await run_in_threadpool(
        lambda: platform.retrievers.adhoc(
            namespace, stages=body.stages, collection_identifiers=body.collection_identifiers
        )
    )
    executor = request.app.state.retrieval(platform)
    answer: dict[str, Any] = await executor.execute(namespace, retriever, body.inputs, settings)
    record(background, platform, namespace, retriever, answer, body.inputs)
    return answer


@router.get(
    "/{retriever_id}", summary="Get a retriever (by id or name)", response_model=RetrieverOut
)
async def get_retriever(
    retriever_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return retriever_out(await run_in_threadpool(platform.retrievers.get, namespace, retriever_id))


@router.patch(
    "/{retriever_id}",
    summary="Change a retriever's stages or collections",
    response_model=RetrieverPatched,
)
async def update_retriever(
    retriever_id: str, body: RetrieverUpdate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    updated = retriever_out(
        await run_in_threadpool(platform.retrievers.update, namespace, retriever_id, changes)
    )
    return updated | {"retriever": updated}


@router.delete("/{retriever_id}", summary="Delete a retriever", response_model=Deleted)
async def delete_retriever(
    retriever_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.retrievers.delete, namespace, retriever_id)


class RetrieverClone(HostedRequest):
    hosted_fields = frozenset({"input_schema", "budget_limits", "tags", "display_config"})

    retriever_name: str = Field(pattern=RETRIEVER_NAME.pattern)
    description: str | None = None
    collection_identifiers: list[str] | None = None
    stages: list[dict[str, Any]] | None = None


class RetrieverCloned(BaseModel):
    retriever: RetrieverOut
    source_retriever_id: str


@router.post(
    "/{retriever_id}/clone",
    summary="A new retriever with this one's stages and collections (or the ones given)",
    response_model=RetrieverCloned,
)
async def clone_retriever(
    retriever_id: str, body: RetrieverClone, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def clone() -> dict[str, Any]:
        original = platform.retrievers.get(namespace, retriever_id)
        made = platform.retrievers.create(
            namespace,
            retriever_name=body.retriever_name,
            collection_identifiers=body.collection_identifiers or original["collection_ids"],
            stages=body.stages or original["stages"],
            description=original.get("description", "")
            if body.description is None
            else body.description,
            metadata=original.get("metadata") or {},
        )
        return {"retriever": retriever_out(made), "source_retriever_id": original["retriever_id"]}

    return await run_in_threadpool(clone)


@router.post(
    "/{retriever_id}/execute",
    summary="Run a retriever's stages for some inputs",
    response_model=ExecuteOut,
)
async def execute_retriever(
    retriever_id: str,
    request: Request,
    background: BackgroundTasks,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    body: ExecuteRequest | None = None,
) -> dict[str, Any]:
    body = body or ExecuteRequest()
    settings = body.checked_settings()
    retriever = await run_in_threadpool(platform.retrievers.get, namespace, retriever_id)
    executor = request.app.state.retrieval(platform)
    answer: dict[str, Any] = await executor.execute(namespace, retriever, body.inputs, settings)
    record(background, platform, namespace, retriever, answer, body.inputs)
    return answer
