"""The adversarial corpus through the platform, as a user would run it: published through the
API (confirm), ingested by the sensor-driven batch path, deployed and called through the API's
realtime path. Every effect is looked for from outside the sandbox: files created outside the
plugin's scratch, the stack's own secrets (its metadata URI, its signing key, a file planted in
its data dir) anywhere an answer, a document or the registry holds, and connections to a
listener this test runs.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import RunningStack, Tenant, create_tenant
from tests.integration.test_ingestion import Api, all_documents, wait_documents
from tests.integration.test_realtime import deploy, wait_status
from tests.sandbox_corpus import (
    ATTACKER,
    BENIGN,
    BLOCKED,
    LEAKY_MANIFEST,
    READABLE,
    Outside,
    cases,
    row_text,
)

pytestmark = pytest.mark.integration


def secrets_of(stack: RunningStack, outside: Outside) -> list[str]:
    """What must never come out of a sandbox: the stack's own secrets and the planted one."""
    settings = stack.settings
    return [
        outside.token,
        settings.mongo_uri or "",
        settings.signing_key.decode(),
    ]


@pytest.fixture(scope="module")
def corpus(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, Tenant, Outside]]:
    tenant = create_tenant(stack, "sandbox-org")
    api = Api(tenant)
    outside = Outside(tmp_path_factory.mktemp("outside"))
    # a secret where the platform keeps its data: what an attacker would look for
    (stack.settings.data_dir / "planted-secret.txt").write_text(outside.token)
    client = tenant.client()
    for plugin in (ATTACKER, BENIGN):
        archive = tmp_path_factory.mktemp(plugin.name) / f"{plugin.name}.zip"
        from mixpeek_orchestration.plugins.archive import build_archive

        build_archive(plugin, archive)
        client.publish_archive(archive, name=plugin.name, version="1.0.0")
    yield api, tenant, outside
    for plugin in ("attacker_1_0_0", "benign_stdlib_1_0_0"):
        api.http.post(f"/namespaces/{tenant.namespace_id}/plugins/{plugin}/undeploy")
    outside.close()


def test_every_attack_is_stopped_in_batch_ingestion(
    corpus: tuple[Api, Tenant, Outside], stack: RunningStack
) -> None:
    api, _tenant, outside = corpus
    attacks = cases(outside) + [
        ("read-the-data-dir", {"attack": "arrow_read",
                               "target": str(stack.settings.data_dir / "planted-secret.txt")}),
        ("read-the-signing-key", {"attack": "numpy_read",
                                  "target": str(stack.settings.data_dir / "secret_key")}),
    ]  # fmt: skip
    bucket = api.call("POST", "/buckets", json={"bucket_name": "attacks",
                      "bucket_schema": {"properties": {"content": {"type": "text"}}}})  # fmt: skip
    collection = api.call("POST", "/collections", json={
        "collection_name": "attacks", "source": {"type": "bucket", "bucket_ids": ["attacks"]},
        "feature_extractor": {"feature_extractor_name": "attacker", "version": "1.0.0"}})  # fmt: skip
    by_object = {}
    for case, spec in attacks:
        obj = api.call("POST", f"/buckets/{bucket['bucket_id']}/objects",
                       json={"blobs": [{"property": "content", "data": row_text(spec)}],
                             "metadata": {"case": case}})  # fmt: skip
        by_object[obj["object_id"]] = case
    wait_documents(api, collection["collection_id"], len(attacks), timeout=600)
    documents = {
        by_object[d["source_object_id"]]: d for d in all_documents(api, collection["collection_id"])
    }
    assert outside.written() == [] and outside.listener.accepted == 0
    for secret in secrets_of(stack, outside):
        assert secret not in str(documents), "a secret reached a document"
    for case, doc in documents.items():
        if case in READABLE:
            continue
        if doc["status"] == "completed":  # an HTTP client shown the proxy's refusal
            assert "blocked_by_sandbox" in str(doc["outputs"].get("result")), (case, doc)
            continue
        code = doc["errors"][0]["code"]
        if case.startswith("arrow_s3"):
            assert code in BLOCKED or "connect" in doc["errors"][0]["message"].lower(), doc
            continue
        assert code in BLOCKED, (case, doc["errors"])


