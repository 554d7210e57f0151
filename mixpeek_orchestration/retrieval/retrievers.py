"""Retrievers (SPEC §8): named, ordered stage lists over one or more collections.

A retriever is checked when it is saved: every stage type is known, and every ``feature_uri`` a
search names belongs to one of its collections, so a typo is a 422 at creation, not an empty
result at query time.
"""

from __future__ import annotations

import builtins
import re
from typing import Any, cast

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.ingest.collections import Collections
from mixpeek_orchestration.retrieval.executions import Executions
from mixpeek_orchestration.retrieval.stages import validate_stage
from mixpeek_orchestration.storage.ids import new_id, now
from mixpeek_orchestration.storage.metadata import MetadataStore
from mixpeek_orchestration.storage.scope import scope
from mixpeek_orchestration.tenancy.accounts import Namespace

RETRIEVER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def _invalid(message: str, field: str) -> MixpeekError:
    return MixpeekError(ErrorCode.INVALID_REQUEST, message, field=field)


def check_stages(stages: Any, feature_uris: set[str]) -> list[dict[str, Any]]:
    """The stages, each ``{stage_name, config: {stage_id, parameters}}``, checked against the
    stage registry (:data:`~mixpeek_orchestration.retrieval.stages.STAGES`)."""
    if not isinstance(stages, list) or not stages:
        raise _invalid("stages must be a non-empty list", "stages")
    for index, stage in enumerate(stages):
        where = f"stages[{index}]"
        config = stage.get("config") if isinstance(stage, dict) else None
        if not isinstance(config, dict):
            raise _invalid(
                f"{where} must be {{stage_name, config: {{stage_id, parameters}}}}", where
            )
        parameters = config.get("parameters") or {}
        validate_stage(config.get("stage_id"), parameters, feature_uris=feature_uris, where=where)
        stage.setdefault("stage_name", f"{config['stage_id']}_{index}")
        config["parameters"] = parameters
    return stages


class Retrievers:
    def __init__(self, metadata: MetadataStore, collections: Collections) -> None:
        self.retrievers = metadata.collection("retrievers")
        self.collections = collections
        self.history = Executions(metadata)

    def ensure_indexes(self) -> None:
        self.retrievers.create_index("retriever_id", unique=True)
        self.retrievers.create_index(
            [("org_id", 1), ("namespace_id", 1), ("retriever_name", 1)], unique=True
        )
        self.history.ensure_indexes()

    def _resolve(self, namespace: Namespace, identifiers: Any) -> list[dict[str, Any]]:
        if not isinstance(identifiers, list) or not identifiers:
            raise _invalid(
                "collection_identifiers must name at least one collection", "collection_identifiers"
            )
        return [self.collections.get(namespace, c) for c in identifiers]

    def create(
        self,
        namespace: Namespace,
        *,
        retriever_name: str,
        collection_identifiers: list[str],
        stages: list[dict[str, Any]],
        description: str = "",
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not RETRIEVER_NAME.fullmatch(retriever_name or ""):
            raise _invalid(
                f"retriever_name {retriever_name!r} must be 1-63 letters, digits, '_', '.' or '-'",
                "retriever_name",
            )
        collections = self._resolve(namespace, collection_identifiers)
        uris = {u for c in collections for u in c["feature_uris"]}
        doc = {
            **scope(namespace),
            "retriever_id": new_id("ret"),
            "retriever_name": retriever_name,
            "description": description,
            "metadata": metadata or {},
            "collection_ids": [c["collection_id"] for c in collections],
            "stages": check_stages(stages, uris),
            "created_at": now(),
            "updated_at": now(),
        }
        try:
            self.retrievers.insert_one(doc)
        except DuplicateKeyError:
            raise MixpeekError(
                ErrorCode.CONFLICT,
                f"retriever {retriever_name!r} already exists",
                field="retriever_name",
            ) from None
        doc.pop("_id", None)
        return doc

    def get(self, namespace: Namespace, retriever: str) -> dict[str, Any]:
        doc = self.retrievers.find_one(
            {
                **scope(namespace),
                "$or": [{"retriever_id": retriever}, {"retriever_name": retriever}],
            },
            {"_id": 0},
        )
        if doc is None:
            raise MixpeekError(
                ErrorCode.NOT_FOUND, f"retriever {retriever!r} not found", field="retriever_id"
            )
        return doc

    def list(self, namespace: Namespace) -> list[dict[str, Any]]:
        return list(
            self.retrievers.find(scope(namespace), {"_id": 0}).sort("created_at", ASCENDING)
        )

    def update(
        self, namespace: Namespace, retriever: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        doc = self.get(namespace, retriever)
        update: dict[str, Any] = {"updated_at": now()}
        identifiers = changes.get("collection_identifiers")
        collections = (
            self._resolve(namespace, identifiers)
            if identifiers is not None
            else [self.collections.get(namespace, c) for c in doc["collection_ids"]]
        )
        if identifiers is not None:
            update["collection_ids"] = [c["collection_id"] for c in collections]
        if "stages" in changes or identifiers is not None:
            uris = {u for c in collections for u in c["feature_uris"]}
            update["stages"] = check_stages(changes.get("stages", doc["stages"]), uris)
        for key in ("description", "metadata"):
            if key in changes:
                update[key] = changes[key]
        name = changes.get("retriever_name")
        if name is not None and name != doc["retriever_name"]:
            if not RETRIEVER_NAME.fullmatch(name):
                raise _invalid(
                    f"retriever_name {name!r} must be 1-63 letters, digits, '_', '.' or '-'",
                    "retriever_name",
                )
            update["retriever_name"] = name
        try:
            self.retrievers.update_one({"retriever_id": doc["retriever_id"]}, {"$set": update})
        except DuplicateKeyError:
            raise MixpeekError(
                ErrorCode.CONFLICT, f"retriever {name!r} already exists", field="retriever_name"
            ) from None
        return doc | update

    def adhoc(
        self,
        namespace: Namespace,
        *,
        stages: builtins.list[dict[str, Any]],
        collection_identifiers: builtins.list[str] | None = None,
    ) -> dict[str, Any]:
        """A retriever checked as ``create`` checks one and never stored (the hosted ad-hoc
        execute); without ``collection_identifiers``, over every collection of the namespace."""
        if collection_identifiers is None:
            collections = cast(builtins.list[dict[str, Any]], self.collections.list(namespace))
        else:
            collections = self._resolve(namespace, collection_identifiers)
        uris = {u for c in collections for u in c["feature_uris"]}
        return {
            "retriever_id": None,
            "retriever_name": "adhoc",
            "collection_ids": [c["collection_id"] for c in collections],
            "stages": check_stages(stages, uris),
        }

    def delete(self, namespace: Namespace, retriever: str) -> dict[str, Any]:
        doc = self.get(namespace, retriever)
        self.retrievers.delete_one({"retriever_id": doc["retriever_id"]})
        self.history.delete_of(namespace, doc["retriever_id"])
        return {"retriever_id": doc["retriever_id"], "deleted": True}

    def delete_namespace(self, namespace: Namespace) -> int:
        """The namespace's retrievers (counted) and their execution history."""
        self.history.delete_namespace(namespace)
        return self.retrievers.delete_many(scope(namespace)).deleted_count
