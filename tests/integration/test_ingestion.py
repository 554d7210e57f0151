"""Collections and ingestion end to end: buckets, objects, the sensor, Ray Data, documents, lineage.

Nobody launches a run by hand here: objects are created through the API (or land as files under
a bucket's prefix) and the ``bucket_objects_sensor`` in the stack's Dagster daemon does the rest.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mixpeek_orchestration.ingest.buckets import landing_prefix
from mixpeek_orchestration.ingest.documents import vector_table
from mixpeek_orchestration.plugins.archive import build_archive
from plugin_assets.keys import Keys
from plugin_assets.state import read_state
from tests.integration.conftest import RunningStack, Tenant

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "my_extractor"


class Api:
    """The tenant's calls with ``X-Namespace``, failing loudly on unexpected statuses."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.http = httpx.Client(
            base_url=tenant.base_url,
            headers=tenant.headers | {"X-Namespace": tenant.namespace_id},
            timeout=60,
        )

    def call(self, method: str, path: str, expect: int = 200, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == expect, (
            f"{method} {path}: {response.status_code} {response.text}"
        )
        return response.json()


def publish_variant(tenant: Tenant, tmp_path: Path, name: str, processor_patch: str = "") -> str:
    """The seed plugin under another name, optionally with code run first in ``__call__``."""
    root = tmp_path / name
    shutil.copytree(SEED, root)
    manifest = root / "manifest.py"
    manifest.write_text(manifest.read_text().replace("my_extractor", name))
    core = root / "processors" / "core.py"
    text = core.read_text().replace('"my_extractor_embedding"', f'"{name}_embedding"')
    if processor_patch:
        text = text.replace(
            "        self._load_model()\n", f"        self._load_model()\n{processor_patch}", 1
        )
    core.write_text(text)
    archive = tmp_path / f"{name}.zip"
    build_archive(root, archive)
    return tenant.client().publish_archive(archive, name=name, version="1.0.0")["plugin_id"]


def vector_count(stack: RunningStack, collection: dict[str, Any]) -> int:
    """Vectors of a collection's first feature (a fresh read: table handles are snapshots)."""
    table = vector_table(collection["namespace_id"], collection["feature_uris"][0])
    return stack.platform().vectors.count(
        table, filters={"collection_id": collection["collection_id"]}
    )


def png_bytes(seed: int) -> bytes:
    from PIL import Image

    image = Image.new("RGB", (64, 64), ((seed * 40) % 256, (seed * 90) % 256, (seed * 10) % 256))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def pdf_bytes() -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj 2 0 obj<</Type/Pages/Kids[]/Count 0>>"
        b"endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
    )


def upload_file(api: Api, bucket_id: str, name: str, data: bytes, content_type: str) -> str:
    ticket = api.call(
        "POST",
        f"/buckets/{bucket_id}/uploads",
        json={"filename": name, "content_type": content_type},
    )
    put = httpx.put(ticket["upload_url"], content=data, headers=ticket["headers"], timeout=30)
    assert put.status_code in (200, 201), put.text
    return ticket["upload_id"]


def wait_documents(
    api: Api,
    collection_id: str,
    expected: int,
    *,
    timeout: float = 240,
    settled: set[str] | None = None,
) -> dict[str, int]:
    """Wait until the collection holds ``expected`` documents, all finished."""
    deadline = time.monotonic() + timeout
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        counts = api.call("GET", f"/collections/{collection_id}/documents/count")
        if (
            counts["total"] >= expected
            and counts["completed"] + counts["failed"] == counts["total"]
        ):
            return counts
        time.sleep(2)
    raise AssertionError(
        f"collection {collection_id} holds {counts} after {timeout}s, expected {expected}"
    )


def wait_batch_finished(platform: Any, batch_id: str, timeout: float = 120) -> dict[str, Any]:
    """The batch once it has left the queue (its run records it after its last write)."""
    deadline = time.monotonic() + timeout
    while (batch := platform.planner.get(batch_id))["status"] in ("planned", "running"):
        assert time.monotonic() < deadline, f"batch {batch_id} still {batch['status']}"
        time.sleep(1)
    return batch  # type: ignore[no-any-return]


