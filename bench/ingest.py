"""Benchmark: ingestion end to end, against a hand-written baseline and the raw model, same run.

Starts a whole local stack (the same code as ``mixpeek up``) on free ports (``--nodes 2`` adds a
worker node that offers the ``batch`` resource and cannot see the data dir, as a cluster's
worker would be), and for each plugin of ``--plugins``:

* ``null`` (``bench/plugins/null_embedder``): a 384-d hash of the text, no model, so what is
  measured is the platform;
* ``minilm`` (the seed example, ``examples/plugins/my_extractor``): all-MiniLM-L6-v2;

publishes it, creates a bucket and a collection on it, ingests a few objects to warm its actors
(the cold start is reported on its own), then drops ``--objects`` text files under the bucket's
storage prefix and waits until every document is stored. Nothing is launched by hand: the sensor
registers the files and plans batches, Dagster runs them, the ingestion service processes them.
Then ``--freshness`` single objects are uploaded through the API one at a time, each timed from
its upload to its document completed.

Baselines, in the same run:

* hand-written (with ``null``): Ray Data over the same rows -> ``map_batches`` on an actor pool
  computing the same hash -> vectors upserted into LanceDB and documents bulk-inserted into the
  same metadata server, by a driver that does nothing else;
* raw model (with ``minilm``): ``SentenceTransformer.encode`` of the same texts (batch 64) in a
  fresh process, the model loaded before timing.

Figures per plugin: processing rows/s (from the first batch's processing start to the last
one's end) and its ratio to the baseline; the CPU each kind of process used in that window, per
row, and what is the platform's (everything but the plugin hosts' processes); the first block
with warm actors; single-object freshness p50 / p90; peak RSS of the ingestion service and of
the whole stack.

Targets (issue 15): null >= 0.7x the hand-written baseline and <= 1 ms platform CPU per row;
MiniLM >= 0.6x raw ``encode``; first block (warm) <= 2 s; freshness p50 <= 5 s; memory flat from
5,000 to 50,000 objects (run with ``--objects 50000``).

Run: ``python bench/ingest.py [--objects 5000] [--plugins null,minilm] [--freshness 20]
[--nodes 1|2]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixpeek_orchestration.client import PlatformClient  # noqa: E402
from mixpeek_orchestration.ingest.buckets import landing_prefix  # noqa: E402
from mixpeek_orchestration.platform import Platform  # noqa: E402
from mixpeek_orchestration.plugins.archive import build_archive  # noqa: E402
from mixpeek_orchestration.settings import load_settings  # noqa: E402
from mixpeek_orchestration.stack import Stack  # noqa: E402
from mixpeek_orchestration.stack.processes import free_port  # noqa: E402

PLUGINS = {
    "null": (REPO / "bench" / "plugins" / "null_embedder", "null_embedder"),
    "minilm": (REPO / "examples" / "plugins" / "my_extractor", "my_extractor"),
}
WORDS = ["river", "stone", "light", "garden", "market", "engine", "cloud", "paper", "signal",
         "forest", "window", "music"]  # fmt: skip
WARM_OBJECTS = 64
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}

RAW = """
import json, sys, time, os
os.environ["HF_HUB_OFFLINE"] = "1"
from mixpeek_orchestration.models.cache import activate_model_cache
activate_model_cache(None)
from sentence_transformers import SentenceTransformer
texts = json.load(open(sys.argv[1]))
model = SentenceTransformer("all-MiniLM-L6-v2")
model.encode(texts[:64], batch_size=64)
start = time.perf_counter()
model.encode(texts, batch_size=64)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def corpus(n: int, tag: str = "") -> list[str]:
    return [
        f"document {tag}{i}: the {WORDS[i % 12]} near the {WORDS[(i * 7) % 12]} "
        f"and a {WORDS[(i * 5) % 12]} in the {WORDS[(i * 3) % 12]}"
        for i in range(n)
    ]


def raw_model_rows_per_s(texts: list[str], work: Path) -> float:
    """``encode`` throughput over ``texts`` (at most 5,000: a rate, not a total)."""
    texts = texts[:5000]
    path = work / "texts.json"
    path.write_text(json.dumps(texts))
    out = subprocess.run(
        [sys.executable, "-c", RAW, str(path)], capture_output=True, text=True, check=True
    )
    seconds = json.loads(out.stdout.strip().splitlines()[-1])["seconds"]
    return len(texts) / seconds


# -- where the CPU goes -------------------------------------------------------------------------


