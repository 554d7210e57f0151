"""The scanner never crashes and fails closed: pathological input, encodings, budgets, errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mixpeek_orchestration.plugins import scanner
from mixpeek_orchestration.plugins.policy import ScanPolicy
from mixpeek_orchestration.plugins.report import Violation
from mixpeek_orchestration.plugins.scanner import RULES, scan_directory, scan_source


def _rules(violations: list[Violation], severity: str = "error") -> set[str]:
    return {v.rule for v in violations if v.severity == severity}


# --- the violation format ------------------------------------------------------------------


def test_violation_format_is_exact() -> None:
    violations = scan_source(b"x = 1\n\nimport subprocess\n", "processors/core.py")
    assert violations == [
        Violation(
            file="processors/core.py",
            line=3,
            column=0,
            message="Forbidden import: subprocess",
            severity="error",
            rule="forbidden-import",
        )
    ]
    assert set(violations[0].model_dump()) == {
        "file",
        "line",
        "column",
        "message",
        "severity",
        "rule",
    }


def test_positions_of_nested_findings() -> None:
    violations = scan_source("def f():\n    return eval('1')\n", "x.py")
    assert [(v.line, v.column, v.message) for v in violations] == [
        (2, 11, "Forbidden builtin: eval")
    ]


def test_unicode_identifiers_are_normalised() -> None:
    violations = scan_source("\uff45val('1')\n", "x.py")  # full-width e: NFKC makes it eval
    assert [v.message for v in violations] == ["Forbidden builtin: eval"]


def test_output_is_deterministic_and_rules_are_known() -> None:
    source = "import os, sys\nos.system('x')\neval('1')\nx.__class__\n"
    first = scan_source(source, "x.py")
    assert first == scan_source(source, "x.py")
    assert first == sorted(first, key=lambda v: (v.line, v.column, v.rule, v.message))
    assert {v.rule for v in first} <= RULES


# --- pathological input: never an exception, always a verdict -----------------------------

BOMBS = {
    "parentheses-100k": "x = " + "(" * 100_000 + "1" + ")" * 100_000,
    "brackets-100k": "x = " + "[" * 100_000 + "]" * 100_000,
    "attribute-chain-50k": "x = a" + ".b" * 50_000,
    "additions-100k": "x = 1" + "+1" * 100_000,
    "calls-50k": "x = f" + "()" * 50_000,
    "subscripts-50k": "x = f" + "[0]" * 50_000,
    "conditional-chain-20k": "x = " + "a if b else " * 20_000 + "c",
    "lambda-chain-50k": "x = " + "lambda: " * 50_000 + "1",
    "not-chain-50k": "x = " + "not " * 50_000 + "a",
    "elif-20k": "if x:\n pass\n" + "elif x:\n pass\n" * 20_000,
    "indentation-1000": "".join(" " * i + "def f():\n" for i in range(1000))
    + " " * 1000
    + "pass\n",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_nesting_bombs_fail_closed(name: str) -> None:
    violations = scan_source(BOMBS[name], "bomb.py")
    assert isinstance(violations, list)
    assert "parse-error" in _rules(violations)


DEEP_BUT_VALID = {
    "attribute-chain-2500": "x = a" + ".b" * 2_500,
    "additions-2500": "x = 1" + "+1" * 2_500,
    "calls-2500": "x = f" + "()" * 2_500,
    "conditional-chain-2500": "x = " + "a if b else " * 2_500 + "c",
    "subscripts-2500": "x = f" + "[0]" * 2_500,
    "lambdas-2500": "x = " + "lambda: " * 2_500 + "1",
    "string-concatenation-2500": "x = 'a'" + " + 'a'" * 2_500,
    "brackets-150": "x = " + "[" * 150 + "]" * 150,
}


@pytest.mark.parametrize("name", sorted(DEEP_BUT_VALID))
def test_deep_but_valid_code_is_analysed_without_recursion(name: str) -> None:
    assert scan_source(DEEP_BUT_VALID[name], "deep.py") == []


def test_deep_chain_still_finds_the_attack_at_its_end() -> None:
    source = "import os\nx = os" + ".path" * 2_000 + ".system('id')\n"
    assert "forbidden-call" in _rules(scan_source(source, "deep.py"))


def test_raised_recursion_limit_cannot_crash_the_parser() -> None:
    """With a huge recursion limit CPython's AST builder can overflow the C stack; the scanner
    parses under a capped limit. Run in a subprocess so a crash would not take pytest down."""
    code = textwrap.dedent(
        """
        import sys
        sys.setrecursionlimit(200_000)
        from mixpeek_orchestration.plugins.scanner import scan_source
        out = scan_source("x = a" + ".b" * 300_000, "x.py")
        assert sys.getrecursionlimit() == 200_000
        print(sorted({v.rule for v in out}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "parse-error" in done.stdout


def test_huge_file_is_rejected_unparsed() -> None:
    violations = scan_source(b"x = 1\n" * 400_000, "big.py")
    assert [v.rule for v in violations] == ["file-too-large"]


def test_file_size_limit_is_a_policy_knob() -> None:
    policy = ScanPolicy(max_file_bytes=10)
    assert [v.rule for v in scan_source("x = 12345678901\n", "x.py", policy=policy)] == [
        "file-too-large"
    ]


def test_syntax_error_reports_its_position() -> None:
    violations = scan_source("x = 1\ndef f(:\n", "x.py")
    assert [(v.rule, v.line) for v in violations] == [("parse-error", 2)]


@pytest.mark.parametrize("source", [b"x = 1\x00\n", "x = 1\n\x00\n"], ids=["bytes", "text"])
def test_null_bytes_are_rejected(source: bytes | str) -> None:
    violations = scan_source(source, "x.py")
    assert [v.rule for v in violations] == ["null-byte"]


# --- encodings --------------------------------------------------------------------------


def test_coding_cookie_is_honoured() -> None:
    source = "# -*- coding: latin-1 -*-\nname = 'caf\u00e9'\n".encode("latin-1")
    assert scan_source(source, "x.py") == []


def test_utf7_cookie_cannot_hide_code() -> None:
    source = b"# -*- coding: utf-7 -*-\nimport os+ADs-os.system(+ACI-id+ACI-)\n"
    assert "forbidden-call" in _rules(scan_source(source, "x.py"))


def test_bom_is_accepted() -> None:
    assert scan_source(b"\xef\xbb\xbfx = 1\n", "x.py") == []


@pytest.mark.parametrize(
    "source",
    [
        b"\xef\xbb\xbf# coding: latin-1\nx = 1\n",  # BOM contradicting the cookie
        b"# coding: no-such-codec\nx = 1\n",
        b"x = '\xff\xfe'\n",  # not UTF-8 and no cookie
    ],
    ids=["bom-and-cookie", "unknown-codec", "invalid-utf8"],
)
def test_undecodable_source_is_a_parse_error(source: bytes) -> None:
    assert [v.rule for v in scan_source(source, "x.py")] == ["parse-error"]


def test_text_input_is_scanned_too() -> None:
    assert [v.rule for v in scan_source("import socket\n", "x.py")] == ["forbidden-import"]


# --- budgets and internal failures fail closed ---------------------------------------------


def test_time_budget_fails_closed() -> None:
    policy = ScanPolicy(time_budget_s=0.0)
    violations = scan_source("x = 1\n", "x.py", policy=policy)
    assert [(v.rule, v.severity) for v in violations] == [("scan-timeout", "error")]


def test_time_budget_is_checked_during_the_walk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanner, "_TIME_CHECK_EVERY", 1)
    clock = iter(range(1_000_000))
    monkeypatch.setattr(scanner.time, "monotonic", lambda: float(next(clock)))
    policy = ScanPolicy(time_budget_s=5.0)
    violations = scan_source(
        "import os\n" + "x = os.path.join('a', 'b')\n" * 50, "x.py", policy=policy
    )
    assert "scan-timeout" in _rules(violations)


def test_internal_error_fails_closed_and_keeps_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(self: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(scanner._ModuleScanner, "_check_calls", explode)
    violations = scan_source("import subprocess\nx = 1\n", "x.py")
    assert {"scanner-error", "forbidden-import"} <= _rules(violations)
    assert any("RuntimeError: boom" in v.message for v in violations)


@pytest.mark.parametrize("error", [RecursionError, MemoryError, KeyError])
def test_any_exception_in_the_walk_fails_closed(
    monkeypatch: pytest.MonkeyPatch, error: type
) -> None:
    def explode(self: object, node: object, scope: object, flags: int) -> None:
        raise error("inside")

    monkeypatch.setattr(scanner._ModuleScanner, "_h_attribute", explode)
    handlers = scanner._ModuleScanner._build_handlers
    monkeypatch.setattr(scanner._ModuleScanner, "_build_handlers", handlers)
    violations = scan_source("import json\njson.dumps(1)\n", "x.py")
    assert "scanner-error" in _rules(violations)


def test_analysis_limit_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanner, "MAX_TOKENS_PER_VALUE", 2)
    violations = scan_source("import json, re, math\nx = [json, re, math]\n", "x.py")
    assert "scanner-limit" in _rules(violations)


def test_garbage_collector_state_is_restored() -> None:
    import gc

    assert gc.isenabled()
    scan_source("import os\n", "x.py")
    assert gc.isenabled()
    gc.disable()
    try:
        scan_source("import os\n", "x.py")
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- policy knobs ----------------------------------------------------------------------


def test_extra_allowed_imports() -> None:
    source = "import scipy.signal\nfrom sklearn.linear_model import LogisticRegression\n"
    assert _rules(scan_source(source, "x.py")) == {"import-not-allowed"}
    policy = ScanPolicy(extra_allowed_imports=frozenset({"scipy", "sklearn"}))
    assert scan_source(source, "x.py", policy=policy) == []


def test_strict_mode_turns_warnings_into_failure(tmp_path: Path) -> None:
    (tmp_path / "core.py").write_text("def kind(x):\n    return x.__class__\n")
    lenient = scan_directory(tmp_path)
    strict = scan_directory(tmp_path, policy=ScanPolicy(strict=True))
    assert lenient.errors == [] and lenient.warnings
    assert lenient.passed and not lenient.strict
    assert strict.strict and not strict.passed


# --- scan_directory ------------------------------------------------------------------------


def test_scan_directory_walks_python_files_in_order(tmp_path: Path) -> None:
    (tmp_path / "processors").mkdir()
    (tmp_path / "processors" / "core.py").write_text("import socket\n")
    (tmp_path / "pipeline.py").write_text("from processors.core import x\nimport helpers\n")
    (tmp_path / "helpers.py").write_text("import subprocess\n")
    (tmp_path / "notes.txt").write_text("import subprocess\n")  # not Python: the gate's business
    (tmp_path / "data.json").write_text("{}")
    report = scan_directory(tmp_path)
    assert report.files_scanned == 3
    assert [(v.file, v.rule) for v in report.violations] == [
        ("helpers.py", "forbidden-import"),
        ("processors/core.py", "forbidden-import"),
    ]
    assert report.strict is False and not report.passed


def test_own_modules_are_importable_only_inside_the_plugin() -> None:
    source = "from processors.core import x\n"
    assert _rules(scan_source(source, "x.py")) == {"import-not-allowed"}
    assert scan_source(source, "x.py", plugin_modules=frozenset({"processors"})) == []
    # a plugin module named like a denied module does not make it importable
    assert _rules(scan_source("import sys\n", "x.py", plugin_modules=frozenset({"sys"}))) == {
        "forbidden-import"
    }


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symlinks")
def test_symlinks_are_reported_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.py"
    outside.write_text("import subprocess\n")
    plugin = tmp_path / "plugin"
    plugin.mkdir()
    (plugin / "link.py").symlink_to(outside)
    report = scan_directory(plugin)
    assert [(v.file, v.rule) for v in report.violations] == [("link.py", "file-type")]
