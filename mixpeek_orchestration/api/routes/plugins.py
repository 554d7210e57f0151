"""Plugin lifecycle: ``/v1/namespaces/{namespace_id}/plugins`` (SPEC §5).

Upload URL -> PUT -> confirm (gate, scan, manifest, dry run) -> versions, status, source,
rollback, diff, log, delete. Deployment routes arrive with the realtime layer.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from mixpeek_orchestration.api.deps import CallerDep, PathNamespaceDep, PlatformDep
from mixpeek_orchestration.api.errors import error_response
from mixpeek_orchestration.api.schemas import (
    ConfirmRequest,
    ConfirmResponse,
    DiffResponse,
    ErrorResponse,
    LogResponse,
    NextVersion,
    PluginDeleted,
    PluginDetail,
    PluginDocument,
    PluginList,
    PluginListItem,
    PluginResponse,
    PluginStatus,
    RollbackRequest,
    RollbackResponse,
    UploadCreate,
    UploadResponse,
    VersionList,
)
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.records import DeploymentStatus, PluginVersion, route_prefix
from mixpeek_orchestration.sdk._manifest import SLUG_PATTERN
from mixpeek_orchestration.tenancy.accounts import Namespace

PluginName = Annotated[
    str, Path(pattern=SLUG_PATTERN, description="a plugin's name (lowercase letters, digits, _)")
]

router = APIRouter(
    prefix="/v1/namespaces/{namespace_id}/plugins",
    tags=["plugins"],
    responses={
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)


def _plugin(doc: Mapping[str, Any], namespace: Namespace) -> PluginResponse:
    manifest = doc.get("manifest", {})
    return PluginResponse(
        plugin_id=doc["plugin_id"],
        name=doc["name"],
        version=doc["version"],
        description=doc.get("description", ""),
        namespace_id=doc["namespace_id"],
        feature_uris=doc["feature_uris"],
        features=doc["features"],
        sha256=doc["sha256"],
        size_bytes=doc["size_bytes"],
        message=doc.get("message", ""),
        created_at=doc["created_at"],
        created_by=doc["created_by"],
        is_active=doc.get("is_active", False),
        status=DeploymentStatus.of(doc).value,
        route_prefix=route_prefix(namespace.namespace_id, doc["plugin_id"]),
        parameter_schema=manifest.get("parameter_schema"),
        input_schema=manifest.get("input_schema"),
        output_schema=manifest.get("output_schema"),
        supported_input_types=manifest.get("supported_input_types", []),
        secrets=manifest.get("secrets", []),
        warnings=doc.get("warnings", []),
    )


def _confirm_answer(result: dict[str, Any]) -> JSONResponse:
    """200 with the registration, or 422 with ``detail`` and the violations / errors."""
    if result["success"]:
        return JSONResponse(ConfirmResponse.model_validate(result).model_dump(mode="json"))
    fields = ConfirmResponse.model_validate(result).model_dump(mode="json")
    fields["stage"] = result.get("stage")
    code = {
        "archive": "archive_rejected",
        "scan": "security_scan_failed",
        "manifest": "invalid_manifest",
        "pipeline": "invalid_plugin",
    }.get(result.get("stage", ""), "invalid_plugin")
    return error_response(422, result.get("detail", "Validation failed"), code, fields)


@router.post("/uploads", response_model=UploadResponse)
async def create_upload(
    body: UploadCreate, namespace: PathNamespaceDep, caller: CallerDep, platform: PlatformDep
) -> UploadResponse:
    """Get a URL to PUT the plugin's zip archive to (``Content-Type: application/zip``)."""
    ticket = await run_in_threadpool(
        platform.registry.create_upload,
        caller,
        namespace,
        name=body.name,
        version=body.version,
        description=body.description,
        file_size_bytes=body.file_size_bytes,
        expires_in=body.presigned_url_expiration,
    )
    return UploadResponse(
        upload_id=ticket.upload_id,
        presigned_url=ticket.presigned_url,
        expires_at=ticket.expires_at,
        upload_headers=ticket.headers,
        max_size_bytes=ticket.max_size_bytes,
        name=ticket.name,
        version=ticket.version,
        namespace_id=namespace.namespace_id,
        s3_key=ticket.object_key,
    )


@router.post(
    "/uploads/{upload_id}/confirm",
    response_model=ConfirmResponse,
    responses={422: {"description": "Validation failed: detail, violations, validation_errors"}},
)
async def confirm_upload(
    upload_id: str,
    namespace: PathNamespaceDep,
    caller: CallerDep,
    platform: PlatformDep,
    body: ConfirmRequest | None = None,
) -> JSONResponse:
    """Check the uploaded archive and register the version; idempotent."""
    result = await run_in_threadpool(
        platform.registry.confirm_upload,
        caller,
        namespace,
        upload_id,
        message=(body.message if body else ""),
    )
    return _confirm_answer(result | {"upload_id": upload_id})


