"""The operator's LLM providers: parsing, which one answers a call, what a call costs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixpeek_orchestration.errors import ErrorCode, MixpeekError
from mixpeek_orchestration.llm.providers import cost_usd, parse_providers, pick

LOCAL = {"name": "local", "base_url": "http://127.0.0.1:9/v1", "api_key_secret": "k",
         "models": {"tiny": {"input_usd_per_million": 1000, "output_usd_per_million": 2000}}}  # fmt: skip
HOSTED = {"name": "openai", "base_url": "https://api.openai.com/v1", "default": True}


def test_providers_come_from_json_or_a_yaml_file(tmp_path: Path) -> None:
    [local] = parse_providers(json.dumps([LOCAL]))
    assert local.kind == "openai" and local.host == "127.0.0.1"
    path = tmp_path / "providers.yaml"
    path.write_text("- name: ollama\n  base_url: http://ollama:11434/v1\n")
    [ollama] = parse_providers(str(path))
    assert ollama.name == "ollama" and ollama.api_key_secret is None
    assert parse_providers(None) == [] and parse_providers("  ") == []


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (json.dumps([{"name": "x", "kind": "openai"}]), "needs a base_url"),
        (json.dumps([LOCAL, LOCAL]), "duplicate"),
        (json.dumps([{"name": "x", "base_url": "http://h", "colour": 1}]), "colour"),
        ("/nowhere/providers.yaml", "neither a JSON list nor a file"),
    ],
)
def test_a_bad_provider_config_is_refused_naming_the_problem(raw: str, says: str) -> None:
    with pytest.raises(MixpeekError, match=says) as info:
        parse_providers(raw)
    assert info.value.code is ErrorCode.INVALID_SETTINGS


def test_the_named_provider_else_the_one_listing_the_model_else_the_default_answers() -> None:
    providers = parse_providers(json.dumps([LOCAL, HOSTED]))
    assert pick(providers, "tiny", None).name == "local"
    assert pick(providers, "gpt-4o-mini", None).name == "openai"
    assert pick(providers, "tiny", "openai").name == "openai"
    with pytest.raises(MixpeekError, match="'nope' is not configured"):
        pick(providers, "tiny", "nope")
    with pytest.raises(MixpeekError, match="no LLM provider is configured"):
        pick([], "tiny", None)


def test_the_operators_prices_win_and_litellms_table_prices_the_rest() -> None:
    local, hosted = parse_providers(json.dumps([LOCAL, HOSTED]))
    assert cost_usd(local, "tiny", 1000, 10) == (pytest.approx(1.02), True)
    cost, known = cost_usd(hosted, "gpt-4o-mini", 1_000_000, 0)
    assert known and cost > 0  # LiteLLM's bundled table, offline
    assert cost_usd(local, "unheard-of-model", 10, 10) == (0.0, False)