def all_documents(api: Api, collection_id: str) -> list[dict[str, Any]]:
    out, cursor = [], None
    while True:
        page = api.call(
            "POST",
            f"/collections/{collection_id}/documents/list",
            json={"limit": 100, "cursor": cursor},
        )
        out += page["results"]
        cursor = page["pagination"]["next_cursor"]
        if not cursor:
            return out


@pytest.fixture(scope="module")
def api(tenant: Tenant) -> Api:
    return Api(tenant)


@pytest.fixture(scope="module")
def text_plugin(tenant: Tenant, tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("seed")
    archive = root / "my_extractor.zip"
    build_archive(SEED, archive)
    return tenant.client().publish_archive(archive, name="my_extractor", version="1.0.0")[
        "plugin_id"
    ]


@pytest.fixture(scope="module")
def image_plugin(tenant: Tenant) -> str:
    response = httpx.post(
        f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins/builtins/image_extractor",
        headers=tenant.headers,
        timeout=120,
    )
    assert response.status_code == 200, response.text
    return response.json()["plugin_id"]


def test_bad_collections_are_refused_and_leave_nothing(api: Api, text_plugin: str) -> None:
    bucket = api.call(
        "POST",
        "/buckets",
        json={
            "bucket_name": "refusals",
            "bucket_schema": {"properties": {"content": {"type": "text"}}},
        },
    )
    before = api.call("POST", "/collections/list")["total"]
    extractor = {"feature_extractor_name": "my_extractor", "version": "1.0.0"}
    source = {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]}
    out_of_range = api.call(
        "POST", "/collections", expect=422,
        json={"collection_name": "bad", "source": source, "feature_extractor": extractor | {"parameters": {"threshold": 5}}},
    )  # fmt: skip
    assert "threshold" in out_of_range["detail"]
    wrong_type = api.call(
        "POST", "/collections", expect=422,
        json={"collection_name": "bad", "source": source, "feature_extractor": extractor | {"parameters": {"threshold": "high"}}},
    )  # fmt: skip
    assert "threshold" in wrong_type["detail"]
    unknown = api.call(
        "POST", "/collections", expect=404,
        json={"collection_name": "bad", "source": source, "feature_extractor": {"feature_extractor_name": "nope", "version": "1.0.0"}},
    )  # fmt: skip
    assert "nope" in unknown["detail"]
    missing_version = api.call(
        "POST", "/collections", expect=404,
        json={"collection_name": "bad", "source": source, "feature_extractor": extractor | {"version": "9.9.9"}},
    )  # fmt: skip
    assert "9.9.9" in missing_version["detail"]
    no_bucket = api.call(
        "POST", "/collections", expect=404,
        json={"collection_name": "bad", "source": {"type": "bucket", "bucket_ids": ["bkt_missing"]}, "feature_extractor": extractor},
    )  # fmt: skip
    assert "bkt_missing" in no_bucket["detail"]
    assert api.call("POST", "/collections/list")["total"] == before
    # objects: a blob under a property the schema lacks is refused, nothing stored
    bad_object = api.call(
        "POST", f"/buckets/{bucket['bucket_id']}/objects", expect=422,
        json={"blobs": [{"property": "content", "data": "ok"}, {"property": "photo", "data": "x"}]},
    )  # fmt: skip
    assert "photo" in bad_object["detail"]
    assert api.call("POST", f"/buckets/{bucket['bucket_id']}/objects/list")["total"] == 0
    bad_schema = api.call(
        "POST", "/buckets", expect=422,
        json={"bucket_name": "odd", "bucket_schema": {"properties": {"x": {"type": "hologram"}}}},
    )  # fmt: skip
    assert "hologram" in bad_schema["detail"]


