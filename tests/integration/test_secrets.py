"""Organisation secrets end to end: stored through the API (encrypted, never answered back),
read by a plugin that declares one, in batch and in realtime, through its sandboxed host's
channel; another organisation reaches none of it; the value is nowhere on disk in clear, in any
log, metric, document or Dagster record."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from mixpeek_orchestration.plugins.archive import build_archive
from tests.integration.conftest import RunningStack, Tenant
from tests.integration.test_ingestion import Api, all_documents, wait_documents
from tests.integration.test_realtime import deploy, plugins_url, undeploy, wait_status

pytestmark = pytest.mark.integration

MANIFEST = """
from typing import List
from pydantic import BaseModel

class In(BaseModel):
    text: str

class Out(BaseModel):
    vault_embedding: List[float]
    token_digest: str
    built_with_secret: bool

metadata = {"feature_extractor_name": "vault_reader", "version": "1.0.0",
            "description": "reads an organisation secret", "category": "text"}
input_schema = In
output_schema = Out
supported_input_types = ["text"]
features = [{"feature_name": "vault_embedding", "feature_type": "embedding",
             "embedding_dim": 4, "distance_metric": "cosine"}]
secrets = ["SECRET_NAME"]
"""
PIPELINE = """
from typing import Any, Dict, Optional
from mixpeek_orchestration.sdk import (
    PipelineDefinition, ResourceType, StepDefinition, build_pipeline_steps,
)
from .processor import VaultConfig, VaultProcessor

def build_steps(extractor_request: Any, container: Optional[Any] = None, **kwargs) -> Dict[str, Any]:
    # container.secrets in build_steps: None in the upload's check, the value in a worker
    token = container.secrets.get("SECRET_NAME") if container is not None else None
    steps = [StepDefinition(service_class=VaultProcessor, resource_type=ResourceType.CPU,
                            config=VaultConfig(built_with_secret=token is not None))]
    pipeline = PipelineDefinition(name="vault_reader", version="1.0.0", steps=steps)
    return {"steps": build_pipeline_steps(pipeline)}
"""
PROCESSOR = """
import hashlib
from dataclasses import dataclass
from mixpeek_orchestration.sdk import current_context

def digest() -> str:
    token = current_context().secrets.get("SECRET_NAME")
    return hashlib.sha256(token.encode()).hexdigest()[:16]

@dataclass
class VaultConfig:
    built_with_secret: bool = False

class VaultProcessor:
    def __init__(self, config=None, progress_actor=None):
        self.config = config

    def __call__(self, batch):
        value = digest()
        batch["vault_embedding"] = [[1.0, float(len(t)), 0.5, 0.25] for t in batch["text"]]
        batch["token_digest"] = [value] * len(batch)
        batch["built_with_secret"] = [self.config.built_with_secret] * len(batch)
        return batch
"""
REALTIME = """
from .processor import digest

class RealtimeHandler:
    def predict(self, request):
        return {"embedding": [1.0, 0.0, 0.5, 0.25], "token_digest": digest()}
"""


def short_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def publish_files(
    tenant: Tenant, tmp_path: Path, name: str, files: dict[str, str]
) -> dict[str, Any]:
    """A plugin made of ``files`` (file name -> source), published as version 1.0.0; a
    refusal fails the test with the API's whole answer (violations, errors)."""
    from mixpeek_orchestration.client import ApiError

    root = tmp_path / name
    root.mkdir()
    for file, text in files.items():
        (root / file).write_text(text)
    archive = tmp_path / f"{name}.zip"
    build_archive(root, archive)
    try:
        return tenant.client().publish_archive(archive, name=name, version="1.0.0")
    except ApiError as exc:
        raise AssertionError(exc.body) from None


def publish_vault_reader(tenant: Tenant, tmp_path: Path, secret_name: str) -> dict[str, Any]:
    sources = {"manifest.py": MANIFEST, "pipeline.py": PIPELINE, "processor.py": PROCESSOR,
               "realtime.py": REALTIME}  # fmt: skip
    files = {name: text.replace("SECRET_NAME", secret_name) for name, text in sources.items()}
    return publish_files(tenant, tmp_path, "vault_reader", files)