def test_every_attack_is_stopped_in_realtime_calls(
    corpus: tuple[Api, Tenant, Outside], stack: RunningStack
) -> None:
    _api, tenant, outside = corpus
    deploy(tenant, "attacker_1_0_0")
    assert wait_status(tenant, "attacker_1_0_0", {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"
    url = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins/attacker_1_0_0/realtime"
    answers = {}
    for case, spec in cases(outside):
        response = httpx.post(url, headers=tenant.headers, json={"inputs": {"text": row_text(spec)}},
                              timeout=120)  # fmt: skip
        answers[case] = (response.status_code, response.json())
    assert outside.written() == [] and outside.listener.accepted == 0
    for secret in secrets_of(stack, outside):
        assert secret not in str(answers), "a secret reached a realtime answer"
    for case, (status, body) in answers.items():
        if case in READABLE:
            continue
        if status == 200:
            assert "blocked_by_sandbox" in str(body.get("result")), (case, body)
            continue
        if case.startswith("arrow_s3"):
            assert status >= 400, (case, body)
            continue
        assert status == 403 and body["code"] in BLOCKED, (case, status, body)
    ok = httpx.post(url, headers=tenant.headers, json={"inputs": {"text": row_text({"attack": "benign"})}},
                    timeout=60)  # fmt: skip
    assert ok.status_code == 200 and ok.json()["result"] == "ok"  # the replica still serves


def test_a_manifest_reading_the_checking_machine_learns_nothing(
    corpus: tuple[Api, Tenant, Outside], stack: RunningStack, tmp_path: Path
) -> None:
    """At upload the manifest runs in a sandbox of its own: what it reads at import (the API
    host's files, its environment) cannot flow back through the stored metadata."""
    api, tenant, outside = corpus
    bait = Path("/tmp") / f"mixpeek-leak-{outside.token[-8:]}" / "data"
    bait.mkdir(parents=True, exist_ok=True)
    (bait / "secret.txt").write_text(outside.token)
    try:
        archive = tmp_path / "leaky.zip"
        from mixpeek_orchestration.plugins.archive import build_archive

        build_archive(LEAKY_MANIFEST, archive)
        response = httpx.post(
            f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins",
            headers=tenant.headers | {"Content-Type": "application/zip"},
            content=archive.read_bytes(),
            timeout=120,
        )
        registered = str(response.json())
        if response.status_code == 200:
            registered += str(
                api.call("GET", f"/namespaces/{tenant.namespace_id}/plugins/leaky_manifest_1_0_0")
            )
        for secret in secrets_of(stack, outside):
            assert secret not in registered
        assert "MIXPEEK_" not in registered  # nothing of the API's environment either
    finally:
        shutil.rmtree(bait.parent, ignore_errors=True)


def test_benign_plugins_run_and_answer_in_both_paths(
    corpus: tuple[Api, Tenant, Outside],
) -> None:
    api, tenant, _ = corpus
    api.call("POST", "/buckets", json={"bucket_name": "benign",
             "bucket_schema": {"properties": {"content": {"type": "text"}}}})  # fmt: skip
    collection = api.call("POST", "/collections", json={
        "collection_name": "benign", "source": {"type": "bucket", "bucket_ids": ["benign"]},
        "feature_extractor": {"feature_extractor_name": "benign_stdlib", "version": "1.0.0"}})  # fmt: skip
    api.call(
        "POST",
        "/buckets/benign/objects",
        json={"blobs": [{"property": "content", "data": "a sunny day"}]},
    )
    counts = wait_documents(api, collection["collection_id"], 1)
    assert counts["completed"] == 1, counts
    (doc,) = all_documents(api, collection["collection_id"])
    deploy(tenant, "benign_stdlib_1_0_0")
    assert (
        wait_status(tenant, "benign_stdlib_1_0_0", {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"
    )
    answer = httpx.post(
        f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins/benign_stdlib_1_0_0/realtime",
        headers=tenant.headers, json={"inputs": {"text": "a sunny day"}}, timeout=60,
    ).json()  # fmt: skip
    assert answer["normalized"] == doc["outputs"]["normalized"] == "a sunny day"
    expected = [b / 255.0 for b in hashlib.sha256(b"a sunny day").digest()[:8]]
    assert answer["embedding"] == pytest.approx(expected)
