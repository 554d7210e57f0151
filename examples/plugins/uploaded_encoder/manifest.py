"""uploaded_encoder: embeds text with a sentence-transformers model the organisation uploaded
(``POST /v1/models/uploads``), loaded by name with ``load_namespace_model``."""

from typing import List

from pydantic import BaseModel, Field


class EncoderInput(BaseModel):
    text: str


class EncoderOutput(BaseModel):
    uploaded_encoder_embedding: List[float]


class EncoderParams(BaseModel):
    model_name: str = Field(default="my_encoder", description="The uploaded model to load")


metadata = {
    "feature_extractor_name": "uploaded_encoder",
    "version": "1.0.0",
    "description": "Text embeddings from an uploaded sentence-transformers model",
    "category": "text",
}

input_schema = EncoderInput
output_schema = EncoderOutput
parameter_schema = EncoderParams
supported_input_types = ["text"]

features = [
    {
        "feature_name": "uploaded_encoder_embedding",
        "feature_type": "embedding",
        "embedding_dim": 384,
        "distance_metric": "cosine",
    },
]
