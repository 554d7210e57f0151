"""Many documents of a collection at once: ``/v1/collections/{id}/documents/{batch,bulk,
distinct,aggregate}`` and one document's diagnostics (the hosted document operations).

Included before the collections router, so ``/documents/batch`` and ``/documents/bulk`` are
these operations and never a document id. Every ``filters`` is the hosted filter form
(``{"AND": [{"field", "operator", "value"}]}``) or plain ``{field: value}`` equalities over
dotted paths (``metadata.topic``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, PlatformDep
from mixpeek_orchestration.api.hosted import HostedRequest
from mixpeek_orchestration.api.routes.collections import DocumentOut
from mixpeek_orchestration.api.schemas import ErrorResponse
from mixpeek_orchestration.errors import MixpeekError
from mixpeek_orchestration.ingest.documents import checked_vectors, metadata_changes
from mixpeek_orchestration.ingest.imports import infer, mapping_errors
from mixpeek_orchestration.retrieval.filters import store_query

router = APIRouter(
    prefix="/v1/collections",
    tags=["collections"],
    responses={401: {"model": ErrorResponse}, 404: {"model": ErrorResponse}},
)

Filters = dict[str, Any]
FILTERS = Field(
    default=None,
    description='the hosted filter form {"AND": [{"field", "operator", "value"}]} or '
    "{field: value} equalities",
)


class DocumentResult(BaseModel):
    document_id: str
    success: bool
    error: str | None = None


def tally(results: list[dict[str, Any]], done: str) -> dict[str, Any]:
    """Per-document results as a hosted batch answer counts them (``{done}_count`` ...)."""
    succeeded = sum(r["success"] for r in results)
    return {
        f"{done}_count": succeeded,
        "failed_count": len(results) - succeeded,
        "results": results,
        "message": f"{succeeded} documents {done}",
    }


# -- one document brought in whole ---------------------------------------------------------------


class DocumentCreate(HostedRequest):
    """A document with its metadata and vectors, made without an object (hosted: bring your
    own documents)."""

    hosted_fields = frozenset(
        {"collection_id", "root_object_id", "root_bucket_id", "source_type",
         "source_collection_id", "source_document_id", "lineage_path", "lineage_chain",
         "content_hash", "document_schema_version"}
    )  # fmt: skip

    metadata: dict[str, Any] = Field(default_factory=dict)
    vectors: dict[str, list[float]] = Field(
        default_factory=dict,
        description="a vector per embedding feature, by feature name or URI",
    )
    source_object_id: str | None = None
    features: list[dict[str, Any]] | None = Field(
        default=None, description="not taken here: give each feature's vector in vectors"
    )

    @model_validator(mode="after")
    def _no_features(self) -> DocumentCreate:
        if self.features:
            raise ValueError("features is not taken here: give {feature_name: [...]} in vectors")
        return self


@router.post(
    "/{collection_id}/documents",
    summary="Create a document from its metadata and vectors (no object)",
    response_model=DocumentOut,
)
async def create_document(
    collection_id: str, body: DocumentCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def create() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        return platform.documents.create(
            namespace, collection, metadata=body.metadata, vectors=body.vectors,
            source_object_id=body.source_object_id,
        )  # fmt: skip

    return await run_in_threadpool(create)


class SchemaViolation(BaseModel):
    field: str
    error: str


class SchemaValidation(BaseModel):
    collection_id: str
    valid: bool
    violations: list[SchemaViolation]


@router.post(
    "/{collection_id}/documents/schema/validate",
    summary="Check a document as POST .../documents would take it, writing nothing",
    response_model=SchemaValidation,
)
async def validate_document(
    collection_id: str,
    payload: Annotated[
        dict[str, Any], Body(description="a document as POST .../documents takes it")
    ],
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    """Every reason the document would be refused: its body (unknown keys, types), its
    metadata's keys, each vector against the collection's features."""

    def check() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        violations: list[dict[str, str]] = []
        try:
            body = DocumentCreate.model_validate(payload)
        except ValidationError as exc:
            violations += [
                {"field": ".".join(str(p) for p in e["loc"]) or "body", "error": e["msg"]}
                for e in exc.errors()
            ]
            return {"collection_id": collection["collection_id"], "valid": False,
                    "violations": violations}  # fmt: skip
        try:
            metadata_changes({"metadata": body.metadata}, held=())
        except MixpeekError as exc:
            violations.append({"field": "metadata", "error": exc.detail})
        violations += checked_vectors(collection, body.vectors)[1]
        return {
            "collection_id": collection["collection_id"],
            "valid": not violations,
            "violations": violations,
        }

    return await run_in_threadpool(check)


# -- imports from another system's records -------------------------------------------------------


class MappingTarget(HostedRequest):
    kind: str = Field(description="metadata | vector | identity | parent | ignore")
    path: str | None = None
    index: str | None = None
    dim: int | None = None
    dtype: str | None = None
    role: str | None = None
    chain_position: int | None = None
    expected_type: str | None = None


class FieldMapping(HostedRequest):
    source_field: str
    target: MappingTarget


class ImportMapping(HostedRequest):
    hosted_fields = frozenset({"chain_template"})

    fields: list[FieldMapping] = Field(default_factory=list)
    source_type: str | None = None


class SchemaInference(HostedRequest):
    sample_rows: list[dict[str, Any]] = Field(default_factory=list, max_length=10_000)
    source_schema: dict[str, Any] | None = Field(default=None, description="advisory, unused")
    sample_size: int = Field(default=100, ge=1, le=10_000)
    known_index_dims: dict[str, int] | None = None


class InferredField(BaseModel):
    model_config = ConfigDict(extra="allow")

    path: str
    type: str
    suggested_target: dict[str, Any]


class InferredSchema(BaseModel):
    fields: list[InferredField]
    warnings: list[str]


@router.post(
    "/import/infer",
    summary="Suggest a mapping from sample records (types, vectors, ids)",
    response_model=InferredSchema,
)
async def infer_import_schema(body: SchemaInference, namespace: HeaderNamespaceDep) -> Any:
    return infer(body.sample_rows, sample_size=body.sample_size, known_dims=body.known_index_dims)


class SourceField(HostedRequest):
    path: str
    type: str


class MappingValidation(HostedRequest):
    source_fields: list[SourceField] | None = None
    mapping: ImportMapping
    known_index_dims: dict[str, int] | None = None


class MappingProblem(BaseModel):
    field: str | None = None
    error: str


class MappingChecked(BaseModel):
    ok: bool
    errors: list[MappingProblem]


@router.post(
    "/import/validate-mapping",
    summary="Every way a mapping could not be imported with",
    response_model=MappingChecked,
)
async def validate_import_mapping(body: MappingValidation, namespace: HeaderNamespaceDep) -> Any:
    types = None if body.source_fields is None else {f.path: f.type for f in body.source_fields}
    errors = mapping_errors(
        body.mapping.model_dump(), source_types=types, known_dims=body.known_index_dims
    )
    return {"ok": not errors, "errors": errors}


class ImportRecord(HostedRequest):
    hosted_fields = frozenset({"seed_ledger"})

    export: dict[str, Any] = Field(description="one record of the other system")
    mapping: ImportMapping
    explode: dict[str, Any] | None = Field(
        default=None, description="not taken here: one record makes one document"
    )
    dry_run: bool = False

    @model_validator(mode="after")
    def _one_document(self) -> ImportRecord:
        if self.explode:
            raise ValueError("explode is not taken here: import one record per document")
        return self


class RowError(BaseModel):
    row: int
    error: str


class Imported(BaseModel):
    imported: int
    reconstructed: int
    skipped: int
    dry_run: bool
    errors: list[RowError]
    warnings: list[str]
    document_ids: list[str] = []


@router.post(
    "/{collection_id}/import",
    summary="Import one record of another system as a document, through a mapping",
    response_model=Imported,
)
async def import_record(
    collection_id: str, body: ImportRecord, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: platform.operations.import_record(
            namespace, collection_id, body.export, body.mapping.model_dump(),
            dry_run=body.dry_run,
        )
    )  # fmt: skip


# -- batch delete ---------------------------------------------------------------------------------


class BatchDelete(HostedRequest):
    document_ids: list[str] | None = Field(default=None, min_length=1, max_length=1000)
    filters: Filters | None = FILTERS
    reason: str | None = Field(default=None, max_length=500)

    @model_validator(mode="after")
    def _one_selection(self) -> BatchDelete:
        if (self.document_ids is None) == (self.filters is None):
            raise ValueError("give document_ids or filters (one of them)")
        if self.filters is not None and not set(self.filters) - {"case_sensitive"}:
            raise ValueError(
                "filters must name a condition (to delete every document, delete the collection)"
            )
        return self


class BatchDeleted(BaseModel):
    status: str = "completed"
    deleted_count: int
    failed_count: int
    results: list[DocumentResult]
    message: str
    task_id: str | None = None


@router.delete(
    "/{collection_id}/documents/batch",
    summary="Delete documents by id or filter, with their vectors",
    response_model=BatchDeleted,
)
async def batch_delete(
    collection_id: str, body: BatchDelete, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def delete() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        match = None if body.filters is None else store_query(body.filters)
        results = platform.documents.delete_many(
            namespace, collection, doc_ids=body.document_ids, match=match
        )
        return tally(results, "deleted")

    return await run_in_threadpool(delete)


# -- batch and bulk updates -----------------------------------------------------------------------


class DocumentUpdate(HostedRequest):
    document_id: str
    update_data: dict[str, Any]


class BatchUpdate(HostedRequest):
    """Per-document changes (``updates``), or the same ``update_data`` for every document
    matching ``filters``; each change is merged into the document's metadata."""

    updates: list[DocumentUpdate] | None = Field(default=None, min_length=1, max_length=1000)
    filters: Filters | None = FILTERS
    update_data: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> BatchUpdate:
        if self.updates is None and (self.filters is None or self.update_data is None):
            raise ValueError("give updates, or filters with update_data")
        if self.updates is not None and (self.filters is not None or self.update_data):
            raise ValueError("give updates, or filters with update_data, not both")
        return self


