"""Calls the classification API for each row, a bounded number of requests in flight."""

from dataclasses import dataclass

import pandas as pd

from mixpeek_orchestration.sdk import post_json_many


@dataclass
class TagConfig:
    endpoint: str
    max_concurrency: int = 4


class SentimentTagger:
    def __init__(self, config: TagConfig, progress_actor=None):
        self.config = config

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        payloads = [{"text": t} for t in batch["text"].fillna("").astype(str)]
        answers = post_json_many(
            self.config.endpoint, payloads, max_concurrency=self.config.max_concurrency
        )
        failed = [a for a in answers if isinstance(a, Exception)]
        if failed:
            # Raising makes the platform isolate and fail only the rows whose call failed.
            raise RuntimeError(f"classification API failed: {failed[0]}")
        batch["sentiment"] = [a["label"] for a in answers]
        batch["sentiment_score"] = [float(a["score"]) for a in answers]
        return batch