def secrets_url(tenant: Tenant) -> str:
    return f"{tenant.base_url}/organizations/secrets"


def test_secrets_are_stored_listed_replaced_and_deleted_and_never_answered(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    name, value = f"crud_{os.urandom(3).hex()}", f"sk-{os.urandom(12).hex()}"
    headers = tenant.headers
    created = httpx.post(secrets_url(tenant), headers=headers,
                         json={"secret_name": name, "secret_value": value})  # fmt: skip
    assert created.status_code == 200, created.text
    assert created.json()["secret_name"] == name and created.json()["created"] is True
    again = httpx.post(secrets_url(tenant), headers=headers,
                       json={"secret_name": name, "secret_value": "x"})  # fmt: skip
    assert again.status_code == 409 and "PUT" in again.json()["detail"]
    listed = httpx.get(secrets_url(tenant), headers=headers)
    assert name in listed.json()["secrets"] and listed.json()["count"] == len(
        listed.json()["secrets"]
    )
    [info] = [s for s in listed.json()["results"] if s["secret_name"] == name]
    assert info["created_at"] and info["updated_at"]
    replaced = httpx.put(f"{secrets_url(tenant)}/{name}", headers=headers,
                         json={"secret_value": value + "-2"})  # fmt: skip
    assert replaced.status_code == 200 and replaced.json()["updated"] is True
    for answer in (created, listed, replaced):
        assert value not in answer.text

    # bad input: a clear 4xx naming the problem, and nothing stored
    bad = httpx.post(secrets_url(tenant), headers=headers,
                     json={"secret_name": "has space", "secret_value": "v"})  # fmt: skip
    assert bad.status_code == 422 and "secret name" in bad.json()["detail"]
    empty = httpx.post(secrets_url(tenant), headers=headers, json={"secret_name": "e"})
    assert empty.status_code == 422 and "secret_value" in empty.json()["detail"]
    assert "e" not in httpx.get(secrets_url(tenant), headers=headers).json()["secrets"]
    missing = httpx.put(f"{secrets_url(tenant)}/nope_{name}", headers=headers,
                        json={"secret_value": "v"})  # fmt: skip
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]

    # another organisation sees none of it and can change none of it
    other = other_tenant.headers
    assert name not in httpx.get(secrets_url(other_tenant), headers=other).json()["secrets"]
    assert httpx.put(f"{secrets_url(other_tenant)}/{name}", headers=other,
                     json={"secret_value": "stolen"}).status_code == 404  # fmt: skip
    assert httpx.delete(f"{secrets_url(other_tenant)}/{name}", headers=other).status_code == 404
    # the same name is theirs to use, separately
    theirs = httpx.post(secrets_url(other_tenant), headers=other,
                        json={"secret_name": name, "secret_value": "theirs"})  # fmt: skip
    assert theirs.status_code == 200

    gone = httpx.delete(f"{secrets_url(tenant)}/{name}", headers=headers)
    assert gone.status_code == 200 and gone.json()["deleted"] is True
    assert httpx.delete(f"{secrets_url(tenant)}/{name}", headers=headers).status_code == 404
    assert name not in httpx.get(secrets_url(tenant), headers=headers).json()["secrets"]
    assert name in httpx.get(secrets_url(other_tenant), headers=other).json()["secrets"]


