"""Benchmark: ingestion of N text objects end to end vs the raw model on the same texts.

Starts a whole local stack (the same code as ``mixpeek up``) on free ports, publishes the seed
example (``examples/plugins/my_extractor``, MiniLM), creates a bucket and a collection on it,
then drops N text files under the bucket's storage prefix and waits until every document is
stored. Nothing is launched by hand: the sensor registers the files, plans batches, and Dagster
runs the Ray Data ingestion.

Figures:

* raw model: ``SentenceTransformer.encode`` of the same texts (batch 64), in a fresh process,
  model loaded before timing;
* processing phase: rows / wall time from the first Ray Data job's start to the last one's end
  (actor start and model loading included);
* end to end: from the first file dropped to the last document stored;
* peak memory: the largest RSS of one ingestion driver (the Dagster run, streaming results to
  the stores), and the peak of the whole stack's processes summed, sampled every 0.5 s;
* CPU breakdown: the CPU seconds each kind of stack process (model actor, Ray Data tasks, the
  run worker driving the job and writing, metadata server, Dagster, Ray services) used during
  the processing phase, and its share of the machine's cores.

Target: processing phase >= 0.8 x raw model throughput; memory flat in N (compare 5,000 and
50,000 with ``--objects``).

Run: ``python bench/ingest.py [--objects 5000]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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

WORDS = [
    "river",
    "stone",
    "light",
    "garden",
    "market",
    "engine",
    "cloud",
    "paper",
    "signal",
    "forest",
    "window",
    "music",
]

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


def corpus(n: int) -> list[str]:
    return [
        f"document {i}: the {WORDS[i % 12]} near the {WORDS[(i * 7) % 12]} "
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


def process_label(proc: psutil.Process) -> str:
    """What a stack process is, for the CPU breakdown."""
    cmdline = proc.cmdline()
    line = " ".join(cmdline)
    if cmdline and cmdline[0].startswith("ray::"):
        title = cmdline[0].split()[0]
        return "ray actor: model (WarmStage)" if "WarmStage" in title else f"ray worker: {title}"
    for needle, label in (
        ("execute_run", "dagster run worker (ingestion driver)"),
        ("spawn_main", "dagster run worker (ingestion driver)"),
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
    """Every 0.5 s: the summed RSS of the stack's process trees (its peak), and the CPU time
    each process used since the last sample, under what it is now (a Ray worker changes its
    title with the task it runs), so the CPU each part used over a window can be told apart."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.roots = [psutil.Process(p) for p in pids if psutil.pid_exists(p)]
        self.peak_mb = 0.0
        self.stop = threading.Event()
        self.last_cpu: dict[int, float] = {}
        self.used: list[tuple[float, str, float]] = []  # (time, label, cpu seconds since last)

    def run(self) -> None:
        while not self.stop.is_set():
            total = 0
            now = time.time()
            for root in self.roots:
                try:
                    procs = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                for proc in procs:
                    try:
                        total += proc.memory_info().rss
                        times = proc.cpu_times()
                        cpu = times.user + times.system
                        delta = cpu - self.last_cpu.get(proc.pid, 0.0)
                        self.last_cpu[proc.pid] = cpu
                        self.used.append((now, process_label(proc), delta))
                    except psutil.Error:
                        continue
            self.peak_mb = max(self.peak_mb, total / 2**20)
            self.stop.wait(0.5)

    def cpu_between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each kind of process used between ``start`` and ``end``."""
        used: dict[str, float] = {}
        for moment, label, seconds in self.used:
            if start < moment <= end:
                used[label] = used.get(label, 0.0) + seconds
        return dict(sorted(used.items(), key=lambda item: -item[1]))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mixpeek-bench-ingest-"))
    texts = corpus(args.objects)
    print(f"raw model over {len(texts)} texts ...")
    raw = raw_model_rows_per_s(texts, work)
    print(f"  {raw:.1f} rows/s")

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
    results: dict[str, Any] = {"benchmark": "ingest", "objects": args.objects}
    try:
        resolved = stack.settings_for(state)
        platform = Platform(resolved)
        platform.ensure_indexes()
        _, key = platform.accounts.create_organization("bench")
        client = PlatformClient(f"{resolved.api_url}/v1", key)
        namespace = client.create_namespace("bench")["namespace_id"]
        client.namespace = namespace
        headers = {"X-Namespace": namespace}
        archive = work / "my_extractor.zip"
        build_archive(REPO / "examples" / "plugins" / "my_extractor", archive)
        client.publish_archive(archive, name="my_extractor", version="1.0.0")
        bucket = client.request(
            "POST",
            "/buckets",
            headers=headers,
            json={
                "bucket_name": "corpus",
                "bucket_schema": {"properties": {"content": {"type": "text"}}},
            },
        )
        collection = client.request(
            "POST",
            "/collections",
            headers=headers,
            json={
                "collection_name": "corpus",
                "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
                "feature_extractor": {"feature_extractor_name": "my_extractor", "version": "1.0.0"},
            },
        )
        collection_id = collection["collection_id"]
        sampler = StackSampler([p.pid for p in state.processes.values()])
        sampler.start()
        prefix = landing_prefix(bucket, bucket["bucket_id"])
        print(f"dropping {len(texts)} files under {prefix} ...")
        start = time.time()
        for i, text in enumerate(texts):
            platform.objects.put_bytes(f"{prefix}{i // 1000:04d}/{i:06d}.txt", text.encode())
        dropped = time.time() - start
        deadline = time.monotonic() + args.timeout
        while True:
            counts = client.request(
                "GET", f"/collections/{collection_id}/documents/count", headers=headers
            )
            done = counts["completed"] + counts["failed"]
            print(f"  {time.time() - start:7.1f}s  documents {done}/{len(texts)}", end="\r")
            if done >= len(texts):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} documents after {args.timeout}s")
            time.sleep(2)
        end_to_end = time.time() - start
        sampler.stop.set()
        batches = platform.planner.of_collection(collection_id)
        stats = [b.get("stats") or {} for b in batches]
        first = min(s["processing_started_at"] for s in stats if s)
        last = max(s["processing_finished_at"] for s in stats if s)
        processing = sum(s.get("rows", 0) for s in stats) / (last - first)
        # once a run's actors are up (plugin opened, model loaded, first block out)
        steady = sum(s.get("rows", 0) for s in stats) / sum(
            s["processing_seconds"] - s["first_block_s"] for s in stats if s
        )
        window = last - first
        cpu = sampler.cpu_between(first, last)
        results.update(
            raw_model_rows_per_s=round(raw, 1),
            processing_rows_per_s=round(processing, 1),
            processing_vs_raw=round(processing / raw, 3),
            steady_rows_per_s=round(steady, 1),
            steady_vs_raw=round(steady / raw, 3),
            end_to_end_rows_per_s=round(len(texts) / end_to_end, 1),
            end_to_end_s=round(end_to_end, 1),
            drop_files_s=round(dropped, 1),
            runs=len(batches),
            failed_rows=counts["failed"],
            per_run=[
                {
                    k: round(s.get(k, 0), 1)
                    for k in ("rows", "processing_seconds", "first_block_s", "write_seconds")
                }
                for s in stats
            ],
            peak_driver_rss_mb=round(max(s.get("peak_rss_mb", 0) for s in stats), 1),
            peak_stack_rss_mb=round(sampler.peak_mb, 1),
            # where the machine's CPU went during processing (CPU seconds, and the share of
            # the cores the window offered)
            processing_window_s=round(window, 1),
            processing_cpu_s={k: round(v, 1) for k, v in cpu.items() if v >= 0.05},
            processing_cpu_share={
                k: round(v / (window * (os.cpu_count() or 1)), 3)
                for k, v in cpu.items()
                if v >= 0.05
            },
        )
    finally:
        stack.down()
        shutil.rmtree(work, ignore_errors=True)

    print()
    for key, value in results.items():
        print(f"{key:<26}{value}")
    print(json.dumps(results))
    return 0 if results["processing_vs_raw"] >= 0.8 and results["failed_rows"] == 0 else 1


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
