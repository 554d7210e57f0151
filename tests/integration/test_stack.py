"""The walking skeleton through every real connection of a running stack."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from dagster import DagsterInstance, materialize

from mixpeek_orchestration.compute.serve import SKELETON_ROUTE
from plugin_assets.definitions import defs
from plugin_assets.resources import RayResource
from plugin_assets.skeleton import ray_data_smoke
from tests.integration.conftest import RunningStack, create_tenant, start_stack

pytestmark = pytest.mark.integration

COMPONENTS = {"metadata", "objects", "vectors", "ray", "serve", "dagster", "sandbox"}


def test_healthz_reports_every_component_ok(stack: RunningStack) -> None:
    body = httpx.get(f"{stack.api_url}/healthz", timeout=30).json()
    assert set(body["components"]) == COMPONENTS
    assert {name: c["status"] for name, c in body["components"].items()} == dict.fromkeys(
        COMPONENTS, "ok"
    )
    assert body["status"] == "ok"


def test_cli_status_reports_the_running_stack(stack: RunningStack) -> None:
    env = {"MIXPEEK_DATA_DIR": str(stack.settings.data_dir), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "mixpeek_orchestration.cli.main", "status", "--json"],
        capture_output=True, text=True, env=env, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"api": "http://127.0.0.1:' in result.stdout


def test_metadata_round_trip(stack: RunningStack) -> None:
    platform = stack.platform()
    try:
        things = platform.metadata.collection("skeleton_things")
        things.delete_many({})
        things.insert_one({"name": "a", "n": 1})
        things.update_one({"name": "a"}, {"$inc": {"n": 1}})
        assert things.find_one({"name": "a"}, {"_id": 0}) == {"name": "a", "n": 2}
    finally:
        platform.close()


def test_signed_upload_through_the_api(stack: RunningStack) -> None:
    store = stack.platform().objects
    upload = store.presign_put("org/ns/skeleton/upload.bin", expires_in=60, max_bytes=5_000_000)
    payload = bytes(range(256)) * 16_384  # 4 MiB, sent in chunks
    chunks = (payload[i : i + 65_536] for i in range(0, len(payload), 65_536))
    response = httpx.put(upload.url, content=chunks, headers=upload.headers, timeout=60)
    assert response.status_code == 200, response.text
    assert store.get_bytes("org/ns/skeleton/upload.bin") == payload
    download = httpx.get(
        store.presign_get("org/ns/skeleton/upload.bin", expires_in=60).url, timeout=60
    )
    assert download.content == payload

    too_big = store.presign_put("org/ns/skeleton/big.bin", expires_in=60, max_bytes=1000)
    response = httpx.put(too_big.url, content=b"x" * 5000, timeout=30)
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
    assert store.stat("org/ns/skeleton/big.bin") is None


def test_skeleton_serve_app_answers_over_http(stack: RunningStack) -> None:
    response = httpx.post(f"{stack.settings.serve_url}{SKELETON_ROUTE}", json={"q": 1}, timeout=30)
    assert response.status_code == 200
    assert response.json()["echo"] == {"q": 1}


def test_materialize_submits_a_ray_data_job(stack: RunningStack) -> None:
    resource = RayResource(address=stack.settings.ray_address or "")
    result = materialize(
        [ray_data_smoke], resources={"ray": resource}, instance=DagsterInstance.ephemeral()
    )
    assert result.success
    metadata = result.asset_materializations_for_node("ray_data_smoke")[0].metadata
    assert metadata["rows"].value == 10_000
    assert metadata["sum_of_squares"].value == sum(i * i for i in range(10_000))
    assert metadata["cluster_cpus"].value >= 1


def test_run_through_the_daemon(stack: RunningStack) -> None:
    dagster = stack.platform().dagster
    assert "ray_data_smoke" in dagster.asset_keys()
    run_id = dagster.launch_job("ray_smoke_job")
    assert dagster.wait_for_run(run_id, timeout_s=240) == "SUCCESS"


def test_definitions_load() -> None:
    assert defs.resolve_job_def("ray_smoke_job") is not None


def _wait_deployed(
    base: str,
    headers: dict[str, str],
    plugin_id: str,
    *,
    require_route: object = None,
    timeout: float = 300,
) -> bool:
    """Wait until a version is DEPLOYED (and, after a restart, answering again)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{base}/{plugin_id}/status", headers=headers).json()
        if status["status"] == "FAILED":
            raise AssertionError(status)
        if status["status"] == "DEPLOYED":
            if require_route is None:
                return True
            probe = httpx.post(
                f"{base}/{plugin_id}/realtime",
                headers=headers,
                json={"inputs": {"text": "x"}},
                timeout=30,
            )
            if probe.status_code == 200:
                return True
        time.sleep(2)
    return False


def test_second_stack_side_by_side_and_data_survives_restart(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A second stack starts while the first runs; `down` then `up` keeps its data."""
    second = start_stack(tmp_path_factory.mktemp("stack-b"))
    try:
        assert second.api_url != stack.api_url
        body = httpx.get(f"{second.api_url}/healthz", timeout=30).json()
        assert body["status"] == "ok", body
        platform = second.platform()
        platform.metadata.collection("persist").insert_one({"k": "v"})
        platform.objects.put_bytes("org/ns/persist.txt", b"kept")
        platform.close()
        tenant = create_tenant(second, "restart")
        base = f"{tenant.base_url}/namespaces/{tenant.namespace_id}/plugins"
        installed = httpx.post(
            f"{base}/builtins/text_extractor", headers=tenant.headers, timeout=120
        )
        assert installed.status_code == 200, installed.text
        httpx.post(f"{base}/text_extractor_1_0_0/deploy", headers=tenant.headers).raise_for_status()
        assert _wait_deployed(base, tenant.headers, "text_extractor_1_0_0")
        assert httpx.get(f"{stack.api_url}/healthz", timeout=30).json()["status"] == "ok"

        second.stack.down()
        restarted = second.stack.up(timeout_s=300)
        platform = second.platform().__class__(second.stack.settings_for(restarted))
        assert platform.metadata.collection("persist").find_one({}, {"_id": 0}) == {"k": "v"}
        assert platform.objects.get_bytes("org/ns/persist.txt") == b"kept"
        platform.close()
        # Deployment state survived: the deployer re-deploys the version on the new Ray.
        assert _wait_deployed(base, tenant.headers, "text_extractor_1_0_0", require_route=restarted)
        answer = httpx.post(
            f"{base}/text_extractor_1_0_0/realtime",
            headers=tenant.headers,
            json={"inputs": {"text": "hi"}},
            timeout=60,
        )
        assert answer.status_code == 200 and len(answer.json()["embedding"]) == 384
    finally:
        second.stack.down()
