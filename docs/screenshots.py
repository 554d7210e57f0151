"""Screenshots of the Dagster UI of a running stack, for the docs, with headless Chromium.

Run after ``make demo`` (which leaves the stack up with the ``demo`` organisation's ``articles``
collection): ``python docs/screenshots.py [--data-dir ~/.mixpeek] [--asset KEY] [--out docs/img]``.
It writes ``dagster-lineage.png`` (the namespace's group: bucket and plugin version -> collection),
``dagster-collection.png`` (the collection's page: definition, latest materialisation's
metadata), ``dagster-partitions.png`` (its batches) and ``dagster-checks.png``.

Needs Chromium (Debian package ``chromium``).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mixpeek_orchestration.compute.dagster import CODE_LOCATION, DagsterWebserver  # noqa: E402
from mixpeek_orchestration.settings import load_settings  # noqa: E402
from mixpeek_orchestration.stack import Stack  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default=None, help="the stack's data dir")
    parser.add_argument("--asset", default="demo/demo/collections/articles")
    parser.add_argument("--out", default=str(REPO / "docs" / "img"))
    args = parser.parse_args()

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("Chromium is not installed (apt-get install chromium)", file=sys.stderr)
        return 1
    stack = Stack(load_settings(**({"data_dir": args.data_dir} if args.data_dir else {})))
    state = stack.state()
    if state is None:
        print("no stack is running for this data dir (run `make demo` first)", file=sys.stderr)
        return 1
    url = stack.settings_for(state).dagster_ui_url
    dagster = DagsterWebserver(url)
    node = dagster.asset_node(args.asset)
    if node is None:
        print(f"no asset {args.asset} in the code location at {url}", file=sys.stderr)
        return 1
    dagster.graphql("mutation { setNuxSeen }")  # the first-visit dialog would cover the page
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pages = {  # name: (page, window height: a group's graph is taller than an asset's page)
        "dagster-lineage.png": (
            f"locations/{CODE_LOCATION}/asset-groups/{node['group']}/lineage",
            1400,
        ),
        "dagster-collection.png": (f"assets/{args.asset}", 1000),
        "dagster-partitions.png": (f"assets/{args.asset}?view=partitions", 1000),
        "dagster-checks.png": (f"assets/{args.asset}?view=checks", 1000),
    }
    for name, (page, height) in pages.items():
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size=1600,{height}", "--virtual-time-budget=30000",
             f"--screenshot={out / name}", f"{url}/{page}"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        print(f"{out / name}: {url}/{page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
