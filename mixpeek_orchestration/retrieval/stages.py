"""Retriever stages: one registry, :data:`STAGES`, of typed parameters and run functions.

Each stage is a pydantic parameter model (unknown keys refused, naming them) and an async run
function over the candidate documents. A retriever's stages are validated against the same
models when it is saved (:func:`validate_stage`) and again, with ``{{INPUT.x}}`` templates
filled, when it runs; so a typo is a 422 at creation, never an empty result at query time.
Adding a stage is one model, one function and one :func:`stage` decorator, here.

``feature_search`` is the only stage that creates candidates; the others filter, re-score,
label, sort, cut or de-duplicate them.

Example:
    >>> validate_stage("limit", {"limit": "{{INPUT.n}}"}, feature_uris=set(), where="stages[1]")
    >>> sorted(STAGES)
    ['attribute_filter', 'classify', 'deduplicate', 'feature_search', 'limit', 'rerank', 'sort_attribute']
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.retrieval.filters import check_condition, field_value, matches

if TYPE_CHECKING:
    from mixpeek_orchestration.retrieval.execute import RetrieverExecutor
    from mixpeek_orchestration.tenancy.accounts import Namespace

RRF_K = 60

Templated = Annotated[
    str, StringConstraints(pattern=r"^\s*\{\{\s*INPUT\.[A-Za-z0-9_.]+\s*\}\}\s*$")
]
"""A whole value taken from the execution's ``inputs`` (``"{{INPUT.k}}"``): accepted in place
of a number when a retriever is saved, checked as the number once it is filled."""
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]


class StageParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def check(self, feature_uris: set[str], where: str) -> None:
        """Checks that need the retriever's collections (none by default)."""


@dataclass
class StageRun:
    """What a stage's run function works with."""

    executor: RetrieverExecutor
    namespace: Namespace
    collections: Sequence[Mapping[str, Any]]
    stats: dict[str, Any] = dataclass_field(default_factory=dict)


Run = Callable[[StageRun, list[dict[str, Any]], Any], Awaitable[list[dict[str, Any]]]]


@dataclass(frozen=True)
class StageSpec:
    parameters: type[StageParameters]
    run: Run


STAGES: dict[str, StageSpec] = {}


def stage(stage_id: str, parameters: type[StageParameters]) -> Callable[[Run], Run]:
    """Register ``run`` as the stage ``stage_id`` taking ``parameters``."""

    def register(run: Run) -> Run:
        STAGES[stage_id] = StageSpec(parameters, run)
        return run

    return register


def _spec(stage_id: Any, where: str) -> StageSpec:
    spec = STAGES.get(stage_id) if isinstance(stage_id, str) else None
    if spec is None:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"{where}.config.stage_id {stage_id!r} is not one of {sorted(STAGES)}",
            field=f"{where}.config.stage_id",
        )
    return spec


def parse_parameters(stage_id: str, raw: dict[str, Any], *, where: str) -> StageParameters:
    """A stage's parameters as its model, or a 422 naming the first bad field."""
    spec = _spec(stage_id, where)
    try:
        return spec.parameters.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        location = ".".join(str(p) for p in first["loc"])
        path = f"{where}.config.parameters" + (f".{location}" if location else "")
        message = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            message = f"{stage_id} takes no parameter {first['loc'][-1]!r}"
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"{path}: {message}"
            + (f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""),
            field=path,
        ) from None


def validate_stage(
    stage_id: Any, parameters: Any, *, feature_uris: set[str], where: str
) -> StageParameters:
    """Check one stage of a retriever being saved (templates stand in for their values)."""
    _spec(stage_id, where)
    if not isinstance(parameters, dict):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"{where}.config.parameters must be an object",
            field=f"{where}.config.parameters",
        )
    model = parse_parameters(stage_id, parameters, where=where)
    model.check(feature_uris, where)
    return model


# -- feature_search -----------------------------------------------------------------------------


