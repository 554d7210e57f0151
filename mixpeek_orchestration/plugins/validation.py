"""The gate every plugin passes before it can be published or confirmed.

:func:`check_plugin_archive` runs, in order, and stops at the first stage that fails:

1. the archive gate (sizes counted from inflated bytes, paths, links, duplicates, native code...),
2. the static security scan of every ``.py`` file,
3. manifest validation (importing the plugin in a sandboxed plugin host, under the runtime guard),
4. a dry run of ``build_steps`` with the default parameters (same host).

The bytes scanned are the bytes loaded: everything happens on one private extraction whose
archive sha256 and per-file hashes are reported. Plugin code is executed only after it passed
the scan, and then only in the sandbox: the API process that checks an upload never imports it,
and what the manifest could read is only what its sandbox holds (its own files).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.plugins.archive import (
    ArchiveLimits,
    ArchiveRejected,
    ExtractedArchive,
    build_archive,
    open_plugin_archive,
)
from mixpeek_orchestration.plugins.policy import ScanPolicy
from mixpeek_orchestration.plugins.report import ScanReport, Violation
from mixpeek_orchestration.plugins.scanner import scan_directory
from mixpeek_orchestration.sandbox.config import SandboxConfig

STAGES = ("archive", "scan", "manifest", "pipeline")


@dataclass
class PluginCheck:
    """Outcome of checking a plugin; ``passed`` when every stage succeeded."""

    stage: str = "archive"
    """The last stage reached (the failing one when ``passed`` is false)."""
    passed: bool = False
    violations: list[Violation] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    description: dict[str, Any] | None = None
    """``PluginManifest.describe()`` of a plugin that got past the manifest stage."""
    sha256: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    size_bytes: int = 0
    strict: bool = False

    @property
    def detail(self) -> str:
        return (
            {
                "archive": "Archive rejected",
                "scan": "Security scan failed",
                "manifest": "Invalid manifest",
                "pipeline": "Pipeline build failed",
            }[self.stage]
            if not self.passed
            else "Plugin passed every check"
        )

    @property
    def plugin_id(self) -> str | None:
        return self.description["plugin_id"] if self.description else None

    @property
    def feature_uris(self) -> list[str]:
        return list(self.description["feature_uris"]) if self.description else []

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "stage": self.stage,
            "detail": self.detail,
            "violations": [v.model_dump() for v in self.violations],
            "errors": self.errors,
            "sha256": self.sha256,
            "plugin_id": self.plugin_id,
            "feature_uris": self.feature_uris,
        }


def check_extracted(
    extracted: ExtractedArchive,
    *,
    policy: ScanPolicy,
    dry_run: bool = True,
    sandbox: SandboxConfig | None = None,
) -> PluginCheck:
    """Scan, validate and dry-run an already extracted archive.

    The scan is pure AST analysis in this process; importing the plugin (manifest, dry run)
    happens in a short-lived sandboxed plugin host, under the runtime guard.
    """
    check = PluginCheck(
        stage="scan",
        sha256=extracted.sha256,
        files=extracted.files,
        size_bytes=extracted.compressed_bytes,
        strict=policy.strict,
    )
    report: ScanReport = scan_directory(extracted.root, policy=policy)
    check.violations = list(report.violations)
    if not report.passed:
        return check
    check.stage = "manifest"
    outcome = _inspect_in_sandbox(
        extracted.root, dry_run=dry_run, sandbox=sandbox or SandboxConfig()
    )
    check.stage = outcome["stage"]
    check.errors = outcome["errors"]
    check.description = outcome["description"]
    check.passed = bool(outcome["passed"])
    return check


def _inspect_in_sandbox(root: Path, *, dry_run: bool, sandbox: SandboxConfig) -> dict[str, Any]:
    from mixpeek_orchestration.plugins.session import PluginSession

    try:
        with PluginSession.start(root, sandbox=sandbox) as session:
            return session.inspect(dry_run=dry_run)
    except MixpeekError as exc:  # the host crashed, hung, or could not start
        return _failed(f"the plugin could not be inspected: {exc.detail}")


def _failed(message: str) -> dict[str, Any]:
    return {
        "passed": False,
        "stage": "manifest",
        "errors": [{"field": "plugin", "message": message}],
        "description": None,
    }


def check_plugin_archive(
    source: Path | BinaryIO,
    *,
    policy: ScanPolicy | None = None,
    limits: ArchiveLimits | None = None,
    dry_run: bool = True,
    sandbox: SandboxConfig | None = None,
) -> PluginCheck:
    """Run the whole gate on a zip archive (see the module docstring)."""
    policy = policy or ScanPolicy()
    try:
        with open_plugin_archive(source, limits=limits or ArchiveLimits()) as extracted:
            return check_extracted(extracted, policy=policy, dry_run=dry_run, sandbox=sandbox)
    except ArchiveRejected as exc:
        return PluginCheck(stage="archive", violations=list(exc.violations), strict=policy.strict)


@contextmanager
def as_archive(path: Path) -> Iterator[Path]:
    """A plugin directory zipped (deterministically) into a temporary file, or a zip as is."""
    if path.is_file():
        yield path
        return
    if not path.is_dir():
        raise MixpeekError(
            ErrorCode.NOT_FOUND, f"{path} is neither a plugin directory nor a zip archive"
        )
    with tempfile.TemporaryDirectory(prefix="mixpeek-pack-") as tmp:
        target = Path(tmp) / f"{path.resolve().name}.zip"
        build_archive(path, target)
        yield target


def check_plugin_path(
    path: Path,
    *,
    policy: ScanPolicy | None = None,
    limits: ArchiveLimits | None = None,
    dry_run: bool = True,
    sandbox: SandboxConfig | None = None,
) -> PluginCheck:
    """Check a plugin directory or zip exactly as an upload would be checked."""
    with as_archive(path) as archive:
        return check_plugin_archive(
            archive, policy=policy, limits=limits, dry_run=dry_run, sandbox=sandbox
        )
