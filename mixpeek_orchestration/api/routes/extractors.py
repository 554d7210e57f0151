"""The newer hosted plugin API, ``/v1/extractors...``: submissions (presigned PUT -> confirm,
checked as a plugin upload is), publishing a passed submission under a public name, installing
a published one into a namespace (it becomes a plugin version there), and the extractors a
namespace can use. The namespace plugin routes (versions, rollback, diff, deploy) stay."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.deps import (
    CallerDep,
    HeaderNamespaceDep,
    PlatformDep,
    get_caller,
    get_control,
    get_platform,
)
from mixpeek_orchestration.api.hosted import HostedRequest
from mixpeek_orchestration.api.routes.collections import (
    CatalogueEntry,
    builtin_catalogue,
    feature_extractor_catalogue,
)
from mixpeek_orchestration.api.schemas import ErrorResponse
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.sdk._manifest import SLUG_PATTERN
from mixpeek_orchestration.tenancy.accounts import Namespace

router = APIRouter(
    tags=["extractors"],
    responses={
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        409: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)
EXTRACTORS = "/v1/extractors"


class SubmissionUploadCreate(HostedRequest):
    hosted_fields = frozenset({"file_name"})

    name: str = Field(pattern=SLUG_PATTERN)
    version: str
    description: str = ""
    file_size_bytes: int | None = Field(default=None, ge=1)


class SubmissionTicket(BaseModel):
    submission_id: str
    presigned_url: str
    upload_headers: dict[str, str]
    s3_key: str
    expires_at: datetime
    name: str
    version: str
    required_content_type: str


class SubmissionConfirm(HostedRequest):
    hosted_fields = frozenset({"etag", "file_size_bytes"})


class SubmissionChecked(BaseModel):
    success: bool
    submission_id: str
    status: Literal["pending", "approved", "rejected"]
    security_scan_passed: bool | None = None
    security_violations: list[dict[str, Any]] = []
    manifest_valid: bool | None = None
    message: str = ""


class SubmissionItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    submission_id: str
    extractor_name: str
    version: str
    description: str = ""
    status: str
    security_scan_passed: bool | None = None
    submitted_at: datetime
    reviewed_at: datetime | None = None


class SubmissionList(BaseModel):
    submissions: list[SubmissionItem]
    total: int
    success: bool = True


class SubmissionDetail(BaseModel):
    submission: SubmissionItem
    success: bool = True


class PublishRequest(HostedRequest):
    hosted_fields = frozenset({"icon_base64", "readme_markdown", "model_dependencies"})

    public_name: str | None = None
    display_name: str | None = None
    description: str | None = None
    tags: list[str] | None = None
    category: str | None = None


class PublishedUpdate(HostedRequest):
    hosted_fields = frozenset({"icon_base64", "readme_markdown", "model_dependencies"})

    description: str | None = None
    tags: list[str] | None = None
    category: str | None = None
    is_active: bool | None = None


class Published(BaseModel):
    model_config = ConfigDict(extra="allow")

    public_id: str
    extractor_id: str
    public_name: str
    public_url: str
    version: str
    display_name: str
    description: str = ""
    tags: list[str] = []
    category: str | None = None
    trust_tier: str
    install_count: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


class InstallRequest(HostedRequest):
    public_name: str


class Installed(BaseModel):
    success: bool
    installed_extractor_id: str = Field(description="the plugin version made in the namespace")
    source_public_name: str
    source_version: str
    feature_uri: str
    feature_uris: list[str]
    namespace_id: str


class Unpublished(BaseModel):
    success: bool
    extractor_id: str
    public_name: str


class ExtractorList(BaseModel):
    extractors: list[CatalogueEntry]
    total: int
    namespace_id: str
    builtin_count: int
    custom_count: int
    success: bool = True


def _published(record: dict[str, Any], request: Request) -> dict[str, Any]:
    return record | {"public_url": str(request.url_for("install_extractor"))}


def _extractor_list(entries: list[dict[str, Any]], namespace_id: str) -> dict[str, Any]:
    builtins = sum(e["source"] == "builtin" for e in entries)
    return {
        "extractors": entries, "total": len(entries), "namespace_id": namespace_id,
        "builtin_count": builtins, "custom_count": len(entries) - builtins,
    }  # fmt: skip


@router.post(f"{EXTRACTORS}/submissions/uploads", response_model=SubmissionTicket)
async def create_submission_upload(
    body: SubmissionUploadCreate, caller: CallerDep, platform: PlatformDep
) -> dict[str, Any]:
    """A presigned URL to PUT an extractor's zip to (``Content-Type: application/zip``)."""
    return await run_in_threadpool(
        lambda: platform.submissions.create_upload(
            caller, name=body.name, version=body.version, description=body.description,
            file_size_bytes=body.file_size_bytes,
        )
    )  # fmt: skip


@router.post(
    f"{EXTRACTORS}/submissions/uploads/{{submission_id}}/confirm", response_model=SubmissionChecked
)
async def confirm_submission(
    submission_id: str,
    caller: CallerDep,
    platform: PlatformDep,
    body: SubmissionConfirm | None = None,
) -> dict[str, Any]:
    """Check the uploaded archive as a plugin upload is checked: ``approved`` or ``rejected``
    (with the scan's violations); confirming again answers the same."""
    return await run_in_threadpool(platform.submissions.confirm, caller, submission_id)


