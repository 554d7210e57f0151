"""Collections, their documents and lineage: ``/v1/collections...`` (SPEC §7, §9)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from mixpeek_orchestration.api.deps import HeaderNamespaceDep, OptionalNamespaceDep, PlatformDep
from mixpeek_orchestration.api.hosted import (
    HostedRequest,
    ListBody,
    ListParams,
    ListParamsDep,
    envelope,
    listing,
)
from mixpeek_orchestration.api.schemas import Deleted, ErrorResponse, Lineage, ListPage
from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.extractors.registry import BUILTIN_EXTRACTORS
from mixpeek_orchestration.ingest.collections import COLLECTION_NAME
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.retrieval.filters import mongo_query
from mixpeek_orchestration.sdk._manifest import plugin_id_for
from mixpeek_orchestration.tenancy.accounts import Namespace

router = APIRouter(
    prefix="/v1/collections",
    tags=["collections"],
    responses={
        400: {"model": ErrorResponse},
        401: {"model": ErrorResponse},
        404: {"model": ErrorResponse},
        422: {"model": ErrorResponse},
    },
)


COLLECTION_HOSTED_FIELDS = frozenset(
    {"input_schema", "features", "enabled", "schedule", "taxonomy_applications",
     "cluster_applications", "alert_applications", "retriever_enrichments",
     "retriever_transform", "embedding_task"}
)  # fmt: skip
"""Hosted collection settings (taxonomies, clusters, alerts, schedules) with no engine here."""


class CollectionCreate(HostedRequest):
    hosted_fields = COLLECTION_HOSTED_FIELDS

    collection_name: str = Field(pattern=COLLECTION_NAME.pattern)
    source: dict[str, Any] = Field(description='{"type": "bucket", "bucket_ids": ["bkt_..."]}')
    feature_extractor: dict[str, Any] = Field(
        description='{"feature_extractor_name": "...", "version": "1.0.0", "parameters": {}}'
    )
    description: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)


class CollectionUpdate(HostedRequest):
    """What a PATCH changes; fields left out stay. A new ``feature_extractor`` (another plugin
    version or parameters) re-processes every object unless ``reprocess`` is false."""

    hosted_fields = COLLECTION_HOSTED_FIELDS

    feature_extractor: dict[str, Any] | None = None
    reprocess: bool = Field(default=True, description="re-process every object with it")
    description: str | None = None
    metadata: dict[str, Any] | None = None


class FeatureExtractorOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    feature_extractor_name: str
    version: str
    feature_extractor_id: str = Field(description="the plugin version's id")
    plugin_id: str
    parameters: dict[str, Any] = {}


class CollectionOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    collection_id: str
    collection_name: str
    namespace_id: str
    description: str = ""
    metadata: dict[str, Any] = {}
    source: dict[str, Any]
    feature_extractor: FeatureExtractorOut
    feature_uris: list[str]
    created_at: datetime
    updated_at: datetime | None = None


class CollectionList(ListPage):
    results: list[CollectionOut]


class TriggerOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    task_id: str
    collection_id: str
    status: str
    total_tiers: int = 1
    message: str
    batch_ids: list[str]
    object_count: int


class DocumentList(HostedRequest):
    """A page of documents: ``limit`` / ``offset`` or ``cursor``; ``filters`` in the hosted
    form (``{"AND": [{"field", "operator", "value"}, ...]}``) or this project's shorthand
    (``status``, ``source_object_id``, ``bucket_id``)."""

    hosted_fields = frozenset(
        {"return_presigned_urls", "return_vectors", "return_vector_names", "include_total",
         "partition", "expand", "select"}
    )  # fmt: skip

    limit: int | None = Field(default=None, ge=1, le=1000)
    page_size: int | None = Field(default=None, ge=1, le=1000)
    offset: int | None = Field(default=None, ge=0)
    page: int | None = Field(default=None, ge=1)
    cursor: str | None = None
    next_cursor: str | None = None
    after: str | None = None
    filters: dict[str, Any] = Field(default_factory=dict)
    sort: Any = None
    search: str | None = None
    group_by: Any = None
    collection_ids: list[str] | None = Field(
        default=None, description="(namespace-wide list) the collections to list"
    )

    def paging(self) -> dict[str, Any]:
        return self.model_dump(
            include={"limit", "page_size", "offset", "page", "cursor", "next_cursor", "after"}
        )


class DocumentOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    document_id: str
    collection_id: str


class DocumentPage(ListPage):
    results: list[DocumentOut]
    total_documents: int | None = None


def builtin_catalogue() -> list[dict[str, Any]]:
    """The built-in extractors, as the hosted catalogue describes an extractor (install one
    into a namespace with ``POST /v1/namespaces/{id}/plugins/builtins/{name}``)."""
    catalogue = []
    for builtin in BUILTIN_EXTRACTORS.values():
        described = builtin.describe()
        catalogue.append(
            _catalogue_entry(
                plugin_id=plugin_id_for(builtin.name, builtin.version),
                name=builtin.name,
                version=builtin.version,
                description=builtin.description,
                manifest={"supported_input_types": described["supported_input_types"]},
                features=described["features"],
                feature_uris=builtin.feature_uris,
                active=True,
                source="builtin",
            )
        )
    return catalogue


def _catalogue_entry(
    *,
    plugin_id: str,
    name: str,
    version: str,
    description: str,
    manifest: dict[str, Any],
    features: list[dict[str, Any]],
    feature_uris: list[str],
    active: bool,
    source: str,
) -> dict[str, Any]:
    parameters = (manifest.get("parameter_schema") or {}).get("properties") or {}
    inputs = manifest.get("supported_input_types") or []
    return {
        "feature_extractor_id": plugin_id,
        "feature_extractor_name": name,
        "version": version,
        "description": description,
        "icon": "",
        "source": source,
        "input_schema": manifest.get("input_schema") or {},
        "output_schema": manifest.get("output_schema") or {},
        "parameter_schema": manifest.get("parameter_schema"),
        "supported_input_types": inputs,
        "max_inputs": {kind: 1 for kind in inputs},
        "default_parameters": {
            k: spec["default"]
            for k, spec in parameters.items()
            if isinstance(spec, dict) and "default" in spec
        },
        "required_vector_indexes": None,
        "required_payload_indexes": None,
        "feature_uris": feature_uris,
        "features": features,
        "is_active": active,
        "realtime_available": True,
    }


class CatalogueEntry(BaseModel):
    """A feature extractor as the hosted catalogue describes one."""

    model_config = ConfigDict(extra="allow")

    feature_extractor_id: str = Field(description="the plugin version's id")
    feature_extractor_name: str
    version: str
    description: str
    icon: str
    source: Literal["builtin", "custom", "community"]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]
    parameter_schema: dict[str, Any] | None
    supported_input_types: list[str]
    max_inputs: dict[str, int]
    default_parameters: dict[str, Any]
    required_vector_indexes: list[dict[str, Any]] | None
    required_payload_indexes: list[dict[str, Any]] | None
    feature_uris: list[str]
    is_active: bool
    realtime_available: bool


class VectorIndexOut(BaseModel):
    name: str
    description: str
    type: Literal["dense"]
    dimensions: int
    distance: str


class FeatureDescriptor(BaseModel):
    model_config = ConfigDict(extra="allow")

    feature_uri: str
    feature_address: str
    feature_name: str
    feature_type: str
    feature_extractor_name: str
    version: str
    plugin_id: str
    vector_index: VectorIndexOut | None = None


class CollectionFeatures(BaseModel):
    collection_id: str
    features: list[FeatureDescriptor] = Field(description="the features that store vectors")
    other_features: list[FeatureDescriptor] = Field(description="the features that store none")


class DocumentCount(BaseModel):
    model_config = ConfigDict(extra="allow")  # one count per status besides

    collection_id: str
    count: int
    total: int


def feature_extractor_catalogue(platform: Platform, namespace: Namespace) -> list[dict[str, Any]]:
    """Every published plugin version of the namespace, as the hosted feature-extractor
    catalogue describes an extractor (the plugin version's id is the extractor's id), then the
    built-ins not installed in it."""
    catalogue = []
    for version in platform.registry.list_plugins(namespace):
        manifest = version.get("manifest") or {}
        catalogue.append(
            _catalogue_entry(
                plugin_id=version["plugin_id"],
                name=version["name"],
                version=version["version"],
                description=version.get("description") or manifest.get("description") or "",
                manifest=manifest,
                features=list(version.get("features") or []),
                feature_uris=version.get("feature_uris") or [],
                active=bool(version.get("is_active")),
                source="custom",
            )
        )
    installed = {e["feature_extractor_name"] for e in catalogue}
    catalogue += [e for e in builtin_catalogue() if e["feature_extractor_name"] not in installed]
    return catalogue


def collection_out(doc: dict[str, Any]) -> dict[str, Any]:
    """A collection as both worlds read it: the hosted ``feature_extractor_id`` is the
    plugin version's id."""
    extractor = doc["feature_extractor"]
    return doc | {"feature_extractor": extractor | {"feature_extractor_id": extractor["plugin_id"]}}


