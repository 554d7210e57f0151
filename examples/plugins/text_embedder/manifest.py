"""text_embedder: sentence embeddings plus a token count, on CPU, with a realtime endpoint."""

from pydantic import BaseModel, Field


class TextInput(BaseModel):
    text: str = Field(..., description="Text to embed")


class TextOutput(BaseModel):
    embedding: list[float] = Field(..., description="384-d sentence embedding")
    token_count: int = Field(..., ge=0)


class TextParams(BaseModel):
    normalize: bool = Field(default=True, description="L2-normalise the vectors")
    max_chars: int = Field(default=2000, ge=1, le=100_000, description="Truncate longer texts")


metadata = {
    "feature_extractor_name": "text_embedder",
    "version": "1.0.0",
    "description": "all-MiniLM-L6-v2 sentence embeddings with a token count",
    "category": "text",
}

input_schema = TextInput
output_schema = TextOutput
parameter_schema = TextParams
supported_input_types = ["text"]

features = [
    {
        "feature_name": "text_embedding",
        "feature_type": "embedding",
        "embedding_dim": 384,
        "distance_metric": "cosine",
    },
]

compute_profile = {"resource_type": "cpu", "batch_size": 64, "max_concurrency": 1}
serve_config = {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 4, "num_cpus": 1}
