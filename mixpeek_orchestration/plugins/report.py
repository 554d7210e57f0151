"""Violations found by the archive gate and the security scanner (SPEC §4 format)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning"]


class Violation(BaseModel):
    """One problem in a plugin: ``{"file", "line", "column", "message", "severity"}``.

    ``file`` is the path inside the plugin (``processors/core.py``), or the archive entry name
    for archive-level problems (``line`` and ``column`` are 0 there). ``rule`` is a stable
    identifier for tests and tooling; it is not part of the SPEC shape but harmless to clients.
    """

    file: str
    line: int = 0
    column: int = 0
    message: str
    severity: Severity = "error"
    rule: str = Field(default="", description="stable rule id, e.g. 'forbidden-import'")


class ScanReport(BaseModel):
    """The outcome of scanning a plugin: deployable only without errors (and, in strict mode,
    without warnings)."""

    violations: list[Violation] = Field(default_factory=list)
    files_scanned: int = 0
    strict: bool = False
    sha256: str | None = None

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "error"]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.violations if v.severity == "warning"]

    @property
    def passed(self) -> bool:
        return not self.errors and not (self.strict and self.warnings)
