"""Liveness and component health."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel

from mixpeek_orchestration.api.deps import ControlDep
from mixpeek_orchestration.health import ComponentHealth

router = APIRouter(tags=["health"])


class HealthResponse(BaseModel):
    status: Literal["ok", "degraded"]
    components: dict[str, ComponentHealth]


class LiveResponse(BaseModel):
    status: Literal["ok"] = "ok"


@router.get("/healthz", response_model=HealthResponse)
async def healthz(platform: ControlDep) -> HealthResponse:
    """Health of every component: metadata, objects, vectors, ray, serve, dagster."""
    components = await asyncio.to_thread(platform.health)
    healthy = all(c.status == "ok" for c in components.values())
    return HealthResponse(status="ok" if healthy else "degraded", components=components)


@router.get("/livez", response_model=LiveResponse)
async def livez() -> LiveResponse:
    """The API process is up (no component checks)."""
    return LiveResponse()
