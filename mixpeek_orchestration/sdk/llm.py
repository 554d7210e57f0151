"""The LLM accessor: chat and embeddings from plugin code, metered by the platform.

Example:
    >>> from mixpeek_orchestration.sdk import llm
    >>> answer = llm.chat([{"role": "user", "content": "Label: great film"}], model="gpt-4o-mini")
    >>> answer.content, answer.usage.input_tokens, answer.cost_usd

Calls go to the providers the operator configured, with the organisation's own credentials
(secrets the plugin never sees), out through the platform's egress proxy; every call is
recorded (tokens, cost, latency, errors) per organisation, namespace, plugin and collection,
and a namespace over its monthly budget gets ``budget_exceeded``. Outside the platform (no
plugin context) a call says it needs the platform.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mixpeek_orchestration.sdk._context import current_context


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class ChatResult:
    content: str
    usage: Usage
    cost_usd: float
    model: str
    provider: str
    finish_reason: str | None = None
    cost_known: bool = True
    """False when neither the operator nor LiteLLM's price table prices the model (cost 0)."""


@dataclass(frozen=True)
class EmbedResult:
    vectors: list[list[float]]
    usage: Usage
    cost_usd: float
    model: str
    provider: str
    cost_known: bool = True


def chat(
    messages: list[dict[str, Any]], *, model: str, provider: str | None = None, **options: Any
) -> ChatResult:
    """One chat completion: ``messages`` as OpenAI's (``{"role", "content"}``); ``options``
    among ``temperature``, ``top_p``, ``max_tokens``, ``stop``, ``seed``, ``response_format``, ..."""
    answer = current_context().host.llm(
        {"op": "chat", "messages": messages, "model": model, "provider": provider,
         "options": options}
    )  # fmt: skip
    return ChatResult(
        content=answer["content"],
        usage=Usage(**answer["usage"]),
        cost_usd=answer["cost_usd"],
        model=answer["model"],
        provider=answer["provider"],
        finish_reason=answer.get("finish_reason"),
        cost_known=answer.get("cost_known", True),
    )


def embed(texts: list[str], *, model: str, provider: str | None = None) -> EmbedResult:
    """Embeddings of ``texts``, in order."""
    answer = current_context().host.llm(
        {"op": "embed", "texts": list(texts), "model": model, "provider": provider}
    )
    return EmbedResult(
        vectors=answer["vectors"],
        usage=Usage(**answer["usage"]),
        cost_usd=answer["cost_usd"],
        model=answer["model"],
        provider=answer["provider"],
        cost_known=answer.get("cost_known", True),
    )
