import hashlib

import numpy as np
import pandas as pd

DIM = 384


def hash_vectors(texts):
    """One unit vector per text, the same for the same text: 384 floats drawn from its hash."""
    seeds = [
        int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") for t in texts
    ]
    vectors = np.stack(
        [np.random.default_rng(s).standard_normal(DIM, dtype=np.float32) for s in seeds]
    )
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


class HashEmbedder:
    def __init__(self, config=None, progress_actor=None):
        self.config = config

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        batch["null_embedder_embedding"] = list(hash_vectors(batch["text"].fillna("").tolist()))
        return batch