@router.post(
    "",
    response_model=ConfirmResponse,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/zip": {"schema": {"type": "string", "format": "binary"}},
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "name": {"type": "string"},
                            "version": {"type": "string"},
                            "message": {"type": "string"},
                        },
                        "required": ["file"],
                    }
                },
            }
        }
    },
)
async def publish(
    request: Request,
    namespace: PathNamespaceDep,
    caller: CallerDep,
    platform: PlatformDep,
    name: Annotated[str | None, Query()] = None,
    version: Annotated[str | None, Query()] = None,
    message: Annotated[str, Query()] = "",
) -> JSONResponse:
    """One-shot upload: the zip as the body (``application/zip``) or a multipart ``file``."""
    content_type = request.headers.get("content-type", "")
    registry = platform.registry
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=8)
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST, "multipart body needs a 'file' part", field="file"
            )
        fields = {k: str(form[k]) for k in ("name", "version", "message") if k in form}
        result = await run_in_threadpool(
            registry.publish_archive,
            caller,
            namespace,
            upload.file,
            name=fields.get("name", name),
            version=fields.get("version", version),
            message=fields.get("message", message),
        )
        return _confirm_answer(result)
    if content_type not in (
        "application/zip",
        "application/octet-stream",
        "application/x-zip-compressed",
    ):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"Send the archive as application/zip or multipart/form-data, not {content_type or 'no content type'}",
        )
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > registry.limits.max_compressed_bytes:
                raise MixpeekError(
                    ErrorCode.PAYLOAD_TOO_LARGE,
                    f"Archive exceeds the limit of {registry.limits.max_compressed_bytes} bytes",
                )
            spool.write(chunk)
        spool.seek(0)
        result = await run_in_threadpool(
            registry.publish_archive,
            caller,
            namespace,
            spool,
            name=name,
            version=version,
            message=message,
        )
    return _confirm_answer(result)


@router.post("/builtins/{name}", response_model=ConfirmResponse)
async def install_builtin(
    name: PluginName, namespace: PathNamespaceDep, caller: CallerDep, platform: PlatformDep
) -> JSONResponse:
    """Install a built-in extractor (``text_extractor``, ``image_extractor``) as a plugin of
    this namespace; deploy it like any plugin. Idempotent."""
    import io

    from mixpeek_orchestration.extractors.packaging import builtin_plugin_archive

    archive = await run_in_threadpool(builtin_plugin_archive, name)
    result = await run_in_threadpool(
        platform.registry.publish_archive,
        caller,
        namespace,
        io.BytesIO(archive),
        name=name,
        message="built-in",
    )
    return _confirm_answer(result)


@router.get("", response_model=PluginList)
async def list_plugins(namespace: PathNamespaceDep, platform: PlatformDep) -> PluginList:
    docs = await run_in_threadpool(platform.registry.list_plugins, namespace)
    plugins = [_plugin(d, namespace) for d in docs]
    items = [
        PluginListItem(
            plugin_id=p.plugin_id, name=p.name, version=p.version, description=p.description,
            deployed=p.status == "DEPLOYED", validation_status="passed",
            feature_uri=p.feature_uris[0] if p.feature_uris else "",
            created_at=p.created_at, updated_at=d.get("updated_at") or p.created_at,
        )
        for p, d in zip(plugins, docs, strict=True)
    ]  # fmt: skip
    return PluginList(
        results=plugins, total=len(docs), plugins=items, namespace_id=namespace.namespace_id
    )


@router.get("/by-name/{name}/versions", response_model=VersionList)
async def list_versions(
    name: PluginName, namespace: PathNamespaceDep, platform: PlatformDep
) -> VersionList:
    docs = await run_in_threadpool(platform.registry.versions_of, namespace, name)
    active = next((d["version"] for d in docs if d.get("is_active")), None)
    return VersionList(
        name=name, active_version=active, versions=[_plugin(d, namespace) for d in docs]
    )


@router.get("/by-name/{name}/next-version", response_model=NextVersion)
async def next_version(
    name: PluginName,
    namespace: PathNamespaceDep,
    platform: PlatformDep,
    manifest_version: Annotated[str | None, Query()] = None,
) -> NextVersion:
    """The version `push` registers when none is given: latest + patch (or the manifest's)."""
    version = await run_in_threadpool(
        platform.registry.next_version, namespace, name, manifest_version
    )
    return NextVersion(name=name, version=version)


