"""Realtime: deploy through the deployer (Dagster sensor + asset), call, blue-green, failures."""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from mixpeek_orchestration.plugins.archive import build_archive
from tests.integration.conftest import RunningStack, Tenant

pytestmark = pytest.mark.integration

SEED = Path(__file__).resolve().parents[2] / "examples" / "plugins" / "my_extractor"


def publish(
    tenant: Tenant,
    tmp_path: Path,
    name: str,
    version: str,
    *,
    label: str = "positive",
    realtime: str | None = None,
) -> dict[str, Any]:
    root = tmp_path / f"{name}-{version}"
    shutil.copytree(SEED, root)
    manifest = root / "manifest.py"
    manifest.write_text(manifest.read_text().replace("my_extractor", name))
    handler = root / "realtime.py"
    handler.write_text(
        realtime
        if realtime is not None
        else handler.read_text().replace('"positive"', f'"{label}"')
    )
    archive = tmp_path / f"{name}-{version}.zip"
    build_archive(root, archive)
    return tenant.client().publish_archive(archive, name=name, version=version)


def plugins_url(tenant: Tenant) -> str:
    return f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins"


def deploy(tenant: Tenant, plugin_id: str) -> dict[str, Any]:
    response = httpx.post(f"{plugins_url(tenant)}/{plugin_id}/deploy", headers=tenant.headers)
    assert response.status_code == 200, response.text
    return response.json()


def undeploy(tenant: Tenant, plugin_id: str) -> None:
    """Take a test's deployment down again: replicas hold CPUs the later tests' batch actors
    and Ray Data jobs need (the test stack has 6)."""
    httpx.post(f"{plugins_url(tenant)}/{plugin_id}/undeploy", headers=tenant.headers, timeout=60)


def wait_status(
    tenant: Tenant, plugin_id: str, wanted: set[str], timeout: float = 240
) -> dict[str, Any]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(
            f"{plugins_url(tenant)}/{plugin_id}/status", headers=tenant.headers
        ).json()
        if not seen or seen[-1] != status["status"]:
            seen.append(status["status"])
        if status["status"] in wanted:
            status["seen"] = seen
            return status
        time.sleep(1)
    pytest.fail(f"{plugin_id} stayed {seen} for {timeout}s")


def infer(tenant: Tenant, **body: Any) -> httpx.Response:
    return httpx.post(
        f"{tenant.base_url}/inference",
        headers=tenant.headers | {"X-Namespace": tenant.namespace_id},
        json=body,
        timeout=60,
    )


BROKEN_HANDLER = """
class RealtimeHandler:
    def __init__(self):
        raise RuntimeError("weights are missing")

    def predict(self, request):
        return {}
"""


