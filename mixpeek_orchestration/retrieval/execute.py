"""Executing a retriever: stages over candidate documents, with per-stage statistics.

``feature_search`` is the only stage that creates candidates: each search's query is encoded by
the realtime deployment of the plugin version that produced its feature URI (never by anything
else, so queries and documents share one space), searched in that URI's vector table for each
of the retriever's collections, and the searches are fused (``rrf``, ``weighted`` or ``max``).
Later stages filter, re-score, label, sort, cut or de-duplicate the candidates.

Query embeddings are cached (per namespace, URI and query) in process, or in Redis when one is
configured (``retrieval/cache.py``); hits, misses and cache errors are counted in the statistics.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.documents import vector_table
from mixpeek_orchestration.retrieval.cache import MemoryQueryCache, QueryCache
from mixpeek_orchestration.serve.naming import route_prefix
from mixpeek_orchestration.tenancy.accounts import Namespace

if TYPE_CHECKING:
    from mixpeek_orchestration.platform import Platform

TEMPLATE = re.compile(r"\{\{\s*INPUT\.([A-Za-z0-9_.]+)\s*\}\}")
RRF_K = 60
METRICS = {"cosine": "cosine", "euclid": "l2", "dot": "dot"}
PUSHDOWN_MAX_DOCUMENTS = 2_000  # filter matches named to the vector search at most
FILTER_OVERFETCH = 4  # candidates per wanted hit when a filter is checked after the search

# (inputs, parameters) -> the handler's answer; bound to the API's relay by the caller
CallDeployment = Callable[[str, dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]]


def fill_templates(value: Any, inputs: dict[str, Any]) -> Any:
    """Replace ``{{INPUT.x}}`` in every string of ``value`` with ``inputs["x"]``."""
    if isinstance(value, str):
        whole = TEMPLATE.fullmatch(value.strip())
        if whole:
            return _lookup(inputs, whole.group(1))
        return TEMPLATE.sub(lambda m: str(_lookup(inputs, m.group(1))), value)
    if isinstance(value, dict):
        return {k: fill_templates(v, inputs) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_templates(v, inputs) for v in value]
    return value


def _lookup(data: dict[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict) or part not in current:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                f"inputs has no {path!r} (used as {{{{INPUT.{path}}}}})",
                field="inputs",
            )
        current = current[part]
    return current


def field_value(doc: dict[str, Any], path: str) -> Any:
    current: Any = doc
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
    "in": lambda a, b: a in b,
    "nin": lambda a, b: a not in b,
    "contains": lambda a, b: a is not None and b in a,
    "exists": lambda a, b: (a is not None) == bool(b),
}


def check_condition(condition: Any) -> None:
    """Refuse a malformed filter up front (422 naming what is wrong), so that a filter that
    happens to meet no candidate is not silently accepted."""
    if not isinstance(condition, dict):
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"a filter must be an object, not {condition!r}",
            field="filters",
        )
    for combine in ("AND", "OR"):
        if combine in condition:
            if not isinstance(condition[combine], list):
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST, f"filters {combine} takes a list", field="filters"
                )
            for part in condition[combine]:
                check_condition(part)
            return
    if not isinstance(condition.get("field"), str):
        raise MixpeekError(ErrorCode.INVALID_REQUEST, "a filter needs a 'field'", field="filters")
    _operator(condition)


def _operator(condition: dict[str, Any]) -> Callable[[Any, Any], bool]:
    """The comparison a leaf condition names (``eq`` by default); 422 for an unknown one."""
    operator = condition.get("operator", "eq")
    if operator not in OPERATORS:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST,
            f"filter operator {operator!r} is not one of {sorted(OPERATORS)}",
            field="filters",
        )
    return OPERATORS[operator]


def matches(doc: dict[str, Any], condition: dict[str, Any]) -> bool:
    """``{field, operator, value}``, or ``{AND: [...]}`` / ``{OR: [...]}`` of them."""
    if "AND" in condition:
        return all(matches(doc, c) for c in condition["AND"])
    if "OR" in condition:
        return any(matches(doc, c) for c in condition["OR"])
    compare = _operator(condition)
    try:
        return compare(field_value(doc, condition["field"]), condition.get("value"))
    except TypeError:
        return False
    except KeyError:
        raise MixpeekError(
            ErrorCode.INVALID_REQUEST, "a filter needs a 'field'", field="filters"
        ) from None


def sql_literal(value: Any) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def mongo_condition(condition: dict[str, Any]) -> dict[str, Any]:
    """A metadata-store query matching at least every document ``matches`` accepts.

    Operators whose MongoDB meaning is at least as wide as :data:`OPERATORS` (``eq``, the
    comparisons, ``in`` over a list, ``exists: true``) are pushed down; the rest become
    "anything" (``{}``), and the exact rules still run on what comes back. ``score`` is computed
    by the search, never stored, so it is never pushed.
    """
    if "AND" in condition:
        parts = [p for p in (mongo_condition(c) for c in condition["AND"]) if p]
        return {"$and": parts} if parts else {}
    if "OR" in condition:
        parts = [mongo_condition(c) for c in condition["OR"]]
        return {"$or": parts} if parts and all(parts) else {}
    field, operator = condition.get("field"), condition.get("operator", "eq")
    value = condition.get("value")
    if not isinstance(field, str) or field == "score" or field.startswith(("score.", "$")):
        return {}
    if operator == "eq":
        return {field: value}
    if operator in ("gt", "gte", "lt", "lte") and value is not None:
        return {field: {f"${operator}": value}}
    if operator == "in" and isinstance(value, list):
        return {field: {"$in": value}}
    if operator == "exists" and value:
        return {field: {"$ne": None}}
    return {}


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


def similarity(distance: float, metric: str) -> float:
    """LanceDB distances as scores where higher is better."""
    if metric == "cosine":
        return 1.0 - distance
    if metric == "dot":
        return -distance
    return 1.0 / (1.0 + distance)


class RetrieverExecutor:
    def __init__(
        self,
        platform: Platform,
        call: Callable[..., Awaitable[dict[str, Any]]],
        cache: QueryCache | None = None,
    ) -> None:
        """``call(route_prefix, inputs, parameters)`` answers a realtime deployment."""
        self.platform = platform
        self.call = call
        self.cache = cache or MemoryQueryCache()

    async def execute(
        self,
        namespace: Namespace,
        retriever: dict[str, Any],
        inputs: dict[str, Any],
        settings: dict[str, Any],
    ) -> dict[str, Any]:
        started = time.perf_counter()
        collections = [
            c
            for c in [self.platform.collections.by_id(cid) for cid in retriever["collection_ids"]]
            if c is not None
        ]
        candidates: list[dict[str, Any]] = []
        statistics = []
        for stage in retriever["stages"]:
            config = stage["config"]
            parameters = fill_templates(config.get("parameters") or {}, inputs)
            stage_start = time.perf_counter()
            before = len(candidates)
            stats: dict[str, Any] = {}
            handler = getattr(self, f"_{config['stage_id']}")
            candidates = await handler(namespace, collections, candidates, parameters, stats)
            statistics.append(
                {
                    "stage_name": stage["stage_name"],
                    "stage_id": config["stage_id"],
                    "duration_ms": round((time.perf_counter() - stage_start) * 1e3, 2),
                    "input_count": before,
                    "output_count": len(candidates),
                    **stats,
                }
            )
        limit = settings.get("limit")
        if isinstance(limit, int) and limit >= 0:
            candidates = candidates[:limit]
        return {
            "execution_id": f"exe_{uuid.uuid4().hex[:16]}",
            "retriever_id": retriever["retriever_id"],
            "status": "completed",
            "documents": candidates,
            "stage_statistics": statistics,
            "total_duration_ms": round((time.perf_counter() - started) * 1e3, 2),
        }

    # -- query encoding -------------------------------------------------------------------------

    def _producer(self, namespace: Namespace, uri: str) -> dict[str, Any]:
        version = self.platform.registry.versions.find_one(
            {
                "org_id": namespace.org_id,
                "namespace_id": namespace.namespace_id,
                "feature_uris": uri,
            },
            {
                "_id": 0,
                "plugin_id": 1,
                "name": 1,
                "version": 1,
                "features": 1,
                "feature_uris": 1,
                "deployment": 1,
            },
        )
        if version is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"no plugin version in this namespace produces {uri}",
                field="feature_uri",
            )
        return version

    async def encode(
        self, namespace: Namespace, uri: str, query: Any, stats: dict[str, Any]
    ) -> list[float]:
        if not isinstance(query, dict):
            query = {"input_mode": "text", "value": query}
        mode, value = query.get("input_mode", "text"), query.get("value")
        if mode == "vector":
            if not isinstance(value, list) or not value:
                raise MixpeekError(
                    ErrorCode.INVALID_REQUEST, "a vector query needs value: [floats]", field="query"
                )
            return [float(v) for v in value]
        if mode not in ("text", "url") or not isinstance(value, str) or not value:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "query must be {input_mode: text | url | vector, value}",
                field="query",
            )
        key = (namespace.namespace_id, uri, mode, value)
        errors = self.cache.errors
        cached = await self.cache.get(key)
        stats["cache"] = self.cache.backend
        if self.cache.errors > errors:
            stats["cache_errors"] = stats.get("cache_errors", 0) + 1
        if cached is not None:
            stats["cache_hits"] = stats.get("cache_hits", 0) + 1
            return cached
        stats["cache_misses"] = stats.get("cache_misses", 0) + 1
        version = await asyncio.to_thread(self._producer, namespace, uri)
        status = version.get("deployment", {}).get("status", "NOT_DEPLOYED")
        if status != "DEPLOYED":
            raise MixpeekError(
                ErrorCode.NOT_DEPLOYED,
                f"{uri} is encoded by {version['plugin_id']}, whose realtime deployment is "
                f"{status}: deploy it (POST .../plugins/{version['plugin_id']}/deploy) to search it",
                feature_uri=uri,
            )
        inputs = {"text": value} if mode == "text" else {"url": value, "image_url": value}
        answer = await self.call(
            route_prefix(namespace.namespace_id, version["plugin_id"]), inputs, {}
        )
        feature = version["features"][version["feature_uris"].index(uri)]["feature_name"]
        vector = answer.get(feature, answer.get("embedding"))
        if not isinstance(vector, list) or not vector:
            raise MixpeekError(
                ErrorCode.REALTIME_ERROR,
                f"{version['plugin_id']}'s realtime handler returned no {feature!r} or 'embedding' vector",
            )
        await self.cache.put(key, vector)
        return vector

    # -- stages ---------------------------------------------------------------------------------

    async def _feature_search(
        self, namespace: Namespace, collections: list[dict[str, Any]], candidates: list[dict[str, Any]],
        parameters: dict[str, Any], stats: dict[str, Any],
    ) -> list[dict[str, Any]]:  # fmt: skip
        searches = parameters["searches"]
        final_top_k = int(parameters.get("final_top_k") or parameters.get("top_k") or 10)
        ranked: list[list[tuple[str, float]]] = []
        weights = []
        for search in searches:
            uri = search["feature_uri"]
            top_k = int(search.get("top_k") or parameters.get("top_k") or 25)
            vector = await self.encode(namespace, uri, search.get("query"), stats)
            hits = await asyncio.to_thread(
                self._search, namespace, collections, uri, vector, top_k, search.get("filters")
            )
            min_score = search.get("min_score", parameters.get("min_score"))
            if min_score is not None:
                hits = [h for h in hits if h[1] >= float(min_score)]
            ranked.append(hits)
            weights.append(float(search.get("weight", 1.0)))
        method = parameters.get("fusion", "rrf") if len(searches) > 1 else "max"
        fused = sorted(fuse(ranked, method, weights).items(), key=lambda kv: kv[1], reverse=True)[
            :final_top_k
        ]
        documents = await asyncio.to_thread(self._hydrate, [d for d, _ in fused])
        scores = dict(fused)
        out = []
        for doc_id, _ in fused:
            if doc_id in documents:
                out.append(documents[doc_id] | {"score": round(scores[doc_id], 6)})
        stats["searches"] = len(searches)
        return out

    def _search(
        self, namespace: Namespace, collections: list[dict[str, Any]], uri: str, vector: list[float],
        top_k: int, filters: dict[str, Any] | None,
    ) -> list[tuple[str, float]]:  # fmt: skip
        table = vector_table(namespace.namespace_id, uri)
        ids = [c["collection_id"] for c in collections if uri in c["feature_uris"]]
        if not ids or not self.platform.vectors.has_table(table):
            return []
        feature = next(
            f for c in collections if uri in c["feature_uris"]
            for f, u in zip(c["features"], c["feature_uris"], strict=True) if u == uri
        )  # fmt: skip
        metric = METRICS.get(feature.get("distance_metric", "cosine"), "cosine")
        where = "collection_id IN (" + ", ".join(sql_literal(i) for i in ids) + ")"
        filters = dict(filters or {})
        object_ids = filters.pop("object_ids", None)
        exact = False  # an ANN index probes some partitions: a selective filter needs them all
        if object_ids:
            where += " AND object_id IN (" + ", ".join(sql_literal(o) for o in object_ids) + ")"
            exact = True
        if filters:
            check_condition(filters)
        pushed = mongo_condition(filters) if filters else {}
        if pushed:
            # the filter runs in the metadata store first; the vector search then sees only
            # the documents it matched, unless they are too many to name
            allowed = [
                d["document_id"]
                for d in self.platform.documents.documents.find(
                    {"collection_id": {"$in": ids}, **pushed}, {"_id": 0, "document_id": 1}
                ).limit(PUSHDOWN_MAX_DOCUMENTS + 1)
            ]
            if not allowed:
                return []
            if len(allowed) <= PUSHDOWN_MAX_DOCUMENTS:
                where += " AND id IN (" + ", ".join(sql_literal(d) for d in allowed) + ")"
                exact = True
        # the exact rules run after the search, so it fetches more than it keeps
        k = top_k * FILTER_OVERFETCH if filters else top_k
        rows = self.platform.vectors.search(
            table,
            vector,
            k=k,
            where=where,
            metric=metric,  # type: ignore[arg-type]
            exact=exact,
            columns=["id"],
        )
        hits = [(r["id"], similarity(r["_distance"], metric)) for r in rows]
        if filters:  # the exact rules, after whatever the metadata store narrowed
            documents = self._hydrate([h[0] for h in hits])
            hits = [h for h in hits if h[0] in documents and matches(documents[h[0]], filters)]
        return hits[:top_k]

    def _hydrate(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        return {
            d["document_id"]: d
            for d in self.platform.documents.documents.find(
                {"document_id": {"$in": ids}}, {"_id": 0, "seq": 0, "batch_id": 0, "run_id": 0}
            )
        }

    async def _attribute_filter(self, namespace, collections, candidates, parameters, stats):  # type: ignore[no-untyped-def]
        condition = parameters.get("filters") or parameters
        check_condition(condition)
        return [c for c in candidates if matches(c, condition)]

    async def _sort_attribute(self, namespace, collections, candidates, parameters, stats):  # type: ignore[no-untyped-def]
        field = parameters.get("sort_field") or parameters.get("field") or "score"
        reverse = parameters.get("sort_direction", parameters.get("direction", "desc")) == "desc"
        present = [c for c in candidates if field_value(c, field) is not None]
        missing = [c for c in candidates if field_value(c, field) is None]
        return sorted(present, key=lambda c: field_value(c, field), reverse=reverse) + missing

    async def _limit(self, namespace, collections, candidates, parameters, stats):  # type: ignore[no-untyped-def]
        offset = int(parameters.get("offset", 0))
        return candidates[offset : offset + int(parameters.get("limit", 10))]

    async def _deduplicate(self, namespace, collections, candidates, parameters, stats):  # type: ignore[no-untyped-def]
        field = parameters.get("field", "source_object_id")
        seen: set[Any] = set()
        out = []
        for candidate in candidates:
            key = repr(field_value(candidate, field))
            if key not in seen:
                seen.add(key)
                out.append(candidate)
        return out

    async def _plugin_calls(
        self, namespace: Namespace, parameters: dict[str, Any], candidates: list[dict[str, Any]], build: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> list[dict[str, Any]]:  # fmt: skip
        name = parameters.get("inference_name") or parameters.get("plugin")
        if not name:
            raise MixpeekError(
                ErrorCode.INVALID_REQUEST,
                "this stage needs parameters.inference_name (a deployed plugin)",
                field="inference_name",
            )
        version = await asyncio.to_thread(self.platform.deployer.serving_version, namespace, name)
        prefix = route_prefix(namespace.namespace_id, version["plugin_id"])
        return list(
            await asyncio.gather(
                *(
                    self.call(prefix, build(c), parameters.get("parameters") or {})
                    for c in candidates
                )
            )
        )

    async def _rerank(self, namespace, collections, candidates, parameters, stats):  # type: ignore[no-untyped-def]
        field = parameters.get("document_field", "outputs.text")
        query = parameters.get("query", "")
        answers = await self._plugin_calls(
            namespace, parameters, candidates,
            lambda c: {"query": query, "text": str(field_value(c, field) or ""), "document": c.get("outputs", {})},
        )  # fmt: skip
        rescored = [
            c | {"score": float(a.get("score", 0.0))}
            for c, a in zip(candidates, answers, strict=True)
        ]
        rescored.sort(key=lambda c: c["score"], reverse=True)
        top_n = parameters.get("top_n")
        return rescored[: int(top_n)] if top_n else rescored

    async def _classify(self, namespace, collections, candidates, parameters, stats):  # type: ignore[no-untyped-def]
        field = parameters.get("document_field", "outputs.text")
        answers = await self._plugin_calls(
            namespace, parameters, candidates,
            lambda c: {"text": str(field_value(c, field) or ""), "labels": parameters.get("labels", [])},
        )  # fmt: skip
        output = parameters.get("output_field", "classification")
        return [c | {output: a.get("label", a)} for c, a in zip(candidates, answers, strict=True)]