def process_label(proc: psutil.Process) -> str:
    """What a process is, for the CPU breakdown."""
    cmdline = proc.cmdline()
    line = " ".join(cmdline)
    if "mixpeek_orchestration.plugins.host" in line:
        return "plugin host (the plugin's own process)"
    if cmdline and cmdline[0].startswith("ray::"):
        title = cmdline[0].split()[0]
        if "WarmStage" in title:
            return "stage actor (supervises a plugin host)"
        if "mixpeek-ingest" in line or "IngestService" in line:
            return "ingestion service"
        if "HashActor" in title or "MapBatches" in title:
            return "baseline: Ray Data map_batches actor"
        return f"ray worker: {title}"
    for needle, label in (
        ("bench/ingest.py", "this benchmark (baseline driver, polling)"),
        ("execute_run", "dagster run worker"),
        ("spawn_main", "dagster run worker"),
        ("dagster-daemon", "dagster daemon"),
        ("dagster-webserver", "dagster webserver"),
        ("api grpc", "dagster code server (sensors)"),
        ("uvicorn", "API"),
        ("secantus", "metadata server"),
        ("gcs_server", "ray gcs"),
        ("raylet", "ray raylet"),
        ("dashboard", "ray dashboard / agents"),
        ("log_monitor", "ray dashboard / agents"),
        ("runtime_env", "ray dashboard / agents"),
    ):
        if needle in line:
            return label
    return line[:80] or proc.name()


class StackSampler(threading.Thread):
    """Every 0.5 s: the summed RSS of the watched process trees (its peak), the ingestion
    service's RSS, and the CPU time each process used since the last sample, under what it is
    now (a Ray worker changes its title with the task it runs)."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.roots = [psutil.Process(p) for p in pids if psutil.pid_exists(p)]
        self.peak_mb = 0.0
        self.service_peak_mb = 0.0
        self.stop = threading.Event()
        self.last_cpu: dict[int, float] = {}
        self.used: list[tuple[float, str, float]] = []  # (time, label, cpu seconds since last)

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            now = time.time()
            seen: set[int] = set()
            for root in self.roots:
                try:
                    procs = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                for proc in procs:
                    if proc.pid in seen:
                        continue
                    seen.add(proc.pid)
                    try:
                        rss = proc.memory_info().rss
                        total += rss
                        times = proc.cpu_times()
                        cpu = times.user + times.system
                        delta = cpu - self.last_cpu.get(proc.pid, 0.0)
                        self.last_cpu[proc.pid] = cpu
                        label = process_label(proc)
                        if label == "ingestion service":
                            self.service_peak_mb = max(self.service_peak_mb, rss / 2**20)
                        self.used.append((now, label, delta))
                    except psutil.Error:
                        continue
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self.stop.wait(0.5)

    def cpu_between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each kind of process used between ``start`` and ``end``."""
        used: dict[str, float] = {}
        for moment, label, seconds in self.used:
            if start < moment <= end + 0.5:
                used[label] = used.get(label, 0.0) + seconds
        return dict(sorted(used.items(), key=lambda item: -item[1]))


def cpu_figures(cpu: dict[str, float], rows: int, window: float) -> dict[str, Any]:
    plugin = cpu.get("plugin host (the plugin's own process)", 0.0)
    total = sum(cpu.values())
    return {
        "window_s": round(window, 1),
        "cpu_s": {k: round(v, 2) for k, v in cpu.items() if v >= 0.05},
        "cpu_ms_per_row": {k: round(1000 * v / rows, 3) for k, v in cpu.items() if v >= 0.05},
        "total_cpu_ms_per_row": round(1000 * total / rows, 3),
        "platform_cpu_ms_per_row": round(1000 * (total - plugin) / rows, 3),
        "cores_busy": round(total / window, 2) if window else 0.0,
    }


# -- the platform's path ------------------------------------------------------------------------


