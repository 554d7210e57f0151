"""Embeds on CUDA when the worker has a GPU, else on CPU (and logs which)."""

import logging
from dataclasses import dataclass

import pandas as pd
import torch

logger = logging.getLogger(__name__)


@dataclass
class GpuConfig:
    batch_size: int = 8


class GpuEmbedder:
    def __init__(self, config: GpuConfig, progress_actor=None):
        self.config = config
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        if self.device == "cpu":
            logger.warning("gpu_embedder: no GPU on this worker, running on CPU")
        else:
            logger.info("gpu_embedder: running on %s", torch.cuda.get_device_name(0))
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer("all-MiniLM-L6-v2", device=self.device)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        texts = batch["text"].fillna("").astype(str).tolist()
        with torch.inference_mode():
            vectors = self.model.encode(
                texts,
                batch_size=self.config.batch_size,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        batch["gpu_embedding"] = [v.tolist() for v in vectors]
        batch["device"] = self.device
        return batch