def document_filters(body: DocumentList) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """This project's shorthand filters, and a store query for a hosted filter (422 when it
    is malformed, or asks for what a list cannot do)."""
    for unsupported in ("sort", "search", "group_by"):
        if getattr(body, unsupported):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"{unsupported} is not supported when listing documents here; use a retriever",
                field=unsupported,
            )
    filters = body.filters
    if any(k in filters for k in ("AND", "OR", "field")):
        return {}, mongo_query(filters)
    unknown = sorted(set(filters) - SHORTHAND_FILTERS)
    if unknown:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"filters {unknown} are not known: give {sorted(SHORTHAND_FILTERS)} or a hosted "
            'filter {"AND": [{"field": ..., "operator": ..., "value": ...}]}',
            field="filters",
        )
    return filters, None


SHORTHAND_FILTERS = frozenset({"status", "source_object_id", "bucket_id"})


def document_page(
    platform: Platform,
    namespace: Namespace,
    collection_id: str | list[str],
    params: ListParams,
    body: DocumentList,
) -> dict[str, Any]:
    params = params.merged(body.paging())
    shorthand, match = document_filters(body)
    found = platform.documents.list(
        namespace,
        collection_id,
        limit=params.limit,
        cursor=params.cursor,
        offset=params.offset,
        filters=shorthand,
        match=match,
    )
    return envelope(
        found["results"],
        total=found["total"],
        limit=params.limit,
        next_cursor=found["pagination"]["next_cursor"],
        offset=0 if params.cursor else params.offset,
    ) | {"total_documents": found["total"]}


