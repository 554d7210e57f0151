"""Embeds queries into the same space as the batch output (same model, same normalisation)."""

from typing import Any


class TextQueryEncoder:
    def __init__(self):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer("all-MiniLM-L6-v2")

    async def run_inference(self, inputs: dict, parameters: dict) -> dict:
        normalize = parameters.get("normalize", True)
        texts: Any = inputs.get("texts")
        if isinstance(texts, list):
            vectors = self.model.encode([str(t) for t in texts], normalize_embeddings=normalize)
            return {"embeddings": [v.tolist() for v in vectors]}
        text = str(inputs.get("text", ""))
        vector = self.model.encode([text], normalize_embeddings=normalize)[0]
        return {"embedding": vector.tolist()}
