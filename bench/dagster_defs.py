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
  waits up to 3.5 s for objects by design) and of ``platform_state_sensor`` (interval 2 s),
  while ``--uploads`` objects go to 20 of the buckets.

Targets: the location loads in under 10 s with 1,000 collections; each sensor's ticks stay
under its interval.

Run: ``python bench/dagster_defs.py [--collections 1000] [--namespaces 10] [--reloads 3]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixpeek_orchestration.client import PlatformClient  # noqa: E402
from mixpeek_orchestration.platform import Platform  # noqa: E402
from mixpeek_orchestration.plugins.archive import build_archive  # noqa: E402
from mixpeek_orchestration.settings import load_settings  # noqa: E402
from mixpeek_orchestration.stack import Stack  # noqa: E402
from mixpeek_orchestration.stack.processes import free_port  # noqa: E402

NULL_PLUGIN = REPO / "bench" / "plugins" / "null_embedder"
SENSORS = {"bucket_objects_sensor": 4.0, "platform_state_sensor": 2.0}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collections", type=int, default=1000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--uploads", type=int, default=200)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mixpeek-bench-defs-") as tmp:
        data_dir = Path(tmp)
        settings = load_settings(
            data_dir=data_dir, api_port=free_port(), dagster_port=free_port(),
            serve_port=free_port(), ray_num_cpus=4,
        )  # fmt: skip
        stack = Stack(settings, report=lambda line: print(f"  [stack] {line}"))
        state = stack.up(timeout_s=300)
        try:
            return run(stack.settings_for(state), data_dir, args)
        finally:
            stack.down()


def run(settings: Any, data_dir: Path, args: argparse.Namespace) -> int:
    platform = Platform(settings)
    dagster = platform.dagster
    _, api_key = platform.accounts.create_organization("bench")
    base = f"{settings.api_url}/v1"
    archive = data_dir / "null_embedder.zip"
    build_archive(NULL_PLUGIN, archive)
    clients = []
    for n in range(args.namespaces):
        client = PlatformClient(base, api_key)
        client.namespace = client.create_namespace(f"ns{n:02d}")["namespace_id"]
        client.publish_archive(archive, name="null_embedder", version="1.0.0")
        clients.append(client)

    def create(i: int) -> str:
        client = clients[i % len(clients)]
        bucket = client.request(
            "POST", "/buckets",
            json={"bucket_name": f"b{i:04d}", "bucket_schema": {"properties": {"content": {"type": "text"}}}},
        )  # fmt: skip
        client.request(
            "POST", "/collections",
            json={"collection_name": f"c{i:04d}", "source": {"type": "bucket", "bucket_ids": [bucket["bucket_id"]]},
                  "feature_extractor": {"feature_extractor_name": "null_embedder", "version": "1.0.0"}},
        )  # fmt: skip
        return str(bucket["bucket_id"])

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        buckets = list(pool.map(create, range(args.collections)))
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

    from plugin_assets.graph import build_definitions
    from plugin_assets.state import read_state

    t0 = time.perf_counter()
    snapshot = read_state(platform)
    t1 = time.perf_counter()
    defs = build_definitions(snapshot)
    defs.get_repository_def().load_all_definitions()
    t2 = time.perf_counter()
    print(f"in process: state read in {t1 - t0:.2f} s, definitions built in {t2 - t1:.2f} s")

    # the sensors' ticks while objects arrive in 20 of the buckets
    since = time.time()
    for i in range(args.uploads):
        clients[0].request(
            "POST", f"/buckets/{buckets[(i % 20) * len(clients)]}/objects",
            json={"blobs": [{"property": "content", "type": "text", "data": f"object {i}"}]},
        )  # fmt: skip
        time.sleep(0.05)
    time.sleep(20)
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
