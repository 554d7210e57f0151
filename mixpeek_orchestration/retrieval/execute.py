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
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.documents import vector_table
from mixpeek_orchestration.plugins.records import DeploymentStatus, route_prefix
from mixpeek_orchestration.retrieval.cache import MemoryQueryCache, QueryCache
from mixpeek_orchestration.retrieval.filters import (
    check_condition,
    fill_templates,
    matches,
    mongo_condition,
)
from mixpeek_orchestration.retrieval.stages import STAGES, StageRun, parse_parameters
from mixpeek_orchestration.storage.vectors import metric_of
from mixpeek_orchestration.tenancy.accounts import Namespace

if TYPE_CHECKING:
    from mixpeek_orchestration.ingest.collections import Collections
    from mixpeek_orchestration.ingest.documents import Documents
    from mixpeek_orchestration.plugins.registry import PluginRegistry
    from mixpeek_orchestration.storage.vectors import VectorStore

PUSHDOWN_MAX_DOCUMENTS = 2_000  # filter matches named to the vector search at most
FILTER_OVERFETCH = 4  # candidates per wanted hit when a filter is checked after the search

# (route_prefix, inputs, parameters) -> the handler's answer; bound to the API's relay
CallDeployment = Callable[[str, dict[str, Any], dict[str, Any]], Awaitable[dict[str, Any]]]


def similarity(distance: float, metric: str) -> float:
    """LanceDB distances as scores where higher is better."""
    if metric == "cosine":
        return 1.0 - distance
    if metric == "dot":
        return -distance
    return 1.0 / (1.0 + distance)


class RetrieverExecutor:
    """Runs retrievers over one data plane's stores.

    Args:
        collections, registry, documents, vectors: the plane's repositories and vector store.
        call: ``call(route_prefix, inputs, parameters)`` answers a realtime deployment.
        cache: query vectors by (namespace, URI, mode, value).

    Every store call runs in a worker thread: the executor lives on the API's event loop.
    """

    def __init__(
        self,
        *,
        collections: Collections,
        registry: PluginRegistry,
        documents: Documents,
        vectors: VectorStore,
        call: CallDeployment,
        cache: QueryCache | None = None,
    ) -> None:
        self.collections = collections
        self.registry = registry
        self.documents = documents
        self.vectors = vectors
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
        collections = await asyncio.to_thread(self.collections.by_ids, retriever["collection_ids"])
        candidates: list[dict[str, Any]] = []
        statistics: dict[str, dict[str, Any]] = {}
        for index, stage in enumerate(retriever["stages"]):
            config = stage["config"]
            stage_id = config["stage_id"]
            parameters = parse_parameters(
                stage_id,
                fill_templates(config.get("parameters") or {}, inputs),
                where=f"stages[{index}]",
            )
            stage_start = time.perf_counter()
            before = len(candidates)
            run = StageRun(self, namespace, collections)
            candidates = await STAGES[stage_id].run(run, candidates, parameters)
            name = stage["stage_name"]
            statistics[name if name not in statistics else f"{name}#{index}"] = {
                "stage_name": name,
                "stage_id": stage_id,
                "duration_ms": round((time.perf_counter() - stage_start) * 1e3, 2),
                "input_count": before,
                "output_count": len(candidates),
                "efficiency": round(len(candidates) / before, 4) if before else 1.0,
                **run.stats,
            }
        limit = settings.get("limit")
        if isinstance(limit, int) and limit >= 0:
            candidates = candidates[:limit]
        total_ms = round((time.perf_counter() - started) * 1e3, 2)
        return {
            "execution_id": f"exe_{uuid.uuid4().hex[:16]}",
            "retriever_id": retriever.get("retriever_id"),
            "status": "completed",
            "documents": candidates,
            "pagination": {"total": len(candidates), "page_size": len(candidates), "page": 1},
            # per stage, keyed by stage name (a repeated name gets "#<index>"), as hosted
            "stage_statistics": {"stages": statistics, "total_time_ms": total_ms},
            "total_duration_ms": total_ms,
        }

    # -- what stages use ------------------------------------------------------------------------

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
        version = await asyncio.to_thread(self.registry.producer_of, namespace, uri)
        status = DeploymentStatus.of(version)
        if status is not DeploymentStatus.DEPLOYED:
            raise MixpeekError(
                ErrorCode.NOT_DEPLOYED,
                f"{uri} is encoded by {version['plugin_id']}, whose realtime deployment is "
                f"{status.value}: deploy it (POST .../plugins/{version['plugin_id']}/deploy) "
                "to search it",
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

    async def search(
        self, namespace: Namespace, collections: Sequence[Mapping[str, Any]], uri: str, vector: list[float],
        top_k: int, filters: dict[str, Any] | None,
    ) -> list[tuple[str, float]]:  # fmt: skip
        """The ``top_k`` best (document id, score) of one feature's vector table over the
        retriever's collections that carry it, ``filters`` applied."""
        return await asyncio.to_thread(
            self._search_sync, namespace, collections, uri, vector, top_k, filters
        )

    def _search_sync(
        self, namespace: Namespace, collections: Sequence[Mapping[str, Any]], uri: str, vector: list[float],
        top_k: int, filters: dict[str, Any] | None,
    ) -> list[tuple[str, float]]:  # fmt: skip
        table = vector_table(namespace.namespace_id, uri)
        ids = [c["collection_id"] for c in collections if uri in c["feature_uris"]]
        if not ids or not self.vectors.has_table(table):
            return []
        feature = next(
            f for c in collections if uri in c["feature_uris"]
            for f, u in zip(c["features"], c["feature_uris"], strict=True) if u == uri
        )  # fmt: skip
        metric = metric_of(feature)
        where: dict[str, Any] = {"collection_id": ids}
        filters = dict(filters or {})
        object_ids = filters.pop("object_ids", None)
        exact = False  # an ANN index probes some partitions: a selective filter needs them all
        if object_ids:
            where["object_id"] = list(object_ids)
            exact = True
        if filters:
            check_condition(filters)
        pushed = mongo_condition(filters) if filters else {}
        if pushed:
            # the filter runs in the metadata store first; the vector search then sees only
            # the documents it matched, unless they are too many to name
            allowed = self.documents.ids_matching(ids, pushed, limit=PUSHDOWN_MAX_DOCUMENTS + 1)
            if not allowed:
                return []
            if len(allowed) <= PUSHDOWN_MAX_DOCUMENTS:
                where["id"] = allowed
                exact = True
        # the exact rules run after the search, so it fetches more than it keeps
        k = top_k * FILTER_OVERFETCH if filters else top_k
        rows = self.vectors.search(
            table,
            vector,
            k=k,
            filters=where,
            metric=metric,
            exact=exact,
            columns=["id"],
        )
        hits = [(r["id"], similarity(r["_distance"], metric)) for r in rows]
        if filters:  # the exact rules, after whatever the metadata store narrowed
            documents = self.documents.by_ids([h[0] for h in hits])
            hits = [h for h in hits if h[0] in documents and matches(documents[h[0]], filters)]
        return hits[:top_k]

    async def hydrate(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """The documents of these ids, as results show them."""
        return await asyncio.to_thread(self.documents.by_ids, ids)

    async def plugin_calls(
        self,
        namespace: Namespace,
        name: str,
        parameters: dict[str, Any],
        requests: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """Each request answered by the serving version of deployed plugin ``name``,
        concurrently."""
        version = await asyncio.to_thread(self.registry.serving_version, namespace, name)
        prefix = route_prefix(namespace.namespace_id, version["plugin_id"])
        return list(await asyncio.gather(*(self.call(prefix, r, parameters) for r in requests)))
