"""A plugin that costs next to nothing: what the platform costs per row, on its own."""

from typing import List

from pydantic import BaseModel, Field


class NullInput(BaseModel):
    text: str = Field(..., description="Input text")


class NullOutput(BaseModel):
    embedding: List[float] = Field(..., description="a 384-d hash of the text")


metadata = {
    "feature_extractor_name": "null_embedder",
    "version": "1.0.0",
    "description": "Deterministic hash embeddings, no model (benchmarks the platform)",
    "category": "text",
}

input_schema = NullInput
output_schema = NullOutput
supported_input_types = ["text"]
features = [
    {
        "feature_name": "null_embedder_embedding",
        "feature_type": "embedding",
        "embedding_dim": 384,
        "distance_metric": "cosine",
    },
]
