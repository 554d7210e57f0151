"""The gate every plugin passes before it can be published or confirmed.

:func:`check_plugin_archive` runs, in order, and stops at the first stage that fails:

1. the archive gate (sizes counted from inflated bytes, paths, links, duplicates, native code...),
2. the static security scan of every ``.py`` file,
3. manifest validation (loading ``manifest.py`` under the runtime guard),
4. a dry run of ``build_steps`` with the default parameters.

The bytes scanned are the bytes loaded: everything happens on one private extraction whose
archive sha256 and per-file hashes are reported. Plugin code is executed only after it passed
the scan, and then only under the runtime guard.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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
from mixpeek_orchestration.sdk.manifest import PluginManifest

STAGES = ("archive", "scan", "manifest", "pipeline")


@dataclass
class PluginCheck:
    """Outcome of checking a plugin; ``passed`` when every stage succeeded."""

    stage: str = "archive"
    """The last stage reached (the failing one when ``passed`` is false)."""
    passed: bool = False
    violations: list[Violation] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    manifest: PluginManifest | None = None
    sha256: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    strict: bool = False

    @property
    def detail(self) -> str:
        if self.passed:
            return "Plugin passed every check"
        if self.stage == "archive":
            return "Archive rejected"
        if self.stage == "scan":
            return "Security scan failed"
        if self.stage == "manifest":
            return "Invalid manifest"
        return "Pipeline build failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "stage": self.stage,
            "detail": self.detail,
            "violations": [
                v.model_dump(exclude={"rule"}) | {"rule": v.rule} for v in self.violations
            ],
            "errors": self.errors,
            "sha256": self.sha256,
            "plugin_id": self.manifest.plugin_id if self.manifest else None,
            "feature_uris": self.manifest.feature_uris if self.manifest else [],
        }


def check_extracted(
    extracted: ExtractedArchive, *, policy: ScanPolicy, dry_run: bool = True
) -> PluginCheck:
    """Scan, validate and dry-run an already extracted archive."""
    check = PluginCheck(
        stage="scan", sha256=extracted.sha256, files=extracted.files, strict=policy.strict
    )
    report: ScanReport = scan_directory(extracted.root, policy=policy)
    check.violations = list(report.violations)
    if not report.passed:
        return check
    check.stage = "manifest"
    from mixpeek_orchestration.plugins.runtime import PluginRuntime

    scratch = Path(tempfile.mkdtemp(prefix="mixpeek-check-"))
    try:
        runtime = PluginRuntime.open(
            extracted.root,
            context=_context(scratch),
        )
    except MixpeekError as exc:
        # An invalid manifest, or a module that fails to import (reported against its file).
        check.errors = exc.fields.get("errors") or [
            {"field": exc.fields.get("file", "plugin"), "message": exc.detail}
        ]
        return check
    try:
        check.manifest = runtime.manifest
        if dry_run:
            check.stage = "pipeline"
            try:
                runtime.plugin.build_steps(None, context=runtime.context)
            except MixpeekError as exc:
                check.errors = exc.fields.get("errors") or [
                    {"field": "pipeline.py", "message": exc.detail}
                ]
                return check
    finally:
        runtime.plugin.unload()
    check.passed = True
    return check


def _context(scratch: Path) -> Any:
    from mixpeek_orchestration.sdk.context import PluginContext

    return PluginContext(scratch_dir=scratch)


def check_plugin_archive(
    source: Path | IO[bytes],
    *,
    policy: ScanPolicy | None = None,
    limits: ArchiveLimits | None = None,
    dry_run: bool = True,
) -> PluginCheck:
    """Run the whole gate on a zip archive (see the module docstring)."""
    policy = policy or ScanPolicy()
    try:
        with open_plugin_archive(source, limits=limits or ArchiveLimits()) as extracted:
            return check_extracted(extracted, policy=policy, dry_run=dry_run)
    except ArchiveRejected as exc:
        return PluginCheck(stage="archive", violations=list(exc.violations), strict=policy.strict)


@contextmanager
def archived(root: Path) -> Iterator[Path]:
    """Zip a plugin directory (deterministically) into a temporary file."""
    with tempfile.TemporaryDirectory(prefix="mixpeek-pack-") as tmp:
        target = Path(tmp) / f"{root.resolve().name}.zip"
        build_archive(root, target)
        yield target


def check_plugin_path(
    path: Path,
    *,
    policy: ScanPolicy | None = None,
    limits: ArchiveLimits | None = None,
    dry_run: bool = True,
) -> PluginCheck:
    """Check a plugin directory or zip exactly as an upload would be checked."""
    if path.is_dir():
        with archived(path) as archive:
            return check_plugin_archive(archive, policy=policy, limits=limits, dry_run=dry_run)
    if not path.is_file():
        raise MixpeekError(
            ErrorCode.NOT_FOUND, f"{path} is neither a plugin directory nor a zip archive"
        )
    return check_plugin_archive(path, policy=policy, limits=limits, dry_run=dry_run)