class BatchUpdated(BaseModel):
    updated_count: int
    failed_count: int = 0
    results: list[DocumentResult] | None = None
    message: str


@router.post(
    "/{collection_id}/documents/batch",
    summary="Update documents' metadata: one change each, or one change by filter",
    response_model=BatchUpdated,
)
async def batch_update(
    collection_id: str, body: BatchUpdate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def update() -> dict[str, Any]:
        cid = platform.collections.get(namespace, collection_id)["collection_id"]
        if body.updates is None:
            assert body.filters is not None and body.update_data is not None
            changed = platform.documents.update_matching(
                namespace, cid, store_query(body.filters), body.update_data
            )
            return {"updated_count": changed, "message": f"{changed} documents updated"}
        results = platform.documents.update_each(
            namespace, cid, [(u.document_id, u.update_data) for u in body.updates]
        )
        return tally(results, "updated")

    return await run_in_threadpool(update)


class BulkUpdate(HostedRequest):
    filters: Filters | None = FILTERS
    update_data: dict[str, Any] = Field(min_length=1)


class BulkUpdated(BaseModel):
    status: str = "completed"
    updated_count: int
    message: str
    task_id: str | None = None


@router.patch(
    "/{collection_id}/documents/bulk",
    summary="Merge the same metadata into every document matching a filter (all without one)",
    response_model=BulkUpdated,
)
async def bulk_update(
    collection_id: str, body: BulkUpdate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def update() -> dict[str, Any]:
        cid = platform.collections.get(namespace, collection_id)["collection_id"]
        match = store_query(body.filters) if body.filters else {}
        changed = platform.documents.update_matching(namespace, cid, match, body.update_data)
        return {"updated_count": changed, "message": f"{changed} documents updated"}

    return await run_in_threadpool(update)


# -- analytics ------------------------------------------------------------------------------------


class DistinctValues(HostedRequest):
    field: str
    filters: Filters | None = FILTERS
    limit: int | None = Field(default=None, ge=1, le=10_000)


class DistinctValue(BaseModel):
    value: Any
    count: int


class DistinctAnswer(BaseModel):
    field: str
    values: list[DistinctValue]
    total_distinct: int


@router.post(
    "/{collection_id}/documents/distinct",
    summary="Distinct values of a document field, most frequent first",
    response_model=DistinctAnswer,
)
async def distinct_values(
    collection_id: str, body: DistinctValues, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def distinct() -> dict[str, Any]:
        cid = platform.collections.get(namespace, collection_id)["collection_id"]
        return platform.documents.distinct(
            namespace, cid, body.field, match=store_query(body.filters), limit=body.limit
        )

    return await run_in_threadpool(distinct)


class GroupBy(HostedRequest):
    field: str
    alias: str | None = None
    date_trunc: Literal["year", "month", "week", "day", "hour", "minute", "second"] | None = None
    date_part: (
        Literal[
            "year", "month", "week", "day", "dayOfWeek", "dayOfYear", "hour", "minute", "second"
        ]
        | None
    ) = None


class Aggregation(HostedRequest):
    function: Literal[
        "count", "count_distinct", "sum", "avg", "min", "max", "first", "last", "push",
        "add_to_set",
    ]  # fmt: skip
    field: str | None = None
    alias: str
    distinct_field: str | None = None


class Having(HostedRequest):
    field: str
    operator: Literal["gt", "gte", "lt", "lte", "eq", "ne"]
    value: int | float | str | None


class RangeBuckets(HostedRequest):
    field: str
    boundaries: list[int | float] = Field(min_length=1)
    default_bucket: str | None = None


class AggregationRequest(HostedRequest):
    group_by: list[GroupBy] | None = None
    aggregations: list[Aggregation] = Field(min_length=1)
    filters: Filters | None = FILTERS
    having: list[Having] | None = None
    unwind: str | None = None
    range_buckets: list[RangeBuckets] | None = None
    sort_by: str | None = None
    sort_direction: Literal["asc", "desc"] = "desc"
    limit: int | None = Field(default=None, ge=1)


class AggregationRow(BaseModel):
    group: dict[str, Any]
    metrics: dict[str, Any]


class AggregationAnswer(BaseModel):
    results: list[AggregationRow]
    total_groups: int
    query_info: dict[str, Any] | None = None


@router.post(
    "/{collection_id}/documents/aggregate",
    summary="Group documents and compute count / sum / avg / min / max ... per group",
    response_model=AggregationAnswer,
)
async def aggregate_documents(
    collection_id: str,
    body: AggregationRequest,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    def aggregate() -> dict[str, Any]:
        cid = platform.collections.get(namespace, collection_id)["collection_id"]
        answer = platform.documents.aggregate(
            namespace, cid, body.model_dump(exclude_none=True), store_query(body.filters)
        )
        return answer | {"query_info": {"collection_id": cid}}

    return await run_in_threadpool(aggregate)


# -- one document ---------------------------------------------------------------------------------


class Visibility(BaseModel):
    searchable: bool
    reason: str
    source_object_id: str | None = None


class DocumentDiagnostics(BaseModel):
    model_config = ConfigDict(extra="allow")

    document_id: str
    collection_id: str
    source_object_id: str | None = None
    visibility_reason: Visibility
    recent_failures: dict[str, Any]
    diagnostic_history: dict[str, Any]
    missing_vectors: list[str] = Field(
        description="feature URIs whose index lacks this completed document's vector"
    )


@router.get(
    "/{collection_id}/documents/{document_id}/diagnostics",
    summary="Why a document is, or is not, found by search",
    response_model=DocumentDiagnostics,
)
async def document_diagnostics(
    collection_id: str, document_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def diagnose() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        return platform.documents.diagnostics(namespace, collection, document_id)

    return await run_in_threadpool(diagnose)
