"""A retriever's executions, batches of queries, plans and typeahead: the hosted
``/v1/retrievers/{id}/executions...``, ``/execute/batch``, ``/execute/explain``,
``/v1/retrievers/executions...`` (ad hoc) and ``/v1/retrievers/typeahead``.

Every execution (stored retriever or ad hoc) is recorded after its answer is sent
(``retrieval/executions.py``); explain plans read that history. Included before the
retrievers router, so ``/typeahead`` and ``/executions`` are never a retriever id.
"""

from __future__ import annotations

import asyncio
import re
from statistics import fmean
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.hosted import (
    OFFSET,
    HostedRequest,
    ListParams,
    ListParamsDep,
    envelope,
)
from mixpeek_orchestration.api.routes.retrievers import ExecuteOut, ExecuteRequest, record
from mixpeek_orchestration.api.schemas import ErrorResponse
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.retrieval.executions import ADHOC, inputs_hash
from mixpeek_orchestration.retrieval.filters import fill_templates, store_query
from mixpeek_orchestration.storage.pages import decode_position, encode_position
from mixpeek_orchestration.tenancy.accounts import Namespace

router = APIRouter(
    prefix="/v1/retrievers",
    tags=["retrievers"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)

EXPLAIN_HISTORY = 20  # recent executions an explain plan averages


# -- history --------------------------------------------------------------------------------------


class ExecutionList(HostedRequest):
    status: str | None = None
    filters: dict[str, Any] | None = Field(
        default=None, description="a filter over the summaries' fields (status, total_returned...)"
    )
    sorts: list[dict[str, Any]] | None = Field(
        default=None, description='[{"field": "duration_ms", "direction": "asc"}]; newest first'
    )


class ExecutionSummary(BaseModel):
    model_config = ConfigDict(extra="allow")

    execution_id: str
    retriever_id: str
    execution_mode: str = Field(description="retriever (a stored one) or adhoc")
    status: str
    created_at: Any
    timestamp: Any = Field(description="when it started (the hosted name of created_at)")
    completed_at: Any = None
    collection_ids: list[str] = []
    stages_completed: int
    total_stages: int
    duration_ms: float
    credits_used: float = 0.0
    total_processed: int
    total_returned: int
    cache_hit_rate: float | None = None
    inputs_hash: str | None = None
    query_summary: str | None = None


class ExecutionPage(BaseModel):
    model_config = ConfigDict(extra="allow")

    results: list[ExecutionSummary]
    pagination: dict[str, Any]
    total_count: int


class ExecutionDetail(ExecutionSummary):
    stage_statistics: dict[str, Any]
    results: list[dict[str, Any]] = Field(description="the ids and scores it returned")
    documents_retained: bool = False


SORTABLE = frozenset({"created_at", "completed_at", "duration_ms", "total_returned", "status"})


def execution_page(
    platform: Platform,
    namespace: Namespace,
    retriever_id: str,
    params: ListParams,
    body: ExecutionList,
) -> dict[str, Any]:
    position = decode_position(params.cursor, OFFSET)
    offset = int(position["offset"]) if position is not None else params.offset
    for sort in body.sorts or []:
        if sort.get("field") not in SORTABLE:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"executions sort by one of {sorted(SORTABLE)}, not {sort.get('field')!r}",
                field="sorts",
            )
    items, total = platform.retrievers.history.list(
        namespace, retriever_id, limit=params.limit, offset=offset, status=body.status,
        match=store_query(body.filters),
        sort=[(s["field"], 1 if s.get("direction") == "asc" else -1) for s in body.sorts or []],
    )  # fmt: skip
    more = offset + len(items) < total
    page = envelope(
        items,
        total=total,
        limit=params.limit,
        next_cursor=encode_position({"offset": offset + len(items)}) if more else None,
        offset=offset,
    )
    page["pagination"] |= {"offset": offset, "has_next": more}
    return page