@router.post("/by-name/{name}/rollback", response_model=RollbackResponse)
async def rollback(
    name: PluginName,
    body: RollbackRequest,
    namespace: PathNamespaceDep,
    caller: CallerDep,
    platform: PlatformDep,
) -> RollbackResponse:
    """Make an earlier version the active one."""
    result = await run_in_threadpool(
        platform.registry.rollback, caller, namespace, name, body.version, message=body.message
    )
    platform.lookups.forget_plugins(namespace.namespace_id)
    return RollbackResponse(**result)


@router.get("/by-name/{name}/diff", response_model=DiffResponse)
async def diff(
    name: PluginName,
    namespace: PathNamespaceDep,
    platform: PlatformDep,
    v1: Annotated[str, Query()],
    v2: Annotated[str, Query()],
) -> DiffResponse:
    """Per-file unified diff of two versions."""
    return DiffResponse(**await run_in_threadpool(platform.registry.diff, namespace, name, v1, v2))


@router.get("/by-name/{name}/log", response_model=LogResponse)
async def log(name: PluginName, namespace: PathNamespaceDep, platform: PlatformDep) -> LogResponse:
    """History: publishes, rollbacks and deletions with timestamps, messages and who."""
    entries = await run_in_threadpool(platform.registry.log, namespace, name)
    return LogResponse(name=name, entries=entries)  # type: ignore[arg-type]


@router.get("/{plugin_id}", response_model=PluginDetail)
async def get_plugin(
    plugin_id: str, namespace: PathNamespaceDep, platform: PlatformDep
) -> PluginDetail:
    """A version, with the hosted ``plugin`` envelope (client 1.3.1) beside its fields."""

    def load() -> PluginVersion:
        doc = platform.registry.get_version(namespace, plugin_id)
        doc["is_active"] = platform.registry.is_active(namespace, doc)
        return doc

    doc = await run_in_threadpool(load)
    out = _plugin(doc, namespace)
    hosted = PluginDocument(
        plugin_id=out.plugin_id, name=out.name, version=out.version,
        namespace_id=out.namespace_id, description=out.description,
        s3_archive_url=doc["archive_key"], code_hash=out.sha256, validation_status="passed",
        security_scan_passed=True, deployed=out.status == "DEPLOYED",
        manifest=dict(doc.get("manifest") or {}), created_at=out.created_at,
    )  # fmt: skip
    return PluginDetail(**out.model_dump(), plugin=hosted)


@router.get("/{plugin_id}/status", response_model=PluginStatus)
async def plugin_status(
    plugin_id: str, namespace: PathNamespaceDep, platform: PlatformDep
) -> PluginStatus:
    doc = await run_in_threadpool(platform.registry.get_version, namespace, plugin_id)
    deployment = doc.get("deployment", {})
    declared = list((doc.get("manifest") or {}).get("secrets") or [])
    stored = await run_in_threadpool(platform.secrets.present, namespace.org_id, declared)
    return PluginStatus(
        namespace_id=namespace.namespace_id,
        name=doc["name"],
        version=doc["version"],
        deployed=DeploymentStatus.of(doc) is DeploymentStatus.DEPLOYED,
        secrets=declared,
        missing_secrets=[name for name in declared if name not in stored],
        plugin_id=plugin_id,
        status=DeploymentStatus.of(doc).value,
        error=deployment.get("error"),
        route_prefix=route_prefix(namespace.namespace_id, plugin_id),
        feature_uri=doc["feature_uris"][0] if doc["feature_uris"] else None,
        feature_uris=doc["feature_uris"],
        deployed_at=deployment.get("deployed_at"),
        active_version=doc["version"],
    )


@router.get(
    "/{plugin_id}/source",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
            "description": "the version's archive",
        }
    },
)
async def plugin_source(
    plugin_id: str, namespace: PathNamespaceDep, platform: PlatformDep
) -> StreamingResponse:
    """Download the version's archive (the exact bytes that were scanned)."""
    doc = await run_in_threadpool(platform.registry.get_version, namespace, plugin_id)
    handle = await run_in_threadpool(platform.objects.open_read, doc["archive_key"])

    def chunks():  # type: ignore[no-untyped-def]
        with handle:
            yield from iter(lambda: handle.read(1024 * 1024), b"")

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{plugin_id}.zip"',
            "X-Content-SHA256": doc["sha256"],
        },
    )


@router.delete("/{plugin_id}", response_model=PluginDeleted)
async def delete_plugin(
    plugin_id: str, namespace: PathNamespaceDep, caller: CallerDep, platform: PlatformDep
) -> PluginDeleted:
    deleted = await run_in_threadpool(
        platform.registry.delete_version, caller, namespace, plugin_id
    )
    platform.lookups.forget_plugins(namespace.namespace_id)
    return PluginDeleted(**deleted, message=f"plugin {plugin_id} deleted")