def test_mixed_objects_flow_into_two_collections_without_a_manual_run(
    api: Api, stack: RunningStack, tenant: Tenant, text_plugin: str, image_plugin: str
) -> None:
    schema = {
        "properties": {
            "content": {"type": "text"},
            "photo": {"type": "image"},
            "scan": {"type": "pdf"},
        }
    }
    bucket = api.call("POST", "/buckets", json={"bucket_name": "mixed", "bucket_schema": schema})
    bucket_id = bucket["bucket_id"]
    source = {"type": "bucket", "bucket_ids": [bucket_id]}
    texts = api.call(
        "POST", "/collections",
        json={"collection_name": "texts", "source": source,
              "feature_extractor": {"feature_extractor_name": "my_extractor", "version": "1.0.0", "parameters": {"threshold": 0.1}}},
    )  # fmt: skip
    images = api.call(
        "POST", "/collections",
        json={"collection_name": "images", "source": source,
              "feature_extractor": {"feature_extractor_name": "image_extractor"}},
    )  # fmt: skip
    assert (
        api.call("GET", f"/collections/{texts['collection_id']}/features")["features"][0][
            "feature_uri"
        ]
        == "mixpeek://my_extractor@1.0.0/my_extractor_embedding"
    )

    # 200 objects: 150 inline texts, 30 uploaded images (10 of them with a caption too),
    # 10 PDFs, 10 texts dropped as files under the bucket's storage prefix
    for i in range(150):
        api.call("POST", f"/buckets/{bucket_id}/objects",
                 json={"blobs": [{"property": "content", "type": "text", "data": f"note {i} about topic {i % 7}"}],
                       "metadata": {"i": i}})  # fmt: skip
    for i in range(30):
        upload_id = upload_file(api, bucket_id, f"photo-{i}.png", png_bytes(i), "image/png")
        blobs = [{"property": "photo", "type": "image", "upload_id": upload_id}]
        if i < 10:
            blobs.append({"property": "content", "type": "text", "data": f"caption of photo {i}"})
        api.call("POST", f"/buckets/{bucket_id}/objects", json={"blobs": blobs})
    for i in range(10):
        upload_id = upload_file(api, bucket_id, f"scan-{i}.pdf", pdf_bytes(), "application/pdf")
        api.call(
            "POST",
            f"/buckets/{bucket_id}/objects",
            json={"blobs": [{"property": "scan", "upload_id": upload_id}]},
        )
    platform = stack.platform()
    prefix = landing_prefix(bucket, bucket_id)
    for i in range(10):
        platform.objects.put_bytes(f"{prefix}drop/{i}.txt", f"dropped file number {i}".encode())

    text_counts = wait_documents(api, texts["collection_id"], 150 + 10 + 10)
    image_counts = wait_documents(api, images["collection_id"], 30)
    assert text_counts == {**text_counts, "total": 170, "completed": 170, "failed": 0}
    assert image_counts == {**image_counts, "total": 30, "completed": 30, "failed": 0}
    assert api.call("POST", f"/buckets/{bucket_id}/objects/list", json={"limit": 1})["total"] == 200

    # exactly one document per matching blob, vectors of the declared dims
    docs = all_documents(api, texts["collection_id"])
    assert len({(d["source_object_id"], d["source_blobs"][0]["blob_id"]) for d in docs}) == 170
    assert {d["source_blobs"][0]["type"] for d in docs} == {"text"}
    table = platform.vectors.db.open_table(
        vector_table(tenant.namespace_id, texts["feature_uris"][0])
    )
    assert vector_count(stack, texts) == 170
    assert table.schema.field("vector").type.list_size == 384
    image_table = platform.vectors.db.open_table(
        vector_table(tenant.namespace_id, images["feature_uris"][0])
    )
    assert vector_count(stack, images) == 30
    assert image_table.schema.field("vector").type.list_size == 1280

    # lineage: document -> object, feature URIs, plugin version, the Dagster run
    doc = next(d for d in docs if d["metadata"].get("i") == 3)
    lineage_path = f"/collections/{texts['collection_id']}/documents/{doc['document_id']}/lineage"
    lineage = api.call("GET", lineage_path)
    assert lineage["object"]["metadata"] == {"i": 3}
    assert lineage["plugin"]["plugin_id"] == text_plugin
    assert lineage["feature_uris"] == texts["feature_uris"]
    written_by = platform.planner.get(lineage["ingestion"]["dagster_partition"])
    assert written_by is not None and doc["document_id"]
    # the run that wrote it, or none: a small batch is processed ahead of any run
    assert lineage["ingestion"]["dagster_run_id"] == written_by["run_id"]
    assert written_by["run_id"] or written_by["ahead"]
    by_object = api.call("GET", f"/buckets/{bucket_id}/objects/{doc['source_object_id']}/lineage")
    assert [d["document_id"] for d in by_object["documents"]] == [doc["document_id"]]
    assert doc["outputs"]["label"] in ("positive", "negative")

    # the collection's asset in Dagster has each of its batches materialized, by its run or
    # recorded by the sensor at its next tick
    key = Keys(read_state(platform)).collection(texts["collection_id"]).to_user_string()
    batches = {b["batch_id"] for b in platform.planner.of_collection(texts["collection_id"])}
    deadline = time.monotonic() + 60
    while not batches <= set(partitions := platform.dagster.materialized_partitions(key)):
        assert time.monotonic() < deadline, (batches, partitions)
        time.sleep(1)
    assert all(p.startswith(f"ib_{texts['collection_id']}_") for p in partitions)

    # trigger re-processes without duplicating anything
    before = {d["document_id"]: d["updated_at"] for d in docs}
    queued = api.call("POST", f"/collections/{texts['collection_id']}/trigger", expect=202)
    assert queued["status"] == "queued" and queued["objects"] == 200
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        again = all_documents(api, texts["collection_id"])
        if all(d["updated_at"] != before[d["document_id"]] for d in again):
            break
        time.sleep(3)
    assert {d["document_id"] for d in again} == set(before)
    assert vector_count(stack, texts) == 170
    # the re-processing ran on the actors the first ingestion left warm (plugin, model loaded)
    rerun = [
        b["stats"]
        for b in platform.planner.batches.find(
            {"collection_id": texts["collection_id"], "reason": "trigger", "status": "completed"}
        )
    ]
    assert rerun and all(s["actors_reused"] >= 1 and s["actors_started"] == 0 for s in rerun)

    # a bucket that collections read from cannot be deleted under them
    refused = api.call("DELETE", f"/buckets/{bucket_id}", expect=409)
    assert "texts" in refused["detail"] and "images" in refused["detail"]

    # deleting a collection removes its documents and vectors, not the other collection's
    api.call("DELETE", f"/collections/{images['collection_id']}")
    api.call("GET", f"/collections/{images['collection_id']}", expect=404)
    assert vector_count(stack, images) == 0
    assert (
        platform.documents.documents.count_documents({"collection_id": images["collection_id"]})
        == 0
    )
    assert api.call("GET", f"/collections/{texts['collection_id']}/documents/count")["total"] == 170


