"""Two tenants, two data planes, one API: routing by API key, isolation of every store.

``plane-shared`` stays on the shared plane (the stack's own database and local object store);
``plane-dedicated`` is routed by ``mixpeek admin tenant set`` to a dedicated plane: another
database on the metadata server, an S3 bucket on a real S3-compatible server (moto) and its own
vector store. Both publish the same plugin, ingest through the sensor, deploy, call realtime and
run a retriever with the same API and client; then each store is read directly to prove nothing
of one tenant reached the other's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from mixpeek_orchestration.client import PlatformClient
from mixpeek_orchestration.ingest.documents import vector_table
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.plugins.archive import build_archive
from mixpeek_orchestration.storage.metadata import MetadataStore
from plugin_assets.keys import Keys
from plugin_assets.state import read_state
from tests.integration.conftest import MotoServer, RunningStack, Tenant, create_tenant
from tests.integration.test_ingestion import SEED, Api, upload_file, wait_documents
from tests.integration.test_realtime import deploy, wait_status
from tests.integration.test_retrievers import CORPUS, URI, search_stage

pytestmark = pytest.mark.integration

PLANE_DB = "tenant_dedicated"
RECORDS = (
    "namespaces", "plugins", "plugin_versions", "buckets", "objects", "collections",
    "documents", "ingest_batches", "retrievers",
)  # fmt: skip


def admin(stack: RunningStack, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real admin CLI against the stack (as an operator runs it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXPEEK_")}
    env["MIXPEEK_DATA_DIR"] = str(stack.settings.data_dir)
    return subprocess.run(
        [sys.executable, "-m", "mixpeek_orchestration.cli.main", "admin", *args],
        capture_output=True, text=True, env=env, timeout=120, check=check,
    )  # fmt: skip


@pytest.fixture(scope="module")
def planes(
    stack: RunningStack, moto_s3: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Tenant, Tenant, str]:
    shared = create_tenant(stack, "plane-shared")
    created = admin(stack, "create-key", "--org", "plane-dedicated", "--json")
    key = json.loads(created.stdout)
    bucket = f"dedicated-{os.urandom(3).hex()}"
    boto3.client(
        "s3", endpoint_url=moto_s3.endpoint_url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    ).create_bucket(Bucket=bucket)  # fmt: skip
    endpoints = [
        f"mongo_database={PLANE_DB}", f"s3_bucket={bucket}", "s3_prefix=plane",
        f"s3_endpoint_url={moto_s3.endpoint_url}", "s3_access_key_id=test",
        "s3_secret_access_key=test",
    ]  # fmt: skip
    # a plane that cannot be used is refused and recorded nowhere
    refused = admin(
        stack, "tenant", "set", "dedicated", "--org", "plane-dedicated",
        *[f"--set={e}" for e in endpoints], "--set=mongo_uri=http://nowhere:1", check=False,
    )  # fmt: skip
    assert refused.returncode == 1 and "mongo_uri" in refused.stderr, refused.stderr
    unknown = admin(stack, "tenant", "set", "dedicated", "--org", "no-such-org",
                    *[f"--set={e}" for e in endpoints], check=False)  # fmt: skip
    assert unknown.returncode == 1 and "no-such-org" in unknown.stderr, unknown.stderr
    assert "dedicated" not in admin(stack, "tenant", "list", "--json").stdout

    admin(stack, "tenant", "set", "dedicated", "--org", "plane-dedicated",
          *[f"--set={e}" for e in endpoints])  # fmt: skip
    listed = json.loads(admin(stack, "tenant", "list", "--json").stdout)
    mine = next(t for t in listed if t["name"] == "dedicated")
    assert mine["orgs"] == [key["org_id"]]
    assert mine["plane"]["s3_secret_access_key"] == "**********"
    # the same key now lands on the dedicated plane: its namespace is created there
    client = PlatformClient(f"{stack.api_url}/v1", key["api_key"])
    namespace = client.create_namespace("main")
    client.close()
    dedicated = Tenant(
        key["org_id"], key["api_key"], namespace["namespace_id"], f"{stack.api_url}/v1"
    )
    return shared, dedicated, bucket


def provision(tenant: Tenant, tmp: Path) -> tuple[Api, dict[str, Any]]:
    """Publish the seed plugin and ingest the corpus (inline, and one uploaded file)."""
    api = Api(tenant)
    archive = tmp / "my_extractor.zip"
    build_archive(SEED, archive)
    tenant.client().publish_archive(archive, name="my_extractor", version="1.0.0")
    bucket = api.call(
        "POST", "/buckets",
        json={"bucket_name": "articles", "bucket_schema": {"properties": {"content": {"type": "text"}}}},
    )  # fmt: skip
    collection = api.call(
        "POST", "/collections",
        json={"collection_name": "articles", "source": {"type": "bucket", "bucket_ids": ["articles"]},
              "feature_extractor": {"feature_extractor_name": "my_extractor", "version": "1.0.0"}},
    )  # fmt: skip
    for topic, text in CORPUS[:-1]:
        api.call("POST", f"/buckets/{bucket['bucket_id']}/objects",
                 json={"blobs": [{"property": "content", "data": text}], "metadata": {"topic": topic}})  # fmt: skip
    topic, text = CORPUS[-1]
    upload_id = upload_file(api, bucket["bucket_id"], "last.txt", text.encode(), "text/plain")
    api.call("POST", f"/buckets/{bucket['bucket_id']}/objects",
             json={"blobs": [{"property": "content", "upload_id": upload_id}], "metadata": {"topic": topic}})  # fmt: skip
    counts = wait_documents(api, collection["collection_id"], len(CORPUS))
    assert counts == {**counts, "total": len(CORPUS), "completed": len(CORPUS)}
    return api, collection


def serve_and_search(tenant: Tenant, api: Api, collection: dict[str, Any]) -> None:
    """Deploy, call realtime, run a retriever through the deployment, then undeploy (the
    session's Ray has room for one more replica at a time)."""
    deploy(tenant, "my_extractor_1_0_0")
    assert wait_status(tenant, "my_extractor_1_0_0", {"DEPLOYED", "FAILED"})["status"] == (
        "DEPLOYED"
    )
    embedding = api.call(
        "POST",
        f"/namespaces/{tenant.namespace_id}/plugins/my_extractor_1_0_0/realtime",
        json={"inputs": {"text": "orbit around Mars"}},
    )
    assert len(embedding["embedding"]) == 384
    retriever = api.call(
        "POST", "/retrievers",
        json={"retriever_name": "search", "collection_identifiers": [collection["collection_id"]],
              "stages": [search_stage()]},
    )  # fmt: skip
    found = api.call(
        "POST", f"/retrievers/{retriever['retriever_id']}/execute",
        json={"inputs": {"q": "a spacecraft orbiting Mars"}},
    )  # fmt: skip
    assert found["documents"][0]["metadata"]["topic"] == "space"
    api.call("POST", f"/namespaces/{tenant.namespace_id}/plugins/my_extractor_1_0_0/undeploy")


def test_two_tenants_on_two_data_planes_share_nothing(
    stack: RunningStack,
    planes: tuple[Tenant, Tenant, str],
    moto_s3: MotoServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    shared, dedicated, s3_bucket = planes
    work = []
    for name, tenant in (("shared", shared), ("dedicated", dedicated)):
        api, collection = provision(tenant, tmp_path_factory.mktemp(name))
        serve_and_search(tenant, api, collection)  # same API and calls, each on its own plane
        work.append((tenant, api, collection))

    control = stack.platform()
    plane = MetadataStore(stack.settings.mongo_uri or "", PLANE_DB)
    # records: each organisation's live only in its own database
    for name in RECORDS:
        assert control.metadata.collection(name).count_documents({"org_id": dedicated.org_id}) == 0
        assert plane.collection(name).count_documents({"org_id": shared.org_id}) == 0
    for name in ("namespaces", "plugin_versions", "objects", "collections", "documents"):
        assert plane.collection(name).count_documents({"org_id": dedicated.org_id}) > 0, name
        assert control.metadata.collection(name).count_documents({"org_id": shared.org_id}) > 0
    # objects: the dedicated plugin archive and upload are in its S3 bucket, nothing local
    keys = [
        item["Key"]
        for item in boto3.client(
            "s3", endpoint_url=moto_s3.endpoint_url, region_name="us-east-1",
            aws_access_key_id="test", aws_secret_access_key="test",
        ).list_objects_v2(Bucket=s3_bucket).get("Contents", [])
    ]  # fmt: skip
    assert any(k.startswith(f"plane/{dedicated.org_id}/") and "plugin_custom" in k for k in keys)
    assert any(k.startswith(f"plane/{dedicated.org_id}/") and "/uploads/" in k for k in keys)
    assert not any(shared.org_id in k for k in keys)
    assert not list(control.objects.list(f"{dedicated.org_id}/"))
    assert list(control.objects.list(f"{shared.org_id}/"))
    # vectors: each namespace's table in its own plane's store only
    dedicated_plane = control.planes.get("dedicated")
    table = vector_table(dedicated.namespace_id, URI)
    assert dedicated_plane.vectors.has_table(table) and not control.vectors.has_table(table)
    shared_table = vector_table(shared.namespace_id, URI)
    assert control.vectors.has_table(shared_table)
    assert not dedicated_plane.vectors.has_table(shared_table)

    # one organisation's ids answer 404 to the other's key, whichever the plane
    (_, shared_api, shared_collection), (_, dedicated_api, dedicated_collection) = work
    shared_api.call("GET", f"/collections/{dedicated_collection['collection_id']}", expect=404)
    dedicated_api.call("GET", f"/collections/{shared_collection['collection_id']}", expect=404)
    for caller, other in ((shared, dedicated), (dedicated, shared)):
        response = httpx.get(
            f"{caller.base_url}/namespaces/{other.namespace_id}", headers=caller.headers, timeout=30
        )
        assert response.status_code == 404, response.text

    # Dagster: each collection is an asset under its organisation, tagged with its plane
    keys = Keys(read_state(control))
    for collection, org, plane_label in (
        (shared_collection, "plane_shared", "shared"),
        (dedicated_collection, "plane_dedicated", "dedicated"),
    ):
        key = keys.collection(collection["collection_id"]).to_user_string()
        assert key.startswith(f"{org}/") and key.endswith("/collections/articles")
        node = control.dagster.asset_node(key)
        assert node is not None and node["partitions"], key
        deadline = time.monotonic() + 60  # each batch recorded, by its run or by the sensor
        while not set(node["partitions"]) <= set(control.dagster.materialized_partitions(key)):
            assert time.monotonic() < deadline, key
            time.sleep(1)
        ingested = _runs(stack, {"mixpeek/collection_id": collection["collection_id"]}, wait_s=0)
        assert all(r["tags"]["mixpeek/plane"] == plane_label for r in ingested)
    # the dedicated plane's runs carry its plane and queue tags
    runs = _runs(stack, {"mixpeek/plane": "dedicated"})
    queues = {run["tags"].get("mixpeek/queue") for run in runs}
    assert {"dedicated-plugins", "dedicated-deploy"} <= queues
    # /metrics: the dedicated plane's ingestion is there, labelled by its organisation
    metrics = httpx.get(f"{stack.api_url}/metrics", timeout=30).text
    assert f'mixpeek_ingest_rows_total{{outcome="ok",tenant="{dedicated.org_id}"}}' in metrics


def _runs(stack: RunningStack, tags: dict[str, str], *, wait_s: float = 30) -> list[dict[str, Any]]:
    query = """query Runs($filter: RunsFilter) { runsOrError(filter: $filter) {
        ... on Runs { results { runId status tags { key value } } } } }"""
    deadline = time.monotonic() + wait_s
    while True:
        answer = httpx.post(
            f"{stack.settings.dagster_ui_url}/graphql",
            json={"query": query, "variables": {"filter": {"tags": [
                {"key": k, "value": v} for k, v in tags.items()]}}},
            timeout=30,
        ).json()  # fmt: skip
        results = answer["data"]["runsOrError"]["results"]
        if results or time.monotonic() > deadline:
            return [
                {"run_id": r["runId"], "tags": {t["key"]: t["value"] for t in r["tags"]}}
                for r in results
            ]
        time.sleep(1)


def test_a_tenant_in_use_cannot_be_removed(
    stack: RunningStack, planes: tuple[Tenant, Tenant, str]
) -> None:
    refused = admin(stack, "tenant", "remove", "dedicated", check=False)
    assert refused.returncode == 1 and "still serves 1 organisation" in refused.stderr
    assert isinstance(stack.platform().planes.get("dedicated"), Platform)
