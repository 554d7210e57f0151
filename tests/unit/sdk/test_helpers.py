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


def test_only_declared_secrets_are_read_and_a_missing_one_fails_naming_it() -> None:
    stored = {"openai_api_key": "sk-123"}
    asked: list[str] = []

    def fetch(name: str) -> str:
        asked.append(name)
        if name not in stored:
            raise MixpeekError(ErrorCode.NOT_FOUND, f"secret {name!r} is not set")
        return stored[name]

    secrets = PluginSecrets(declared=["openai_api_key", "other_key"], fetch=fetch)
    assert secrets.get("openai_api_key") == "sk-123"
    with pytest.raises(MixpeekError, match="'other_key' is not set") as missing:
        secrets.get("other_key")
    assert missing.value.code is ErrorCode.NOT_FOUND
    assert secrets.get("other_key", "fallback") == "fallback"  # unless the plugin says what to use
    with pytest.raises(MixpeekError, match="'aws_key' is not declared") as undeclared:
        secrets.get("aws_key")
    assert undeclared.value.code is ErrorCode.PERMISSION_DENIED
    assert asked == ["openai_api_key", "other_key", "other_key"]  # never asked for undeclared
    assert secrets.keys() == ["openai_api_key", "other_key"] and "sk-123" not in repr(secrets)


def test_where_nothing_can_be_read_declared_secrets_read_as_their_default() -> None:
    """An upload's check runs ``build_steps`` before any secret may be stored."""
    secrets = PluginSecrets(declared=["openai_api_key"])
    assert secrets.get("openai_api_key") is None
    assert secrets.get("openai_api_key", "x") == "x"


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