def test_deploy_call_blue_green_and_failure(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    first = publish(tenant, tmp_path, "rt_plugin", "1.0.0", label="blue")
    queued = deploy(tenant, first["plugin_id"])
    assert queued["status"] == "queued"
    assert (
        queued["route_prefix"] == f"/inference/custom_plugin_{tenant.namespace_id}_rt_plugin_1_0_0"
    )
    status = wait_status(tenant, first["plugin_id"], {"DEPLOYED", "FAILED"})
    assert status["status"] == "DEPLOYED", status
    assert status["deployed_at"]

    answer = httpx.post(
        f"{plugins_url(tenant)}/{first['plugin_id']}/realtime",
        headers=tenant.headers,
        json={"inputs": {"text": "a sunny day"}, "parameters": {}},
        timeout=60,
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["embedding"]) == 384 and answer.json()["label"] in ("blue", "negative")
    timed = httpx.post(
        f"{plugins_url(tenant)}/{first['plugin_id']}/realtime/test",
        headers=tenant.headers,
        json={"inputs": {"text": "x"}},
        timeout=60,
    )
    assert timed.status_code == 200 and timed.json()["latency_ms"] > 0
    by_uri = infer(tenant, feature_uri=first["feature_uri"], inputs={"text": "a sunny day"})
    assert by_uri.status_code == 200 and by_uri.json()["plugin_id"] == first["plugin_id"]

    # A client calls the plugin by name throughout the rollouts below.
    answered: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def client_loop() -> None:
        while not stop.is_set():
            response = infer(tenant, inference_name="rt_plugin", inputs={"text": "hello there"})
            if response.status_code == 200:
                answered[response.json()["plugin_id"]] += 1
            else:
                failures.append(f"{response.status_code} {response.text[:200]}")
            time.sleep(0.05)

    loop = threading.Thread(target=client_loop)
    loop.start()
    try:
        second = publish(tenant, tmp_path, "rt_plugin", "1.0.1", label="green")
        deploy(tenant, second["plugin_id"])
        assert (
            wait_status(tenant, second["plugin_id"], {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"
        )
        deadline = time.monotonic() + 30
        while answered[second["plugin_id"]] < 5 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert answered[first["plugin_id"]] > 0 and answered[second["plugin_id"]] >= 5

        broken = publish(tenant, tmp_path, "rt_plugin", "1.0.2", realtime=BROKEN_HANDLER)
        deploy(tenant, broken["plugin_id"])
        failed = wait_status(tenant, broken["plugin_id"], {"DEPLOYED", "FAILED"})
        assert failed["status"] == "FAILED" and "weights are missing" in failed["error"]
        served_before = answered[second["plugin_id"]]
        time.sleep(3)
        assert answered[second["plugin_id"]] > served_before  # the running version kept answering
    finally:
        stop.set()
        loop.join()
    assert failures == []

    # Undeploy removes the application; calls then say it is not deployed.
    undeploy = httpx.post(
        f"{plugins_url(tenant)}/{first['plugin_id']}/undeploy", headers=tenant.headers
    )
    assert undeploy.status_code == 200 and undeploy.json()["deployment_removed"] is True
    refused = httpx.post(
        f"{plugins_url(tenant)}/{first['plugin_id']}/realtime",
        headers=tenant.headers,
        json={"inputs": {"text": "x"}},
    )
    assert refused.status_code == 409 and refused.json()["code"] == "not_deployed"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first["route_prefix"] in stack.platform().serve.routes():
        time.sleep(1)
    assert first["route_prefix"] not in stack.platform().serve.routes()


def test_batch_only_and_plugins_without_a_handler(tenant: Tenant, tmp_path: Path) -> None:
    result = publish(tenant, tmp_path, "rt_batch", "1.0.0")
    answer = httpx.post(
        f"{plugins_url(tenant)}/{result['plugin_id']}/deploy?deployment_type=batch_only",
        headers=tenant.headers,
    )
    assert answer.status_code == 200 and answer.json()["status"] == "not_deployed"
    status = httpx.get(
        f"{plugins_url(tenant)}/{result['plugin_id']}/status", headers=tenant.headers
    ).json()
    assert status["status"] == "NOT_DEPLOYED"

    root = tmp_path / "no_handler"
    shutil.copytree(SEED, root)
    (root / "realtime.py").unlink()
    (root / "manifest.py").write_text(
        (root / "manifest.py").read_text().replace("my_extractor", "rt_nohandler")
    )
    archive = tmp_path / "no_handler.zip"
    build_archive(root, archive)
    plugin = tenant.client().publish_archive(archive, name="rt_nohandler", version="1.0.0")
    refused = httpx.post(
        f"{plugins_url(tenant)}/{plugin['plugin_id']}/deploy", headers=tenant.headers
    )
    assert refused.status_code == 422 and "batch_only" in refused.json()["detail"]
    unknown = infer(tenant, inference_name="rt_batch", inputs={"text": "x"})
    assert unknown.status_code == 409 and unknown.json()["code"] == "not_deployed"


def test_builtins_deploy_the_same_way(tenant: Tenant, tmp_path: Path) -> None:
    import base64
    import io

    from PIL import Image

    for name in ("text_extractor", "image_extractor"):
        installed = httpx.post(
            f"{plugins_url(tenant)}/builtins/{name}", headers=tenant.headers, timeout=120
        )
        assert installed.status_code == 200, installed.text
        again = httpx.post(
            f"{plugins_url(tenant)}/builtins/{name}", headers=tenant.headers, timeout=120
        )
        assert again.json()["already_registered"] is True
        deploy(tenant, f"{name}_1_0_0")
    for name in ("text_extractor", "image_extractor"):
        assert wait_status(tenant, f"{name}_1_0_0", {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"

    text = infer(tenant, inference_name="text_extractor", inputs={"text": "a dog in the park"})
    assert text.status_code == 200 and len(text.json()["data"]["embedding"]) == 384
    assert text.json()["provider"] == "plugin" and text.json()["model"] == text.json()["plugin_id"]
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buffer, format="PNG")
    image = infer(
        tenant,
        feature_uri="mixpeek://image_extractor@1.0.0/image_extractor_embedding",
        inputs={"image_base64": base64.b64encode(buffer.getvalue()).decode()},
    )
    assert image.status_code == 200, image.text
    assert len(image.json()["data"]["embedding"]) == 1280
    bad = infer(tenant, inference_name="image_extractor", inputs={"image_base64": "not base64!"})
    assert bad.status_code == 400 and "image_base64" in bad.json()["detail"]


def test_realtime_lookups_stay_within_their_organisation_and_follow_changes(
    stack: RunningStack, tmp_path: Path
) -> None:
    """The realtime path reads keys, namespaces and versions from memory: an answer is scoped
    by its organisation, and a change made elsewhere takes effect within the refresh bound."""
    from mixpeek_orchestration.tenancy.accounts import KEY_PREFIX
    from tests.integration.conftest import create_tenant

    first = create_tenant(stack, "lookups-a", "lookups")
    second = create_tenant(stack, "lookups-b", "lookups")  # the same namespace name
    publish(first, tmp_path, "rt_lookup", "1.0.0")
    namespace = httpx.get(
        f"{first.base_url}/namespaces/{first.namespace_id}", headers=first.headers
    ).json()["namespace_name"]

    def infer(tenant: Tenant, key: str | None = None) -> httpx.Response:
        return httpx.post(
            f"{tenant.base_url}/inference",
            headers={"Authorization": f"Bearer {key or tenant.api_key}", "X-Namespace": namespace},
            json={"inference_name": "rt_lookup", "inputs": {"text": "x"}},
        )

    for _ in range(3):  # loaded once, then from memory: the same answer
        answer = infer(first)
        assert answer.status_code == 409 and answer.json()["code"] == "not_deployed"
    # the other organisation's namespace of the same name has no such plugin
    assert infer(second).status_code == 404
    assert infer(first, key="mxp_sk_not_a_key").status_code == 401

    # a key revoked by another process stops working within the bound (0.5 s and a reload)
    platform = stack.platform()
    assert platform.accounts.revoke_key(first.org_id, first.api_key[: len(KEY_PREFIX) + 6]) == 1
    deadline = time.monotonic() + 2
    while (status := infer(first).status_code) != 401:
        assert time.monotonic() < deadline, f"a revoked key still answered {status}"
        time.sleep(0.1)
    # a namespace deleted through the API is gone at once
    assert infer(second).status_code == 404  # its namespace, from memory
    deleted = httpx.delete(
        f"{second.base_url}/namespaces/{namespace}", headers=second.headers, timeout=60
    )
    assert deleted.status_code == 200, deleted.text
    gone = infer(second)
    assert gone.status_code == 404 and "namespace" in gone.json()["detail"].lower()


def test_a_deployment_scaled_to_zero_answers_its_first_request_after_a_cold_start(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    """``min_replicas: 0`` (the operator's overrides file): the deployment starts with one
    replica (the rollout proves the handler loads), goes to zero after its idle delay, and the
    first request then waits for a cold start and is answered."""
    import os

    from mixpeek_orchestration.plugins.records import app_name

    overrides = Path(os.environ["MIXPEEK_OVERRIDES_FILE"])
    overrides.write_text(
        "overrides:\n  rt_zero: {min_replicas: 0, max_replicas: 1, downscale_delay_s: 2}\n"
    )
    platform = stack.platform()
    plugin_id = ""
    try:
        published = publish(tenant, tmp_path, "rt_zero", "1.0.0")
        plugin_id = published["plugin_id"]
        deploy(tenant, plugin_id)
        assert wait_status(tenant, plugin_id, {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"
        app = app_name(tenant.namespace_id, plugin_id)
        deadline = time.monotonic() + 180
        while platform.serve.replicas(app) > 0:
            assert time.monotonic() < deadline, "the idle deployment never scaled to zero"
            time.sleep(1)
        started = time.monotonic()
        answer = httpx.post(
            f"{plugins_url(tenant)}/{plugin_id}/realtime",
            headers=tenant.headers,
            json={"inputs": {"text": "first after idle"}},
            timeout=60,
        )
        cold_start_s = time.monotonic() - started
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["embedding"]) > 0
        assert platform.serve.replicas(app) == 1
        print(f"cold start from zero replicas: {cold_start_s:.1f} s")
        assert cold_start_s < 30  # the relay's bound; past it the caller gets a 503
    finally:
        overrides.write_text("{}\n")
        if plugin_id:
            undeploy(tenant, plugin_id)


SLOW_HANDLER = """
import time


class RealtimeHandler:
    def predict(self, request):
        time.sleep(0.2)  # a model that takes its time: requests pile up under load
        return {"embedding": [1.0, 0.0], "label": "slow"}
"""


def test_a_deployment_under_load_grows_to_max_replicas_and_shrinks_back_when_idle(
    stack: RunningStack, tenant: Tenant, tmp_path: Path
) -> None:
    """Above ``target_ongoing_requests`` the Serve autoscaler adds replicas up to
    ``max_replicas``; once the load stops it goes back to ``min_replicas`` after
    ``downscale_delay_s`` (and Serve's look-back window). Every request is answered meanwhile."""
    import os

    from mixpeek_orchestration.plugins.records import app_name

    overrides = Path(os.environ["MIXPEEK_OVERRIDES_FILE"])
    overrides.write_text(
        "overrides:\n  rt_scale: {min_replicas: 1, max_replicas: 2, target_ongoing_requests: 1,"
        " downscale_delay_s: 2, num_cpus: 0.25}\n"
    )
    platform = stack.platform()
    stop = threading.Event()
    outcomes: Counter[int] = Counter()
    plugin_id = ""
    try:
        published = publish(tenant, tmp_path, "rt_scale", "1.0.0", realtime=SLOW_HANDLER)
        plugin_id = published["plugin_id"]
        deploy(tenant, plugin_id)
        assert wait_status(tenant, plugin_id, {"DEPLOYED", "FAILED"})["status"] == "DEPLOYED"
        app = app_name(tenant.namespace_id, plugin_id)
        assert platform.serve.replicas(app) == 1

        def load() -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    response = client.post(
                        f"{plugins_url(tenant)}/{plugin_id}/realtime",
                        headers=tenant.headers,
                        json={"inputs": {"text": "load"}},
                    )
                    outcomes[response.status_code] += 1

        clients = [threading.Thread(target=load) for _ in range(8)]
        for client in clients:
            client.start()
        started = time.monotonic()
        while platform.serve.replicas(app) < 2:
            assert time.monotonic() - started < 120, "the loaded deployment never scaled up"
            time.sleep(1)
        grown_s = time.monotonic() - started
        time.sleep(3)
        assert platform.serve.replicas(app) == 2  # never above max_replicas
        stop.set()
        for client in clients:
            client.join()
        idle = time.monotonic()
        while platform.serve.replicas(app) > 1:
            assert time.monotonic() - idle < 120, "the idle deployment never scaled down"
            time.sleep(1)
        shrunk_s = time.monotonic() - idle
        print(
            f"autoscaling: 1 -> 2 replicas in {grown_s:.1f} s under load, back in {shrunk_s:.1f} s"
        )
        assert set(outcomes) == {200}, outcomes
        assert platform.serve.replicas(app) == 1  # never below min_replicas
    finally:
        stop.set()
        overrides.write_text("{}\n")
        if plugin_id:
            undeploy(tenant, plugin_id)
