"""Labels each row with one chat call and embeds the batch with one embeddings call."""

from dataclasses import dataclass
from typing import Optional

import pandas as pd

from mixpeek_orchestration.sdk import llm

PROMPT = "Answer with one word, positive or negative: what is the sentiment of this text?"


def label(text: str, model: str, provider: Optional[str]) -> tuple:
    answer = llm.chat(
        [{"role": "system", "content": PROMPT}, {"role": "user", "content": text}],
        model=model,
        provider=provider,
        temperature=0,
        max_tokens=2,
    )
    word = answer.content.strip().lower()
    return ("positive" if word.startswith("pos") else "negative"), answer.cost_usd


@dataclass
class TaggerConfig:
    chat_model: str = "gpt-4o-mini"
    embedding_model: str = "text-embedding-3-small"
    provider: Optional[str] = None


class LLMTagger:
    def __init__(self, config: TaggerConfig, progress_actor=None):
        self.config = config

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        texts = batch["text"].fillna("").astype(str).tolist()
        c = self.config
        labels = [label(t, c.chat_model, c.provider) for t in texts]
        vectors = llm.embed(texts, model=c.embedding_model, provider=c.provider)
        share = vectors.cost_usd / max(1, len(texts))
        batch["sentiment"] = [s for s, _ in labels]
        batch["llm_cost_usd"] = [cost + share for _, cost in labels]
        batch["llm_tagger_embedding"] = vectors.vectors
        return batch
