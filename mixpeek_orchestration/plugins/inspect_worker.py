"""Imports a scanned plugin in a separate, short-lived process and describes it.

The API and the CLI never import uploaded plugin code in their own process: module-level code
could alter the host's globals even under the runtime guard. This worker does it instead, with a
scrubbed environment, the guard on, and a scratch directory, and prints one JSON object:
``{"passed", "stage", "errors", "description"}``.

Usage: ``python -m mixpeek_orchestration.plugins.inspect_worker PLUGIN_DIR [--dry-run]``
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from mixpeek_orchestration.errors import MixpeekError


def inspect_plugin(root: Path, *, dry_run: bool) -> dict[str, Any]:
    from mixpeek_orchestration.plugins.runtime import PluginRuntime
    from mixpeek_orchestration.sdk.context import PluginContext

    scratch = Path(tempfile.mkdtemp(prefix="mixpeek-inspect-"))
    outcome: dict[str, Any] = {
        "passed": False,
        "stage": "manifest",
        "errors": [],
        "description": None,
    }
    try:
        runtime = PluginRuntime.open(
            root, context=PluginContext(scratch_dir=scratch), dedicated_process=True
        )
    except MixpeekError as exc:
        outcome["errors"] = exc.fields.get("errors") or [
            {"field": exc.fields.get("file", "plugin"), "message": exc.detail}
        ]
        return outcome
    outcome["description"] = runtime.manifest.describe()
    outcome["description"]["has_realtime"] = runtime.plugin.realtime_module is not None
    if dry_run:
        outcome["stage"] = "pipeline"
        try:
            built = runtime.plugin.build_steps(None, context=runtime.context)
        except MixpeekError as exc:
            outcome["errors"] = exc.fields.get("errors") or [
                {"field": "pipeline.py", "message": exc.detail}
            ]
            return outcome
        outcome["description"]["steps"] = [
            {
                "name": s.name,
                "resource_type": s.resource_type.value,
                "condition": s.condition.value,
                "batch_size": s.batch_size,
                "concurrency": s.concurrency,
                "num_gpus": s.num_gpus,
            }
            for s in built.steps
        ]
    outcome["passed"] = True
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    try:
        outcome = inspect_plugin(args.root, dry_run=args.dry_run)
    except Exception as exc:  # report, never crash without an answer
        outcome = {
            "passed": False,
            "stage": "manifest",
            "errors": [{"field": "plugin", "message": f"{type(exc).__name__}: {exc}"}],
            "description": None,
        }
    sys.stdout.write("\n" + json.dumps(outcome, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
