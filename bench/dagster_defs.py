"""Benchmark: the Dagster code location with many collections (issue 16).

Starts a whole local stack (the same code as ``mixpeek up``) on free ports, creates
``--namespaces`` namespaces of one organisation, publishes the null plugin in each, and
``--collections`` buckets and collections spread over them, through the API, while the stack
runs (the ``platform_state_sensor`` reloads the code location as they come). Then:

* **settle**: from the last collection created to the webserver showing every asset;
* **load**: the code location reloaded ``--reloads`` times through the webserver's GraphQL
  (a fresh process reads the platform's state, builds the definitions and hands their snapshot
  to the webserver): wall time of each, median and max;
* **in process**: reading the state and building the definitions, timed here;
* **sensor ticks**: durations of every tick of ``bucket_objects_sensor`` (interval 4 s; a tick
  waits up to 3.5 s for objects by design) and of ``platform_state_sensor`` (interval 5 s),
  while ``--uploads`` objects go to 20 of the buckets.

Targets: the location loads in under 10 s with 1,000 collections; each sensor's ticks stay
under its interval.

Run: ``python bench/dagster_defs.py [--collections 1000] [--namespaces 10] [--reloads 3]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixpeek_orchestration.client import PlatformClient  # noqa: E402
from mixpeek_orchestration.compute.dagster import DagsterWebserver  # noqa: E402
from mixpeek_orchestration.platform import Platform  # noqa: E402
from mixpeek_orchestration.plugins.archive import build_archive  # noqa: E402
from mixpeek_orchestration.settings import load_settings  # noqa: E402
from mixpeek_orchestration.stack import Stack  # noqa: E402
from mixpeek_orchestration.stack.processes import free_port  # noqa: E402

NULL_PLUGIN = REPO / "bench" / "plugins" / "null_embedder"
SENSORS = {"bucket_objects_sensor": 4.0, "platform_state_sensor": 5.0}
PHASES = """
import time
t0 = time.perf_counter()
import dagster
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
import plugin_assets.graph, plugin_assets.resources, plugin_assets.state
t1 = time.perf_counter()
import os
control = plugin_assets.resources._control_plane(os.environ["MIXPEEK_DATA_DIR"], os.environ["MIXPEEK_MONGO_URI"])
state = plugin_assets.state.read_state(control)
t2 = time.perf_counter()
repo = plugin_assets.graph.build_definitions(state).get_repository_def()
repo.load_all_definitions()
t3 = time.perf_counter()
body = serialize_value(RepositorySnap.from_def(repo, defer_snapshots=True))
t4 = time.perf_counter()
print(f"imports {t1 - t0:.1f} s, state read {t2 - t1:.1f} s, definitions built {t3 - t2:.1f} s, "
      f"snapshot {t4 - t3:.1f} s ({len(body) / 1e6:.1f} MB)")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--keep", metavar="DIR", help="use this data dir and leave the stack up")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mixpeek-bench-defs-") as tmp:
        data_dir = Path(args.keep or tmp)
        settings = load_settings(
            data_dir=data_dir, api_port=free_port(), dagster_port=free_port(),
            serve_port=free_port(), ray_num_cpus=4,
        )  # fmt: skip
        stack = Stack(settings, report=lambda line: print(f"  [stack] {line}"))
        state = stack.up(timeout_s=300)
        try:
            return run(stack.settings_for(state), data_dir, args)
        finally:
            if not args.keep:
                stack.down()