@router.get(f"{EXTRACTORS}/submissions", response_model=SubmissionList)
async def list_submissions(
    caller: CallerDep, platform: PlatformDep, status: str | None = None
) -> dict[str, Any]:
    found = await run_in_threadpool(lambda: platform.submissions.list(caller, status=status))
    return {"submissions": found, "total": len(found)}


@router.get(f"{EXTRACTORS}/submissions/{{submission_id}}", response_model=SubmissionDetail)
async def get_submission(
    submission_id: str, caller: CallerDep, platform: PlatformDep
) -> dict[str, Any]:
    return {"submission": await run_in_threadpool(platform.submissions.get, caller, submission_id)}


@router.get(EXTRACTORS, response_model=ExtractorList)
async def list_org_extractors(
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    source: Literal["builtin", "custom", "community"] | None = None,
    include_disabled: bool = False,
) -> dict[str, Any]:
    """The extractors the namespace of ``X-Namespace`` can use: its plugin versions (installed
    ones included) and the built-ins."""
    entries = await run_in_threadpool(feature_extractor_catalogue, platform, namespace)
    if source is not None:
        entries = [e for e in entries if e["source"] == source]
    return _extractor_list(entries, namespace.namespace_id)


@router.post(f"{EXTRACTORS}/install", response_model=Installed, name="install_extractor")
async def install_extractor(
    body: InstallRequest, caller: CallerDep, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    """Install a published extractor into the ``X-Namespace`` namespace: its archive becomes a
    plugin version there (checked again; installing twice answers the same version)."""
    installed = await run_in_threadpool(
        platform.submissions.install, caller, namespace, body.public_name
    )
    platform.lookups.forget_plugins(namespace.namespace_id)
    return installed


@router.post(f"{EXTRACTORS}/{{extractor_id}}/publish", response_model=Published)
async def publish_extractor(
    extractor_id: str,
    body: PublishRequest,
    request: Request,
    caller: CallerDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    """List an approved submission (``extractor_id``: its submission id) for every
    organisation of this install to install by ``public_name``."""
    listing = body.model_dump(exclude_none=True)
    record = await run_in_threadpool(
        lambda: platform.submissions.publish(caller, extractor_id, **listing)
    )
    return _published(record, request)


@router.get(f"{EXTRACTORS}/{{extractor_id}}/publish", response_model=Published)
async def get_published_extractor(
    extractor_id: str, request: Request, caller: CallerDep, platform: PlatformDep
) -> dict[str, Any]:
    record = await run_in_threadpool(platform.submissions.get_published, caller, extractor_id)
    return _published(record, request)


@router.patch(f"{EXTRACTORS}/{{extractor_id}}/publish", response_model=Published)
async def update_published_extractor(
    extractor_id: str,
    body: PublishedUpdate,
    request: Request,
    caller: CallerDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    record = await run_in_threadpool(
        platform.submissions.update_published, caller, extractor_id, changes
    )
    return _published(record, request)


@router.delete(f"{EXTRACTORS}/{{extractor_id}}/publish", response_model=Unpublished)
async def unpublish_extractor(
    extractor_id: str, caller: CallerDep, platform: PlatformDep
) -> dict[str, Any]:
    """Take the listing down; namespaces that installed it keep their plugin version."""
    return await run_in_threadpool(platform.submissions.unpublish, caller, extractor_id)


async def _namespace_catalogue(
    request: Request, namespace_id: str, authorization: str | None
) -> tuple[list[dict[str, Any]], str]:
    """The namespace's catalogue with a key, the built-ins without one (the hosted client
    sends no key on these calls; a namespace's plugins are not shown to anyone unnamed)."""
    if not authorization:
        return builtin_catalogue(), namespace_id
    control = get_control(request)
    caller = await get_caller(request, control, authorization)
    platform: Platform = await get_platform(caller, control)
    namespace: Namespace = await run_in_threadpool(
        platform.accounts.resolve_namespace, caller, namespace_id
    )
    entries = await run_in_threadpool(feature_extractor_catalogue, platform, namespace)
    return entries, namespace.namespace_id


@router.get("/v1/namespaces/{namespace_id}/extractors", response_model=ExtractorList)
async def list_namespace_extractors(
    namespace_id: str, request: Request, source: str | None = None, include_disabled: bool = False
) -> dict[str, Any]:
    entries, resolved = await _namespace_catalogue(
        request, namespace_id, request.headers.get("authorization")
    )
    if source is not None:
        entries = [e for e in entries if e["source"] == source]
    return _extractor_list(entries, resolved)


@router.get(
    "/v1/namespaces/{namespace_id}/extractors/{extractor_id}", response_model=CatalogueEntry
)
async def get_namespace_extractor(
    namespace_id: str, extractor_id: str, request: Request
) -> dict[str, Any]:
    entries, _ = await _namespace_catalogue(
        request, namespace_id, request.headers.get("authorization")
    )
    for entry in entries:
        if extractor_id in (entry["feature_extractor_id"], entry["feature_extractor_name"]):
            return entry
    raise MixpeekError(
        ErrorCode.NOT_FOUND, f"extractor {extractor_id!r} not found", field="extractor_id"
    )
