"""Importing the platform (or the Dagster code location) must stay cheap."""

from __future__ import annotations

import subprocess
import sys

CODE = """
import sys
import mixpeek_orchestration
import mixpeek_orchestration.platform, mixpeek_orchestration.api.app, mixpeek_orchestration.stack
import mixpeek_orchestration.cli.main
heavy = sorted(m for m in ("torch", "ray", "lancedb", "sentence_transformers") if m in sys.modules)
print(",".join(heavy))
"""


def test_import_does_not_pull_heavy_dependencies() -> None:
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_code_location_loads_without_ray_or_torch() -> None:
    code = "import sys, plugin_assets.definitions as d; print('ray' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
