"""Ingestion on a two-node cluster: a head with the stack, and a worker node that offers the
``batch`` resource and cannot see the data dir (``tests/multinode.py``). Batch actors must land
on the worker; the plugin reaches it by presigned URL, results reach the stores through the
ingestion service, and every object ends with exactly one completed document."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mixpeek_orchestration.compute.resources import BATCH_RESOURCE, WARM_NAMESPACE
from mixpeek_orchestration.plugins.archive import build_archive
from tests.integration.conftest import RunningStack, create_tenant, start_stack
from tests.integration.test_ingestion import Api, all_documents, wait_documents
from tests.multinode import WorkerNode, start_worker_node

pytestmark = pytest.mark.integration

NULL_PLUGIN = Path(__file__).resolve().parents[2] / "bench" / "plugins" / "null_embedder"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningStack, WorkerNode]]:
    running = start_stack(tmp_path_factory.mktemp("stack-multinode"))
    env = {**os.environ, **running.state.env, "RAY_AUTH_MODE": "disabled"}
    node = start_worker_node(
        running.settings.ray_address or "", data_dir=running.settings.data_dir, env=env
    )
    try:
        yield running, node
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        node.stop()
        running.stack.down()


def _worker_node_id(address: str) -> str:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, namespace="multinode-test", log_to_driver=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for node in ray.nodes():
            if node["Alive"] and node["Resources"].get(BATCH_RESOURCE):
                return str(node["NodeID"])
        time.sleep(1)
    raise AssertionError("the worker node never registered with the head")


def test_the_worker_node_cannot_see_the_data_dir(cluster: Any) -> None:
    import ray

    running, _ = cluster
    node_id = _worker_node_id(running.settings.ray_address)
    data_dir = str(running.settings.data_dir)

    @ray.remote(num_cpus=0, resources={BATCH_RESOURCE: 1})
    def look(path: str) -> tuple[str, list[str]]:
        return ray.get_runtime_context().get_node_id(), os.listdir(path)

    where, seen = ray.get(look.remote(data_dir), timeout=120)
    assert where == node_id
    assert seen == []  # an empty directory stands there on the worker
    assert os.listdir(data_dir)  # the head sees the stack's files


def test_ingestion_runs_its_batch_actors_on_the_worker_node(cluster: Any, tmp_path: Path) -> None:
    from ray.util.state import list_actors

    running, _ = cluster
    node_id = _worker_node_id(running.settings.ray_address)
    tenant = create_tenant(running, "multinode")
    api = Api(tenant)
    archive = tmp_path / "null_embedder.zip"
    build_archive(NULL_PLUGIN, archive)
    tenant.client().publish_archive(archive, name="null_embedder", version="1.0.0")
    bucket = api.call(
        "POST",
        "/buckets",
        json={
            "bucket_name": "texts",
            "bucket_schema": {"properties": {"content": {"type": "text"}}},
        },
    )
    collection = api.call(
        "POST",
        "/collections",
        json={
            "collection_name": "texts",
            "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
            "feature_extractor": {"feature_extractor_name": "null_embedder", "version": "1.0.0"},
        },
    )
    objects = [
        api.call(
            "POST",
            f"/buckets/{bucket['bucket_id']}/objects",
            json={"blobs": [{"property": "content", "type": "text", "data": f"text number {i}"}]},
        )
        for i in range(40)
    ]
    counts = wait_documents(api, collection["collection_id"], len(objects))
    assert counts["total"] == counts["completed"] == len(objects)
    stages = [
        a
        for a in list_actors(
            address=running.state.env["MIXPEEK_RAY_DASHBOARD_URL"],
            filters=[("ray_namespace", "=", WARM_NAMESPACE)],
            limit=100,
        )
        if a.state == "ALIVE"
    ]
    assert stages and all(a.node_id == node_id for a in stages)
    documents = all_documents(api, collection["collection_id"])
    assert sorted(d["source_object_id"] for d in documents) == sorted(
        o["object_id"] for o in objects
    )
    assert all(d["feature_refs"] for d in documents)
