"""Request dependencies, as ``Annotated`` aliases routes can declare."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from mixpeek_orchestration.observability import TENANT
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.storage.refreshing import Refreshing
from mixpeek_orchestration.tenancy.accounts import Caller, Namespace, hash_key

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


def get_control(request: Request) -> Platform:
    """The control plane: organisations, API keys and tenant configs (and the shared plane)."""
    return request.app.state.platform  # type: ignore[no-any-return]


ControlDep = Annotated[Platform, Depends(get_control)]


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _identify(request: Request, caller: Caller) -> Caller:
    request.state.tenant = caller.org_id
    TENANT.set(caller.org_id)
    return caller


async def get_caller(
    request: Request,
    platform: ControlDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> Caller:
    """The organisation behind the ``Authorization: Bearer`` key (401 otherwise); it labels
    the request's metrics from here on."""
    caller = await run_in_threadpool(platform.accounts.authenticate, _bearer(authorization))
    return _identify(request, caller)


CallerDep = Annotated[Caller, Depends(get_caller)]


async def cached(cache: Refreshing[K, V], key: K) -> V:
    """From memory when there (no thread hop), else loaded off the event loop."""
    hit = cache.peek(key)
    return hit if hit is not None else await run_in_threadpool(cache.get, key)


async def get_realtime_caller(
    request: Request,
    platform: ControlDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
) -> Caller:
    """:func:`get_caller` for the realtime path, from :attr:`Platform.lookups` (a revoked key
    stops working within ``MIXPEEK_LOOKUP_REFRESH_S``)."""
    key = _bearer(authorization)
    if not key:
        await run_in_threadpool(platform.accounts.authenticate, key)  # its 401, worded once
    caller = await cached(platform.lookups.callers, hash_key(key or ""))
    return _identify(request, caller)


RealtimeCallerDep = Annotated[Caller, Depends(get_realtime_caller)]


async def get_platform(caller: CallerDep, control: ControlDep) -> Platform:
    """The caller's data plane: the shared one, or its tenant's dedicated one. Everything a
    request reads or writes after authentication goes through it."""
    if caller.tenant is None:
        return control
    return await run_in_threadpool(control.planes.get, caller.tenant)


PlatformDep = Annotated[Platform, Depends(get_platform)]


async def get_realtime_platform(caller: RealtimeCallerDep, control: ControlDep) -> Platform:
    if caller.tenant is None:
        return control
    return await run_in_threadpool(control.planes.get, caller.tenant)


RealtimePlatformDep = Annotated[Platform, Depends(get_realtime_platform)]


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


async def realtime_path_namespace(
    namespace_id: str, caller: RealtimeCallerDep, platform: RealtimePlatformDep
) -> Namespace:
    return await cached(platform.lookups.namespaces, (caller, namespace_id))


async def realtime_header_namespace(
    caller: RealtimeCallerDep,
    platform: RealtimePlatformDep,
    x_namespace: Annotated[str | None, Header(description="Namespace id or name")] = None,
) -> Namespace:
    if not x_namespace:  # its 400, worded once
        await run_in_threadpool(platform.accounts.resolve_namespace, caller, x_namespace)
    return await cached(platform.lookups.namespaces, (caller, x_namespace or ""))


RealtimePathNamespaceDep = Annotated[Namespace, Depends(realtime_path_namespace)]
RealtimeHeaderNamespaceDep = Annotated[Namespace, Depends(realtime_header_namespace)]


async def optional_header_namespace(
    request: Request,
    control: ControlDep,
    authorization: Annotated[str | None, Header(description="Bearer <API key>")] = None,
    x_namespace: Annotated[str | None, Header(description="Namespace id or name")] = None,
) -> tuple[Platform, Namespace] | None:
    """For a public route: the caller's plane and ``X-Namespace`` namespace when a key is
    sent (a wrong key or namespace is still an error), ``None`` when none is."""
    if not authorization:
        return None
    caller = await get_caller(request, control, authorization)
    platform = await get_platform(caller, control)
    namespace = await run_in_threadpool(platform.accounts.resolve_namespace, caller, x_namespace)
    return platform, namespace


OptionalNamespaceDep = Annotated[
    tuple[Platform, Namespace] | None, Depends(optional_header_namespace)
]
