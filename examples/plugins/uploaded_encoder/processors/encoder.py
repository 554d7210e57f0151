"""Encodes each batch with the uploaded model."""

from dataclasses import dataclass

import pandas as pd

from mixpeek_orchestration.sdk import load_namespace_model


@dataclass
class EncoderConfig:
    model_name: str = "my_encoder"


class UploadedEncoder:
    def __init__(self, config: EncoderConfig, progress_actor=None):
        self.model = load_namespace_model(config.model_name)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        texts = batch["text"].fillna("").astype(str).tolist()
        vectors = self.model.encode(texts, normalize_embeddings=True)
        batch["uploaded_encoder_embedding"] = [v.tolist() for v in vectors]
        return batch