class Bench:
    def __init__(self, client: PlatformClient, platform: Platform, sampler: StackSampler) -> None:
        self.client = client
        self.platform = platform
        self.sampler = sampler
        self.headers = {"X-Namespace": client.namespace or ""}

    def setup(self, plugin: str, work: Path) -> tuple[dict[str, Any], str]:
        source, name = PLUGINS[plugin]
        archive = work / f"{name}.zip"
        build_archive(source, archive)
        self.client.publish_archive(archive, name=name, version="1.0.0")
        bucket = self.client.request(
            "POST",
            "/buckets",
            headers=self.headers,
            json={
                "bucket_name": f"corpus-{plugin}",
                "bucket_schema": {"properties": {"content": {"type": "text"}}},
            },
        )
        collection = self.client.request(
            "POST",
            "/collections",
            headers=self.headers,
            json={
                "collection_name": f"corpus-{plugin}",
                "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
                "feature_extractor": {"feature_extractor_name": name, "version": "1.0.0"},
            },
        )
        return bucket, collection["collection_id"]

    def count(self, collection_id: str) -> int:
        counts = self.client.request(
            "GET", f"/collections/{collection_id}/documents/count", headers=self.headers
        )
        return int(counts["completed"] + counts["failed"])

    def settle(self, collection_id: str, timeout: float = 120) -> None:
        """Wait until earlier batches are recorded in Dagster (their runs finished, or the
        sensor reported those processed without a run): that is not this measurement's."""
        deadline = time.monotonic() + timeout
        for batch in self.platform.planner.of_collection(collection_id):
            while time.monotonic() < deadline:
                now = self.platform.planner.get(batch["batch_id"]) or {}
                if now.get("ahead") and now.get("reported_at"):
                    break
                run_id = now.get("run_id")
                if run_id and self.platform.dagster.run_status(run_id) in FINISHED:
                    break
                time.sleep(0.5)

    def drop_and_wait(
        self, bucket: dict[str, Any], collection_id: str, texts: list[str], *, timeout: float
    ) -> dict[str, Any]:
        """Drop ``texts`` as files under the bucket's prefix; wait for their documents; the
        figures of the batches that processed them."""
        self.settle(collection_id)
        before = {b["batch_id"] for b in self.platform.planner.of_collection(collection_id)}
        done_before = self.count(collection_id)
        prefix = landing_prefix(bucket, bucket["bucket_id"])
        start = time.time()
        for i, text in enumerate(texts):
            key = f"{prefix}{len(before):03d}/{i // 1000:04d}/{i:06d}.txt"
            self.platform.objects.put_bytes(key, text.encode())
        dropped = time.time() - start
        deadline = time.monotonic() + timeout
        while True:  # the batches' reports, not a count of documents (it would cost the
            # metadata server a scan of the collection every second, inside the window measured)
            batches = list(
                self.platform.planner.batches.find(
                    {"collection_id": collection_id, "batch_id": {"$nin": sorted(before)}},
                    {"_id": 0, "object_ids": 0},
                )
            )
            done = sum(int((b.get("stats") or {}).get("rows", 0)) for b in batches)
            print(f"  {time.time() - start:7.1f}s  rows {done}/{len(texts)}", end="\r")
            if done >= len(texts):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} rows after {timeout}s")
            time.sleep(1.0)
        print()
        end_to_end = time.time() - start
        stored = self.count(collection_id) - done_before
        if stored < len(texts):
            raise RuntimeError(f"{stored} documents stored of {len(texts)}")
        stats = [b.get("stats") or {} for b in batches if b.get("stats")]
        first = min(s["processing_started_at"] for s in stats)
        last = max(s["processing_finished_at"] for s in stats)
        rows = sum(s.get("rows", 0) for s in stats)
        return {
            "rows": rows,
            "runs": len(batches),
            "failed_rows": sum(s.get("failed", 0) for s in stats),
            "processing_rows_per_s": round(rows / (last - first), 1),
            "end_to_end_s": round(end_to_end, 1),
            "drop_files_s": round(dropped, 1),
            "first_block_s": round(min(s["first_block_s"] for s in stats), 2),
            "per_run": [
                {
                    k: round(s.get(k, 0), 2)
                    for k in (
                        "rows",
                        "processing_seconds",
                        "first_block_s",
                        "write_seconds",
                        "actors_started",
                    )
                }
                for s in stats
            ],
            "cpu": cpu_figures(self.sampler.cpu_between(first, last), rows, last - first),
            "_window": (first, last),
        }

    def freshness(self, bucket: dict[str, Any], collection_id: str, n: int) -> dict[str, Any]:
        """``n`` single objects through the API, one at a time: upload -> document completed."""
        latencies = []
        for i in range(n):
            started = time.perf_counter()
            obj = self.client.request(
                "POST",
                f"/buckets/{bucket['bucket_id']}/objects",
                headers=self.headers,
                json={"blobs": [{"property": "content", "type": "text",
                                 "data": f"a fresh object {i}: the river near the stone"}]},
            )  # fmt: skip
            path = f"/buckets/{bucket['bucket_id']}/objects/{obj['object_id']}/lineage"
            while True:
                documents = self.client.request("GET", path, headers=self.headers)["documents"]
                if any(d["collection_id"] == collection_id and d["status"] == "completed"
                       for d in documents):  # fmt: skip
                    break
                if time.perf_counter() - started > 120:
                    raise RuntimeError(f"object {obj['object_id']} not ingested after 120 s")
                time.sleep(0.1)
            latencies.append(time.perf_counter() - started)
            time.sleep(1.0)  # the next one is a batch of its own
        ordered = sorted(latencies)
        return {
            "objects": n,
            "p50_s": round(statistics.median(ordered), 2),
            "p90_s": round(ordered[min(n - 1, int(n * 0.9))], 2),
            "max_s": round(ordered[-1], 2),
        }


