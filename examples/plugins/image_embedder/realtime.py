"""Embeds a query image (URL / path / base64) into the batch space."""

from typing import Any

from engine.inference.mixpeek.image_extractor.services import ImageEmbeddingHandler


class RealtimeHandler:
    def __init__(self):
        self.encoder = ImageEmbeddingHandler()

    def predict(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"embedding": self.encoder.predict(request)["embedding"]}
