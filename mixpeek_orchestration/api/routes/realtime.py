"""Deployments and realtime calls: ``.../plugins/{plugin_id}/deploy|undeploy|realtime`` and
``/v1/inference``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.deps import (
    CallerDep,
    PathNamespaceDep,
    PlatformDep,
    RealtimeHeaderNamespaceDep,
    RealtimePathNamespaceDep,
    RealtimePlatformDep,
    cached,
)
from mixpeek_orchestration.api.hosted import HostedRequest
from mixpeek_orchestration.api.schemas import ErrorResponse
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.records import DeploymentStatus, PluginVersion, route_prefix
from mixpeek_orchestration.serve.relay import Relay, wrapped
from mixpeek_orchestration.tenancy.accounts import Namespace

router = APIRouter(
    tags=["realtime"], responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}}
)


class DeployResponse(BaseModel):
    status: Literal["queued", "not_deployed"]
    message: str
    route_prefix: str
    estimated_completion_seconds: int


class UndeployResponse(BaseModel):
    plugin_id: str
    status: Literal["NOT_DEPLOYED"] = "NOT_DEPLOYED"
    deployment_removed: bool


class RealtimeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inputs: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)


class RealtimeTestResponse(BaseModel):
    plugin_id: str
    latency_ms: float
    output: dict[str, Any]


class InferenceRequest(HostedRequest):
    hosted_fields = frozenset({"enable_semantic_cache", "cache_delta"})

    inference_name: str | None = Field(
        default=None, description="A plugin name (its serving version)"
    )
    feature_uri: str | None = Field(default=None, description="mixpeek://name@version/feature")
    inputs: dict[str, Any] = Field(default_factory=dict)
    parameters: dict[str, Any] = Field(default_factory=dict)
    provider: str | None = Field(
        default=None, description="hosted LLM-provider calls: not served here (422 if given)"
    )
    model: str | None = Field(default=None, description="with provider: not served here")


class InferenceResponse(BaseModel):
    """The hosted raw-inference answer: the plugin's output under ``data``."""

    data: dict[str, Any]
    provider: str = Field(description='"plugin": a realtime plugin deployment answered')
    model: str = Field(description="the plugin version that answered (its plugin_id)")
    plugin_id: str
    latency_ms: float
    cached: bool = False


PLUGIN = "/v1/namespaces/{namespace_id}/plugins/{plugin_id}"


@router.post(f"{PLUGIN}/deploy", response_model=DeployResponse)
async def deploy(
    plugin_id: str,
    namespace: PathNamespaceDep,
    caller: CallerDep,
    platform: PlatformDep,
    deployment_type: Annotated[Literal["realtime", "batch_only"], Query()] = "realtime",
) -> DeployResponse:
    """Queue a realtime deployment (a deployer picks it up within ~30 s)."""
    result = await run_in_threadpool(
        platform.deployer.request_deploy,
        caller,
        namespace,
        plugin_id,
        batch_only=deployment_type == "batch_only",
    )
    platform.lookups.forget_plugins(namespace.namespace_id)
    return DeployResponse(**result)


@router.post(f"{PLUGIN}/undeploy", response_model=UndeployResponse)
async def undeploy(
    plugin_id: str, namespace: PathNamespaceDep, platform: PlatformDep
) -> UndeployResponse:
    """Remove the version's Serve application (the archive is kept)."""
    removed = await run_in_threadpool(platform.deployer.request_removal, namespace, plugin_id)
    platform.lookups.forget_plugins(namespace.namespace_id)
    return UndeployResponse(plugin_id=plugin_id, deployment_removed=removed)


def _route(namespace: Namespace, doc: PluginVersion) -> str:
    """The deployment's route prefix (``not_deployed`` unless it is deployed)."""
    status = DeploymentStatus.of(doc)
    if status is not DeploymentStatus.DEPLOYED:
        raise MixpeekError(
            ErrorCode.NOT_DEPLOYED,
            f"{doc['plugin_id']} is not deployed (status {status.value}); "
            f"POST .../{doc['plugin_id']}/deploy first",
            status=status.value,
        )
    return route_prefix(namespace.namespace_id, doc["plugin_id"])


def _relay(request: Request) -> Relay:
    return request.app.state.relay  # type: ignore[no-any-return]


@router.post(f"{PLUGIN}/realtime", response_model=dict[str, Any])
async def realtime(
    plugin_id: str,
    body: RealtimeRequest,
    request: Request,
    namespace: RealtimePathNamespaceDep,
    platform: RealtimePlatformDep,
) -> Response:
    """Call the version's realtime handler; the answer is the handler's (its bytes, as sent)."""
    doc = await cached(platform.lookups.versions, (namespace, plugin_id))
    content, _ = await _relay(request).raw(
        platform.settings.serve_url, _route(namespace, doc), body.inputs, body.parameters
    )
    return Response(content, media_type="application/json")


@router.post(f"{PLUGIN}/realtime/test", response_model=RealtimeTestResponse)
async def realtime_test(
    plugin_id: str,
    body: RealtimeRequest,
    request: Request,
    namespace: RealtimePathNamespaceDep,
    platform: RealtimePlatformDep,
) -> RealtimeTestResponse:
    """Call the handler and report the round-trip latency with its answer."""
    doc = await cached(platform.lookups.versions, (namespace, plugin_id))
    output, latency = await _relay(request).call(
        platform.settings.serve_url, _route(namespace, doc), body.inputs, body.parameters
    )
    return RealtimeTestResponse(plugin_id=plugin_id, latency_ms=round(latency, 2), output=output)


@router.post("/v1/inference", response_model=InferenceResponse)
async def inference(
    body: InferenceRequest,
    request: Request,
    namespace: RealtimeHeaderNamespaceDep,
    platform: RealtimePlatformDep,
) -> Response:
    """Realtime inference by plugin name (its serving version) or by feature URI; the
    plugin's output comes back under ``data``."""
    if body.provider is not None or body.model is not None:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            "provider / model calls are not served by /v1/inference here: give inference_name "
            "or feature_uri of a realtime plugin (plugins reach LLMs through context.llm)",
            field="provider" if body.provider is not None else "model",
        )
    if (body.inference_name is None) == (body.feature_uri is None):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, "Give exactly one of inference_name or feature_uri"
        )

    lookups = platform.lookups
    if body.feature_uri is not None:
        doc = await cached(lookups.producers, (namespace, body.feature_uri))
    else:
        assert body.inference_name is not None
        doc = await cached(lookups.serving, (namespace, body.inference_name))
    content, latency = await _relay(request).raw(
        platform.settings.serve_url, _route(namespace, doc), body.inputs, body.parameters
    )
    fields = {
        "provider": "plugin", "model": doc["plugin_id"], "plugin_id": doc["plugin_id"],
        "latency_ms": round(latency, 2), "cached": False,
    }  # fmt: skip
    return Response(wrapped(content, "data", fields), media_type="application/json")
