"""The LLM accessor end to end: ``examples/plugins/llm_tagger`` calls ``sdk.llm.chat`` and
``sdk.llm.embed`` in batch and realtime; the platform makes the calls to the test stack's
OpenAI-compatible stand-in (``tests/llm_server.py``, on loopback) with the organisation's key
from its secrets, through the egress proxy, and meters each one per namespace, plugin and
collection; a namespace over its budget is refused; another organisation sees none of it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.llm.gateway import LLMGateway
from mixpeek_orchestration.llm.providers import parse_providers
from mixpeek_orchestration.plugins.archive import build_archive
from tests.integration.conftest import LLM_KEY_SECRET, RunningStack, Tenant
from tests.integration.test_ingestion import Api, all_documents, wait_documents
from tests.integration.test_realtime import deploy, plugins_url, undeploy, wait_status

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "llm_tagger"
MODELS = {"chat_model": "tiny-chat", "embedding_model": "tiny-embed"}
PRICE = {"tiny-chat": (1000, 2000), "tiny-embed": (100, 0)}  # USD per million, as conftest


def provider_url() -> str:
    provider, *_ = json.loads(os.environ["MIXPEEK_LLM_PROVIDERS"])
    return str(provider["base_url"])


def provider_calls() -> list[dict[str, Any]]:
    return httpx.get(f"{provider_url()}/_calls", timeout=10).json()["calls"]  # type: ignore[no-any-return]


def usage(tenant: Tenant, **params: str) -> dict[str, Any]:
    answer = httpx.get(f"{tenant.base_url}/organizations/usage", headers=tenant.headers,
                       params=params, timeout=30)  # fmt: skip
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def store_key(tenant: Tenant) -> str:
    """A fresh provider key in the organisation's secrets (where the provider takes it from)."""
    key = f"sk-llm-{os.urandom(12).hex()}"
    secrets = f"{tenant.base_url}/organizations/secrets"
    stored = httpx.post(secrets, headers=tenant.headers,
                        json={"secret_name": LLM_KEY_SECRET, "secret_value": key})  # fmt: skip
    assert stored.status_code in (200, 409), stored.text
    if stored.status_code == 409:
        httpx.put(f"{secrets}/{LLM_KEY_SECRET}", headers=tenant.headers,
                  json={"secret_value": key}).raise_for_status()  # fmt: skip
    return key


def test_a_plugin_labels_with_an_llm_in_batch_and_realtime_and_every_call_is_metered(
    tenant: Tenant, other_tenant: Tenant, stack: RunningStack, tmp_path: Path
) -> None:
    key = store_key(tenant)
    before = len(provider_calls())
    archive = tmp_path / "llm_tagger.zip"
    build_archive(EXAMPLE, archive)
    plugin_id = tenant.client().publish_archive(archive, name="llm_tagger", version="1.0.0")[
        "plugin_id"
    ]

    # batch: each row labelled by a chat call, the batch embedded by one embeddings call
    api = Api(tenant)
    bucket = api.call("POST", "/buckets", json={"bucket_name": "reviews",
                      "bucket_schema": {"properties": {"content": {"type": "text"}}}})  # fmt: skip
    collection = api.call("POST", "/collections", json={
        "collection_name": "reviews", "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
        "feature_extractor": {"feature_extractor_name": "llm_tagger", "version": "1.0.0",
                              "parameters": MODELS}})  # fmt: skip
    collection_id = collection["collection_id"]
    for text in ("a good film, great cast", "a dull film"):
        api.call("POST", f"/buckets/{bucket['bucket_id']}/objects",
                 json={"blobs": [{"property": "content", "data": text}]})  # fmt: skip
    assert wait_documents(api, collection_id, 2)["completed"] == 2
    labels = {d["outputs"]["sentiment"] for d in all_documents(api, collection_id)}
    assert labels == {"positive", "negative"}

    # realtime: the same calls from the handler
    deploy(tenant, plugin_id)
    try:
        realtime_is_metered(tenant, other_tenant, stack, plugin_id, collection_id, key, before)
    finally:
        undeploy(tenant, plugin_id)