def test_a_plugin_reads_the_secret_it_declares_in_batch_and_realtime_and_nowhere_leaks_it(
    tenant: Tenant, stack: RunningStack, tmp_path: Path
) -> None:
    name = f"vault_{os.urandom(3).hex()}"
    first, second = f"sk-first-{os.urandom(12).hex()}", f"sk-second-{os.urandom(12).hex()}"
    api = Api(tenant)
    published = publish_vault_reader(tenant, tmp_path, name)
    assert published["secrets"] == [name]
    plugin_id = published["plugin_id"]
    status = httpx.get(f"{plugins_url(tenant)}/{plugin_id}/status", headers=tenant.headers).json()
    assert status["secrets"] == [name] and status["missing_secrets"] == [name]
    stored = httpx.post(secrets_url(tenant), headers=tenant.headers,
                        json={"secret_name": name, "secret_value": first})  # fmt: skip
    assert stored.status_code == 200, stored.text
    status = httpx.get(f"{plugins_url(tenant)}/{plugin_id}/status", headers=tenant.headers).json()
    assert status["missing_secrets"] == []

    # batch: every document carries what the processor made of the secret
    bucket = api.call("POST", "/buckets", json={"bucket_name": "vault",
                      "bucket_schema": {"properties": {"content": {"type": "text"}}}})  # fmt: skip
    collection = api.call("POST", "/collections", json={
        "collection_name": "vault", "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
        "feature_extractor": {"feature_extractor_name": "vault_reader", "version": "1.0.0"}})  # fmt: skip
    for text in ("one", "two"):
        api.call("POST", f"/buckets/{bucket['bucket_id']}/objects",
                 json={"blobs": [{"property": "content", "data": text}]})  # fmt: skip
    assert wait_documents(api, collection["collection_id"], 2)["completed"] == 2
    documents = all_documents(api, collection["collection_id"])
    assert {d["outputs"]["token_digest"] for d in documents} == {short_digest(first)}
    assert all(d["outputs"]["built_with_secret"] for d in documents)  # container.secrets too

    # realtime: the handler reads it too; a new value arrives within seconds, no redeploy
    deploy(tenant, plugin_id)
    try:
        realtime_reads_it(tenant, stack, api, plugin_id, name, (first, second), bucket, collection)
    finally:
        undeploy(tenant, plugin_id)


def realtime_reads_it(
    tenant: Tenant,
    stack: RunningStack,
    api: Api,
    plugin_id: str,
    name: str,
    values: tuple[str, str],
    bucket: dict[str, Any],
    collection: dict[str, Any],
) -> None:
    first, second = values
    assert wait_status(tenant, plugin_id, {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"

    def realtime() -> httpx.Response:
        return httpx.post(f"{plugins_url(tenant)}/{plugin_id}/realtime", headers=tenant.headers,
                          json={"inputs": {"text": "q"}}, timeout=60)  # fmt: skip

    answer = realtime()
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_digest"] == short_digest(first)
    httpx.put(f"{secrets_url(tenant)}/{name}", headers=tenant.headers,
              json={"secret_value": second}).raise_for_status()  # fmt: skip
    deadline = time.monotonic() + 20
    while realtime().json().get("token_digest") != short_digest(second):
        assert time.monotonic() < deadline, "the new value never reached the replica"
        time.sleep(1)

    # deleted: a request and a row that read it fail, naming it
    httpx.delete(f"{secrets_url(tenant)}/{name}", headers=tenant.headers).raise_for_status()
    deadline = time.monotonic() + 20
    while (failed := realtime()).status_code == 200:
        assert time.monotonic() < deadline, "the deleted secret was still read"
        time.sleep(1)
    assert name in failed.json()["detail"] and "not set" in failed.json()["detail"]
    api.call("POST", f"/buckets/{bucket['bucket_id']}/objects",
             json={"blobs": [{"property": "content", "data": "three"}]})  # fmt: skip
    counts = wait_documents(api, collection["collection_id"], 3)
    assert counts["failed"] == 1, counts
    [row] = [d for d in all_documents(api, collection["collection_id"]) if d["status"] == "failed"]
    assert name in row["errors"][0]["message"] and "not set" in row["errors"][0]["message"]

    # the values are nowhere in clear: API answers, metrics, documents, and every file of the
    # stack (metadata store, vector store, Dagster's storage, every log, Ray's session logs)
    text = httpx.get(f"{stack.api_url}/metrics", timeout=30).text
    dumps = [text, str(all_documents(api, collection["collection_id"])), answer.text]
    roots = [stack.settings.data_dir]
    if stack.state.ray_temp_dir:
        roots.append(Path(stack.state.ray_temp_dir))
    for value in (first, second):
        assert not any(value in dump for dump in dumps)
        assert not [str(p) for p in files_containing(roots, value.encode())]


def files_containing(roots: list[Path], needle: bytes) -> list[Path]:
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_symlink() or not path.is_file():
                continue
            try:
                with path.open("rb") as handle:
                    if needle in handle.read():
                        found.append(path)
            except OSError:
                continue
    return found