# -- the hand-written baseline ------------------------------------------------------------------


def handwritten_baseline(
    texts: list[str], address: str, mongo_uri: str, vectors_dir: Path, sampler: StackSampler
) -> dict[str, Any]:
    """Ray Data over the rows -> ``map_batches`` on an actor pool (the same hash) -> vectors
    upserted into LanceDB, documents bulk-inserted into the same metadata server."""
    import importlib.util
    from datetime import UTC, datetime

    import lancedb
    import pyarrow as pa
    import ray
    from pymongo import MongoClient
    from ray import cloudpickle

    spec = importlib.util.spec_from_file_location(
        "bench_hashing", PLUGINS["null"][0] / "processors" / "hashing.py"
    )
    assert spec is not None and spec.loader is not None
    hashing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hashing)
    sys.modules["bench_hashing"] = hashing
    cloudpickle.register_pickle_by_value(hashing)

    class HashActor:
        def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
            batch["vector"] = hashing.hash_vectors(list(batch["text"]))
            return batch

    ray.init(address=address, namespace="bench-baseline", log_to_driver=False)
    documents = MongoClient(mongo_uri).bench_baseline.documents
    documents.drop()
    documents.create_index("document_id", unique=True)
    db = lancedb.connect(str(vectors_dir))
    rows = [{"document_id": f"doc_{i}", "object_id": f"obj_{i}", "text": t}
            for i, t in enumerate(texts)]  # fmt: skip
    try:
        started = time.time()
        dataset = ray.data.from_items(rows, override_num_blocks=max(1, len(rows) // 256))
        dataset = dataset.map_batches(HashActor, concurrency=1, batch_size=256, num_cpus=1)
        table = None
        # numpy: Ray Data turns the 2-d vector column into its own tensor extension type
        for batch in dataset.iter_batches(batch_size=1024, batch_format="numpy"):
            ids, object_ids = batch["document_id"].tolist(), batch["object_id"].tolist()
            flat = pa.array(batch["vector"].astype("float32").reshape(-1))
            vectors = pa.table({
                "id": ids,
                "vector": pa.FixedSizeListArray.from_arrays(flat, 384),
                "object_id": object_ids,
            })  # fmt: skip
            if table is None:
                table = db.create_table("baseline", data=vectors, mode="overwrite")
            else:
                table.merge_insert(
                    "id"
                ).when_matched_update_all().when_not_matched_insert_all().execute(vectors)
            stamp = datetime.now(UTC)
            documents.insert_many([
                {"document_id": d, "object_id": o, "collection_id": "baseline", "status": "completed",
                 "source_blobs": [{"blob_id": o, "property": "content", "type": "text"}],
                 "outputs": {}, "updated_at": stamp}
                for d, o in zip(ids, object_ids, strict=True)
            ])  # fmt: skip
        finished = time.time()
    finally:
        ray.shutdown()  # before the stack goes: a driver left connected dies with its GCS
    cpu = sampler.cpu_between(started, finished)
    return {
        "rows": len(rows),
        "rows_per_s": round(len(rows) / (finished - started), 1),
        "cpu": cpu_figures(cpu, len(rows), finished - started),
    }


def judge(results: dict[str, Any], plugins: list[str]) -> dict[str, bool]:
    """The issue's targets against this run's figures (ratios are added to ``results``)."""
    targets: dict[str, bool] = {}
    if "null" in results:
        null, base = results["null"], results["baseline"]
        results["null_vs_baseline"] = round(null["processing_rows_per_s"] / base["rows_per_s"], 3)
        targets["null >= 0.7x baseline"] = results["null_vs_baseline"] >= 0.7
        targets["null platform CPU <= 1 ms/row"] = null["cpu"]["platform_cpu_ms_per_row"] <= 1.0
    if "minilm" in results:
        results["minilm_vs_raw"] = round(
            results["minilm"]["processing_rows_per_s"] / results["raw_encode_rows_per_s"], 3
        )
        targets["minilm >= 0.6x raw encode"] = results["minilm_vs_raw"] >= 0.6
    for plugin in plugins:
        targets[f"{plugin}: first block (warm) <= 2 s"] = results[plugin]["first_block_s"] <= 2.0
        if "freshness" in results[plugin]:
            fresh = results[plugin]["freshness"]["p50_s"]
            targets[f"{plugin}: freshness p50 <= 5 s"] = fresh <= 5.0
        targets[f"{plugin}: no failed rows"] = results[plugin]["failed_rows"] == 0
    return targets


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--plugins", default="null,minilm")
    parser.add_argument("--freshness", type=int, default=20)
    parser.add_argument("--nodes", type=int, choices=(1, 2), default=1)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()
    plugins = [p for p in args.plugins.split(",") if p]
    work = Path(tempfile.mkdtemp(prefix="mixpeek-bench-ingest-"))
    texts = corpus(args.objects)
    results: dict[str, Any] = {"benchmark": "ingest", "objects": args.objects, "nodes": args.nodes}
    if "minilm" in plugins:
        print(f"raw model over {min(len(texts), 5000)} texts ...")
        results["raw_encode_rows_per_s"] = round(raw_model_rows_per_s(texts, work), 1)
        print(f"  raw encode: {results['raw_encode_rows_per_s']} rows/s", flush=True)
    settings = load_settings(
        data_dir=work / "data",
        api_port=free_port(),
        dagster_port=free_port(),
        serve_port=free_port(),
        ray_num_cpus=4,
    )
    stack = Stack(settings, report=lambda line: print(f"  {line}"))
    print("starting a stack ...")
    state = stack.up(timeout_s=300)
    node = None
    try:
        resolved = stack.settings_for(state)
        watched = [p.pid for p in state.processes.values()] + [os.getpid()]
        if args.nodes == 2:
            from tests.multinode import start_worker_node

            env = {**os.environ, **state.env, "RAY_AUTH_MODE": "disabled"}
            node = start_worker_node(
                resolved.ray_address or "", data_dir=resolved.data_dir, env=env
            )
            watched.append(node.process.pid)
            print("  worker node: joined, offers `batch`, cannot see the data dir")
        platform = Platform(resolved)
        platform.ensure_indexes()
        _, key = platform.accounts.create_organization("bench")
        client = PlatformClient(f"{resolved.api_url}/v1", key)
        client.namespace = client.create_namespace("bench")["namespace_id"]
        sampler = StackSampler(watched)
        sampler.start()
        bench = Bench(client, platform, sampler)
        for plugin in plugins:
            print(f"== {plugin}")
            bucket, collection_id = bench.setup(plugin, work)
            cold = bench.drop_and_wait(
                bucket, collection_id, corpus(WARM_OBJECTS, "warm"), timeout=args.timeout
            )
            print(f"  warm-up: first block (cold actors) {cold['first_block_s']} s")
            figures = bench.drop_and_wait(bucket, collection_id, texts, timeout=args.timeout)
            figures.pop("_window")
            figures["cold_first_block_s"] = cold["first_block_s"]
            if args.freshness:
                figures["freshness"] = bench.freshness(bucket, collection_id, args.freshness)
            results[plugin] = figures
            print(f"  {plugin}: {json.dumps(figures)}", flush=True)
        if "null" in plugins:
            print("== hand-written baseline (Ray Data -> actor pool -> LanceDB + bulk inserts)")
            results["baseline"] = handwritten_baseline(
                texts, resolved.ray_address or "", resolved.mongo_uri or "", work / "baseline",
                sampler,
            )  # fmt: skip
            print(f"  baseline: {json.dumps(results['baseline'])}", flush=True)
        sampler.stop.set()
        results["peak_ingestion_service_rss_mb"] = round(sampler.service_peak_mb, 1)
        results["peak_stack_rss_mb"] = round(sampler.peak_mb, 1)
        results["targets"] = targets = judge(results, plugins)
        print(json.dumps(results, indent=2))
        passed = all(targets.values())
    finally:
        if node is not None:
            node.stop()
        stack.down()
        shutil.rmtree(work, ignore_errors=True)

    return 0 if passed else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