MATERIALIZATIONS = """query Materializations($key: AssetKeyInput!, $partitions: [String!]) {
  assetOrError(assetKey: $key) {
    ... on Asset {
      assetMaterializations(partitions: $partitions) {
        runId partition tags { key value } metadataEntries { label ... on IntMetadataEntry { intValue } }
      }
    }
  }
}"""
CHECK_EXECUTIONS = """query Checks($key: AssetKeyInput!, $check: String!) {
  assetCheckExecutions(assetKey: $key, checkName: $check, limit: 5) { runId status partition }
}"""
RUNS_TAGGED = """query Runs($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId } } }
}"""


def test_an_upload_is_processed_without_a_run_and_recorded_as_its_partitions_materialization(
    api: Api, stack: RunningStack, text_plugin: str
) -> None:
    bucket = api.call(
        "POST",
        "/buckets",
        json={
            "bucket_name": "ahead",
            "bucket_schema": {"properties": {"content": {"type": "text"}}},
        },
    )
    collection = api.call(
        "POST", "/collections",
        json={"collection_name": "ahead", "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
              "feature_extractor": {"feature_extractor_name": "my_extractor", "version": "1.0.0"}},
    )  # fmt: skip
    collection_id = collection["collection_id"]
    obj = api.call(
        "POST",
        f"/buckets/{bucket['bucket_id']}/objects",
        json={"blobs": [{"property": "content", "data": "one fresh upload"}]},
    )
    assert wait_documents(api, collection_id, 1)["completed"] == 1

    platform = stack.platform()
    deadline = time.monotonic() + 30  # the service records the outcome after the documents
    while (batch := platform.planner.batches.find_one({"collection_id": collection_id}))[
        "status"
    ] != "completed":
        assert time.monotonic() < deadline, batch
        time.sleep(0.2)
    assert batch["object_ids"] == [obj["object_id"]] and batch["attempts"] == 1
    assert batch["ahead"] and batch["run_id"] is None
    # the sensor records the batch in Dagster as a run would: its partition materialized, with
    # the batch's metadata, and its checks evaluated; no run was launched for it
    key = {"path": Keys(read_state(platform)).collection(collection_id).path}
    deadline = time.monotonic() + 60
    while not (
        found := platform.dagster.graphql(
            MATERIALIZATIONS, {"key": key, "partitions": [batch["batch_id"]]}
        )["assetOrError"].get("assetMaterializations")
    ):
        assert time.monotonic() < deadline, "the batch was never recorded in Dagster"
        time.sleep(1)
    [materialization] = found
    assert materialization["runId"] == ""  # runless
    metadata = {e["label"]: e.get("intValue") for e in materialization["metadataEntries"]}
    assert metadata["rows_ok"] == 1 and metadata["rows_failed"] == 0
    assert {"plugin", "archive_sha256", "feature_uris", "sample_lineage"} <= set(metadata)
    for check in ("vector_dimensions", "finite_values", "documents_match_blobs", "fresh"):
        [execution, *_] = platform.dagster.graphql(CHECK_EXECUTIONS, {"key": key, "check": check})[
            "assetCheckExecutions"
        ]
        assert execution["status"] == "SUCCEEDED" and execution["partition"] == batch["batch_id"]
    runs = platform.dagster.graphql(
        RUNS_TAGGED, {"tags": [{"key": "mixpeek/collection_id", "value": collection_id}]}
    )["runsOrError"]["results"]
    assert runs == []
    assert platform.planner.get(batch["batch_id"])["reported_at"] is not None  # once
    [doc] = all_documents(api, collection_id)
    lineage = api.call(
        "GET", f"/collections/{collection_id}/documents/{doc['document_id']}/lineage"
    )
    assert lineage["ingestion"]["dagster_run_id"] is None
    assert lineage["ingestion"]["dagster_partition"] == batch["batch_id"]

    # a run (a launch by hand, a backfill) processes its batch itself
    answer = platform.serve.submit("/ingest", {"batch_id": batch["batch_id"], "run_id": "by-hand"})
    assert answer["report"]["completed"] == 1
    assert answer["report"]["processing_started_at"] > batch["stats"]["processing_started_at"]
    # bad bodies are refused naming the field
    with pytest.raises(Exception, match="batch_id"):
        platform.serve.submit("/ingest", {"run_id": "x"})


