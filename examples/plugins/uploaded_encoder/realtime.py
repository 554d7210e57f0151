"""Embeds a query with the same uploaded model (``parameters.model_name``, default my_encoder)."""

from mixpeek_orchestration.sdk import load_namespace_model


class RealtimeHandler:
    def __init__(self):
        self.models = {}

    def predict(self, request: dict) -> dict:
        name = (request.get("parameters") or {}).get("model_name", "my_encoder")
        if name not in self.models:
            self.models[name] = load_namespace_model(name)
        vector = self.models[name].encode([str(request.get("text", ""))], normalize_embeddings=True)
        return {"embedding": vector[0].tolist()}
