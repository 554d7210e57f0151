"""Benchmark: confirming a ~500 MB plugin archive keeps the API process's RSS growth small.

Starts a real metadata server and a real API process (uvicorn) on free ports, uploads an archive
of about 470 MiB (the seed plugin plus an incompressible weights file) through the signed URL,
then confirms it while sampling the API process's RSS every 10 ms. Hashing, the archive gate and
the scan all stream, so the peak growth should stay far below the archive's size.

Target: peak RSS growth of the API process during confirm < 100 MB.

Run: ``python bench/confirm_rss.py [--size-mib 470]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixpeek_orchestration.client import PlatformClient  # noqa: E402
from mixpeek_orchestration.plugins.archive import build_archive  # noqa: E402
from mixpeek_orchestration.stack.processes import free_port, spawn, stop_process_tree  # noqa: E402
from mixpeek_orchestration.storage.metadata import MetadataStore  # noqa: E402
from mixpeek_orchestration.tenancy.accounts import Accounts  # noqa: E402

TARGET_MB = 100


def wait_for(check, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.2)
    raise RuntimeError("service did not come up")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=470)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mixpeek-bench-confirm-"))
    processes = []
    try:
        mongo_port, api_port = free_port(), free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("MIXPEEK_")}
        mongo = spawn(
            [
                sys.executable,
                "-m",
                "secantus",
                "--port",
                str(mongo_port),
                "--storage-path",
                str(work / "meta"),
            ],
            log_path=work / "mongo.log",
            env=env,
        )
        processes.append(mongo)
        uri = f"mongodb://127.0.0.1:{mongo_port}"
        metadata = MetadataStore(uri, "mixpeek", timeout_ms=1000)
        wait_for(lambda: metadata.ping())
        api_env = env | {
            "MIXPEEK_DATA_DIR": str(work / "data"),
            "MIXPEEK_MONGO_URI": uri,
            "MIXPEEK_API_PORT": str(api_port),
        }
        api = spawn(
            [sys.executable, "-m", "uvicorn", "mixpeek_orchestration.api.app:create_app", "--factory",
             "--port", str(api_port), "--log-level", "warning"],
            log_path=work / "api.log",
            env=api_env,
        )  # fmt: skip
        processes.append(api)
        base = f"http://127.0.0.1:{api_port}"
        wait_for(lambda: httpx.get(f"{base}/livez").status_code == 200)

        accounts = Accounts(metadata)
        accounts.ensure_indexes()
        _, key = accounts.create_organization("bench")
        client = PlatformClient(f"{base}/v1", key)
        namespace = client.create_namespace("bench")["namespace_id"]
        client.namespace = namespace

        plugin = work / "big_plugin"
        shutil.copytree(REPO / "examples" / "plugins" / "my_extractor", plugin)
        (plugin / "manifest.py").write_text(
            (plugin / "manifest.py").read_text().replace("my_extractor", "big_plugin")
        )
        with (plugin / "weights.safetensors").open("wb") as out:
            for _ in range(args.size_mib):
                out.write(os.urandom(1024 * 1024))
        archive = work / "big_plugin.zip"
        build_archive(plugin, archive)
        size_mb = archive.stat().st_size / 1e6

        ticket = client.create_upload("big_plugin", "1.0.0", size=archive.stat().st_size)
        started = time.perf_counter()
        client.put_archive(ticket["presigned_url"], archive)
        upload_s = time.perf_counter() - started

        process = psutil.Process(api.pid)
        baseline = process.memory_info().rss
        peak = baseline
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, process.memory_info().rss)
                time.sleep(0.01)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.perf_counter()
        result = client.confirm(ticket["upload_id"])
        confirm_s = time.perf_counter() - started
        done.set()
        sampler.join()
        growth_mb = (peak - baseline) / 1e6
        assert result["success"], result

        print(f"{'archive':<28}{size_mb:>10.1f} MB")
        print(f"{'upload (signed PUT)':<28}{upload_s:>10.2f} s  ({size_mb / upload_s:.0f} MB/s)")
        print(f"{'confirm':<28}{confirm_s:>10.2f} s  ({size_mb / confirm_s:.0f} MB/s)")
        print(f"{'API RSS before confirm':<28}{baseline / 1e6:>10.1f} MB")
        print(f"{'API RSS peak during confirm':<28}{peak / 1e6:>10.1f} MB")
        print(f"{'peak growth':<28}{growth_mb:>10.1f} MB   (target < {TARGET_MB} MB)")
        print(
            json.dumps(
                {
                    "benchmark": "confirm_rss",
                    "archive_mb": round(size_mb, 1),
                    "upload_s": round(upload_s, 2),
                    "confirm_s": round(confirm_s, 2),
                    "rss_baseline_mb": round(baseline / 1e6, 1),
                    "rss_peak_mb": round(peak / 1e6, 1),
                    "rss_growth_mb": round(growth_mb, 1),
                    "target_mb": TARGET_MB,
                }
            )
        )
        return 0 if growth_mb < TARGET_MB else 1
    finally:
        for proc in reversed(processes):
            stop_process_tree(
                proc.pid,
                psutil.Process(proc.pid).create_time() if psutil.pid_exists(proc.pid) else 0.0,
            )
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
