"""Uploaded models: ``/v1/models`` (the organisation's) and ``/v1/namespaces/{id}/models``
(what a namespace's plugins may load), in the hosted shapes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from mixpeek_orchestration.api.deps import CallerDep, PathNamespaceDep, PlatformDep
from mixpeek_orchestration.api.errors import error_response
from mixpeek_orchestration.api.hosted import HostedRequest
from mixpeek_orchestration.api.schemas import (
    ErrorResponse,
    ModelConfirm,
    ModelConfirmed,
    ModelDeleted,
    ModelDetail,
    ModelItem,
    ModelList,
    ModelUploadCreate,
    ModelUploadTicket,
)
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.plugins.models import StoredModels, uploaded_models_dir
from mixpeek_orchestration.plugins.records import DeploymentStatus
from mixpeek_orchestration.tenancy.accounts import Namespace

router = APIRouter(
    prefix="/v1/models",
    tags=["models"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)
CHUNK = 1 << 20
namespace_router = APIRouter(
    prefix="/v1/namespaces/{namespace_id}/models",
    tags=["models"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)


def _deployed(platform: Platform, org_id: str) -> set[tuple[str, str]]:
    """``(namespace_id, plugin_id)`` of the organisation's deployed plugin versions."""
    namespaces = {n.namespace_id for n in platform.accounts.namespaces_of(org_id)}
    return {
        (v["namespace_id"], v["plugin_id"])
        for v in platform.registry.with_deployment(DeploymentStatus.DEPLOYED)
        if v["namespace_id"] in namespaces
    }


def _item(
    model: dict[str, Any], deployed: set[tuple[str, str]], namespace_id: str | None = None
) -> ModelItem:
    users = {(u["namespace_id"], u["plugin_id"]) for u in model.get("used_by", [])}
    if namespace_id is not None:
        users = {u for u in users if u[0] == namespace_id}
    return ModelItem(**model, deployed=bool(users & deployed))