@router.post("", summary="Create a collection", response_model=CollectionOut)
async def create_collection(
    body: CollectionCreate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    created = await run_in_threadpool(
        lambda: platform.operations.create_collection(namespace, **body.model_dump())
    )
    return collection_out(created)


@router.get("", summary="List collections", response_model=CollectionList)
async def list_collections(
    namespace: HeaderNamespaceDep, platform: PlatformDep, params: ListParamsDep
) -> dict[str, Any]:
    results = await run_in_threadpool(platform.collections.list, namespace)
    return listing([collection_out(dict(c)) for c in results], params)


@router.post(
    "/list",
    summary="List collections (paged by the query or the body)",
    response_model=CollectionList,
)
async def list_collections_post(
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: ListBody = None,
) -> dict[str, Any]:
    return await list_collections(namespace, platform, params.merged(body))


@router.get(
    "/features/extractors",
    summary="The feature extractors: the built-ins, and the namespace's plugins when a key and "
    "X-Namespace are sent",
    response_model=list[CatalogueEntry],
)
async def list_feature_extractors(scoped: OptionalNamespaceDep) -> list[dict[str, Any]]:
    if scoped is None:
        return builtin_catalogue()
    return await run_in_threadpool(feature_extractor_catalogue, *scoped)


@router.get(
    "/features/extractors/{feature_extractor_id}",
    summary="One feature extractor (by id or name; a name answers its active version)",
    response_model=CatalogueEntry,
)
async def get_feature_extractor(
    feature_extractor_id: str, scoped: OptionalNamespaceDep
) -> dict[str, Any]:
    entries = (
        builtin_catalogue()
        if scoped is None
        else await run_in_threadpool(feature_extractor_catalogue, *scoped)
    )
    by_id = [e for e in entries if e["feature_extractor_id"] == feature_extractor_id]
    by_name = [e for e in entries if e["feature_extractor_name"] == feature_extractor_id]
    found = by_id or [e for e in by_name if e["is_active"]] or by_name[-1:]
    if not found:
        raise MixpeekError(
            ErrorCode.NOT_FOUND,
            f"feature extractor {feature_extractor_id!r} not found",
            field="feature_extractor_id",
        )
    return found[0]


@router.get(
    "/{collection_id}", summary="Get a collection (by id or name)", response_model=CollectionOut
)
async def get_collection(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return collection_out(
        await run_in_threadpool(platform.collections.get, namespace, collection_id)
    )


@router.patch(
    "/{collection_id}",
    summary="Change a collection: description, metadata, or its plugin version or parameters",
    response_model=CollectionOut,
)
async def update_collection(
    collection_id: str, body: CollectionUpdate, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    details = {
        k: v for k, v in body.model_dump(include={"description", "metadata"}).items()
        if v is not None
    }  # fmt: skip

    def update() -> dict[str, Any]:
        doc = platform.collections.update_details(namespace, collection_id, details)
        if body.feature_extractor is not None:
            doc = platform.operations.reprocess_with(
                namespace, doc["collection_id"], body.feature_extractor, reprocess=body.reprocess
            )
        return collection_out(doc)

    return await run_in_threadpool(update)


@router.delete(
    "/{collection_id}",
    summary="Delete a collection with its documents and vectors",
    response_model=Deleted,
)
async def delete_collection(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(platform.operations.delete_collection, namespace, collection_id)


class CollectionClone(HostedRequest):
    hosted_fields = frozenset({"enabled", "taxonomy_applications"})

    collection_name: str = Field(pattern=COLLECTION_NAME.pattern)
    description: str | None = None
    source: dict[str, Any] | None = Field(default=None, description="default: the original's")
    feature_extractor: dict[str, Any] | None = Field(
        default=None, description="default: the original's plugin version and parameters"
    )
    metadata: dict[str, Any] | None = None


class CollectionCloned(BaseModel):
    collection: CollectionOut
    source_collection_id: str


@router.post(
    "/{collection_id}/clone",
    summary="A new collection with this one's source and extractor (or the ones given); it "
    "processes the source's objects",
    response_model=CollectionCloned,
)
async def clone_collection(
    collection_id: str, body: CollectionClone, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def clone() -> dict[str, Any]:
        original = platform.collections.get(namespace, collection_id)
        extractor = original["feature_extractor"]
        made = platform.operations.create_collection(
            namespace,
            collection_name=body.collection_name,
            source=body.source or original["source"],
            feature_extractor=body.feature_extractor
            or {
                "feature_extractor_name": extractor["feature_extractor_name"],
                "version": extractor["version"],
                "parameters": extractor.get("parameters") or {},
                "input_mappings": extractor.get("input_mappings") or {},
            },
            description=original.get("description", "")
            if body.description is None
            else body.description,
            metadata=original.get("metadata") or {} if body.metadata is None else body.metadata,
        )
        return {
            "collection": collection_out(made),
            "source_collection_id": original["collection_id"],
        }

    return await run_in_threadpool(clone)


@router.post(
    "/{collection_id}/trigger",
    summary="Re-process every object of the collection (a task: GET /v1/tasks/{task_id})",
    response_model=TriggerOut,
    status_code=202,
)
async def trigger_collection(
    collection_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    body: ListBody = None,  # the hosted request's options (batch sizes, filters) are not used
) -> dict[str, Any]:
    def trigger() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        planned = platform.planner.trigger(collection)
        return {
            "collection_id": collection["collection_id"],
            "status": "queued",
            "total_tiers": 1,
            "message": f"{planned['objects']} object(s) queued in {len(planned['batches'])} batch(es)",
            "batch_ids": planned["batches"],
            "object_count": planned["objects"],
            **planned,
        }

    return await run_in_threadpool(trigger)


@router.get(
    "/{collection_id}/features",
    summary="The collection's features and their URIs",
    response_model=CollectionFeatures,
)
async def collection_features(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    """Every vector feature the collection stores, in the hosted descriptor (``feature_uri``,
    ``vector_index``), with this project's fields beside; ``other_features`` are those that
    store no vector (a classification, say)."""
    collection = await run_in_threadpool(platform.collections.get, namespace, collection_id)
    extractor = collection["feature_extractor"]
    vectors, others = [], []
    for feature, uri in zip(collection["features"], collection["feature_uris"], strict=True):
        described = {
            **feature,
            "feature_uri": uri,
            "feature_address": uri,
            "plugin_id": extractor["plugin_id"],
            "feature_extractor_name": extractor["feature_extractor_name"],
            "version": extractor["version"],
        }
        if feature.get("embedding_dim"):
            described["vector_index"] = {
                "name": feature["feature_name"],
                "description": f"{feature['feature_name']} of {extractor['feature_extractor_name']}",
                "type": "dense",
                "dimensions": feature["embedding_dim"],
                "distance": feature.get("distance_metric") or "cosine",
            }
            vectors.append(described)
        else:
            others.append(described)
    return {
        "collection_id": collection["collection_id"],
        "features": vectors,
        "other_features": others,
    }


class CollectionExport(HostedRequest):
    hosted_fields = frozenset({"samples_per_shard"})

    format: Literal["json", "csv", "parquet", "webdataset"] = "json"
    include_vectors: bool = False
    include_lineage: bool = False
    select_fields: list[str] | None = None
    sample_size: int | None = Field(default=None, ge=1, le=1_000_000)
    include_media: bool = False
    destination: dict[str, Any] | None = None

    def refused(self) -> MixpeekError | None:
        """What this install cannot export (each named), instead of a file without it."""
        for name, why in (
            ("format", self.format == "webdataset" and "webdataset shards (json, csv, parquet)"),
            ("include_media", self.include_media and "the objects' media (fetch them by object)"),
            ("destination", self.destination and "to a connection (download the file instead)"),
        ):
            if why:
                return MixpeekError(
                    ErrorCode.INVALID_REQUEST, f"exports here do not include {why}", field=name
                )
        return None


class CollectionExported(BaseModel):
    export_id: str
    download_url: str
    s3_path: str
    format: str
    document_count: int
    file_size_bytes: int
    exported_at: datetime
    vectors_download_url: str | None = None
    vectors_s3_path: str | None = None
    vector_count: int | None = None


@router.post(
    "/{collection_id}/export",
    summary="The collection's documents (and vectors) as a file to download",
    response_model=CollectionExported,
)
async def export_collection(
    collection_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    body: CollectionExport | None = None,
) -> dict[str, Any]:
    body = body or CollectionExport()
    if refused := body.refused():
        raise refused
    return await run_in_threadpool(
        lambda: platform.operations.export(
            namespace, collection_id, fmt=body.format, include_vectors=body.include_vectors,
            include_lineage=body.include_lineage, select_fields=body.select_fields,
            sample_size=body.sample_size,
        )
    )  # fmt: skip


class Discrepancy(BaseModel):
    object_id: str
    bucket_id: str | None = None
    reason: Literal["no_document", "failed", "processing", "skipped", "unknown"]
    status: str | None = None
    age_seconds: float | None = None
    error: str | None = None


class Reconciliation(BaseModel):
    collection_id: str
    source_object_count: int
    produced_object_count: int = Field(description="source objects with a document")
    document_count: int
    delta: int = Field(description="source objects without any document")
    discrepancies: list[Discrepancy]
    discrepancies_truncated: bool
    unfinished_count: int = Field(description="source objects without a completed document")
    limit: int


@router.get(
    "/{collection_id}/reconciliation",
    summary="Source objects without a completed document, and why",
    response_model=Reconciliation,
)
async def reconcile(
    collection_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    return await run_in_threadpool(
        lambda: platform.operations.reconcile(namespace, collection_id, limit=limit)
    )


@router.post(
    "/{collection_id}/documents/list",
    summary="List documents (hosted filters, limit / offset or cursor)",
    response_model=DocumentPage,
)
async def list_documents(
    collection_id: str,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
    params: ListParamsDep,
    body: DocumentList | None = None,
) -> dict[str, Any]:
    def listed() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        return document_page(
            platform, namespace, collection["collection_id"], params, body or DocumentList()
        )

    return await run_in_threadpool(listed)


@router.get(
    "/{collection_id}/documents", summary="List documents (limit / offset or cursor)",
    response_model=DocumentPage,
)  # fmt: skip
async def list_documents_get(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep, params: ListParamsDep
) -> dict[str, Any]:
    return await list_documents(collection_id, namespace, platform, params, None)


@router.get(
    "/{collection_id}/documents/count", summary="Documents by status", response_model=DocumentCount
)
async def count_documents(
    collection_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def count() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        counts = platform.documents.count(namespace, collection["collection_id"])
        return {"collection_id": collection["collection_id"], "count": counts["total"], **counts}

    return await run_in_threadpool(count)


@router.get(
    "/{collection_id}/documents/{document_id}", summary="Get a document", response_model=DocumentOut
)
async def get_document(
    collection_id: str, document_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def get() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        return platform.documents.get(namespace, collection["collection_id"], document_id)

    return await run_in_threadpool(get)


async def update_document(
    platform: Platform,
    namespace: Namespace,
    collection_id: str | None,
    document_id: str,
    changes: dict[str, Any],
    *,
    replace: bool,
) -> dict[str, Any]:
    def update() -> dict[str, Any]:
        if collection_id is None:
            doc = platform.documents.find(namespace, document_id)
        else:
            collection = platform.collections.get(namespace, collection_id)
            doc = platform.documents.get(namespace, collection["collection_id"], document_id)
        return platform.documents.update_metadata(namespace, doc, changes, replace=replace)

    return await run_in_threadpool(update)


DocumentChanges = Annotated[
    dict[str, Any],
    Body(description='the document\'s own fields: {"metadata": {...}} or fields at the root'),
]


@router.patch(
    "/{collection_id}/documents/{document_id}",
    summary="Merge fields into a document's metadata",
    response_model=DocumentOut,
)
async def patch_document(
    collection_id: str,
    document_id: str,
    changes: DocumentChanges,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    return await update_document(
        platform, namespace, collection_id, document_id, changes, replace=False
    )


@router.put(
    "/{collection_id}/documents/{document_id}",
    summary="Replace a document's metadata",
    response_model=DocumentOut,
)
async def put_document(
    collection_id: str,
    document_id: str,
    changes: DocumentChanges,
    namespace: HeaderNamespaceDep,
    platform: PlatformDep,
) -> dict[str, Any]:
    return await update_document(
        platform, namespace, collection_id, document_id, changes, replace=True
    )


@router.delete(
    "/{collection_id}/documents/{document_id}", summary="Delete a document", response_model=Deleted
)
async def delete_document(
    collection_id: str, document_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    def delete() -> dict[str, Any]:
        collection = platform.collections.get(namespace, collection_id)
        return platform.documents.delete(namespace, collection, document_id)

    return await run_in_threadpool(delete)


@router.get(
    "/{collection_id}/documents/{document_id}/lineage",
    summary="Object -> document -> feature URIs -> plugin version",
    response_model=Lineage,
)
async def document_lineage(
    collection_id: str, document_id: str, namespace: HeaderNamespaceDep, platform: PlatformDep
) -> dict[str, Any]:
    return await run_in_threadpool(
        platform.operations.document_lineage, namespace, collection_id, document_id
    )
