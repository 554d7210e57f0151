"""What every LLM call cost: one ``llm_usage`` record per call, per organisation, namespace,
plugin and collection; the reports ``GET /v1/organizations/usage`` and ``/metrics`` read."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING

from mixpeek_orchestration.storage.ids import now

if TYPE_CHECKING:
    from mixpeek_orchestration.storage.metadata import MetadataStore

GROUPS = ("namespace_id", "plugin_id", "collection_id", "provider", "model")


def month_start(at: datetime | None = None) -> datetime:
    at = at or now()
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class LLMUsage:
    def __init__(self, metadata: MetadataStore) -> None:
        self.usage = metadata.collection("llm_usage")

    def ensure_indexes(self) -> None:
        self.usage.create_index([("org_id", ASCENDING), ("at", ASCENDING)])
        self.usage.create_index([("namespace_id", ASCENDING), ("at", ASCENDING)])

    def record(
        self,
        scope: dict[str, str | None],
        *,
        op: str,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        cost_known: bool,
        latency_ms: float,
        error: str | None,
    ) -> None:
        self.usage.insert_one(
            {
                "org_id": scope["org_id"],
                "namespace_id": scope["namespace_id"],
                "plugin_id": scope.get("plugin_id"),
                "collection_id": scope.get("collection_id"),
                "op": op,
                "provider": provider,
                "model": model,
                "input_tokens": int(input_tokens),
                "output_tokens": int(output_tokens),
                "cost_usd": float(cost_usd),
                "cost_known": cost_known,
                "latency_ms": round(float(latency_ms), 2),
                "ok": error is None,
                "error": error,
                "at": now(),
            }
        )

    def spent(self, namespace_id: str, since: datetime) -> float:
        """USD a namespace's calls cost since ``since``."""
        rows = self.usage.aggregate(
            [
                {"$match": {"namespace_id": namespace_id, "at": {"$gte": since}}},
                {"$group": {"_id": None, "usd": {"$sum": "$cost_usd"}}},
            ]
        )
        return next((float(r["usd"]) for r in rows), 0.0)

    def report(
        self, org_id: str, *, since: datetime | None = None, group_by: tuple[str, ...] = GROUPS
    ) -> list[dict[str, Any]]:
        """Calls, errors, tokens, cost and latency (total, mean) by ``group_by`` (a subset of
        :data:`GROUPS`), the most expensive first."""
        match: dict[str, Any] = {"org_id": org_id}
        if since is not None:
            match["at"] = {"$gte": since}
        return self._aggregate(match, ("org_id", *group_by))

    def summary(self) -> list[dict[str, Any]]:
        """Every organisation's totals by namespace, plugin, provider and model (``/metrics``)."""
        return self._aggregate({}, ("org_id", "namespace_id", "plugin_id", "provider", "model"))

    def _aggregate(self, match: dict[str, Any], keys: tuple[str, ...]) -> list[dict[str, Any]]:
        rows = self.usage.aggregate(
            [
                {"$match": match},
                {
                    "$group": {
                        "_id": {k: f"${k}" for k in keys},
                        "calls": {"$sum": 1},
                        "errors": {"$sum": {"$cond": ["$ok", 0, 1]}},
                        "input_tokens": {"$sum": "$input_tokens"},
                        "output_tokens": {"$sum": "$output_tokens"},
                        "cost_usd": {"$sum": "$cost_usd"},
                        "latency_ms": {"$sum": "$latency_ms"},
                    }
                },
            ]
        )
        out = []
        for row in rows:
            group = row.pop("_id")
            total = row.pop("latency_ms")
            row["latency_ms_total"] = round(total, 2)
            row["latency_ms_mean"] = round(total / row["calls"], 2) if row["calls"] else 0.0
            row["cost_usd"] = round(row["cost_usd"], 8)
            out.append({**{k: group.get(k) for k in keys}, **row})
        return sorted(out, key=lambda r: -r["cost_usd"])

    def delete_namespace(self, namespace_id: str) -> int:
        return self.usage.delete_many({"namespace_id": namespace_id}).deleted_count