def realtime_is_metered(
    tenant: Tenant,
    other_tenant: Tenant,
    stack: RunningStack,
    plugin_id: str,
    collection_id: str,
    key: str,
    before: int,
) -> None:
    secrets = f"{tenant.base_url}/organizations/secrets"
    assert wait_status(tenant, plugin_id, {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"

    def realtime(text: str) -> httpx.Response:
        return httpx.post(f"{plugins_url(tenant)}/{plugin_id}/realtime", headers=tenant.headers,
                          json={"inputs": {"text": text}, "parameters": MODELS}, timeout=60)  # fmt: skip

    answer = realtime("a great day")
    assert answer.status_code == 200, answer.text
    assert answer.json()["sentiment"] == "positive" and len(answer.json()["embedding"]) == 8
    assert answer.json()["llm_cost_usd"] > 0

    # the provider got each call with this organisation's key, and only through the platform
    calls = provider_calls()[before:]
    assert len(calls) >= 5  # 2 rows + their embeddings (1 or 2 batches), 1 query + 1 embedding
    assert {c["key_sha256"] for c in calls} == {
        hashlib.sha256(f"Bearer {key}".encode()).hexdigest()
    }

    # metered: per collection in batch, without one in realtime; cost from the operator's prices
    report = usage(tenant)
    rows = [r for r in report["results"] if r["plugin_id"] == plugin_id]
    batch = [r for r in rows if r["collection_id"] == collection_id]
    live = [r for r in rows if r["collection_id"] is None]
    assert {r["model"] for r in batch} == {"tiny-chat", "tiny-embed"} and live
    chat = next(r for r in batch if r["model"] == "tiny-chat")
    assert chat["calls"] == 2 and chat["errors"] == 0 and chat["output_tokens"] == 2
    expected = (chat["input_tokens"] * PRICE["tiny-chat"][0] + 2 * PRICE["tiny-chat"][1]) / 1e6
    assert chat["cost_usd"] == pytest.approx(expected)
    assert all(r["namespace_id"] == tenant.namespace_id and r["provider"] == "local" for r in rows)
    assert report["totals"]["cost_usd"] == pytest.approx(
        sum(r["cost_usd"] for r in report["results"])
    )
    by_model = usage(tenant, group_by="model")
    assert {r["model"] for r in by_model["results"]} >= {"tiny-chat", "tiny-embed"}
    bad = httpx.get(f"{tenant.base_url}/organizations/usage", headers=tenant.headers,
                    params={"group_by": "colour"})  # fmt: skip
    assert bad.status_code == 422 and "colour" in bad.json()["detail"]
    metrics = httpx.get(f"{stack.api_url}/metrics", timeout=30).text
    cost_lines = [line for line in metrics.splitlines() if line.startswith("mixpeek_llm_cost_usd_total{")
                  and f'tenant="{tenant.org_id}"' in line and f'plugin="{plugin_id}"' in line]  # fmt: skip
    assert cost_lines and sum(float(line.rsplit(" ", 1)[1]) for line in cost_lines) > 0
    assert key not in metrics and key not in json.dumps(report)

    # another organisation sees none of it
    assert usage(other_tenant)["results"] == []

    # a namespace over its monthly budget is refused, naming why; lifting it lets calls through
    namespace = f"{tenant.base_url}/namespaces/{tenant.namespace_id}"
    patched = httpx.patch(namespace, headers=tenant.headers, json={"llm_budget_usd": 0.000001})
    assert patched.status_code == 200 and patched.json()["llm_budget_usd"] == 0.000001
    refused = realtime("a good day")
    assert refused.status_code == 402, refused.text
    assert "budget" in refused.json()["detail"] and tenant.namespace_id in refused.json()["detail"]
    negative = httpx.patch(namespace, headers=tenant.headers, json={"llm_budget_usd": -1})
    assert negative.status_code == 422
    httpx.patch(namespace, headers=tenant.headers, json={"llm_budget_usd": None}).raise_for_status()
    assert realtime("a good day").status_code == 200

    # without the provider's key in the organisation's secrets, the call fails naming it
    httpx.delete(f"{secrets}/{LLM_KEY_SECRET}", headers=tenant.headers).raise_for_status()
    missing = realtime("a good day")
    assert missing.status_code >= 400 and LLM_KEY_SECRET in missing.json()["detail"]
    httpx.post(secrets, headers=tenant.headers,
               json={"secret_name": LLM_KEY_SECRET, "secret_value": key}).raise_for_status()  # fmt: skip


def test_the_gateway_reaches_providers_only_through_its_egress_proxy(
    tenant: Tenant, stack: RunningStack
) -> None:
    """The same call, once allowed and once with the provider's address among the platform's
    own endpoints: the proxy refuses the second before anything reaches the provider."""
    store_key(tenant)
    platform = stack.platform()
    providers = parse_providers(os.environ["MIXPEEK_LLM_PROVIDERS"])
    host, port = "127.0.0.1", int(provider_url().rsplit(":", 1)[1].split("/")[0])
    scope = {"org_id": tenant.org_id, "namespace_id": tenant.namespace_id,
             "plugin_id": "gateway_probe", "collection_id": None}  # fmt: skip
    call = {"op": "embed", "texts": ["probe"], "model": "tiny-embed"}

    def gateway(denied: tuple[tuple[str, int], ...]) -> LLMGateway:
        return LLMGateway(providers, secrets=platform.secrets, usage=platform.llm_usage,
                          budget=lambda: None, scope=scope, denied_endpoints=denied)  # fmt: skip

    before = len(provider_calls())
    allowed = gateway(())
    try:
        assert len(allowed(call)["vectors"]) == 1
    finally:
        allowed.close()
    assert len(provider_calls()) == before + 1
    # a provider LiteLLM speaks goes the same way (here the same endpoint, as "openai/...")
    through_litellm = gateway(())
    try:
        answer = through_litellm({"op": "chat", "model": "openai/tiny-chat", "provider": "via-litellm",
                                  "messages": [{"role": "user", "content": "a good probe"}]})  # fmt: skip
    finally:
        through_litellm.close()
    assert answer["content"] == "positive" and answer["usage"]["input_tokens"] == 3
    assert answer["cost_usd"] == pytest.approx(3 * 1000 / 1e6)
    assert len(provider_calls()) == before + 2
    before += 1
    refused = gateway(((host, port),))
    try:
        with pytest.raises(MixpeekError) as info:
            refused(call)
    finally:
        refused.close()
    assert info.value.code is ErrorCode.BLOCKED_BY_SANDBOX
    assert len(provider_calls()) == before + 1  # nothing reached the provider
    rows = usage(tenant)["results"]
    probe = [r for r in rows if r["plugin_id"] == "gateway_probe"]
    assert sum(r["errors"] for r in probe) >= 1  # the refused call is recorded as an error
