"""Tasks: ``/v1/tasks...``, the hosted handle on an asynchronous operation (a collection's
trigger or re-processing), its status read from the ingestion batches it planned."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.hosted import ListBody, ListParamsDep, listing
from mixpeek_orchestration.api.schemas import ErrorResponse, ListPage

router = APIRouter(
    prefix="/v1/tasks",
    tags=["tasks"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


class TaskOut(BaseModel):
    task_id: str
    task_type: str
    status: Literal[
        "PENDING", "IN_PROGRESS", "COMPLETED", "COMPLETED_WITH_ERRORS", "FAILED", "CANCELED"
    ]
    namespace_id: str
    inputs: list[dict[str, Any]] = Field(description="what the task was asked (one object)")
    outputs: list[dict[str, Any]] = Field(description="what it did so far (one object)")
    error: str | None = None
    created_at: datetime


def task_out(task: dict[str, Any]) -> dict[str, Any]:
    """A task in the hosted shape: its inputs and outputs are lists (of one object here)."""
    return task | {"inputs": [task["inputs"]], "outputs": [task["outputs"]]}


class TaskList(ListPage):
    results: list[TaskOut]


@router.post("/list", summary="List the namespace's tasks", response_model=TaskList)
async def list_tasks(
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: ListBody = None,
) -> dict[str, Any]:
    tasks = await run_in_threadpool(platform.planner.list_tasks, namespace)
    return listing([task_out(t) for t in tasks], params.merged(body))


@router.get("/{task_id}", summary="A task and its status", response_model=TaskOut)
async def get_task(
    task_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return task_out(await run_in_threadpool(platform.planner.task, namespace, task_id))


class TaskCanceled(BaseModel):
    success: bool = True
    message: str
    task_id: str
    batches_canceled: int
    status: str


@router.delete(
    "/{task_id}", summary="Cancel a task (its batches not yet running)", response_model=TaskCanceled
)
async def cancel_task(
    task_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    done = await run_in_threadpool(platform.planner.cancel_task, namespace, task_id)
    return done | {"message": f"{done['batches_canceled']} waiting batch(es) canceled"}