def test_rows_that_raise_fail_alone(api: Api, tenant: Tenant, tmp_path: Path) -> None:
    publish_variant(
        tenant, tmp_path, "flaky_extractor",
        '        if any("boom" in t for t in batch["text"]):\n            raise ValueError("cannot embed boom")\n',
    )  # fmt: skip
    bucket = api.call(
        "POST",
        "/buckets",
        json={
            "bucket_name": "flaky",
            "bucket_schema": {"properties": {"content": {"type": "text"}}},
        },
    )
    collection = api.call(
        "POST", "/collections",
        json={"collection_name": "flaky", "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
              "feature_extractor": {"feature_extractor_name": "flaky_extractor"}},
    )  # fmt: skip
    for i in range(12):
        text = f"boom number {i}" if i % 4 == 0 else f"fine text {i}"
        api.call(
            "POST",
            f"/buckets/{bucket['bucket_id']}/objects",
            json={"blobs": [{"property": "content", "data": text}]},
        )
    counts = wait_documents(api, collection["collection_id"], 12)
    assert (counts["completed"], counts["failed"]) == (9, 3)
    failed = api.call(
        "POST",
        f"/collections/{collection['collection_id']}/documents/list",
        json={"filters": {"status": "failed"}},
    )["results"]
    assert len(failed) == 3
    assert all("cannot embed boom" in d["errors"][0]["message"] for d in failed)
    assert all(d["feature_refs"] == [] for d in failed)

    # reconciliation names the objects without a completed document, oldest first
    report = api.call("GET", f"/collections/{collection['collection_id']}/reconciliation?limit=2")
    assert (report["source_object_count"], report["produced_object_count"], report["delta"]) == (
        12, 12, 0,
    )  # fmt: skip
    assert report["unfinished_count"] == 3 and report["discrepancies_truncated"] is True
    assert [d["reason"] for d in report["discrepancies"]] == ["failed", "failed"]
    assert "cannot embed boom" in report["discrepancies"][0]["error"]
    first = {d["source_object_id"] for d in failed} & {report["discrepancies"][0]["object_id"]}
    assert first and report["discrepancies"][0]["age_seconds"] >= 0


