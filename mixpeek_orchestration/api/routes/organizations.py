"""The caller's organisation: ``/v1/organizations/secrets`` and ``/v1/organizations/usage``.

Secrets are stored encrypted and never answered back: every route returns names and timestamps
only (:mod:`mixpeek_orchestration.tenancy.secrets`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.concurrency import run_in_threadpool

from mixpeek_orchestration.api.deps import CallerDep, PlatformDep
from mixpeek_orchestration.api.schemas import (
    ErrorResponse,
    SecretCreate,
    SecretInfo,
    SecretList,
    SecretResponse,
    SecretUpdate,
    UsageReport,
    UsageRow,
)
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.llm.usage import GROUPS
from mixpeek_orchestration.tenancy.secrets import SECRET_NAME

SecretName = Annotated[
    str,
    Path(pattern=SECRET_NAME.pattern, description="letters, digits, '_', '.', '-' (max 100)"),
]

router = APIRouter(
    prefix="/v1/organizations",
    tags=["organizations"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


@router.post("/secrets", response_model=SecretResponse, responses={409: {"model": ErrorResponse}})
async def create_secret(
    body: SecretCreate, caller: CallerDep, platform: PlatformDep
) -> SecretResponse:
    """Store a secret for the organisation's plugins (409 if the name is taken: PUT replaces)."""
    stored = await run_in_threadpool(
        platform.secrets.create, caller.org_id, body.secret_name, body.secret_value
    )
    return SecretResponse(created=True, **stored)


@router.get("/secrets", response_model=SecretList)
async def list_secrets(caller: CallerDep, platform: PlatformDep) -> SecretList:
    """The organisation's secret names and timestamps; values are never returned."""
    stored = await run_in_threadpool(platform.secrets.list, caller.org_id)
    return SecretList(
        secrets=[s["secret_name"] for s in stored],
        count=len(stored),
        results=[SecretInfo(**s) for s in stored],
    )


@router.put("/secrets/{secret_name}", response_model=SecretResponse)
async def update_secret(
    secret_name: SecretName, body: SecretUpdate, caller: CallerDep, platform: PlatformDep
) -> SecretResponse:
    """Replace a secret's value; plugins read the new one within seconds."""
    stored = await run_in_threadpool(
        platform.secrets.update, caller.org_id, secret_name, body.secret_value
    )
    return SecretResponse(updated=True, **stored)


@router.delete("/secrets/{secret_name}", response_model=SecretResponse)
async def delete_secret(
    secret_name: SecretName, caller: CallerDep, platform: PlatformDep
) -> SecretResponse:
    """Remove a secret; a plugin declaring it then fails the rows / requests that read it."""
    await run_in_threadpool(platform.secrets.delete, caller.org_id, secret_name)
    return SecretResponse(secret_name=secret_name, deleted=True)


@router.get("/usage", response_model=UsageReport)
async def usage(
    caller: CallerDep,
    platform: PlatformDep,
    since: Annotated[
        str | None,
        Query(
            description="Only calls from then on (ISO 8601)",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    group_by: Annotated[
        str, Query(description=f"Comma-separated, among {', '.join(GROUPS)}")
    ] = ",".join(GROUPS),
) -> UsageReport:
    """What the organisation's plugins spent on LLM calls (``sdk.llm``): calls, errors, input
    and output tokens, USD and mean latency, by namespace, plugin, collection, provider and
    model (or the groups asked for)."""
    try:  # ISO 8601 only (pydantic would take a bare number for seconds since the epoch)
        after = datetime.fromisoformat(since) if since is not None else None
    except ValueError:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"since {since!r} is not an ISO 8601 date-time",
            field="since",
        ) from None
    groups = tuple(g.strip() for g in group_by.split(",") if g.strip())
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"cannot group usage by {unknown}; choose among {list(GROUPS)}",
            field="group_by",
        )
    rows = await run_in_threadpool(
        platform.llm_usage.report, caller.org_id, since=after, group_by=groups
    )
    totals = {
        key: round(sum(float(r[key]) for r in rows), 8)
        for key in ("calls", "errors", "input_tokens", "output_tokens", "cost_usd")
    }
    return UsageReport(
        org_id=caller.org_id,
        since=after,
        group_by=list(groups),
        totals=totals,
        results=[UsageRow(**r) for r in rows],
    )
