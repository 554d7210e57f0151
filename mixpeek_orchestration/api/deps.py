"""Request dependencies, as ``Annotated`` aliases routes can declare."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from mixpeek_orchestration.observability import TENANT
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.tenancy.accounts import Caller, Namespace


def get_control(request: Request) -> Platform:
    """The control plane: organisations, API keys and tenant configs (and the shared plane)."""
    return request.app.state.platform  # type: ignore[no-any-return]


ControlDep = Annotated[Platform, Depends(get_control)]


async def get_caller(
    request: Request,
    platform: ControlDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> Caller:
    """The organisation behind the ``Authorization: Bearer`` key (401 otherwise); it labels
    the request's metrics from here on."""
    key = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        key = value.strip() if scheme.lower() == "bearer" else None
    caller = await run_in_threadpool(platform.accounts.authenticate, key)
    request.state.tenant = caller.org_id
    TENANT.set(caller.org_id)
    return caller


CallerDep = Annotated[Caller, Depends(get_caller)]


async def get_platform(caller: CallerDep, control: ControlDep) -> Platform:
    """The caller's data plane: the shared one, or its tenant's dedicated one. Everything a
    request reads or writes after authentication goes through it."""
    if caller.tenant is None:
        return control
    return await run_in_threadpool(control.planes.get, caller.tenant)


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def path_namespace(namespace_id: str, caller: CallerDep, platform: PlatformDep) -> Namespace:
    """The namespace named in the path (by id or name), within the caller's organisation."""
    return await run_in_threadpool(platform.accounts.resolve_namespace, caller, namespace_id)


async def header_namespace(
    caller: CallerDep,
    platform: PlatformDep,
    x_namespace: Annotated[str | None, Header(description="Namespace id or name")] = None,
) -> Namespace:
    """The namespace of the ``X-Namespace`` header, within the caller's organisation."""
    return await run_in_threadpool(platform.accounts.resolve_namespace, caller, x_namespace)


PathNamespaceDep = Annotated[Namespace, Depends(path_namespace)]
HeaderNamespaceDep = Annotated[Namespace, Depends(header_namespace)]
