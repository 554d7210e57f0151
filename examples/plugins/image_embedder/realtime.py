"""Embeds a query image (URL / path / base64) into the batch space."""

from typing import Any, Dict

from engine.inference.mixpeek.image_extractor.services import ImageEmbeddingHandler


class RealtimeHandler:
    def __init__(self):
        self.encoder = ImageEmbeddingHandler()

    def predict(self, request: Dict[str, Any]) -> Dict[str, Any]:
        return {"embedding": self.encoder.predict(request)["embedding"]}
