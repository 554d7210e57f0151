"""Step plans: what a plugin version's ``build_steps`` makes of a collection's parameters.

Asking the plugin means opening it in a worker, so the answer is remembered: a version's archive
never changes, and neither do its steps for given parameters. The key is
:func:`plan_key` (archive sha256, parameters, collection).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from mixpeek_orchestration.storage.metadata import MetadataStore


class StepPlan(TypedDict):
    """One step as a run schedules it."""

    name: str
    resource_type: str  # cpu | gpu | api
    batch_size: int
    concurrency: int
    num_gpus: float | None


def plan_key(sha256: str, parameters: dict[str, Any], collection_id: str) -> str:
    """What a plugin's steps depend on: its archive, the parameters, the collection."""
    return hashlib.sha256(
        json.dumps([sha256, parameters, collection_id], sort_keys=True).encode()
    ).hexdigest()


class StepPlans:
    """``step_plans``: remembered step plans, by :func:`plan_key`."""

    def __init__(self, metadata: MetadataStore) -> None:
        self.plans = metadata.collection("step_plans")

    def ensure_indexes(self) -> None:
        # plans go with their version's namespace (the _id is the plan key)
        self.plans.create_index([("namespace_id", 1), ("plugin_id", 1)])

    def get(self, key: str) -> list[StepPlan] | None:
        doc = self.plans.find_one({"_id": key})
        return None if doc is None else doc["steps"]

    def put(self, key: str, steps: list[StepPlan], *, namespace_id: str, plugin_id: str) -> None:
        self.plans.update_one(
            {"_id": key},
            {"$set": {"steps": steps, "namespace_id": namespace_id, "plugin_id": plugin_id}},
            upsert=True,
        )

    def delete_namespace(self, namespace_id: str) -> int:
        return self.plans.delete_many({"namespace_id": namespace_id}).deleted_count
