"""`mixpeek plugin init / scan / validate / test` on real plugins, as a plugin author runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mixpeek_orchestration.cli.main import app

REPO = Path(__file__).resolve().parents[3]
SEED = REPO / "examples" / "plugins" / "my_extractor"
EXAMPLES = sorted(
    p for p in (REPO / "examples" / "plugins").iterdir() if (p / "manifest.py").exists()
)
runner = CliRunner()


def mixpeek(
    *args: str, cwd: Path | None = None, timeout: int = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real command line in its own process (as an author would)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXPEEK_")}
    return subprocess.run(
        [sys.executable, "-m", "mixpeek_orchestration.cli.main", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, check=False,
    )  # fmt: skip


def test_seed_plugin_passes_scan_validate_and_test() -> None:
    scan = runner.invoke(app, ["plugin", "scan", str(SEED), "--json"])
    assert scan.exit_code == 0, scan.output
    report = json.loads(scan.output)
    assert report["passed"] is True
    assert not [v for v in report["violations"] if v["severity"] == "error"]

    validate = runner.invoke(app, ["plugin", "validate", str(SEED), "--json"])
    assert validate.exit_code == 0, validate.output
    body = json.loads(validate.output)
    assert body["plugin_id"] == "my_extractor_1_0_0"
    assert body["feature_uris"] == ["mixpeek://my_extractor@1.0.0/my_extractor_embedding"]

    test = mixpeek("plugin", "test", "--json", cwd=SEED)
    assert test.returncode == 0, test.stdout + test.stderr
    outcome = json.loads(test.stdout)
    assert outcome["rows_failed"] == 0 and outcome["rows"] > 0
    assert outcome["realtime"]["problems"] == []


def test_init_then_test_works_out_of_the_box(tmp_path: Path) -> None:
    created = mixpeek("plugin", "init", "demo", cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    result = mixpeek("plugin", "test", cwd=tmp_path / "demo")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_init_image_template(tmp_path: Path) -> None:
    assert (
        runner.invoke(
            app, ["plugin", "init", "pics", "--category", "image", "--dir", str(tmp_path)]
        ).exit_code
        == 0
    )
    result = mixpeek("plugin", "test", "--json", cwd=tmp_path / "pics")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "example", [e for e in EXAMPLES if e.name != "my_extractor"], ids=lambda p: p.name
)
def test_every_example_validates(example: Path) -> None:
    result = runner.invoke(app, ["plugin", "validate", str(example), "--json"])
    assert result.exit_code == 0, result.output


def test_a_plugin_importing_subprocess_is_refused_with_details(tmp_path: Path) -> None:
    plugin = tmp_path / "evil"
    for name in ("manifest.py", "pipeline.py"):
        (plugin / name).parent.mkdir(parents=True, exist_ok=True)
        (plugin / name).write_text((SEED / name).read_text())
    (plugin / "processors").mkdir()
    (plugin / "processors" / "core.py").write_text(
        textwrap.dedent(
            """
            import subprocess
            from dataclasses import dataclass

            @dataclass
            class MyConfig:
                threshold: float = 0.5

            class MyProcessor:
                def __init__(self, config, progress_actor=None):
                    subprocess.run(["id"])
            """
        )
    )
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(plugin.rglob("*.py")):
            zf.write(path, path.relative_to(plugin).as_posix())
    result = runner.invoke(app, ["plugin", "scan", str(archive), "--json"])
    assert result.exit_code == 1
    violations = json.loads(result.output)["violations"]
    hit = next(v for v in violations if "subprocess" in v["message"])
    assert hit["file"] == "processors/core.py" and hit["line"] == 2 and hit["severity"] == "error"
    assert set(hit) >= {"file", "line", "column", "message", "severity"}


def test_hostile_archive_is_rejected_by_the_gate(tmp_path: Path) -> None:
    archive = tmp_path / "traversal.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("manifest.py", "x = 1\n")
        zf.writestr("../escape.py", "x = 1\n")
    result = runner.invoke(app, ["plugin", "scan", str(archive), "--json"])
    assert result.exit_code == 1
    assert any(v["rule"] == "path-traversal" for v in json.loads(result.output)["violations"])
    assert not (tmp_path.parent / "escape.py").exists()


def test_invalid_manifest_fails_validate_naming_the_key(tmp_path: Path) -> None:
    plugin = tmp_path / "bad"
    plugin.mkdir()
    for name in ("pipeline.py", "realtime.py"):
        (plugin / name).write_text((SEED / name).read_text())
    (plugin / "processors").mkdir()
    (plugin / "processors" / "core.py").write_text((SEED / "processors" / "core.py").read_text())
    (plugin / "manifest.py").write_text(
        (SEED / "manifest.py").read_text().replace('"embedding_dim"', '"embeding_dim"')
    )
    result = runner.invoke(app, ["plugin", "validate", str(plugin), "--json"])
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["stage"] == "manifest"
    assert any(
        "embeding_dim" in e["message"] or "embeding_dim" in e["field"] for e in body["errors"]
    )
