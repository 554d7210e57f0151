"""The Dagster UI shows the platform's data as it is: on the session stack, two namespaces each
with a bucket, a plugin and a collection appear as assets (without restarting anything), with
edges bucket -> collection <- plugin version, partitions that are the collection's own batches,
checks per collection, and a backfill launched through GraphQL that re-processes a collection
with the same documents."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mixpeek_orchestration.plugins.archive import build_archive
from plugin_assets.keys import Keys
from plugin_assets.state import read_state
from tests.integration.conftest import RunningStack, Tenant, create_tenant
from tests.integration.test_ingestion import Api, all_documents, wait_documents

pytestmark = pytest.mark.integration

NULL_PLUGIN = Path(__file__).resolve().parents[2] / "bench" / "plugins" / "null_embedder"
CHECKS = {"vector_dimensions", "finite_values", "documents_match_blobs", "fresh"}


def _namespace(stack: RunningStack, tmp_path: Path, name: str, objects: int) -> dict[str, Any]:
    """A namespace of the org ``initech`` with a bucket, the null plugin and a collection."""
    tenant: Tenant = create_tenant(stack, "initech", name)
    archive = tmp_path / f"{name}.zip"
    build_archive(NULL_PLUGIN, archive)
    version = tenant.client().publish_archive(archive, name="null_embedder", version="1.0.0")
    api = Api(tenant)
    bucket = api.call(
        "POST",
        "/buckets",
        json={"bucket_name": f"{name}-texts", "bucket_schema": {"properties": {"content": {"type": "text"}}}},
    )  # fmt: skip
    collection = api.call(
        "POST",
        "/collections",
        json={
            "collection_name": f"{name}-articles",
            "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
            "feature_extractor": {"feature_extractor_name": "null_embedder", "version": "1.0.0"},
        },
    )
    created = time.monotonic()
    for i in range(objects):
        api.call(
            "POST",
            f"/buckets/{bucket['bucket_id']}/objects",
            json={"blobs": [{"property": "content", "type": "text", "data": f"{name} {i}"}]},
        )
    return {
        "tenant": tenant,
        "api": api,
        "bucket": bucket,
        "collection": collection,
        "version": version,
        "created": created,
        "objects": objects,
    }


def _keys(stack: RunningStack, space: dict[str, Any]) -> tuple[str, str, str]:
    keys = Keys(read_state(stack.platform()))
    return (
        keys.bucket(space["bucket"]["bucket_id"]).to_user_string(),
        keys.plugin(space["tenant"].namespace_id, "null_embedder").to_user_string(),
        keys.collection(space["collection"]["collection_id"]).to_user_string(),
    )


def test_collections_appear_with_their_lineage_and_a_backfill_reprocesses_one(
    stack: RunningStack, tmp_path: Path
) -> None:
    dagster = stack.platform().dagster
    north = _namespace(stack, tmp_path, "north", 24)
    south = _namespace(stack, tmp_path, "south", 6)

    for space in (north, south):
        bucket_key, plugin_key, collection_key = _keys(stack, space)
        assert collection_key.startswith("initech/")
        deadline = time.monotonic() + 90
        while (node := dagster.asset_node(collection_key)) is None:
            assert time.monotonic() < deadline, f"{collection_key} never appeared in Dagster"
            time.sleep(1)
        seen_after = time.monotonic() - space["created"]
        assert seen_after < 60, f"{collection_key} took {seen_after:.0f} s to appear"
        assert set(node["upstream"]) == {bucket_key, plugin_key}
        assert set(node["checks"]) == CHECKS
        assert node["group"] == "__".join(collection_key.split("/")[:2])
        assert dagster.asset_node(bucket_key) is not None
        plugin = dagster.asset_node(plugin_key)
        assert plugin is not None and plugin["partitions"] == ["1.0.0"]
        assert collection_key in plugin["downstream"]

        counts = wait_documents(
            space["api"], space["collection"]["collection_id"], space["objects"]
        )
        assert counts["completed"] == space["objects"]
        # the sensor observed the bucket's objects; every check of the last run passed
        deadline = time.monotonic() + 30
        while dagster.asset_node(bucket_key)["observed"].get("objects") != space["objects"]:  # type: ignore[index]
            assert time.monotonic() < deadline, dagster.asset_node(bucket_key)
            time.sleep(1)
        deadline = time.monotonic() + 60  # the run that collects the last batch may still run
        while (checks := dagster.asset_node(collection_key)["checks"]) != dict.fromkeys(  # type: ignore[index]
            CHECKS, "SUCCEEDED"
        ):
            assert time.monotonic() < deadline, checks
            time.sleep(1)

    # each collection's partitions are its own batches
    collection_id = north["collection"]["collection_id"]
    _, _, north_key = _keys(stack, north)
    partitions = dagster.asset_node(north_key)["partitions"]  # type: ignore[index]
    assert partitions and all(p.startswith(f"ib_{collection_id}_") for p in partitions)
    south_key = _keys(stack, south)[2]
    south_partitions = dagster.asset_node(south_key)["partitions"]  # type: ignore[index]
    assert not set(partitions) & set(south_partitions)

    # "Materialize all" on the north collection re-processes it: same documents, no duplicates
    api = north["api"]
    before = {d["document_id"]: d["updated_at"] for d in all_documents(api, collection_id)}
    backfill = dagster.backfill(north_key)
    deadline = time.monotonic() + 240
    while (status := dagster.backfill_status(backfill)) not in ("COMPLETED_SUCCESS", "COMPLETED"):
        assert status not in ("FAILED", "COMPLETED_FAILED", "CANCELED"), status
        assert time.monotonic() < deadline, f"backfill {backfill} still {status}"
        time.sleep(2)
    after = all_documents(api, collection_id)
    assert {d["document_id"] for d in after} == set(before)
    assert all(d["updated_at"] != before[d["document_id"]] for d in after)
    counts = api.call("GET", f"/collections/{collection_id}/documents/count")
    assert counts["total"] == counts["completed"] == north["objects"]
    materialized = dagster.materialized_partitions(north_key)
    assert set(partitions) <= set(materialized)
