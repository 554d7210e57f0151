"""Realtime query encoder on the replica's device."""

from typing import Any

import torch


class RealtimeHandler:
    def __init__(self):
        from sentence_transformers import SentenceTransformer

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = SentenceTransformer("all-MiniLM-L6-v2", device=self.device)

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        vector = self.model.encode([str(request.get("text", ""))], normalize_embeddings=True)[0]
        return {"embedding": vector.tolist(), "device": self.device}