def run(settings: Any, data_dir: Path, args: argparse.Namespace) -> int:
    platform = Platform(settings)
    dagster = DagsterWebserver(settings.dagster_ui_url, timeout_s=300)
    _, api_key = platform.accounts.create_organization("bench")
    base = f"{settings.api_url}/v1"
    archive = data_dir / "null_embedder.zip"
    build_archive(NULL_PLUGIN, archive)
    clients = []
    for n in range(args.namespaces):
        client = PlatformClient(base, api_key)
        client.namespace = client.create_namespace(f"ns{n:02d}")["namespace_id"]
        client.http.headers["X-Namespace"] = client.namespace
        client.publish_archive(archive, name="null_embedder", version="1.0.0")
        clients.append(client)

    def create(i: int) -> tuple[str, str]:
        client = clients[i % len(clients)]
        bucket = client.request(
            "POST", "/buckets",
            json={"bucket_name": f"b{i:04d}", "bucket_schema": {"properties": {"content": {"type": "text"}}}},
        )  # fmt: skip
        collection = client.request(
            "POST", "/collections",
            json={"collection_name": f"c{i:04d}", "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
                  "feature_extractor": {"feature_extractor_name": "null_embedder", "version": "1.0.0"}},
        )  # fmt: skip
        return str(bucket["bucket_id"]), str(collection["collection_id"])

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(create, range(args.collections)))
    created = time.monotonic()
    print(f"created {args.collections} buckets and collections in {created - started:.0f} s")
    expected = 2 * args.collections + args.namespaces + 1  # + ray_data_smoke
    while (shown := len(dagster.asset_keys())) < expected:
        if time.monotonic() - created > 600:
            print(f"FAIL: the webserver shows {shown} of {expected} assets after 600 s")
            return 1
        time.sleep(1)
    settle = time.monotonic() - created
    print(f"settle: every asset shown {settle:.1f} s after the last collection was created")

    loads = []
    for _ in range(args.reloads):
        t0 = time.monotonic()
        dagster.reload_location()
        loads.append(time.monotonic() - t0)
    assert len(dagster.asset_keys()) == expected
    print(
        f"load: code location reloaded in {statistics.median(loads):.1f} s median, "
        f"{max(loads):.1f} s max ({', '.join(f'{x:.1f}' for x in loads)})"
    )

    # where a load's time goes, in a fresh process as the code server's would be
    phases = subprocess.run(
        [sys.executable, "-c", PHASES], capture_output=True, text=True, check=True,
        env={**os.environ, "MIXPEEK_DATA_DIR": str(settings.data_dir),
             "MIXPEEK_MONGO_URI": settings.mongo_uri or "", "PYTHONPATH": str(REPO)},
    ).stdout.strip()  # fmt: skip
    print(f"in a fresh process: {phases}")

    # the sensors' ticks while objects arrive in 20 of the buckets (of the first namespace),
    # about 10 a second, and for 30 s after; those collections are warmed up first (an object
    # each, its plugin host started), as collections in use are
    active = [made[i * len(clients)] for i in range(20)]

    def upload(i: int) -> None:
        clients[0].request(
            "POST", f"/buckets/{active[i % len(active)][0]}/objects",
            json={"blobs": [{"property": "content", "type": "text", "data": f"object {i}"}]},
        )  # fmt: skip

    def ingested(expected: int) -> bool:
        return all(
            clients[0].request("GET", f"/collections/{c}/documents/count")["completed"] >= expected
            for _, c in active
        )

    for i in range(len(active)):
        upload(i)
    deadline = time.monotonic() + 300
    while not ingested(1):
        assert time.monotonic() < deadline, "the 20 collections were not warmed up in 300 s"
        time.sleep(2)
    since = time.time()
    for i in range(args.uploads):
        upload(i)
        time.sleep(0.1)
    time.sleep(30)
    per_collection = 1 + args.uploads // len(active)
    print(
        f"ingested: {ingested(per_collection)} ({args.uploads} objects in {len(active)} collections)"
    )
    ok = max(loads) < 10
    for sensor, interval in SENSORS.items():
        ticks = [
            t["endTimestamp"] - t["timestamp"]
            for t in dagster.sensor_ticks(sensor, after=since)
            if t["endTimestamp"]
        ]
        if not ticks:
            print(f"{sensor}: no finished tick")
            ok = False
            continue
        worst = max(ticks)
        ok &= worst < interval
        print(
            f"{sensor}: {len(ticks)} ticks, {statistics.median(ticks):.2f} s median, "
            f"{worst:.2f} s max (interval {interval:.0f} s)"
        )
    print("targets met" if ok else "FAIL: a target was missed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
