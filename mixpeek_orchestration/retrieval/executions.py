"""What each retriever execution did: the hosted execution history.

An execution is recorded after its answer is sent (never on the request's path): its status,
timings, per-stage statistics, a hash and a short summary of its inputs, and the ids and
scores it returned (not the documents: ``documents_retained`` is false). Records expire after
:data:`RETENTION_S` through a TTL index, so the history never grows without bound.
"""

from __future__ import annotations

import builtins
import hashlib
import json
from datetime import timedelta
from typing import Any

from pymongo import DESCENDING

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.storage.ids import now
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.scope import scope
from mixpeek_orchestration.tenancy.accounts import Namespace

RETENTION_S = 7 * 24 * 3600
SUMMARY_CHARS = 200
ADHOC = "adhoc"
"""The ``retriever_id`` an ad-hoc execution (no stored retriever) is recorded under."""


def inputs_hash(inputs: dict[str, Any]) -> str:
    canonical = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def query_summary(inputs: dict[str, Any]) -> str | None:
    """The first text input, shortened: what the history shows as the query."""
    for value in inputs.values():
        if isinstance(value, str) and value.strip():
            text = value.strip()
            return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"
    return None


class Executions:
    def __init__(self, metadata: MetadataStore) -> None:
        self.executions = metadata.collection("retriever_executions")

    def ensure_indexes(self) -> None:
        self.executions.create_index("execution_id", unique=True)
        self.executions.create_index(
            [("org_id", 1), ("namespace_id", 1), ("retriever_id", 1), ("created_at", -1)]
        )
        self.executions.create_index("created_at", expireAfterSeconds=RETENTION_S)

    def record(
        self,
        namespace: Namespace,
        answer: dict[str, Any],
        inputs: dict[str, Any],
        collection_ids: builtins.list[str],
    ) -> None:
        """Keep one execution's answer (see the module docstring for what is kept)."""
        stages = answer["stage_statistics"]["stages"]
        hits = sum(s.get("cache_hits", 0) for s in stages.values())
        lookups = hits + sum(s.get("cache_misses", 0) for s in stages.values())
        finished = now()
        duration_ms = float(answer["total_duration_ms"])
        started = finished - timedelta(milliseconds=duration_ms)
        self.executions.insert_one(
            {
                **scope(namespace),
                "execution_id": answer["execution_id"],
                "retriever_id": answer.get("retriever_id") or ADHOC,
                "execution_mode": "retriever" if answer.get("retriever_id") else ADHOC,
                "collection_ids": collection_ids,
                "status": answer["status"],
                "created_at": started,
                "timestamp": started,
                "completed_at": finished,
                "duration_ms": duration_ms,
                "credits_used": 0.0,
                "total_processed": max(
                    (max(s["input_count"], s["output_count"]) for s in stages.values()), default=0
                ),
                "total_returned": len(answer["documents"]),
                "cache_hit_rate": round(hits / lookups, 4) if lookups else None,
                "inputs_hash": inputs_hash(inputs),
                "query_summary": query_summary(inputs),
                "stage_statistics": answer["stage_statistics"],
                "results": [
                    {"document_id": d.get("document_id"), "score": d.get("score")}
                    for d in answer["documents"]
                ],
                "total_stages": len(stages),
                "stages_completed": len(stages),
            }
        )

    def list(
        self,
        namespace: Namespace,
        retriever_id: str,
        *,
        limit: int,
        offset: int,
        status: str | None = None,
        match: dict[str, Any] | None = None,
        sort: builtins.list[tuple[str, int]] | None = None,
        full: bool = False,
    ) -> tuple[builtins.list[dict[str, Any]], int]:
        """A page of a retriever's executions (``ADHOC``: the ad-hoc ones), newest first
        unless ``sort`` says otherwise, and how many there are; ``match`` is a store query
        over the summaries, ``full`` keeps each one's stage statistics and results."""
        query: dict[str, Any] = {**scope(namespace), "retriever_id": retriever_id}
        if status:
            query["status"] = status
        if match:
            query = {"$and": [query, match]}
        sort = sort or []
        order = sort + [
            (k, DESCENDING) for k in ("created_at", "execution_id") if k not in dict(sort)
        ]
        shown = {"_id": 0} if full else {"_id": 0, "stage_statistics": 0, "results": 0}
        found = self.executions.find(query, shown).sort(order).skip(offset).limit(limit)
        return list(found), self.executions.count_documents(query)

    def recent_queries(
        self, namespace: Namespace, pattern: dict[str, Any], *, limit: int
    ) -> builtins.list[str]:
        """The namespace's latest distinct query summaries matching ``pattern`` (a store
        condition such as a prefix ``$regex``), newest first."""
        found = (
            self.executions.find(
                {**scope(namespace), "query_summary": pattern}, {"_id": 0, "query_summary": 1}
            )
            .sort("created_at", DESCENDING)
            .limit(limit * 5)
        )
        return builtins.list(dict.fromkeys(e["query_summary"] for e in found))[:limit]

    def get(self, namespace: Namespace, retriever_id: str, execution_id: str) -> dict[str, Any]:
        doc = self.executions.find_one(
            {**scope(namespace), "retriever_id": retriever_id, "execution_id": execution_id},
            {"_id": 0},
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND,
                f"execution {execution_id!r} not found (executions are kept "
                f"{RETENTION_S // 86400} days)",
                field="execution_id",
            )
        return doc

    def delete_of(self, namespace: Namespace, retriever_id: str) -> int:
        return self.executions.delete_many(
            {**scope(namespace), "retriever_id": retriever_id}
        ).deleted_count

    def delete_namespace(self, namespace: Namespace) -> int:
        return self.executions.delete_many(scope(namespace)).deleted_count
