"""The caller's organisation: ``/v1/organizations/secrets``.

Secrets are stored encrypted and never answered back: every route returns names and timestamps
only (:mod:`mixpeek_orchestration.tenancy.secrets`).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from mixpeek_orchestration.api.deps import CallerDep, PlatformDep
from mixpeek_orchestration.api.schemas import (
    ErrorResponse,
    SecretCreate,
    SecretInfo,
    SecretList,
    SecretResponse,
    SecretUpdate,
)

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
    secret_name: str, body: SecretUpdate, caller: CallerDep, platform: PlatformDep
) -> SecretResponse:
    """Replace a secret's value; plugins read the new one within seconds."""
    stored = await run_in_threadpool(
        platform.secrets.update, caller.org_id, secret_name, body.secret_value
    )
    return SecretResponse(updated=True, **stored)


@router.delete("/secrets/{secret_name}", response_model=SecretResponse)
async def delete_secret(
    secret_name: str, caller: CallerDep, platform: PlatformDep
) -> SecretResponse:
    """Remove a secret; a plugin declaring it then fails the rows / requests that read it."""
    await run_in_threadpool(platform.secrets.delete, caller.org_id, secret_name)
    return SecretResponse(secret_name=secret_name, deleted=True)