@router.post(
    "/uploads",
    response_model=ModelUploadTicket,
    responses={409: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
async def create_model_upload(
    body: ModelUploadCreate, caller: CallerDep, platform: PlatformDep
) -> dict[str, Any]:
    """A presigned URL to ``PUT`` the model file to (safetensors, ONNX, or a zipped
    sentence-transformers directory), then confirm the upload."""
    return await run_in_threadpool(
        lambda: platform.models.create_upload(
            caller.org_id, name=body.name, version=body.version, model_format=body.model_format,
            description=body.description, file_size_bytes=body.file_size_bytes,
            expires_in=body.presigned_url_expiration,
        )
    )  # fmt: skip


@router.post(
    "/uploads/{upload_id}/confirm",
    response_model=ModelConfirmed,
    responses={422: {"model": ErrorResponse}},
)
async def confirm_model_upload(
    upload_id: str, caller: CallerDep, platform: PlatformDep, body: ModelConfirm | None = None
) -> Any:
    """Check the uploaded file and register the model; a file that is not a loadable model of
    its format is refused (422, naming why) and deleted."""
    answer = await run_in_threadpool(platform.models.confirm, caller.org_id, upload_id)
    if not answer["success"]:
        detail = f"model upload refused: {answer['message']}"
        return error_response(422, detail, "invalid_request", answer)
    model = answer.pop("model")
    deployed = await run_in_threadpool(_deployed, platform, caller.org_id)
    return {**answer, "model": _item(model, deployed).model_dump(mode="json")}


@router.get("", response_model=ModelList)
async def list_models(caller: CallerDep, platform: PlatformDep) -> dict[str, Any]:
    models = await run_in_threadpool(platform.models.list, caller.org_id)
    deployed = await run_in_threadpool(_deployed, platform, caller.org_id)
    items = [_item(m, deployed).model_dump(mode="json") for m in models]
    return {"success": True, "models": items, "total": len(items), "organization_id": caller.org_id}


@router.get("/{model_id}", response_model=ModelDetail)
async def get_model(model_id: str, caller: CallerDep, platform: PlatformDep) -> dict[str, Any]:
    model = await run_in_threadpool(platform.models.get, caller.org_id, model_id)
    deployed = await run_in_threadpool(_deployed, platform, caller.org_id)
    return {"success": True, "model": _item(model, deployed).model_dump(mode="json")}


class ModelDownload(BaseModel):
    model_id: str
    download_url: str
    expires_at: datetime
    sha256: str
    size_bytes: int


@router.get("/{model_id}/download", response_model=ModelDownload)
async def download_model(model_id: str, caller: CallerDep, platform: PlatformDep) -> ModelDownload:
    """A presigned URL to GET the model's file from (valid for an hour)."""

    def presign() -> ModelDownload:
        model = platform.models.get(caller.org_id, model_id)
        url = platform.objects.presign_get(model["key"], expires_in=3600)
        return ModelDownload(
            model_id=model["model_id"], download_url=url.url, expires_at=url.expires_at,
            sha256=model["sha256"], size_bytes=model["size_bytes"],
        )  # fmt: skip

    return await run_in_threadpool(presign)


@router.delete(
    "/{model_id}", response_model=ModelDeleted, responses={409: {"model": ErrorResponse}}
)
async def delete_model(model_id: str, caller: CallerDep, platform: PlatformDep) -> dict[str, Any]:
    """Remove a model and its file; 409 while a deployed plugin uses it."""

    return await run_in_threadpool(_delete, platform, caller.org_id, model_id)


def _delete(platform: Platform, org_id: str, model_id: str) -> dict[str, Any]:
    model = platform.models.get(org_id, model_id)
    platform.models.delete(org_id, model["model_id"], deployed=_deployed(platform, org_id))
    return {
        "model_id": model["model_id"],
        "deleted": True,
        "message": f"model {model['name']} {model['version']} and its file deleted",
    }


@namespace_router.get("", response_model=ModelList)
async def list_namespace_models(
    namespace: PathNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    """The organisation's models as the namespace sees them (``deployed``: loaded by one of
    its deployed plugins)."""
    models = await run_in_threadpool(platform.models.list, namespace.org_id)
    deployed = await run_in_threadpool(_deployed, platform, namespace.org_id)
    items = [_item(m, deployed, namespace.namespace_id).model_dump(mode="json") for m in models]
    return {"success": True, "models": items, "total": len(items),
            "namespace_id": namespace.namespace_id}  # fmt: skip


class ModelUploaded(BaseModel):
    success: bool = True
    model_id: str
    deployment_status: str
    endpoint: str
    model_archive_url: str
    model: ModelItem


@namespace_router.post(
    "",
    response_model=ModelUploaded,
    responses={409: {"model": ErrorResponse}, 413: {"model": ErrorResponse},
               422: {"model": ErrorResponse}},
)  # fmt: skip
async def upload_namespace_model(
    namespace: PathNamespaceDep,
    platform: PlatformDep,
    file: Annotated[
        UploadFile | str,
        File(
            description="the model: a .safetensors or .onnx file, or a zipped "
            "sentence-transformers directory (a file part; a plain field is taken as its bytes)"
        ),
    ],
    name: Annotated[str, Form()],
    version: Annotated[str, Form()],
    model_format: Annotated[str, Form()],
    description: Annotated[str | None, Form()] = None,
    framework: Annotated[str | None, Form(description="accepted, not used")] = None,
    task_type: Annotated[str | None, Form(description="accepted, not used")] = None,
    num_cpus: Annotated[float | None, Form(description="accepted, not used")] = None,
    num_gpus: Annotated[int | None, Form(description="accepted, not used")] = None,
    memory_gb: Annotated[float | None, Form(description="accepted, not used")] = None,
) -> Any:
    """Upload and register a model in one request (the presigned flow of ``/v1/models`` in
    one call, with the same checks); the organisation's, as every model is."""

    def chunks() -> Iterator[bytes]:
        if isinstance(file, str):  # the official client sends the file as a form field
            yield file.encode()
            return
        while chunk := file.file.read(CHUNK):
            yield chunk

    answer = await run_in_threadpool(
        lambda: platform.models.upload(
            namespace.org_id, chunks(), name=name, version=version, model_format=model_format,
            description=description,
        )
    )  # fmt: skip
    if not answer["success"]:
        return error_response(
            422, f"model upload refused: {answer['message']}", "invalid_request", answer
        )
    model = answer["model"]
    url = platform.objects.presign_get(model["key"], expires_in=3600).url
    deployed = await run_in_threadpool(_deployed, platform, namespace.org_id)
    return {
        "model_id": model["model_id"],
        "deployment_status": "uploaded",
        "endpoint": f"/v1/models/{model['model_id']}",
        "model_archive_url": url,
        "model": _item(model, deployed, namespace.namespace_id).model_dump(mode="json"),
    }


class AvailableModel(BaseModel):
    model_id: str
    name: str
    version: str
    model_format: str
    description: str | None = None
    enabled_in_namespace: bool


class AvailableModels(BaseModel):
    success: bool = True
    models: list[AvailableModel]
    total: int
    namespace_id: str


@namespace_router.get("/available", response_model=AvailableModels)
async def available_models(namespace: PathNamespaceDep, platform: PlatformDep) -> dict[str, Any]:
    """The organisation's models, and whether this namespace's plugins may load each."""
    models = await run_in_threadpool(platform.models.list, namespace.org_id)
    items = [
        m | {"enabled_in_namespace": platform.models.enabled_in(m, namespace.namespace_id)}
        for m in models
    ]
    return {"models": items, "total": len(items), "namespace_id": namespace.namespace_id}


class EnableModel(HostedRequest):
    hosted_fields = frozenset({"resource_overrides"})

    deploy: bool = Field(
        default=False,
        description="accepted; a model has no deployment of its own here: the plugins that "
        "name it load it",
    )


class ModelEnabled(BaseModel):
    success: bool = True
    model_id: str
    namespace_id: str
    deployment_status: str
    message: str


async def _set_enabled(
    platform: Platform, namespace: Namespace, model_id: str, enabled: bool
) -> dict[str, Any]:
    def change() -> dict[str, Any]:
        deployed = _deployed(platform, namespace.org_id)
        return platform.models.set_enabled(
            namespace.org_id, model_id, namespace.namespace_id, enabled, deployed=deployed
        )

    model = await run_in_threadpool(change)
    state = "enabled" if enabled else "disabled"
    return {
        "model_id": model["model_id"],
        "namespace_id": namespace.namespace_id,
        "deployment_status": state,
        "message": f"model {model['name']} {model['version']} {state} in this namespace: its "
        f"plugins {'may' if enabled else 'may no longer'} load it",
    }


@namespace_router.post("/org/{model_id}/enable", response_model=ModelEnabled)
async def enable_model(
    model_id: str,
    namespace: PathNamespaceDep,
    platform: PlatformDep,
    body: EnableModel | None = None,
) -> dict[str, Any]:
    """Let this namespace's plugins load the model again."""
    return await _set_enabled(platform, namespace, model_id, True)


@namespace_router.post(
    "/org/{model_id}/disable",
    response_model=ModelEnabled,
    responses={409: {"model": ErrorResponse}},
)
async def disable_model(
    model_id: str, namespace: PathNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    """Stop this namespace's plugins loading the model (409 while a deployed plugin of the
    namespace uses it); other namespaces are not affected."""
    return await _set_enabled(platform, namespace, model_id, False)


class ModelDeployed(BaseModel):
    success: bool = True
    model_id: str
    namespace_id: str
    deployment_status: str
    cached: bool = Field(description="it was in this node's model cache already")
    message: str


@namespace_router.post(
    "/{model_id}/deploy", response_model=ModelDeployed, responses={403: {"model": ErrorResponse}}
)
async def deploy_model(
    model_id: str, namespace: PathNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    """Warm this node's model cache with the model (fetched, its sha256 checked), so the
    first plugin host to load it here does not wait; hosts on other nodes fetch it on first
    use. 403 when the namespace disabled it."""

    def warm() -> dict[str, Any]:
        model = platform.models.get(namespace.org_id, model_id)
        if not platform.models.enabled_in(model, namespace.namespace_id):
            raise MixpeekError(
                ErrorCode.PERMISSION_DENIED,
                f"model {model['name']} is disabled in this namespace: enable it first",
            )
        cache = StoredModels(
            platform.models, namespace.org_id, uploaded_models_dir(),
            plugin_id="", namespace_id=namespace.namespace_id,
        )  # fmt: skip
        was = cache.cached(model).exists()
        cache.fetch(model)
        return {
            "model_id": model["model_id"],
            "namespace_id": namespace.namespace_id,
            "deployment_status": "cached",
            "cached": was,
            "message": f"model {model['name']} {model['version']} is in this node's model cache",
        }

    return await run_in_threadpool(warm)


@namespace_router.delete(
    "/{model_id}", response_model=ModelDeleted, responses={409: {"model": ErrorResponse}}
)
async def delete_namespace_model(
    model_id: str, namespace: PathNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    """Remove the (organisation's) model and its file; 409 while a deployed plugin uses it."""

    return await run_in_threadpool(_delete, platform, namespace.org_id, model_id)


@namespace_router.get("/{model_id}", response_model=ModelDetail)
async def get_namespace_model(
    model_id: str, namespace: PathNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    model = await run_in_threadpool(platform.models.get, namespace.org_id, model_id)
    deployed = await run_in_threadpool(_deployed, platform, namespace.org_id)
    return {
        "success": True,
        "model": _item(model, deployed, namespace.namespace_id).model_dump(mode="json"),
    }
