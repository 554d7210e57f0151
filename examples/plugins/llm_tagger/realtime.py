"""Labels one query text (and embeds it) with the same calls as the batch step; the models
come from the call's ``parameters`` (``chat_model``, ``embedding_model``, ``provider``)."""

from mixpeek_orchestration.sdk import llm

from .processors.tagger import label


class RealtimeHandler:
    def predict(self, request: dict) -> dict:
        params = request.get("parameters") or {}
        provider = params.get("provider")
        sentiment, cost = label(
            str(request.get("text", "")), params.get("chat_model", "gpt-4o-mini"), provider
        )
        vector = llm.embed(
            [str(request.get("text", ""))],
            model=params.get("embedding_model", "text-embedding-3-small"),
            provider=provider,
        )
        return {
            "embedding": vector.vectors[0],
            "sentiment": sentiment,
            "llm_cost_usd": cost + vector.cost_usd,
        }