@router.post(
    "/executions/list",
    summary="List ad-hoc executions, newest first",
    response_model=ExecutionPage,
)
async def list_adhoc_executions(
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: ExecutionList | None = None,
) -> dict[str, Any]:
    return await run_in_threadpool(
        execution_page, platform, namespace, ADHOC, params, body or ExecutionList()
    )


@router.get(
    "/executions/{execution_id}", summary="An ad-hoc execution", response_model=ExecutionDetail
)
async def get_adhoc_execution(
    execution_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.retrievers.history.get, namespace, ADHOC, execution_id)


def stored(platform: Platform, namespace: Namespace, retriever_id: str) -> dict[str, Any]:
    return platform.retrievers.get(namespace, retriever_id)


@router.post(
    "/{retriever_id}/executions/list",
    summary="List a retriever's executions, newest first",
    response_model=ExecutionPage,
)
async def list_executions(
    retriever_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: ExecutionList | None = None,
) -> dict[str, Any]:
    def listed() -> dict[str, Any]:
        rid = stored(platform, namespace, retriever_id)["retriever_id"]
        return execution_page(platform, namespace, rid, params, body or ExecutionList())

    return await run_in_threadpool(listed)


def execution(
    platform: Platform, namespace: Namespace, retriever_id: str, execution_id: str
) -> dict[str, Any]:
    rid = stored(platform, namespace, retriever_id)["retriever_id"]
    return platform.retrievers.history.get(namespace, rid, execution_id)


