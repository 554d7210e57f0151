from dataclasses import dataclass
import pandas as pd

@dataclass
class MyConfig:
    threshold: float = 0.5

class MyProcessor:
    def __init__(self, config: MyConfig, progress_actor=None):
        self.config = config
        self._model = None

    def _load_model(self):
        if self._model is None:
            # Load once, reuse for all batches
            from sentence_transformers import SentenceTransformer
            self._model = SentenceTransformer("all-MiniLM-L6-v2")

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        """Process batch. Framework handles batch sizing."""
        self._load_model()

        texts = batch["text"].fillna("").tolist()
        embeddings = self._model.encode(texts).tolist()

        batch["my_extractor_embedding"] = embeddings
        batch["label"] = ["positive" if e[0] > self.config.threshold else "negative" for e in embeddings]
        return batch
