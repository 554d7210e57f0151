"""LLM providers, as the operator configures them (``MIXPEEK_LLM_PROVIDERS``).

Each provider is an endpoint and how to call it:

* ``kind: openai``: any OpenAI-compatible HTTP API (``/chat/completions``, ``/embeddings``):
  OpenAI itself, vLLM, Ollama, LiteLLM's proxy, most hosted APIs;
* ``kind: litellm``: any provider LiteLLM speaks (``model`` in LiteLLM's ``provider/model``
  form, e.g. ``anthropic/claude-3-5-haiku-latest``).

``api_key_secret`` names the organisation secret holding the provider's key (each organisation
brings its own); ``models`` may set prices (USD per million tokens), which win over LiteLLM's
price table. A call names a ``model`` and, optionally, a ``provider``; without one, the first
provider listing the model (or the ``default`` one) answers.

Example::

    MIXPEEK_LLM_PROVIDERS='[{"name": "openai", "kind": "openai",
      "base_url": "https://api.openai.com/v1", "api_key_secret": "openai_api_key",
      "default": true}]'
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from mixpeek_orchestration.errors import ErrorCode, MixpeekError


class ModelPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    input_usd_per_million: float = Field(default=0.0, ge=0)
    output_usd_per_million: float = Field(default=0.0, ge=0)


class Provider(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")
    kind: Literal["openai", "litellm"] = "openai"
    base_url: str | None = None
    """The API's base (``https://api.openai.com/v1``); required for ``openai``."""
    api_key_secret: str | None = None
    """The organisation secret holding the key (``None``: the endpoint takes none)."""
    models: dict[str, ModelPrice] = Field(default_factory=dict)
    default: bool = False
    timeout_s: float = Field(default=60.0, gt=0)

    @property
    def host(self) -> str | None:
        return urlsplit(self.base_url).hostname if self.base_url else None


_PROVIDERS = TypeAdapter(list[Provider])


def parse_providers(raw: str | None) -> list[Provider]:
    """The providers of ``MIXPEEK_LLM_PROVIDERS``: a JSON list, or a YAML / JSON file's path."""
    if not raw or not raw.strip():
        return []
    text = raw
    if not raw.lstrip().startswith("["):
        path = Path(raw).expanduser()
        if not path.is_file():
            raise MixpeekError(
                ErrorCode.INVALID_SETTINGS,
                f"MIXPEEK_LLM_PROVIDERS is neither a JSON list nor a file: {raw[:80]!r}",
            )
        text = path.read_text()
    try:
        import yaml

        data = yaml.safe_load(text) if not text.lstrip().startswith("[") else json.loads(text)
        providers = _PROVIDERS.validate_python(data)
    except (ValueError, ValidationError) as exc:
        raise MixpeekError(
            ErrorCode.INVALID_SETTINGS, f"MIXPEEK_LLM_PROVIDERS is invalid: {exc}"
        ) from None
    for provider in providers:
        if provider.kind == "openai" and not provider.base_url:
            raise MixpeekError(
                ErrorCode.INVALID_SETTINGS,
                f"LLM provider {provider.name!r} (kind openai) needs a base_url",
            )
    names = [p.name for p in providers]
    if len(set(names)) != len(names):
        raise MixpeekError(ErrorCode.INVALID_SETTINGS, f"duplicate LLM provider names: {names}")
    return providers


def pick(providers: list[Provider], model: str, provider: str | None) -> Provider:
    """The provider that answers ``model``: the one named, else the first listing the model,
    else the default one."""
    if not providers:
        raise MixpeekError(
            ErrorCode.UNSUPPORTED_OPERATION,
            "no LLM provider is configured on this platform (MIXPEEK_LLM_PROVIDERS)",
        )
    if provider is not None:
        for candidate in providers:
            if candidate.name == provider:
                return candidate
        raise MixpeekError(
            ErrorCode.NOT_FOUND,
            f"LLM provider {provider!r} is not configured; configured: "
            f"{[p.name for p in providers]}",
        )
    for candidate in providers:
        if model in candidate.models:
            return candidate
    for candidate in providers:
        if candidate.default:
            return candidate
    if len(providers) == 1:
        return providers[0]
    raise MixpeekError(
        ErrorCode.INVALID_REQUEST,
        f"no configured LLM provider lists model {model!r} and none is the default: name one "
        f"of {[p.name for p in providers]} with provider=",
    )


def cost_usd(
    provider: Provider, model: str, input_tokens: int, output_tokens: int
) -> tuple[float, bool]:
    """The call's cost and whether it is known: the operator's prices for the model, else
    LiteLLM's price table, else unknown (0)."""
    price = provider.models.get(model)
    if price is not None:
        return (
            (
                input_tokens * price.input_usd_per_million
                + output_tokens * price.output_usd_per_million
            )
            / 1e6,
            True,
        )
    table = _litellm_prices()
    for key in (model, model.split("/", 1)[-1]):
        entry = table.get(key)
        if entry:
            return (
                input_tokens * float(entry.get("input_cost_per_token") or 0)
                + output_tokens * float(entry.get("output_cost_per_token") or 0),
                True,
            )
    return 0.0, False


def _litellm_prices() -> dict[str, dict[str, Any]]:
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # the bundled table, offline
    try:
        import litellm
    except ImportError:
        return {}
    return litellm.model_cost  # type: ignore[no-any-return]
