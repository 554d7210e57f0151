"""SDK helpers: they need a plugin context, check their arguments, and never print secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.sdk import PluginContext, PluginSecrets, load_namespace_model, run_tool
from mixpeek_orchestration.sdk._context import use_context


def test_helpers_need_a_plugin_context() -> None:
    with pytest.raises(MixpeekError, match="No plugin context"):
        load_namespace_model("x")


def test_secrets_are_readable_but_never_printed() -> None:
    secrets = PluginSecrets({"OPENAI_KEY": "sk-123"})
    assert secrets.get("OPENAI_KEY") == "sk-123" and secrets.get("nope", "d") == "d"
    assert "sk-123" not in repr(secrets)


def test_run_tool_refuses_unknown_tools(tmp_path: Path) -> None:
    with use_context(PluginContext(scratch_dir=tmp_path)), pytest.raises(MixpeekError) as info:
        run_tool("bash", ["-c", "id"])
    assert info.value.code is ErrorCode.TOOL_UNAVAILABLE


def test_outside_the_platform_a_helper_says_it_needs_the_platform(tmp_path: Path) -> None:
    with use_context(PluginContext(scratch_dir=tmp_path)), pytest.raises(MixpeekError) as info:
        run_tool("sox", ["--version"])
    assert info.value.code is ErrorCode.UNSUPPORTED_OPERATION


def test_the_sdk_holds_no_way_to_lift_the_guard() -> None:
    """Every public SDK name is plugin-facing; nothing of the sandbox is reachable from it."""
    import mixpeek_orchestration.sdk as sdk

    for name in sdk.__all__:
        module = getattr(getattr(sdk, name), "__module__", "") or ""
        assert not module.startswith("mixpeek_orchestration.sandbox"), name
    assert not hasattr(sdk, "trusted")