class Search(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feature_uri: str
    query: Any = Field(description='"text", or {input_mode: text | url | vector, value}')
    top_k: Positive | Templated | None = None
    filters: dict[str, Any] | None = None
    min_score: float | Templated | None = None
    weight: float | Templated = 1.0


class FeatureSearch(StageParameters):
    searches: list[Search] = Field(min_length=1, description="[{feature_uri, query}, ...]")
    final_top_k: Positive | Templated | None = None
    top_k: Positive | Templated | None = None
    min_score: float | Templated | None = None
    fusion: Literal["rrf", "weighted", "max"] = "rrf"

    def check(self, feature_uris: set[str], where: str) -> None:
        for index, search in enumerate(self.searches):
            if search.feature_uri not in feature_uris:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"{where}.searches[{index}].feature_uri {search.feature_uri!r} is not a "
                    f"feature of the retriever's collections ({sorted(feature_uris)})",
                    field=f"{where}.config.parameters.searches[{index}].feature_uri",
                )
            rest = {k: v for k, v in (search.filters or {}).items() if k != "object_ids"}
            if rest:
                check_condition(rest)


def fuse(
    ranked: list[list[tuple[str, float]]], method: str, weights: list[float]
) -> dict[str, float]:
    """Combine per-search rankings (best first) into one score per document."""
    scores: dict[str, float] = {}
    for hits, weight in zip(ranked, weights, strict=True):
        for rank, (doc_id, score) in enumerate(hits):
            if method == "rrf":
                scores[doc_id] = scores.get(doc_id, 0.0) + weight / (RRF_K + rank + 1)
            elif method == "weighted":
                scores[doc_id] = scores.get(doc_id, 0.0) + weight * score
            elif method == "max":
                scores[doc_id] = max(scores.get(doc_id, float("-inf")), score)
            else:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST,
                    f"fusion {method!r} is not one of rrf, weighted, max",
                    field="fusion",
                )
    return scores


@stage("feature_search", FeatureSearch)
async def feature_search(
    run: StageRun, candidates: list[dict[str, Any]], params: FeatureSearch
) -> list[dict[str, Any]]:
    final_top_k = int(params.final_top_k or params.top_k or 10)
    ranked: list[list[tuple[str, float]]] = []
    weights = []
    for search in params.searches:
        top_k = int(search.top_k or params.top_k or 25)
        vector = await run.executor.encode(
            run.namespace, search.feature_uri, search.query, run.stats
        )
        hits = await run.executor.search(
            run.namespace, run.collections, search.feature_uri, vector, top_k, search.filters
        )
        min_score = search.min_score if search.min_score is not None else params.min_score
        if min_score is not None:
            hits = [h for h in hits if h[1] >= float(min_score)]
        ranked.append(hits)
        weights.append(float(search.weight))
    method = params.fusion if len(params.searches) > 1 else "max"
    fused = sorted(fuse(ranked, method, weights).items(), key=lambda kv: kv[1], reverse=True)
    fused = fused[:final_top_k]
    documents = await run.executor.hydrate([d for d, _ in fused])
    run.stats["searches"] = len(params.searches)
    return [
        documents[doc_id] | {"score": round(score, 6)}
        for doc_id, score in fused
        if doc_id in documents
    ]


# -- attribute_filter ---------------------------------------------------------------------------