def slow_collection_in_one_batch(
    api: Api,
    stack: RunningStack,
    tenant: Tenant,
    tmp_path: Path,
    name: str,
    objects: int,
    sleep_s: float,
) -> dict[str, Any]:
    """A collection whose plugin sleeps ``sleep_s`` per block, over ``objects`` objects that all
    arrived before it: its trigger makes one batch (too large to start ahead), run by its run."""
    publish_variant(
        tenant, tmp_path, f"{name}_extractor", f"        import time; time.sleep({sleep_s})\n"
    )
    bucket = api.call(
        "POST",
        "/buckets",
        json={"bucket_name": name, "bucket_schema": {"properties": {"content": {"type": "text"}}}},
    )
    for i in range(objects):
        last = api.call(
            "POST",
            f"/buckets/{bucket['bucket_id']}/objects",
            json={"blobs": [{"property": "content", "data": f"{name} text {i}"}]},
        )
    platform = stack.platform()
    deadline = time.monotonic() + 60
    while platform.planner.cursor < last["seq"] and time.monotonic() < deadline:
        time.sleep(1)  # the sensor has seen them all (with no collection yet, nothing to plan)
    collection = api.call(
        "POST", "/collections",
        json={"collection_name": name, "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
              "feature_extractor": {"feature_extractor_name": f"{name}_extractor"}},
    )  # fmt: skip
    api.call("POST", f"/collections/{collection['collection_id']}/trigger", expect=202)
    return collection


