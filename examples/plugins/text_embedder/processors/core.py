"""Embeds text rows with all-MiniLM-L6-v2; the model loads once per worker."""

import logging
from dataclasses import dataclass

import pandas as pd

logger = logging.getLogger(__name__)


@dataclass
class EmbedConfig:
    normalize: bool = True
    max_chars: int = 2000


class TextEmbedder:
    def __init__(self, config: EmbedConfig, progress_actor=None):
        self.config = config
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer("all-MiniLM-L6-v2")
        self.tokenizer = self.model.tokenizer

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        texts = [t[: self.config.max_chars] for t in batch["text"].fillna("").astype(str)]
        vectors = self.model.encode(
            texts,
            batch_size=64,
            normalize_embeddings=self.config.normalize,
            show_progress_bar=False,
        )
        batch["text_embedding"] = [v.tolist() for v in vectors]
        batch["token_count"] = [len(self.tokenizer.tokenize(t)) for t in texts]
        return batch