@router.get(
    "/{retriever_id}/executions/{execution_id}",
    summary="One execution of a retriever: stages, timings, the ids it returned",
    response_model=ExecutionDetail,
)
async def get_execution(
    retriever_id: str, execution_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(execution, platform, namespace, retriever_id, execution_id)


class ExecutionStatus(BaseModel):
    execution_id: str
    status: str
    stages_completed: int
    total_stages: int
    current_stage: str | None = None
    completed_at: Any = None


@router.get(
    "/{retriever_id}/executions/{execution_id}/status",
    summary="Whether an execution finished, and how far it got",
    response_model=ExecutionStatus,
)
async def get_execution_status(
    retriever_id: str, execution_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(execution, platform, namespace, retriever_id, execution_id)


class StageProfile(BaseModel):
    stage_name: str
    stage_id: str | None = None
    duration_ms: float
    share_of_total: float = Field(description="this stage's part of the stages' time, 0 to 1")
    input_count: int
    output_count: int


class ExecutionProfile(BaseModel):
    execution_id: str
    total_time_ms: float
    stages: list[StageProfile]
    bottleneck_stage: str | None


@router.get(
    "/{retriever_id}/executions/{execution_id}/profile",
    summary="Where an execution's time went, stage by stage",
    response_model=ExecutionProfile,
)
async def get_execution_profile(
    retriever_id: str, execution_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    done = await run_in_threadpool(execution, platform, namespace, retriever_id, execution_id)
    stages = done["stage_statistics"]["stages"]
    spent = sum(s["duration_ms"] for s in stages.values()) or 1.0
    profile = [
        {
            "stage_name": name, "stage_id": s.get("stage_id"), "duration_ms": s["duration_ms"],
            "share_of_total": round(s["duration_ms"] / spent, 4),
            "input_count": s["input_count"], "output_count": s["output_count"],
        }
        for name, s in stages.items()
    ]  # fmt: skip
    slowest = max(profile, key=lambda s: s["duration_ms"], default=None)
    return {
        "execution_id": execution_id,
        "total_time_ms": done["stage_statistics"]["total_time_ms"],
        "stages": profile,
        "bottleneck_stage": slowest["stage_name"] if slowest else None,
    }


# -- many queries at once, plans ------------------------------------------------------------------


class BatchQuery(HostedRequest):
    inputs: dict[str, Any]
    filters: dict[str, Any] | None = None


class ExecuteBatch(HostedRequest):
    hosted_fields = frozenset({"return_presigned_urls", "return_vectors", "stream"})

    queries: list[BatchQuery] = Field(min_length=1, max_length=100)
    settings: dict[str, Any] = Field(default_factory=dict)
    concurrency: int = Field(default=5, ge=1, le=20)


class BatchAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    results: list[ExecuteOut | dict[str, Any]] = Field(
        description="one answer per query, in order; a query that failed holds its error"
    )
    total_queries: int
    succeeded: int
    failed: int


@router.post(
    "/{retriever_id}/execute/batch",
    summary="Run a retriever for many queries, a few at a time",
    response_model=BatchAnswer,
)
async def execute_batch(
    retriever_id: str,
    body: ExecuteBatch,
    request: Request,
    background: BackgroundTasks,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    requests = [ExecuteRequest(inputs=q.inputs, filters=q.filters, settings=body.settings)
                for q in body.queries]  # fmt: skip
    settings = [r.checked_settings() for r in requests]  # a refused query refuses the batch
    retriever = await run_in_threadpool(platform.retrievers.get, namespace, retriever_id)
    executor = request.app.state.retrieval(platform)
    gate = asyncio.Semaphore(body.concurrency)

    async def one(index: int) -> dict[str, Any]:
        async with gate:
            try:
                answer: dict[str, Any] = await executor.execute(
                    namespace, retriever, requests[index].inputs, settings[index]
                )
            except MixpeekError as exc:
                return {"query_index": index, "status": "failed", **exc.to_response()}
        record(background, platform, namespace, retriever, answer, requests[index].inputs)
        return answer | {"query_index": index}

    results = await asyncio.gather(*(one(i) for i in range(len(requests))))
    failed = sum(r["status"] == "failed" for r in results)
    return {
        "results": results,
        "total_queries": len(results),
        "succeeded": len(results) - failed,
        "failed": failed,
    }


class Explain(HostedRequest):
    inputs: dict[str, Any] = Field(default_factory=dict)


class StagePlan(BaseModel):
    stage_index: int
    stage_name: str
    stage_type: str
    estimated_input: int
    estimated_output: int
    estimated_efficiency: float
    estimated_cost_credits: float = 0.0
    estimated_duration_ms: float
    cache_likely: bool
    optimization_notes: list[str] = []
    warnings: list[str] = []


class ExplainAnswer(BaseModel):
    retriever_id: str
    retriever_name: str
    estimated_cost: dict[str, float]
    execution_plan: list[StagePlan]
    total_estimated_stages: int
    bottleneck_stages: list[str]
    based_on_executions: int = Field(description="recorded executions the estimates average")


def _planned_output(stage: dict[str, Any], before: int, inputs: dict[str, Any]) -> int:
    """What a stage's parameters say it returns, when no execution says better."""
    params = fill_templates(stage["config"].get("parameters") or {}, inputs)
    stage_id = stage["config"]["stage_id"]
    try:
        if stage_id == "feature_search":
            return int(params.get("final_top_k") or params.get("top_k") or 10)
        if stage_id == "limit":
            return min(before, int(params.get("limit", 10)))
    except (TypeError, ValueError):
        pass
    return before


@router.post(
    "/{retriever_id}/execute/explain",
    summary="The plan of an execution: stages, expected counts and times (from history)",
    response_model=ExplainAnswer,
)
async def explain(
    retriever_id: str, body: Explain, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def plan() -> dict[str, Any]:
        retriever = platform.retrievers.get(namespace, retriever_id)
        recent, _ = platform.retrievers.history.list(
            namespace, retriever["retriever_id"], limit=EXPLAIN_HISTORY, offset=0, full=True
        )
        seen = {e.get("inputs_hash") for e in recent}
        cached = inputs_hash(body.inputs) in seen
        steps, before, keys = [], 0, []
        for index, stage in enumerate(retriever["stages"]):
            name = stage["stage_name"]
            key = name if name not in keys else f"{name}#{index}"  # as the executor keys them
            keys.append(key)
            observed = [
                e["stage_statistics"]["stages"][key]
                for e in recent
                if key in e["stage_statistics"]["stages"]
            ]
            warnings = []
            if observed:
                est_in = round(fmean(s["input_count"] for s in observed))
                est_out = round(fmean(s["output_count"] for s in observed))
                duration = round(fmean(s["duration_ms"] for s in observed), 2)
            else:
                est_in, est_out = before, _planned_output(stage, before, body.inputs)
                duration = 0.0
                warnings.append("no recorded execution: counts from the parameters, time unknown")
            stage_type = stage["config"]["stage_id"]
            steps.append({
                "stage_index": index, "stage_name": name, "stage_type": stage_type,
                "estimated_input": est_in, "estimated_output": est_out,
                "estimated_efficiency": round(est_out / est_in, 4) if est_in else 1.0,
                "estimated_duration_ms": duration,
                "cache_likely": cached and stage_type == "feature_search",
                "warnings": warnings,
            })  # fmt: skip
            before = est_out
        total = sum(s["estimated_duration_ms"] for s in steps)
        bottlenecks = [
            s["stage_name"] for s in steps if total and s["estimated_duration_ms"] / total >= 0.5
        ]
        return {
            "retriever_id": retriever["retriever_id"],
            "retriever_name": retriever["retriever_name"],
            "estimated_cost": {"credits": 0.0, "duration_ms": round(total, 2)},
            "execution_plan": steps,
            "total_estimated_stages": len(steps),
            "bottleneck_stages": bottlenecks,
            "based_on_executions": len(recent),
        }

    return await run_in_threadpool(plan)


# -- typeahead ------------------------------------------------------------------------------------


class Suggestion(BaseModel):
    field: str
    value: str
    count: int


class CollectionSuggestion(BaseModel):
    collection_id: str
    collection_name: str


class Typeahead(BaseModel):
    query: str
    suggestions: list[str]
    values: list[Suggestion]
    collections: list[CollectionSuggestion]
    recent_searches: list[str]


@router.get(
    "/typeahead",
    summary="Completions of a typed prefix: metadata values, collections, recent searches",
    response_model=Typeahead,
)
async def typeahead(
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    q: str = Query(min_length=1, max_length=200, description="the typed prefix"),
    fields: str | None = Query(
        default=None, description="comma-separated metadata fields whose values complete it"
    ),
    limit: int = Query(default=10, ge=1, le=50),
) -> dict[str, Any]:
    prefix = {"$regex": f"^{re.escape(q)}", "$options": "i"}

    def complete() -> dict[str, Any]:
        names = [f.strip() for f in (fields or "").split(",") if f.strip()]
        collections = platform.collections.list(namespace)
        values = []
        for name in names:
            path = name if name.startswith("metadata.") else f"metadata.{name}"
            for collection in collections:
                found = platform.documents.distinct(
                    namespace, collection["collection_id"], path, match={path: prefix},
                    limit=limit,
                )  # fmt: skip
                values += [
                    {"field": name, "value": str(v["value"]), "count": v["count"]}
                    for v in found["values"]
                    if isinstance(v["value"], str) and v["value"].lower().startswith(q.lower())
                ]
        merged: dict[tuple[str, str], int] = {}
        for v in values:
            merged[(v["field"], v["value"])] = merged.get((v["field"], v["value"]), 0) + v["count"]
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
        recent = platform.retrievers.history.recent_queries(namespace, prefix, limit=limit)
        return {
            "query": q,
            "suggestions": list(dict.fromkeys([v for (_, v), _ in ranked] + recent))[:limit],
            "values": [{"field": f, "value": v, "count": n} for (f, v), n in ranked],
            "collections": [
                {"collection_id": c["collection_id"], "collection_name": c["collection_name"]}
                for c in collections
                if c["collection_name"].lower().startswith(q.lower())
            ][:limit],
            "recent_searches": recent,
        }

    return await run_in_threadpool(complete)
