"""benign_stdlib: the standard modules real plugins use, now that the sandbox is the boundary.

io.BytesIO with PIL, pathlib over its own files and its scratch, unicodedata, hashlib, base64,
an async realtime handler (asyncio): a deterministic embedding the tests can recompute.
"""

from pydantic import BaseModel


class Input(BaseModel):
    text: str


class Output(BaseModel):
    embedding: list[float]
    normalized: str
    png_bytes: int


metadata = {
    "feature_extractor_name": "benign_stdlib",
    "version": "1.0.0",
    "description": "standard-library idioms",
    "category": "text",
}
input_schema = Input
output_schema = Output
supported_input_types = ["text"]
features = [{"feature_name": "benign_embedding", "feature_type": "embedding", "embedding_dim": 8}]
serve_config = {"min_replicas": 1, "max_replicas": 1, "num_cpus": 0.5}