class AttributeFilter(StageParameters):
    """``{filters: <filter>}``, or the filter itself (``{field, operator, value}``,
    ``{AND: [...]}``, ``{OR: [...]}``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    filters: dict[str, Any] | None = None
    field: str | None = None
    operator: str | None = None
    value: Any = None
    all_of: list[Any] | None = Field(default=None, alias="AND")
    any_of: list[Any] | None = Field(default=None, alias="OR")

    @property
    def condition(self) -> dict[str, Any]:
        if self.filters is not None:
            return self.filters
        return self.model_dump(by_alias=True, exclude_unset=True, exclude={"filters"})

    def check(self, feature_uris: set[str], where: str) -> None:
        check_condition(self.condition)


@stage("attribute_filter", AttributeFilter)
async def attribute_filter(
    run: StageRun, candidates: list[dict[str, Any]], params: AttributeFilter
) -> list[dict[str, Any]]:
    condition = params.condition
    check_condition(condition)
    return [c for c in candidates if matches(c, condition)]


# -- sort_attribute, limit, deduplicate ---------------------------------------------------------


class SortAttribute(StageParameters):
    sort_field: str | None = None
    field: str | None = None
    sort_direction: Literal["asc", "desc"] | None = None
    direction: Literal["asc", "desc"] | None = None


@stage("sort_attribute", SortAttribute)
async def sort_attribute(
    run: StageRun, candidates: list[dict[str, Any]], params: SortAttribute
) -> list[dict[str, Any]]:
    key = params.sort_field or params.field or "score"
    reverse = (params.sort_direction or params.direction or "desc") == "desc"
    present = [c for c in candidates if field_value(c, key) is not None]
    missing = [c for c in candidates if field_value(c, key) is None]
    return sorted(present, key=lambda c: field_value(c, key), reverse=reverse) + missing


class Limit(StageParameters):
    limit: Count | Templated = 10
    offset: Count | Templated = 0


@stage("limit", Limit)
async def limit(
    run: StageRun, candidates: list[dict[str, Any]], params: Limit
) -> list[dict[str, Any]]:
    offset = int(params.offset)
    return candidates[offset : offset + int(params.limit)]


class Deduplicate(StageParameters):
    field: str = "source_object_id"


@stage("deduplicate", Deduplicate)
async def deduplicate(
    run: StageRun, candidates: list[dict[str, Any]], params: Deduplicate
) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for candidate in candidates:
        key = repr(field_value(candidate, params.field))
        if key not in seen:
            seen.add(key)
            out.append(candidate)
    return out


# -- rerank, classify: a deployed plugin per candidate ------------------------------------------


class PluginCall(StageParameters):
    inference_name: str | None = Field(default=None, description="a deployed plugin's name")
    plugin: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    document_field: str = "outputs.text"

    @property
    def plugin_name(self) -> str:
        name = self.inference_name or self.plugin
        if not name:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "this stage needs parameters.inference_name (a deployed plugin)",
                field="inference_name",
            )
        return name

    def check(self, feature_uris: set[str], where: str) -> None:
        if not (self.inference_name or self.plugin):
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"{where}: this stage needs parameters.inference_name (a deployed plugin)",
                field=f"{where}.config.parameters.inference_name",
            )


class Rerank(PluginCall):
    query: Any = ""
    top_n: Positive | Templated | None = None


@stage("rerank", Rerank)
async def rerank(
    run: StageRun, candidates: list[dict[str, Any]], params: Rerank
) -> list[dict[str, Any]]:
    answers = await run.executor.plugin_calls(
        run.namespace,
        params.plugin_name,
        params.parameters,
        [
            {
                "query": params.query,
                "text": str(field_value(c, params.document_field) or ""),
                "document": c.get("outputs", {}),
            }
            for c in candidates
        ],
    )
    rescored = [
        c | {"score": float(a.get("score", 0.0))} for c, a in zip(candidates, answers, strict=True)
    ]
    rescored.sort(key=lambda c: c["score"], reverse=True)
    return rescored[: int(params.top_n)] if params.top_n else rescored


class Classify(PluginCall):
    labels: list[Any] = Field(default_factory=list)
    output_field: str = "classification"


@stage("classify", Classify)
async def classify(
    run: StageRun, candidates: list[dict[str, Any]], params: Classify
) -> list[dict[str, Any]]:
    answers = await run.executor.plugin_calls(
        run.namespace,
        params.plugin_name,
        params.parameters,
        [
            {"text": str(field_value(c, params.document_field) or ""), "labels": params.labels}
            for c in candidates
        ],
    )
    return [
        c | {params.output_field: a.get("label", a)}
        for c, a in zip(candidates, answers, strict=True)
    ]