def test_an_interrupted_run_is_retried_and_processes_every_object_exactly_once(
    api: Api, stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    collection = slow_collection_in_one_batch(api, stack, tenant, tmp_path, "slow", 640, 1.5)
    collection_id = collection["collection_id"]
    platform = stack.platform()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill the run once it has written part of the batch
        total = api.call("GET", f"/collections/{collection_id}/documents/count")["total"]
        if 0 < total < 640:
            break
        time.sleep(0.5)
    assert 0 < total < 640, f"never caught the run mid-way ({total} documents)"
    batch = platform.planner.batches.find_one({"collection_id": collection_id})
    platform.dagster.terminate_run(batch["run_id"])
    assert platform.dagster.wait_for_run(batch["run_id"], timeout_s=120) == "CANCELED"

    counts = wait_documents(api, collection_id, 640)
    assert counts["total"] == counts["completed"] == 640
    retried = wait_batch_finished(platform, batch["batch_id"])  # its run records it last
    assert retried["status"] == "completed" and retried["attempts"] == 2
    assert vector_count(stack, collection) == 640


RUN_LOGS = """query RunLogs($runId: ID!) {
  logsForRun(runId: $runId) { ... on EventConnection { events { ... on MessageEvent { message } } } }
}"""


def test_a_run_whose_worker_died_is_failed_and_its_batch_processed_again_exactly_once(
    api: Api, stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    """As a killed stack leaves them: Dagster shows the run ``STARTED`` for ever; the batch's
    silence is what tells the sensor."""
    import re
    import signal

    collection = slow_collection_in_one_batch(api, stack, tenant, tmp_path, "stalled", 400, 1.0)
    platform = stack.platform()
    deadline = time.monotonic() + 240
    pid = None
    while pid is None:
        assert time.monotonic() < deadline, "the batch's run never started"
        batch = platform.planner.batches.find_one(
            {"collection_id": collection["collection_id"], "status": "running",
             "run_id": {"$ne": None}}
        )  # fmt: skip
        if batch is not None:
            logs = platform.dagster.graphql(RUN_LOGS, {"runId": batch["run_id"]})["logsForRun"]
            found = [re.search(r"pid: (\d+)", e.get("message") or "") for e in logs["events"]]
            pid = next((int(m.group(1)) for m in found if m), None)
        time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)  # the run worker, mid-batch

    counts = wait_documents(api, collection["collection_id"], 400, timeout=300)
    assert counts["total"] == counts["completed"] == 400
    assert platform.dagster.run_status(batch["run_id"]) == "FAILURE"
    deadline = time.monotonic() + 60
    while (retried := platform.planner.get(batch["batch_id"]))["status"] != "completed":
        assert time.monotonic() < deadline, retried
        time.sleep(1)
    assert retried["attempts"] == 2 and retried["run_id"] != batch["run_id"]
    assert vector_count(stack, collection) == 400


def test_warm_actors_are_shared_and_leave_when_idle(
    stack: RunningStack, tenant: Tenant, text_plugin: str
) -> None:
    import ray

    from mixpeek_orchestration.compute.resources import WARM_NAMESPACE
    from mixpeek_orchestration.platform import Platform
    from mixpeek_orchestration.plugins.fetch import plugin_spec

    platform = Platform(stack.settings.model_copy(update={"ingest_warm_idle_s": 5}))
    version = platform.registry.version_record(tenant.namespace_id, text_plugin)
    assert version is not None
    spec = plugin_spec(version, platform.objects, platform.sandbox)
    platform.ray.connect()
    engine = platform.ingestion
    steps = engine._step_plan(version, spec, {}, "col_warm_test")
    try:
        names, started, reused = engine.warm_stages("warmtest", spec, {}, "col_warm_test", steps)
        assert (started, reused) == (1, 0) and names == [["warmtest-0-0"]]
        assert engine.warm_stages("warmtest", spec, {}, "col_warm_test", steps)[1:] == (0, 1)

        def alive() -> bool:
            return any(
                a["name"] == "warmtest-0-0" and a.get("namespace") == WARM_NAMESPACE
                for a in ray.util.list_named_actors(all_namespaces=True)
            )

        # a run holding its stage (waiting for its first block) is not idle time
        stage = ray.get_actor("warmtest-0-0", namespace=WARM_NAMESPACE)
        ray.get(stage.hold.remote("run_a", 120))
        time.sleep(8)
        assert alive() and ray.get(stage.info.remote())["idle_s"] == 0
        ray.get(stage.release.remote("run_a"))
        deadline = time.monotonic() + 60
        while alive() and time.monotonic() < deadline:
            time.sleep(1)
        assert not alive()  # 5 s without a batch: it left by itself, freeing its CPU
    finally:
        ray.shutdown()
