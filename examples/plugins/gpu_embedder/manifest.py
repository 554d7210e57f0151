"""gpu_embedder: a GPU-type step (sentence embeddings); runs on CPU, saying so, without a GPU."""

from pydantic import BaseModel, Field


class GpuInput(BaseModel):
    text: str


class GpuOutput(BaseModel):
    embedding: list[float]
    device: str


class GpuParams(BaseModel):
    batch_size: int = Field(default=8, ge=1, le=256)


metadata = {
    "feature_extractor_name": "gpu_embedder",
    "version": "1.0.0",
    "description": "Sentence embeddings on a GPU worker (CPU fallback)",
    "category": "text",
}

input_schema = GpuInput
output_schema = GpuOutput
parameter_schema = GpuParams
supported_input_types = ["text"]

features = [
    {
        "feature_name": "gpu_embedding",
        "feature_type": "embedding",
        "embedding_dim": 384,
        "distance_metric": "cosine",
    },
]

compute_profile = {"resource_type": "gpu", "batch_size": 8, "gpu_memory_gb": 2}
serve_config = {"min_replicas": 0, "max_replicas": 1, "num_gpus": 1, "num_cpus": 1}
