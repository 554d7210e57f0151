"""Request and response models of the REST API (kept apart from storage documents)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.hosted import HostedRequest
from mixpeek_orchestration.plugins.models import MODEL_NAME
from mixpeek_orchestration.sdk._manifest import SLUG_PATTERN
from mixpeek_orchestration.tenancy.accounts import NAMESPACE_NAME

DeploymentStatus = Literal["QUEUED", "PENDING", "IN_PROGRESS", "DEPLOYED", "FAILED", "NOT_DEPLOYED"]


class ErrorDetail(BaseModel):
    message: str
    type: str = Field(description="the hosted API's error type, e.g. NotFoundError")
    code: str | None = Field(default=None, description="this project's stable error code")
    details: dict[str, Any] | None = None


class ErrorResponse(BaseModel):
    """Every error answer: the hosted envelope (``success``, ``status``, ``error``) and this
    project's ``detail`` and ``code``, with structured fields (``field``, ``violations``, ...)
    beside them."""

    model_config = ConfigDict(extra="allow")

    success: Literal[False] = False
    status: int
    error: ErrorDetail
    detail: str
    code: str | None = None


class Pagination(BaseModel):
    """Where a page of a list lies (the hosted ``pagination`` object, and ``has_more``)."""

    limit: int
    page_size: int
    page: int
    next_cursor: str | None = None
    has_more: bool = False
    total: int | None = None
    total_pages: int | None = None


class ListPage(BaseModel):
    """The hosted list envelope: ``results``, ``total_count`` and ``pagination`` (``total`` is
    this project's name for ``total_count``)."""

    total: int | None = None
    total_count: int
    pagination: Pagination


NAMESPACE_HOSTED_FIELDS = frozenset(
    {"mode", "namespace_type", "scope", "features", "feature_extractors", "vector_configs",
     "payload_indexes", "auto_create_indexes", "adaptive_indexing", "infrastructure",
     "trusted_issuers", "tiering", "spend_budget", "cost_cap_override", "pinned", "ttl_seconds",
     "expires_at", "repair_vectors"}
)  # fmt: skip
"""Hosted namespace settings (indexing, tiering, infrastructure) with no meaning here."""


class NamespaceCreate(HostedRequest):
    hosted_fields = NAMESPACE_HOSTED_FIELDS

    namespace_name: str = Field(..., pattern=NAMESPACE_NAME.pattern)
    description: str = ""


class NamespaceResponse(BaseModel):
    namespace_id: str
    namespace_name: str
    description: str = ""
    created_at: datetime
    llm_budget_usd: float | None = None


class NamespaceUpdate(HostedRequest):
    """The fields a PATCH or PUT changes (those left out stay)."""

    hosted_fields = NAMESPACE_HOSTED_FIELDS

    namespace_name: str | None = Field(default=None, pattern=NAMESPACE_NAME.pattern)
    description: str | None = None
    llm_budget_usd: float | None = Field(default=None, ge=0)
    """The namespace's monthly limit on LLM calls, in USD (``null``: none)."""


class NamespaceList(ListPage):
    results: list[NamespaceResponse]


class Violation(BaseModel):
    file: str
    line: int
    column: int
    message: str
    severity: Literal["error", "warning"]
    rule: str = ""


class UploadCreate(HostedRequest):
    name: str = Field(..., description="Plugin name (slug)", pattern=SLUG_PATTERN)
    version: str = Field(..., description="Semver; v1 and 1.0 normalise to 1.0.0")
    description: str = ""
    file_size_bytes: int | None = Field(default=None, ge=1)
    presigned_url_expiration: int = Field(default=3600, description="Seconds the URL stays valid")


class UploadResponse(BaseModel):
    upload_id: str
    presigned_url: str
    expires_at: datetime
    upload_headers: dict[str, str]
    max_size_bytes: int
    name: str
    version: str
    namespace_id: str
    s3_key: str = Field(description="the object-store key the archive is PUT to")


class ConfirmRequest(HostedRequest):
    hosted_fields = frozenset({"etag", "file_size_bytes"})

    message: str = ""


class ConfirmResponse(BaseModel):
    success: bool
    plugin_id: str | None
    validation_status: Literal["passed", "failed"]
    feature_uri: str | None = None
    feature_uris: list[str] = []
    name: str | None = None
    version: str | None = None
    sha256: str | None = None
    violations: list[Violation] = []
    validation_errors: list[dict[str, Any]] = []
    route_prefix: str | None = None
    secrets: list[str] = []
    """The organisation secrets the plugin's manifest declares (names)."""
    already_registered: bool = False
    upload_id: str | None = None
    deployment_status: Literal["deployed", "pending", "failed", "not_deployed"] = "not_deployed"
    """As the hosted confirm answer spells it (``status`` routes answer the upper-case one)."""
    s3_archive_url: str | None = Field(default=None, description="the archive's object-store key")
    message: str = ""


class FeatureResponse(BaseModel):
    feature_name: str
    feature_type: str
    embedding_dim: int | None = None
    distance_metric: str | None = None


class PluginResponse(BaseModel):
    plugin_id: str
    name: str
    version: str
    description: str = ""
    namespace_id: str
    feature_uris: list[str]
    features: list[FeatureResponse]
    sha256: str
    size_bytes: int
    message: str = ""
    created_at: datetime
    created_by: str
    is_active: bool = False
    status: DeploymentStatus = "NOT_DEPLOYED"
    route_prefix: str
    parameter_schema: dict[str, Any] | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    supported_input_types: list[str] = []
    secrets: list[str] = []
    warnings: list[Violation] = []


class PluginListItem(BaseModel):
    """A plugin version as the hosted (client 1.3.1) list shows it."""

    plugin_id: str
    name: str
    version: str
    description: str = ""
    deployed: bool
    validation_status: str
    feature_uri: str
    created_at: datetime
    updated_at: datetime


class PluginList(BaseModel):
    results: list[PluginResponse]
    total: int
    plugins: list[PluginListItem] = Field(description="the hosted list's items")
    namespace_id: str
    success: bool = True


class PluginDocument(BaseModel):
    """A plugin version as the hosted (client 1.3.1) detail shows it."""

    plugin_id: str
    name: str
    version: str
    namespace_id: str
    description: str = ""
    s3_archive_url: str
    code_hash: str
    validation_status: str
    security_scan_passed: bool
    deployed: bool
    manifest: dict[str, Any]
    created_at: datetime


class PluginDetail(PluginResponse):
    plugin: PluginDocument = Field(description="the hosted envelope around the version")
    success: bool = True


class PluginStatus(BaseModel):
    plugin_id: str
    namespace_id: str
    name: str
    version: str
    deployed: bool
    status: DeploymentStatus
    error: str | None = None
    route_prefix: str
    feature_uri: str | None
    feature_uris: list[str]
    deployed_at: datetime | None = None
    active_version: str | None = None
    secrets: list[str] = []
    """The secrets the manifest declares, and which of them the organisation has not stored."""
    missing_secrets: list[str] = []


class PluginDeleted(BaseModel):
    plugin_id: str
    deleted: bool
    deployment_removed: bool
    message: str
    success: bool = True


class VersionList(BaseModel):
    name: str
    active_version: str | None
    versions: list[PluginResponse]


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str
    message: str = ""


class RollbackResponse(BaseModel):
    name: str
    active_version: str
    plugin_id: str


class FileDiff(BaseModel):
    path: str
    status: Literal["added", "removed", "modified"]
    binary: bool
    diff: str


class DiffResponse(BaseModel):
    name: str
    v1: str
    v2: str
    files: list[FileDiff]


class LogEntry(BaseModel):
    action: Literal["publish", "rollback", "delete"]
    version: str | None
    message: str = ""
    actor: str
    at: datetime


class LogResponse(BaseModel):
    name: str
    entries: list[LogEntry]


class NextVersion(BaseModel):
    name: str
    version: str


class SecretCreate(BaseModel):
    secret_name: str = Field(..., min_length=1, max_length=100)  # checked by the store, named
    secret_value: str = Field(..., min_length=1, repr=False)


class SecretUpdate(BaseModel):
    secret_value: str = Field(..., min_length=1, repr=False)


class SecretResponse(BaseModel):
    """The outcome of a secret operation (never its value)."""

    secret_name: str
    created: bool | None = None
    updated: bool | None = None
    deleted: bool | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SecretInfo(BaseModel):
    secret_name: str
    created_at: datetime
    updated_at: datetime


class SecretList(BaseModel):
    """The organisation's secret names (``secrets``, as the hosted API answers) and when each
    was stored and last changed (``results``); never values."""

    secrets: list[str]
    count: int
    results: list[SecretInfo]


class UsageRow(BaseModel):
    namespace_id: str | None = None
    plugin_id: str | None = None
    collection_id: str | None = None
    provider: str | None = None
    model: str | None = None
    calls: int
    errors: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    latency_ms_total: float
    latency_ms_mean: float


class UsageReport(BaseModel):
    """LLM calls of the caller's organisation: totals, and rows by the groups asked for."""

    org_id: str
    since: datetime | None = None
    group_by: list[str]
    totals: dict[str, float]
    results: list[UsageRow]


class ModelUploadCreate(BaseModel):
    name: str = Field(pattern=MODEL_NAME.pattern, description="3-64 letters, digits or '_'")
    version: str
    model_format: str
    description: str | None = Field(default=None, max_length=500)
    file_size_bytes: int | None = None
    presigned_url_expiration: int = Field(default=3600, ge=60, le=86400)


class ModelConfirm(BaseModel):
    etag: str | None = None
    file_size_bytes: int | None = None


class ModelItem(BaseModel):
    model_id: str
    name: str
    version: str
    model_format: str
    description: str | None = None
    source: str = "customer"
    sha256: str
    size_bytes: int
    validation_status: str
    deployed: bool = False
    """Whether a deployed plugin (of the namespace, in the namespace view) loaded it."""
    created_at: datetime
    updated_at: datetime


class ModelUploadTicket(BaseModel):
    model_config = ConfigDict(extra="allow")

    upload_id: str
    presigned_url: str
    headers: dict[str, str]
    required_content_type: str
    s3_key: str
    expires_at: datetime
    organization_id: str
    name: str
    version: str


class ModelConfirmed(BaseModel):
    model_config = ConfigDict(extra="allow")

    success: bool
    model: ModelItem


class ModelList(BaseModel):
    success: bool = True
    models: list[ModelItem]
    total: int
    organization_id: str | None = None
    namespace_id: str | None = None


class ModelDetail(BaseModel):
    success: bool = True
    model: ModelItem


class ModelDeleted(BaseModel):
    success: bool = True
    model_id: str
    deleted: bool
    message: str


class Deleted(BaseModel):
    """What a delete removed: the record's id (``bucket_id``, ``collection_id``, ...),
    ``deleted``, and counts of what went with it."""

    model_config = ConfigDict(extra="allow")

    deleted: bool


class Lineage(BaseModel):
    """An object or a document and what it came from / made (see the route's description)."""

    model_config = ConfigDict(extra="allow")
